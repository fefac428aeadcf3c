"""`kubectl get pod -o json` and `docker inspect` → `containers` rows, read even when cut short.

People paste these JSON documents into threads and tickets, and a paste is often cut (a length
limit, a `| head`). So the parsers do not parse the document as a whole: they find the objects
they need by their keys and decode each one on its own (`json.JSONDecoder.raw_decode`), so what
stands before the cut is read and its line numbers are known. What follows the last object read
is counted as unrecognised, with a note.

- Pods (a `Pod` or a `List` of them; kubectl sorts keys, so `metadata` and `spec` come before
  `status`): each `"containerStatuses": [...]` element is a `ContainerStatus` (`name`, `state`,
  `lastState`, `restartCount`), the pod's name and namespace from the `metadata` before it, the
  node from `spec.nodeName`, memory limits from `spec.containers[].resources.limits.memory`.
- Docker (`docker inspect` prints an array of `ContainerJSON` in struct order: `Id`, `Created`,
  `Path`, `Args`, `State`, …, `Name`, `RestartCount`, `HostConfig`, …, `Config`): per `"Id"`, its
  `State` object; `Name`, `RestartCount`, `HostConfig.Memory` and `Config.Hostname` are the first
  such keys after it.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from analyzer.sources.celery_log import Coverage
from analyzer.sources.container_rows import Row, api_time, as_int, as_str, frame
from analyzer.sources.lines import Lines

_DECODER = json.JSONDecoder()

CONTAINER_STATUSES_RE = re.compile(r'"(?:initC|ephemeralC|c)ontainerStatuses"\s*:\s*\[')
METADATA_RE = re.compile(r'"metadata"\s*:\s*(?=\{)')
NODE_NAME_RE = re.compile(r'"nodeName"\s*:\s*"([^"\\]{0,253})"')
SPEC_CONTAINERS_RE = re.compile(r'"(?:initC|c)ontainers"\s*:\s*(?=\[)')
# a ContainerStatus key whose value is one of running / waiting / terminated
STATUS_KEY_RE = re.compile(r'"(state|lastState)"\s*:\s*(?=\{)')
DOCKER_ID_RE = re.compile(r'"Id"\s*:\s*"([0-9a-f]{12,64})"')
DOCKER_STATE_RE = re.compile(r'"State"\s*:\s*(?=\{)')
DOCKER_NAME_RE = re.compile(r'"Name"\s*:\s*"([^"\\]{0,256})"')
DOCKER_RESTARTS_RE = re.compile(r'"RestartCount"\s*:\s*(\d{1,18})')
DOCKER_MEMORY_RE = re.compile(r'"Memory"\s*:\s*(\d{1,19})')
DOCKER_HOSTNAME_RE = re.compile(r'"Hostname"\s*:\s*"([^"\\]{0,253})"')


class _Text:
    """The input as one string, with the line number of every offset."""

    def __init__(self, lines: Lines) -> None:
        rows = lines.frame.select("line", "text").rows()
        self.numbers = [int(n) for n, _ in rows]
        self.text = "\n".join(t for _, t in rows)
        self.starts: list[int] = []
        at = 0
        for _, t in rows:
            self.starts.append(at)
            at += len(t) + 1

    def line(self, offset: int) -> int:
        i = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        return self.numbers[i] if self.numbers else 0

    def decode(self, at: int, *, whole: bool = False) -> tuple[Any, int] | None:
        """The JSON value starting at offset `at` and the offset after it; None when cut or invalid.

        Unless `whole`, only a value that closes without nesting deeper than MAX_DEPTH is decoded:
        the objects sought are shallow, and decoding every key of a run of `"state": {` as deep as
        the decoder goes would make the time grow with the square of the input. (Each key sought
        opens a level, so a scan from one stops within MAX_DEPTH of the next: linear in all.)"""
        if not whole and not _closes(self.text, at):
            return None
        try:
            return _DECODER.raw_decode(self.text, at)
        except (ValueError, RecursionError):
            return None


# what `_closes` steps over: quotes, brackets, and an escape inside a string
STRUCTURE_RE = re.compile(r'\\.|["{}\[\]]', re.S)
MAX_DEPTH = 32


def _closes(text: str, at: int) -> bool:
    """Whether the value at `at` is a scalar, or an object or array that closes without nesting
    deeper than MAX_DEPTH."""
    if at >= len(text) or text[at] not in "{[":
        return True
    depth, quoted = 0, False
    for m in STRUCTURE_RE.finditer(text, at):
        c = m.group()
        if c[0] == "\\":
            continue
        if c == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif c in "{[":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        else:
            depth -= 1
            if depth == 0:
                return True
    return False


def _array_items(doc: _Text, at: int) -> Iterator[tuple[int, int, Any]]:
    """(start, end, value) of each element of the JSON array whose `[` is at `at`, up to a cut."""
    pos, text = at + 1, doc.text
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return
        found = doc.decode(pos)
        if found is None:
            return
        value, end = found
        yield pos, end, value
        pos = end


def _coverage(doc: _Text, lines: Lines, source: str, kind: str, first: int | None, last: int) -> Coverage:
    """Lines from the first object read to the end of the last one are parsed; the rest (a shell
    prompt before, the cut tail after) unrecognised."""
    df = lines.frame
    whole = doc.decode(_json_start(doc.text), whole=True) if first is not None else None
    if whole is not None:  # a complete document: all of it was understood
        first, last = min(first or 0, _json_start(doc.text)), max(last, whole[1])
    if first is None:
        unrec = df.filter(pl.col("text").str.strip_chars() != "")
    else:
        lo, hi = doc.line(first), doc.line(max(last - 1, first))
        tail = doc.text[last:].strip().strip("]}, \n\t")
        unrec = df.filter(((pl.col("line") < lo) | ((pl.col("line") > hi) & bool(tail)))
                          & (pl.col("text").str.strip_chars() != ""))
    cov = Coverage.of(source, kind, df, unrec, invalid_utf8=lines.invalid_utf8)
    if first is None:
        cov.notes.append("no container status in it (a copy cut before `status` / `State`?)")
    if first is not None and whole is None:
        cut = doc.line(max(last - 1, 0))
        cov.notes.append(f"the JSON is cut or invalid after line {cut}: what came before was read")
    return cov


def _json_start(text: str) -> int:
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    return min(starts) if starts else 0


# --- kubectl get pod -o json ------------------------------------------------------------------


@dataclass
class _Pod:
    """The pod a status belongs to: what its `metadata` and `spec` said, read once, up to `upto`."""

    name: str | None = None
    namespace: str | None = None
    node: str | None = None
    limits: dict[str, str] = field(default_factory=dict)
    upto: int = 0


def _advance(doc: _Text, pod: _Pod, before: int) -> _Pod:
    """The pod whose status starts at `before`: the last `metadata` with a name between the previous
    status and this one (each stretch of the text is searched once), else the previous pod."""
    found_at, meta = None, None
    for m in METADATA_RE.finditer(doc.text, pod.upto, before):
        found = doc.decode(m.end())
        if found is not None and isinstance(found[0], dict) and isinstance(found[0].get("name"), str):
            found_at, meta = found[1], found[0]
    if meta is None or found_at is None:
        return _Pod(pod.name, pod.namespace, pod.node, pod.limits, before)
    nodes = NODE_NAME_RE.findall(doc.text, found_at, before)
    limits: dict[str, str] = {}
    for m in SPEC_CONTAINERS_RE.finditer(doc.text, found_at, before):
        found = doc.decode(m.end())
        for spec in found[0] if found is not None and isinstance(found[0], list) else []:
            if not isinstance(spec, dict):
                continue
            resources = spec.get("resources")
            limit = resources.get("limits") if isinstance(resources, dict) else None
            name, memory = spec.get("name"), limit.get("memory") if isinstance(limit, dict) else None
            if isinstance(name, str) and isinstance(memory, str | int) and not isinstance(memory, bool):
                limits[name] = str(memory)
    return _Pod(as_str(meta.get("name")), as_str(meta.get("namespace")), (nodes[-1] or None) if nodes else None,
                limits, before)


def _status_rows(doc: _Text, source: str, start: int, end: int) -> list[Row]:
    """A row per `"state"` / `"lastState"` between offsets `start` and `end` that holds a state."""
    rows = []
    for m in STATUS_KEY_RE.finditer(doc.text, start, end):
        found = doc.decode(m.end())
        if found is None or not isinstance(found[0], dict):
            continue
        value, stop = found
        kind = next((k for k in ("terminated", "waiting", "running") if isinstance(value.get(k), dict)), None)
        if kind is None:
            continue  # `"lastState": {}`: no previous run
        inner: dict[str, Any] = value[kind]
        reason_at = doc.text.find('"reason"', m.end(), stop)
        rows.append(Row(source, doc.line(reason_at if reason_at >= 0 else m.start()), "kubectl-json",
                        "state" if m[1] == "state" else "last_state", state=kind,
                        reason=as_str(inner.get("reason")), exit_code=as_int(inner.get("exitCode")),
                        signal=as_int(inner.get("signal")) or None, message=as_str(inner.get("message")),
                        started_at=api_time(inner.get("startedAt")), finished_at=api_time(inner.get("finishedAt"))))
    return rows


def parse_pods(lines: Lines, *, source: str) -> tuple[pl.DataFrame, Coverage]:
    doc = _Text(lines)
    rows: list[Row] = []
    first: int | None = None
    last = 0
    pod = _Pod()
    for m in CONTAINER_STATUSES_RE.finditer(doc.text):
        pod = _advance(doc, pod, m.start())
        for start, end, status in _array_items(doc, m.end() - 1):
            first = min(start, _json_start(doc.text)) if first is None else first
            last = max(last, end)
            if not isinstance(status, dict):
                continue
            for row in _status_rows(doc, source, start, end):
                row.pod, row.namespace, row.node = pod.name, pod.namespace, pod.node
                row.container = as_str(status.get("name"))
                row.restart_count = as_int(status.get("restartCount"))
                row.memory_limit_text = pod.limits.get(row.container or "")
                rows.append(row)
    if first is None:  # a pasted piece of a status (`"lastState": {"terminated": {...}}`), no pod around it
        matches = list(STATUS_KEY_RE.finditer(doc.text))
        rows = _status_rows(doc, source, 0, len(doc.text))
        ends = [found[1] for m in matches if (found := doc.decode(m.end())) is not None]
        if rows and ends:
            first, last = matches[0].start(), max(ends)
    return frame(sorted(rows, key=lambda r: r.line)), _coverage(doc, lines, source, "kubectl_json", first, last)


# --- docker inspect ---------------------------------------------------------------------------


def parse_docker(lines: Lines, *, source: str) -> tuple[pl.DataFrame, Coverage]:
    doc = _Text(lines)
    text = doc.text
    ids = list(DOCKER_ID_RE.finditer(text))
    # a bare `"State": {...}` pasted without its container counts as one with no id
    bounds = [(m.start(), m[1]) for m in ids] or [(0, "")]
    rows: list[Row] = []
    first: int | None = None
    last = 0
    for i, (at, cid) in enumerate(bounds):
        stop = bounds[i + 1][0] if i + 1 < len(bounds) else len(text)
        state_m = DOCKER_STATE_RE.search(text, at, stop)
        if state_m is None:
            continue
        found = doc.decode(state_m.end())
        if found is None or not isinstance(found[0], dict):
            continue
        state, end = found
        first = min(at, _json_start(text)) if first is None else first
        after = (DOCKER_NAME_RE.search(text, end, stop), DOCKER_RESTARTS_RE.search(text, end, stop),
                 DOCKER_MEMORY_RE.search(text, end, stop), DOCKER_HOSTNAME_RE.search(text, end, stop))
        name, restarts, memory, hostname = (m[1] if m else None for m in after)
        last = max([end, *(m.end() for m in after if m)])
        status = (as_str(state.get("Status")) or "").lower()
        oom = state.get("OOMKilled") if isinstance(state.get("OOMKilled"), bool) else None
        error = as_str(state.get("Error"))
        reason_at = text.find('"OOMKilled"', state_m.end(), end)
        rows.append(Row(
            source, doc.line(reason_at if reason_at >= 0 else state_m.start()), "docker-inspect", "state",
            state={"exited": "terminated", "dead": "terminated", "restarting": "waiting", "created": "waiting"}.get(
                status, status or None),
            container=(name or "").lstrip("/") or (cid[:12] or None), node=hostname or None,
            reason="OOMKilled" if oom else None, exit_code=as_int(state.get("ExitCode")), oom_killed=oom,
            restart_count=as_int(restarts) if restarts else None, message=error,
            started_at=api_time(state.get("StartedAt")), finished_at=api_time(state.get("FinishedAt")),
            memory_limit_text=memory if memory and memory != "0" else None))
    return frame(rows), _coverage(doc, lines, source, "docker_inspect", first, last)
