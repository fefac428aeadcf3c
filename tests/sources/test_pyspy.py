"""py-spy dump text / --locals / --native / --json → threads and frames."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest

from analyzer.analyses.threads import finish
from analyzer.bundle import Member
from analyzer.sources import PARSERS, Options, dumps, pyspy
from analyzer.sources.lines import read_lines
from tests.sources.dump_samples import kind_of, sample

TEXT = "deadlock-lock/pyspy-[0-9]*.txt"
LOCALS = "deadlock-lock/pyspy-locals.txt"
NATIVE = "deadlock-pthread/pyspy-native.txt"
JSON = "deadlock-lock/pyspy.json"


@pytest.mark.parametrize("pattern", [TEXT, LOCALS, NATIVE, "hang-socket-read/pyspy-1.txt"])
def test_sniffing_hands_real_text_dumps_to_the_pyspy_parser(pattern):
    path = sample(pattern)
    assert kind_of(path) == "pyspy"
    assert PARSERS["pyspy"] is dumps.pyspy_text
    assert pyspy.sniff(path.read_text()[:4096])


def test_sniffing_hands_real_json_dumps_to_the_json_parser():
    path = sample(JSON)
    assert kind_of(path) == "pyspy_json"
    assert PARSERS["pyspy_json"] is dumps.pyspy_json
    assert pyspy.sniff_json(path.read_text()[:4096]) and not pyspy.sniff(path.read_text()[:4096])


def test_text_dump_gives_one_row_per_thread_with_pid_tid_and_names():
    path = sample(TEXT)
    pid = int(path.stem.split("-")[1])
    threads, _frames, raw = pyspy.parse_text(path.read_bytes(), source=path.name)
    assert raw.unrecognized == 0 and raw.parsed == raw.lines
    assert threads.height == 3
    assert set(threads["pid"]) == {pid}
    assert set(threads["name"]) == {"MainThread", "ledger-writer", "audit-writer"}
    main = threads.filter(pl.col("name") == "MainThread").row(0, named=True)
    assert main["tid"] == pid and main["tool"] == "py-spy" and main["status"] == "idle"
    assert main["dump"] == f"{path.name}#{pid}"
    assert main["state"] == "lock_wait" and main["wait_call"] == "Thread._wait_for_tstate_lock"
    assert main["top"] == "Thread._wait_for_tstate_lock (threading.py:1139)"


def test_frames_are_innermost_first_and_point_back_at_their_source_line():
    path = sample(TEXT)
    text = path.read_text().splitlines()
    _threads, frames, _ = pyspy.parse_text(path.read_bytes(), source=path.name)
    main = frames.filter(pl.col("tid") == pl.col("pid")).sort("depth")
    assert main["depth"][0] == 0 and main["function"][0] == "Thread._wait_for_tstate_lock"
    for row in main.head(5).iter_rows(named=True):
        assert text[row["src_line"] - 1].strip().startswith(row["function"])
    roles = dict(zip(main["function"], main["role"], strict=True))
    assert roles["reconcile_accounts"] == "app"
    assert roles["build_tracer.<locals>.trace_task"] == "celery"
    assert roles["Worker.workloop"] == "celery"
    assert roles["Thread.join"] == "stdlib"
    assert roles["Context.invoke"] == "third_party"
    assert not main["native"].any()


def test_locals_become_a_json_object_and_hint_the_wait_of_c_calls():
    path = sample(LOCALS)
    threads, frames, raw = pyspy.parse_text(path.read_bytes(), source=path.name)
    assert raw.unrecognized == 0
    top = frames.filter((pl.col("depth") == 0) & (pl.col("function") == "take"))
    assert top.height == 2
    loc = json.loads(top["locals"][0])
    assert any(v.startswith("<_thread.lock at 0x") for v in loc.values())
    writers = threads.filter(pl.col("name").str.ends_with("-writer"))
    assert set(writers["state"]) == {"lock_wait"} and set(writers["state_from"]) == {"locals"}


def test_native_frames_are_marked_and_pthread_waits_are_lock_waits():
    path = sample(NATIVE)
    threads, frames, _ = pyspy.parse_text(path.read_bytes(), source=path.name)
    natives = threads.filter(pl.col("name").str.starts_with("native-"))
    assert natives.height == 2
    assert set(natives["state"]) == {"lock_wait"} and set(natives["wait_call"]) == {"pthread_mutex_lock"}
    f = frames.filter(pl.col("function").is_in(["pthread_mutex_lock", "hold_then_take", "call_native"]))
    flags = dict(zip(f["function"], f["native"], strict=False))
    assert flags == {"pthread_mutex_lock": True, "hold_then_take": True, "call_native": False}
    assert frames.filter(pl.col("function").str.starts_with("0x"))["native"].all()


def test_json_dump_matches_the_text_dump_and_carries_pthread_idents():
    tpath, jpath = sample(TEXT), sample(JSON)
    tt, tf, _ = pyspy.parse_text(tpath.read_bytes(), source=tpath.name)
    raw = pyspy.parse_json(jpath.read_bytes(), source=jpath.name)
    jt, jf = finish(raw)
    assert raw.unrecognized == 0
    assert sorted(jt["tid"]) == sorted(tt["tid"])
    assert jt["thread_ident"].str.starts_with("0x7f").all()
    assert set(jt["tool"]) == {"py-spy-json"}
    by_tid = {r["tid"]: r["state"] for r in tt.iter_rows(named=True)}
    assert {r["tid"]: r["state"] for r in jt.iter_rows(named=True)} == by_tid
    # same frames, innermost first (text order is the reverse of JSON order for threads only)
    main_j = jf.filter(pl.col("tid") == pl.col("pid")).sort("depth")["function"].to_list()
    main_t = tf.filter(pl.col("tid") == pl.col("pid")).sort("depth")["function"].to_list()
    assert main_j == main_t
    assert jf["src_line"].is_not_null().all()


def test_truncated_text_dump_keeps_what_parsed_and_says_so():
    path = sample(TEXT)
    lines = path.read_text().splitlines()
    cut = next(i for i, ln in enumerate(lines) if ln.startswith("Thread ") and i > 10)
    text = "\n".join([*lines[: cut + 1], "\x00garbage \ufffd line", "    half a fra"]) + "\n"
    threads, _frames, raw = pyspy.parse_text(text.encode(), source="cut.txt")
    assert threads.height == 2
    assert raw.unrecognized == 2 and len(raw.samples) == 2
    assert any("without frames" in n for n in raw.notes)


def test_captured_at_is_what_the_caller_passes_else_null():
    path = sample(TEXT)
    t, _, _ = pyspy.parse_text(path.read_bytes(), source=path.name)
    assert t["captured_at"].is_null().all()
    when = datetime(2026, 11, 28, 19, 3, 0)
    t, _, _ = pyspy.parse_text(path.read_bytes(), source=path.name, captured_at=when)
    assert set(t["captured_at"]) == {when}


def test_truncated_json_keeps_complete_threads():
    path = sample(JSON)
    text = path.read_text()
    cut = text[: int(len(text) * 0.6)]
    raw = pyspy.parse_json(cut, source="cut.json")
    full = pyspy.parse_json(text, source="full.json")
    assert 0 < raw.threads.height < full.threads.height
    assert raw.unrecognized > 0 and any("truncated" in n for n in raw.notes)


def test_many_dumps_in_one_pass_equal_dumps_parsed_one_by_one():
    paths = [sample(TEXT), sample(LOCALS), sample(NATIVE)]
    bulk_t, bulk_f = pyspy.parse_many([(p.name, p.read_bytes()) for p in paths])
    one = [pyspy.parse_text(p.read_bytes(), source=p.name) for p in paths]
    cols = ["source", "line", "pid", "tid", "name", "state", "top", "signature"]
    assert bulk_t.select(cols).sort("source", "line").equals(
        pl.concat([t.select(cols) for t, _, _ in one]).sort("source", "line"))
    assert bulk_f.height == sum(f.height for _, f, _ in one)


def test_bundle_threads_and_frames_come_from_the_real_dumps():
    import analyzer

    path = sample(TEXT)
    b = analyzer.open_bundle(path.parent)
    assert {"py-spy", "py-spy-json", "gdb", "gdb-py-bt", "faulthandler"} <= set(b.threads["tool"])
    assert b.frames.height > 100
    assert b.threads.filter(pl.col("source") == path.name).height == 3


def test_subprocesses_dump_names_each_childs_parent():
    """`py-spy dump --subprocesses` prints `Parent Process N: CMD` under a child's header: a
    `processes` row (pid, ppid) that the wait-for graph reads like ps's PPID column."""
    path = sample("deadlock-pipe/pyspy-subprocesses.txt")
    raw = pyspy.parse_lines(read_lines(path.read_bytes()), source=path.name)
    procs = raw.extra["processes"]
    assert procs.select("line", "tool", "pid", "ppid").rows() == [(291, "py-spy", 14714, 14700)]
    assert procs["cmd"][0].endswith("celery -A proj worker -P prefork -c 2 --loglevel=INFO -n w1@sample -f worker.log")
    assert raw.unrecognized == 0
    # a plain dump names no parent
    single = sample("deadlock-pipe/pyspy-locals-14714.txt")
    assert "processes" not in pyspy.parse_lines(read_lines(single.read_bytes()), source=single.name).extra
    # and the bundle adapter hands the rows on as the `processes` frame
    frames = dumps.pyspy_text(Member(path.name, path=path), Options()).frames
    assert frames["processes"].select("pid", "ppid").rows() == [(14714, 14700)]


def test_node_name_comes_from_the_dumped_workers_command_line():
    # `Process 9646: … celery -A proj worker … -n w1@sample -f worker.log`: the dump says whose it is
    path = sample("heartbeat-stall-hang/py-spy-dump.txt")
    threads, _frames, _raw = pyspy.parse_text(path.read_bytes(), source=path.name)
    assert set(threads["host"]) == {"w1@sample"}
    # a host the caller knows wins; a `%h` pattern (expanded by Celery at start) names no node
    threads, _frames, _raw = pyspy.parse_text(path.read_bytes(), source=path.name, host="given@node")
    assert set(threads["host"]) == {"given@node"}
    text = path.read_text().replace("-n w1@sample", "-n w1@%h")
    threads, _frames, _raw = pyspy.parse_text(text.encode(), source=path.name)
    assert threads["host"].to_list() == [None] * threads.height


def test_a_dump_without_inspect_output_still_names_its_node_in_findings():
    from analyzer import open_bundle

    report = open_bundle(sample("heartbeat-stall-hang/py-spy-dump.txt").parent).report()
    [f] = [f for f in report.findings if f.category == "io.blocking"]
    assert f.hosts == ["w1@sample"] and f.summary.startswith("w1@sample pid 9646: thread MainThread")
