"""The `stuck` frame: inspect active ↔ thread dumps of that pid ↔ log lines, and its task.stuck finding."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import polars as pl
import pytest

import analyzer
from analyzer.analyses import threads as T
from analyzer.api import Bundle
from analyzer.schema import STUCK
from tests.conftest import SAMPLES


@cache
def _bundle(name: str) -> Bundle:
    return analyzer.open_bundle(SAMPLES / name)


def _stuck(name: str) -> list[dict[str, object]]:
    return _bundle(name).frame_map()["stuck"].to_dicts()


def test_contract_and_public_property() -> None:
    b = _bundle("hang-socket-read")
    assert dict(b.frame_map()["stuck"].schema) == dict(STUCK)
    assert b.stuck.columns == list(STUCK)


def test_socket_hang_row_says_where_since_when_and_on_what() -> None:
    [r] = _stuck("hang-socket-read")
    assert r["task_name"] == "proj.fetch_rates" and r["host"] == "w1@sample"
    assert r["pid"] == r["tid"] == 15096
    assert r["verdict"] == "stuck" and r["state"] == "io_wait" and r["waits_on"] == "sock_recv"
    assert r["app_frame"] == "proj.py:37 fetch_rates"
    # two inspect snapshots: the evidence is the later one; capture time from stats uptime
    assert (r["source"], r["line"]) == ("inspect-active-2.json", 1)
    assert isinstance(r["running_for_s"], float) and 20 < r["running_for_s"] < 40
    # gdb bt, three py-spy dumps and the faulthandler dump (pid filled from its pthread id)
    assert r["dumps"] == 5
    assert "same stack in 3 dumps" in str(r["summary"]) and "waiting on sock_recv (io_wait)" in str(r["summary"])


def test_inspect_without_dumps_is_unknown_with_a_running_time() -> None:
    [r] = _stuck("task-never-finishes")
    assert r["pid"] == 14253 and r["tid"] is None and r["dumps"] == 0
    assert r["verdict"] == "unknown" and r["state"] == "unknown" and r["app_frame"] is None
    assert isinstance(r["running_for_s"], float) and r["running_for_s"] > 0
    assert "no thread dump of that pid" in str(r["summary"])


@pytest.mark.parametrize("name", ["deadlock-lock", "deadlock-rlock", "deadlock-pthread", "lock-wait-many"])
def test_lock_samples_are_stuck_in_lock_wait(name: str) -> None:
    [r] = _stuck(name)
    assert r["verdict"] == "stuck" and r["state"] == "lock_wait"
    assert r["waits_on"] and r["app_frame"] and "proj.py:" in str(r["app_frame"])
    assert r["bucket"] is not None and int(str(r["dumps"])) >= 2


def test_native_and_plain_pyspy_dumps_compare_on_python_frames() -> None:
    # deadlock-pthread has `py-spy dump` and `py-spy dump --native` of the same child: the
    # native frames on top differ, the Python stack does not
    b = _bundle("deadlock-pthread")
    without = T.compare_dumps(b.threads).filter(pl.col("pid") == pl.col("tid"), pl.col("pid") == 13651)
    with_frames = T.compare_dumps(b.threads, b.frames).filter(pl.col("pid") == pl.col("tid"), pl.col("pid") == 13651)
    assert without["verdict"].to_list() == ["progressing"]
    assert with_frames["verdict"].to_list() == ["stuck"]


def test_finished_and_log_only_tasks() -> None:
    # a finished task never appears; a STARTED one without inspect output comes from the log
    assert _stuck("healthy") == []
    assert _stuck("backend-failure") == []  # their children warned `Exception raised outside body`: FAILURE
    rows = _stuck("task-hangs-others-run")
    assert rows and all(r["source"] == "worker.log" and r["pid"] is None for r in rows)
    assert all(r["verdict"] == "unknown" and r["dumps"] == 0 and "no inspect output" in str(r["summary"])
               for r in rows)


def test_bundle_threads_fill_ids_hosts_and_number_buckets_bundle_wide() -> None:
    t = _bundle("hang-socket-read").threads
    fh = t.filter(pl.col("tool") == "faulthandler")
    assert fh["pid"].to_list() == [15096] and fh["tid"].to_list() == [15096]
    assert t["host"].to_list() == ["w1@sample"] * t.height
    # one numbering for the bundle: the three identical py-spy stacks share bucket 1
    spy = t.filter(pl.col("tool") == "py-spy")
    assert spy["bucket"].to_list() == [1, 1, 1] and spy["bucket_size"].to_list() == [3, 3, 3]
    assert sorted(t["bucket"].unique().to_list()) == [1, 2, 3]


def test_task_stuck_finding_carries_the_detail() -> None:
    report = _bundle("hang-socket-read").report()
    [f] = [f for f in report.findings if f.category == "task.stuck"]
    assert f.rule == "CP-S010"
    assert f.summary.startswith("w1@sample: task proj.fetch_rates[0d0b48f4-8c79-4c6d-ba88-83d1f0f289ab] in pid 15096 "
                                "has run ")
    assert "stuck in proj.py:37 fetch_rates, waiting on sock_recv (io_wait); same stack in 3 dumps" in f.summary
    assert f.evidence[0].source == "inspect-active-2.json"


def test_example_text_alone_builds_a_stuck_row() -> None:
    # what rule examples go through: one in-memory artifact
    text = (SAMPLES / "task-never-finishes" / "inspect-active.json").read_text()
    st = Bundle.from_text(text, name="example").frame_map()["stuck"]
    assert st["task_name"].to_list() == ["proj.sync_forever"] and st["pid"].to_list() == [14253]


def test_running_time_is_judged_against_the_task_names_successful_runs() -> None:
    # acme's call of a 50 ms task had run 12.9 s when the log (still going on the other child) ended
    [r] = _stuck("task-hangs-others-run")
    assert r["task_name"] == "proj.sync_account" and 12 < r["running_for_s"] < 14
    assert 0.05 < r["typical_runtime_s"] < 0.07 and r["runtime_ratio"] > 150
    assert "its successful runs took 0.06 s or less (95th percentile of 25)" in str(r["summary"])
    # no run of the name finished: nothing to compare with
    [alone] = _stuck("task-never-finishes")
    assert alone["typical_runtime_s"] is None and alone["runtime_ratio"] is None


def test_a_task_running_when_the_evidence_ends_is_not_reported_stuck() -> None:
    # the log cut a moment after a task started, without inspect output or dumps: in the stuck frame,
    # but CP-S010 needs 5 s (and 10x the name's usual runtime when some run finished)
    cut = Bundle.from_text("\n".join((SAMPLES / "task-never-finishes" / "worker.log").read_text().splitlines()[:9]))
    [row] = cut.frame_map()["stuck"].rows(named=True)
    assert row["running_for_s"] < 0.01
    assert not [f for f in cut.report().findings if f.category == "task.stuck"]
    # with the sample's inspect output and stats it had run 9.5 s: reported
    assert [f.rule for f in _bundle("task-never-finishes").report().findings if f.category == "task.stuck"] == [
        "CP-S010"]


def test_thread_rules_count_threads_not_dump_rows() -> None:
    # deadlock-lock: pool child 12466 dumped by gdb, gdb py-bt, py-spy (twice), py-spy --json and faulthandler;
    # three of its threads wait for a lock, whatever the number of dumps showing each
    [f] = [f for f in _bundle("deadlock-lock").report().findings if f.rule == "CP-H002"]
    assert f.count == 3 and f.summary.startswith("w1@sample pid 12466: 3 threads wait for a lock")
    tids = _bundle("deadlock-lock").threads.filter(pl.col("state") == "lock_wait")["tid"]
    assert tids.len() > 3 and tids.n_unique() == 3
    # hang-db-query: one thread in a gdb and a py-spy dump
    [g] = [f for f in _bundle("hang-db-query").report().findings if f.rule == "CP-H001"]
    assert g.count == 1 and g.summary.endswith("(1 thread of this process)")


def test_thread_rules_count_threads_when_no_dump_names_the_node(tmp_path: Path) -> None:
    # a worker started with `-n w1@%h` (expanded at start-up): the dumps name no node, the host is null
    text = (SAMPLES / "lock-wait-many" / "pyspy-locals.txt").read_text().replace("-n w1@sample", "-n w1@%h")
    for name in ("pyspy-1.txt", "pyspy-2.txt"):
        (tmp_path / name).write_text(text)
    [f] = [f for f in analyzer.open_bundle(tmp_path).report().findings if f.rule == "CP-H002"]
    assert f.hosts == [] and f.count == 5 and f.evidence_total == 5


def test_a_gdb_dump_takes_the_node_a_py_spy_dump_of_the_same_pid_names() -> None:
    # fork-lock: gdb and py-spy dumped the forked child 1266; only py-spy's command line names the node
    t = _bundle("fork-lock").threads.filter(pl.col("pid") == 1266)
    assert {"gdb", "py-spy"} <= set(t["tool"]) and set(t["host"]) == {"w1@sample"}
    [f] = [f for f in _bundle("fork-lock").report().findings if f.rule == "CP-H002"]
    assert f.hosts == ["w1@sample"] and f.summary.startswith("w1@sample pid 1266:")
