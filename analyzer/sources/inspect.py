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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from analyzer import schema
from analyzer.clip import SAMPLE_CHARS, clip

# the columns are part of the public frame contract
INSPECT = dict(schema.INSPECT)
WORKERS = dict(schema.WORKERS)

# `{"w1@sample": [{"id": "6a2b690d-1fb8-4174-a9df-6b4fe37f5716", "name": "proj.reconcile_accounts", …}]}`
JSON_REPLY_RE = re.compile(r'^\s*\{\s*"[^"@]+@[^"]+":\s*[\[{]')
# `->  w1@sample: OK`
NODE_RE = re.compile(r"^->\s+(\S+@\S+): OK\s*$")
# `    * {'id': '3ae2e070-…', 'name': 'proj.sync_forever', …}`
TASK_LINE_RE = re.compile(r"^\s+\* (\{.*\})\s*$")
# `    - empty -`
EMPTY_RE = re.compile(r"^\s+- empty -\s*$")
# `1 node online.` / `2 nodes online.`
ONLINE_RE = re.compile(r"^\d+ nodes? online\.\s*$")
# `Error: No nodes replied within time constraint` (exit status non-zero)
NO_REPLY_RE = re.compile(r"No nodes replied within time constraint")
MAX_LITERAL = 1 << 20  # ast.literal_eval input bound (untrusted input)

SAMPLES = ["samples/deadlock-lock/inspect-active.json", "samples/deadlock-lock/inspect-stats.json"]
_SNIFF_JSON = re.compile(r'^\s*\{\s*"[^"@]+@[^"]+":\s*[\[{]', re.S)
_SNIFF_TEXT = re.compile(r"^->\s+\S+@\S+: OK", re.M)


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


def _ts(v: Any) -> datetime | None:
    if isinstance(v, (int, float)) and v > 0:
        return datetime.fromtimestamp(float(v), tz=UTC).replace(tzinfo=None)
    return None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _task_row(info: dict[str, Any], host: str, source: str, line: int, state: str | None,
              eta: Any = None, captured_at: datetime | None = None) -> dict[str, Any]:
    di = info.get("delivery_info") if isinstance(info.get("delivery_info"), dict) else {}
    assert isinstance(di, dict)
    started = info.get("time_start") is not None or info.get("worker_pid") is not None
    st = state or ("active" if started else "reserved")
    try:
        args = json.dumps(info.get("args"), default=str)
    except (TypeError, ValueError):
        args = None
    return {"source": source, "line": line, "host": info.get("hostname") or host, "task_id": info.get("id"),
            "task_name": info.get("name") or info.get("type"), "state": st, "time_start": _ts(info.get("time_start")),
            "worker_pid": _int(info.get("worker_pid")), "acknowledged": info.get("acknowledged"),
            "redelivered": di.get("redelivered"), "routing_key": di.get("routing_key"),
            "eta": str(eta) if eta is not None else None, "args": args, "captured_at": captured_at}


def _worker_row(stats: dict[str, Any], host: str, source: str, line: int,
                captured_at: datetime | None) -> dict[str, Any]:
    pool = stats.get("pool") if isinstance(stats.get("pool"), dict) else {}
    assert isinstance(pool, dict)
    procs = pool.get("processes")
    uptime = stats.get("uptime")
    total = stats.get("total")
    return {"source": source, "line": line, "host": host, "pid": _int(stats.get("pid")),
            "processes": [p for p in procs if isinstance(p, int)] if isinstance(procs, list) else None,
            "prefetch_count": _int(stats.get("prefetch_count")), "max_concurrency": _int(pool.get("max-concurrency")),
            "uptime": float(uptime) if isinstance(uptime, (int, float)) else None,
            "pool": pool.get("implementation"), "total": json.dumps(total) if isinstance(total, dict) else None,
            "captured_at": captured_at}


