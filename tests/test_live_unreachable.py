"""Regenerate samples/broker-unreachable-amqp now and hold it to the committed `expected.json`: the
EHOSTUNREACH lines come from today's kernel and py-amqp, and the scenario leaves the routing table as
it found it. Adding a route needs root and iproute2; skips without them, fails under
CPM_REQUIRE_LIVE=1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_LIVE, SAMPLES
from tests.test_live_samples import _generator
from tests.test_samples import check_ids, run_check

NAME = "broker-unreachable-amqp"


def _routes() -> str:
    return subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        reason = "needs root and iproute2 to add an unreachable route (absent here)"
        if REQUIRE_LIVE:
            pytest.fail(f"CPM_REQUIRE_LIVE=1 but this test {reason}")
        pytest.skip(reason)
    scenarios, produce = _generator()
    before = _routes()
    out: Path = produce(scenarios[NAME], tmp_path_factory.mktemp("live-unreachable"))
    after = _routes()
    shutil.copyfile(SAMPLES / NAME / "expected.json", out / "expected.json")
    return out, before, after


@pytest.mark.live
@pytest.mark.parametrize("check_id", check_ids(json.loads((SAMPLES / NAME / "expected.json").read_text())))
def test_fresh_run_meets_expectations(fresh: tuple[Path, str, str], check_id: str) -> None:
    run_check(fresh[0], check_id)


@pytest.mark.live
def test_fresh_run_restores_the_routes(fresh: tuple[Path, str, str]) -> None:
    out, before, after = fresh
    assert "No route to host" in (out / "worker.log").read_text()
    assert after == before
    assert "198.51.100.0/24" not in after
