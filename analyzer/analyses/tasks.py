"""The `tasks` frame: one row per task id, folded from lifecycle events.

Final state is the state of the task's last lifecycle event that settles it; a task with
lines from a pool child (its task logger) but no end is STARTED, one only received is
RECEIVED. A redelivered task (received twice) keeps one row; its retries are counted.
"""

from __future__ import annotations

import polars as pl

from analyzer.schema import EVENTS, TASKS, conform, empty

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


# the columns the task partial reads; the wide text columns are never sorted or grouped
_USED = ("task_id", "task_name", "host", "ts", "kind", "process", "runtime_s", "exc_type", "source", "line", "stream")
_NULLS_LAST = 2**63 - 1
ORDER = ("ts", "source", "line")  # `analyzer.order.TIMELINE`: the order "first" and "last" follow

# A task partial (DESIGN "Stream, then reduce"): one row per task id of a piece of the logs, every
# aggregate associative so partials of any cut merge to the partial of the whole. Order-sensitive
# aggregates ("first task_name", "last settling kind") carry the order key of the row they came
# from in a `<name>@` struct (ts, source, line): merging keeps the value of the smallest or largest
# key, exactly what a sort of the whole would give.
FIRST = ("task_name", "host")  # first non-null in timeline order
# the first record's own columns, never null, so one order key (`_first@`) serves them all; `_stream`
# ("" for none) with `source` names its node key, for pieces whose node is settled after the merge
# (`analyzer.pipeline.settle`)
FIRST_RECORD = ("source", "line", "_stream")
LAST = ("_last_settling", "runtime_s", "exc_type", "_proc")  # last non-null in timeline order
MINS = ("received_at", "_first_child")
MAXES = ("finished_at", "_last")


def _row_values() -> list[pl.Expr]:
    """Each record as a one-row partial: the values its task's aggregates take from it (or null)."""
    kind = pl.col("kind")
    ts = pl.col("ts")
    in_child = pl.col("process").is_not_null() & (pl.col("process") != "MainProcess")
    started_evidence = in_child | kind.is_in(["soft_time_limit", "hard_time_limit", "started", "succeeded",
                                              "failed", "retried"])
    return [
        pl.col("task_name"), pl.col("host"), pl.col("source"), pl.col("line"),
        pl.col("stream").fill_null("").alias("_stream"),
        pl.when(kind.is_in(list(STATE_OF_KIND))).then(kind).alias("_last_settling"),
        pl.col("runtime_s"),
        pl.when(kind.is_in(["failed", "hard_time_limit", "retried", "soft_time_limit"])).then(pl.col("exc_type"))
        .alias("exc_type"),
        pl.when(in_child).then(pl.col("process")).alias("_proc"),
        pl.when(kind == "received").then(ts).alias("received_at"),
        pl.when(started_evidence).then(ts).alias("_first_child"),
        pl.when(kind.is_in(list(FINISHING))).then(ts).alias("finished_at"),
        pl.when(in_child).then(ts).alias("_last"),
        (kind == "retried").cast(pl.Int64).fill_null(0).alias("retries"),
        started_evidence.fill_null(False).alias("_started"),
    ]


