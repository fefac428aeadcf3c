"""Thread dumps across a bundle: stack buckets, dump comparison, native ids, hosts, task joins.

Dump parsers give threads and frames through `analyzer.sources.stacks` (the row contract and
`finish`: roles, states, signatures); what needs several dumps, or dumps beside inspect output and
logs, is here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import polars as pl

from analyzer.schema import STUCK, empty
from analyzer.sources import stack_rules as R
from analyzer.sources.stacks import (
    FRAME_EXTRA,
    RAW_FRAMES,
    RAW_THREADS,
    ROLES,
    SIG_SEP,
    STATES,
    THREAD_EXTRA,
    TOP_K,
    BucketLevel,
    DumpFrames,
    basename,
    bucket_threads,
    classify_state,
    fill_code,
    finish,
    frame_role,
    frame_role_expr,
    mask_function,
    norm_ident,
    raw_frames,
    raw_threads,
)

__all__ = [
    "FRAME_EXTRA",
    "RAW_FRAMES",
    "RAW_THREADS",
    "ROLES",
    "SIG_SEP",
    "STATES",
    "THREAD_EXTRA",
    "TOP_K",
    "BucketLevel",
    "DumpFrames",
    "bucket_threads",
    "classify_state",
    "fill_code",
    "finish",
    "frame_role",
    "frame_role_expr",
    "norm_ident",
    "raw_frames",
    "raw_threads",
]


TOOL_FAMILY = {"py-spy": "py-spy", "py-spy-json": "py-spy", "gdb": "gdb", "gdb-mi": "gdb", "core": "gdb",
               "gdb-py-bt": "gdb-py-bt", "faulthandler": "faulthandler"}
COMPARE_SCHEMA: dict[str, pl.DataType] = {
    "pid": pl.Int64(), "tid": pl.Int64(), "dumps": pl.Int64(), "sources": pl.List(pl.String()),
    "tools": pl.List(pl.String()), "states": pl.List(pl.String()), "compared": pl.List(pl.String()),
    "first_dump": pl.String(), "last_dump": pl.String(), "signature": pl.String(), "verdict": pl.String(),
    "top": pl.String(), "same_stack": pl.Int64(),
}


def _python_keys(frames: pl.DataFrame, keys: pl.Series) -> pl.DataFrame:
    """`thread_key` → `_cmp`: the stack without native frames (signature tokens of the Python
    frames, then the innermost Python frame with its line), for the threads in `keys`."""
    fr = frames.filter(pl.col("thread_key").is_in(keys.implode()) & ~pl.col("native").fill_null(False))
    fr = fr.sort("thread_key", "depth")
    return fr.group_by("thread_key").agg(pl.concat_str(
        pl.concat_str(mask_function(), pl.lit("@"), basename()).str.join(SIG_SEP), pl.lit("|"),
        pl.concat_str(pl.col("function").first(), pl.lit(" ("), basename().first(), pl.lit(":"),
                      pl.col("line").first().cast(pl.String).fill_null("?"), pl.lit(")"))).alias("_pycmp"))


def compare_dumps(threads: pl.DataFrame, frames: pl.DataFrame | None = None) -> pl.DataFrame:
    """Threads (same pid and tid) seen in two or more dumps.

    Signatures (plus the innermost frame's line, from `top`) are compared only between dumps of
    one tool family (`TOOL_FAMILY`: py-spy text
    and JSON name frames alike; gdb bt and py-bt do not). `verdict`: ``progressing`` when some
    family saw the signature change, ``stuck`` when some family saw it twice or more and none saw
    it change, ``not_comparable`` when every family saw it once (say one py-spy and one gdb dump).
    `compared` lists the families that had two or more dumps; `same_stack` is the largest number
    of dumps of one family that showed the same stack. Order within a row is `captured_at`
    order when known, else source name order. One row per (pid, tid), sorted.

    Successive dumps are distinct `dump` ids (two files, or two dumps in one file such as
    repeated faulthandler tracebacks). With `frames` given, native frames are left out of the
    comparison (signature tokens and innermost line of the Python frames only), so a
    ``py-spy dump --native`` compares with a plain ``py-spy dump`` of the same thread (in
    samples/deadlock-pthread the two differ only by the libc/libpython frames on top).
    """
    base = threads.filter(pl.col("pid").is_not_null() & pl.col("tid").is_not_null())
    if base.is_empty():
        return pl.DataFrame(schema=COMPARE_SCHEMA)
    base = base.with_columns(pl.col("tool").replace_strict(TOOL_FAMILY, default=pl.col("tool")).alias("_fam"))
    base = base.sort("captured_at", "source", "line", nulls_last=True)
    # the signature has no line numbers; `top` adds the innermost one, so a thread that moved on
    # inside the same function counts as progressing
    top = pl.col("top").fill_null("").str.replace(r" \((?:[^()]*/)?", " (")  # file as basename
    base = base.with_columns(pl.concat_str(pl.col("signature"), pl.lit("|"), top).alias("_cmp"))
    repeated = pl.col("dump").n_unique().over("pid", "tid", "_fam") >= 2
    if frames is not None and not frames.is_empty() and "thread_key" in base.columns:
        keys = base.filter(repeated)["thread_key"]
        if not keys.is_empty():
            py = _python_keys(frames, keys)
            base = base.join(py, on="thread_key", how="left", maintain_order="left").with_columns(
                pl.when(repeated).then(pl.coalesce("_pycmp", "_cmp")).otherwise(pl.col("_cmp")).alias("_cmp")
            ).drop("_pycmp")
    fam = (base.group_by("pid", "tid", "_fam", "_cmp").agg(pl.col("dump").n_unique().alias("_same"))
           .group_by("pid", "tid", "_fam").agg(pl.col("_same").sum().alias("_n"), pl.len().alias("_nsig"),
                                               pl.col("_same").max().alias("_same"))
           .filter(pl.col("_n") >= 2)
           .group_by("pid", "tid").agg(pl.col("_fam").sort().alias("compared"),
                                       (pl.col("_nsig") > 1).any().alias("_changed"),
                                       pl.col("_same").max().cast(pl.Int64).alias("same_stack")))
    g = base.group_by("pid", "tid").agg(
        pl.col("dump").n_unique().cast(pl.Int64).alias("dumps"),
        pl.col("source").unique(maintain_order=True).alias("sources"),
        pl.col("tool").unique(maintain_order=True).alias("tools"),
        pl.col("state").alias("states"),
        pl.col("dump").first().alias("first_dump"),
        pl.col("dump").last().alias("last_dump"),
        pl.col("signature").last().alias("signature"),
        pl.col("top").last().alias("top"),
    ).filter(pl.col("dumps") >= 2).join(fam, on=["pid", "tid"], how="left")
    g = g.with_columns(
        pl.when(pl.col("_changed").is_null()).then(pl.lit("not_comparable"))
        .when(pl.col("_changed")).then(pl.lit("progressing"))
        .otherwise(pl.lit("stuck")).alias("verdict"),
        pl.col("compared").fill_null(pl.lit([], dtype=pl.List(pl.String()))),
    )
    return g.select(list(COMPARE_SCHEMA)).sort("pid", "tid")


def fill_native_ids(threads: pl.DataFrame) -> pl.DataFrame:
    """Give faulthandler threads (pthread_t only) the pid/tid of a gdb/py-spy thread with the
    same `thread_ident`, when exactly one (pid, tid) in the bundle carries that ident.

    Forked pool children inherit their parent's main-thread pthread_t, so an ident seen with
    several pids is ambiguous and left alone.
    """
    known = (threads.filter(pl.col("thread_ident").is_not_null() & pl.col("tid").is_not_null())
             .group_by("thread_ident").agg(pl.col("pid").first().alias("_pid"), pl.col("tid").first().alias("_tid"),
                                           pl.struct("pid", "tid").n_unique().alias("_n"))
             .filter(pl.col("_n") == 1).drop("_n"))
    if known.is_empty():
        return threads
    t = threads.join(known, on="thread_ident", how="left", maintain_order="left")
    return t.with_columns(pl.coalesce("pid", "_pid").alias("pid"), pl.coalesce("tid", "_tid").alias("tid")) \
        .drop("_pid", "_tid")


def fill_hosts(threads: pl.DataFrame, workers: pl.DataFrame | None = None,
               inspect: pl.DataFrame | None = None) -> pl.DataFrame:
    """Give threads whose dump names no node (gdb and faulthandler never do) the host of their
    pid: the node another dump of that pid names (py-spy's command line), the worker whose
    `inspect stats` lists the pid as its main process or a pool child, or whose `inspect active`
    runs a task in it. A pid claimed by two hosts (pids of different machines can collide) is
    left alone.
    """
    if threads.is_empty() or threads.get_column("host").null_count() == 0:
        return threads
    # another dump of the same pid that names its node (py-spy reads it from the command line)
    parts: list[pl.DataFrame] = [threads.filter(pl.col("host").is_not_null() & pl.col("pid").is_not_null())
                                 .select("host", "pid")]
    if workers is not None and not workers.is_empty():
        parts.append(workers.select("host", pl.concat_list(pl.col("pid"), pl.col("processes")).alias("pid"))
                     .explode("pid"))
    if inspect is not None and not inspect.is_empty():
        parts.append(inspect.select("host", pl.col("worker_pid").alias("pid")))
    owners = (pl.concat(parts).drop_nulls().unique().group_by("pid")
              .agg(pl.col("host").first().alias("_host"), pl.col("host").n_unique().alias("_n"))
              .filter(pl.col("_n") == 1).drop("_n"))
    return (threads.join(owners, on="pid", how="left", maintain_order="left")
            .with_columns(pl.coalesce("host", "_host").alias("host")).drop("_host"))


def first_app_frames(frames: pl.DataFrame) -> pl.DataFrame:
    """Innermost application frame of each thread: `thread_key`, `app_frame` (``file:line function``)."""
    app = frames.filter((pl.col("role") == "app") & ~pl.col("native").fill_null(False)).sort("thread_key", "depth")
    return app.group_by("thread_key", maintain_order=True).agg(
        pl.concat_str(pl.col("file").fill_null("?"), pl.lit(":"), pl.col("line").cast(pl.String).fill_null("?"),
                      pl.lit(" "), pl.col("function")).first().alias("app_frame"))


STUCK_SCHEMA: dict[str, pl.DataType] = {
    "task_id": pl.String(), "task_name": pl.String(), "host": pl.String(), "pid": pl.Int64(), "tid": pl.Int64(),
    "time_start": pl.Datetime("ms"), "reference": pl.Datetime("ms"), "reference_kind": pl.String(),
    "running_for_s": pl.Float64(), "dumps": pl.Int64(), "dump": pl.String(), "thread": pl.String(),
    "state": pl.String(), "waits_on": pl.String(), "bucket": pl.Int64(), "app_frame": pl.String(),
    "verdict": pl.String(), "log_lines": pl.Int64(), "last_log": pl.String(), "source": pl.String(),
    "line": pl.Int64(), "wait_detail": pl.String(), "same_stack": pl.Int64(),
}
# which dump describes a task's thread best: decided by frames, with an address, richest tool
_FROM_RANK = {"frames": 0, "idle": 1, "locals": 2, "status": 3, "none": 4}
_TOOL_RANK = {"gdb-py-bt": 0, "gdb": 1, "core": 1, "gdb-mi": 1, "py-spy": 2, "py-spy-json": 2, "faulthandler": 3}


def _wait_detail(th: dict[str, object]) -> str | None:
    """What a thread waits in: wait call, address/symbol, mutex owner (``None`` when nothing is known)."""
    call, addr, sym = th.get("wait_call"), th.get("wait_on"), th.get("wait_symbol")
    what = " ".join(str(x) for x in (call, addr, f"<{sym}>" if sym else None) if x)
    owner = th.get("mutex_owner")
    if owner is not None:
        what += f" (held by LWP {owner})"
    return what or None


def _waits_on(th: dict[str, object]) -> str | None:
    state = th.get("state")
    if state is None:
        return None
    what = _wait_detail(th)
    return f"{state}: {what}" if what else str(state)


def stuck_tasks(inspect: pl.DataFrame, threads: pl.DataFrame, frames: pl.DataFrame,
                events: pl.DataFrame | None = None, workers: pl.DataFrame | None = None,
                spans: pl.DataFrame | None = None) -> pl.DataFrame:
    """Active tasks from `celery inspect active` joined to the dumps of their pool process.

    One row per active task id. The thread running it, in each dump of its `worker_pid`, is the
    one whose stack holds Celery's ``trace_task`` / ``__protected_call__`` frame, else the main
    thread (tid == pid). Of those, the row describes the best one (state decided by frames, an
    address waited on, gdb py-bt > gdb > py-spy > faulthandler): `state`, `waits_on` (state,
    wait call, address/symbol, mutex owner), `bucket`, `app_frame` (innermost application frame
    ``file:line function``); `dumps` counts the dumps that showed it and `verdict` is
    `compare_dumps`' stuck/progressing for that thread when it was dumped more than once.
    `log_lines` counts log records carrying the task id; `last_log` is the latest one.

    `running_for_s` = reference − time_start, the reference being, first that exists: the
    inspect row's `captured_at` (``reference_kind="captured_at"``); the latest `captured_at` of
    the dumps showing the task's thread (``"dump"``); the host's first log record
    plus `stats.uptime` (``"uptime"``: whole seconds, stats taken beside `active`); the host's
    latest log record (``"last_log"``: a lower bound, a hung worker stops logging). Two
    inspect snapshots carry the same `time_start`, so their difference says nothing beyond "still
    there". Log timestamps are naive local time while `time_start` is epoch: it is converted to
    UTC and shifted by the zone offset seen between the task's ``received`` record and
    `time_start` (rounded to 15 minutes) when the log has that record.
    """
    if inspect.is_empty():
        return pl.DataFrame(schema=STUCK_SCHEMA)
    active = inspect.filter(pl.col("state") == "active").sort("source", "line").unique(
        "task_id", keep="last", maintain_order=True)
    ev = events if events is not None else pl.DataFrame(schema={"task_id": pl.String(), "ts": pl.Datetime("ms"),
                                                                "host": pl.String(), "kind": pl.String(),
                                                                "source": pl.String(), "line": pl.Int64()})
    span = spans if spans is not None else host_spans(ev)
    has_frames = not frames.is_empty()
    apps = first_app_frames(frames) if has_frames else pl.DataFrame(
        schema={"thread_key": pl.String(), "app_frame": pl.String()})
    task_keys = (frames.filter(pl.col("function").fill_null("").str.contains(R.TASK_FRAME))["thread_key"]
                 .unique().to_list()) if has_frames else []
    verdicts = compare_dumps(threads, frames) if not threads.is_empty() else None
    rows: list[dict[str, object]] = []
    for task in active.iter_rows(named=True):
        pid, host = task.get("worker_pid"), task.get("host")
        tev = ev.filter(pl.col("task_id") == task["task_id"]) if not ev.is_empty() else ev
        first_ts, last_ts = _span_of(span, host)
        start = task.get("time_start")
        assert start is None or isinstance(start, datetime)
        rec = tev.filter(pl.col("kind") == "received").select("ts").drop_nulls()
        if start is not None and not rec.is_empty():
            offset = round((rec.item(0, 0) - start).total_seconds() / 900.0) * 900.0
            start = start + timedelta(seconds=offset)
        cand = threads.filter(pl.col("pid") == pid) if pid is not None and not threads.is_empty() else threads.clear()
        picks: list[dict[str, object]] = []
        for _, grp in cand.group_by("dump", maintain_order=True):
            running_thr = grp.filter(pl.col("thread_key").is_in(task_keys))
            pick = running_thr if not running_thr.is_empty() else grp.filter(pl.col("tid") == pid)
            if not pick.is_empty():
                picks.append(pick.row(0, named=True))
        ref, ref_kind = task.get("captured_at"), ("captured_at" if task.get("captured_at") else None)
        if ref is None:
            shot = [t for th in picks if isinstance(t := th.get("captured_at"), datetime)]
            if shot:
                ref, ref_kind = max(shot), "dump"
        if ref is None and workers is not None and not workers.is_empty():
            w = workers.filter(pl.col("host") == host).drop_nulls("uptime")
            if not w.is_empty() and first_ts is not None:
                ref, ref_kind = first_ts + timedelta(seconds=float(w["uptime"][-1])), "uptime"
        if ref is None and last_ts is not None:
            ref, ref_kind = last_ts, "last_log"
        running = (ref - start).total_seconds() if isinstance(ref, datetime) and start is not None else None
        last_log = None
        if not tev.is_empty():
            lr = tev.sort("ts", "line", nulls_last=True).row(-1, named=True)
            last_log = f"{lr['source']}:{lr['line']}"
        row: dict[str, object] = {
            "task_id": task["task_id"], "task_name": task.get("task_name"), "host": host, "pid": pid,
            "time_start": start, "reference": ref, "reference_kind": ref_kind, "running_for_s": running,
            "log_lines": tev.height, "last_log": last_log, "source": task.get("source"), "line": task.get("line"),
            "dumps": 0,
        }
        if picks:
            picks.sort(key=lambda th: (_FROM_RANK.get(str(th.get("state_from")), 9),
                                       th.get("wait_on") is None, _TOOL_RANK.get(str(th.get("tool")), 9),
                                       str(th.get("source"))))
            th = picks[0]
            app_row = apps.filter(pl.col("thread_key") == th["thread_key"])
            app_frame = app_row["app_frame"][0] if not app_row.is_empty() else None
            if app_frame is None:  # the best dump may lack Python frames (gdb bt): take another's
                for other in picks[1:]:
                    a = apps.filter(pl.col("thread_key") == other["thread_key"])
                    if not a.is_empty():
                        app_frame = a["app_frame"][0]
                        break
            verdict, same = None, None
            if verdicts is not None and th.get("tid") is not None:
                v = verdicts.filter((pl.col("pid") == pid) & (pl.col("tid") == th["tid"]))
                if not v.is_empty():
                    verdict, same = v["verdict"][0], v["same_stack"][0]
            row.update({"tid": th.get("tid"), "dump": th.get("dump"), "thread": th.get("name"),
                        "state": th.get("state"), "waits_on": _waits_on(th), "bucket": th.get("bucket"),
                        "app_frame": app_frame, "dumps": len(picks), "verdict": verdict,
                        "wait_detail": _wait_detail(th), "same_stack": same})
        rows.append(row)
    return pl.from_dicts(rows, schema=STUCK_SCHEMA) if rows else pl.DataFrame(schema=STUCK_SCHEMA)


FINISHED_STATES = ("SUCCESS", "FAILURE", "RETRY", "REVOKED", "REJECTED", "LOST")
STUCK_STATES = ("lock_wait", "io_wait", "db_wait", "sleep", "running")


def _fmt_seconds(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


# ` 0x7f921fb78a40`: an address in a wait's description (`lock_PyThread_acquire_lock 0x7f921fb78a40`)
ADDRESS_RE = re.compile(r" ?\b0x[0-9a-fA-F]+\b")


def _summary(row: dict[str, object]) -> str:
    """The row in words, for a finding message (``{task_name}[{task_id}]`` goes before it)."""
    parts: list[str] = []
    head = f"in pid {row['pid']}" if row.get("pid") is not None else "in an unknown pool process"
    running = row.get("running_for_s")
    if isinstance(running, float):
        head += f" has run {_fmt_seconds(running)} s at capture"
    if row.get("evidence") == "log":
        ran = f", had run {_fmt_seconds(running)} s at capture" if isinstance(running, float) else ""
        return (f"started {row['time_start']}{ran} and has no outcome in the logs; "
                "no inspect output lists it, so no thread dump could be joined")
    parts.append(head)
    dumps = int(str(row.get("dumps") or 0))
    if not dumps:
        parts.append("no thread dump of that pid")
        return ", ".join(parts)
    verdict, where = row.get("verdict"), row.get("app_frame")
    word = {"stuck": "stuck in", "progressing": "progressing, last seen in"}.get(str(verdict), "at")
    if where:
        parts.append(f"{word} {where}")
    state, waits = row.get("state"), row.get("waits_on")
    if waits:
        # the address stays in `waits_on` (a detail); the message names the call and the code
        parts.append(f"waiting on {ADDRESS_RE.sub('', str(waits))} ({state})")
    elif state and state != "unknown":
        parts.append(f"state {state}")
    text = ", ".join(parts)
    if verdict == "stuck":
        text += f"; same stack in {row.get('same_stack') or dumps} dumps"
    elif verdict == "progressing":
        text += f"; the stack changed between dumps ({dumps} dumps)"
    elif dumps == 1:
        text += "; one dump, so stuck cannot be told from progressing"
    else:
        text += f"; {dumps} dumps of different tools, not comparable"
    return text


def host_spans(events: pl.DataFrame) -> pl.DataFrame:
    """Per node, its first and last timed record (`host, first_ts, last_ts`)."""
    if events.is_empty() or "host" not in events.columns:
        return pl.DataFrame(schema={"host": pl.String(), "first_ts": pl.Datetime("ms"), "last_ts": pl.Datetime("ms")})
    return events.drop_nulls("ts").group_by("host").agg(pl.col("ts").min().alias("first_ts"),
                                                         pl.col("ts").max().alias("last_ts"))


def _span_of(spans: pl.DataFrame, host: object) -> tuple[datetime | None, datetime | None]:
    """First and last record time of `host` (of every node when the task names none)."""
    rows = spans.filter(pl.col("host") == host) if host else spans
    if rows.is_empty():
        return None, None
    first, last = rows.select(pl.col("first_ts").min(), pl.col("last_ts").max()).row(0)
    return first, last


def _last_records(events: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
    """Latest log record of each task id in `ids`: `task_id, _src, _line, _ts, _text`."""
    if events.is_empty() or ids.is_empty():
        return pl.DataFrame(schema={"task_id": pl.String(), "_src": pl.String(), "_line": pl.Int64(),
                                    "_ts": pl.Datetime("ms"), "_text": pl.String()})
    text = pl.col("text") if "text" in events.columns else pl.col("message")
    return (events.filter(pl.col("task_id").is_in(ids.implode()))
            .sort("ts", "source", "line", nulls_last=True)
            .group_by("task_id").agg(pl.col("source").last().alias("_src"), pl.col("line").last().alias("_line"),
                                     pl.col("ts").last().alias("_ts"), text.last().alias("_text")))


def _host_capture(spans: pl.DataFrame, workers: pl.DataFrame | None) -> pl.DataFrame:
    """Estimated capture time per host: first log record + `stats.uptime` when stats were taken,
    else the host's last log record. `host, _ref`."""
    if spans.is_empty():
        return pl.DataFrame(schema={"host": pl.String(), "_ref": pl.Datetime("ms")})
    span = spans.filter(pl.col("first_ts").is_not_null()).group_by("host").agg(
        pl.col("first_ts").min().alias("_first"), pl.col("last_ts").max().alias("_last"))
    if workers is not None and not workers.is_empty():
        up = workers.drop_nulls("uptime").group_by("host").agg(pl.col("uptime").last())
        span = span.join(up, on="host", how="left")
    else:
        span = span.with_columns(pl.lit(None, dtype=pl.Float64).alias("uptime"))
    return span.select("host", pl.coalesce(
        pl.col("_first") + pl.duration(milliseconds=(pl.col("uptime") * 1000).round(0).cast(pl.Int64)),
        pl.col("_last")).alias("_ref"))


def stuck_frame(inspect: pl.DataFrame, threads: pl.DataFrame, frames: pl.DataFrame, events: pl.DataFrame,
                tasks: pl.DataFrame, workers: pl.DataFrame | None = None,
                spans: pl.DataFrame | None = None, typical: pl.DataFrame | None = None) -> pl.DataFrame:
    """The `stuck` frame (`analyzer.schema.STUCK`): one row per task seen running and never finished.

    Two origins, one row per task id:

    - inspect: every task ``celery inspect active`` lists whose id has no outcome in the logs
      (`tasks.state` not SUCCESS/FAILURE/RETRY/REVOKED/REJECTED/LOST), joined by `stuck_tasks`
      to the dumps of its `worker_pid` (the thread running ``trace_task``, else the main thread)
      and to its log lines. Evidence (`source`, `line`) is the inspect entry; `ts` the estimated
      capture time.
    - log: every other task the `tasks` frame leaves STARTED (a pool child logged for it, no
      outcome followed). Logs do not name the pool pid, so no dump is joined: `pid`, `tid`,
      `app_frame`, `bucket` are null, `state` and `verdict` ``unknown``. Evidence is the task's
      last log record.

    Capture time (for `running_for_s`), first that exists: the inspect output's `captured_at`;
    the latest `captured_at` of the dumps showing the task; the host's first log record plus
    `celery inspect stats` ``uptime`` (stats are taken beside ``inspect active`` and the first
    record is the worker's start, so this is the snapshot time to within a second); the host's
    last log record (a lower bound: a hung worker stops logging). py-spy, gdb and faulthandler
    text dumps carry no time of their own, so in the samples it is the uptime estimate.

    `verdict`: `compare_dumps` for the task's thread — ``stuck`` (same Python stack in
    successive dumps of one tool family), ``progressing`` (it changed) — else ``unknown`` (one
    dump, or dumps of tools whose frames cannot be compared, or none). `state` is the thread's
    (``idle`` and a missing dump become ``unknown``); `waits_on` the call, address and mutex
    owner it waits in; `summary` the row in words for finding messages.
    """
    schema = dict(STUCK)
    finished = (tasks.filter(pl.col("state").is_in(FINISHED_STATES))["task_id"]
                if not tasks.is_empty() else pl.Series("task_id", [], dtype=pl.String))
    spans = spans if spans is not None else host_spans(events)
    st = stuck_tasks(inspect, threads, frames, events, workers, spans)
    st = st.filter(~pl.col("task_id").is_in(finished.implode()))
    ids = pl.concat([st["task_id"], tasks.filter(pl.col("state") == "STARTED")["task_id"]]) \
        if not tasks.is_empty() else st["task_id"]
    last = _last_records(events, ids.unique())
    rows: list[dict[str, object]] = []
    for r in st.iter_rows(named=True):
        state = r.get("state") if r.get("state") in STUCK_STATES else "unknown"
        verdict = r.get("verdict") if r.get("verdict") in ("stuck", "progressing") else "unknown"
        entry = (f"celery inspect active: {r['host']} {r['task_name']}[{r['task_id']}] worker_pid={r['pid']}"
                 f" time_start={r['time_start']}")
        rows.append({
            "task_id": r["task_id"], "task_name": r["task_name"], "host": r["host"], "pid": r["pid"],
            "tid": r["tid"], "time_start": r["time_start"], "running_for_s": r["running_for_s"],
            "verdict": verdict, "state": state, "waits_on": r["wait_detail"], "app_frame": r["app_frame"],
            "bucket": r["bucket"], "dumps": r["dumps"], "source": r["source"], "line": r["line"],
            "ts": r["reference"] or r["time_start"], "text": entry, "evidence": "inspect",
            "same_stack": r["same_stack"],
        })
    log_only = tasks.filter((pl.col("state") == "STARTED") & ~pl.col("task_id").is_in(st["task_id"].implode())) \
        if not tasks.is_empty() else tasks
    for row in rows:
        row["summary"] = _summary(row)
    parts = [pl.from_dicts([{k: row.get(k) for k in schema} for row in rows], schema=schema)] if rows else []
    if not log_only.is_empty():
        parts.append(_log_only_rows(log_only, last, _host_capture(spans, workers), schema))
    if not parts:
        return empty(schema)
    out = pl.concat(parts, how="vertical_relaxed").sort("ts", "source", "line", nulls_last=True)
    return _with_typical_runtime(out, tasks, typical)


def typical_runtimes(tasks: pl.DataFrame) -> pl.DataFrame:
    """Per task name, the 95th percentile of its successful runs (`typical_runtime_s`) and their
    number (`_runs`), from `tasks` rows or from rows with `task_name`, `runtime_s` of SUCCESS only."""
    if "state" in tasks.columns:
        tasks = tasks.filter((pl.col("state") == "SUCCESS") & pl.col("runtime_s").is_not_null())
    return tasks.group_by("task_name").agg(pl.col("runtime_s").quantile(0.95, "higher").alias("typical_runtime_s"),
                                           pl.len().alias("_runs"))


def _with_typical_runtime(stuck: pl.DataFrame, tasks: pl.DataFrame,
                          baseline: pl.DataFrame | None = None) -> pl.DataFrame:
    """`typical_runtime_s` (95th percentile of the task name's successful runs in the bundle) and
    `runtime_ratio` (running_for_s over it), said in `summary` too.

    A task still running when the evidence ends is stuck only when it has run long for what it
    is: seconds are nothing for a report that takes an hour, and everything for one that takes
    50 ms. Without finished runs of the same name there is nothing to compare with (null).
    `baseline`: `typical_runtimes` of every task, when `tasks` holds some only.
    """
    runs = (baseline if baseline is not None else typical_runtimes(tasks)
            if not tasks.is_empty() else pl.DataFrame(schema={"task_name": pl.String(),
                                                              "typical_runtime_s": pl.Float64(),
                                                              "_runs": pl.UInt32()}))
    typical = pl.col("typical_runtime_s")
    shown = pl.when(typical < 10).then(typical.round(3).cast(pl.String)).otherwise(
        typical.round(0).cast(pl.Int64).cast(pl.String))
    cols = stuck.columns
    stuck = stuck.drop("typical_runtime_s", "runtime_ratio", strict=False)
    return stuck.join(runs, on="task_name", how="left", maintain_order="left").with_columns(
        pl.when(typical > 0).then(pl.col("running_for_s") / typical).alias("runtime_ratio"),
        pl.when(typical.is_not_null()).then(pl.concat_str(
            "summary", pl.lit("; its successful runs took "), shown,
            pl.lit(" s or less (95th percentile of "), pl.col("_runs").cast(pl.String), pl.lit(")")))
        .otherwise(pl.col("summary")).alias("summary"),
    ).select(cols)


def _log_only_rows(log_only: pl.DataFrame, last: pl.DataFrame, refs: pl.DataFrame,
                   schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """`stuck` rows for tasks only the logs show (STARTED, no outcome), built in bulk: a big log
    can leave many of them."""
    running = (pl.col("_ref") - pl.col("started_at")).dt.total_milliseconds() / 1000.0
    ran = pl.when(running.is_not_null()).then(
        pl.concat_str(pl.lit(", had run "),
                      pl.when(running < 10).then(running.round(1).cast(pl.String))
                      .otherwise(running.round(0).cast(pl.Int64).cast(pl.String)),
                      pl.lit(" s at capture"))).otherwise(pl.lit(""))
    lo = (log_only.select("task_id", "task_name", "host", "started_at", "source", "line")
          .join(last, on="task_id", how="left", maintain_order="left")
          .join(refs, on="host", how="left", maintain_order="left"))
    out = lo.select(
        "task_id", "task_name", "host",
        pl.col("started_at").alias("time_start"),
        running.alias("running_for_s"),
        pl.lit("unknown").alias("verdict"), pl.lit("unknown").alias("state"),
        pl.lit(0, dtype=pl.Int64).alias("dumps"),
        pl.coalesce("_src", "source").alias("source"), pl.coalesce("_line", "line").alias("line"),
        pl.coalesce("_ts", "started_at").alias("ts"),
        pl.col("_text").alias("text"), pl.lit("log").alias("evidence"),
        pl.concat_str(pl.lit("started "), pl.col("started_at").cast(pl.String).fill_null("None"), ran,
                      pl.lit(" and has no outcome in the logs; no inspect output lists it, so no thread dump "
                             "could be joined")).alias("summary"),
    )
    return out.with_columns([pl.lit(None, dtype=dt).alias(k) for k, dt in schema.items() if k not in out.columns]
                            ).select(list(schema)).cast(schema)  # type: ignore[arg-type]
