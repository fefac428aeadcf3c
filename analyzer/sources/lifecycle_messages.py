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
EXC_IN_MESSAGE_RE = (r"(?:raised unexpected|raised expected|INTERNAL ERROR|raised error|Unrecoverable error): ?"
                     r"([A-Za-z_][\w.]*)\(")
# `w1@sample ready.`
READY_RE = r"^(\S+@\S+) ready\.$"


def _task_family(rows: pl.DataFrame) -> pl.DataFrame:
    """`Task name[id] verb…` rows: name and id by position, kind by the verb's prefix."""
    msg = pl.col("message")
    rows = rows.select("_i", "message", "level", msg.str.find("[", literal=True).alias("_b"),
                       msg.str.find("] ", literal=True).alias("_c"))
    rows = rows.filter(pl.col("_b").is_not_null() & pl.col("_c").is_not_null())
    rows = rows.with_columns(msg.str.slice(pl.col("_c") + 2).alias("_after"))
    after = pl.col("_after")
    verb_kind: pl.Expr = pl.when(pl.col("level") == "WARNING").then(pl.lit("rejected"))
    for prefix, kind in reversed(_TASK_VERBS):
        verb_kind = pl.when(after.str.starts_with(prefix)).then(pl.lit(kind)).otherwise(verb_kind)
    runtime = after.str.slice(13, after.str.find("s:", literal=True) - 13).cast(pl.Float64, strict=False)
    out = rows.select(
        "_i", "_after",
        verb_kind.alias("_k"),
        msg.str.slice(5, pl.col("_b") - 5).alias("_n"),
        msg.str.slice(pl.col("_b") + 1, pl.col("_c") - pl.col("_b") - 1).alias("_t"),
        pl.when(after.str.starts_with("succeeded in ")).then(runtime).alias("_r"),
    )
    # the exception class of a failure, from `raised unexpected: ZeroDivisionError(...)`: failures only
    failed = out.filter(pl.col("_k") == "failed").select("_i", pl.col("_after").str.extract(EXC_IN_MESSAGE_RE, 1)
                                                          .alias("_e"))
    return out.drop("_after").join(failed, on="_i", how="left", maintain_order="left")


def _task_logger_family(rows: pl.DataFrame) -> pl.DataFrame:
    """`proj.add[1c3f…]: adding 2 + 3` from a pool child: name and id by position."""
    msg = pl.col("message")
    rows = rows.select("_i", "message", msg.str.find("[", literal=True).alias("_b"),
                       msg.str.find("]: ", literal=True).alias("_c"))
    rows = rows.filter((pl.col("_c") - pl.col("_b")) == 37)  # a 36-character id between the brackets
    return rows.select("_i", msg.str.slice(0, pl.col("_b")).alias("_n"),
                       msg.str.slice(pl.col("_b") + 1, 36).alias("_t"))


def _rare_family(rows: pl.DataFrame) -> pl.DataFrame:
    """The rarer lifecycle forms; each regex runs only on rows its prefix selected."""
    msg = pl.col("message")
    time_limit = msg.str.starts_with("Hard time limit") | msg.str.starts_with("Soft time limit")
    colon_forms = msg.str.starts_with("Received task: ") | msg.str.starts_with("Discarding revoked task: ")
    unregistered = msg.str.starts_with("Received unregistered task of type")
    kind = (
        pl.when(msg.str.starts_with("Hard time limit")).then(pl.lit("hard_time_limit"))
        .when(msg.str.starts_with("Soft time limit")).then(pl.lit("soft_time_limit"))
        .when(msg.str.starts_with("Received task: ")).then(pl.lit("received"))
        .when(msg.str.starts_with("Discarding revoked task: ")).then(pl.lit("revoked"))
        .when(unregistered).then(pl.lit("unregistered"))
        .when(msg.str.starts_with("Process '") & msg.str.contains(" exited with ", literal=True))
        .then(pl.lit("process_exited"))
        .when(msg.str.starts_with("Task handler raised error: WorkerLostError")).then(pl.lit("worker_lost"))
        .when(msg.str.ends_with(" ready.") & msg.str.contains(READY_RE)).then(pl.lit("ready"))
    )
    return rows.select(
        "_i",
        kind.alias("_k"),
        pl.when(time_limit).then(msg.str.extract(TIME_LIMIT_RE, 1))
        .when(colon_forms).then(msg.str.extract(NAME_ID_AFTER_COLON_RE, 1))
        .when(unregistered).then(msg.str.extract(UNREGISTERED_RE, 1)).alias("_n"),
        pl.when(time_limit).then(msg.str.extract(TIME_LIMIT_RE, 2))
        .when(colon_forms).then(msg.str.extract(NAME_ID_AFTER_COLON_RE, 2)).alias("_t"),
    )


