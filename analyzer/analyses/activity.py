"""Records counted per host, lifecycle kind and level, per second: what the timeline plot draws.

A small aggregate of the records, never the records themselves, so a figure of a 10 GB log costs no
more than one of a 10 MB log; counts add, so chunks' partials merge by summing (`merge`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from analyzer.schema import INT, STR, TS, conform, empty

ACTIVITY: Mapping[str, pl.DataType] = {"host": STR, "kind": STR, "level": STR, "second": TS, "records": INT}
KEYS = ("host", "kind", "level", "second")


def partial(records: pl.DataFrame) -> pl.DataFrame:
    """The counts of some records (columns `host`, `kind`, `level`, `ts`); untimed records count
    under a null `second`."""
    if records.is_empty():
        return empty(ACTIVITY)
    counted = records.group_by(pl.col("host"), pl.col("kind"), pl.col("level"),
                               pl.col("ts").dt.truncate("1s").alias("second")).agg(pl.len().alias("records"))
    return _sorted(conform(counted, ACTIVITY))


def merge(parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """One activity frame from several: counts of equal keys add (associative, commutative)."""
    frames = [p for p in parts if p.height]
    if not frames:
        return empty(ACTIVITY)
    summed = pl.concat(frames).group_by(list(KEYS)).agg(pl.col("records").sum())
    return _sorted(conform(summed, ACTIVITY))


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(list(ACTIVITY)).sort(list(KEYS), nulls_last=True)
