"""Decide what an artifact is from its first kilobytes, never from its name.

The table is ordered: specific formats first, the generic Celery log last but one, `text`
last. Each entry is a named regex with a real sample line in its comment, searched in the
head with ANSI colour and container prefixes already removed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from analyzer.sources.lines import RUNTIME_TS_RE, SYSLOG_PREFIX_RE

# ANSI colour, raw or in caret notation (`^[[36m`, a terminal copy)
ANSI = re.compile(r"(?:\x1b|\^\[)\[[0-9;]*[A-Za-z]")
# docker compose v1/v2 (`worker_1  | `, `worker-1  | `) and kubectl --prefix (`[pod/w-1/celery] `), each
# maybe followed by the runtime's time (`--timestamps` / `-t`), which may also come alone; syslog and
# journald (`Nov 28 19:05:09 app-3 celery[1234]: `)
CONTAINER_PREFIX = re.compile(
    r"^(?:(?:[\w.-]+\s*\| |\[pod/[^\]]+\] )(?:" + RUNTIME_TS_RE + r")?|" + RUNTIME_TS_RE + "|"
    + SYSLOG_PREFIX_RE + ")", re.M)


def clean_head(head: bytes) -> str:
    text = head.decode("utf-8", errors="replace")
    return CONTAINER_PREFIX.sub("", ANSI.sub("", text))


# `Process 10248: /usr/local/bin/python3.12 pyth.py` then `Python v3.12.1 (...)`
PYSPY = re.compile(r"^(?:Signal \d+: .*\n)?Process \d+: .*\nPython v\d", re.M)
PYSPY_THREAD = re.compile(r'^Thread (?:\d+|0x[0-9A-F]+) \((?:idle|active|active\+gil|gil)\)', re.M)
# py-spy --json: `[\n  {\n    "pid": 1234,\n    "thread_id": ...`
PYSPY_JSON = re.compile(r'^\s*\[\s*\{\s*"pid":\s*\d+,\s*"thread_id":', re.S)
# `Thread 3 (Thread 0x7f2f958a96c0 (LWP 9653) "worker-b"):` / `#0  futex_wait (...)`
GDB = re.compile(r"^Thread \d+ \((?:Thread 0x[0-9a-f]+ )?\(?LWP \d+\)?.*\):\s*$|^#\d+\s+(?:0x[0-9a-f]+ in )?\S+ \(",
                 re.M)
# `^done,threads=[...]` / `=thread-group-added,id="i1"` / `~"text"`
GDB_MI = re.compile(r'^(?:\d*\^(?:done|error|running)|=thread-group-added|~"|\*stopped)', re.M)
# `Thread 0x00007fd358e5e6c0 (most recent call first):` / `Current thread 0x...`
FAULTHANDLER = re.compile(r"^(?:Current thread|Thread) 0x[0-9a-f]+(?: \[[^\]]*\])? \(most recent call first\):",
                          re.M)
# `{"w1@vm": [{"id": "...", "name": ..., "time_start": ...}]}` (one line, kombu json)
INSPECT_JSON = re.compile(r'^\s*\{\s*"[^"@]+@[^"]+":\s*[\[{]', re.S)
# `->  w1@vm: OK`
INSPECT_TEXT = re.compile(r"^->\s+\S+@\S+: OK", re.M)
# `2026-11-28 18:07:41.104 UTC [1687] ERROR:  deadlock detected`
POSTGRES_LOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[\d+\] (?:\S+ )?"
                          r"(?:LOG|ERROR|FATAL|DETAIL|STATEMENT|HINT|WARNING|PANIC|CONTEXT):  ", re.M)
# `2026-11-28 19:01:04.607256+00:00 [error] <0.6755.0> PLAIN login refused: user 'guest' - …`
RABBITMQ_LOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+(?:[+-]\d\d:\d\d|Z)? "
                          r"\[(?:info|error|warning|debug|notice|critical)\] <\d+\.\d+\.\d+> ", re.M)
# RabbitMQ <= 3.7 (Erlang/OTP reports): `=ERROR REPORT==== 15-Aug-2018::10:05:42 ===` (maybe in Markdown bold)
ERLANG_REPORT = re.compile(r"^(?:\*\*)?=(?:INFO|ERROR|WARNING|CRASH|SUPERVISOR|PROGRESS) REPORT==== "
                           r"\d{1,2}-[A-Z][a-z]{2}-\d{4}::\d\d:\d\d:\d\d(?:\.\d+)? ===", re.M)
# Redis server (src/server.c serverLogRaw): `1:S 05 Jan 2023 08:40:47.159 * Connecting to MASTER …`
REDIS_LOG = re.compile(r"^\d{1,10}:[XCSM] \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d\.\d{3} [.*#-] ", re.M)
# `=====================================\n2026-11-28 ... INNODB MONITOR OUTPUT`
INNODB_STATUS = re.compile(r"INNODB MONITOR OUTPUT|LATEST DETECTED DEADLOCK")
# `# Server` / `redis_version:7.0.15` / `# Replication` `role:slave` (one section is enough)
REDIS_INFO_SECTION = re.compile(r"^# (?:Server|Clients|Memory|Persistence|Stats|Replication|CPU|Modules|"
                                r"Errorstats|Cluster|Keyspace|Keysizes)\r?$", re.M)
REDIS_INFO_FIELD = re.compile(r"^[a-z][a-z0-9_]*:[^\s:]*\r?$", re.M)
# `rabbitmqctl list_queues`: `Listing queues for vhost cpm-events-storm ...`, or (with -q) its tab-separated
# header `name\tmessages\tconsumers\tmemory` (a column only queues have next to `name`)
RABBITMQ_QUEUES = re.compile(r"^Listing queues(?: for vhost .*)? \.\.\.\r?$|^name(?:\t[a-z_.]+)*\t"
                             r"(?:messages(?:_ready|_unacknowledged)?|consumers|consumer_utilisation)(?:\t[a-z_.]+)*\r?$",
                             re.M)
# `Listing queues for vhost / ...` / `Asking node rabbit@localhost to report any known resource alarms`
RABBITMQ_CLI = re.compile(r"^(?:Listing (?:queues|connections|channels|consumers|exchanges|permissions|users|vhosts|"
                          r"bindings|policies)|Asking node \S+ to|Timeout: \d+(?:\.\d+)? seconds \.\.\.)", re.M)
# /proc/locks: `1: POSIX  ADVISORY  WRITE 14328 fe:00:2146481 200 200` / `1: -> POSIX  ADVISORY  WRITE 14327 …`
PROC_LOCKS = re.compile(r"^\d+: (?:-> )?(?:POSIX|FLOCK|OFDLCK|LEASE) ", re.M)
# `/proc/10379/fd:` (ls -l of several fd dirs), `/proc/10382/wchan:anon_pipe_write` (grep -H . /proc/PID/…),
# `lr-x------ 1 root root 64 Nov 28 21:08 10 -> pipe:[18313]` (an fd link to a pipe, socket or anon inode)
PROCFS = re.compile(r"^/proc/\d+(?:/task/\d+)?/(?:fd:[ \t]*$|(?:stat|wchan|syscall|stack|status):)"
                    r"|^l[r-][w-]\S*\s+\d+\s+\S+\s+\S+\s+\d+ .*\s(?:/proc/\d+/fd/)?\d+ -> "
                    r"(?:pipe|socket|anon_inode):", re.M)
# ps: a header naming PID and a command column, then a process line: `  PID  PPID STAT WCHAN  CMD` /
# `10379 10377 S    do_wait  /work/main/.venv/bin/python3 …`
PS = re.compile(r"^[ \t]*(?:[A-Z%]+[ \t]+)*PID\b[A-Z% \t]*\b(?:CMD|COMMAND|ARGS)\b[A-Z% \t]*\n"
                r"[ \t]*(?:\S+[ \t]+)?\d+[ \t]", re.M)
# `core file size          (blocks, -c) 0`
ULIMIT = re.compile(r"^(?:core file size|open files)\s+\(.*\) ", re.M)
# JSON lines logs: `{"asctime": "...", "levelname": "INFO", ... "message": ...}`, structlog's
# `{"event": "mingle: all alone", "timestamp": "…", "level": "info"}` (keys in any order)
JSON_LOG = re.compile(r'^\{(?=[^\n]*"(?:levelname|level|levelno|severity)"\s*:)(?=[^\n]*"(?:message|msg|event)"\s*:)',
                      re.M)
# `[2026-11-28 17:58:37,378: INFO/MainProcess] ...`
CELERY_LOG = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: [A-Z]+/[^\]]+\] ", re.M)
# A custom `worker_log_format` that starts with the time: `2026-11-28 19:02:41,686 INFO [MainProcess] …`
TIMESTAMPED_LOG = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d{3}\S* "
                             r".*\b(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\b", re.M)
# The banner alone (a worker.stdout without -f log lines): ` -------------- w1@sample v5.7.0 (collider)`
CELERY_BANNER = re.compile(r"^ -{5,} \S+@\S+ v\d[\w.]* \(", re.M)

# Kernel logs: printk time `[  327.364661] ` (dmesg, kern.log after its syslog prefix) or `dmesg -T`'s
# `[Tue Dec  8 01:13:52 2026] ` at the start of most lines (`KERNEL_SHARE`); or syslog / journald lines whose
# identifier is `kernel` (journalctl -k: `Dec 08 01:14:05 vm kernel: python3[8741]: segfault at 0 …`),
# searched in the head before prefixes are removed
KERNEL_STAMP = re.compile(r"^\[\s*\d{1,10}\.\d{6}\] |^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d \d{4}\] ",
                          re.M)
SYSLOG_KERNEL = re.compile(r"^(?:<\d{1,3}>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
                           r"(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) [\w.-]+ kernel: ", re.M)
KERNEL_SHARE = 0.5


def kernel_head(head: str, pattern: re.Pattern[str]) -> bool:
    """Whether at least `KERNEL_SHARE` of the head's non-blank lines (its first 200) match `pattern`."""
    lines = [ln for ln in head.splitlines()[:200] if ln.strip()]
    return bool(lines) and sum(bool(pattern.match(ln)) for ln in lines) >= KERNEL_SHARE * len(lines)


