"""Celery worker logs (text) → the `events` frame, in bulk.

A record is a header line plus the continuation lines after it (tracebacks, multi-line
messages), FORMATS.md A.1/A.3. States of the line classifier, each with a real sample:

- header (default `worker_log_format`, Celery 3.1 – 5.x):
  `[2026-11-28 17:58:37,378: INFO/MainProcess] Task proj.add[1c3f…] received`
  Detected by position: `[`, a timestamp that parses in columns 1–23, `: ` at 24.
- pseudo-header: stdout/stderr lines that start a record of their own in merged console
  output: the banner (` -------------- w1@sample v5.7.0 (collider)`), `worker: Warm shutdown
  (MainProcess)`, captured warnings (`/…/platforms.py:893: SecurityWarning: …`),
  `Fatal Python error: Segmentation fault`, faulthandler thread headers.
- continuation: any other line after a (pseudo-)header: it belongs to that record.
- preamble: lines before the first (pseudo-)header of a stream: blank ones are fine, others
  are counted as unrecognised.

A record is named by the line number of its start, forward-filled over its continuation lines
(per container stream when the file interleaves several), so folding is a group-by, never a
Python loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from analyzer.clip import SAMPLE_CHARS, clip
from analyzer.order import timeline
from analyzer.schema import EVENTS, conform
from analyzer.sources.folding import fold
from analyzer.sources.lifecycle_messages import READY_RE, classify
from analyzer.sources.lines import Lines, nul_note, read_joined, read_lines, record_spans
from analyzer.sources.log_format import LogFormat
from analyzer.sources.unknown import TRACEBACK, unknown_records

TS_FORMAT = "%Y-%m-%d %H:%M:%S,%3f"

# ` -------------- w1@sample v5.7.0 (collider)` (celery/apps/worker.py BANNER)
BANNER_RE = r"^ -{5,} (\S+@\S+) v(\d[\w.]*) \("
# `/…/celery/platforms.py:893: SecurityWarning: You're running the worker with superuser…`
WARNING_LINE_RE = r"^\S+\.py:\d+: \w*Warning: "
# `Thread 0x00007fd358e5e6c0 (most recent call first):` / `Current thread 0x… [name] (most recent…`
FAULTHANDLER_THREAD_RE = r"^(?:Current thread|Thread) 0x[0-9a-f]+(?: \[[^\]]*\])? \(most recent call first\):"
PSEUDO_PREFIXES = ("worker: Warm shutdown", "worker: Cold shutdown", "Fatal Python error: ",
                   "worker: Hitting Ctrl+C again")

SAMPLE_LIMIT = 5


@dataclass
class Coverage:
    """How much of one input was understood (DESIGN: every line is accounted for)."""

    source: str
    kind: str
    lines: int = 0
    parsed: int = 0
    unrecognized: int = 0
    invalid_utf8: int = 0
    nul_bytes: int = 0  # NUL bytes removed from the text (`lines.nul_note` says so in `notes`)
    samples: list[tuple[int, str]] = field(default_factory=list)  # (line, text) of unrecognised lines
    notes: list[str] = field(default_factory=list)
    # the layout its records were read in (`analyzer.sources.layouts`: `celery`, `logging`, `unknown`),
    # None for inputs that are no log; the notes say it in words
    layout: str | None = None

    @classmethod
    def of(cls, source: str, kind: str, lines: pl.DataFrame | int, unrecognized: pl.DataFrame,
           invalid_utf8: int = 0) -> Coverage:
        """Counts and the first few unrecognised lines (`line`, `text`) of one parsed input; `lines`
        is its frame of lines or their number."""
        n = lines if isinstance(lines, int) else lines.height
        cov = cls(source=source, kind=kind, lines=n, unrecognized=unrecognized.height,
                  invalid_utf8=invalid_utf8)
        cov.parsed = cov.lines - cov.unrecognized
        cov.samples = [(int(r[0]), clip(str(r[1]), SAMPLE_CHARS))
                       for r in unrecognized.head(SAMPLE_LIMIT).select("line", "text").rows()]
        if invalid_utf8:
            cov.notes.append(f"{invalid_utf8} line(s) held invalid UTF-8 (replaced with U+FFFD)")
        return cov

    @classmethod
    def merge(cls, parts: list[Coverage]) -> Coverage:
        """One input's coverage from the coverages of its pieces, in order."""
        first = parts[0]
        invalid = sum(p.invalid_utf8 for p in parts)
        cov = cls(source=first.source, kind=first.kind, layout=first.layout, lines=sum(p.lines for p in parts),
                  parsed=sum(p.parsed for p in parts), unrecognized=sum(p.unrecognized for p in parts),
                  invalid_utf8=invalid, samples=[s for p in parts for s in p.samples][:SAMPLE_LIMIT])
        if invalid:
            cov.notes.append(f"{invalid} line(s) held invalid UTF-8 (replaced with U+FFFD)")
        utf8 = "line(s) held invalid UTF-8"
        cov.nul_bytes = sum(p.nul_bytes for p in parts)  # one note of the pieces' sum, not one per piece
        cov.notes.extend(dict.fromkeys(n for p in parts for n in p.notes
                                       if utf8 not in n and not (p.nul_bytes and n == nul_note(p.nul_bytes))))
        if cov.nul_bytes:
            cov.notes.append(nul_note(cov.nul_bytes))
        return cov

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"path": self.source, "kind": self.kind, "lines": self.lines,
                                "parsed": self.parsed, "unrecognized": self.unrecognized}
        if self.invalid_utf8:
            d["invalid_utf8"] = self.invalid_utf8
        if self.samples:
            d["unrecognized_samples"] = [{"line": ln, "text": t} for ln, t in self.samples]
        if self.notes:
            d["notes"] = list(self.notes)
        return d


