"""The kernel's OOM kill joined with the pool child billiard saw die: `oom_kills` (a row per line of it).

The kernel names the pid it killed (`Killed process 8572 (celery)`, `sources.kernel_log`); billiard names
the pid of the pool child that died (`Process 'ForkPoolWorker-1' pid:8572 exited with 'signal 9
(SIGKILL)'`, billiard/pool.py `_join_exited_workers`). The same pid on both sides proves the child was
killed for memory, which `worker.lost` alone only suspects. A pid is reused only after the kernel has
cycled through pid_max, so within one incident the match is the child; when both lines carry a wall
clock, the kernel's must not come after billiard's (it saw the exit after the kill).

The task that was running in that child is the last one its process logged for before the exit and
never finished (the `tasks` frame's LOST / STARTED ones).
"""

from __future__ import annotations

import polars as pl

from analyzer.schema import OOM_KILLS, conform, empty
from analyzer.sources.kernel_log import folded_rows

# billiard/pool.py `_join_exited_workers`: 'Process %r pid:%r exited with %r', status by common.human_status
EXITED_RE = r"Process '([^']+)' pid:(\d+) exited with 'signal 9 \(SIGKILL\)'"
# a kernel kill may precede billiard's reaping by a moment; a later one cannot be this child's death
SLACK_S = 2.0


def _exits(events: pl.DataFrame) -> pl.DataFrame:
    """billiard's SIGKILL exits: host, process, pid, ts and the line."""
    caps = pl.col("message").str.extract_groups(EXITED_RE)
    return events.filter(pl.col("message").str.contains(EXITED_RE)).select(
        "source", "line", "ts", "host", "text",
        caps.struct.field("1").alias("process"),
        caps.struct.field("2").cast(pl.Int64).alias("pid"))


def _running(events: pl.DataFrame, tasks: pl.DataFrame, exits: pl.DataFrame) -> pl.DataFrame:
    """Per exit (`source`, `line`), the unfinished task its process last logged for before it."""
    open_tasks = tasks.filter(pl.col("state").is_in(["LOST", "STARTED"])).select("task_id", "task_name")
    logged = events.filter(pl.col("task_id").is_not_null() & pl.col("process").is_not_null()).select(
        "host", "process", pl.col("ts").alias("_at"), "task_id").join(open_tasks, on="task_id", how="inner")
    found = exits.select("source", "line", "host", "process", "ts").join(logged, on=["host", "process"], how="inner")
    return found.filter(pl.col("_at") <= pl.col("ts")).sort("_at").group_by(
        "source", "line", maintain_order=True).last().select("source", "line", "task_id", "task_name")


def build(kernel: pl.DataFrame, events: pl.DataFrame, tasks: pl.DataFrame) -> pl.DataFrame:
    """`oom_kills`: for each kernel OOM kill whose pid billiard saw die of SIGKILL, its line and
    billiard's, with the child, the task it ran and what the kernel said of its memory."""
    if events.is_empty():
        return empty(OOM_KILLS)
    kernel = pl.concat([kernel, folded_rows(events)], how="diagonal_relaxed")
    kills = kernel.filter(pl.col("event") == "oom_kill").select(
        pl.col("source").alias("k_source"), pl.col("line").alias("k_line"), pl.col("ts").alias("k_ts"),
        pl.col("text").alias("k_text"), "pid", "comm", "anon_rss_kb", "constraint", "memcg")
    exits = _exits(events)
    if kills.is_empty() or exits.is_empty():
        return empty(OOM_KILLS)
    pairs = exits.join(kills, on="pid", how="inner").filter(
        pl.col("k_ts").is_null() | pl.col("ts").is_null()
        | (pl.col("k_ts") <= pl.col("ts") + pl.duration(seconds=SLACK_S)))
    if pairs.is_empty():
        return empty(OOM_KILLS)
    pairs = pairs.join(_running(events, tasks, exits), on=["source", "line"], how="left")
    rss = pl.when(pl.col("anon_rss_kb").is_not_null()).then(
        pl.format(", anon-rss {} MiB", (pl.col("anon_rss_kb") / 1024).round(0).cast(pl.Int64))).otherwise(pl.lit(""))
    where = pl.when(pl.col("constraint") == "CONSTRAINT_MEMCG").then(
        pl.format(" under the memory cgroup {}", pl.col("memcg").fill_null("limit"))).when(
        pl.col("constraint") == "CONSTRAINT_NONE").then(pl.lit(" (the host ran out)")).otherwise(pl.lit(""))
    task = pl.when(pl.col("task_id").is_not_null()).then(
        pl.format(" while it ran {}[{}]", pl.col("task_name").fill_null("?"), pl.col("task_id"))).otherwise(
        pl.lit(" (no task of it in the logs)"))
    pairs = pairs.with_columns(
        pl.format("{}:{}", "source", "line").alias("kill"),
        pl.concat_str(pl.format("the kernel's OOM killer killed {} (pid {}, {})", "process", "pid", "comm"), where,
                      rss, task).alias("summary"))
    shared = ["kill", "host", "pid", "process", "comm", "anon_rss_kb", "constraint", "memcg", "task_id", "task_name",
              "summary"]
    worker = pairs.select("source", "line", "ts", "text", *shared, pl.lit("worker").alias("side"))
    kernel_side = pairs.select(pl.col("k_source").alias("source"), pl.col("k_line").alias("line"),
                               pl.coalesce("k_ts", "ts").alias("ts"), pl.col("k_text").alias("text"), *shared,
                               pl.lit("kernel").alias("side"))
    out = pl.concat([kernel_side, worker.unique(["source", "line"], keep="first", maintain_order=True)],
                    how="diagonal_relaxed")
    return conform(out, OOM_KILLS).select(OOM_KILLS.keys()).sort("kill", "side", "source", "line")
