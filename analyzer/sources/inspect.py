"""``celery inspect active|reserved|scheduled|stats`` output → `inspect` and `workers` frames.

FORMATS.md D.7. Two forms:

- ``--json``: one line per command, ``kombu.utils.json.dumps(replies)``, a dict keyed by node:
  `{"w1@sample": [{"id": "6a2b690d-…", "name": "proj.reconcile_accounts", …, "time_start":
  1795892574.2921433, "acknowledged": true, …, "worker_pid": 12466}]}`. Several replies may be
  concatenated in one file (one per line); each is decoded on its own, so a truncated last one
  costs only itself.
- text: `->  w1@sample: OK` then `    * {'id': '…', 'name': '…', …}` per task (a Python dict repr,
  read with `ast.literal_eval`, which evaluates literals only), `    - empty -`, and
  `1 node online.`; a stats reply is JSON indented under its node line (CEL:`celery/bin/base.py`
  `CLIContext.pretty`: ``json.dumps(n, sort_keys=True, indent=4)``).

The command is not in the output; it is told by content: a list of ``{"eta", "priority",
"request"}`` is `scheduled`; a list of task infos is `active` when `time_start`/`worker_pid` are
set (a task handed to the pool) and `reserved` when they are null (prefetched only, FORMATS D.7);
a dict with ``pool`` is `stats`. `revoked`, `registered`, `ping` … replies are recognised and
counted but give no rows. `captured_at` is null unless the caller passes one: inspect prints no
time of its own.

`inspect` columns: source, line, host, task_id, task_name, state (active / reserved /
scheduled), time_start (datetime, UTC, naive), worker_pid, acknowledged, redelivered,
routing_key, eta (scheduled), args (JSON string), captured_at.
`workers` columns: source, line, host, pid, processes (list of pids), prefetch_count,
max_concurrency, uptime (s), pool (implementation), total (JSON string name → count),
captured_at.
"""

from __future__ import annotations

import ast
import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from analyzer import schema
from analyzer.clip import SAMPLE_CHARS, clip
from analyzer.sources.checked import LISTED, Rejects, boolean, integer, number, string, timestamp

# the columns are part of the public frame contract
INSPECT = dict(schema.INSPECT)
WORKERS = dict(schema.WORKERS)

# `{"w1@sample": [{"id": "6a2b690d-1fb8-4174-a9df-6b4fe37f5716", "name": "proj.reconcile_accounts", …}]}`
JSON_REPLY_RE = re.compile(r'^\s*\{\s*"[^"@]+@[^"]+":\s*[\[{]')
# `->  w1@sample: OK`, read by `_node` with string operations (as a regex, `^->\s+(\S+@\S+): OK\s*$`
# backtracks over every `@` of a long word)
NODE_PREFIX, NODE_SUFFIX = "->", ": OK"
# `    * {'id': '3ae2e070-…', 'name': 'proj.sync_forever', …}`
TASK_LINE_RE = re.compile(r"^\s+\* (\{.*\})\s*$")
# `    - empty -`
EMPTY_RE = re.compile(r"^\s+- empty -\s*$")
# `1 node online.` / `2 nodes online.`
ONLINE_RE = re.compile(r"^\d+ nodes? online\.\s*$")
# `Error: No nodes replied within time constraint` (exit status non-zero)
NO_REPLY_RE = re.compile(r"No nodes replied within time constraint")
MAX_LITERAL = 1 << 20  # ast.literal_eval input bound (untrusted input)
SAMPLE_LIMIT = 5

SAMPLES = ["samples/deadlock-lock/inspect-active.json", "samples/deadlock-lock/inspect-stats.json"]
_SNIFF_JSON = re.compile(r'^\s*\{\s*"[^"@]+@[^"]+":\s*[\[{]', re.S)
_SNIFF_TEXT = re.compile(r"^->[ \t]+[^\s@]+@\S+: OK", re.M)


def sniff(head: str) -> bool:
    """True for inspect --json replies (kind ``inspect_json``)."""
    return bool(_SNIFF_JSON.search(head))


def sniff_text(head: str) -> bool:
    """True for the text form (kind ``inspect_text``)."""
    return bool(_SNIFF_TEXT.search(head))