_RARE_PREFIXES = ("Hard time limit", "Soft time limit", "Received task: ", "Discarding revoked task: ",
                  "Received unregistered task", "Process '", "Task handler raised error: WorkerLostError")
_CHEAP_KINDS = (("Connected to ", "connected"), ("worker: Warm shutdown", "shutdown"),
                ("worker: Cold shutdown", "shutdown"))


def classify(ev: pl.DataFrame) -> pl.DataFrame:
    """Add `kind`, `task_name`, `task_id`, `runtime_s` and `exc_type` (from the message) to records.

    `ev` needs `message`, `level` and `process`; values already set (by a parser that knows
    better, e.g. a traceback's exception type or a JSON log's `data`) are kept. Rows are split
    into families by literal prefix tests; each family's extraction runs on its rows only and
    the results are joined back by row.
    """
    msg = pl.col("message")
    ev = ev.with_row_index("_i")
    base = ev.select("_i", "message", "level", "process")
    is_task = msg.str.starts_with("Task ") & ~msg.str.starts_with("Task handler raised error")
    rare = pl.lit(False)
    for prefix in _RARE_PREFIXES:
        rare = rare | msg.str.starts_with(prefix)
    rare = rare | msg.str.ends_with(" ready.")
    child = pl.col("process").is_not_null() & (pl.col("process") != "MainProcess")
    # every test here is a prefix or an equality; substring scans run on the small subsets below
    flags = base.with_columns(is_task.alias("_task"), (rare & ~is_task).alias("_rare"),
                              (child & ~is_task).alias("_logger"),
                              (~is_task & pl.col("level").is_in(["WARNING", "ERROR", "CRITICAL"])).alias("_exc"))
    parts = [
        _task_family(flags.filter(pl.col("_task"))),
        _task_logger_family(flags.filter(pl.col("_logger"))),
        _rare_family(flags.filter(pl.col("_rare"))),
    ]
    found = pl.concat(parts, how="diagonal_relaxed")
    # `Task handler raised error: WorkerLostError(…)`, `Unrecoverable error: AccessRefused(…)`
    exc = (flags.filter(pl.col("_exc"))
           .filter(msg.str.contains(" raised", literal=True) | msg.str.starts_with("Unrecoverable error")
                   | msg.str.contains("INTERNAL ERROR", literal=True))
           .select("_i", msg.str.extract(EXC_IN_MESSAGE_RE, 1).alias("_e2")))
    cheap: pl.Expr = pl.lit(None, dtype=pl.String)
    for prefix, kind in reversed(_CHEAP_KINDS):
        cheap = pl.when(msg.str.starts_with(prefix)).then(pl.lit(kind)).otherwise(cheap)
    # join on a narrow frame and stack it on: joining the wide frame would copy every string column
    narrow = (ev.select("_i", cheap.alias("_c"))
              .join(found, on="_i", how="left", maintain_order="left")
              .join(exc, on="_i", how="left", maintain_order="left"))
    if "_e" not in narrow.columns:
        narrow = narrow.with_columns(pl.lit(None, dtype=pl.String).alias("_e"))
    narrow = narrow.with_columns(pl.coalesce("_e", "_e2").alias("_e")).drop("_e2")
    out = ev.hstack(narrow.drop("_i"))

    def keep(col: str, *new: pl.Expr) -> pl.Expr:
        existing = [pl.col(col)] if col in ev.columns else []
        return pl.coalesce(*existing, *new).alias(col)

    for col in ("_k", "_n", "_t", "_r", "_e"):  # a family with no rows contributes no column
        if col not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.Float64 if col == "_r" else pl.String).alias(col))
    # task logger ids of `???` (no current task) are not ids
    return out.with_columns(
        keep("kind", pl.col("_k"), pl.col("_c")),
        keep("task_name", pl.when(pl.col("_n") != "???").then(pl.col("_n"))),
        keep("task_id", pl.when(pl.col("_t") != "???").then(pl.col("_t"))),
        keep("runtime_s", pl.col("_r").cast(pl.Float64)),
        keep("exc_type", pl.col("_e")),
    ).drop("_i", "_k", "_n", "_t", "_r", "_e", "_c")
