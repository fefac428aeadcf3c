"""Regenerate samples/broker-unreachable-amqp and samples/broker-net-unreachable now and hold each to
its committed `expected.json`: the EHOSTUNREACH and ENETUNREACH lines come from today's kernel,
py-amqp and redis-py, and the scenario leaves the routing table as it found it. Adding a route needs
root and iproute2; skips without them, fails under CPM_REQUIRE_LIVE=1."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from analyzer import open_bundle
from tests.conftest import REQUIRE_LIVE, SAMPLES
from tests.test_live_pipe import no_leftovers, once
from tests.test_live_samples import _generator
from tests.test_samples import live_cases, run_check


@dataclass(frozen=True)
class Route:
    """The route a scenario adds for the run, and the error the kernel then gives every connect()."""

    kind: str
    net: str
    errno: int
    strerror: str
    tools: tuple[str, ...]


ROUTES = {
    "broker-unreachable-amqp": Route("unreachable", "198.51.100.0/24", 113, "No route to host", ("ip",)),
    "broker-net-unreachable": Route("throw", "203.0.113.0/24", 101, "Network is unreachable", ("ip", "redis-cli")),
}
NAMES = list(ROUTES)


def _routes() -> str:
    return subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True, text=True,
                          check=True).stdout


@dataclass(frozen=True)
class Fresh:
    out: Path
    before: str
    after: str
    leftovers: set[int]


def _regenerate(name: str, root: Path) -> Fresh:
    route = ROUTES[name]
    missing = [t for t in route.tools if shutil.which(t) is None]
    if os.geteuid() != 0 or missing:
        reason = f"needs root and {', '.join(route.tools)} to add a {route.kind} route (absent here)"
        if REQUIRE_LIVE:
            pytest.fail(f"CPM_REQUIRE_LIVE=1 but this test {reason}")
        pytest.skip(reason)
    scenarios, produce = _generator()
    before = _routes()
    try:
        with no_leftovers() as left:
            out: Path = produce(scenarios[name], root)
    finally:
        after = _routes()
        if route.net in after and route.net not in before:  # the scenario's own `finally` did not remove it
            subprocess.run(["ip", "route", "del", route.kind, route.net], check=False)
    shutil.copyfile(SAMPLES / name / "expected.json", out / "expected.json")
    return Fresh(out, before, after, left)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Fresh]:
    root = tmp_path_factory.mktemp("live-unreachable")
    return once(lambda name: _regenerate(name, root))


@pytest.mark.live
@pytest.mark.parametrize(("name", "check_id"), live_cases(NAMES))
def test_fresh_run_meets_expectations(fresh: Callable[[str], Fresh], name: str, check_id: str) -> None:
    run_check(fresh(name).out, check_id)


@pytest.mark.live
@pytest.mark.parametrize("name", NAMES)
def test_fresh_run_restores_the_routes(fresh: Callable[[str], Fresh], name: str) -> None:
    run, route = fresh(name), ROUTES[name]
    assert route.strerror in (run.out / "worker.log").read_text()
    assert run.after == run.before
    assert route.net not in run.after


@pytest.mark.live
@pytest.mark.parametrize("name", NAMES)
def test_fresh_run_blames_the_missing_route(fresh: Callable[[str], Fresh], name: str) -> None:
    """CP-B018 alone, on evidence that names this errno and an address inside the routed network."""
    run, route = fresh(name), ROUTES[name]
    assert f"RTNETLINK answers: {route.strerror}" in (run.out / "ip-route-get.txt").read_text()
    report = open_bundle(run.out).report()
    causes = [report.finding(r) for r in report.root_causes]
    assert [f.rule for f in causes] == ["CP-B018"]
    assert causes[0].evidence
    for ev in causes[0].evidence:
        assert re.search(rf"(Error |\[Errno ){route.errno}\b.*{route.strerror}", ev.text), ev.text
        host = re.search(r"@([\d.]+):\d+/", ev.text)
        assert host and ipaddress.ip_address(host.group(1)) in ipaddress.ip_network(route.net), ev.text


@pytest.mark.live
@pytest.mark.parametrize("name", NAMES)
def test_fresh_run_leaves_no_process(fresh: Callable[[str], Fresh], name: str) -> None:
    left = fresh(name).leftovers
    assert not left, f"still running after the scenario (now killed): {sorted(left)}"