def partial(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The task partial of some records (any piece of the logs, in any order).

    One timeline sort, then plain first/last(ignore_nulls) aggregations: a per-group `sort_by`
    for each aggregate (what `merge` does on the few rows partials have) is several times slower
    on a whole log's records.
    """
    lazy = events.lazy()
    if "stream" not in events.collect_schema():
        lazy = lazy.with_columns(pl.lit(None, dtype=pl.String).alias("stream"))
    ev = lazy.select(_USED).filter(pl.col("task_id").is_not_null())
    # eager from here: polars' default lazy engine runs this aggregation ~8x slower (PERF-NOTES)
    rows = (ev.sort(list(ORDER), nulls_last=True, maintain_order=True).collect(engine="in-memory")
            .select(pl.col("task_id"), *_row_values(), pl.struct(*ORDER).alias("_at")))

    def keyed(name: str, last: bool) -> list[pl.Expr]:
        key = pl.when(pl.col(name).is_not_null()).then(pl.col("_at"))
        if last:
            return [pl.col(name).last(ignore_nulls=True), key.last(ignore_nulls=True).alias(f"{name}@")]
        return [pl.col(name).first(ignore_nulls=True), key.first(ignore_nulls=True).alias(f"{name}@")]

    return rows.group_by("task_id").agg(
        *(e for n in FIRST for e in keyed(n, last=False)),
        *(pl.col(n).first() for n in FIRST_RECORD), pl.col("_at").first().alias("_first@"),
        *(e for n in LAST for e in keyed(n, last=True)),
        *(pl.col(n).min() for n in MINS),
        *(pl.col(n).max() for n in MAXES),
        pl.col("retries").sum(),
        pl.col("_started").any(),
    ).sort("task_id")


def merge(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """One task partial from several (associative and commutative: any grouping of any cut)."""
    if not parts:
        return partial(empty(EVENTS))
    both = pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]
    # most tasks live in one piece: their row is already the merge; only the others are folded (the
    # per-group sorts below cost far more per group than this split)
    split = both.with_columns(pl.len().over("task_id").alias("_n"))
    single = split.filter(pl.col("_n") == 1).drop("_n")
    several = split.filter(pl.col("_n") > 1).drop("_n")
    if several.is_empty():
        return single.sort("task_id")
    # a task's rows from different pieces, folded two at a time: its first row with its second, the
    # result with its third… (rows joined side by side and compared column-wise: no sort, no group)
    several = several.with_columns(pl.int_range(pl.len()).over("task_id").alias("_occ"))
    folded = several.filter(pl.col("_occ") == 0).drop("_occ")
    k = 1
    while (more := several.filter(pl.col("_occ") == k).drop("_occ")).height:
        both_ids = more.get_column("task_id").implode()
        folded = pl.concat([folded.filter(~pl.col("task_id").is_in(both_ids)),
                            _fold(folded.filter(pl.col("task_id").is_in(both_ids)), more)])
        k += 1
    return pl.concat([single, folded.select(single.columns)]).sort("task_id")


def _before(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """Whether order key `a` comes before `b` on the timeline (ts, then source, then line; a null
    time after every other), for non-null keys."""
    at, bt = a.struct.field("ts"), b.struct.field("ts")
    ts_lt = (at < bt).fill_null(at.is_not_null() & bt.is_null())
    src_a, src_b = a.struct.field("source"), b.struct.field("source")
    same_ts = at.eq_missing(bt)
    earlier = (src_a < src_b) | ((src_a == src_b) & (a.struct.field("line") < b.struct.field("line")))
    return ts_lt | (same_ts & earlier.fill_null(False))


def _fold(left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
    """Two partial rows of each task (same ids) as one: each FIRST value of the earlier key, each LAST
    value of the later one, bounds and counts combined."""
    j = left.join(right, on="task_id", how="inner", suffix="_r")
    first_left = ~_before(pl.col("_first@_r"), pl.col("_first@"))  # both keys are there: every row has them
    picks: list[pl.Expr] = [pl.when(first_left).then(pl.col(n)).otherwise(pl.col(f"{n}_r")).alias(n)
                            for n in (*FIRST_RECORD, "_first@")]
    for names, last in ((FIRST, False), (LAST, True)):
        for name in names:
            key, rkey = pl.col(f"{name}@"), pl.col(f"{name}@_r")
            # the left value stays unless the right one has a key and it is strictly earlier (first)
            # or strictly later (last) than the left's
            beaten = _before(key, rkey) if last else _before(rkey, key)
            take_left = key.is_not_null() & (rkey.is_null() | ~beaten)
            picks += [pl.when(take_left).then(pl.col(name)).otherwise(pl.col(f"{name}_r")).alias(name),
                      pl.when(take_left).then(key).otherwise(rkey).alias(f"{name}@")]
    return j.select(
        "task_id", *picks,
        *(pl.min_horizontal(n, f"{n}_r").alias(n) for n in MINS),
        *(pl.max_horizontal(n, f"{n}_r").alias(n) for n in MAXES),
        (pl.col("retries") + pl.col("retries_r")).alias("retries"),
        (pl.col("_started") | pl.col("_started_r")).alias("_started"),
    ).select(left.columns)


def build(events: pl.DataFrame) -> pl.DataFrame:
    return finish(partial(events), events)


def finish(merged: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """The `tasks` frame from the merged partial of all records and the records rules keep (the
    `outside body` warnings and `exited with` lines `_mark_outside_body`/`_mark_lost` read)."""
    return finish_marked(finish_rows(merged), events)


def finish_rows(merged: pl.DataFrame) -> pl.DataFrame:
    """The row-local part of `finish`: each task's state, start and runtime from its own partial row.

    A task its own records settle (`_last_settling`) is final here: the marks `finish_marked` adds
    read only unfinished tasks. So settled tasks can be finished a batch at a time, apart from the
    others (`analyzer.pipeline.spill`)."""
    out = merged.lazy().drop(*(f"{n}@" for n in FIRST + LAST), "_first@")
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
    return out.collect(engine="in-memory")


def finish_marked(tasks: pl.DataFrame, events: pl.DataFrame, unfinished: pl.DataFrame | None = None) -> pl.DataFrame:
    """`finish_rows`' rows with the marks that need every unfinished task and the kept records
    (outside-body failures, lost tasks), as the `tasks` frame in its order. `unfinished` (`host`,
    `len`): the STARTED and RECEIVED tasks of each host, when `tasks` holds the STARTED ones and
    only those RECEIVED ones that are alone on their host (the others no mark can change)."""
    if tasks.is_empty():
        return empty(TASKS)
    tasks = _mark_lost(_mark_outside_body(tasks, events), events, unfinished).drop("_proc", "_last")
    return ordered(tasks)


def ordered(tasks: pl.DataFrame) -> pl.DataFrame:
    """Rows of the `tasks` frame in its order (a total one: task ids are unique)."""
    if tasks.is_empty():
        return empty(TASKS)
    # received_at, started_at (nulls last), task_id: integer keys sort several times faster than
    # a multi-column sort of nullable datetimes
    order = tasks.select(pl.arg_sort_by(
        pl.col("received_at").to_physical().fill_null(_NULLS_LAST),
        pl.col("started_at").to_physical().fill_null(_NULLS_LAST),
        pl.col("task_id"),
    )).to_series()
    return conform(tasks[order], TASKS).select(TASKS.keys())


# `/…/celery/app/trace.py:809: RuntimeWarning: Exception raised outside body: …` (celery/app/trace.py
# report_internal_error): the task's own bookkeeping failed after its body, e.g. storing the result
OUTSIDE_BODY = "Exception raised outside body: "


def _mark_outside_body(tasks: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Unfinished tasks whose pool child then warned `Exception raised outside body` ended: FAILURE.

    The warning names no task, so the task is the one that child last logged for before it, on
    the same host (a prefork child runs one task at a time); its exception type is the warning's
    traceback's. Without this, a result-backend outage leaves every task it hit "STARTED".
    """
    # Python's warnings reach the log at WARNING: the level test spares the substring scan most rows
    warned = (events.lazy().select("host", "process", "ts", "exc_type", "level", "message")
              .filter(pl.col("level") == "WARNING")
              .filter(pl.col("message").str.contains(OUTSIDE_BODY, literal=True)
                      & pl.col("process").is_not_null() & (pl.col("process") != "MainProcess"))
              .select("host", pl.col("process").alias("_proc"), pl.col("ts").alias("_warn_ts"),
                      pl.col("exc_type").alias("_warn_exc")).drop_nulls("_warn_ts").collect())
    if warned.is_empty():
        return tasks
    unfinished = (tasks.with_row_index("_row").filter(pl.col("state") == "STARTED")
                  .select("_row", "host", "_proc", "_last").drop_nulls(["_proc", "_last"]))
    # each warning takes the latest task its child logged for at or before it
    hit = (warned.sort("_warn_ts")
           .join_asof(unfinished.sort("_last"), left_on="_warn_ts", right_on="_last", by=["host", "_proc"],
                      strategy="backward", check_sortedness=False)
           .drop_nulls("_row").sort("_warn_ts").unique("_row", keep="first", maintain_order=True))
    if hit.is_empty():
        return tasks
    n = tasks.height
    warn_ts = (pl.repeat(None, n, dtype=hit.schema["_warn_ts"], eager=True).alias("_warn_ts")
               .scatter(hit["_row"], hit["_warn_ts"]))
    warn_exc = pl.repeat(None, n, dtype=pl.String, eager=True).alias("_warn_exc").scatter(hit["_row"], hit["_warn_exc"])
    ended = pl.col("_warn_ts").is_not_null()
    return tasks.with_columns(warn_ts, warn_exc).with_columns(
        pl.when(ended).then(pl.lit("FAILURE")).otherwise(pl.col("state")).alias("state"),
        pl.coalesce("finished_at", "_warn_ts").alias("finished_at"),
        pl.when(ended).then(pl.coalesce("exc_type", "_warn_exc")).otherwise(pl.col("exc_type")).alias("exc_type"),
    ).with_columns(
        pl.coalesce("runtime_s", (pl.col("finished_at") - pl.col("started_at")).dt.total_milliseconds() / 1000.0)
        .alias("runtime_s"),
    ).drop("_warn_ts", "_warn_exc")


# `Process 'ForkPoolWorker-1' pid:13485 exited with 'signal 9 (SIGKILL)'` (billiard/pool.py)
EXITED_RE = r"^Process '([^']+)' pid:\d+ exited with '([^']+)'"


def _mark_lost(tasks: pl.DataFrame, events: pl.DataFrame, per_host: pl.DataFrame | None = None) -> pl.DataFrame:
    """Unfinished tasks whose pool child died are LOST, not merely STARTED.

    Celery 5 logs the loss without a task id (`Task handler raised error: WorkerLostError(…)`), so
    the task is found through the child: the unfinished task whose last line came from the
    process that `Process '…' exited with '…'` names, on the same host, before it exited; or,
    when no task logged from a child, the only unfinished task on that host at that moment.
    Celery 3.1 names the task (`raised unexpected: WorkerLostError`): that is LOST too.
    """
    tasks = tasks.with_columns(
        pl.when(pl.col("exc_type").fill_null("").str.ends_with("WorkerLostError")).then(pl.lit("LOST"))
        .otherwise(pl.col("state")).alias("state"))
    exits = events.filter(pl.col("kind") == "process_exited").select(
        "host", pl.col("ts").alias("_exit_ts"), pl.col("message").str.extract(EXITED_RE, 1).alias("_proc"))
    if exits.is_empty():
        return tasks
    # `_row` (the task's position) instead of its id: joining back on an integer is much cheaper
    unfinished = tasks.with_row_index("_row").filter(pl.col("state").is_in(["STARTED", "RECEIVED"])).select(
        "_row", "host", "received_at", "_proc", "_last")
    # `_proc` / `_last`: the pool child each task last logged from and its last line there (null: none)
    exits = exits.drop_nulls(["_exit_ts"]).sort("_exit_ts")
    # the first exit of the same child after the task's last line (an as-of join, not a cross product)
    by_proc = (unfinished.filter(pl.col("_proc").is_not_null()).drop_nulls(["_last"]).sort("_last")
               .join_asof(exits, left_on="_last", right_on="_exit_ts", by=["host", "_proc"], strategy="forward",
                          check_sortedness=False)
               .drop_nulls(["_exit_ts"]).select("_row", "_exit_ts"))
    # a host whose only unfinished task never logged from a child: that task was in the child that died
    quiet = unfinished.filter(pl.col("_proc").is_null()).drop("_proc", "_last")
    lone_hosts = (unfinished.group_by("host").len() if per_host is None else per_host).filter(
        pl.col("len") == 1).select("host")
    lone = (quiet.join(lone_hosts, on="host").drop_nulls(["received_at"]).sort("received_at")
            .join_asof(exits.select("host", "_exit_ts"), left_on="received_at", right_on="_exit_ts", by="host",
                       strategy="forward", check_sortedness=False)
            .drop_nulls(["_exit_ts"]).select("_row", "_exit_ts"))
    # one row per task: `by_proc` and `lone` are disjoint (a child line or none) and as-of joins
    # give each task at most one exit
    lost = pl.concat([by_proc, lone])
    if lost.is_empty():
        return tasks
    exit_ts = (pl.repeat(None, tasks.height, dtype=lost.schema["_exit_ts"], eager=True).alias("_exit_ts")
               .scatter(lost["_row"], lost["_exit_ts"]))
    return tasks.with_columns(exit_ts).with_columns(
        pl.when(pl.col("_exit_ts").is_not_null()).then(pl.lit("LOST")).otherwise(pl.col("state")).alias("state"),
        pl.coalesce("finished_at", "_exit_ts").alias("finished_at"),
        pl.when(pl.col("_exit_ts").is_not_null()).then(pl.coalesce("exc_type", pl.lit("WorkerLostError")))
        .otherwise(pl.col("exc_type")).alias("exc_type"),
    ).drop("_exit_ts")