# `kubectl describe pod`: `Name:         celeryworker-944bc665b-qjb9k` then `Namespace:    kubechat`; or a
# pasted fragment of it, a container state and its first detail: `    Last State:     Terminated` /
# `      Reason:       OOMKilled`
KUBECTL_DESCRIBE = re.compile(r"^Name:[ \t]+\S+[ \t]*\n(?:.*\n){0,3}?Namespace:[ \t]+\S"
                              r"|^[ \t]+(?:Last State|State|Last Termination State):[ \t]+"
                              r"(?:Running|Waiting|Terminated)[ \t]*\n[ \t]+(?:Reason|Started|Exit Code):", re.M)
# `kubectl get pod -o json`: a Pod, or a List whose items are: `"kind": "Pod",`; or
# a pasted piece of one: `"lastState": {` / `"terminated": {`
KUBECTL_JSON = re.compile(r'"kind"\s*:\s*"Pod"|"(?:lastState|state)"\s*:\s*\{\s*"(?:terminated|waiting)"\s*:\s*\{')
# `docker inspect`: `[\n    {\n        "Id": "c35e838c9646…",` or its `"State": {… "OOMKilled": false, …}` alone
DOCKER_INSPECT = re.compile(r'^\s*\[\s*\{\s*"Id"\s*:\s*"[0-9a-f]{12,64}"'
                            r'|"State"\s*:\s*\{[^{}]*"OOMKilled"\s*:', re.S)


