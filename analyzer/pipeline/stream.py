"""Read → map → merge over a bundle's members: one `Partial` of every log record, and each member's
coverage, problems and other frames (dumps, inspect, diagnostics), in member order.

A big worker log is read piece by piece (`sources.log_pieces`), each piece mapped to its partial as
soon as it is read, so memory holds a piece and the partials, never the log's records. Everything
else is parsed whole (`sources.parse_members`: small logs in batches) and its records mapped the same
way. Bad input still costs only its own member: a log whose pieces fail is parsed whole, where
`parse_member` turns the failure into a problem.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from analyzer.bundle import Member
from analyzer.pipeline.mapper import map_records
from analyzer.pipeline.partial import Partial
from analyzer.pipeline.spill import TaskStore
from analyzer.sources import Options, SourceResult, log_pieces, parse_member, parse_members
from analyzer.sources.celery_log import Coverage, Interleaved
from analyzer.sources.dumps import embedded_faulthandler

INSPECT_KINDS = ("inspect_json", "inspect_text")  # the inputs that give the `inspect` frame
# Bytes of a log piece; `CPM_PIECE_BYTES` overrides it (tests cut the samples into many pieces). Two
# pieces are in flight (one read, one mapped), each costing about ten times its size at its peak: on
# the 200 MB benchmark log, 32 MB pieces peaked at 672 MB, 16 MB at 403 MB, 8 MB at 311 MB (5% more CPU).
PIECE_BYTES = 16 << 20
PIECE_ENV = "CPM_PIECE_BYTES"
Progress = Callable[[int, str], None]  # bytes of input done so far, the member being read


class Pending(Protocol):
    """A future of a piece's `Partial` (concurrent.futures' or Dask's)."""

    def result(self) -> Partial: ...


# Runs map_records(records, keep) somewhere and returns its `Pending`: the local thread pool by
# default, a Dask client's submit for `analyze-many --cluster` (analyzer.fleet.cluster)
Submit = Callable[..., Pending]


