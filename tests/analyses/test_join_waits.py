"""Thread-join edges of the wait-for graph and the Queue form of the pipe deadlock, on
samples/deadlock-queue: the child's main thread joins its queue feeder at exit, the feeder is blocked
writing the queue's pipe, the task joins the child before get(). Negative cases on the same real frames:
a join whose target is not blocked closes no cycle, a join whose target cannot be identified is no edge."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analyzer import open_bundle
from analyzer.analyses import cycles, waits
from tests.conftest import SAMPLES

QUEUE = SAMPLES / "deadlock-queue"
POOL, CHILD, FEEDER, INODE = 25230, 25241, 25242, 60646
THREAD = "thread:0x7ff5f7a78150"  # the feeder's Thread object: `self` of Thread.join and of Thread.run
P, C, F = f"w1@sample/{POOL}/{POOL}", f"w1@sample/{CHILD}/{CHILD}", f"w1@sample/{CHILD}/{FEEDER}"
BASE = ("worker.log", "inspect-active.json", "inspect-stats.json")


def _frames(files: Sequence[str] | None = None) -> dict[str, pl.DataFrame]:
    b = open_bundle(QUEUE if files is None else [QUEUE / f for f in (*BASE, *files)])
    return b._wait_frames()


def _joins(frames: dict[str, pl.DataFrame]) -> list[tuple[str, str, str]]:
    return waits.build(frames).filter(pl.col("kind") == "join").select("waiter", "resource", "holder").rows()


def test_every_link_is_proven() -> None:
    w = open_bundle(QUEUE).waits
    assert w.select("waiter", "resource", "holder", "kind", "confidence", "inferred").sort("kind").rows() == [
        (C, THREAD, F, "join", 1.0, False),
        (F, f"pipe:[{INODE}]", P, "pipe", 1.0, False),
        (P, f"process:{CHILD}", C, "process", 1.0, False),
    ]
    join = waits.build(_frames()).filter(pl.col("kind") == "join").row(0, named=True)
    # the join frame, the feeder's Thread.run frame (same `self`), and the kernel's futex wait of the joiner
    assert set(join["all_evidence"]) == {"pyspy-subprocesses.txt:293", "pyspy-subprocesses.txt:676",
                                         "proc-state.txt:9"}
    assert join["waiter_frame"] == ("Thread._wait_for_tstate_lock (threading.py:1139) in Queue._finalize_join "
                                    "(queues.py:209); kernel: futex_do_wait")
    assert join["holder_frame"] == f"thread {FEEDER} runs the joined Thread object (Thread.run (threading.py:982))"
    assert (join["waiter_name"], join["holder_name"]) == ("MainThread", "QueueFeederThread")
    assert join["task_id"] == join["holder_task_id"] is not None  # the child inherits its parent's task


def test_the_three_member_cycle_and_what_breaks_it() -> None:
    c = open_bundle(QUEUE).cycles
    assert c.height == 1
    row = c.row(0, named=True)
    assert (row["kind"], row["members"], row["resources"]) == (
        "pipe", [P, C, F], [f"process:{CHILD}", THREAD, f"pipe:[{INODE}]"])
    # the evidence's detail keeps ids and the Thread object's address; the message names threads and code
    assert row["message"] == (
        f'{P} "MainThread" waits for process:{CHILD} held by {C} "MainThread"; '
        f'{C} "MainThread" waits for {THREAD} held by {F} "QueueFeederThread"; '
        f'{F} "QueueFeederThread" waits for pipe:[{INODE}] held by {P} "MainThread"')
    assert row["cycle_text"] == (
        f'"MainThread" (tid {POOL}) waits in Popen.poll (popen_fork.py:31) for its child, process {CHILD}, to exit; '
        f'"MainThread" (tid {CHILD}) waits in Queue._finalize_join (queues.py:209) for "QueueFeederThread" '
        f'(tid {FEEDER}) to finish; "QueueFeederThread" (tid {FEEDER}) waits in Connection._send (connection.py:409) '
        f'for pipe:[{INODE}], held by "MainThread" (tid {POOL}) (process {POOL} holds the read end (fd 10))')
    assert row["lock_order"] == [f"pipe:[{INODE}]", f"process:{CHILD}", THREAD]
    assert row["lock_order_text"].startswith(
        f"drain the queue — get() every item — before join(): pipe:[{INODE}] must be read before process {CHILD} "
        f'can exit (at exit its main thread joins the queue\'s feeder thread, "QueueFeederThread" (tid {FEEDER})')
    full = cycles.build(open_bundle(QUEUE).waits)
    assert full["confidence"].to_list() == [1.0] and full["inferred"].to_list() == [False]


def test_stacks_alone_close_the_cycle() -> None:
    """Without /proc or ps: the joined Process runs in the child, the feeder sends on a Connection of a
    child its parent waits for, and the join is proven from py-spy --locals."""
    w = waits.build(_frames(("pyspy-subprocesses.txt",)))
    got = {r["kind"]: (r["waiter"], r["holder"], r["confidence"], r["inferred"]) for r in w.iter_rows(named=True)}
    assert got == {"join": (C, F, 1.0, False), "pipe": (F, P, 0.6, True), "process": (P, C, 0.8, True)}
    c = cycles.build(w)
    assert c["kind"].to_list() == ["pipe"] and c["members"].to_list() == [[P, C, F]]


def test_a_join_on_a_thread_that_is_not_blocked_closes_no_cycle() -> None:
    """The feeder's stack without its send frames: still the joined thread, no longer blocked on the pipe."""
    frames = _frames(("pyspy-subprocesses.txt",))
    fr = frames["frames"]
    feeder = (pl.col("tid") == FEEDER) & (pl.col("depth") < 3)  # Connection._send … send_bytes
    frames["frames"] = fr.filter(~feeder).with_columns(
        pl.when(pl.col("tid") == FEEDER).then(pl.col("depth") - 3).otherwise(pl.col("depth")).alias("depth"))
    w = waits.build(frames)
    assert sorted(w["kind"]) == ["join", "process"]
    assert cycles.build(w).is_empty()


