"""Regenerate a few fast scenarios with a real Celery worker right now and hold the fresh output to
the committed `expected.json` — proof that the samples are reproducible and the analyzer is not
tuned to one frozen run. Needs redis-server (private brokers), py-spy and gdb; skips without them,
fails under CPM_REQUIRE_LIVE=1 (CI)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLES, require
from tests.test_samples import live_cases, run_check

GENERATOR = SAMPLES / "generate"
LIVE = ["broker-refused", "hard-time-limit", "healthy", "deadlock-lock"]
NEEDS = {"redis": "redis-server", "rabbitmq": "rabbitmq", "postgres": "postgres", "mariadb": "mariadb",
         "gdb": "gdb", "py-spy": "py-spy"}


def _generator() -> tuple[dict[str, Any], Any]:
    """The scenarios and `produce` of samples/generate (a script directory, not a package)."""
    if str(GENERATOR) not in sys.path:
        sys.path.insert(0, str(GENERATOR))
    import harness
    import run

    return run.scenarios(), harness.produce


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    scenarios, produce = _generator()
    out_root = tmp_path_factory.mktemp("live-samples")
    produced: dict[str, Path] = {}
    for name in LIVE:
        sc = scenarios[name]
        require(*(NEEDS[n] for n in sc.needs))
        out = produce(sc, out_root)
        shutil.copyfile(SAMPLES / name / "expected.json", out / "expected.json")
        produced[name] = out
    return produced



@pytest.mark.live
@pytest.mark.parametrize(("name", "check_id"), live_cases(LIVE))
def test_fresh_run_meets_expectations(fresh: dict[str, Path], name: str, check_id: str) -> None:
    run_check(fresh[name], check_id)
