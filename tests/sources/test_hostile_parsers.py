"""Hostile input to the parsers (issue 16 items 6 and 11): linear time, one note per file, one bad
value costs only its own entry. Every input is built here; time checks compare a worst case with
one ten times its size (generous slack: at most 25x the time)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

import polars as pl
import pytest

from analyzer.bundle import Member
from analyzer.sources import PARSERS, Options, gdb, innodb_status, inspect, parse_member, ps, pyspy
from analyzer.sources.lines import read_lines
from tests.sources.dump_samples import sample
from tests.timing import best_cpu

ACTIVE = "deadlock-lock/inspect-active.json"
STATS = "deadlock-lock/inspect-stats.json"
PYSPY_JSON = "deadlock-lock/pyspy.json"
SLACK = 25


def assert_linear(parse: Callable[[str], object], build: Callable[[int], str], n: int) -> None:
    """`parse` of `build(10n)` takes at most SLACK times `parse` of `build(n)` (a quadratic one takes ~100x)."""
    small, big = build(n), build(10 * n)
    parse(small)  # warm-up
    t1, t10 = best_cpu(lambda: parse(small)), best_cpu(lambda: parse(big))
    assert t10 <= SLACK * max(t1, 0.002), f"10x input took {t10 / max(t1, 1e-9):.0f}x the time ({t1:.4f}s → {t10:.4f}s)"


# --- gdb -------------------------------------------------------------------------------------

def test_gdb_unclosed_frame_is_linear_and_ends_at_the_next_frame():
    def build(n: int) -> str:
        return "Thread 1 (LWP 5):\n#0  foo (a=1,\n" + "    b=2, c=3, d=4\n" * n + "#1  0x1 in bar () from /lib/x.so\n"

    raw = gdb.parse(build(10), source="g.txt")
    assert raw.frames.get_column("function").to_list() == ["foo", "bar"]
    assert raw.frames.get_column("file").to_list() == [None, "/lib/x.so"]
    assert_linear(lambda t: gdb.parse(t, source="g.txt"), build, 3000)
    capped = gdb.parse(build(1000), source="g.txt")  # past WRAP_LINES the lines are read on their own
    assert capped.unrecognized == 1000 - gdb.WRAP_LINES
    assert [n for n in capped.notes if "never closed" in n] == [
        "1 frame line(s) whose argument list never closed (kept with their function only), first at line 2"]


def test_gdb_frame_after_an_unclosed_one_is_not_swallowed():
    text = "Thread 1 (LWP 5):\n#0  foo (a=1, b=\n#1  bar (x=1) at b.c:3\n#2  baz () at c.c:4\n"
    raw = gdb.parse(text, source="g.txt")
    rows = raw.frames.select("function", "file", "line").rows()
    assert rows == [("foo", None, None), ("bar", "b.c", 3), ("baz", "c.c", 4)]
    assert raw.unrecognized == 0


def test_gdb_argument_list_wrapped_over_three_lines_is_joined():
    text = "Thread 1 (LWP 5):\n#0  0x7f in foo (a=1,\n    b=2,\n    c=3) at f.c:9\n#1  main () at m.c:1\n"
    raw = gdb.parse(text, source="g.txt")
    first = raw.frames.row(0, named=True)
    assert (first["function"], first["args"], first["file"], first["line"]) == ("foo", "a=1, b=2, c=3", "f.c", 9)
    assert raw.frames.height == 2 and not any("never closed" in n for n in raw.notes)


@pytest.mark.parametrize(("line", "want"), [
    ("#4  0x000055d3198671e8 in t2 (x=0x0) at dl.c:6", ("4", "0x000055d3198671e8", "t2", "x=0x0", "dl.c", "6", None)),
    ("#0  0x0000003056c0e740 in __read_nocancel () from /lib64/libpthread.so.0",
     ("0", "0x0000003056c0e740", "__read_nocancel", "", None, None, "/lib64/libpthread.so.0")),
    ("#13 _PyEval_EvalFrameDefault (tstate=<optimized out>, f=(a)) at Python/ceval.c:4422  ",
     ("13", None, "_PyEval_EvalFrameDefault", "tstate=<optimized out>, f=(a)", "Python/ceval.c", "4422", None)),
    ("#1  f (a) junk", None),
    ("#1  f (a=1, b=", None),
    ("#1  f (a) at x.c:y", None),
])
def test_gdb_frame_lines_split_as_the_frame_regex_read_them(line, want):
    got = gdb.split_frame(line)
    assert (tuple(got) if got else None) == want


def test_gdb_parens_without_a_frame_end_cost_linear_time():
    assert_linear(lambda t: gdb.parse(t, source="g.txt"), lambda n: "Thread 1 (LWP 5):\n#0  f (" + " (a)b" * n, 20000)


def test_gdb_many_frameless_threads_give_one_note():
    raw = gdb.parse("".join(f"Thread {i} (LWP {i + 10}):\n" for i in range(1, 2001)), source="g.txt")
    assert raw.threads.height == 2000
    assert raw.notes == ["2000 thread(s) without frames (truncated?), first at line 1"]


# --- inspect ---------------------------------------------------------------------------------

def test_inspect_open_braces_are_linear_and_one_note():
    res = inspect.parse_json("{\n" * 3000, source="i.json")
    assert res.unrecognized == 3000 and res.lines == 3000
    assert len(res.notes) == 1 and res.notes[0].startswith("3000 line(s) begin no complete JSON reply, first at line 1")
    assert len(res.samples) == 5
    assert_linear(lambda t: inspect.parse_json(t, source="i.json"), lambda n: "{\n" * n, 500)
    assert_linear(lambda t: inspect.parse_json(t, source="i.json"), lambda n: '{"w1@x": [\n' * n, 500)


def test_inspect_truncated_reply_does_not_hide_the_next_one():
    reply = sample(ACTIVE).read_text().strip()
    text = reply[:80] + "\n" + '{"w9@y": [\n' + reply + "\n" + reply + "\n"
    res = inspect.parse_json(text, source="i.json")
    assert res.inspect.height == 2 and res.inspect["line"].to_list() == [3, 4]
    assert res.unrecognized == 2


def test_inspect_pretty_printed_reply_is_read_and_a_cut_one_counted():
    reply = json.loads(sample(ACTIVE).read_text())
    pretty = json.dumps(reply, indent=4)
    whole = inspect.parse_json(pretty + "\n", source="p.json")
    assert whole.inspect.height == 1 and whole.unrecognized == 0
    cut = inspect.parse_json(pretty[:-10], source="p.json")
    assert cut.inspect.is_empty() and cut.unrecognized == sum(1 for ln in pretty[:-10].split("\n") if ln.strip())
    assert_linear(lambda t: inspect.parse_json(t, source="p.json"),
                  lambda n: json.dumps({"w1@x": next(iter(reply.values())) * n}, indent=4)[:-3], 100)


def _two_workers(bad: dict) -> str:
    reply = json.loads(sample(ACTIVE).read_text())
    (host, tasks), = reply.items()
    return json.dumps({host: tasks, "w2@other": [{**tasks[0], "id": "bad-task", "hostname": "w2@other", **bad}]}) + "\n"


@pytest.mark.parametrize(("bad", "field", "why"), [
    ({"time_start": 1e20}, "time_start", "not a time"),
    ({"name": ["a", "list"]}, "name", "not a string"),
    ({"worker_pid": 1 << 70}, "worker_pid", "out of range"),
    ({"acknowledged": "yes"}, "acknowledged", "not true/false"),
    ({"hostname": {"x": 1}}, "hostname", "not a string"),
])
def test_inspect_one_bad_field_costs_only_that_field(bad, field, why):
    res = parse_member(Member("inspect-active.json", data=_two_workers(bad).encode()), "inspect_json", Options())
    assert not res.problems
    frame = res.frames["inspect"]
    assert frame.height == 2 and set(frame["host"]) == {"w1@sample", "w2@other"}
    good = frame.filter(pl.col("host") == "w1@sample").row(0, named=True)
    assert isinstance(good["time_start"], datetime) and good["task_name"] == "proj.reconcile_accounts"
    assert frame.filter(pl.col("host") == "w2@other").row(0, named=True)["task_id"] == "bad-task"
    cov = res.coverage[0]
    assert cov.unrecognized == 0
    note, = [n for n in cov.notes if "wrong type" in n]
    assert "worker w2@other, task bad-task" in note and f"{field}=" in note and why in note


def test_inspect_stats_with_out_of_range_numbers_keeps_the_worker():
    (host, stats), = json.loads(sample(STATS).read_text()).items()
    text = json.dumps({host: {**stats, "pid": 1 << 70, "uptime": 10 ** 400}, "w2@x": {**stats, "pid": 7}})
    res = inspect.parse_json(text, source="s.json")
    assert res.workers.height == 2
    assert res.workers.filter(pl.col("host") == host)["pid"].to_list() == [None]
    assert res.workers.filter(pl.col("host") == "w2@x")["pid"].to_list() == [7]
    assert any("2 value(s) of the wrong type" in n and "uptime=" in n for n in res.notes)


def test_inspect_node_with_a_non_reply_value_keeps_the_others():
    reply = json.loads(sample(ACTIVE).read_text())
    res = inspect.parse_json(json.dumps({**reply, "w2@x": "oops"}), source="i.json")
    assert res.inspect.height == 1 and res.unrecognized == 0
    assert any("worker w2@x: reply='oops' (neither a list nor a dict)" in n for n in res.notes)


def test_inspect_text_long_node_word_and_bad_literal_field():
    assert_linear(lambda t: inspect.parse_text(t, source="t.txt"), lambda n: "->  " + "a@" * n + "\n", 50000)
    text = ("->  w1@x: OK\n    * {'id': 'a', 'name': 'n', 'time_start': 1e300, 'worker_pid': 3}\n"
            "    * {'id': 'b', 'name': 'm', 'time_start': 1795892574.0, 'worker_pid': 4}\n")
    res = inspect.parse_text(text, source="t.txt")
    assert res.inspect["task_id"].to_list() == ["a", "b"] and res.inspect["time_start"].null_count() == 1
    assert any("task a: time_start=1e+300 (not a time)" in n for n in res.notes)


def test_inspect_no_reply_lines_give_one_note():
    res = inspect.parse_json("Error: No nodes replied within time constraint\n" * 500, source="i.json")
    assert res.notes == ["line 1: Error: No nodes replied within time constraint (500 such lines)"]


# --- py-spy JSON -----------------------------------------------------------------------------

def _threads() -> list[dict]:
    return json.loads(sample(PYSPY_JSON).read_text())


@pytest.mark.parametrize(("where", "bad", "field"), [
    ("thread", {"pid": "12466"}, "pid"),
    ("thread", {"thread_name": ["a"]}, "thread_name"),
    ("thread", {"os_thread_id": 1 << 70}, "os_thread_id"),
    ("frame", {"line": 1e20}, "line"),
    ("frame", {"filename": ["x"]}, "filename"),
    ("frame", {"name": {"n": 1}}, "name"),
])
def test_pyspy_json_one_bad_value_costs_only_itself(where, bad, field):
    threads = _threads()
    if where == "thread":
        threads[1] = {**threads[1], **bad}
    else:
        threads[1]["frames"][0] = {**threads[1]["frames"][0], **bad}
    res = parse_member(Member("pyspy.json", data=json.dumps(threads, indent=2).encode()), "pyspy_json", Options())
    assert not res.problems
    assert res.frames["threads"].height == len(threads)
    assert res.frames["frames"].height == sum(len(t["frames"]) for t in threads)
    note, = [n for n in res.coverage[0].notes if "wrong type" in n]
    assert f"{field}=" in note and "thread pyspy.json:" in note


def test_pyspy_json_blank_lines_and_cut_arrays_are_linear():
    assert_linear(lambda t: pyspy.parse_json(t, source="p.json"), lambda n: "[\n" + "\n" * n, 20000)
    thread = _threads()[0]
    assert_linear(lambda t: pyspy.parse_json(t, source="p.json"),
                  lambda n: json.dumps([thread] * n, indent=2)[:-20], 100)


def test_pyspy_json_non_object_elements_are_counted():
    threads = _threads()
    raw = pyspy.parse_json(json.dumps([threads[0], 5, "x", threads[1]]), source="p.json")
    assert raw.threads.height == 2 and "2 element(s) of the array are not objects (skipped)" in raw.notes


# --- the other line parsers ------------------------------------------------------------------

def test_ps_header_made_of_pid_words_is_linear():
    def run(t: str) -> object:
        return ps.parse_lines(read_lines(t.encode()), source="ps.txt")

    assert_linear(run, lambda n: "  PID CMD\n" + "PID " * n + "x\n", 5000)
    frame, cov = ps.parse_lines(read_lines(b"  PID  PPID STAT CMD\n  10   1 S python x\n"), source="ps.txt")
    assert frame["pid"].to_list() == [10] and frame["cmd"].to_list() == ["python x"] and cov.unrecognized == 0


def test_innodb_lock_line_with_a_run_of_blanks_is_linear():
    head = ("LATEST DETECTED DEADLOCK\n------------------------\nRECORD LOCKS space id 1 page no 3 n bits 1 index "
            "PRIMARY of table `a`.`b` trx id 1 lock_mode X")
    assert_linear(lambda t: innodb_status.parse_text(t, source="s.txt"), lambda n: head + " " * n + "y\n", 20000)
    frame, _ = innodb_status.parse_text(head + " locks rec but not gap waiting   \n", source="s.txt")
    assert frame.row(0, named=True)["lock_mode"] == "X locks rec but not gap" and frame["waiting"].to_list() == [True]


def test_faulthandler_truncated_stacks_give_one_note():
    text = "Thread 0x00007f921ebdc6c0 (most recent call first):\n  ...\n\n" * 300
    res = parse_member(Member("fh.txt", data=text.encode()), "faulthandler", Options())
    notes = [n for n in res.coverage[0].notes if "truncated by faulthandler" in n]
    assert notes == ["300 stack(s) truncated by faulthandler (`...`), first at line 2"]


# --- numbers past what a column holds ---------------------------------------------------------

HUGE = "9" * 5000  # past Int64, and past int()'s 4,300-digit limit


@pytest.mark.parametrize(("kind", "text", "unrecognized"), [
    ("proc_locks", f"1: POSIX  ADVISORY  WRITE 14328 fe:00:2146481 200 200\n{HUGE}: POSIX  ADVISORY  WRITE 1 fe:00:1 0 "
                   "EOF\n", 1),
    ("procfs", f"/proc/{HUGE}/fd:\n/proc/12/stat:12 (x) S 1\n/proc/{HUGE}/stat:1 (x) S 1\n", 2),
    ("ps", f"  PID  PPID CMD\n   10     1 python\n{HUGE} 1 python\n", 1),
    ("redis_info", f"# Server\nredis_version:7.0\nconnected_clients:{HUGE}\nerrorstat_OOM:count=x\n", 0),
    ("rabbitmq_queues", f"Listing queues for vhost / ...\nname\tmessages\nq1\t{HUGE}\nq2\t5\n", 0),
    ("gdb", f"Thread {HUGE} (LWP 5):\nThread 1 (LWP 6):\n#0  f () at a.c:{HUGE}\n", 1),
    ("inspect_json", '{"w1@x": [{"id": "a", "worker_pid": ' + HUGE + '}]}\n{"w2@x": [{"id": "b"}]}\n', 1),
    ("pyspy_json", '[{"pid": 1, "thread_id": 2, "frames": []}, {"pid": ' + HUGE + "}]", 0),
])
def test_numbers_too_big_for_a_column_cost_only_their_line(kind, text, unrecognized):
    res = PARSERS[kind](Member(f"{kind}.txt", data=text.encode()), Options())  # called directly: it must not raise
    cov = res.coverage[0]
    assert cov.unrecognized == unrecognized and cov.parsed + cov.unrecognized == cov.lines


GDB_MI_HANG_S = 1.0


def test_gdb_mi_unclosed_list_does_not_hang():
    import signal

    from analyzer.sources import gdb_mi

    def fire(_sig: int, _frame: object) -> None:
        raise TimeoutError("gdb_mi still parsing")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, GDB_MI_HANG_S)
    t0 = time.monotonic()
    try:
        gdb_mi.parse_records('^done,threads=[{id="1"}\n', source="mi.txt")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.monotonic() - t0 < GDB_MI_HANG_S  # the parser swallows the TimeoutError; the clock does not


def test_gdb_mi_bad_numbers_cost_only_their_field():
    from analyzer.sources import gdb_mi

    digits = "9" * 5000
    text = ('^done,threads=[{id="1",target-id="LWP 7"}]\n'
            f'1^done,stack=[frame={{level="[0",addr="0x1",func="pthread_mutex_lock",file="m.c",line="{digits}"}}]\n'
            f'{gdb_mi.OWNER_TOKEN + 1}^done,value="{digits}"\n')
    raw = gdb_mi.parse_records(text, source="mi.txt")
    assert raw.threads.height == 1 and raw.frames.height == 1
    assert raw.frames["line"][0] is None