def test_real_joins_of_threads_blocked_elsewhere_keep_their_cycles() -> None:
    """lock-wait-many: the task joins reader-0, parked on a lock nobody in the cycle holds: an edge, no cycle."""
    b = open_bundle(SAMPLES / "lock-wait-many")
    j = b.waits.filter(pl.col("kind") == "join")
    assert j.select("waiter", "resource", "holder", "holder_name").rows() == [
        ("w1@sample/15560/15560", "thread:0x7f7f28c352d0", "w1@sample/15560/15620", "reader-0")]
    assert b.cycles.is_empty()


def test_no_edge_when_the_joined_thread_cannot_be_identified() -> None:
    frames = _frames(("pyspy-subprocesses.txt",))
    assert _joins(frames) == [(C, THREAD, F)]
    fr = frames["frames"]
    # the feeder is not in the dump (it has finished, or the dump missed it)
    assert _joins({**frames, "frames": fr.filter(pl.col("tid") != FEEDER)}) == []
    # no --locals: nothing names the joined object
    assert _joins({**frames, "frames": fr.with_columns(pl.lit(None, dtype=pl.String).alias("locals"))}) == []
    # the same address running in another process is another object (fork copies addresses)
    other = fr.with_columns(pl.when(pl.col("tid") == FEEDER).then(POOL).otherwise(pl.col("pid")).alias("pid"))
    assert _joins({**frames, "frames": other}) == []


def test_kernel_asleep_outside_a_futex_is_not_a_join() -> None:
    frames = _frames()
    procs = frames["processes"]
    joiner = (pl.col("pid") == CHILD) & (pl.col("tid").is_null() | (pl.col("tid") == CHILD))
    frames["processes"] = procs.with_columns(
        pl.when(joiner).then(pl.lit("do_epoll_wait")).otherwise(pl.col("wchan")).alias("wchan"),
        pl.when(joiner).then(None).otherwise(pl.col("kstack")).alias("kstack"))
    assert _joins(frames) == []
    assert cycles.build(waits.build(frames)).is_empty()


def test_a_join_with_a_timeout_is_a_weaker_edge() -> None:
    """`Thread.join(5.0)` wakes up: the edge stays (a caller looping on it never gets past) at
    half the confidence, and says so. The real dump with its join's `timeout` local changed."""
    frames = _frames()
    fr = frames["frames"]
    joiner = (pl.col("pid") == CHILD) & (pl.col("tid") == CHILD)
    # what `join(5.0)` leaves in both frames: join's `timeout` and the one it passes on
    timed = fr.with_columns(pl.when(joiner).then(
        pl.col("locals").str.replace('"timeout":"None"', '"timeout":"5.0"', literal=True)
        .str.replace('"timeout":"-1"', '"timeout":"5.0"', literal=True)).otherwise(pl.col("locals")).alias("locals"))
    assert not timed.equals(fr)  # the join frame had `timeout: None`
    join = waits.build({**frames, "frames": timed}).filter(pl.col("kind") == "join").row(0, named=True)
    assert join["confidence"] == 0.5 and "timeout=5.0" in join["waiter_frame"]
    untimed = waits.build(frames).filter(pl.col("kind") == "join").row(0, named=True)
    assert untimed["confidence"] == 1.0 and "timeout=" not in untimed["waiter_frame"]
