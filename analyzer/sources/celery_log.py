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

Records are numbered with a cumulative sum over the start flags (per container stream when
the file interleaves several), so folding is a group-by, never a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from analyzer.schema import EVENTS, conform
from analyzer.sources.lifecycle_messages import READY_RE, classify
from analyzer.sources.lines import Lines, read_lines
from analyzer.sources.log_format import LogFormat

TS_FORMAT = "%Y-%m-%d %H:%M:%S,%3f"

# ` -------------- w1@sample v5.7.0 (collider)` (celery/apps/worker.py BANNER)
BANNER_RE = r"^ -{5,} (\S+@\S+) v(\d[\w.]*) \("
# `/…/celery/platforms.py:893: SecurityWarning: You're running the worker with superuser…`
WARNING_LINE_RE = r"^\S+\.py:\d+: \w*Warning: "
# `Thread 0x00007fd358e5e6c0 (most recent call first):` / `Current thread 0x… [name] (most recent…`
FAULTHANDLER_THREAD_RE = r"^(?:Current thread|Thread) 0x[0-9a-f]+(?: \[[^\]]*\])? \(most recent call first\):"
PSEUDO_PREFIXES = ("worker: Warm shutdown", "worker: Cold shutdown", "Fatal Python error: ",
                   "worker: Hitting Ctrl+C again")
# The first unindented line after a traceback's last frame: `billiard.exceptions.WorkerLostError: …`
EXC_LINE_RE = r"^((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)(?::|$)"

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
    samples: list[tuple[int, str]] = field(default_factory=list)  # (line, text) of unrecognised lines
    notes: list[str] = field(default_factory=list)

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


def _default_header(df: pl.DataFrame) -> pl.DataFrame:
    """Split default-format header lines by position; other lines get nulls."""
    text = pl.col("text")
    ts = text.str.slice(1, 23).str.strptime(pl.Datetime("ms"), TS_FORMAT, strict=False)
    is_header = text.str.starts_with("[") & (text.str.slice(24, 2) == ": ") & ts.is_not_null()
    rest = text.str.slice(26)
    slash = rest.str.find("/", literal=True)
    close = rest.str.find("]", literal=True)
    return df.with_columns(
        is_header.alias("_hdr"),
        pl.when(is_header).then(ts).alias("ts"),
        pl.when(is_header).then(rest.str.slice(0, slash)).alias("level"),
        pl.when(is_header).then(rest.str.slice(slash + 1, close - slash - 1)).alias("process"),
        pl.when(is_header).then(rest.str.slice(close + 1).str.strip_prefix(" ")).alias("message"),
    )


def _custom_header(df: pl.DataFrame, formats: list[LogFormat]) -> pl.DataFrame:
    """Header lines of users' `%(...)s` formats; the most specific format that matches wins."""
    none = pl.lit(None, dtype=pl.String)
    ordered = sorted(formats, key=lambda f: -len(f.groups))
    hdr: pl.Expr = pl.lit(False)
    cols: dict[str, pl.Expr] = {}
    targets = {"levelname": "level", "processName": "process", "message": "message", "name": "logger",
               "task_name": "task_name", "task_id": "task_id", "hostname": "_hostname"}
    for fmt in reversed(ordered):  # the last `when` written is the first tried
        matches = pl.col("text").str.contains(fmt.regex)
        caps = pl.col("text").str.extract_groups(fmt.regex)
        fields = {name: caps.struct.field(name) for name in fmt.groups}
        ts = fmt.timestamp_expr(fields.get("asctime"))
        ok = matches & ts.is_not_null() if "asctime" in fields else matches
        hdr = ok | hdr
        cols["ts"] = pl.when(ok).then(ts).otherwise(cols.get("ts", pl.lit(None, dtype=pl.Datetime("ms"))))
        for field_name, col in targets.items():
            value = fields.get(field_name, pl.lit("", dtype=pl.String) if col == "message" else none)
            cols[col] = pl.when(ok).then(value).otherwise(cols.get(col, none))
    out = df.with_columns(hdr.alias("_hdr"), *(e.alias(c) for c, e in cols.items()))
    return out.with_columns(
        pl.when(pl.col(c).is_in(["???", ""])).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("task_name", "task_id")
    )


def _pseudo(df: pl.DataFrame) -> pl.Expr:
    text = pl.col("text")
    starts = pl.lit(False)
    for p in PSEUDO_PREFIXES:
        starts = starts | text.str.starts_with(p)
    return ~pl.col("_hdr") & (
        starts
        | (text.str.starts_with(" -") & text.str.contains(BANNER_RE))
        | (text.str.starts_with("/") & text.str.contains(WARNING_LINE_RE))
        | ((text.str.starts_with("Thread 0x") | text.str.starts_with("Current thread 0x"))
           & text.str.contains(FAULTHANDLER_THREAD_RE))
    )


