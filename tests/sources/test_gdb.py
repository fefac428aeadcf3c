"""gdb `thread apply all bt` / py-bt text, GDB/MI records, and core files driven through gdb."""

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

from analyzer.analyses.threads import finish
from analyzer.sources import PARSERS, dumps, gdb, gdb_mi
from tests.conftest import require
from tests.sources.dump_samples import kind_of, sample

BT = "deadlock-lock/gdb-bt.txt"
PYBT = "deadlock-lock/gdb-py-bt.txt"
PTHREAD_BT = "deadlock-pthread/gdb-bt.txt"
SOCKET_BT = "hang-socket-read/gdb-bt.txt"


@pytest.mark.parametrize("pattern", [BT, PYBT, PTHREAD_BT, "deadlock-rlock/gdb-*.txt"])
def test_sniffing_hands_real_gdb_output_to_the_gdb_parser(pattern):
    path = sample(pattern)
    assert kind_of(path) == "gdb"
    assert PARSERS["gdb"] is dumps.gdb_bt
    assert gdb.sniff(path.read_text()[:4096])


def test_bt_gives_every_thread_with_lwp_pthread_and_python_lock_address():
    path = sample(BT)
    threads, frames, raw = gdb.parse_text(path.read_bytes(), source=path.name)
    assert raw.unrecognized == 0 and raw.parsed == raw.lines
    assert threads.height == 3 and set(threads["tool"]) == {"gdb"}
    main = threads.filter(pl.col("gdb_num") == 1).row(0, named=True)
    assert main["pid"] == main["tid"]
    assert main["thread_ident"].startswith("0x7f")
    assert set(threads["state"]) == {"lock_wait"}
    # a Python lock waits in a semaphore; the lock object is `self` of lock_PyThread_acquire_lock
    writers = threads.filter(pl.col("gdb_num") > 1)
    assert set(writers["wait_call"]) == {"lock_PyThread_acquire_lock"}
    assert writers["wait_on"].str.starts_with("0x").all()
    f0 = frames.filter((pl.col("tid") == main["tid"]) & (pl.col("depth") == 0)).row(0, named=True)
    assert f0["native"] and f0["role"] == "native" and f0["function"].startswith("__futex_abstimed_wait")
    assert "futex_word=" in f0["args"]


def test_py_bt_frames_carry_code_lines_and_name_the_same_lock_objects_as_bt():
    bt, pybt = sample(BT), sample(PYBT)
    t_bt, _, _ = gdb.parse_text(bt.read_bytes(), source=bt.name)
    t_py, f_py, raw = gdb.parse_text(pybt.read_bytes(), source=pybt.name)
    assert raw.unrecognized == 0 and set(t_py["tool"]) == {"gdb-py-bt"}
    take = f_py.filter(pl.col("function") == "take")
    assert take.height == 2 and set(take["code"]) == {"with second:"}
    assert take["file"].str.ends_with("proj.py").all() and set(take["role"]) == {"app"}
    waits = dict(zip(t_py["tid"], t_py["wait_on"], strict=True))
    for row in t_bt.filter(pl.col("gdb_num") > 1).iter_rows(named=True):
        assert waits[row["tid"]] == row["wait_on"]
    unknown_line = f_py.filter(pl.col("function") == "trace_task")
    assert unknown_line["line"].is_null().all() and unknown_line["code"][0] == "(failed to get frame line number)"


def test_pthread_bt_names_mutex_symbols_and_keeps_printed_owners():
    path = sample(PTHREAD_BT)
    threads, _, raw = gdb.parse_text(path.read_bytes(), source=path.name)
    natives = threads.filter(pl.col("wait_symbol").is_not_null())
    assert sorted(natives["wait_symbol"]) == ["mutex_a", "mutex_b"]
    assert set(natives["wait_call"]) == {"___pthread_mutex_lock"}
    values = raw.extra["gdb_values"]
    owners = set(values["owner"].drop_nulls())
    assert owners == set(natives["tid"])


def test_socket_read_is_io_wait():
    path = sample(SOCKET_BT)
    threads, _, _ = gdb.parse_text(path.read_bytes(), source=path.name)
    main = threads.filter(pl.col("gdb_num") == 1).row(0, named=True)
    assert main["state"] == "io_wait" and main["wait_call"] == "sock_recv"


def test_wrapped_argument_lists_and_truncated_backtraces_are_handled():
    path = sample(BT)
    lines = path.read_text().splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.startswith("#1  ") and len(ln) > 120)
    head, tail = lines[i][:80], lines[i][80:]
    wrapped = [*lines[:i], head, "    " + tail, *lines[i + 1 : i + 5], "(More stack frames follow...)"]
    _threads, frames, raw = gdb.parse_text("\n".join(wrapped), source="wrapped.txt")
    assert raw.unrecognized == 0
    f1 = frames.filter(pl.col("depth") == 1).row(0, named=True)
    assert f1["file"] == "./nptl/futex-internal.c" and f1["line"] == 87
    assert any("More stack frames" in n for n in raw.notes)