@dataclass
class InspectResult:
    inspect: pl.DataFrame
    workers: pl.DataFrame
    lines: int = 0
    parsed: int = 0
    unrecognized: int = 0
    samples: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _task_row(info: dict[str, Any], host: str, source: str, line: int, state: str | None, rej: Rejects,
              eta: Any = None, captured_at: datetime | None = None) -> dict[str, Any]:
    """One `inspect` row; a value that does not fit its column is left empty and noted in `rej`."""
    di = info.get("delivery_info") if isinstance(info.get("delivery_info"), dict) else {}
    assert isinstance(di, dict)
    task_id = string(info.get("id"), f"line {line}, worker {host}", "id", rej)
    where = f"line {line}, worker {host}" + (f", task {task_id}" if task_id else "")
    started = info.get("time_start") is not None or info.get("worker_pid") is not None
    st = state or ("active" if started else "reserved")
    try:
        args = json.dumps(info.get("args"), default=str)
    except (TypeError, ValueError, RecursionError):
        args = None
    name = info.get("name") or info.get("type")
    return {"source": source, "line": line,
            "host": string(info.get("hostname"), where, "hostname", rej) or host, "task_id": task_id,
            "task_name": string(name, where, "name", rej), "state": st,
            "time_start": timestamp(info.get("time_start"), where, "time_start", rej),
            "worker_pid": integer(info.get("worker_pid"), where, "worker_pid", rej),
            "acknowledged": boolean(info.get("acknowledged"), where, "acknowledged", rej),
            "redelivered": boolean(di.get("redelivered"), where, "delivery_info.redelivered", rej),
            "routing_key": string(di.get("routing_key"), where, "delivery_info.routing_key", rej),
            "eta": _text(eta), "args": args, "captured_at": captured_at}


def _text(value: Any) -> str | None:
    """`str(value)` of a value printed as text (an eta), or None."""
    if value is None:
        return None
    try:
        return str(value)
    except (RecursionError, ValueError):
        return None


def _worker_row(stats: dict[str, Any], host: str, source: str, line: int, rej: Rejects,
                captured_at: datetime | None) -> dict[str, Any]:
    where = f"line {line}, worker {host}"
    pool = stats.get("pool") if isinstance(stats.get("pool"), dict) else {}
    assert isinstance(pool, dict)
    procs = pool.get("processes")
    pids = None
    if isinstance(procs, list):
        pids = [p for p in (integer(p, where, "pool.processes[]", rej) for p in procs if isinstance(p, int))
                if p is not None]
    total = stats.get("total")
    try:
        total_s = json.dumps(total) if isinstance(total, dict) else None
    except (TypeError, ValueError, RecursionError):
        total_s = None
    return {"source": source, "line": line, "host": host, "pid": integer(stats.get("pid"), where, "pid", rej),
            "processes": pids, "prefetch_count": integer(stats.get("prefetch_count"), where, "prefetch_count", rej),
            "max_concurrency": integer(pool.get("max-concurrency"), where, "pool.max-concurrency", rej),
            "uptime": number(stats.get("uptime"), where, "uptime", rej),
            "pool": string(pool.get("implementation"), where, "pool.implementation", rej), "total": total_s,
            "captured_at": captured_at}


def _reply_rows(reply: Any, source: str, line: int, captured_at: datetime | None,
                tasks: list[dict[str, Any]], workers: list[dict[str, Any]], rej: Rejects) -> bool:
    """Rows of one decoded reply (node → value); False when it is not an inspect reply.

    Each node's entry stands alone: a node whose value is neither a list nor a dict is noted in
    `rej` and the other nodes are kept; a reply with no usable node at all is not a reply.
    """
    if not isinstance(reply, dict):
        return False
    found = not reply  # `{}`: no node answered
    bad = Rejects()
    for host, value in reply.items():
        node = str(host)
        if isinstance(value, dict) and "pool" in value:
            workers.append(_worker_row(value, node, source, line, rej, captured_at))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and "request" in item and isinstance(item["request"], dict):
                    tasks.append(_task_row(item["request"], node, source, line, "scheduled", rej,
                                           eta=item.get("eta"), captured_at=captured_at))
                elif isinstance(item, dict) and "id" in item:
                    tasks.append(_task_row(item, node, source, line, None, rej, captured_at=captured_at))
                # revoked ids (str), registered names (str): recognised, no rows
        elif not isinstance(value, dict):
            bad.add(f"line {line}, worker {node}", "reply", value, "neither a list nor a dict")
            continue
        found = True
    if found:
        rej.count += bad.count
        rej.first.extend(bad.first[: max(0, LISTED - len(rej.first))])
    return found


