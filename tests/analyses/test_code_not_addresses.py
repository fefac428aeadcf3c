"""Reports name code, not addresses: every lock, wait and cycle says which function and line takes
and waits; an address (which changes every run) appears only as an evidence detail."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from analyzer import open_bundle
from analyzer.analyses import cycles, threads
from analyzer.analyses.waits import WAITS_FULL
from analyzer.schema import WAITS, conform

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
# findings about locks, waits and cycles, and the stuck task they leave behind
LOCK_CATEGORIES = {"deadlock.lock_cycle", "lock.wait", "deadlock.fork", "io.blocking", "task.stuck",
                   "deadlock.edeadlk", "deadlock.database"}
LOCK_SAMPLES = ("deadlock-lock", "deadlock-rlock", "deadlock-pthread", "deadlock-fcntl", "deadlock-pipe",
                "deadlock-queue", "deadlock-postgres", "deadlock-mariadb", "fork-lock", "lock-wait-many",
                "hang-db-query", "hang-socket-read", "heartbeat-stall-hang")


@pytest.mark.parametrize("sample", LOCK_SAMPLES)
def test_lock_and_cycle_messages_carry_no_address(sample: str) -> None:
    report = open_bundle(SAMPLES / sample).report()
    found = [f for f in report.findings if f.category in LOCK_CATEGORIES]
    assert found, f"{sample}: no lock, wait or cycle finding to check"
    for f in found:
        texts = [f.summary, *f.remediation]
        if f.id in report.advice:
            texts.append(json.dumps(report.advice[f.id].to_dict()))
        for text in texts:
            assert not ADDRESS.search(text), f"{sample} {f.id} {f.category}: {text}"


def test_deadlock_lock_proposes_an_order_in_terms_of_code() -> None:
    report = open_bundle(SAMPLES / "deadlock-lock").report()
    cycle = next(f for f in report.findings if f.category == "deadlock.lock_cycle")
    assert ("Take the locks in one order everywhere: `ledger_lock` before `audit_lock` "
            "(as reconcile_accounts (proj.py:44) names them)") in cycle.summary
    assert ('"audit-writer" (tid 12505) takes them the other way round: it holds `audit_lock` '
            "(in take (proj.py:31), as `first`) and waits for `ledger_lock` in take (proj.py:31) `with second:`"
            ) in cycle.summary
    # the addresses are still there, as the evidence's detail
    assert "lock:0x7f921f5db940" in cycle.evidence[0].detail


def test_a_pthread_cycle_names_the_c_code_path_of_each_thread() -> None:
    c = open_bundle(SAMPLES / "deadlock-pthread").cycles.row(0, named=True)
    assert c["cycle_text"].startswith(
        '"native-ab" (tid 13662) waits in hold_then_take (deadlock.c:15) from take_a_then_b (deadlock.c:22) '
        'for `mutex_b`, held by "native-ba" (tid 13663), which holds it in hold_then_take (deadlock.c:15) as `first`')
    assert c["lock_order_text"].startswith("`mutex_a` before `mutex_b`; \"native-ba\" (tid 13663) takes them")


def test_a_name_that_stands_for_two_locks_names_neither() -> None:
    """`first` and `second` are each lock in one of the two calls of `take`: only the names the task
    gave them (`ledger_lock`, `audit_lock`) tell them apart."""
    w = open_bundle(SAMPLES / "deadlock-lock").waits.filter(pl.col("kind") == "lock")
    got = {r: (n, where) for r, n, where in w.select("resource", "resource_name", "resource_named_in").rows()}
    assert got["lock:0x7f921f5db700"] == ("ledger_lock", "reconcile_accounts (proj.py:44)")
    assert got["lock:0x7f921f5db940"] == ("audit_lock", "reconcile_accounts (proj.py:44)")


def _waits(rows: list[dict[str, object]]) -> pl.DataFrame:
    base = {k: None for k in WAITS_FULL}
    return conform(pl.DataFrame([{**base, **r} for r in rows], schema=WAITS_FULL), WAITS)


def test_an_unnamed_lock_is_described_by_the_holder_s_variable_and_frame() -> None:
    a, b = "w1@h/10/11", "w1@h/10/12"
    w = _waits([
        {"waiter": a, "resource": "lock:0xaaa0", "holder": b, "kind": "lock", "confidence": 0.7, "inferred": True,
         "evidence": "d.txt:1", "waiter_name": "x", "holder_name": "y", "waiter_frame": "f (m.py:4): with B:",
         "holder_frame": "g (m.py:9) holds `B`"},
        {"waiter": b, "resource": "lock:0xbbb0", "holder": a, "kind": "lock", "confidence": 0.7, "inferred": True,
         "evidence": "d.txt:2", "waiter_name": "y", "holder_name": "x", "waiter_frame": "g (m.py:9): with A:",
         "holder_frame": "f (m.py:4) holds `A`"},
    ])
    row = cycles.build(w).row(0, named=True)
    assert row["cycle_text"] == (
        '"x" (tid 11) waits in f (m.py:4) `with B:` for a lock, held by "y" (tid 12), which holds it in g (m.py:9) '
        'as `B`; "y" (tid 12) waits in g (m.py:9) `with A:` for a lock, held by "x" (tid 11), which holds it in '
        'f (m.py:4) as `A`')
    assert row["lock_order_text"] == (
        '`B` of g (m.py:9) before `A` of f (m.py:4); "x" (tid 11) takes them the other way round: it holds '
        '`A` of f (m.py:4) and waits for `B` of g (m.py:9) in f (m.py:4) `with B:`')
    assert "0xaaa0" in row["message"]


def test_a_gdb_thread_gets_the_python_line_another_dump_of_it_shows() -> None:
    t = pl.DataFrame({
        "source": ["gdb.txt", "pyspy.txt", "gdb.txt"], "line": [1, 1, 9], "host": ["w1", "w1", "w1"],
        "pid": [10, 10, 10], "tid": [11, 11, 12],
        "top": ["futex_wait (futex.c:1)", "take (proj.py:31)", "futex_wait (futex.c:1)"],
        "code": ["futex_wait (futex.c:1)", "take (proj.py:31)", "futex_wait (futex.c:1)"],
        "code_from": ["top", "app", "top"],
    })
    got = threads.fill_code(t)
    assert got["code"].to_list() == ["take (proj.py:31)", "take (proj.py:31)", "futex_wait (futex.c:1)"]
    assert got["code_from"].to_list() == ["app", "app", "top"]


def test_lock_wait_names_the_python_line_of_a_gdb_thread() -> None:
    report = open_bundle(SAMPLES / "deadlock-lock").report()
    wait = next(f for f in report.findings if f.category == "lock.wait")
    assert "waits in take (proj.py:31)" in wait.summary and "futex" not in wait.summary
