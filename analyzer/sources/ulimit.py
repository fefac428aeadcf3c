"""`ulimit -a` output (bash) → the `limits` frame: one row per limit.

A real line (bash 5.2, saved by the fd-exhaustion scenario): `open files                          (-n) 64`
or `core file size              (blocks, -c) 0`. `unlimited` becomes a null `value`.
"""

from __future__ import annotations

import polars as pl

from analyzer import schema
from analyzer.sources.celery_log import Coverage
from analyzer.sources.lines import Lines

LIMIT_RE = r"^(.+?)\s+\((?:([^,)]+), )?-(\w)\)\s+(\S+)\s*$"

SCHEMA = schema.LIMITS


def parse_lines(lines: Lines, *, source: str) -> tuple[pl.DataFrame, Coverage]:
    df = lines.frame
    caps = pl.col("text").str.extract_groups(LIMIT_RE)
    rows = df.filter(pl.col("text").str.contains(LIMIT_RE)).select(
        pl.lit(source).alias("source"), "line",
        caps.struct.field("1").str.strip_chars().alias("name"),
        caps.struct.field("3").alias("flag"),
        caps.struct.field("2").alias("unit"),
        caps.struct.field("4").cast(pl.Int64, strict=False).alias("value"),
        caps.struct.field("4").alias("raw"),
    )
    unrec = df.filter(~pl.col("text").str.contains(LIMIT_RE) & (pl.col("text").str.strip_chars() != ""))
    return rows.cast(dict(SCHEMA)), Coverage.of(source, "ulimit", df, unrec)  # type: ignore[arg-type]