def _frames(tasks: list[dict[str, Any]], workers: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (pl.DataFrame(tasks, schema=INSPECT, orient="row"), pl.DataFrame(workers, schema=WORKERS, orient="row"))


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", text))]


class _Failures:
    """Lines that began no complete reply: counted, sampled, and summed up in one note."""

    def __init__(self) -> None:
        self.count = 0
        self.samples: list[tuple[int, str]] = []
        self.first: tuple[int, str] | None = None

    def add(self, line: int, text: str, why: str | None = None) -> None:
        self.count += 1
        if len(self.samples) < SAMPLE_LIMIT:
            self.samples.append((line, clip(text, SAMPLE_CHARS)))
        if why is not None and self.first is None:
            self.first = (line, why)


def parse_json(text: str, *, source: str, captured_at: datetime | None = None) -> InspectResult:
    """Replies of ``celery inspect --json`` (one per line, or pretty-printed over several lines).

    Each reply is decoded once, forward from the start of its line (`_decode_from`); a reply that
    fails is not retried from each of its lines: decoding goes on at the line where it failed, and
    the lines it ran over are decoded alone (a complete one-line reply after a truncated one is
    still read). So a file of unclosed `{` lines costs one pass, not one pass per line.
    """
    tasks: list[dict[str, Any]] = []
    workers: list[dict[str, Any]] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    starts = _line_starts(text)
    dec = json.JSONDecoder()
    fails = _Failures()
    rej = Rejects()
    no_reply: list[tuple[int, str]] = []
    n_unrec = 0
    i = 0
    while i < len(lines):
        s = lines[i]
        if not s.strip():
            i += 1
            continue
        if NO_REPLY_RE.search(s):
            no_reply.append((i + 1, s.strip()))
            i += 1
            continue
        multi = s.lstrip().startswith("{") and not s.rstrip().endswith("}")
        begin = starts[i] + len(s) - len(s.lstrip())
        obj, end, why = _decode_from(dec, text, begin, starts[i] + len(s) + 1) if multi else _decode_line(dec, s)
        if why is not None:  # `end` is where decoding stopped
            fails.add(i + 1, s, why)
            n_unrec += 1
            stop = bisect_right(starts, end) - 1 if multi else i
            for j in range(i + 1, min(stop, len(lines))):  # the lines the failed reply ran over, each alone
                n_unrec += _one_line(lines[j], j + 1, source, captured_at, dec, tasks, workers, fails, rej)
            i = max(stop, i + 1)
            continue
        used = (bisect_right(starts, end - 1) - i) if multi else 1
        if not _reply_rows(obj, source, i + 1, captured_at, tasks, workers, rej):
            n_unrec += used
            fails.add(i + 1, s)
        i += used
    t, w = _frames(tasks, workers)
    notes = _notes(fails, no_reply, rej)
    return InspectResult(t, w, lines=len(lines), parsed=len(lines) - n_unrec, unrecognized=n_unrec,
                         samples=fails.samples, notes=notes)


# `_decode_from` grows its window when decoding stopped this close to the window's end
WINDOW_SLACK = 16


def _decode_from(dec: json.JSONDecoder, text: str, begin: int, first_end: int) -> tuple[Any, int, str | None]:
    """The JSON value starting at `text[begin]`: (value, end, None), or (None, where it stopped, why).

    Decoded in a window from `begin` that doubles while decoding stops at the window's end (the
    first holds the line and a little more), never on `text` itself: a JSONDecodeError counts the
    newlines before its position, so on the whole text each failure would cost the text's length
    so far. Cost: about twice the characters the decoder needed.
    """
    size = max(first_end - begin, 1) + 64
    while True:
        window = text[begin:begin + size]
        last = begin + size >= len(text)
        try:
            obj, end = dec.raw_decode(window)
        except json.JSONDecodeError as exc:
            cut = exc.pos >= len(window) - WINDOW_SLACK or exc.msg.startswith("Unterminated string")
            if cut and not last:
                size *= 2
                continue
            return None, begin + exc.pos, exc.msg
        except (RecursionError, ValueError) as exc:  # too deep; an int past the digit limit
            return None, begin + len(window) - 1, _why(exc)
        return obj, begin + end, None


def _decode_line(dec: json.JSONDecoder, s: str) -> tuple[Any, int, str | None]:
    try:
        obj, end = dec.raw_decode(s.lstrip())
    except json.JSONDecodeError as exc:
        return None, exc.pos, exc.msg
    except (RecursionError, ValueError) as exc:
        return None, 0, _why(exc)
    return obj, end, None


def _why(exc: Exception) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else "a number too long to read"


def _one_line(s: str, line: int, source: str, captured_at: datetime | None, dec: json.JSONDecoder,
              tasks: list[dict[str, Any]], workers: list[dict[str, Any]], fails: _Failures, rej: Rejects) -> int:
    """Decode line `s` on its own (inside a reply that failed); the number of lines not understood."""
    if not s.strip():
        return 0
    try:
        obj, _end = dec.raw_decode(s.lstrip())
    except (RecursionError, ValueError):  # JSONDecodeError is a ValueError
        fails.add(line, s)
        return 1
    if _reply_rows(obj, source, line, captured_at, tasks, workers, rej):
        return 0
    fails.add(line, s)
    return 1


def _notes(fails: _Failures, no_reply: list[tuple[int, str]], rej: Rejects) -> list[str]:
    """One note per kind of trouble, however many lines had it."""
    notes = []
    if no_reply:
        more = f" ({len(no_reply)} such lines)" if len(no_reply) > 1 else ""
        notes.append(f"line {no_reply[0][0]}: {clip(no_reply[0][1], SAMPLE_CHARS)}{more}")
    if fails.first is not None:
        line, why = fails.first
        notes.append(f"{fails.count} line(s) begin no complete JSON reply, first at line {line} ({why}; truncated?)")
    if (r := rej.note()) is not None:
        notes.append(r)
    return notes


def _node(s: str) -> str | None:
    """The node of a `->  w1@sample: OK` line, else None."""
    rest = s[len(NODE_PREFIX):]
    body = rest.strip()
    if not rest[:1].isspace() or not body.endswith(NODE_SUFFIX):
        return None
    node = body[:-len(NODE_SUFFIX)]
    if not node or "@" not in node or any(c.isspace() for c in node):
        return None
    return node


def parse_text(text: str, *, source: str, captured_at: datetime | None = None) -> InspectResult:
    """The non-JSON form: node lines, `* {repr}` task lines, multi-line stats dict reprs."""
    tasks: list[dict[str, Any]] = []
    workers: list[dict[str, Any]] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    fails = _Failures()
    rej = Rejects()
    no_reply: list[tuple[int, str]] = []
    n_unrec = 0
    host: str | None = None
    block: list[tuple[int, str]] = []  # indented lines under a node that are not `* {…}` rows

    def flush() -> None:
        nonlocal n_unrec
        if not block or host is None:
            block.clear()
            return
        body = "\n".join(t for _, t in block).strip()
        value: Any = None
        try:  # Celery prints dict replies (stats) as `json.dumps(n, sort_keys=True, indent=4)`
            value = json.loads(body)
        except ValueError:
            if len(body) <= MAX_LITERAL:
                try:
                    value = ast.literal_eval(body)
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    value = None
        if isinstance(value, dict) and "pool" in value:
            workers.append(_worker_row(value, host, source, block[0][0], rej, captured_at))
        elif not (isinstance(value, (list, dict))):
            n_unrec += len(block)
            for line, text in block[:SAMPLE_LIMIT]:
                fails.add(line, text)
            fails.count += max(0, len(block) - SAMPLE_LIMIT)
        block.clear()

    for i, s in enumerate(lines, start=1):
        node = _node(s) if s.startswith(NODE_PREFIX) else None
        if node is not None:
            flush()
            host = node
            continue
        if not s.strip() or ONLINE_RE.match(s) or EMPTY_RE.match(s):
            continue
        if NO_REPLY_RE.search(s):
            no_reply.append((i, s.strip()))
            continue
        tm = TASK_LINE_RE.match(s)
        if tm and host is not None:
            value = None
            if len(tm.group(1)) <= MAX_LITERAL:
                try:
                    value = ast.literal_eval(tm.group(1))
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    value = None
            if isinstance(value, dict):
                _reply_rows({host: [value]}, source, i, captured_at, tasks, workers, rej)
                continue
        if host is not None and s.startswith((" ", "\t")):
            block.append((i, s))
            continue
        n_unrec += 1
        fails.add(i, s)
    flush()
    t, w = _frames(tasks, workers)
    return InspectResult(t, w, lines=len(lines), parsed=len(lines) - n_unrec, unrecognized=n_unrec,
                         samples=fails.samples, notes=_notes(fails, no_reply, rej))
