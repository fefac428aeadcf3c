"""Cycle finder against brute force (hypothesis), and the cycles of the real deadlock samples."""

from __future__ import annotations

from itertools import permutations
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer import open_bundle
from analyzer.analyses.cycles import elementary_cycles, lock_order, strongly_connected

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _canon(cycle: list[int]) -> tuple[int, ...]:
    i = cycle.index(min(cycle))
    return tuple(cycle[i:] + cycle[:i])


def _brute_cycles(n: int, edges: set[tuple[int, int]]) -> set[tuple[int, ...]]:
    found = set()
    for k in range(1, n + 1):
        for perm in permutations(range(n), k):
            if perm[0] != min(perm):
                continue
            if all((perm[i], perm[(i + 1) % k]) in edges for i in range(k)):
                found.add(perm)
    return found


def _reach(n: int, edges: set[tuple[int, int]]) -> list[set[int]]:
    reach = [{i} for i in range(n)]
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            new = reach[b] - reach[a]
            if new:
                reach[a] |= new
                changed = True
    return reach


graphs = st.integers(min_value=1, max_value=6).flatmap(
    lambda n: st.tuples(st.just(n), st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=14)))


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_elementary_cycles_match_brute_force(graph: tuple[int, set[tuple[int, int]]]) -> None:
    n, edges = graph
    got = elementary_cycles(range(n), sorted(edges))
    assert len(got) == len({_canon(c) for c in got})  # each once
    assert {_canon(c) for c in got} == _brute_cycles(n, edges)
    assert got == elementary_cycles(range(n), sorted(edges, reverse=True))  # deterministic


@settings(max_examples=300, deadline=None)
@given(graphs)
def test_scc_membership(graph: tuple[int, set[tuple[int, int]]]) -> None:
    n, edges = graph
    reach = _reach(n, edges)
    comps = strongly_connected(range(n), sorted(edges))
    assert sorted(x for c in comps for x in c) == list(range(n))
    comp_of = {x: i for i, c in enumerate(comps) for x in c}
    for a in range(n):
        for b in range(n):
            assert (comp_of[a] == comp_of[b]) == (b in reach[a] and a in reach[b])


def test_self_loop_is_a_cycle_of_one() -> None:
    assert elementary_cycles(["a", "b"], [("a", "a"), ("a", "b")]) == [["a"]]


def test_lock_order_majority_and_tie_break() -> None:
    # two members take A before B, one takes B before A: keep A → B
    pairs = {("A", "B"): ({"t1", "t2"}, 1.0), ("B", "A"): ({"t3"}, 1.0)}
    assert lock_order(["B", "A"], pairs) == ["A", "B"]
    pairs = {("B", "A"): ({"t1", "t2"}, 1.0), ("A", "B"): ({"t3"}, 1.0)}
    assert lock_order(["A", "B"], pairs) == ["B", "A"]
    # equal support: the sorted order wins
    assert lock_order(["B", "A"], {("A", "B"): ({"t1"}, 1.0), ("B", "A"): ({"t2"}, 1.0)}) == ["A", "B"]


EXPECTED = {
    "deadlock-lock": ("lock", ["w1@sample/12466/12504", "w1@sample/12466/12505"],
                      ["lock:0x7f921f5db940", "lock:0x7f921f5db700"]),
    "deadlock-rlock": ("lock", ["w1@sample/13262/13283", "w1@sample/13262/13284"],
                       ["lock:0x7f5803523940", "lock:0x7f58017bfe40"]),
    "deadlock-pthread": ("mutex", ["w1@sample/13651/13662", "w1@sample/13651/13663"],
                         ["mutex:0x7f84314a0080 <mutex_b>", "mutex:0x7f84314a0040 <mutex_a>"]),
    "deadlock-fcntl": ("fcntl", ["pid:14327", "pid:14328"],
                       ["fcntl:fe:00:2146481:200-200", "fcntl:fe:00:2146481:100-100"]),
    "deadlock-postgres": ("db", ["pg:14476", "pg:14477"], ["pg:transaction 733", "pg:transaction 732"]),
    "deadlock-mariadb": ("db", ["mysql:trx 37", "mysql:trx 38"],
                         ["mysql:test.cpm_deadlock_accounts PRIMARY heap 2",
                          "mysql:test.cpm_deadlock_accounts PRIMARY heap 3"]),
}


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_cycle(sample: str) -> None:
    cycles = open_bundle(SAMPLES / sample).cycles
    assert cycles.height == 1
    row = cycles.row(0, named=True)
    kind, members, resources = EXPECTED[sample]
    assert (row["kind"], row["members"], row["resources"]) == (kind, members, resources)
    assert sorted(row["lock_order"]) == sorted(resources)
    assert row["evidence"] and all(":" in e for e in row["evidence"])


def test_sample_cycle_details() -> None:
    pg = open_bundle(SAMPLES / "deadlock-postgres").cycles.row(0, named=True)
    assert pg["task_ids"] == ["7f5ff827-863e-424d-aa2d-28aa44d36532"]
    assert {"postgresql.log:2", "postgresql.log:3", "worker.log:12"} <= set(pg["evidence"])
    fc = open_bundle(SAMPLES / "deadlock-fcntl").cycles.row(0, named=True)
    assert fc["inferred"] and "worker.log:12" in fc["evidence"]
    lk = open_bundle(SAMPLES / "deadlock-lock").cycles.row(0, named=True)
    assert lk["task_id"] == "6a2b690d-1fb8-4174-a9df-6b4fe37f5716"
    assert lk["lock_order"] == ["lock:0x7f921f5db700", "lock:0x7f921f5db940"]


@pytest.mark.parametrize("sample", ["lock-wait-many", "hang-socket-read", "healthy"])
def test_controls_have_no_cycle(sample: str) -> None:
    assert open_bundle(SAMPLES / sample).cycles.is_empty()


def test_cycles_through_several_kinds_of_wait_are_still_reported() -> None:
    """A thread cycle through a mutex and a Python lock (or a lock and a join) is a lock cycle;
    one through a lock and a database row is `mixed`. Both are deadlocks CP-X010 reports: the
    real deadlock-lock edges, one relabelled as each other kind of wait."""
    from analyzer.analyses.cycles import build
    from analyzer.engine.catalogue import load_catalogue
    from analyzer.engine.evaluate import evaluate

    waits = open_bundle(SAMPLES / "deadlock-lock").waits
    ring = build(waits).row(0, named=True)
    first = ring["resources"][0]
    x010 = [r for r in load_catalogue()[0] if r.id == "CP-X010"]
    for relabel, kind in (("mutex", "lock"), ("join", "lock"), ("db", "mixed")):
        edited = waits.with_columns(pl.when(pl.col("resource") == first).then(pl.lit(relabel))
                                    .otherwise(pl.col("kind")).alias("kind"))
        cycles = build(edited)
        assert cycles.height == 1 and cycles["kind"][0] == kind
        assert [f.rule for f in evaluate(x010, {"cycles": cycles})] == ["CP-X010"]
    for every in ("join", "flock", "lease"):  # a cycle of thread joins, or of flock / lease waits alone
        cycles = build(waits.with_columns(pl.lit(every).alias("kind")))
        assert cycles["kind"].to_list() == [every]
        assert [f.rule for f in evaluate(x010, {"cycles": cycles})] == ["CP-X010"]
