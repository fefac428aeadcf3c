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
# `0.0013257759999305563s: 5`: what follows `succeeded in `
RUNTIME_RE = r"^([0-9.eE+-]+)s"
# `… raised unexpected: ZeroDivisionError('division by zero')` / `Task handler raised error: WorkerLostError(`
EXC_IN_MESSAGE_RE = (r"(?:raised unexpected|raised expected|INTERNAL ERROR|raised error|Unrecoverable error): ?"
                     r"([A-Za-z_][\w.]*)\(")
# `w1@sample ready.`
READY_RE = r"^(\S+@\S+) ready\.$"


def _task_family(rows: pl.DataFrame) -> list[pl.DataFrame]:
    """`Task name[id] verb…` rows: name and id by position, kind by the verb's first 12 characters.

    Twelve characters fit in a string view without a buffer, so the verb costs no copy of the
    rest of the message; runtime and exception class are read on their few rows only.
    """
    msg = pl.col("message")
    rows = rows.select("_i", "message", "level", msg.str.find("[", literal=True).alias("_b"),
                       msg.str.find("] ", literal=True).alias("_c"))
    rows = rows.filter(pl.col("_b").is_not_null() & pl.col("_c").is_not_null())
    rows = rows.with_columns(msg.str.slice(pl.col("_c") + 2, 12).alias("_v"))  # eager selects share no subexpression
    verb = pl.col("_v")
    verb_kind: pl.Expr = pl.when(pl.col("level") == "WARNING").then(pl.lit("rejected"))
    for prefix, kind in reversed(_TASK_VERBS):
        verb_kind = pl.when(verb.str.starts_with(prefix[:12])).then(pl.lit(kind)).otherwise(verb_kind)
    out = rows.select(
        "_i", "message", "_c",
        verb_kind.alias("_k"),
        msg.str.slice(5, pl.col("_b") - 5).alias("_n"),
        msg.str.slice(pl.col("_b") + 1, pl.col("_c") - pl.col("_b") - 1).alias("_t"),
    )
    after = msg.str.slice(pl.col("_c") + 2)
    # `succeeded in 0.0013257759999305563s: 5`: the number starts 13 characters after the verb
    runtime = out.filter(pl.col("_k") == "succeeded").select(
        "_i", msg.str.slice(pl.col("_c") + 15, 32).str.extract(RUNTIME_RE, 1)
        .cast(pl.Float64, strict=False).alias("_r"))
    # the exception class of a failure, from `raised unexpected: ZeroDivisionError(...)`: failures only
    failed = out.filter(pl.col("_k") == "failed").select("_i", after.str.extract(EXC_IN_MESSAGE_RE, 1).alias("_e"))
    return [out.drop("message", "_c"), runtime, failed]


def _task_logger_family(rows: pl.DataFrame) -> pl.DataFrame:
    """`proj.add[1c3f…]: adding 2 + 3` from a pool child: name and id by position.

    `???[???]: …` (a line logged outside any task) names no task.
    """
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


def _scatter(n: int, families: list[pl.DataFrame], col: str, dtype: pl.DataType) -> pl.Series:
    """A column of `n` nulls with each family's non-null `col` values put at its rows `_i`.

    A scatter shares the strings it places; a join or a when/then over string columns copies
    every one of them. The families select disjoint rows, so no row is set twice.
    """
    parts = [f.select("_i", pl.col(col).cast(dtype)) for f in families if col in f.columns]
    values = pl.concat(parts, rechunk=False).drop_nulls(col) if parts else None
    base = pl.repeat(None, n, dtype=dtype, eager=True).alias(col)
    if values is None or values.is_empty():
        return base
    return base.scatter(values.get_column("_i"), values.get_column(col))


def classify(ev: pl.DataFrame) -> pl.DataFrame:
    """Add `kind`, `task_name`, `task_id`, `runtime_s` and `exc_type` (from the message) to records.

    `ev` needs `message`, `level` and `process`; values already set (by a parser that knows
    better, e.g. a traceback's exception type or a JSON log's `data`) are kept. Rows are split
    into families by literal prefix tests; each family's extraction runs on its rows only and
    its results are scattered back by row (a task line wins over a rare form, which wins over a
    task logger line).
    """
    msg = pl.col("message")
    n = ev.height
    is_task = msg.str.starts_with("Task ") & ~msg.str.starts_with("Task handler raised error")
    rare = pl.lit(False)
    for prefix in _RARE_PREFIXES:
        rare = rare | msg.str.starts_with(prefix)
    rare = rare | msg.str.ends_with(" ready.")
    child = pl.col("process").is_not_null() & (pl.col("process") != "MainProcess")
    cheap: pl.Expr = pl.lit(None, dtype=pl.String)
    for prefix, kind in reversed(_CHEAP_KINDS):
        cheap = pl.when(msg.str.starts_with(prefix)).then(pl.lit(kind)).otherwise(cheap)
    # every test here is a prefix or an equality; substring scans run on the small subsets below
    # lazy: the optimiser computes the shared prefix tests once (an eager select would not)
    flags = ev.lazy().select(pl.int_range(0, pl.len(), dtype=pl.UInt32).alias("_i"), "message", "level",
                      is_task.alias("_task"), (rare & ~is_task).alias("_rare"),
                      (child & ~is_task & ~rare).alias("_logger"),
                      (~is_task & pl.col("level").is_in(["WARNING", "ERROR", "CRITICAL"])).alias("_exc"),
                      pl.when(~is_task & ~rare).then(cheap).alias("_c")).collect()
    # `Task handler raised error: WorkerLostError(…)`, `Unrecoverable error: AccessRefused(…)`
    exc = (flags.filter(pl.col("_exc"))
           .filter(msg.str.contains(" raised", literal=True) | msg.str.starts_with("Unrecoverable error")
                   | msg.str.contains("INTERNAL ERROR", literal=True))
           .select("_i", msg.str.extract(EXC_IN_MESSAGE_RE, 1).alias("_e")))
    families = [
        flags.select("_i", pl.col("_c").alias("_k")),  # the cheap kinds
        _task_logger_family(flags.filter(pl.col("_logger"))),
        _rare_family(flags.filter(pl.col("_rare"))),
        *_task_family(flags.filter(pl.col("_task"))),
        exc,
    ]

    def keep(col: str, new: pl.Series) -> pl.Series:
        """The parser's own value where it set one; a column of nulls costs no coalesce (no copy)."""
        if col not in ev.columns or ev.get_column(col).null_count() == n:
            return new.alias(col)
        return ev.select(pl.coalesce(pl.col(col), pl.lit(new))).to_series().alias(col)

    return ev.with_columns(
        keep("kind", _scatter(n, families, "_k", pl.String())),
        keep("task_name", _scatter(n, families, "_n", pl.String())),
        keep("task_id", _scatter(n, families, "_t", pl.String())),
        keep("runtime_s", _scatter(n, families, "_r", pl.Float64())),
        keep("exc_type", _scatter(n, families, "_e", pl.String())),
    )