def _is_core(head: bytes) -> bool:
    # ELF, e_type == ET_CORE (4), little or big endian
    if not head.startswith(b"\x7fELF") or len(head) < 18:
        return False
    little = head[5] == 1
    e_type = int.from_bytes(head[16:18], "little" if little else "big")
    return e_type == 4


Detector = Callable[[str], bool]

DETECTORS: list[tuple[str, Detector]] = [
    ("pyspy_json", lambda h: bool(PYSPY_JSON.search(h))),
    ("inspect_json", lambda h: bool(INSPECT_JSON.search(h))),
    ("pyspy", lambda h: bool(PYSPY.search(h) or PYSPY_THREAD.search(h))),
    ("gdb_mi", lambda h: bool(GDB_MI.search(h))),
    ("gdb", lambda h: bool(GDB.search(h))),
    ("mysql_innodb_status", lambda h: bool(INNODB_STATUS.search(h))),
    ("postgres_log", lambda h: bool(POSTGRES_LOG.search(h))),
    ("rabbitmq_log", lambda h: bool(RABBITMQ_LOG.search(h) or ERLANG_REPORT.search(h))),
    ("redis_log", lambda h: bool(REDIS_LOG.search(h))),
    ("redis_info", lambda h: bool(REDIS_INFO_SECTION.search(h)) and len(REDIS_INFO_FIELD.findall(h)) >= 2),
    ("rabbitmq_queues", lambda h: bool(RABBITMQ_QUEUES.search(h))),
    ("rabbitmq_cli", lambda h: bool(RABBITMQ_CLI.search(h))),
    ("ulimit", lambda h: bool(ULIMIT.search(h))),
    ("proc_locks", lambda h: bool(PROC_LOCKS.search(h))),
    ("procfs", lambda h: bool(PROCFS.search(h))),
    ("ps", lambda h: bool(PS.search(h))),
    ("inspect_text", lambda h: bool(INSPECT_TEXT.search(h))),
    ("json_log", lambda h: bool(JSON_LOG.search(h))),
    ("kernel_log", lambda h: kernel_head(h, KERNEL_STAMP)),
    ("celery_log", lambda h: bool(CELERY_LOG.search(h) or CELERY_BANNER.search(h) or TIMESTAMPED_LOG.search(h))),
    # container status (after the logs: a worker log quoting a describe fragment stays a log)
    ("kubectl_describe", lambda h: bool(KUBECTL_DESCRIBE.search(h))),
    ("kubectl_json", lambda h: bool(KUBECTL_JSON.search(h))),
    ("docker_inspect", lambda h: bool(DOCKER_INSPECT.search(h))),
    # a bare faulthandler dump (a log with an embedded one is still a celery_log)
    ("faulthandler", lambda h: bool(FAULTHANDLER.search(h))),
]