@dataclass(frozen=True)
class Parsed:
    events: pl.DataFrame
    coverage: Coverage


def _default_candidates() -> pl.Expr:
    """Cheap positional test for a default-format header: `[` … `: ` at column 24, `,` at 20."""
    text = pl.col("text")
    return text.str.starts_with("[") & (text.str.slice(20, 1) == ",") & (text.str.slice(24, 2) == ": ")


def _default_fields(heads: pl.DataFrame) -> pl.DataFrame:
    """Split header lines by position: seconds parse fast on their own, milliseconds are an int.

    The positions of `/` and `]` are columns first: an eager select computes a subexpression
    once per use.
    """
    text = pl.col("text")
    seconds = text.str.slice(1, 19).str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S", strict=False)
    millis = text.str.slice(21, 3).cast(pl.Int64, strict=False).fill_null(0)
    rest = text.str.slice(26)  # a view: the level starts at column 26
    heads = heads.with_columns((rest.str.find("/", literal=True) + 26).alias("_s"),
                               (rest.str.find("]", literal=True) + 26).alias("_e"))
    slash, close = pl.col("_s"), pl.col("_e")
    out = heads.select(
        "line", "stream", *(c for c in ("_src", "_row", "prefix_ts") if c in heads.columns),
        (seconds + pl.duration(milliseconds=millis)).alias("ts"),
        text.str.slice(26, slash - 26).alias("level"),
        text.str.slice(slash + 1, close - slash - 1).alias("process"),
        text.str.slice(close + 2).alias("message"),
    )
    return _slashed_dates(heads, out)


def _slashed_dates(heads: pl.DataFrame, out: pl.DataFrame) -> pl.DataFrame:
    """Timestamps of a `datefmt` of `%Y/%m/%d` (same width, so the header's columns hold): parsed
    on the rows the dash format left null only, so a default log pays one null count."""
    if not out.get_column("ts").null_count():
        return out
    text = pl.col("text")
    missing = heads.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i"), text,
                           pl.Series(out.get_column("ts").is_null()).alias("_null")).filter(pl.col("_null"))
    fixed = missing.select("_i", (text.str.slice(1, 19).str.strptime(pl.Datetime("ms"), "%Y/%m/%d %H:%M:%S",
                                                                       strict=False)
                                  + pl.duration(milliseconds=text.str.slice(21, 3).cast(pl.Int64, strict=False)
                                                .fill_null(0))).alias("ts")).drop_nulls("ts")
    if fixed.is_empty():
        return out
    return out.with_columns(out.get_column("ts").scatter(fixed.get_column("_i"), fixed.get_column("ts")))


