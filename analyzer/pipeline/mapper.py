"""The map step: one piece's records → its `Partial` (pure; runs on any core, in any order).

What a piece keeps of its records is what the later stages read (`keep`: the rules' prefilters and
`STRUCTURAL`), plus every record of a task the piece leaves unsettled (a task still running when the
logs end is described by its own lines). Everything else is counted, not kept.
"""

from __future__ import annotations

import polars as pl

from analyzer.analyses import tasks
from analyzer.diagnosis import RECOVERY_KINDS
from analyzer.pipeline.partial import (
    ACTIVITY,
    FOR_TASK,
    HOSTS,
    MARKS,
    NAMES,
    NODE_KEY,
    RECORDS,
    Partial,
    drop_settled,
    merge_activity,
    merge_hosts,
    merge_marks,
    settled,
)
from analyzer.schema import conform
from analyzer.sources.celery_log import BANNER_RE
from analyzer.sources.exceptions import may_err
from analyzer.sources.lifecycle_messages import READY_RE

# Records the analyses after the rules read, whatever the rules: node names, pool exits (lost tasks),
# broker connections (advice, the reconnects figure, clock offsets: both sides of each connection),
# faulthandler dumps inside a log, lock and deadlock lines (waits), a task's bookkeeping failing after
# its body (tasks), and every record that may carry an error (the exception table classifies them;
# what no rule claims is `error.unclassified`).
STRUCTURAL_KINDS = ("ready", "banner", "process_exited", "connected")
STRUCTURAL_TEXT = ("Connected to", "Cannot connect to", "transport:", "Connection to broker lost",
                   "Thread 0x", "Current thread 0x", "Resource deadlock avoided", "waits for ",
                   "Exception raised outside body: ", "authenticated and granted access to vhost")



def structural() -> pl.Expr:
    return (pl.col("kind").is_in(STRUCTURAL_KINDS).fill_null(False)
            | pl.col("text").str.contains_any(list(STRUCTURAL_TEXT)).fill_null(False)
            | may_err())


def map_records(records: pl.DataFrame, keep: pl.Expr | None) -> Partial:
    """The partial of some records (`partial.RECORDS`; `keep` None keeps them all)."""
    records = conform(records, RECORDS).select(list(RECORDS))
    own = records.with_columns(pl.col("_hostname").alias("host"))  # the node the record itself names
    task_part = tasks.partial(own)
    if keep is None:
        kept = records.with_columns(pl.lit(False).alias(FOR_TASK))
    else:
        wanted = keep | structural()
        kept = records.with_columns((~wanted).alias(FOR_TASK)).filter(
            wanted | (pl.col("task_id").is_not_null() & ~pl.col("task_id").is_in(settled(task_part).implode())))
    return Partial(records=kept.sort("source", "line", "end_line", maintain_order=True), tasks=task_part,
                   hosts=_hosts(records), activity=_activity(records), names=_names(records), marks=_marks(records))


def needed(merged: Partial) -> pl.DataFrame:
    """The merged records the stages after it read: a task's own lines only while the whole says it
    never settled (a piece keeps them while it does not know)."""
    return drop_settled(merged.records, merged.tasks).drop(FOR_TASK)


def _hosts(records: pl.DataFrame) -> pl.DataFrame:
    level = pl.col("level")
    counts = [(level == name).cast(pl.Int64).fill_null(0).alias(alias)
              for name, alias in (("WARNING", "warnings"), ("ERROR", "errors"), ("CRITICAL", "criticals"))]
    return merge_hosts(conform(records.select(*NODE_KEY, pl.col("ts").alias("first_ts"), pl.col("ts").alias("last_ts"),
                                              pl.lit(1, pl.Int64).alias("records"), *counts), HOSTS))


def _activity(records: pl.DataFrame) -> pl.DataFrame:
    counted = records.group_by(*NODE_KEY, "kind", "level", pl.col("ts").dt.truncate("1s").alias("second")).agg(
        pl.len().cast(pl.Int64).alias("records"))
    return merge_activity(conform(counted, ACTIVITY))


def _names(records: pl.DataFrame) -> pl.DataFrame:
    kind, message = pl.col("kind"), pl.col("message")
    named = records.filter(kind.is_in(["ready", "banner"])).select(
        "source", "stream", "line", (kind == "banner").alias("banner"),
        pl.when(kind == "ready").then(message.str.extract(READY_RE, 1))
        .otherwise(message.str.extract(BANNER_RE, 1)).alias("name"))
    return conform(named.drop_nulls("name"), NAMES).sort("source", "line")


def _marks(records: pl.DataFrame) -> pl.DataFrame:
    marks = records.filter(pl.col("kind").is_in(list(RECOVERY_KINDS)) & pl.col("ts").is_not_null()).select(
        *NODE_KEY, "ts", "line")
    return merge_marks(conform(marks, MARKS))
