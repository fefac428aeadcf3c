"""Process and pipe edges of the wait-for graph, and the pipe cycle, on samples/deadlock-pipe: proven
from /proc, inferred from ps and stacks when /proc is missing, absent when nothing links the two."""

from __future__ import annotations

import json
from collections.abc import Sequence

import polars as pl
import pytest

from analyzer import open_bundle
from analyzer.analyses import cycles, waits
from analyzer.api import Bundle
from tests.conftest import SAMPLES, sample_dirs

PIPE = SAMPLES / "deadlock-pipe"
POOL, CHILD, INODE = 14700, 14714, 26446
P, C = f"w1@sample/{POOL}/{POOL}", f"w1@sample/{CHILD}/{CHILD}"
BASE = ("worker.log", "inspect-active.json", "inspect-stats.json")
PLAIN = (f"pyspy-{POOL}.txt", f"pyspy-{CHILD}.txt")
LOCALS = (f"pyspy-locals-{POOL}.txt", f"pyspy-locals-{CHILD}.txt")
CONN = "pipe:? <Connection at 0x7f40fdc82a10>"  # the `writer` Connection: its address in both processes


def _bundle(files: Sequence[str]) -> Bundle:
    return open_bundle([PIPE / f for f in (*BASE, *files)])


def _edges(files: Sequence[str]) -> dict[str, tuple[str, str, str, float, bool]]:
    w = _bundle(files).waits.filter(pl.col("holder").is_not_null())
    return {r["kind"]: (r["waiter"], r["resource"], r["holder"], r["confidence"], r["inferred"])
            for r in w.iter_rows(named=True)}


def test_proven_from_proc_syscall_and_fd_listings() -> None:
    b = open_bundle(PIPE)
    w = b.waits
    assert w.select("waiter", "resource", "holder", "kind", "confidence", "inferred").sort("kind").rows() == [
        (C, f"pipe:[{INODE}]", P, "pipe", 1.0, False),
        (P, f"process:{CHILD}", C, "process", 1.0, False),
    ]
    full = waits.build(b._wait_frames()).sort("kind")
    pipe, proc = full.row(0, named=True), full.row(1, named=True)
    # wait4(14714) and write(11): the syscall lines; fd 11 of the child and fd 10 (read end) of the pool child
    assert {"proc-state.txt:2", "proc-state.txt:3"} <= set(proc["all_evidence"])
    assert {"proc-state.txt:9", "proc-state.txt:10", "proc-fd.txt:31", "proc-fd.txt:5"} <= set(pipe["all_evidence"])
    assert pipe["waiter_frame"].startswith("Connection._send (connection.py:409)")
    assert "write(11)" in pipe["waiter_frame"] and pipe["holder_frame"] == f"process {POOL} holds the read end (fd 10)"
    assert proc["waiter_frame"] == f"Popen.poll (popen_fork.py:31); procfs: wait4({CHILD}) in do_wait"
    # the child is in no inspect output: it gets its parent's node and task
    assert pipe["host"] == "w1@sample" and pipe["task_id"] == proc["task_id"] is not None


def test_the_cycle_and_what_breaks_it() -> None:
    c = open_bundle(PIPE).cycles
    assert c.height == 1
    row = c.row(0, named=True)
    assert (row["kind"], row["members"], row["resources"]) == ("pipe", [P, C], [f"process:{CHILD}", f"pipe:[{INODE}]"])
    assert row["lock_order"] == [f"pipe:[{INODE}]", f"process:{CHILD}"]
    assert row["lock_order_text"].startswith(f"drain pipe:[{INODE}] before waiting for process {CHILD}")
    assert row["message"] == (f'{P} "MainThread" waits for process:{CHILD} held by {C} "MainThread"; '
                              f'{C} "MainThread" waits for pipe:[{INODE}] held by {P} "MainThread"')
    assert row["cycle_text"] == (
        f'"MainThread" (tid {POOL}) waits in Popen.poll (popen_fork.py:31) for its child, process {CHILD}, to exit; '
        f'"MainThread" (tid {CHILD}) waits in Connection._send (connection.py:409) for pipe:[{INODE}], held by '
        f'"MainThread" (tid {POOL}) (process {POOL} holds the read end (fd 10))')
    full = cycles.build(open_bundle(PIPE).waits)
    assert full["confidence"].to_list() == [1.0] and full["inferred"].to_list() == [False]


@pytest.mark.parametrize(("files", "process", "pipe"), [
    # ps: do_wait and anon_pipe_write, and the child's ppid; no syscall, so no fd and no pid from the kernel
    ((*PLAIN, "ps.txt"), (f"process:{CHILD}", 0.8), (f"pipe:? {CHILD}↔{POOL}", 0.7)),
    # py-spy --locals alone: the joined <Process at …> runs in the child, which sends on the task's `writer`
    (LOCALS, (f"process:{CHILD}", 0.8), (CONN, 0.7)),
    (("pyspy-subprocesses.txt",), (f"process:{CHILD}", 0.8), (CONN, 0.7)),
    # the child's stack and ps: ps's WCHAN says the parent sleeps in do_wait, and the child is its only one
    ((f"pyspy-locals-{CHILD}.txt", "ps.txt"), (f"process:{CHILD}", 0.8), (CONN, 0.7)),
])
def test_inferred_without_proc(files: tuple[str, ...], process: tuple[str, float], pipe: tuple[str, float]) -> None:
    e = _edges(files)
    assert e["process"] == (P, process[0], C, process[1], True)
    assert e["pipe"] == (C, pipe[0], P, pipe[1], True)
    c = _bundle(files).cycles
    assert c["kind"].to_list() == ["pipe"] and c["members"].to_list() == [[P, C]]