def _custom_header(df: pl.DataFrame, formats: list[LogFormat]) -> pl.DataFrame:
    """Header lines of users' `%(...)s` formats; the most specific format that matches wins.

    One regex pass per format, its groups kept as a struct column (an eager select would rerun
    the regex for every field taken from it); a format that ends with the message matches only
    up to it (`LogFormat.head`) and the message is the rest of the line.
    """
    none = pl.lit(None, dtype=pl.String)
    ordered = sorted(formats, key=lambda f: -len(f.groups))
    text = pl.col("text")
    df = df.with_columns(text.str.extract_groups(fmt.head or fmt.regex).alias(f"_caps{i}")
                         for i, fmt in enumerate(ordered))
    hdr: pl.Expr = pl.lit(False)
    cols: dict[str, pl.Expr] = {}
    targets = {"levelname": "level", "processName": "process", "message": "message", "name": "logger",
               "task_name": "task_name", "task_id": "task_id", "hostname": "_hostname"}
    for i, fmt in reversed(list(enumerate(ordered))):  # the last `when` written is the first tried
        caps = pl.col(f"_caps{i}")
        fields = {name: caps.struct.field(name) for name in fmt.groups}
        if fmt.head is not None:
            head = caps.struct.field("_head")
            fields["message"] = text.str.slice(head.str.len_chars())
            matches = head.is_not_null()
        else:
            matches = caps.struct.field(fmt.groups[0]).is_not_null()
        ts = fmt.timestamp_expr(fields.get("asctime"), fields.get("msecs"))
        ok = matches & ts.is_not_null() if "asctime" in fields else matches
        hdr = ok | hdr
        cols["ts"] = pl.when(ok).then(ts).otherwise(cols.get("ts", pl.lit(None, dtype=pl.Datetime("ms"))))
        for field_name, col in targets.items():
            value = fields.get(field_name, pl.lit("", dtype=pl.String) if col == "message" else none)
            cols[col] = pl.when(ok).then(value).otherwise(cols.get(col, none))
    out = df.lazy().with_columns(hdr.alias("_hdr"), *(e.alias(c) for c, e in cols.items())).collect()
    out = out.drop(*(f"_caps{i}" for i in range(len(ordered))))
    return out.with_columns(
        pl.when(pl.col(c).is_in(["???", ""])).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("task_name", "task_id")
    )


def holds_header(lines: Lines, formats: list[LogFormat]) -> bool:
    """Whether any line is a header of the default format or of one of `formats`: lines that are
    neither (banners, stdout) read alike either way, so cannot tell which format a log uses."""
    if lines.frame.select(_default_candidates().any()).item():
        return True
    return bool(_custom_header(lines.frame, formats).get_column("_hdr").any())


def _pseudo() -> pl.Expr:
    """Lines that start a record of their own in merged console output (run on non-headers only)."""
    text = pl.col("text")
    starts = pl.lit(False)
    for p in PSEUDO_PREFIXES:
        starts = starts | text.str.starts_with(p)
    return (
        starts
        | (text.str.starts_with(" -") & text.str.contains(BANNER_RE))
        | (text.str.starts_with("/") & text.str.contains(WARNING_LINE_RE))
        | ((text.str.starts_with("Thread 0x") | text.str.starts_with("Current thread 0x"))
           & text.str.contains(FAULTHANDLER_THREAD_RE))
    )


