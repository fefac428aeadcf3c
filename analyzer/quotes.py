"""Evidence in its file's own words.

Rules on derived frames (threads, cycles, tasks, stuck, inspect, …) point at a real line — a
thread header, an fd listing, a task's first log record — but their row is a description
(`dump=…, tool=py-spy, …`, `w1@sample/12466/12504 "ledger-writer" waits for …`). An operator
opening `file:line` must find what the evidence quotes, so the quote becomes the line as
written and the description its `detail`. Log records are quoted from `events`; any other member
(a dump, a listing) is read again, once, with the parsers' `read_lines`: the only I/O after
parsing, at the edge where the report is assembled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

import polars as pl

from analyzer.bundle import Member
from analyzer.clip import clip
from analyzer.findings import Evidence, Finding
from analyzer.sources.lines import read_lines

MAX_QUOTE = 500  # characters of a quoted line at most
JSON_DOCUMENTS = ("inspect_json", "pyspy_json")  # input kinds whose lines are pieces of one JSON value
# frames whose row is a whole snapshot (`redis-cli INFO`), `line` its first line (`# Server`): the
# row's own account of the values is the quote
SNAPSHOTS = ("redis_info",)


def _lines(member: Member, wanted: set[int]) -> dict[int, str]:
    """Lines `wanted` (1-based) of a member, read as the parsers read them (`read_lines`: colour
    codes, container prefixes and NULs removed)."""
    frame = read_lines(member.path if member.path is not None else member.read()).frame
    hits = frame.filter(pl.col("line").is_in(sorted(wanted))).select("line", "text")
    return {int(n): clip(text, MAX_QUOTE) for n, text in hits.rows()}


Lookup = Callable[[Member, set[int]], dict[int, str]]  # a log member's record texts at some lines


def quote_evidence(findings: Iterable[Finding], frame_of: Mapping[str, str], members: Iterable[Member],
                   events: pl.DataFrame | None = None, documents: Iterable[str] = (),
                   records: Mapping[str, Lookup] | None = None) -> None:
    """Give the evidence of findings from rules on frames other than `events` (`frame_of`: rule id →
    frame) the text at the place it points to, keeping the row's own text as `detail`: a log
    record's text as `events` holds it (what evidence of log rules shows), else the file's line.
    Evidence whose file or line is unknown keeps its text, and so does evidence in `documents`
    (JSON inputs: `celery inspect` writes every worker on one line, whose start may well be
    another worker's entries; the row says which entry it is). `records` (member name → lookup) reads
    records `events` does not hold from the logs again, as their parser reads them."""
    derived = [f for f in findings if frame_of.get(f.rule, "events") not in ("events", *SNAPSHOTS) and f.evidence]
    skip = set(documents)
    keys = sorted({(e.source, e.line) for f in derived for e in f.evidence
                   if e.source and e.line > 0 and e.source not in skip})
    if not keys:
        return
    found: dict[tuple[str, int], str] = {}
    if events is not None and not events.is_empty():
        want = pl.DataFrame(keys, schema={"source": pl.String, "line": pl.Int64}, orient="row")
        hits = want.join(events.select("source", "line", "text"), on=["source", "line"], how="inner")
        found = {(s, n): t for s, n, t in hits.rows() if t is not None}
    wanted: dict[str, set[int]] = {}
    for source, line in keys:
        if (source, line) not in found:
            wanted.setdefault(source, set()).add(line)
    lookups = records or {}
    for m in members:
        if m.name in wanted:
            if m.name in lookups:
                found |= {(m.name, n): t for n, t in lookups[m.name](m, wanted[m.name]).items()}
            else:
                found |= {(m.name, n): t for n, t in _lines(m, wanted[m.name]).items()}
    for f in derived:
        f.evidence = [_quoted(e, found.get((e.source, e.line))) for e in f.evidence]


def _quoted(e: Evidence, line: str | None) -> Evidence:
    if line is None or line == e.text:
        return e
    return dataclasses.replace(e, text=line, detail=e.text)
