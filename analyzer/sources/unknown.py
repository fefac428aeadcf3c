"""Records of lines no layout reads: a record is a line and the lines that continue it (indented lines,
blank lines, and a Python traceback up to its exception line, wherever it appears), with the time and
level read when one is written near the start. DESIGN "Every line is evidence".
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analyzer.schema import EVENTS, conform
from analyzer.sources.folding import fold

# `Traceback (most recent call last):` opens a traceback; the first unindented line after it is
# its exception line (`redis.exceptions.ConnectionError: Error 111 …`)
TRACEBACK = "Traceback (most recent call last):"
# lines of a chained traceback between two of them (CPython Lib/traceback.py _cause_message etc.)
CHAINED = ("During handling of the above exception, another exception occurred:",
           "The above exception was the direct cause of the following exception:")
# An exception line on its own: a dotted class name (`sqlalchemy.exc.TimeoutError: QueuePool …`) or a
# builtin-style one ending in Error/Exception/… (`MemoryError`, `KeyError: 'x'`), then `:` or the end.
EXC_ALONE_RE = (r"^((?:[A-Za-z_][A-Za-z0-9_]*\.)+[A-Z][A-Za-z0-9_]*|[A-Z][A-Za-z0-9_]*(?:Error|Exception|Exit|"
                r"Interrupt|Warning|Timeout|Refused|Reset|Full|Empty|NotFound|Denied))(?::\s|:?$)")

# A time written near a line's start (after a prefix of at most ~40 characters): ISO 8601 with or without
# `T`, fraction and zone, or logging's `%Y-%m-%d %H:%M:%S,%f` (`2026-11-28 19:05:09,375`).
TIME_NEAR_START_RE = (r"^.{0,40}?(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?)"
                      r"(?:Z|[+-]\d\d:?\d\d)?(?:[^\d]|$)")
# A level word near the start: bare upper case (`ERROR`, `WARNING:root:…`, `E/`), or bracketed in any case
# (`[error]`, RabbitMQ / Erlang); WARN and FATAL are logging's aliases
LEVEL_NEAR_START_RE = (r"^.{0,48}?(?:^|[^\w])(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)(?:[^\w]|$)"
                       r"|^.{0,48}?\[(debug|info|notice|warning|warn|error|critical|fatal)\]")
LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "NOTICE": "INFO"}


# -- records of lines without a layout -----------------------------------------------------------

def starts_of_unknown(df: pl.DataFrame, over: Sequence[str] = ()) -> pl.Expr:
    """Which lines of `df` start a record when no layout reads them (an expression over `df`).

    A record is a line with its continuation: indented and blank lines, a traceback up to its
    exception line, the chained-exception lines between tracebacks. The first non-blank line of a
    group (`over`: a file, a container stream) always starts one: every line is evidence.
    """
    text = pl.col("text")
    blank = text.str.strip_chars() == ""
    indented = text.str.starts_with(" ") | text.str.starts_with("\t")
    flat = ~blank & ~indented
    keys = [pl.col(k) for k in over]

    def win(e: pl.Expr) -> pl.Expr:
        return e.over(keys) if keys else e

    tb = text.str.starts_with(TRACEBACK)
    chained = text.is_in(list(CHAINED))
    # the last unindented line before this one opened a traceback: this one is its exception line
    after_tb = win(pl.when(flat).then(tb).forward_fill().shift(1)).fill_null(False)
    exc_line = flat & after_tb & ~tb
    # a traceback continues the record before it (`logger.exception`, `raised unexpected: …`) unless
    # that record is a traceback already ended (its exception line was the last flat line)
    after_exc = win(pl.when(flat).then(exc_line).forward_fill().shift(1)).fill_null(False)
    first = ~blank & (win((~blank).cum_sum()) == 1)
    joins = exc_line | chained | (tb & ~after_exc)
    return (flat & ~joins) | first


def fields_near_start() -> dict[str, pl.Expr]:
    """Time and level of a line no layout reads, when written near its start (else null)."""
    text = pl.col("text")
    stamp = text.str.extract(TIME_NEAR_START_RE, 1).str.replace("T", " ", literal=True).str.replace(
        ",", ".", literal=True)
    ts = pl.coalesce(stamp.str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S%.f", strict=False),
                     stamp.str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S", strict=False))
    levels = text.str.extract_groups(LEVEL_NEAR_START_RE)
    level = pl.coalesce(levels.struct.field("1"), levels.struct.field("2").str.to_uppercase())
    return {"ts": ts, "level": level.replace(LEVEL_ALIASES)}


def unknown_records(df: pl.DataFrame, over: Sequence[str] = ()) -> pl.DataFrame:
    """Records of lines no layout reads (`line`, `text`, `stream`, maybe `_src` / `_row`), folded by
    `starts_of_unknown`, before `classify` (host and source are the caller's). Only blank lines
    before a group's first record are in none, so nothing is lost."""
    df = df.with_columns(starts_of_unknown(df, over).alias("_start"))
    heads = df.filter(pl.col("_start")).with_columns(pl.col("text").alias("message"), **fields_near_start())
    df, starts = fold(df, heads, over=over)
    starts = starts.with_columns(pl.coalesce(pl.col("exc_type"), pl.col("message").str.extract(EXC_ALONE_RE, 1))
                                 .alias("exc_type"))
    for col in ("kind", "task_name", "task_id", "process", "logger", "runtime_s"):
        if col not in starts.columns:
            starts = starts.with_columns(pl.lit(None, dtype=EVENTS[col]).alias(col))
    return starts.drop("_start", "_rec", strict=False)


def as_events(records: pl.DataFrame, source: str, host: str | None = None) -> pl.DataFrame:
    """EVENTS rows of records of one source."""
    return conform(records.with_columns(pl.lit(source).alias("source"), pl.lit(host, dtype=pl.String).alias("host")),
                   EVENTS).select(EVENTS.keys())