KINDS: tuple[str, ...] = ("core", *(k for k, _ in DETECTORS), "text", "binary")


# Control bytes text never holds (tab, LF, VT, FF, CR and ESC, for ANSI colour, are text). NUL is
# not counted: `logrotate copytruncate` leaves a run of them at the start of a log whose writer
# kept its offset, and a stray one is noise, not a sign of binary content.
_CONTROL = bytes(b for b in range(1, 32) if b not in b"\t\n\v\f\r\x1b") + b"\x7f"
# Share of those in the NUL-free head above which it is binary: random bytes hold ~12%, ELF
# executables far more; a text log a stray byte or two per KB at most.
BINARY_SHARE = 0.05


def _is_binary(head: bytes) -> bool:
    """Binary content, judged on the first KB of the head with NUL bytes removed."""
    window = head[:1024]
    if not window:
        return False
    controls = len(window) - len(window.translate(None, _CONTROL))
    return controls / len(window) > BINARY_SHARE


def sniff(head: bytes) -> str:
    """The kind of an artifact from its first bytes; NUL bytes are not content (see `_CONTROL`)."""
    if _is_core(head):
        return "core"
    if b"\x00" in head:
        head = head.replace(b"\x00", b"")
    if not head:
        return "text"
    if _is_binary(head):
        return "binary"
    if kernel_head(ANSI.sub("", head.decode("utf-8", errors="replace")), SYSLOG_KERNEL):
        return "kernel_log"
    text = clean_head(head)
    for kind, detect in DETECTORS:
        if detect(text):
            return kind
    return "text"
