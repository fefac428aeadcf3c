"""Crafted worst-case inputs of every parser, at a chosen scale (issue 16 item 6).

Each case builds the bytes of one artifact from a scale `n` (lines, repetitions or characters,
whatever makes the input grow); the size grows linearly with `n`. Each shape aims at what makes
a parser super-linear: a state that keeps growing a buffer (gdb's wrapped frame), a decoder
restarted from every line (inspect's `{` lines), a regex with ambiguous repetition run on a long
line (`\\S+@\\S+`, `(.+?) \\((.*)\\)`, `(?:\\s+[A-Z]+)*\\s*$`), one note per line. Used by
`tests/benchmarks/bench_worst_cases.py` (timings at N and 10N) and `tests/test_properties.py`
(the linear-time property).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from analyzer.bundle import Member
from analyzer.sources import Options, SourceResult, parse_member

TASK = {"id": "6a2b690d-1fb8-4174-a9df-6b4fe37f5716", "name": "proj.reconcile_accounts", "args": [1, 2],
        "kwargs": {}, "type": "proj.reconcile_accounts", "hostname": "w1@sample", "time_start": 1795892574.29,
        "acknowledged": True, "delivery_info": {"exchange": "", "routing_key": "celery", "priority": 0,
                                                "redelivered": False}, "worker_pid": 12466}
PYSPY_THREAD = {"pid": 12466, "thread_id": 140265557706432, "thread_name": "MainThread", "os_thread_id": 12466,
                "active": False, "owns_gil": False,
                "frames": [{"name": "wait", "filename": "/usr/lib/python3.11/threading.py", "module": None,
                            "short_filename": "threading.py", "line": 320, "locals": None}]}


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # the parser (key of `analyzer.sources.PARSERS`)
    build: Callable[[int], bytes]
    n: int  # a scale at which one parse takes some milliseconds


def _lines(*parts: str) -> bytes:
    return "".join(parts).encode()


CASES: list[Case] = [
    # gdb: a frame whose `(` never closes, then many continuation-like lines (the 12 KB / 20 s)
    Case("gdb-unclosed-wrap", "gdb",
         lambda n: _lines("Thread 1 (LWP 5):\n#0  foo (a=1,\n", "    b=2, c=3, d=4, e=5, f=6, g=7\n" * n), 2000),
    # gdb: one long frame line of ` (` and `)` that never ends like a frame
    Case("gdb-parens-line", "gdb", lambda n: _lines("Thread 1 (LWP 5):\n#0  f (", " (a)b" * n, "\n"), 20000),
    # gdb: every frame line unclosed
    Case("gdb-unclosed-frames", "gdb",
         lambda n: _lines("Thread 1 (LWP 5):\n", *(f"#{i}  f (a=1, b=\n" for i in range(n))), 2000),
    # gdb: a 10,000-thread dump of frameless threads (one note per thread before)
    Case("gdb-frameless-threads", "gdb",
         lambda n: _lines(*(f"Thread {i + 1} (LWP {i + 100}):\n" for i in range(n))), 2000),
    # inspect --json: every line an unclosed `{` (the 3 MB / 40 s, a note per line)
    Case("inspect-open-braces", "inspect_json", lambda n: b"{\n" * n, 5000),
    Case("inspect-nested-replies", "inspect_json", lambda n: b'{"w1@x": [\n' * n, 2000),
    Case("inspect-indented-nesting", "inspect_json", lambda n: b'  {"w1@x": [\n' * n, 2000),
    # a pretty-printed reply cut before its end: decoded once, then its lines alone
    Case("inspect-truncated-pretty", "inspect_json",
         lambda n: json.dumps({"w1@x": [TASK] * n}, indent=4)[:-3].encode(), 200),
    Case("inspect-text-at-run", "inspect_text", lambda n: _lines("->  w1@x: OK\n->  ", "a@" * n, "\n"), 20000),
    Case("inspect-text-block", "inspect_text", lambda n: _lines("->  w1@x: OK\n", "    {'a': [\n" * n), 2000),
    # py-spy --json: blank lines (`^\s*"thread_id":` with re.M backtracks over runs of newlines)
    Case("pyspy-json-newlines", "pyspy_json", lambda n: _lines("[\n", "\n" * n), 20000),
    Case("pyspy-json-threads-cut", "pyspy_json",
         lambda n: json.dumps([PYSPY_THREAD] * n, indent=2)[:-20].encode(), 300),
    Case("pyspy-text-long-frame", "pyspy",
         lambda n: _lines("Process 1: python\nPython v3.11.7 (/usr/bin/python3)\n\nThread 1 (idle): \"M\"\n    f (",
                          "x (" * n, ")\n"), 20000),
    Case("faulthandler-file-line", "faulthandler",
         lambda n: _lines("Thread 0x00007f921ebdc6c0 (most recent call first):\n  File \"",
                          "\", line 1 in x" * n, "\n"), 5000),
    Case("faulthandler-ellipsis", "faulthandler",
         lambda n: _lines(*("Thread 0x00007f921ebdc6c0 (most recent call first):\n  ...\n\n" for _ in range(n))),
         1000),
    Case("ps-header-pids", "ps", lambda n: _lines("  PID CMD\n", "PID " * n, "x\n"), 5000),
    Case("innodb-spaces", "mysql_innodb_status",
         lambda n: _lines("LATEST DETECTED DEADLOCK\n------------------------\nRECORD LOCKS space id 1 page no 3 "
                          "n bits 1 index PRIMARY of table `a`.`b` trx id 1 lock_mode X", " " * n, "y\n"), 20000),
    Case("procfs-long-ls", "procfs", lambda n: _lines("/proc/1/fd:\nlr-x------ 1 r r 64 ", "a " * n, "\n"), 20000),
    Case("proc-locks-long", "proc_locks", lambda n: _lines("1: POSIX  ADVISORY  WRITE 1 ", "0" * n, "\n"), 20000),
    Case("ulimit-long", "ulimit", lambda n: _lines("open files ", "(a " * n, "\n"), 20000),
    Case("redis-info-long", "redis_info", lambda n: _lines("# Server\n", "a:" * n, "\n"), 20000),
    Case("rabbitmq-queues-tabs", "rabbitmq_queues",
         lambda n: _lines("Listing queues for vhost / ...\nname\tmessages\n", "q\t1\n" * n), 2000),
    Case("celery-log-continuations", "celery_log",
         lambda n: _lines("[2026-11-28 17:58:37,378: ERROR/MainProcess] x\n", "  File \"a.py\", line 1\n" * n), 5000),
    Case("celery-log-brackets", "celery_log", lambda n: _lines("[" * n, "\n"), 20000),
    Case("json-log-braces", "json_log",
         lambda n: _lines('{"levelname": "INFO", "message": "m"}\n', '{"a": ' * n, "\n"), 5000),
    Case("postgres-log-detail", "postgres_log",
         lambda n: _lines("2026-11-28 19:04:38.778 UTC [1] ERROR:  x\n",
                          "2026-11-28 19:04:38.778 UTC [1] DETAIL:  y\n" * n), 2000),
    Case("rabbitmq-log-lines", "rabbitmq_log",
         lambda n: _lines("2026-11-28 19:01:04.607256+00:00 [error] <0.1.0> x\n", "\tcontinued\n" * n), 5000),
    Case("redis-log-lines", "redis_log",
         lambda n: _lines("1:M 28 Nov 2026 19:01:04.607 # x\n", "1:M 28 Nov 2026 19:01:04.607 * " + "(" * n + "\n"),
         5000),
    Case("kernel-log-oom", "kernel_log",
         lambda n: _lines("[ 1921.981234] Out of memory: Killed process 4242 (" + "(" * n + ") total-vm:1kB\n",
                          "[ 1921.981235] oom-kill:constraint=CONSTRAINT_MEMCG," + "x," * n + "task=c,pid=1,\n"), 5000),
    Case("gdb-mi-console", "gdb_mi", lambda n: _lines('~"', "\\\\n" * n, '"\n'), 20000),
    Case("gdb-mi-nesting", "gdb_mi", lambda n: _lines("^done,threads=", "[" * n, "\n"), 2000),
    # text in no known layout: a traceback that never reaches its exception line, one line holding
    # many embedded headers (newlines lost), and a run of caret-notation colour codes
    Case("text-endless-traceback", "text",
         lambda n: _lines("Traceback (most recent call last):\n", '  File "a.py", line 1, in f\n' * n), 5000),
    Case("text-joined-headers", "text",
         lambda n: _lines("x ", "[2026-11-28 17:58:37,378: INFO/MainProcess] a Traceback (most " * n, "\n"), 2000),
    Case("text-caret-colour", "text", lambda n: _lines("^[[36m" * n, "\n"), 20000),
    # kubectl describe: a state block per line pair (a slot and a row each), and a value of blanks
    Case("describe-state-blocks", "kubectl_describe",
         lambda n: _lines("    State:          Terminated\n      Reason:       OOMKilled\n" * n), 2000),
    Case("describe-blank-value", "kubectl_describe", lambda n: _lines("Name:", " " * n, "x\n"), 20000),
    # kubectl get pod -o json: many pods, each status after its metadata (read once, not from the top)
    Case("pod-json-many-pods", "kubectl_json",
         lambda n: _lines('{"items": [', '{"metadata": {"name": "w"}, "spec": {"nodeName": "n"}, "status": '
                          '{"containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "X"}}}]}},' * n), 500),
    Case("pod-json-open-states", "kubectl_json", lambda n: _lines('"lastState": {' * n, "\n"), 2000),
    # docker inspect: many containers, cut inside the last State
    Case("docker-many-ids", "docker_inspect",
         lambda n: _lines("[", '{"Id": "0123456789ab", "State": {"Status": "exited", "ExitCode": 137}},\n' * n,
                          '{"Id": "0123456789ab", "State": {'), 1000),
    Case("docker-open-states", "docker_inspect", lambda n: _lines('{"Id": "0123456789ab", "State": {' * n), 2000),
]


def member(case: Case, n: int) -> Member:
    return Member(name=f"{case.name}.txt", data=case.build(n))


def parse(case: Case, m: Member) -> SourceResult:
    return parse_member(m, case.kind, Options())