def test_syscall_without_fd_listing_proves_the_wait_not_the_pipe() -> None:
    e = _edges((*PLAIN, "proc-state.txt"))
    assert e["process"] == (P, f"process:{CHILD}", C, 1.0, False)
    assert e["pipe"] == (C, f"pipe:? {CHILD}↔{POOL}", P, 0.7, True)


@pytest.mark.parametrize("files", [
    PLAIN,  # two stacks and nothing that says one is the other's child
    (f"pyspy-locals-{POOL}.txt",),  # the join alone
    (f"pyspy-locals-{CHILD}.txt",),  # the blocked writer alone (its parent's wait unknown)
    ("proc-fd.txt", *PLAIN),  # fds without the syscall that says which one is written
])
def test_no_edge_without_a_link(files: tuple[str, ...]) -> None:
    assert _edges(files) == {}


def test_kernel_asleep_elsewhere_overrides_the_stack() -> None:
    """A stack in Connection._send whose process the kernel saw in epoll is not blocked on the pipe."""
    frames = open_bundle(PIPE)._wait_frames()
    frames["processes"] = frames["processes"].with_columns(
        pl.when(pl.col("pid") == CHILD).then(pl.lit("do_epoll_wait")).otherwise(pl.col("wchan")).alias("wchan"),
        pl.when(pl.col("pid") == CHILD).then(None).otherwise(pl.col("kstack")).alias("kstack"))
    assert waits.build(frames).filter(pl.col("kind") == "pipe").is_empty()
    assert waits.build(frames).filter(pl.col("kind") == "process").height == 1


def test_read_direction_gets_its_own_advice() -> None:
    """A child blocked *reading* a pipe its joining parent should feed: the fix is to write or close it."""
    frames = open_bundle(PIPE)._wait_frames()
    procs = frames["processes"]
    frames["processes"] = procs.with_columns(
        pl.when(pl.col("pid") == CHILD).then(pl.lit("anon_pipe_read")).otherwise(pl.col("wchan")).alias("wchan"),
        pl.when(pl.col("pid") == CHILD).then(pl.lit(["anon_pipe_read", "vfs_read", "ksys_read", "do_syscall_64"]))
        .otherwise(pl.col("kstack")).alias("kstack"),
        pl.when(pl.col("pid") == CHILD).then(0).otherwise(pl.col("syscall")).alias("syscall"),
        pl.when(pl.col("pid") == CHILD).then(pl.lit(["0xa", "0x0", "0x0", "0x0", "0x0", "0x0"]))
        .otherwise(pl.col("syscall_args")).alias("syscall_args"))  # read(10): the read end
    frames["frames"] = frames["frames"].filter(pl.col("pid") != CHILD)  # no stack to disagree
    w = waits.build(frames)
    pipe = w.filter(pl.col("kind") == "pipe").row(0, named=True)
    assert (pipe["waiter"], pipe["resource"], pipe["holder"]) == (C, f"pipe:[{INODE}]", P)  # fd 11: POOL's write end
    text = cycles.build(w).row(0, named=True)["lock_order_text"]
    assert text.startswith(f"write or close pipe:[{INODE}] before waiting for process {CHILD}")


def test_every_sample_gives_exactly_its_expected_cycles() -> None:
    """No false pipe/process/join edges: only the pipe deadlocks have pipe and process edges, only the
    samples whose task (or child) is in Thread.join have join edges, and a sample that declares no
    cycles has none."""
    joins = set()
    for sample in sample_dirs():
        exp = json.loads((sample / "expected.json").read_text())
        b = open_bundle(sample, log_formats=exp.get("log_format", []))
        got = sorted((r["kind"], len(r["members"])) for r in b.cycles.iter_rows(named=True))
        assert got == sorted((c["kind"], c["members"]) for c in exp.get("cycles", [])), sample.name
        kinds = set(b.waits.filter(pl.col("holder").is_not_null())["kind"])
        if sample.name not in ("deadlock-pipe", "deadlock-queue"):
            assert not kinds & {"pipe", "process"}, sample.name
        if "join" in kinds:
            joins.add(sample.name)
    assert joins == {"deadlock-lock", "deadlock-rlock", "lock-wait-many", "deadlock-queue", "deadlock-lock-global",
                     "deadlock-rlock-global"}


def test_parent_line_of_a_subprocesses_dump_links_the_two_without_locals_ps_or_proc() -> None:
    """Without --locals (no Process address to match) and without ps or /proc, py-spy's
    `Parent Process 14700` line is what says 14714 is the joined child."""
    frames = _bundle(("pyspy-subprocesses.txt",))._wait_frames()
    frames["frames"] = frames["frames"].with_columns(pl.lit(None, dtype=pl.String).alias("locals"))
    w = waits.build(frames)
    full = {r["kind"]: r for r in w.iter_rows(named=True)}
    assert (full["process"]["waiter"], full["process"]["resource"], full["process"]["holder"]) == (
        P, f"process:{CHILD}", C)
    assert full["process"]["via"] == "the only known child (ppid)"
    # the Parent Process line
    assert any(e.endswith("/pyspy-subprocesses.txt:291") for e in full["process"]["all_evidence"])
    assert (full["pipe"]["waiter"], full["pipe"]["holder"], full["pipe"]["confidence"]) == (C, P, 0.6)
    assert cycles.build(w)["kind"].to_list() == ["pipe"]
    del frames["processes"]  # the same stacks without that line: nothing links them
    assert waits.build(frames).is_empty()