def parse_lines(lines: Lines, *, source: str, log_formats: list[LogFormat] | None = None,
                kind: str = "celery_log") -> Parsed:
    df = lines.frame
    df = _custom_header(df, log_formats) if log_formats else _default_header(df)
    df = df.with_columns(_pseudo(df).alias("_pseudo"))
    df = df.with_columns((pl.col("_hdr") | pl.col("_pseudo")).alias("_start"))
    stream_key = pl.col("stream").fill_null("")
    df = df.with_columns(pl.col("_start").cast(pl.Int64).cum_sum().over(stream_key).alias("_rec"))

    # continuation lines, folded into their record; the exception line follows the last frame
    cont = df.filter(~pl.col("_start") & (pl.col("_rec") > 0))
    last_frame = pl.when(pl.col("text").str.starts_with('  File "')).then(pl.col("line")).max().over(
        "stream", "_rec")
    cont = cont.with_columns(last_frame.alias("_lf"))
    exc = (
        cont.filter(
            pl.col("_lf").is_not_null() & (pl.col("line") > pl.col("_lf"))
            & ~pl.col("text").str.starts_with(" ") & (pl.col("text") != "")
            & ~pl.col("text").str.starts_with('"""') & ~pl.col("text").str.starts_with("\t")
        )
        .group_by("stream", "_rec").agg(pl.col("text").sort_by("line").first().alias("_excl"))
        .with_columns(pl.col("_excl").str.extract(EXC_LINE_RE, 1).alias("_exc"))
        .drop("_excl")
    )
    folded = cont.group_by("stream", "_rec").agg(
        pl.col("text").sort_by("line").str.join("\n").alias("_cont"),
        pl.col("line").max().alias("end_line"),
    )

    starts = df.filter(pl.col("_start"))
    starts = starts.with_columns(
        pl.when(pl.col("_pseudo")).then(pl.col("text")).otherwise(pl.col("message")).alias("message")
    ).join(folded, on=["stream", "_rec"], how="left", nulls_equal=True).join(
        exc, on=["stream", "_rec"], how="left", nulls_equal=True)
    starts = starts.with_columns(
        pl.coalesce(pl.col("end_line"), pl.col("line")).alias("end_line"),
        pl.when(pl.col("_cont").is_not_null())
        .then(pl.concat_str(pl.col("message"), pl.lit("\n"), pl.col("_cont")))
        .otherwise(pl.col("message")).alias("text"),
        pl.col("_exc").alias("exc_type"),
        pl.when(pl.col("_pseudo") & pl.col("text").str.contains(BANNER_RE)).then(pl.lit("banner"))
        .alias("kind"),
    )
    if "task_name" not in starts.columns:
        starts = starts.with_columns(pl.lit(None, dtype=pl.String).alias("task_name"),
                                     pl.lit(None, dtype=pl.String).alias("task_id"))
    ev = classify(starts)
    ev = ev.with_columns(
        pl.when(pl.col("_pseudo") & pl.col("message").str.starts_with("/")
                & pl.col("message").str.contains(WARNING_LINE_RE))
        .then(pl.lit("WARNING")).otherwise(pl.col("level")).alias("level"),
    )
    ev = _attribute_hosts(ev, source)
    ev = ev.with_columns(pl.lit(source).alias("source"))
    events = conform(ev, EVENTS).select(EVENTS.keys())

    preamble = df.filter(pl.col("_rec") == 0)
    unrec = preamble.filter(pl.col("text").str.strip_chars() != "")
    cov = Coverage(source=source, kind=kind, lines=df.height, unrecognized=unrec.height,
                   invalid_utf8=lines.invalid_utf8)
    cov.parsed = cov.lines - cov.unrecognized
    cov.samples = [(int(r[0]), str(r[1])[:300]) for r in unrec.head(SAMPLE_LIMIT).select("line", "text").rows()]
    if lines.invalid_utf8:
        cov.notes.append(f"{lines.invalid_utf8} line(s) held invalid UTF-8 (replaced with U+FFFD)")
    if lines.had_prefix:
        cov.notes.append("container log prefixes removed (docker compose / kubectl)")
    return Parsed(events, cov)


def _attribute_hosts(ev: pl.DataFrame, source: str) -> pl.DataFrame:
    """Node name per stream: `… ready.` line, else the banner, else `hostname`, stream or file stem."""
    ready = pl.when(pl.col("kind") == "ready").then(pl.col("message").str.extract(READY_RE, 1))
    banner = pl.when(pl.col("kind") == "banner").then(pl.col("message").str.extract(BANNER_RE, 1))
    named = [ready.drop_nulls().first().over("stream").alias("_h_ready"),
             banner.drop_nulls().first().over("stream").alias("_h_banner")]
    ev = ev.with_columns(named)
    stem = Path(source.split(":")[-1]).name.split(".")[0] or source
    hostname = [pl.col("_hostname")] if "_hostname" in ev.columns else []
    return ev.with_columns(
        pl.coalesce(*hostname, pl.col("_h_ready"), pl.col("_h_banner"), pl.col("stream"), pl.lit(stem))
        .alias("host")
    )


def parse(data: bytes | Path, *, source: str, log_formats: list[LogFormat] | None = None) -> Parsed:
    """Parse one Celery text log (default format, or users' `%`-style formats)."""
    return parse_lines(read_lines(data), source=source, log_formats=log_formats)