def piece_bytes() -> int:
    raw = os.environ.get(PIECE_ENV, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else PIECE_BYTES


@dataclass
class Reduced:
    partial: Partial
    results: list[SourceResult] = field(default_factory=list)  # per member: coverage, problems, other frames
    # per log read in pieces: each piece's first line and line count, to read one piece again
    pieces: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    piece_bytes: int = PIECE_BYTES
    # per-task rows and the lines of unsettled tasks, taken out of every piece's partial (`spill`)
    store: TaskStore = field(default_factory=lambda: TaskStore(0))


class _Merger:
    """Partials merged as they come, pairwise like a binary counter: two partials of the same rank
    (number of pieces) merge into one of the next rank. Each piece is copied about log2(pieces)
    times, and the partials held are a few of decreasing size, never a list of all of them."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, Partial]] = []

    def add(self, part: Partial) -> None:
        rank = 1
        while self.stack and self.stack[-1][0] == rank:
            _, top = self.stack.pop()
            part, rank = Partial.merge([top, part]), rank * 2
        self.stack.append((rank, part))

    def result(self) -> Partial:
        return Partial.merge([p for _, p in self.stack])


def _whole_events(result: SourceResult) -> pl.DataFrame | None:
    """A whole-parsed member's records as pieces' records: the node its own input names it by is
    already settled (`_hostname`), only the bundle-wide fill is left."""
    events = result.frames.pop("events", None)
    if events is None or events.is_empty():
        return None
    return events.with_columns(pl.col("host").alias("_hostname"), pl.lit(None, dtype=pl.String).alias("stream"),
                               pl.lit(None, dtype=pl.String).alias("host"))


def _streamed(member: Member, kind: str, opts: Options, keep: pl.Expr | None, size: int, pool: ThreadPoolExecutor,
              store: TaskStore, progress: Progress | None, done: int, ranges: list[tuple[int, int]],
              submit: Submit | None = None) -> tuple[Partial, SourceResult] | None:
    pieces = log_pieces(member, kind, opts, size)
    if pieces is None:
        return None
    merger = _Merger()
    covs: list[Coverage] = []
    pending: list[Pending] = []
    first = 1
    mark = store.mark()
    try:
        for records, cov, nbytes in pieces:  # read and parsed here, mapped on the pool: both cores work
            covs.append(cov)
            pending.append((submit or pool.submit)(map_records, records, keep))
            while len(pending) > 1:
                merger.add(store.take(pending.pop(0).result()))
            done += nbytes
            if progress is not None:
                progress(done, member.name)
        for f in pending:
            merger.add(store.take(f.result()))
    except Interleaved:
        store.rollback(mark)
        return None
    except Exception:  # bad input: parsed whole, where the failure becomes the member's problem
        store.rollback(mark)
        return None
    merged = merger.result()
    for cov in covs:
        ranges.append((first, cov.lines))
        first += cov.lines
    result = SourceResult(coverage=[Coverage.merge(covs)])
    found = embedded_faulthandler(member, SourceResult({"events": merged.records}, result.coverage))
    result.frames.update((k, v) for k, v in found.frames.items() if k != "events")
    return merged, result


def reduce_members(members: Sequence[tuple[Member, str]], opts: Options, keep: pl.Expr | None,
                   progress: Progress | None = None, size: int | None = None,
                   submit: Submit | None = None) -> Reduced:
    """The merged partial of every member's records, and each member's other results, in order
    (`submit`: where the pieces of big logs are mapped, see `Submit`)."""
    size = size or piece_bytes()
    merger = _Merger()
    pieces: dict[str, list[tuple[int, int]]] = {}
    results: list[SourceResult | None] = [None] * len(members)
    whole: list[int] = []
    done = 0
    # `celery inspect` output makes every line of a task it lists worth keeping (`spill.last_lines`)
    store = TaskStore(sum(m.size for m, _ in members), all_lines=any(k in INSPECT_KINDS for _, k in members))
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, (member, kind) in enumerate(members):
            ranges: list[tuple[int, int]] = []
            got = _streamed(member, kind, opts, keep, size, pool, store, progress, done, ranges, submit)
            if got is None:
                whole.append(i)
                continue
            part, results[i] = got
            pieces[member.name] = ranges
            merger.add(part)
            done += member.size
            if progress is not None:
                progress(done, member.name)
    if whole:
        parsed = parse_members([members[i] for i in whole], opts)
        for i, result in zip(whole, parsed, strict=True):
            events = _whole_events(result)
            if events is not None:
                merger.add(store.take(map_records(events, keep)))
            results[i] = result
            done += members[i][0].size
            if progress is not None:
                progress(done, members[i][0].name)
    assert all(r is not None for r in results)
    return Reduced(merger.result(), [r for r in results if r is not None], pieces, size, store)


def piece_of(reduced: Reduced, source: str, line: int) -> int:
    """The index of the piece of `source` holding `line` (-1: the input was read whole)."""
    for i, (first, n) in enumerate(reduced.pieces.get(source, ())):
        if first <= line < first + n:
            return i
    return -1


def records_at(member: Member, kind: str, opts: Options, reduced: Reduced, lines: set[int] | None,
               piece: int | None = None) -> dict[int, str]:
    """The text of the records of `member` that start on `lines` (None: all of piece `piece`), read
    again: only the pieces that hold them when the log was read in pieces, else the whole member."""
    ranges = reduced.pieces.get(member.name)
    found: list[pl.DataFrame] = []
    want = pl.lit(True) if lines is None else pl.col("line").is_in(sorted(lines))
    if ranges is not None:
        only = {i: first for i, (first, n) in enumerate(ranges)
                if (i == piece if lines is None else any(first <= ln < first + n for ln in lines))}
        pieces = log_pieces(member, kind, opts, reduced.piece_bytes, only)
        for records, _, _ in pieces or ():
            found.append(records.filter(want))
    else:
        result = parse_member(member, kind, opts)
        events = result.frames.get("events")
        if events is not None:
            found.append(events.filter(want))
    out: dict[int, str] = {}
    for frame in found:
        for line, text in frame.select("line", "text").rows():
            if text is not None:
                out.setdefault(int(line), str(text))
    return out
