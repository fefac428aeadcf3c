"""Wait-for edges from real samples, and the two new parsers."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from analyzer import open_bundle
from analyzer.sources import innodb_status, proc_locks

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _edges(sample: str) -> set[tuple[str, str, str | None, str, bool]]:
    w = open_bundle(SAMPLES / sample).waits
    return {(r["waiter"], r["resource"], r["holder"], r["kind"], r["inferred"])
            for r in w.filter(pl.col("holder").is_not_null()).iter_rows(named=True)}


def test_pthread_owner_from_gdb_print_is_proven() -> None:
    assert _edges("deadlock-pthread") == {
        ("w1@sample/13651/13662", "mutex:0x7f84314a0080 <mutex_b>", "w1@sample/13651/13663", "mutex", False),
        ("w1@sample/13651/13663", "mutex:0x7f84314a0040 <mutex_a>", "w1@sample/13651/13662", "mutex", False),
    }


def test_python_lock_holders_from_locals_are_inferred() -> None:
    w = open_bundle(SAMPLES / "deadlock-lock").waits.filter(pl.col("holder").is_not_null() & (pl.col("kind") == "lock"))
    assert set(w["confidence"]) == {0.7}  # py-bt `with second:` confirms the nested acquisition
    assert _edges("deadlock-lock") == {
        ("w1@sample/12466/12504", "lock:0x7f921f5db940", "w1@sample/12466/12505", "lock", True),
        ("w1@sample/12466/12505", "lock:0x7f921f5db700", "w1@sample/12466/12504", "lock", True),
        # the task joins ledger-writer (py-spy --locals: the same <Thread at …> in Thread.join and its run)
        ("w1@sample/12466/12466", "thread:0x7f921f5dbd90", "w1@sample/12466/12504", "join", False),
    }
    assert {k for *_, k, _ in _edges("deadlock-rlock")} == {"rlock", "join"}


def test_fcntl_closing_edge_from_edeadlk() -> None:
    assert _edges("deadlock-fcntl") == {
        ("pid:14327", "fcntl:fe:00:2146481:200-200", "pid:14328", "fcntl", False),
        ("pid:14328", "fcntl:fe:00:2146481:100-100", "pid:14327", "fcntl", True),
    }


def test_postgres_edges_deduplicated_across_worker_and_server_log() -> None:
    w = open_bundle(SAMPLES / "deadlock-postgres").waits
    assert w.height == 2
    assert set(w["all_evidence"].explode()) == {"postgresql.log:2", "postgresql.log:3", "worker.log:12",
                                                 "worker.log:23", "worker.log:24"}


def test_innodb_edges() -> None:
    assert _edges("deadlock-mariadb") == {
        ("mysql:trx 37", "mysql:test.cpm_deadlock_accounts PRIMARY heap 2", "mysql:trx 38", "db", False),
        ("mysql:trx 38", "mysql:test.cpm_deadlock_accounts PRIMARY heap 3", "mysql:trx 37", "db", False),
    }


def test_controls_have_no_edges_with_holders() -> None:
    for sample in ("lock-wait-many", "hang-socket-read", "healthy"):
        # lock-wait-many's task joins reader-0: a true join edge (tests/analyses/test_join_waits.py), no lock holder
        assert {e for e in _edges(sample) if e[3] != "join"} == set(), sample


def test_proc_locks_parser() -> None:
    frame, cov = proc_locks.parse_text((SAMPLES / "deadlock-fcntl" / "proc-locks.txt").read_text(), source="p")
    assert cov.unrecognized == 0 and frame.height == 5
    assert frame.filter(pl.col("blocked"))["pid"].to_list() == [14327]
    assert frame["end"].null_count() == 2  # EOF


def test_innodb_parser() -> None:
    frame, _ = innodb_status.parse_text((SAMPLES / "deadlock-mariadb" / "innodb-status.txt").read_text(), source="s")
    assert frame.select("trx", "trx_id", "waiting", "heap_no").rows() == [
        (1, "37", True, 2), (1, "38", False, 2), (2, "38", True, 3), (2, "37", False, 3)]
    assert frame.filter(pl.col("rolled_back"))["trx"].unique().to_list() == [1]
    empty, cov = innodb_status.parse_text("nothing here\n", source="x")
    assert empty.is_empty() and cov.notes
