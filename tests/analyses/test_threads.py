"""Thread analyses: states, roles, buckets, dump comparison, and the stuck-task join."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import analyzer
from analyzer.analyses import threads as T
from analyzer.sources import gdb, pyspy
from tests.conftest import require
from tests.sources.dump_samples import sample


def _bundle_frames(b, name: str) -> pl.DataFrame:
    return pl.concat([r.frames[name] for r in b._parsed if name in r.frames], how="vertical_relaxed")


@pytest.mark.parametrize(("file", "function", "native", "role"), [
    ("celery/app/trace.py", "build_tracer.<locals>.trace_task", False, "celery"),
    ("billiard/pool.py", "Worker.workloop", False, "celery"),
    ("/work/main/.venv/lib/python3.11/site-packages/kombu/asynchronous/hub.py", "Hub.create_loop", False, "celery"),
    ("celery", "<module>", False, "celery"),
    ("threading.py", "Thread.join", False, "stdlib"),
    ("/root/.pyenv/versions/3.11.7/lib/python3.11/threading.py", "run", False, "stdlib"),
    ("click/core.py", "Context.invoke", False, "third_party"),
    ("/work/main/.venv/lib/python3.11/site-packages/click/core.py", "invoke", False, "third_party"),
    ("proj.py", "reconcile_accounts", False, "app"),
    ("/tmp/cpm-deadlock-lock-_venn5jx/proj.py", "take", False, "app"),
    ("libc.so.6", "pthread_mutex_lock", True, "native"),
])
def test_frame_role(file, function, native, role):
    assert T.frame_role(file, function=function, native=native) == role


def test_states_of_the_deadlock_samples():
    b = analyzer.open_bundle(sample("deadlock-lock/gdb-bt.txt").parent)
    t = b.threads
    assert set(t.filter(pl.col("tool").is_in(["gdb", "gdb-py-bt"]))["state"]) == {"lock_wait"}
    assert set(t["state"]) <= set(T.STATES)
    # py-spy without --native cannot see the C call under `with second:`: unknown, not a guess
    plain = t.filter((pl.col("tool") == "py-spy") & (pl.col("name") == "ledger-writer"))
    assert "unknown" in set(plain["state"]) and "lock_wait" in set(plain["state"])  # plain / --locals


def test_classify_state_recomputes_from_frames():
    path = sample("hang-socket-read/gdb-bt.txt")
    threads, frames, _ = gdb.parse_text(path.read_bytes(), source=path.name)
    again = T.classify_state(threads.drop("state"), frames)
    assert again["state"].to_list() == threads["state"].to_list() == ["io_wait"]


def test_bucket_levels_number_deterministically():
    path = sample("deadlock-pthread/pyspy-native.txt")
    threads, _, _ = pyspy.parse_text(path.read_bytes(), source=path.name)
    exact = T.bucket_threads(threads, "exact")
    top3 = T.bucket_threads(threads, "top3")
    # the two native threads differ in their third significant frame (take_a_then_b / take_b_then_a);
    # top3 skips the unsymbolised libc frame in front of pthread_mutex_lock
    natives = exact.filter(pl.col("name").str.starts_with("native-"))
    assert natives["bucket"].n_unique() == 2
    n3 = top3.filter(pl.col("name").str.starts_with("native-")).sort("name")
    assert n3["bucket_key"].to_list() == ["pthread_mutex_lock < hold_then_take < take_a_then_b",
                                          "pthread_mutex_lock < hold_then_take < take_b_then_a"]
    assert sorted(top3["bucket"]) == [1, 2, 3] and set(top3["bucket_size"]) == {1}
    assert T.bucket_threads(threads.reverse(), "top3").sort("line")["bucket"].equals(top3.sort("line")["bucket"])
    assert top3["bucket_key"][0].count(T.SIG_SEP) <= 2


def test_successive_dumps_with_the_same_stack_are_stuck():
    b = analyzer.open_bundle(sample("hang-socket-read/pyspy-2.txt").parent)
    cmp = T.compare_dumps(b.threads)
    row = cmp.row(0, named=True)
    assert row["verdict"] == "stuck" and "py-spy" in row["compared"] and row["dumps"] >= 3


def test_a_changed_stack_is_progressing():
    p1 = sample("hang-socket-read/pyspy-1.txt")
    text = p1.read_text()
    moved = text.replace("(proj.py:", "(proj.py:1", 1)  # the same thread, one line further on
    t1, _, _ = pyspy.parse_text(text.encode(), source="pyspy-1.txt")
    t2, _, _ = pyspy.parse_text(moved.encode(), source="pyspy-2.txt")
    cmp = T.compare_dumps(pl.concat([t1, t2]))
    assert cmp["verdict"].to_list() == ["progressing"]
    only_other_tools = T.compare_dumps(pl.concat([t1, gdb.parse_text(
        sample("hang-socket-read/gdb-bt.txt").read_bytes(), source="gdb-bt.txt")[0]]))
    assert only_other_tools["verdict"].to_list() == ["not_comparable"]


def test_stuck_task_joins_inspect_dumps_and_logs():
    b = analyzer.open_bundle(sample("deadlock-lock/inspect-active.json").parent)
    ins, workers = _bundle_frames(b, "inspect"), _bundle_frames(b, "workers")
    st = T.stuck_tasks(ins, b.threads, b.frames, b.events, workers)
    assert st.height == 1
    r = st.row(0, named=True)
    task = ins.row(0, named=True)
    assert r["task_id"] == task["task_id"] and r["pid"] == task["worker_pid"] == r["tid"]
    assert r["state"] == "lock_wait" and r["waits_on"].startswith("lock_wait: ")
    assert r["app_frame"].endswith("reconcile_accounts") and "proj.py:" in r["app_frame"]
    assert r["reference_kind"] == "uptime" and r["running_for_s"] > 0
    assert r["log_lines"] >= 2 and r["dumps"] >= 4 and r["verdict"] == "stuck"


def test_stuck_task_without_dumps_still_reports_running_time():
    b = analyzer.open_bundle(sample("task-never-finishes/inspect-active.json").parent)
    st = T.stuck_tasks(_bundle_frames(b, "inspect"), b.threads, b.frames, b.events, _bundle_frames(b, "workers"))
    r = st.row(0, named=True)
    assert r["dump"] is None and r["state"] is None and r["running_for_s"] > 0 and r["log_lines"] >= 2


def test_socket_hang_task_is_io_wait_from_the_best_dump():
    b = analyzer.open_bundle(sample("hang-socket-read/inspect-active-1.json").parent)
    st = T.stuck_tasks(_bundle_frames(b, "inspect"), b.threads, b.frames, b.events, _bundle_frames(b, "workers"))
    r = st.row(0, named=True)
    assert r["state"] == "io_wait" and "sock_recv" in r["waits_on"]
    assert r["app_frame"] is not None and r["app_frame"].endswith("fetch_rates")


def _children(pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(pid).children()]


def test_idle_prefork_worker_is_idle_not_stuck(tmp_path):
    require("py-spy", "redis")
    spy = Path(sys.executable).parent / "py-spy"
    spy_cmd = str(spy) if spy.exists() else shutil.which("py-spy")
    (tmp_path / "proj.py").write_text(
        "from celery import Celery\napp = Celery('proj', broker='redis://127.0.0.1:6379/14')\n"
        "@app.task\ndef add(x, y):\n    return x + y\n")
    log = tmp_path / "worker.log"
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "proj", "worker", "-P", "prefork", "-c", "1",
                             "--loglevel=INFO", "--without-mingle", "--without-gossip", "-n", "idle@test",
                             "-f", str(log)],
                            cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if log.exists() and " ready." in log.read_text():
                break
            time.sleep(0.1)
        else:
            pytest.fail("worker did not start")
        time.sleep(1)
        texts = []
        for pid in [proc.pid, *_children(proc.pid)]:
            out = subprocess.run([spy_cmd, "dump", "--pid", str(pid)], capture_output=True, timeout=60)
            texts.append((f"pyspy-{pid}.txt", out.stdout))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    threads, _frames = pyspy.parse_many(texts)
    main = threads.filter((pl.col("pid") == proc.pid) & (pl.col("tid") == proc.pid)).row(0, named=True)
    child = threads.filter((pl.col("pid") != proc.pid) & (pl.col("tid") == pl.col("pid"))).row(0, named=True)
    assert main["state"] == "idle", main["signature"]
    assert child["state"] == "idle", child["signature"]


def test_lock_in_locals_marks_the_queued_waiters_not_the_holder():
    path = sample("lock-wait-many/pyspy-locals.txt")
    threads, _, _ = pyspy.parse_text(path.read_bytes(), source=path.name)
    states = dict(zip(threads["name"], threads["state"], strict=True))
    assert states["index-builder"] == "unknown"  # holds the lock and works: not a waiter
    assert {states[f"reader-{i}"] for i in range(5)} == {"lock_wait"}
