"""Recognise Celery's lifecycle messages in bulk: kind, task name, task id, runtime.

Message texts (FORMATS.md A.7; CEL = celery/celery):
- `Task proj.add[1c3f…] received` (5.1+, CEL celery/app/trace.py LOG_RECEIVED)
- `Received task: proj.add[1c3f…]` (3.1 – 5.0, celery/worker/strategy.py)
- `Task proj.add[1c3f…] succeeded in 0.0013s: 5` (LOG_SUCCESS, all versions)
- `Task proj.div[…] raised unexpected: ZeroDivisionError(...)` / `raised expected:` / `INTERNAL ERROR:`
- `Task proj.flaky[…] retry: Retry in 1s: ConnectionError(...)` (LOG_RETRY)
- `Task proj.x[…] ignored` (Ignore); `Task proj.x[…] <Reject repr>` at WARNING (Reject)
- `Discarding revoked task: proj.x[…]` (celery/worker/request.py, also expired tasks)
- `Soft time limit (1s) exceeded for proj.slow[…]` / `Hard time limit (2s) exceeded for proj.slow[…]`
- `Process 'ForkPoolWorker-2' pid:24839 exited with 'signal 9 (SIGKILL)'` (billiard/pool.py)
- `Task handler raised error: WorkerLostError('Worker exited prematurely: signal 9 (SIGKILL) Job: 5.')`
- `Received unregistered task of type 'proj.not_registered'.` (celery/worker/consumer/consumer.py)
- task logger lines in a pool child: `proj.add[1c3f…]: adding 2 + 3` (worker_task_log_format)

Everything is literal prefix tests and position arithmetic (`str.find` + `str.slice`); the only
regexes run on the few rows a prefix test leaves.
"""

from __future__ import annotations

import polars as pl

KINDS: tuple[str, ...] = (
    "received", "started", "succeeded", "failed", "retried", "revoked", "rejected", "ignored",
    "soft_time_limit", "hard_time_limit", "worker_lost", "process_exited", "unregistered",
    "connected", "ready", "banner", "shutdown",
)

_TASK_VERBS: tuple[tuple[str, str], ...] = (
    ("received", "received"),
    ("succeeded in ", "succeeded"),
    ("raised unexpected:", "failed"),
    ("raised expected:", "failed"),
    ("INTERNAL ERROR:", "failed"),
    ("retry:", "retried"),
    ("ignored", "ignored"),
)

# `Hard time limit (2s) exceeded for proj.slow[6a0e…]`
TIME_LIMIT_RE = r"^(?:Hard|Soft) time limit \([^)]*\) exceeded for ([^\[\s]+)\[([^\]]+)\]"
# `Received task: proj.add[1c3f…]` / `Discarding revoked task: proj.add[1c3f…]`
NAME_ID_AFTER_COLON_RE = r"^[^:]+: ([^\[\s]+)\[([^\]]+)\]"
# `Received unregistered task of type 'proj.not_registered'.`
UNREGISTERED_RE = r"^Received unregistered task of type '([^']*)'"
# `proj.add[1c3ff5a6-…]: adding 2 + 3` (task logger format in a pool child)
TASK_LOGGER_RE = r"^([\w.:-]+)\[([0-9a-fA-F]{8}-[0-9a-fA-F-]{27})\]: "
# `succeeded in 0.0013257759999305563s: 5`
RUNTIME_RE = r"^succeeded in ([0-9.eE+-]+)s"
# `… raised unexpected: ZeroDivisionError('division by zero')` / `Task handler raised error: WorkerLostError(`
EXC_IN_MESSAGE_RE = r"(?:raised unexpected|raised expected|INTERNAL ERROR|raised error|Unrecoverable error): ?([A-Za-z_][\w.]*)\("
# `w1@sample ready.`
READY_RE = r"^(\S+@\S+) ready\.$"