def _reply_rows(reply: Any, source: str, line: int, captured_at: datetime | None,
                tasks: list[dict[str, Any]], workers: list[dict[str, Any]]) -> bool:
    """Rows of one decoded reply (node → value); False when it is not an inspect reply."""
    if not isinstance(reply, dict):
        return False
    for host, value in reply.items():
        if isinstance(value, dict) and "pool" in value:
            workers.append(_worker_row(value, str(host), source, line, captured_at))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and "request" in item and isinstance(item["request"], dict):
                    tasks.append(_task_row(item["request"], str(host), source, line, "scheduled",
                                           eta=item.get("eta"), captured_at=captured_at))
                elif isinstance(item, dict) and "id" in item:
                    tasks.append(_task_row(item, str(host), source, line, None, captured_at=captured_at))
                # revoked ids (str), registered names (str): recognised, no rows
        elif not isinstance(value, dict):
            return False
    return True


def _frames(tasks: list[dict[str, Any]], workers: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (pl.DataFrame(tasks, schema=INSPECT, orient="row"), pl.DataFrame(workers, schema=WORKERS, orient="row"))


def parse_json(text: str, *, source: str, captured_at: datetime | None = None) -> InspectResult:
    tasks: list[dict[str, Any]] = []
    workers: list[dict[str, Any]] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    dec = json.JSONDecoder()
    unrec: list[tuple[int, str]] = []
    n_unrec = 0
    notes: list[str] = []
    # usually one reply per line; a pretty-printed reply spans lines, so decode from each start
    i = 0
    while i < len(lines):
        s = lines[i]
        if not s.strip():
            i += 1
            continue
        if NO_REPLY_RE.search(s):
            notes.append(f"line {i + 1}: {s.strip()}")
            i += 1
            continue
        chunk = "\n".join(lines[i:]) if s.lstrip().startswith("{") and not s.rstrip().endswith("}") else s
        try:
            obj, end = dec.raw_decode(chunk.lstrip())
        except json.JSONDecodeError as exc:
            n_unrec += 1
            if len(unrec) < 5:
                unrec.append((i + 1, clip(s, SAMPLE_CHARS)))
            notes.append(f"line {i + 1}: not a complete JSON reply ({exc.msg}; truncated?)")
            i += 1
            continue
        used = chunk.lstrip()[:end].count("\n") + 1
        if not _reply_rows(obj, source, i + 1, captured_at, tasks, workers):
            n_unrec += used
            if len(unrec) < 5:
                unrec.append((i + 1, clip(s, SAMPLE_CHARS)))
        i += used
    t, w = _frames(tasks, workers)
    return InspectResult(t, w, lines=len(lines), parsed=len(lines) - n_unrec, unrecognized=n_unrec,
                         samples=unrec, notes=notes)


def parse_text(text: str, *, source: str, captured_at: datetime | None = None) -> InspectResult:
    """The non-JSON form: node lines, `* {repr}` task lines, multi-line stats dict reprs."""
    tasks: list[dict[str, Any]] = []
    workers: list[dict[str, Any]] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    unrec: list[tuple[int, str]] = []
    n_unrec = 0
    notes: list[str] = []
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
            workers.append(_worker_row(value, host, source, block[0][0], captured_at))
        elif not (isinstance(value, (list, dict))):
            n_unrec += len(block)
            unrec.extend(block[: max(0, 5 - len(unrec))])
        block.clear()

    for i, s in enumerate(lines, start=1):
        m = NODE_RE.match(s)
        if m:
            flush()
            host = m.group(1)
            continue
        if not s.strip() or ONLINE_RE.match(s) or EMPTY_RE.match(s):
            continue
        if NO_REPLY_RE.search(s):
            notes.append(f"line {i}: {s.strip()}")
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
                _reply_rows({host: [value]}, source, i, captured_at, tasks, workers)
                continue
        if host is not None and s.startswith((" ", "\t")):
            block.append((i, s))
            continue
        n_unrec += 1
        if len(unrec) < 5:
            unrec.append((i, clip(s, SAMPLE_CHARS)))
    flush()
    t, w = _frames(tasks, workers)
    return InspectResult(t, w, lines=len(lines), parsed=len(lines) - n_unrec, unrecognized=n_unrec,
                         samples=unrec[:5], notes=notes)
