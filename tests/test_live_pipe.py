"""Regenerate samples/deadlock-pipe and samples/deadlock-queue with a real worker now and hold each
fresh bundle to its committed `expected.json`: the pipe cycles come from what this kernel and py-spy
print today, not from one frozen run. Needs redis-server and py-spy; skips without them, fails under
CPM_REQUIRE_LIVE=1."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from analyzer import Bundle, open_bundle
from tests.conftest import SAMPLES, require
from tests.test_live_samples import NEEDS, _generator
from tests.test_samples import live_cases, run_check

NAMES = ["deadlock-pipe", "deadlock-queue"]

# What each committed sample proves, one row per wait edge: (kind, inferred, confidence, waiter thread,
# holder thread, whether both are in one process, resource type). Pids, inodes and addresses change
# per run and are left out.
EDGES = {
    "deadlock-pipe": [
        ("pipe", False, 1.0, "MainThread", "MainThread", False, "pipe"),
        ("process", False, 1.0, "MainThread", "MainThread", False, "process"),
    ],
    "deadlock-queue": [
        ("join", False, 1.0, "MainThread", "QueueFeederThread", True, "thread"),
        ("pipe", False, 1.0, "QueueFeederThread", "MainThread", False, "pipe"),
        ("process", False, 1.0, "MainThread", "MainThread", False, "process"),
    ],
}

T = TypeVar("T")
RUN_TAG = "CPM_LIVE_RUN"


def once(make: Callable[[str], T]) -> Callable[[str], T]:
    """`make(name)` at most once per name: a scenario takes seconds, and one that failed or skipped
    fails or skips every later test of its sample the same way instead of running again."""
    made: dict[str, T] = {}
    raised: dict[str, BaseException] = {}

    def get(name: str) -> T:
        if name in raised:
            raise raised[name]
        if name not in made:
            try:
                made[name] = make(name)
            except BaseException as e:  # pytest's skip and fail outcomes too
                raised[name] = e
                raise
        return made[name]

    return get


def _tagged(value: str) -> set[int]:
    want = f"{RUN_TAG}={value}".encode()
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to read
                if want in (d / "environ").read_bytes().split(b"\0"):
                    pids.add(int(d.name))
    return pids


@contextlib.contextmanager
def no_leftovers() -> Iterator[set[int]]:
    """Around one scenario run. Every process the run starts (worker, pool, broker, their children)
    inherits a variable unique to it, so other sessions' workers are never mistaken for ours. On exit,
    also when the run failed, ours still alive are killed by pid and left in the yielded set."""
    value = uuid.uuid4().hex
    left: set[int] = set()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(RUN_TAG, value)
        try:
            yield left
        finally:
            left |= _tagged(value)
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _process(member: str) -> str:
    """`host/pid` of a `host/pid/tid` member."""
    return member.rsplit("/", 1)[0]


Shape = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _shape(bundle: Bundle) -> Shape:
    """The waits and cycles of a bundle without what differs between two runs of one scenario."""
    edges: list[tuple[Any, ...]] = sorted(
        (r["kind"], r["inferred"], r["confidence"], r["waiter_name"], r["holder_name"],
         _process(r["waiter"]) == _process(r["holder"]), r["resource"].split(":", 1)[0])
        for r in bundle.waits.iter_rows(named=True))
    cycles: list[tuple[Any, ...]] = sorted(
        (r["kind"], len(r["members"]), len({_process(m) for m in r["members"]}),
         sorted(x.split(":", 1)[0] for x in r["resources"]))
        for r in bundle.cycles.iter_rows(named=True))
    return edges, cycles


@dataclass(frozen=True)
class Fresh:
    out: Path
    leftovers: set[int]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Fresh]:
    root = tmp_path_factory.mktemp("live-pipe")

    def regenerate(name: str) -> Fresh:
        scenarios, produce = _generator()
        sc = scenarios[name]
        require(*(NEEDS[n] for n in sc.needs))
        with no_leftovers() as left:
            out: Path = produce(sc, root)
        shutil.copyfile(SAMPLES / name / "expected.json", out / "expected.json")
        return Fresh(out, left)

    return once(regenerate)


@pytest.mark.live
@pytest.mark.parametrize(("name", "check_id"), live_cases(NAMES))
def test_fresh_run_meets_expectations(fresh: Callable[[str], Fresh], name: str, check_id: str) -> None:
    run_check(fresh(name).out, check_id)


@pytest.mark.live
@pytest.mark.parametrize("name", NAMES)
def test_fresh_run_proves_the_committed_cycle(fresh: Callable[[str], Fresh], name: str) -> None:
    got = _shape(open_bundle(fresh(name).out))
    assert got == _shape(open_bundle(SAMPLES / name))
    assert got[0] == EDGES[name]
    assert got[1] == [("pipe", len(EDGES[name]), 2, sorted(e[-1] for e in EDGES[name]))]


@pytest.mark.live
@pytest.mark.parametrize("name", NAMES)
def test_fresh_run_leaves_no_process(fresh: Callable[[str], Fresh], name: str) -> None:
    left = fresh(name).leftovers
    assert not left, f"still running after the scenario (now killed): {sorted(left)}"