def classify(ev: pl.DataFrame) -> pl.DataFrame:
    """Add `kind`, `task_name`, `task_id`, `runtime_s` (and `exc_type` from the message) to records.

    `ev` needs `message`, `level` and `process` columns; existing non-null `kind`/`task_*` values
    (set by a parser that knows better, e.g. JSON logs) are kept.
    """
    msg = pl.col("message")
    is_task = msg.str.starts_with("Task ")
    bracket = msg.str.find("[", literal=True)
    close = msg.str.find("] ", literal=True)
    close_end = msg.str.find("]", literal=True)
    after = msg.str.slice(close + 2)
    verb_kind: pl.Expr = pl.lit(None, dtype=pl.String)
    for prefix, kind in reversed(_TASK_VERBS):
        verb_kind = pl.when(after.str.starts_with(prefix)).then(pl.lit(kind)).otherwise(verb_kind)
    # Reject's repr follows the id at WARNING; anything else after the id stays unclassified.
    task_kind = pl.coalesce(
        verb_kind,
        pl.when(pl.col("level") == "WARNING").then(pl.lit("rejected")),
    )
    task_name = msg.str.slice(5, bracket - 5)
    task_id = msg.str.slice(bracket + 1, close_end - bracket - 1)

    out = ev.with_columns(
        pl.when(is_task & bracket.is_not_null() & close.is_not_null()).then(task_kind).alias("_k"),
        pl.when(is_task & bracket.is_not_null() & close.is_not_null()).then(task_name).alias("_n"),
        pl.when(is_task & bracket.is_not_null() & close.is_not_null()).then(task_id).alias("_i"),
        pl.when(is_task & after.str.starts_with("succeeded in "))
        .then(after.str.extract(RUNTIME_RE, 1).cast(pl.Float64, strict=False))
        .alias("_r"),
    )
    # The rarer forms: small prefilters, then a narrow regex.
    time_limit = msg.str.starts_with("Hard time limit") | msg.str.starts_with("Soft time limit")
    colon_forms = msg.str.starts_with("Received task: ") | msg.str.starts_with("Discarding revoked task: ")
    unregistered = msg.str.starts_with("Received unregistered task of type")
    exited = msg.str.starts_with("Process '") & msg.str.contains(" exited with ", literal=True)
    worker_lost = msg.str.starts_with("Task handler raised error: WorkerLostError")
    child = pl.col("process").is_not_null() & (pl.col("process") != "MainProcess")
    task_logger = child & ~is_task & msg.str.contains("]: ", literal=True)
    out = out.with_columns(
        pl.when(time_limit).then(msg.str.extract(TIME_LIMIT_RE, 1))
        .when(colon_forms).then(msg.str.extract(NAME_ID_AFTER_COLON_RE, 1))
        .when(unregistered).then(msg.str.extract(UNREGISTERED_RE, 1))
        .when(task_logger).then(msg.str.extract(TASK_LOGGER_RE, 1))
        .alias("_n2"),
        pl.when(time_limit).then(msg.str.extract(TIME_LIMIT_RE, 2))
        .when(colon_forms).then(msg.str.extract(NAME_ID_AFTER_COLON_RE, 2))
        .when(task_logger).then(msg.str.extract(TASK_LOGGER_RE, 2))
        .alias("_i2"),
        pl.when(msg.str.starts_with("Hard time limit")).then(pl.lit("hard_time_limit"))
        .when(msg.str.starts_with("Soft time limit")).then(pl.lit("soft_time_limit"))
        .when(msg.str.starts_with("Received task: ")).then(pl.lit("received"))
        .when(msg.str.starts_with("Discarding revoked task: ")).then(pl.lit("revoked"))
        .when(unregistered).then(pl.lit("unregistered"))
        .when(exited).then(pl.lit("process_exited"))
        .when(worker_lost).then(pl.lit("worker_lost"))
        .when(msg.str.starts_with("Connected to ")).then(pl.lit("connected"))
        .when(msg.str.ends_with(" ready.") & msg.str.contains(READY_RE)).then(pl.lit("ready"))
        .when(msg.str.starts_with("worker: Warm shutdown") | msg.str.starts_with("worker: Cold shutdown"))
        .then(pl.lit("shutdown"))
        .alias("_k2"),
        pl.when(msg.str.contains(" raised", literal=True) | msg.str.starts_with("Unrecoverable error")
                | msg.str.contains("INTERNAL ERROR", literal=True))
        .then(msg.str.extract(EXC_IN_MESSAGE_RE, 1)).alias("_e"),
    )
    # task logger ids of `???` (no current task) are not ids
    out = out.with_columns(pl.when(pl.col("_i2") == "???").then(None).otherwise(pl.col("_i2")).alias("_i2"))
    keep = [c for c in ("kind", "task_name", "task_id", "runtime_s", "exc_type") if c in out.columns]
    return out.with_columns(
        pl.coalesce(*([pl.col("kind")] if "kind" in keep else []), pl.col("_k"), pl.col("_k2")).alias("kind"),
        pl.coalesce(*([pl.col("task_name")] if "task_name" in keep else []), pl.col("_n"), pl.col("_n2"))
        .alias("task_name"),
        pl.coalesce(*([pl.col("task_id")] if "task_id" in keep else []), pl.col("_i"), pl.col("_i2"))
        .alias("task_id"),
        pl.coalesce(*([pl.col("runtime_s")] if "runtime_s" in keep else []), pl.col("_r")).alias("runtime_s"),
        pl.coalesce(*([pl.col("exc_type")] if "exc_type" in keep else []), pl.col("_e")).alias("exc_type"),
    ).drop("_k", "_n", "_i", "_r", "_n2", "_i2", "_k2", "_e")
