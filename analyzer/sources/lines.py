"""Read an artifact into a frame of lines, in bulk, with nothing lost.

polars' CSV reader is the fastest line splitter at hand (PERF-NOTES: 0.8 s for 548 MB) when it
is given a separator byte that never occurs and no quote character. Blank lines come back as
nulls and keep their row, so row index + 1 is the line number. Invalid UTF-8 is replaced
(`utf8-lossy`) and the lines that carried it are counted. NUL bytes are removed and counted:
they are not content (`logrotate copytruncate` leaves a run of them before the log).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import polars as pl

from analyzer.sources import debris

# Separator candidates, all control bytes that text logs practically never contain. The first
# one absent from the data is used, so no line is ever split in two.
_SEPARATORS = (b"\x1f", b"\x1e", b"\x1d", b"\x1c", b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x06")

ANSI_RE = r"\x1b\[[0-9;]*[A-Za-z]"
# ANSI colour copied from a terminal in caret notation (`^[[36mweb_1 |^[[0m`): ESC written as `^[`
CARET_ANSI_RE = r"\^\[\[[0-9;]*[A-Za-z]"
# the container runtime's RFC 3339 time before each line: `kubectl logs --timestamps`,
# `docker compose logs -t` (`2026-11-28T18:56:14.045123456Z `); a `T` and a zone, unlike a log's own
RUNTIME_TS_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d) "
_RUNTIME_TS_CAP = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)(?:Z|[+-]\d\d:\d\d) "
# syslog / `journalctl` (short: `Nov 28 19:05:09 app-3 celery[1234]: `, RFC 3164 maybe with `<13>`;
# short-iso: `2026-11-28T19:05:09+0000 app-3 celery[1234]: `): time, host, identifier and pid
SYSLOG_PREFIX_RE = (r"(?:<\d{1,3}>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)"
                    r"(?:Z|[+-]\d\d:?\d\d)) ([\w.-]+) [\w./@:-]{1,64}(?:\[\d{1,10}\])?: ")
# docker compose v1 `worker_1  | `, v2 `worker-1  | `; kubectl logs --prefix `[pod/w-1/celery] `;
# either may be followed by the runtime's time, which may also come alone; or a syslog / journald prefix.
# Groups: 1 compose service, 2 pod, 3 and 4 the runtime's time, 5 journald's time, 6 syslog host.
PREFIX_RE = (r"^(?:(?:([\w.-]+?)\s*\| |\[pod/([^\]/]+)(?:/[^\]]*)?\] )(?:" + _RUNTIME_TS_CAP + r")?|"
             + _RUNTIME_TS_CAP + "|" + SYSLOG_PREFIX_RE + ")")
# Where records were joined on one line when newlines were lost (a copy from a web page or a terminal):
# a Celery header or a traceback start after other text. Only long lines are searched.
JOINED_RE = (r" (?:\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: [A-Z]{4,8}/[\w-]{1,40}\] |"
             r"Traceback \(most recent call last\):|  File \"[^\"]{1,400}\", line \d{1,7}, in )")
JOINED_MIN_CHARS = 200

REPLACEMENT = "\ufffd"
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Lines:
    """`frame` has `line` (1-based), `text` (never null) and `stream` (container name or null)."""

    frame: pl.DataFrame
    invalid_utf8: int  # lines holding bytes that were not UTF-8
    had_ansi: bool
    had_prefix: bool
    nul_bytes: int = 0  # NUL bytes removed from the text (see `nul_note`)
    # physical lines split where records had been joined (`JOINED_RE`): several rows share a `line`,
    # and the frame has `_row`, unique per row
    joined: int = 0
    debris: tuple[str, ...] = ()  # copy debris removed (`analyzer.sources.debris`), one note per shape


def nul_note(n: int) -> str:
    """The coverage note of an input whose `n` NUL bytes were removed."""
    return f"{n} NUL byte(s) removed (a log truncated in place, e.g. logrotate copytruncate?)"


@dataclass(frozen=True)
class _Scan:
    separator: bytes | None
    has_cr: bool
    has_ansi: bool
    has_nul: bool = False
    has_caret: bool = False  # ANSI in caret notation, `^[[36m`


def _scan_bytes(data: bytes) -> _Scan:
    sep = next((s for s in _SEPARATORS if s not in data), None)
    return _Scan(sep, b"\r" in data, b"\x1b[" in data)


def _scan_file(path: Path) -> _Scan:
    """One pass over the file for the facts that decide how to read it (memchr-speed `in`)."""
    candidates = list(_SEPARATORS)
    has_cr = has_ansi = False
    with path.open("rb") as f:
        tail = b""
        while chunk := f.read(1 << 24):
            while candidates and candidates[0] in chunk:  # usually one memchr per chunk
                candidates.pop(0)
            has_cr = has_cr or b"\r" in chunk
            has_ansi = has_ansi or b"\x1b[" in (tail + chunk[:8]) or b"\x1b[" in chunk
            tail = chunk[-8:]
            if not candidates:
                break
    return _Scan(candidates[0] if candidates else None, has_cr, has_ansi)


def _holds(source: bytes | Path, needle: bytes) -> bool:
    if isinstance(source, bytes):
        return needle in source
    with source.open("rb") as f:
        tail = b""
        while chunk := f.read(1 << 24):
            if needle in tail + chunk[:len(needle)] or needle in chunk:
                return True
            tail = chunk[-len(needle):]
    return False


def _invalid_lines(source: bytes | Path, replaced: int) -> int:
    """How many lines hold bytes that are not UTF-8, given that `replaced` lines hold U+FFFD
    after a lossy decode: that count, unless the input also holds a real (encoded) U+FFFD,
    which only a line-by-line decode tells apart."""
    if not replaced or not _holds(source, REPLACEMENT.encode()):
        return replaced

    def bad(line: bytes) -> bool:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False

    if isinstance(source, bytes):
        return sum(bad(line) for line in source.split(b"\n"))
    with source.open("rb") as f:
        return sum(bad(line) for line in f)


def _read(source: bytes | Path, scan: _Scan, first_line: int = 1) -> tuple[pl.DataFrame, int]:
    """Lines as a one-column frame, and how many lines held invalid UTF-8."""
    if (isinstance(source, bytes) and not source) or (isinstance(source, Path) and source.stat().st_size == 0):
        return pl.DataFrame({"line": [], "text": []}, schema={"line": pl.Int64, "text": pl.String}), 0
    if scan.separator is None:  # pathological: every candidate occurs; split in Python instead
        raw = source if isinstance(source, bytes) else source.read_bytes()
        text = raw.decode("utf-8", errors="replace").removesuffix("\n")
        df = pl.DataFrame({"text": text.split("\n")}).with_row_index("line", offset=first_line)
        replaced = df.select(pl.col("text").str.contains(REPLACEMENT, literal=True).sum()).item() or 0
        return df.with_columns(pl.col("line").cast(pl.Int64)), _invalid_lines(raw, int(replaced))

    def read(encoding: str) -> pl.DataFrame:
        return pl.read_csv(
            source,
            has_header=False, new_columns=["text"], schema={"text": pl.String},
            separator=scan.separator.decode(), quote_char=None, encoding=encoding,  # type: ignore[union-attr]
            comment_prefix=None, empty_string_is_null=False, row_index_name="line",
            row_index_offset=first_line, glob=False,  # a `[` or `*` in a file name is part of the name
        ).with_columns(pl.col("line").cast(pl.Int64))

    try:
        return read("utf8"), 0  # the common case: valid UTF-8, no counting pass needed
    except pl.exceptions.ComputeError:
        df = read("utf8-lossy")
        replaced = int(df.select(pl.col("text").str.contains(REPLACEMENT, literal=True).sum()).item() or 0)
        return df, _invalid_lines(source, replaced)


def _read_optimistic(source: bytes | Path, first_line: int) -> tuple[pl.DataFrame, int, _Scan]:
    """Read with the first separator candidate straight away; polars refuses a line that holds
    it ("found more fields"), and only then is the input scanned for a free one. CR and ANSI are
    then looked for in the frame, saving passes over the bytes in the common case."""
    try:
        df, invalid = _read(source, _Scan(_SEPARATORS[0], has_cr=False, has_ansi=False), first_line)
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError) as exc:
        # the separator occurs in a later line ("more fields") or in the first ("new_columns")
        if "more fields" not in str(exc) and "new_columns" not in str(exc):
            raise
        scan = _scan_bytes(source) if isinstance(source, bytes) else _scan_file(source)
        df, invalid = _read(source, scan, first_line)
        nul = (b"\0" in source if isinstance(source, bytes)
               else bool(df.select(pl.col("text").str.contains("\x00", literal=True).any()).item()))
        caret = bool(df.select(pl.col("text").str.contains("^[[", literal=True).any()).item())
        return df, invalid, _Scan(scan.separator, scan.has_cr, scan.has_ansi, has_nul=nul, has_caret=caret)
    text = pl.col("text")
    # NUL: memchr over bytes; a file's frame is asked along with CR and ANSI, in the same pass
    nul_flag = [] if isinstance(source, bytes) else [text.str.contains("\x00", literal=True).any().alias("nul")]
    # colour, raw or in caret notation: one pass for both (told apart only when there is some)
    flags = df.select(text.str.ends_with("\r").any().alias("cr"),
                      text.str.contains(r"\x1b\[|\^\[\[").any().alias("colour"), *nul_flag).row(0)
    has_nul = b"\0" in source if isinstance(source, bytes) else bool(flags[2])
    ansi = caret = False
    if flags[1]:
        ansi, caret = df.select(text.str.contains("\x1b[", literal=True).any().alias("ansi"),
                                text.str.contains("^[[", literal=True).any().alias("caret")).row(0)
    return df, invalid, _Scan(_SEPARATORS[0], has_cr=bool(flags[0]), has_ansi=bool(ansi), has_nul=has_nul,
                              has_caret=bool(caret))


NUL_PROBE = 1 << 20


def leading_nuls(source: bytes | Path) -> int:
    """How many NUL bytes a file starts with, read a MiB at a time: `logrotate copytruncate` can
    leave a run as long as the old log (a sparse hole of GBs), which is skipped, never held."""
    if isinstance(source, bytes):
        return 0  # already in memory: removing its NULs costs nothing more
    run = 0
    with source.open("rb") as f:
        try:  # a sparse file's hole reads as NULs: the file system says where data starts
            run = os.lseek(f.fileno(), 0, os.SEEK_DATA)
            f.seek(run)
        except (OSError, AttributeError):  # no SEEK_DATA here, or no data at all (ENXIO)
            f.seek(0)
            run = 0
        while chunk := f.read(NUL_PROBE):
            kept = len(chunk.lstrip(b"\0"))
            run += len(chunk) - kept
            if kept:
                break
    return run


def read_lines(source: bytes | Path, *, span: tuple[int, int] | None = None, first_line: int = 1) -> Lines:
    """All lines of an artifact; ANSI colour and container prefixes removed (prefix kept as `stream`).

    `span` reads only bytes [start, end) of a file or of the bytes (a piece cut by
    `record_spans`), numbering its lines from `first_line`. A file's leading run of NUL bytes is
    skipped (and counted), whole or as the start of its first piece.
    """
    skipped = 0
    if isinstance(source, Path) and (span is None or (span[0] > 0 and first_line == 1)):
        skipped = leading_nuls(source)
        if skipped and span is None:
            span = (skipped, source.stat().st_size)
        elif span is not None and span[0] != skipped:
            skipped = 0  # a first piece that does not start after the run: read as it is
    if span is not None and isinstance(source, Path):
        with source.open("rb") as f:
            f.seek(span[0])
            source = f.read(span[1] - span[0])
    elif span is not None and isinstance(source, bytes):
        source = source[span[0]:span[1]]
    df, invalid, scan = _read_optimistic(source, first_line)
    nul_bytes = skipped
    if scan.has_nul:  # NULs are not content: a leading run joins line 1, so line numbers stay
        nul_bytes += int(df.select(pl.col("text").str.count_matches("\x00", literal=True).sum()).item() or 0)
        df = df.with_columns(pl.col("text").str.replace_all("\x00", "", literal=True))
    if scan.has_cr:
        df = df.with_columns(pl.col("text").str.strip_suffix("\r"))
    had_ansi = scan.has_ansi
    if had_ansi:
        df = df.with_columns(pl.col("text").str.replace_all(ANSI_RE, ""))
    if scan.has_caret:
        df = df.with_columns(pl.col("text").str.replace_all(CARET_ANSI_RE, ""))
    df, debris_notes = debris.clean(df)
    # Prefixes only count when most lines carry them (a log line may contain " | " by chance).
    head = df.head(200).filter(pl.col("text") != "")
    prefixed = head.select(pl.col("text").str.contains(PREFIX_RE).mean()).item() if head.height else 0.0
    had_prefix = bool(prefixed and prefixed >= 0.8)
    if had_prefix:
        caps = pl.col("text").str.extract_groups(PREFIX_RE)
        df = df.with_columns(
            pl.coalesce(caps.struct.field("1"), caps.struct.field("2"), caps.struct.field("6")).alias("stream"),
            pl.coalesce(caps.struct.field("3"), caps.struct.field("4"), caps.struct.field("5")).alias("prefix_ts"),
            pl.col("text").str.replace(PREFIX_RE, ""),
        )
    else:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("stream"))
    df, joined = split_joined(df)
    return Lines(df, invalid, had_ansi or scan.has_caret, had_prefix, nul_bytes, joined, tuple(debris_notes))


def split_joined(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Lines holding several records (newlines lost in a copy) split before each embedded Celery
    header and traceback line (`JOINED_RE`); the pieces keep the physical line's number and the
    frame gains `_row`. Only lines longer than JOINED_MIN_CHARS are searched, so a log pays one
    length test per line."""
    text = pl.col("text")
    long = text.str.len_bytes() > JOINED_MIN_CHARS
    # the regex runs on the long lines only (an `&` would run it on every line)
    if not df.filter(long).select(text.str.contains(JOINED_RE).any()).item():
        return df, 0
    hit = long & text.str.contains(JOINED_RE)
    n = int(df.select(hit.sum()).item() or 0)
    # a NUL never remains in the text (removed on reading): a safe cut mark
    cut = pl.when(hit).then(text.str.replace_all(JOINED_RE, "\x00$0").str.split("\x00")).otherwise(
        pl.concat_list(text))
    df = df.with_columns(cut.alias("text")).explode("text").with_row_index("_row")
    df = df.with_columns(pl.col("_row").cast(pl.Int64), pl.col("text").str.strip_chars_start(" ")
                         .alias("_t")).with_columns(
        pl.when(pl.col("_t").str.starts_with("File \"")).then(pl.lit("  ") + pl.col("_t"))
        .when(pl.col("_t").str.starts_with("[") | pl.col("_t").str.starts_with("Traceback")).then(pl.col("_t"))
        .otherwise(pl.col("text")).alias("text")).drop("_t")
    return df, n


