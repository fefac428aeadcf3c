"""What one piece of a log leaves for the stages after it, and how those pieces combine.

A piece is whole records of one input (`analyzer.sources.pieces`: cut before a record start, so
folding never needs the piece before it). `mapper.map_records` turns its records into a `Partial`
of plain Arrow-serialisable frames, small next to the piece:

- `records`: the records some rule or analysis reads (`keep`: the union of the rules' prefilters
  and what analyses look for), and the records of tasks the piece leaves unsettled;
- `tasks`: the per-task aggregates of `analyzer.analyses.tasks.partial`, with order keys;
- `hosts`: first and last time and record counts by level per node key;
- `activity`: record counts per node key, kind, level and second (`analyses.activity`);
- `names`: the lines where a worker names itself (`ready.`, banner);
- `marks`: per node key and time, the first record showing a worker at work again
  (`analyzer.diagnosis.RECOVERY_KINDS`), as its place and time only.

`merge` is associative and commutative: partials of any cut, merged in any grouping, equal the
partial of the whole. Order-sensitive results carry `(ts, source, line)` keys; counts add.

The node a record belongs to is a fact of its whole input: a worker names itself in its banner or
`ready.` line, which may sit in any piece (or none: then the folder's only node or the file's stem).
So every frame derived from records keys on `(source, stream, _hostname)` — the record's input, its
container stream and the node the record itself names — and `settle` gives the node after the merge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from analyzer.analyses import activity, tasks
from analyzer.schema import EVENTS, INT, STR, TS, empty

# a record before its node is settled: `host` null, the node key beside it
RECORDS: Mapping[str, pl.DataType] = {**EVENTS, "stream": STR, "_hostname": STR}
NODE_KEY = ("source", "stream", "_hostname")
HOSTS: Mapping[str, pl.DataType] = {"source": STR, "stream": STR, "_hostname": STR, "first_ts": TS, "last_ts": TS,
                                    "records": INT, "warnings": INT, "errors": INT, "criticals": INT}
ACTIVITY: Mapping[str, pl.DataType] = {"source": STR, "stream": STR, "_hostname": STR,
                                       **{k: v for k, v in activity.ACTIVITY.items() if k != "host"}}
NAMES: Mapping[str, pl.DataType] = {"source": STR, "stream": STR, "line": INT, "banner": pl.Boolean(), "name": STR}
MARKS: Mapping[str, pl.DataType] = {"source": STR, "stream": STR, "_hostname": STR, "ts": TS, "line": INT}


@dataclass(frozen=True)
class Partial:
    records: pl.DataFrame  # RECORDS, and FOR_TASK
    tasks: pl.DataFrame  # analyzer.analyses.tasks.partial
    hosts: pl.DataFrame  # HOSTS
    activity: pl.DataFrame  # ACTIVITY
    names: pl.DataFrame  # NAMES
    marks: pl.DataFrame  # MARKS

    @classmethod
    def empty(cls) -> Partial:
        return cls(empty({**RECORDS, FOR_TASK: pl.Boolean()}), tasks.partial(empty(RECORDS)), empty(HOSTS),
                   empty(ACTIVITY), empty(NAMES), empty(MARKS))

    @staticmethod
    def merge(parts: Sequence[Partial]) -> Partial:
        """One partial from several; associative and commutative, so pieces may come back in any order."""
        if not parts:
            return Partial.empty()
        if len(parts) == 1:
            return parts[0]
        merged_tasks = tasks.merge([p.tasks for p in parts])
        records = pl.concat([p.records for p in parts]).sort("source", "line", "end_line", maintain_order=True)
        return Partial(
            records=drop_settled(records, merged_tasks),
            tasks=merged_tasks,
            hosts=merge_hosts(pl.concat([p.hosts for p in parts])),
            activity=merge_activity(pl.concat([p.activity for p in parts])),
            names=pl.concat([p.names for p in parts]).sort("source", "line", maintain_order=True),
            marks=merge_marks(pl.concat([p.marks for p in parts])),
        )


FOR_TASK = "_for_task"  # a record kept only as a line of a task its piece did not settle
# a task with a record of one of these kinds is settled, in a piece as in the whole (the kinds that give
# a task its final state): its other lines are not needed
SETTLING = tuple(tasks.STATE_OF_KIND)


def settled(task_partial: pl.DataFrame) -> pl.Series:
    return task_partial.filter(pl.col("_last_settling").is_in(SETTLING)).get_column("task_id")


def drop_settled(records: pl.DataFrame, task_partial: pl.DataFrame) -> pl.DataFrame:
    """`records` without the lines kept only for a task that `task_partial` settles: settled in a
    part is settled in the whole, so they go as soon as a merge knows it, not at the end."""
    if FOR_TASK not in records.columns or records.is_empty():
        return records
    return records.filter(~(pl.col(FOR_TASK) & pl.col("task_id").is_in(settled(task_partial).implode())))


def merge_hosts(df: pl.DataFrame) -> pl.DataFrame:
    return df.group_by(list(NODE_KEY)).agg(
        pl.col("first_ts").min(), pl.col("last_ts").max(),
        pl.col("records", "warnings", "errors", "criticals").sum(),
    ).sort(list(NODE_KEY), nulls_last=True).select(list(HOSTS))


ACTIVITY_KEYS = (*NODE_KEY, "kind", "level", "second")


def merge_activity(df: pl.DataFrame) -> pl.DataFrame:
    return df.group_by(list(ACTIVITY_KEYS)).agg(pl.col("records").sum()).sort(
        list(ACTIVITY_KEYS), nulls_last=True).select(list(ACTIVITY))


def merge_marks(df: pl.DataFrame) -> pl.DataFrame:
    """Per node key and time, the first mark (smallest line): what `recovery_after` can pick. Slim rows
    (no text): the few a report quotes are read again.

    The node keys (a few strings) are ranked apart and the marks sorted by that rank, time and line,
    so the sort and the pick of each key's first row read integers: grouped by the strings, the
    marks of a 2 GB log (4.2 M) took 4.2 s and 1.3 GB more at their last merge, this 0.7 s and 0.5 GB."""
    if df.is_empty():
        return df.select(list(MARKS))
    keys = df.select(NODE_KEY).unique().sort(list(NODE_KEY), nulls_last=True).with_row_index("_k")
    ranked = df.join(keys, on=list(NODE_KEY), how="left", nulls_equal=True, maintain_order="left")
    ordered = ranked.sort("_k", "ts", "line", nulls_last=True)
    k, ts = pl.col("_k"), pl.col("ts")
    first = ((k != k.shift(1)) | ts.ne_missing(ts.shift(1))).fill_null(True)
    return ordered.filter(first).select(list(MARKS))
