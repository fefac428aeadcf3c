"""The `tasks` frame: one row per task id, folded from lifecycle events.

Final state is the state of the task's last lifecycle event that settles it; a task with
lines from a pool child (its task logger) but no end is STARTED, one only received is
RECEIVED. A redelivered task (received twice) keeps one row; its retries are counted.
"""

from __future__ import annotations

import polars as pl

from analyzer.schema import TASKS, conform, empty

# lifecycle kind → the task state it leaves behind
STATE_OF_KIND: dict[str, str] = {
    "succeeded": "SUCCESS",
    "failed": "FAILURE",
    "hard_time_limit": "FAILURE",
    "retried": "RETRY",
    "revoked": "REVOKED",
    "rejected": "REJECTED",
    "ignored": "IGNORED",
}
FINISHING = ("succeeded", "failed", "hard_time_limit", "revoked", "rejected", "ignored")


def build(events: pl.DataFrame) -> pl.DataFrame:
    ev = events.filter(pl.col("task_id").is_not_null())
    if ev.is_empty():
        return empty(TASKS)
    ev = ev.sort("ts", "source", "line", nulls_last=True)
    kind = pl.col("kind")
    in_child = pl.col("process").is_not_null() & (pl.col("process") != "MainProcess")
    settling = kind.is_in(list(STATE_OF_KIND))
    started_evidence = in_child | kind.is_in(["soft_time_limit", "hard_time_limit", "started", "succeeded",
                                              "failed", "retried"])
    out = ev.group_by("task_id").agg(
        pl.col("task_name").drop_nulls().first(),
        pl.col("host").drop_nulls().first(),
        pl.col("ts").filter(kind == "received").min().alias("received_at"),
        pl.col("ts").filter(started_evidence).min().alias("_first_child"),
        pl.col("ts").filter(kind.is_in(list(FINISHING))).max().alias("finished_at"),
        kind.filter(settling).last().alias("_last_settling"),
        pl.col("runtime_s").drop_nulls().last().alias("runtime_s"),
        (kind == "retried").sum().cast(pl.Int64).alias("retries"),
        pl.col("exc_type").filter(kind.is_in(["failed", "hard_time_limit", "retried", "soft_time_limit"]))
        .drop_nulls().last().alias("exc_type"),
        started_evidence.any().alias("_started"),
        pl.col("source").first(),
        pl.col("line").first(),
    )
    state = (
        pl.when(pl.col("_last_settling").is_not_null())
        .then(pl.col("_last_settling").replace_strict(STATE_OF_KIND, default=None))
        .when(pl.col("_started")).then(pl.lit("STARTED"))
        .when(pl.col("received_at").is_not_null()).then(pl.lit("RECEIVED"))
        .otherwise(pl.lit("UNKNOWN"))
    )
    # the child's own timing is the best start estimate: finish minus runtime, else its first line
    started = pl.coalesce(
        pl.when(pl.col("runtime_s").is_not_null() & pl.col("finished_at").is_not_null()).then(
            pl.col("finished_at") - pl.duration(microseconds=(pl.col("runtime_s") * 1e6).cast(pl.Int64))),
        pl.col("_first_child"),
    )
    out = out.with_columns(
        state.alias("state"),
        started.alias("started_at"),
        pl.when(pl.col("_last_settling") == "hard_time_limit").then(pl.lit("TimeLimitExceeded"))
        .otherwise(pl.col("exc_type")).alias("exc_type"),
    ).with_columns(
        pl.coalesce(
            pl.col("runtime_s"),
            (pl.col("finished_at") - pl.col("started_at")).dt.total_milliseconds() / 1000.0,
        ).alias("runtime_s"),
    )
    out = out.sort(["received_at", "started_at", "task_id"], nulls_last=True)
    return conform(out, TASKS).select(TASKS.keys())