def record_spans(source: Path | bytes, piece_bytes: int, record_start: Callable[[bytes], int | None],
                 window: int = 1 << 20) -> list[tuple[int, int]]:
    """Cut a big file (or the bytes of an archive member) into byte ranges of about
    `piece_bytes`, each starting at a record.

    Parsing piece by piece bounds peak memory to one piece's intermediates. `record_start(w)`
    gives the offset in `w` of the last line there that surely starts a record (or None); each
    cut looks in the `window` bytes before the nominal boundary, and a piece grows by
    `piece_bytes` while its window shows no record start (a long traceback, a huge line).
    """
    if isinstance(source, bytes):
        return _spans(memoryview(source), len(source), piece_bytes, record_start, window)
    with source.open("rb") as f:
        return _spans(f, source.stat().st_size, piece_bytes, record_start, window, start=leading_nuls(source))


def _spans(data: BinaryIO | memoryview, size: int, piece_bytes: int, record_start: Callable[[bytes], int | None],
           window: int, start: int = 0) -> list[tuple[int, int]]:
    def read(low: int, high: int) -> bytes:
        if isinstance(data, memoryview):
            return bytes(data[low:high])
        data.seek(low)
        return data.read(high - low)

    spans: list[tuple[int, int]] = []
    probe = start + piece_bytes
    while size - start > piece_bytes + piece_bytes // 2 and probe < size:
        low = max(start + 1, probe - window)
        cut = record_start(read(low, probe))
        if cut is None:
            probe += piece_bytes
            continue
        spans.append((start, low + cut))
        start = low + cut
        probe = start + piece_bytes
    spans.append((start, size))
    return spans