def _uncaught_tracebacks(others: pl.DataFrame, heads: pl.DataFrame, row: str) -> pl.DataFrame:
    """Pseudo-headers for tracebacks that follow a record below WARNING: no logger printed them with
    that record (`logger.exception` logs at ERROR), Python printed an uncaught exception to stderr
    between log records (Airflow's task log, a command that crashed). Each is a record of its own,
    level unknown, so its exception is not hidden in an INFO record."""
    text = pl.col("text")
    tbs = others.filter(text.str.starts_with(TRACEBACK))
    if not tbs.height or not heads.height or "level" not in heads.columns:
        return tbs.clear()
    # the record before, in the same file and container stream (streams interleave)
    keys = [pl.col(c).cast(pl.String).fill_null("") for c in ("_src", "stream")
            if c in tbs.columns and c in heads.columns]
    by = [k.meta.output_name() for k in keys]
    prev = tbs.select(row, *keys).sort(row).join_asof(
        heads.select(row, *keys, pl.col("level").alias("_prev")).sort(row), on=row, strategy="backward",
        by=by or None, check_sortedness=False)  # sorted by `row` above, the check cannot see it per group
    low = prev.filter(pl.col("_prev").is_in(["DEBUG", "INFO"])).get_column(row)
    return tbs.filter(pl.col(row).is_in(low.implode())).with_columns(
        text.alias("message"), pl.lit(True).alias("_pseudo"), pl.lit(None, dtype=pl.String).alias("kind"),
        pl.lit(None, dtype=pl.String).alias("level"))


def parse_lines(lines: Lines, *, source: str, log_formats: list[LogFormat] | None = None,
                kind: str = "celery_log") -> Parsed:
    records, unrec = _records(lines, log_formats=log_formats)
    return Parsed(_finish(records, source), _coverage(lines, unrec, source=source, kind=kind))


