"""One parser per artifact kind, chosen by `analyzer.sniff`; the registry maps kind → parser.

A parser takes a bundle member and the options and returns frames plus coverage. It never
raises on bad input: `parse_member` turns an exception into a problem and counts the member's
lines as unrecognised, so the rest of the bundle goes on.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from analyzer import sniff
from analyzer.bundle import Member, Problem
from analyzer.sources import (
    celery_log,
    innodb_status,
    json_log,
    kernel_log,
    layouts,
    proc_locks,
    procfs,
    ps,
    rabbitmq_queues,
    redis_info,
    server_logs,
    text_log,
    ulimit,
)
from analyzer.sources.celery_log import Coverage
from analyzer.sources.lines import Lines, read_lines
from analyzer.sources.log_format import LogFormat


@dataclass(frozen=True)
class Options:
    log_formats: tuple[LogFormat, ...] = ()
    # the user's own executable for core files (the only way a file outside the bundle reaches gdb)
    core_executable: Path | None = None
    # the bundle's members by name, for sidecars (core.json) that name another member
    siblings: Mapping[str, Member] = field(default_factory=dict)


@dataclass
class SourceResult:
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    coverage: list[Coverage] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


Parser = Callable[[Member, Options], SourceResult]


def _data(member: Member) -> bytes | Path:
    if member.path is not None:
        return member.path
    assert member.data is not None
    return member.data


def _head_layout(member: Member) -> layouts.Layout:
    """The layout of a log's head (`layouts.detect`): Celery's default read positionally, else a
    `logging` format learned from its lines."""
    return layouts.detect(read_lines(member.head(HEAD_LAYOUT_BYTES)).frame)


HEAD_LAYOUT_BYTES = 1 << 16


def _celery_log(member: Member, opts: Options) -> SourceResult:
    data = _data(member)
    if not opts.log_formats and not _default_head(member):
        layout = _head_layout(member)
        if layout.name == "logging":  # a custom worker_log_format, learned: read like a given one
            result = _celery_log(member, replace(opts, log_formats=tuple(layout.compiled)))
            for cov in result.coverage:
                cov.layout = layout.name
                cov.notes.append(layout.describe())
            return result
    if not opts.log_formats:  # the lines are not kept: a big file is parsed piece by piece
        parsed = celery_log.parse(data, source=member.name)
        return SourceResult({"events": parsed.events}, [parsed.coverage])
    formats = list(opts.log_formats)
    # The users' formats or the default one, whichever reads more of the file; a big file is
    # judged on its first PROBE_BYTES that hold a header of either kind (a crash-looping worker's
    # stdout may open with MBs of banners, which decide nothing) and then read piece by piece.
    if member.size <= SMALL_LOG:
        parsed, _ = _judge(read_lines(data), member.name, formats)
        return SourceResult({"events": parsed.events}, [parsed.coverage])
    chosen = None
    for probe in _probes(data, PROBE_BYTES):
        lines = read_lines(probe)
        if celery_log.holds_header(lines, formats):
            chosen = formats if _judge(lines, member.name, formats)[1] else None
            break
    parsed = celery_log.parse_file(data, source=member.name, log_formats=chosen)
    return SourceResult({"events": parsed.events}, [parsed.coverage])


def log_pieces(member: Member, kind: str, opts: Options, piece_bytes: int,
               only: Mapping[int, int] | None = None) -> Iterator[tuple[pl.DataFrame, Coverage, int]] | None:
    """A worker log's pieces as `celery_log.parse_pieces` gives them (records before hosts are
    settled, coverage, bytes), read in the layout `_celery_log` would choose; None when the input is
    read whole (no worker log, small enough for one piece, or the users' formats on a small file)."""
    if kind != "celery_log" or member.size <= piece_bytes + piece_bytes // 2:
        return None
    formats = list(opts.log_formats)
    layout = None
    if not formats and not _default_head(member):
        layout = _head_layout(member)
        if layout.name == "logging":
            formats = list(layout.compiled)
    data = _data(member)
    chosen = None
    if formats:
        if member.size <= SMALL_LOG:
            return None
        for probe in _probes(data, PROBE_BYTES):
            lines = read_lines(probe)
            if celery_log.holds_header(lines, formats):
                chosen = formats if _judge(lines, member.name, formats)[1] else None
                break
    pieces = celery_log.parse_pieces(data, source=member.name, piece_bytes=piece_bytes, log_formats=chosen,
                                     only=only)
    if layout is None or layout.name != "logging":
        return pieces
    return _laid_out(pieces, layout)


def _laid_out(pieces: Iterator[tuple[pl.DataFrame, Coverage, int]],
              layout: layouts.Layout) -> Iterator[tuple[pl.DataFrame, Coverage, int]]:
    for records, cov, size in pieces:
        cov.layout = layout.name
        cov.notes.append(layout.describe())
        yield records, cov, size


def _default_head(member: Member) -> bool:
    """Whether a log's head holds a header of Celery's default layout (then no other is tried)."""
    return bool(sniff.CELERY_LOG.search(sniff.clean_head(member.head())))


def _judge(lines: Lines, name: str, formats: list[LogFormat]) -> tuple[celery_log.Parsed, bool]:
    """The better reading of `lines`, default or the users' formats, and whether it is the users'."""
    default = celery_log.parse_lines(lines, source=name)
    custom = celery_log.parse_lines(lines, source=name, log_formats=formats)
    users = (custom.coverage.unrecognized < default.coverage.unrecognized
             or custom.events.height > default.events.height)
    return (custom if users else default), users


# How much of a big log `_celery_log` judges default-vs-custom on at a time.
PROBE_BYTES = 1 << 20


def _probes(data: bytes | Path, size: int) -> Iterator[bytes]:
    """Successive whole-line chunks of about `size` bytes (one grows past a longer line)."""
    with io.BytesIO(data) if isinstance(data, bytes) else data.open("rb") as f:
        carry = b""
        while chunk := f.read(size):
            chunk = carry + chunk
            cut = chunk.rfind(b"\n") + 1
            carry = chunk[cut:]
            if cut:
                yield chunk[:cut]
        if carry:
            yield carry


def _json_log(member: Member, opts: Options) -> SourceResult:
    parsed = json_log.parse(_data(member), source=member.name)
    return SourceResult({"events": parsed.events}, [parsed.coverage])


def _rabbitmq_log(member: Member, opts: Options) -> SourceResult:
    parsed = server_logs.parse_rabbitmq_file(_data(member), source=member.name)
    return SourceResult({"events": parsed.events}, [parsed.coverage])


def _redis_log(member: Member, opts: Options) -> SourceResult:
    parsed = server_logs.parse_redis_file(_data(member), source=member.name)
    return SourceResult({"events": parsed.events}, [parsed.coverage])


def _postgres_log(member: Member, opts: Options) -> SourceResult:
    parsed = server_logs.parse_postgres_file(_data(member), source=member.name)
    return SourceResult({"events": parsed.events}, [parsed.coverage])


LinesParser = Callable[..., tuple[pl.DataFrame | dict[str, pl.DataFrame], Coverage]]


def from_lines(parse: LinesParser, frame: str | None = None) -> Parser:
    """The bundle parser of a `parse_lines(lines, *, source)` that gives one frame (named `frame`)
    or a dict of frames, and its coverage."""
    def parser(member: Member, opts: Options) -> SourceResult:
        frames, cov = parse(read_lines(_data(member)), source=member.name)
        if isinstance(frames, pl.DataFrame):
            assert frame is not None
            frames = {frame: frames}
        return SourceResult(frames, [cov])
    return parser


PARSERS: dict[str, Parser] = {
    "celery_log": _celery_log,
    "json_log": _json_log,
    "rabbitmq_log": _rabbitmq_log,
    "postgres_log": _postgres_log,
    "redis_log": _redis_log,
    "redis_info": from_lines(redis_info.parse_lines, "redis_info"),
    "ulimit": from_lines(ulimit.parse_lines, "limits"),
    "mysql_innodb_status": innodb_status.adapter,
    "proc_locks": from_lines(proc_locks.parse_lines, "proc_locks"),
    "procfs": from_lines(procfs.parse_lines),
    "ps": from_lines(ps.parse_lines, "processes"),
    "rabbitmq_queues": from_lines(rabbitmq_queues.parse_lines, "queues"),
    "kernel_log": from_lines(kernel_log.parse_lines),
}


def _celery_log_and_dumps(member: Member, opts: Options) -> SourceResult:
    """A worker log/stdout: its records, plus threads/frames of faulthandler dumps inside it."""
    return dumps.embedded_faulthandler(member, _celery_log(member, opts))


def register(kind: str, parser: Parser) -> None:
    """Add or replace the parser of a kind (dump parsers register themselves here)."""
    PARSERS[kind] = parser


def _count_lines(member: Member) -> int:
    if member.path is not None and member.path.stat().st_size > (64 << 20):
        return read_lines(member.path).frame.height
    data = member.read()
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def unparsed(member: Member, kind: str, note: str) -> SourceResult:
    """Coverage for a member no parser understands: every line counted as unrecognised."""
    binary = kind in ("core", "binary")
    n = 0 if binary else _count_lines(member)
    cov = Coverage(source=member.name, kind=kind, lines=n, parsed=0, unrecognized=n)
    cov.notes.append(note)
    return SourceResult(coverage=[cov])


def _text(member: Member, opts: Options) -> SourceResult:
    """Unsniffed text: records in the layout its lines show (or the users' formats), else records of
    layout unknown, so rules still read them (`text_log`). Documents (Markdown, JSON) stay unparsed:
    a README quoting a log line in prose is no evidence of this incident."""
    if text_log.is_document(member.head()):  # unless the users' formats find records in it (a stdout)
        pretty = (json_log.pretty_lines(member.read()) if member.head().lstrip()[:1] == b"{"
                  and member.size <= json_log.PRETTY_MAX_BYTES else None)
        if pretty is not None:  # a JSON log pasted pretty-printed: one record per object
            parsed = json_log.parse_lines(pretty, source=member.name)
            parsed.coverage.lines = parsed.coverage.parsed = _count_lines(member)
            parsed.coverage.notes.append(f"a pretty-printed JSON log: {pretty.frame.height} object(s), one record each")
            return SourceResult({"events": parsed.events}, [parsed.coverage])
        if opts.log_formats:
            parsed = celery_log.parse_lines(read_lines(_data(member)), source=member.name,
                                            log_formats=list(opts.log_formats))
            if parsed.events.filter(pl.col("ts").is_not_null()).height:
                parsed.coverage.layout = "logging"
                return SourceResult({"events": parsed.events}, [parsed.coverage])
        return unparsed(member, "text", "a document (Markdown or JSON), not read as log records"
                        + ("; no line matches a given log format" if opts.log_formats else ""))
    parsed = text_log.parse(_data(member), source=member.name, log_formats=list(opts.log_formats))
    return SourceResult({"events": parsed.events}, [parsed.coverage])


def parse_member(member: Member, kind: str, opts: Options,
                 parsers: Mapping[str, Parser] | None = None) -> SourceResult:
    table = PARSERS if parsers is None else parsers
    parser = table.get(kind)
    if parser is None:
        what = "binary content" if kind in ("core", "binary") else f"no parser for {kind} artifacts yet"
        return unparsed(member, kind, what)
    try:
        return parser(member, opts)
    except Exception as exc:  # bad input must not stop the bundle; say where and go on
        result = unparsed(member, kind, f"could not be parsed as {kind}: {type(exc).__name__}: {exc}")
        result.problems.append(Problem(member.name, f"could not be parsed as {kind}: {type(exc).__name__}: {exc}"))
        return result


# Worker logs up to SMALL_LOG bytes are parsed together, up to BATCH_BYTES at a time
# (`celery_log.parse_many`): a bundle of many small logs would otherwise pay each polars call's
# fixed cost once per file.
SMALL_LOG = 4 << 20
BATCH_BYTES = 32 << 20


def _batchable(member: Member, kind: str, opts: Options, parsers: Mapping[str, Parser] | None) -> bool:
    return (parsers is None and kind == "celery_log" and not opts.log_formats and member.size <= SMALL_LOG
            and _default_head(member))


def _parse_batch(members: Sequence[Member], opts: Options) -> list[SourceResult]:
    """One result per member, as `parse_member` gives; the batch's events ride on the first.

    A batch that fails as a whole is parsed member by member, so bad input still costs only its
    own member.
    """
    if len(members) == 1:
        return [parse_member(members[0], "celery_log", opts)]
    try:
        events, covs = celery_log.parse_many([(_data(m), m.name) for m in members])
    except Exception:  # find the culprit: each member on its own, with its own problem
        return [parse_member(m, "celery_log", opts) for m in members]
    results = [SourceResult(coverage=[cov]) for cov in covs]
    results[0].frames["events"] = events
    msg = pl.col("message")
    dumped = set(events.filter(msg.str.starts_with("Thread 0x") | msg.str.starts_with("Current thread 0x"))
                 .get_column("source").unique().to_list())
    for member, result in zip(members, results, strict=True):
        if member.name in dumped:  # faulthandler dumps inside this log: its threads and frames
            found = dumps.embedded_faulthandler(member, SourceResult({"events": events.filter(
                pl.col("source") == member.name)}, result.coverage))
            result.frames.update((k, v) for k, v in found.frames.items() if k != "events")
    return results


def parse_members(members: Sequence[tuple[Member, str]], opts: Options,
                  parsers: Mapping[str, Parser] | None = None,
                  on_member: Callable[[int], None] | None = None) -> list[SourceResult]:
    """`parse_member` for each (member, kind), in order; small worker logs are parsed in batches."""
    results: list[SourceResult | None] = [None] * len(members)
    batch: list[int] = []
    size = 0

    def flush() -> None:
        nonlocal size
        for i, result in zip(batch, _parse_batch([members[i][0] for i in batch], opts), strict=True):
            results[i] = result
        batch.clear()
        size = 0

    for i, (member, kind) in enumerate(members):
        if on_member is not None:
            on_member(i)
        if _batchable(member, kind, opts, parsers):
            batch.append(i)
            size += member.size
            if size >= BATCH_BYTES:
                flush()
            continue
        results[i] = parse_member(member, kind, opts, parsers)
    if batch:
        flush()
    done = [r for r in results if r is not None]
    assert len(done) == len(members)
    return done


# Thread dumps, core files and inspect output (imported last: they use SourceResult above).
from analyzer.sources import containers, dumps  # noqa: E402, F401

PARSERS.update(dumps.PARSERS)
PARSERS["celery_log"] = _celery_log_and_dumps
PARSERS["text"] = _text