def read_joined(sources: list[bytes | Path]) -> tuple[Lines, list[int]] | None:
    """The lines of several sources read with one CSV read: `_src` (the source's index) and
    `line` numbered within each source; and each source's line count.

    A CSV read costs about a millisecond whatever its size, so hundreds of small logs read
    together cost a fraction of reading them one by one. Each source ends with a newline before
    they are joined, and trailing CR and ANSI codes are per-line edits, so every source gets
    exactly the lines `read_lines` gives it. None when that cannot hold: the separator byte or
    bytes outside UTF-8 in some source, or a source with container prefixes (decided per file);
    then each is read on its own.
    """
    # polars drops a UTF-8 BOM at the start of its input only: each source's own goes here
    raw = [(s if isinstance(s, bytes) else s.read_bytes()).removeprefix(BOM) for s in sources]
    sep = _SEPARATORS[0]
    if any(sep in b or b"\0" in b for b in raw):  # NULs: each read on its own, to count them
        return None
    ended = [b if not b or b.endswith(b"\n") else b + b"\n" for b in raw]
    counts = [b.count(b"\n") for b in ended]
    joined = b"".join(ended)
    try:
        df, invalid = _read(joined, _Scan(sep, has_cr=False, has_ansi=False), 1)
    except pl.exceptions.PolarsError:
        return None
    if invalid or df.height != sum(counts):
        return None
    starts = [0]
    for n in counts[:-1]:
        starts.append(starts[-1] + n)
    owners = pl.DataFrame({"_src": range(len(raw)), "n": counts}, schema={"_src": pl.UInt32, "n": pl.Int64})
    src = owners.filter(pl.col("n") > 0).select(pl.col("_src").repeat_by("n").explode()).to_series()
    first = pl.Series("first", starts, dtype=pl.Int64).gather(src)
    df = df.with_columns(src, (pl.col("line") - first).alias("line"))
    text = pl.col("text")
    if b"^[[" in joined or df.filter(text.str.len_bytes() > JOINED_MIN_CHARS).select(
            text.str.contains(JOINED_RE).any()).item():
        return None  # caret ANSI or joined records: each read on its own, as `read_lines` does
    if b"\r" in joined:
        df = df.with_columns(text.str.strip_suffix("\r"))
    if b"\x1b[" in joined:
        df = df.with_columns(text.str.replace_all(ANSI_RE, ""))
    head = df.filter((pl.col("line") <= 200) & (text != ""))  # as `read_lines` judges each file
    if head.height and head.group_by("_src").agg(text.str.contains(PREFIX_RE).mean().alias("p")).select(
            (pl.col("p") >= 0.8).any()).item():
        return None
    df = df.with_columns(pl.lit(None, dtype=pl.String).alias("stream"))
    return Lines(df.select("line", "text", "stream", "_src"), 0, b"\x1b[" in joined, False), counts
