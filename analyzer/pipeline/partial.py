"""What one chunk of a log leaves for the stages after it, and how those pieces combine.

The contract shared by the streaming reader and by layout detection (they meet here):

- A `Chunk` is whole lines of one input, starting at a record start of that input's layout, so
  folding (tracebacks, continuation lines) never needs the chunk before it. The layout is detected
  once per input, on its head, and travels with every chunk of it; lines the layout does not read
  are still records (time and level null, `layout` "unknown"): every line is evidence.
- `map` turns a chunk into a `Partial` of plain Arrow-serialisable frames, small next to the chunk:
  `records`, the records some rule or analysis can use (the union of the rules' prefilters on the raw
  text, lifecycle records, `exited with` / `outside body` lines); `tasks`, the per-task aggregates of
  `analyzer.analyses.tasks.partial` with order keys; `hosts`, per source and node the first and last
  time and record counts by level; `coverage`, per source and layout the line accounting and the
  first unrecognised lines.
- `merge` is associative and commutative: partials of any cut, merged in any grouping, equal the
  partial of the whole. Order-sensitive results carry `(ts, source, line)` keys; lists of samples
  keep the smallest line numbers; counts add.
- Facts of a whole input are reduced, never decided in one chunk. The node a record belongs to is
  one: a worker names itself in its banner or `ready.` line, which may sit in any chunk (or none,
  then the folder's only node or the file's stem, `analyzer.api.settle_hosts`). So a chunk's records
  and task aggregates keep the host the record itself names (else null) with their `(source,
  stream)`, the partial carries the naming lines it saw, and the host is settled after the merge.
  Likewise everything read from the whole `events` frame today (the last record of a task still
  running at the end, the broker URLs and `Connected to` lines advice reads, per-host first and
  last times) becomes a partial aggregate, not a kept row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from analyzer.analyses import tasks
from analyzer.schema import EVENTS, INT, STR, TS, empty

SAMPLE_LIMIT = 5  # unrecognised lines kept per source (`Coverage.samples`)
UNKNOWN_LAYOUT = "unknown"


@dataclass(frozen=True)
class Chunk:
    """Whole lines of one input, starting at a record start (`first_line` 1-based, `offset` in the
    decompressed bytes) and read in `layout`, the layout detected on the input's head."""

    source: str
    first_line: int
    offset: int
    data: bytes
    layout: str


RECORDS: Mapping[str, pl.DataType] = {**EVENTS, "layout": STR}
HOSTS: Mapping[str, pl.DataType] = {"source": STR, "host": STR, "first_ts": TS, "last_ts": TS, "records": INT,
                                    "warnings": INT, "errors": INT, "criticals": INT}
COVERAGE: Mapping[str, pl.DataType] = {"source": STR, "layout": STR, "lines": INT, "parsed": INT,
                                       "unrecognized": INT, "invalid_utf8": INT, "nul_bytes": INT}
SAMPLES: Mapping[str, pl.DataType] = {"source": STR, "line": INT, "text": STR}


@dataclass(frozen=True)
class Partial:
    records: pl.DataFrame  # RECORDS
    tasks: pl.DataFrame  # analyzer.analyses.tasks.partial
    hosts: pl.DataFrame  # HOSTS
    coverage: pl.DataFrame  # COVERAGE
    samples: pl.DataFrame  # SAMPLES: unrecognised lines, the first SAMPLE_LIMIT of each source

    @classmethod
    def of_records(cls, records: pl.DataFrame, coverage: pl.DataFrame, samples: pl.DataFrame) -> Partial:
        """The partial of parsed records (a chunk's, after layout and folding), keeping them all."""
        return cls(records, tasks.partial(records), hosts(records), coverage, _first_samples(samples))

    @classmethod
    def empty(cls) -> Partial:
        return cls.of_records(empty(RECORDS), empty(COVERAGE), empty(SAMPLES))

    @staticmethod
    def merge(parts: Sequence[Partial]) -> Partial:
        """One partial from several; associative and commutative, so pieces may come back in any order."""
        if not parts:
            return Partial.empty()
        if len(parts) == 1:
            return parts[0]
        return Partial(
            records=pl.concat([p.records for p in parts]).sort("source", "line"),
            tasks=tasks.merge([p.tasks for p in parts]),
            hosts=_merge_hosts(pl.concat([p.hosts for p in parts])),
            coverage=pl.concat([p.coverage for p in parts]).group_by("source", "layout").agg(
                pl.exclude("source", "layout").sum()).sort("source", "layout"),
            samples=_first_samples(pl.concat([p.samples for p in parts])),
        )


def hosts(records: pl.DataFrame) -> pl.DataFrame:
    """Per source and node: first and last time, records, and records by level (WARNING and worse)."""
    level = pl.col("level")
    return _merge_hosts(records.select(
        "source", "host", pl.col("ts").alias("first_ts"), pl.col("ts").alias("last_ts"),
        pl.lit(1, pl.Int64).alias("records"), (level == "WARNING").cast(pl.Int64).fill_null(0).alias("warnings"),
        (level == "ERROR").cast(pl.Int64).fill_null(0).alias("errors"),
        (level == "CRITICAL").cast(pl.Int64).fill_null(0).alias("criticals")))


def _merge_hosts(df: pl.DataFrame) -> pl.DataFrame:
    return df.group_by("source", "host").agg(
        pl.col("first_ts").min(), pl.col("last_ts").max(),
        pl.col("records", "warnings", "errors", "criticals").sum(),
    ).sort("source", "host", nulls_last=True)


def _first_samples(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort("source", "line").group_by("source", maintain_order=True).head(SAMPLE_LIMIT)