def _records(lines: Lines, *, log_formats: list[LogFormat] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Folded, classified records of some lines, before hosts are settled (that needs the whole
    file), and the lines no record holds. Lines of several files carry `_src` (`parse_many`)."""
    df = lines.frame
    batch = "_src" in df.columns
    if batch and "_row" not in df.columns:
        df = df.with_row_index("_row")
    if "_row" in df.columns:
        batch = True  # rows, not line numbers, name records (split lines share a line number)
    # 1. which lines start a record: headers (cheap test on all lines), pseudo-headers (on the rest)
    if log_formats:
        df = _custom_header(df, log_formats)
        heads = df.filter(pl.col("_hdr"))
    else:
        df = df.with_columns(_default_candidates().alias("_hdr"))
        heads = _default_fields(df.filter(pl.col("_hdr")))
    others = df.filter(~pl.col("_hdr"))
    # a pseudo-header's kind and level are settled here, on its few rows: a when/then over all
    # records would run the banner regex on every one
    text = pl.col("text")
    pseudo = others.filter(_pseudo()).with_columns(
        text.alias("message"), pl.lit(True).alias("_pseudo"),
        pl.when(text.str.starts_with(" -") & text.str.contains(BANNER_RE)).then(pl.lit("banner"))
        .otherwise(pl.lit(None, dtype=pl.String)).alias("kind"),
        pl.when(text.str.starts_with("/")).then(pl.lit("WARNING")).otherwise(
            pl.col("level") if "level" in others.columns else pl.lit(None, dtype=pl.String)).alias("level"))
    row = "_row" if batch else "line"
    pseudo = pl.concat([pseudo, _uncaught_tracebacks(others, heads, row)], how="diagonal_relaxed")
    start = pl.col("_hdr")
    if pseudo.height:
        start = start | pl.col(row).is_in(pseudo.get_column(row).implode())
    df = df.with_columns(start.alias("_start"))
    over = [*(["_src"] if "_src" in df.columns else []), *(["stream"] if lines.had_prefix else [])]
    df, starts = fold(df, starts=pl.concat([heads.with_columns(pl.lit(False).alias("_pseudo")), pseudo],
                                           how="diagonal_relaxed"), over=over)
    # 2. lines before a stream's first record are preamble; blank ones are fine. The layout does not
    # read them (counted unrecognised), yet every line is evidence: they are records of layout
    # unknown. Found now so the frame of all lines can be let go before the records are classified.
    pre = df.filter(pl.col("_rec").is_null())
    unrec = pre.filter(pl.col("text").str.strip_chars() != "")
    if unrec.height:
        keep = ["line", "text", "stream", *(c for c in ("_src", "_row", "prefix_ts") if c in pre.columns)]
        starts = timeline(pl.concat([starts, unknown_records(pre.select(keep), over)], how="diagonal_relaxed"),
                          (row,))
    del df, heads, others, pseudo, pre

    # 3. the records: lifecycle kinds, task ids, hosts
    for col in ("kind", "task_name", "task_id", "logger", "level", "process", "ts"):
        if col not in starts.columns:
            starts = starts.with_columns(pl.lit(None, dtype=EVENTS[col]).alias(col))
    if "prefix_ts" in starts.columns:  # the time a prefix wrote (kubectl --timestamps, journald) stands in
        starts = starts.with_columns(pl.coalesce(pl.col("ts"), pl.col("prefix_ts").str.replace(
            "T", " ", literal=True).str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S%.f", strict=False)).alias("ts"))
    return classify(starts), unrec


def _coverage(lines: Lines | int, unrec: pl.DataFrame, *, source: str, kind: str) -> Coverage:
    """Coverage of `lines` (or of that many lines, read plainly: valid UTF-8, no container prefix)."""
    if isinstance(lines, int):
        return Coverage.of(source, kind, lines, unrec)
    physical: pl.DataFrame | int = lines.frame
    if lines.joined:  # split lines share their number: count physical lines, and say so
        physical = int(lines.frame.select(pl.col("line").n_unique()).item())
        unrec = unrec.unique("line", keep="first", maintain_order=True)
    cov = Coverage.of(source, kind, physical, unrec, lines.invalid_utf8)
    if lines.joined:
        cov.notes.append(f"{lines.joined} line(s) held several records (newlines lost in a copy): split before "
                         "each header and traceback")
    if lines.had_prefix:
        cov.notes.append("log prefixes removed (docker compose / kubectl / journald / syslog)")
    cov.notes.extend(lines.debris)
    if lines.nul_bytes:
        cov.nul_bytes = lines.nul_bytes
        cov.notes.append(nul_note(lines.nul_bytes))
    return cov


def _finish(records: pl.DataFrame, source: str | Sequence[str]) -> pl.DataFrame:
    """Events of one file's records (`source` its name), or of a batch's (`source[_src]`)."""
    name: pl.Expr | pl.Series = (pl.lit(source) if isinstance(source, str) else
                                 pl.Series(list(source), dtype=pl.String).gather(records.get_column("_src")))
    ev = _attribute_hosts(records).with_columns(name.alias("source"))
    return conform(ev, EVENTS).select(EVENTS.keys())


# Pieces a big log is parsed in (`parse_file`): big enough that per-piece overhead is noise, small
# enough that one piece's intermediates stay a fraction of the events they produce.
PIECE_BYTES = 32 << 20


def _header_start(window: bytes) -> int | None:
    """Offset of the last default-format header line in `window` (`[`, `,` at 20, `: ` at 24).

    Its first 26 bytes must be ASCII without ESC: `_default_candidates` counts characters of the
    decoded, ANSI-stripped line, and a multi-byte or undecodable sequence (a torn write) or a
    colour code would put those bytes at other columns, making the line a continuation whole
    and the start of a piece here.
    """
    i = len(window)
    while (i := window.rfind(b"\n[", 0, i)) >= 0:
        line = i + 1
        head = window[line:line + 26]
        if head[20:21] == b"," and head[24:26] == b": " and head.isascii() and b"\x1b" not in head:
            return line
    return None


def _custom_start(formats: list[LogFormat]) -> Callable[[bytes], int | None]:
    """`_header_start` for users' formats: the last line of a window that `_custom_header` itself
    takes for a header (the same regexes and timestamp parsing; one small frame per cut)."""
    heads = [re.compile((f.head or f.regex).encode()) for f in formats]

    def start(window: bytes) -> int | None:
        # only whole lines: the window may end inside one, and a format with text after the
        # message could match its beginning where the whole line does not match
        end = window.rfind(b"\n")
        while end > 0 and (i := window.rfind(b"\n", 0, end)) >= 0:
            line = window[i + 1:end]
            end = i
            if b"\x1b" in line or not line.isascii() or not any(h.match(line) for h in heads):
                continue
            one = pl.DataFrame({"text": [line.decode()]}, schema={"text": pl.String})
            if _custom_header(one, formats).get_column("_hdr").item():
                return i + 1
        return None

    return start


def parse_file(path: Path | bytes, *, source: str, piece_bytes: int | None = None,
               log_formats: list[LogFormat] | None = None) -> Parsed:
    """Parse a log (a file, or an archive member's bytes) piece by piece, each piece cut before a
    header line (default format, or the users' formats given).

    Same result as `parse_lines(read_lines(path))` (records never span a cut, lines keep their
    numbers, hosts are settled over the whole file) with peak memory bounded by one piece. Logs
    with container prefixes interleave streams, so a record may span any cut: those are read whole.
    """
    cut = _custom_start(log_formats) if log_formats else _header_start
    spans = record_spans(path, piece_bytes or PIECE_BYTES, cut)
    if len(spans) == 1:
        return parse_lines(read_lines(path), source=source, log_formats=log_formats)
    parts: list[pl.DataFrame] = []
    covs: list[Coverage] = []
    first = 1
    for span in spans:
        lines = read_lines(path, span=span, first_line=first)
        if lines.had_prefix:
            return parse_lines(read_lines(path), source=source, log_formats=log_formats)
        first += int(lines.frame.select(pl.col("line").n_unique()).item()) if lines.joined else lines.frame.height
        records, unrec = _records(lines, log_formats=log_formats)
        parts.append(records)
        covs.append(_coverage(lines, unrec, source=source, kind="celery_log"))
        del lines, records
    return Parsed(_finish(pl.concat(parts, how="diagonal_relaxed"), source), Coverage.merge(covs))




class Interleaved(Exception):
    """The log's lines carry container prefixes: streams interleave, so a record may span any cut."""


def parse_pieces(path: Path | bytes, *, source: str, piece_bytes: int | None = None,
                 log_formats: list[LogFormat] | None = None,
                 only: Mapping[int, int] | None = None) -> Iterator[tuple[pl.DataFrame, Coverage, int]]:
    """`parse_file`'s pieces, each as its records before hosts are settled (`unsettled`), its
    coverage and its size in bytes, for the streaming pipeline (`analyzer.pipeline`), which settles
    hosts after the merge.

    Raises `Interleaved` (possibly after some pieces) when the log has container prefixes. `only`
    (piece index → its first line, from an earlier pass) reads those pieces alone.
    """
    cut = _custom_start(log_formats) if log_formats else _header_start
    first = 1
    for i, span in enumerate(record_spans(path, piece_bytes or PIECE_BYTES, cut)):
        if only is not None:
            if i not in only:
                continue
            first = only[i]
        lines = read_lines(path, span=span, first_line=first)
        if lines.had_prefix:
            raise Interleaved(source)
        first += int(lines.frame.select(pl.col("line").n_unique()).item()) if lines.joined else lines.frame.height
        records, unrec = _records(lines, log_formats=log_formats)
        yield unsettled(records, source), _coverage(lines, unrec, source=source, kind="celery_log"), span[1] - span[0]
        del lines, records


def unsettled(records: pl.DataFrame, source: str) -> pl.DataFrame:
    """Records of one input with `source`, `stream` and the node each names itself (`_hostname`); `host`
    null: which node a record belongs to is settled over the whole input (`_attribute_hosts`)."""
    cols = [pl.lit(source).alias("source"), pl.lit(None, dtype=pl.String).alias("host")]
    if "_hostname" not in records.columns:
        cols.append(pl.lit(None, dtype=pl.String).alias("_hostname"))
    if "stream" not in records.columns:
        cols.append(pl.lit(None, dtype=pl.String).alias("stream"))
    out = records.with_columns(cols)
    return conform(out, {**EVENTS, "stream": pl.String(), "_hostname": pl.String()}).select(
        [*EVENTS.keys(), "stream", "_hostname"])


def parse_many(items: Sequence[tuple[bytes | Path, str]]) -> tuple[pl.DataFrame, list[Coverage]]:
    """Parse several small default-format logs (data, name) in one pass.

    Each polars operation costs a fixed fraction of a millisecond whatever its input, and a log
    takes about a hundred of them: for a bundle of hundreds of small files that fixed cost is
    most of the work. Parsed together, with records kept within their file (`_src`), they give
    the events each would give alone, in one frame, and one coverage per file, in order.
    """
    joined = read_joined([data for data, _ in items])
    read: list[Lines | int]
    if joined is not None:
        lines, counts = joined
        read = list(counts)  # line counts: what coverage needs of plainly read files
    else:
        each = [read_lines(data) for data, _ in items]
        frames = [r.frame.with_columns(pl.lit(i, dtype=pl.UInt32).alias("_src")) for i, r in enumerate(each)]
        lines = Lines(pl.concat(frames, how="diagonal_relaxed"), invalid_utf8=sum(r.invalid_utf8 for r in each),
                      had_ansi=any(r.had_ansi for r in each), had_prefix=any(r.had_prefix for r in each))
        read = list(each)
    records, unrec = _records(lines)
    names = [name for _, name in items]
    events = _finish(records, names)
    by_src = unrec.partition_by("_src", as_dict=True, include_key=False) if unrec.height else {}
    covs = []
    for i, (r, name) in enumerate(zip(read, names, strict=True)):
        mine = by_src.get((i,), unrec.clear())
        covs.append(_coverage(r, mine, source=name, kind="celery_log"))
    return events, covs


def _attribute_hosts(ev: pl.DataFrame) -> pl.DataFrame:
    """Node name per stream (of each file): `hostname`, `… ready.` line, banner, or container
    stream; else null.

    A null host is settled at bundle level (`analyzer.api.settle_hosts`): a log that never got
    to `ready.` takes the node name its own stdout banner gives, else its file stem."""
    key = pl.col("stream").fill_null("")
    if "_src" in ev.columns:
        key = pl.format("{}\x00{}", pl.col("_src"), key)
    named = ev.filter(pl.col("kind").is_in(["ready", "banner"])).select(
        key.alias("_key"),
        pl.when(pl.col("kind") == "ready").then(pl.col("message").str.extract(READY_RE, 1))
        .otherwise(pl.col("message").str.extract(BANNER_RE, 1)).alias("_named"),
        (pl.col("kind") == "banner").alias("_is_banner"),
    ).drop_nulls("_named").sort("_is_banner", maintain_order=True).group_by("_key", maintain_order=True).first()
    by_key = dict(named.select("_key", "_named").rows())
    hostname = [pl.col("_hostname")] if "_hostname" in ev.columns else []
    named_host = (key.replace_strict(by_key, default=None, return_dtype=pl.String) if by_key
                  else pl.lit(None, dtype=pl.String))
    return ev.with_columns(pl.coalesce(*hostname, named_host, pl.col("stream")).alias("host"))


def parse(data: bytes | Path, *, source: str, log_formats: list[LogFormat] | None = None) -> Parsed:
    """Parse one Celery text log (default format, or users' `%`-style formats)."""
    if not log_formats:
        return parse_file(data, source=source)
    return parse_lines(read_lines(data), source=source, log_formats=log_formats)
