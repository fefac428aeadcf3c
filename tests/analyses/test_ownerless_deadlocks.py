"""Lock cycles whose holders no dump shows (module-level locks, a C extension's static mutexes):
inferred when every thread of the process is blocked on a different lock and nothing moved."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from analyzer import open_bundle
from analyzer.analyses.waits import OWNERLESS_VIA, _unique_assignment
from analyzer.api import Bundle

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ADDRESS = re.compile(r"0x[0-9a-f]{6,}")


def _copy(tmp_path: Path, sample: str, drop: tuple[str, ...] = ()) -> Path:
    dst = tmp_path / sample
    shutil.copytree(SAMPLES / sample, dst)
    for name in drop:
        (dst / name).unlink()
    return dst


def _rules(b: Bundle) -> dict[str, str]:
    return {f.rule: f.category for f in b.report().findings}


@pytest.mark.parametrize(("sample", "kind", "names"), [
    ("deadlock-lock-global", "lock", {"ledger_lock", "audit_lock"}),
    ("deadlock-pthread-extension", "mutex", {"ledger_mutex", "audit_mutex"}),
])
def test_two_threads_on_each_others_global_locks_are_an_inferred_cycle(sample: str, kind: str,
                                                                        names: set[str]) -> None:
    b = open_bundle(SAMPLES / sample)
    [c] = b.cycles.to_dicts()
    assert (c["kind"], c["holders_seen"], c["inferred"], c["confidence"]) == (kind, False, True, 0.6)
    # the two writers; the main thread, joining them, waits on a third lock but is no member
    held = b.waits.filter((pl.col("kind") == kind) & pl.col("holder").is_not_null())
    assert sorted(c["members"]) == sorted(held["waiter"]) == sorted(held["holder"])
    # each thread, the lock it waits on by the code's name, and where it waits
    for name in names:
        assert f"`{name}`" in c["cycle_text"]
    assert "ledger-writer" in c["cycle_text"] and "audit-writer" in c["cycle_text"]
    assert ("post_ledger (proj.py:33) `with audit_lock:`" in c["cycle_text"] if kind == "lock"
            else "post_ledger (ledger.c:21)" in c["cycle_text"])
    assert OWNERLESS_VIA in c["cycle_text"] and "successive dumps" in c["cycle_text"]
    assert not ADDRESS.search(c["cycle_text"]) and not ADDRESS.search(c["lock_order_text"])
    rules = _rules(b)
    assert rules.get("CP-X011") == "deadlock.lock_cycle" and "CP-X010" not in rules


def test_one_dump_gives_lower_confidence() -> None:
    text = (SAMPLES / "deadlock-lock-global" / "gdb-py-bt.txt").read_text()
    [c] = Bundle.from_text(text, name="gdb-py-bt.txt").cycles.to_dicts()
    assert (c["holders_seen"], c["confidence"]) == (False, 0.5)
    assert "in the one dump of each" in c["cycle_text"]


def test_a_thread_that_moved_between_dumps_is_no_deadlock(tmp_path: Path) -> None:
    d = _copy(tmp_path, "deadlock-lock-global")
    second = next(d.glob("pyspy-*-2.txt"))
    text = second.read_text()
    assert "post_ledger (proj.py:33)" in text
    second.write_text(text.replace("post_ledger (proj.py:33)", "post_ledger (proj.py:34)"))
    b = open_bundle(d)
    assert b.cycles.is_empty()
    assert "CP-X011" not in _rules(b)


def test_a_thread_that_could_release_a_lock_prevents_the_inference() -> None:
    text = (SAMPLES / "deadlock-lock-global" / "gdb-py-bt.txt").read_text()
    sleeper = ('Thread 4 (Thread 0x7fa4350000c0 (LWP 13090) "celery"):\n'
               "Traceback (most recent call first):\n"
               "  <built-in function sleep>\n"
               '  File "/tmp/proj.py", line 60, in flush_journal\n'
               "    time.sleep(1)\n\n")
    text = text.replace('Thread 3 (Thread', sleeper + 'Thread 3 (Thread', 1)
    b = Bundle.from_text(text, name="gdb-py-bt.txt")
    assert b.threads.filter(pl.col("tid") == 13090)["state"].to_list() == ["sleep"]
    assert b.cycles.is_empty()


def test_threads_queued_on_one_lock_are_a_lock_wait() -> None:
    b = open_bundle(SAMPLES / "lock-wait-many")
    assert b.cycles.is_empty()
    assert "CP-H002" in _rules(b) and "CP-X011" not in _rules(b)


def test_rlock_owners_printed_by_gdb_prove_the_cycle() -> None:
    b = open_bundle(SAMPLES / "deadlock-rlock-global")
    [c] = b.cycles.to_dicts()
    assert (c["holders_seen"], c["inferred"], c["confidence"]) == (True, False, 1.0)
    rlock = b.waits.filter(pl.col("kind") == "rlock")
    assert set(rlock["via"]) == {"RLock owner"}
    # the owner's `$N = IDENT` line in the second gdb dump is evidence of each edge
    assert all(any(ev.startswith("gdb-bt-2.txt:") for ev in evs) for evs in rlock["all_evidence"])
    assert _rules(b).get("CP-X010") == "deadlock.lock_cycle"


def test_rlock_without_printed_owners_is_inferred(tmp_path: Path) -> None:
    d = _copy(tmp_path, "deadlock-rlock-global")
    bt = d / "gdb-bt-2.txt"
    bt.write_text("".join(ln for ln in bt.read_text().splitlines(keepends=True) if not ln.startswith("$")))
    [c] = open_bundle(d).cycles.to_dicts()
    assert (c["holders_seen"], c["inferred"], c["confidence"]) == (False, True, 0.6)


def test_unique_assignment() -> None:
    two = {"A": "L1", "B": "L2"}
    assert _unique_assignment(two, {}) == {"L1": "B", "L2": "A"}
    three = {"A": "L1", "B": "L2", "C": "L3"}
    assert _unique_assignment(three, {}) is None  # A→B→C→A or A→C→B→A
    assert _unique_assignment(three, {"L1": "B"}) == {"L1": "B", "L2": "C", "L3": "A"}
    assert _unique_assignment(two, {"L1": "A"}) is None  # an observed owner contradicting the only way


def test_without_py_bt_the_locks_are_named_by_the_address_gdb_shows(tmp_path: Path) -> None:
    """No py-bt line says `with audit_lock:` and no frame has the lock in its locals: gdb's
    `lock_PyThread_acquire_lock (self=…)` is all that names it; py-spy still shows the main thread joining."""
    b = open_bundle(_copy(tmp_path, "deadlock-lock-global", drop=("gdb-py-bt.txt",)))
    [c] = b.cycles.to_dicts()
    assert c["holders_seen"] is False
    assert "waits in post_ledger (proj.py:33) for the lock at 0x7fa436fac8c0" in c["cycle_text"]


THIRD = ('Thread 4 (Thread 0x7fa4350000c0 (LWP 13090) "celery"):\n'
         "Traceback (most recent call first):\n"
         "  <built-in method __enter__ of _thread.lock object at remote 0x7fa436aa0000>\n"
         '  File "/tmp/proj.py", line 49, in post_journal\n'
         "    with journal_lock:\n\n")


def test_three_threads_on_three_locks_are_one_deadlock_whose_cycle_is_not_known() -> None:
    """Built from the real py-bt plus a third writer on a third module-level lock: two rings (A→B→C and
    A→C→B) fit, so no holder is guessed; one row names all three waits."""
    text = (SAMPLES / "deadlock-lock-global" / "gdb-py-bt.txt").read_text()
    b = Bundle.from_text(text.replace("Thread 3 (Thread", THIRD + "Thread 3 (Thread", 1), name="gdb-py-bt.txt")
    assert b.waits.filter(pl.col("kind") == "lock")["holder"].null_count() == b.waits.filter(
        pl.col("kind") == "lock").height
    [c] = b.cycles.to_dicts()
    assert (c["kind"], len(c["members"]), c["holders_seen"], c["lock_order"]) == ("lock", 3, False, [])
    for name in ("journal_lock", "audit_lock", "ledger_lock"):
        assert f"`{name}`" in c["cycle_text"] and f"`{name}`" in c["lock_order_text"]
    assert "which of the 3 threads holds which lock is not known" in c["cycle_text"]
    assert {f.rule for f in b.report().findings} >= {"CP-X011"}