def test_garbage_is_counted_not_raised():
    threads, frames, raw = gdb.parse_text(b"\x00\xff binary\nThread 9 (LWP 1):\n#0  ?? ()\nnonsense\n",
                                          source="g.txt")
    assert threads.height == 1 and frames.height == 1 and raw.unrecognized == 2


def test_core_without_gdb_says_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(gdb_mi, "_has_gdb", lambda: False)
    raw, notes = gdb_mi.analyze_core(tmp_path / "core", None)
    assert raw.threads.is_empty()
    assert "gdb is not on PATH" in notes[0] and "thread apply all bt" in notes[0]


def _gcore(pid: int, out: Path) -> None:
    subprocess.run(["gdb", "-batch", "-nx", "-p", str(pid), "-ex", f"gcore {out}"], check=True,
                   capture_output=True, timeout=120)


def test_core_of_a_pthread_deadlock_gives_mutex_owners(tmp_path):
    require("gdb", "cc")
    src = tmp_path / "dl.c"
    src.write_text(
        "#include <pthread.h>\n#include <unistd.h>\n"
        "pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;\n"
        "static void *t1(void *x) { pthread_mutex_lock(&a); sleep(1); pthread_mutex_lock(&b); return x; }\n"
        "static void *t2(void *x) { pthread_mutex_lock(&b); sleep(1); pthread_mutex_lock(&a); return x; }\n"
        "int main(void) { pthread_t p, q; pthread_create(&p, 0, t1, 0); pthread_create(&q, 0, t2, 0);\n"
        "  pthread_join(p, 0); pthread_join(q, 0); return 0; }\n")
    exe = tmp_path / "dl"
    subprocess.run(["cc", "-g", "-O0", "-pthread", "-o", str(exe), str(src)], check=True)
    proc = subprocess.Popen([str(exe)])
    try:
        time.sleep(2)
        _gcore(proc.pid, tmp_path / "core")
    finally:
        proc.kill()
        proc.wait()
    raw, notes = gdb_mi.analyze_core(tmp_path / "core", exe)
    threads, _frames = finish(raw)
    assert any("Core was generated by" in n for n in notes)
    waiting = threads.filter(pl.col("wait_call") == "___pthread_mutex_lock")
    assert waiting.height == 2 and set(waiting["state"]) == {"lock_wait"}
    assert sorted(waiting["wait_symbol"]) == ["a", "b"]
    # each waiter's mutex is owned by the other waiter: the AB/BA cycle
    owner = dict(zip(waiting["tid"], waiting["mutex_owner"], strict=True))
    (t1, o1), (t2, o2) = owner.items()
    assert o1 == t2 and o2 == t1
    assert set(threads["tool"]) == {"core"} and threads["pid"][0] == proc.pid


def test_core_of_a_python_process_through_the_bundle(tmp_path):
    require("gdb")
    code = ("import threading, time\na = threading.Lock(); a.acquire()\n"
            "threading.Thread(target=a.acquire, name='waiter').start()\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(1.5)
        _gcore(proc.pid, tmp_path / "core")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    import analyzer

    # without the executable gdb resolves no function: no dump to judge by, the bundle is inconclusive
    bare = analyzer.open_bundle(tmp_path)
    report = bare.report()
    assert bare.threads.is_empty() and report.verdict == "inconclusive"
    assert any("gdb resolved no function" in n and "core.json" in n for c in report.inputs for n in c.notes)
    assert any(r.startswith("core: gdb resolved no function") for r in report.inconclusive_reasons())
    shutil.copy(os.path.realpath(sys.executable), tmp_path / "python3")  # the executable travels in the bundle
    (tmp_path / "core.json").write_text('{"executable": "python3"}')
    b = analyzer.open_bundle(tmp_path)
    kinds = {i.name: i.kind for i in b.inputs}
    assert kinds["core"] == "core"
    t = b.threads
    assert t.height == 2 and set(t["state"]) == {"sleep", "lock_wait"}
    assert any("Core was generated by" in n for c in b.coverage for n in c.notes)


@pytest.mark.parametrize("line", ['^done,threads=[', '^done,stack=[frame={level="0"}', '^done,a="x', '^done,a=]',
                                  '^done,a={b=[1}]'])
def test_an_unclosed_mi_record_is_counted_not_parsed_forever(line):
    raw = gdb_mi.parse_records(f'{line}\n^done,threads=[{{id="1",target-id="LWP 7"}}]\n', source="mi.txt")
    assert raw.unrecognized == 1 and raw.threads.height == 1


def test_mi_well_formedness_is_linear():
    import time

    def took(n):
        text = '^done,a=[' + '{b="x\\\\"[",c=[' * n
        t = time.process_time()
        gdb_mi.well_formed(text)
        return time.process_time() - t

    small, big = took(2_000), took(20_000)
    assert big <= max(small, 0.005) * 25
