"""Thread dumps as data: frame roles, thread states, stack buckets, dump comparison, task joins.

All dump parsers (py-spy text/JSON, gdb bt/py-bt, GDB/MI, faulthandler) produce *raw* thread
and frame rows joined by `thread_key` (``"{source}:{header line}"``) and hand them to
`finish`, which adds what every tool shares, vectorised over the whole dump:

- `frames.role`     app / celery / stdlib / third_party / native (`stack_rules.ROLE_BY_FILE`)
- `threads.state`   lock_wait / io_wait / db_wait / sleep / running / idle / unknown
- `threads.top`     innermost frame as ``function (file:line)``
- `threads.signature` normalised stack, innermost first, ``function@basename`` joined by ``" < "``
- `threads.bucket`  panicparse-like group number of identical signatures in this result

Regexes are evaluated once per distinct ``(function, file)`` pair and joined back, so the cost
grows with the variety of frames, not with the number of threads.

State decision for one thread (first that applies):

1. ``idle``: the stack holds idle Celery plumbing (`IDLE_STACK`: billiard's pool child
   ``workloop``/``receive``, the consumer's ``asynloop``, kombu's hub) and no task frame
   (`TASK_FRAME`: ``trace_task``/``__protected_call__``).
2. the first frame, innermost first and no deeper than the first application frame, that
   matches `STATE_BY_FRAME`; an ``io_wait`` whose candidate frames include a database driver
   becomes ``db_wait``.
3. a hint from the innermost Python frame's locals (`STATE_BY_LOCAL_REPR`, py-spy --locals),
   because py-spy without ``--native`` does not show the C call a thread blocks in. A lock in
   the locals is kept as ``lock_wait`` only when another thread of the dump waits at the same
   frame with the same lock (`_confirm_lock_hints`): the holder has the lock in its locals too.
4. ``running`` when the tool says the thread was on CPU (py-spy ``active``/``active+gil``).
5. ``unknown``.

`state_from` (extra column) says which step decided: idle / frames / locals / status / none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from analyzer.analyses import stack_rules as R
from analyzer.schema import FRAMES, STUCK, THREADS, conform, empty

STATES = ("lock_wait", "io_wait", "db_wait", "sleep", "running", "idle", "unknown")
ROLES = ("app", "celery", "stdlib", "third_party", "native")
TOP_K = 16  # frames from the innermost that may decide a wait state
SIG_SEP = " < "

# Extra thread columns every dump parser may fill (kept after the contract's).
THREAD_EXTRA: dict[str, pl.DataType] = {
    "thread_key": pl.String(),  # "{source}:{header line}", joins threads and frames
    "status": pl.String(),  # py-spy idle / active / active+gil / gil; null for others
    "wait_call": pl.String(),  # frame that decided the state: `pthread_mutex_lock`, `recv`, …
    "wait_on": pl.String(),  # address waited on: mutex / futex / Python lock object (`0x7f…`)
    "wait_symbol": pl.String(),  # its symbol when gdb printed one: `mutex_a`
    "mutex_owner": pl.Int64(),  # LWP owning `wait_on` (gdb `__data.__owner`) when read
    "state_from": pl.String(),  # idle / frames / locals / status / none
    "frames_count": pl.Int64(),
    "gdb_num": pl.Int64(),  # gdb's thread number
    "fatal": pl.String(),  # faulthandler: `Segmentation fault` when the dump was a crash
    "bucket_key": pl.String(),  # what `bucket` groups on (see bucket_threads)
    "bucket_size": pl.Int64(),
    "code": pl.String(),  # where the thread is in Python code: `take (proj.py:31)` (see `finish`)
    "code_from": pl.String(),  # which frame gave `code`: app / python / top (`fill_code` ranks them)
}
FRAME_EXTRA: dict[str, pl.DataType] = {
    "thread_key": pl.String(),
    "args": pl.String(),  # gdb argument list as printed (`mutex=0x7f84314a0040 <mutex_a>`)
}

BucketLevel = Literal["exact", "functions", "top3"]

# Raw rows parsers hand to `finish` (built with `raw_threads`/`raw_frames`).
RAW_THREADS: dict[str, pl.DataType] = {
    "dump": pl.String(), "source": pl.String(), "line": pl.Int64(), "tool": pl.String(),
    "captured_at": pl.Datetime("ms"), "host": pl.String(), "pid": pl.Int64(), "tid": pl.Int64(),
    "thread_ident": pl.String(), "name": pl.String(), "thread_key": pl.String(), "status": pl.String(),
    "gdb_num": pl.Int64(), "mutex_owner": pl.Int64(), "fatal": pl.String(),
}
RAW_FRAMES: dict[str, pl.DataType] = {
    "dump": pl.String(), "source": pl.String(), "src_line": pl.Int64(), "pid": pl.Int64(), "tid": pl.Int64(),
    "depth": pl.Int64(), "function": pl.String(), "file": pl.String(), "line": pl.Int64(),
    "native": pl.Boolean(), "code": pl.String(), "locals": pl.String(), "thread_key": pl.String(),
    "args": pl.String(),
}


def raw_threads(rows: Sequence[dict[str, object]]) -> pl.DataFrame:
    return pl.from_dicts(list(rows), schema=RAW_THREADS) if rows else pl.DataFrame(schema=RAW_THREADS)


def raw_frames(rows: Sequence[dict[str, object]]) -> pl.DataFrame:
    return pl.from_dicts(list(rows), schema=RAW_FRAMES) if rows else pl.DataFrame(schema=RAW_FRAMES)


@dataclass
class DumpFrames:
    """What a dump parser returns before `finish`: raw rows plus coverage facts."""

    threads: pl.DataFrame
    frames: pl.DataFrame
    lines: int = 0
    parsed: int = 0
    unrecognized: int = 0
    samples: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)


# --- per-pair attributes --------------------------------------------------------------------
def _str(col: str) -> pl.Expr:
    return pl.col(col).fill_null("")


def _native_expr(function: str = "function", file: str = "file") -> pl.Expr:
    return _str(file).str.contains(R.NATIVE_FILE) | _str(function).str.contains(R.NATIVE_FUNCTION)


def frame_role_expr(function: str = "function", file: str = "file", native: str = "native") -> pl.Expr:
    """`frames.role` as an expression over a frame of frames."""
    expr: pl.Expr = pl.lit("app")
    for role, pattern in reversed(R.ROLE_BY_FILE):
        expr = pl.when(_str(file).str.contains(pattern)).then(pl.lit(role)).otherwise(expr)
    return pl.when(pl.col(native).fill_null(False)).then(pl.lit("native")).otherwise(expr)


def frame_role(file: str | None, *, function: str | None = None, native: bool = False) -> str:
    """Role of one frame (scalar convenience over `frame_role_expr`)."""
    df = pl.DataFrame({"function": [function], "file": [file], "native": [native]},
                      schema={"function": pl.String, "file": pl.String, "native": pl.Boolean})
    return str(df.select(frame_role_expr()).item())


def _frame_state_expr() -> pl.Expr:
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for state, fn_re, file_re in reversed(R.STATE_BY_FRAME):
        cond = _str("function").str.contains(fn_re) if fn_re else pl.lit(True)
        if file_re:
            cond = cond & _str("file").str.contains(file_re)
        expr = pl.when(cond).then(pl.lit(state)).otherwise(expr)
    return expr


def _any_of(rows: Sequence[tuple[str, str]]) -> pl.Expr:
    expr: pl.Expr = pl.lit(False)
    for fn_re, file_re in rows:
        expr = expr | (_str("function").str.contains(fn_re) & _str("file").str.contains(file_re))
    return expr


def _mask_function() -> pl.Expr:
    expr = _str("function")
    for pattern, mask in R.SIGNATURE_MASKS:
        expr = expr.str.replace_all(pattern, mask)
    return expr


def _basename() -> pl.Expr:
    return _str("file").str.extract(r"([^/]*)$", 1).fill_null("")


def _pair_attributes(pairs: pl.DataFrame) -> pl.DataFrame:
    """Every regex-derived attribute of each distinct (function, file, native) triple."""
    return pairs.with_columns(
        frame_role_expr().alias("role"),
        _frame_state_expr().alias("_fstate"),
        (_str("function").str.contains(R.TASK_FRAME)).alias("_task"),
        _any_of(R.IDLE_STACK).alias("_idle"),
        pl.concat_str(_mask_function(), pl.lit("@"), _basename()).alias("_tok"),
        _mask_function().alias("_fn"),
        _mask_function().str.contains(R.NOISE_FUNCTION).alias("_noise"),
    )


# --- finishing a dump ---------------------------------------------------------------------------
def _locals_hint() -> pl.Expr:
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for state, pattern in reversed(R.STATE_BY_LOCAL_REPR):
        expr = pl.when(_str("_top_locals").str.contains(pattern)).then(pl.lit(state)).otherwise(expr)
    return expr


# a lock object in py-spy locals: `second: <_thread.lock at 0x7f921f5db700>`
LOCK_LOCAL_RE = r"<(?:_thread\.(?:lock|RLock)|RLock) at (0x[0-9a-f]+)>"


def _confirm_lock_hints(t: pl.DataFrame) -> pl.DataFrame:
    """Keep a ``lock_wait`` hint from locals only when another thread of the same dump stands at
    the same innermost frame with the same lock in its locals (waiters queue at one line; the
    holder of the lock also has it in its locals, elsewhere, and must not look like a waiter).
    In samples/lock-wait-many five readers wait at `wait_for_index (proj.py:35)` while the
    holder runs `hold_and_work (proj.py:31)`: only the readers keep the hint.
    """
    hinted = t.filter(pl.col("_hint") == "lock_wait")
    if hinted.is_empty():
        return t
    locks = (hinted.select("thread_key", "dump", "top", pl.col("_top_locals").str.extract_all(LOCK_LOCAL_RE)
                           .alias("_addr"))
             .explode("_addr").drop_nulls("_addr")
             .with_columns(pl.col("_addr").str.extract(LOCK_LOCAL_RE, 1)))
    shared = locks.with_columns(pl.col("thread_key").n_unique().over("dump", "top", "_addr").alias("_n"))
    ok = shared.filter(pl.col("_n") >= 2).select("thread_key").unique()
    keep = pl.col("thread_key").is_in(ok["thread_key"].implode())
    return t.with_columns(pl.when((pl.col("_hint") != "lock_wait") | keep).then(pl.col("_hint")).alias("_hint"))


# `mutex=0x7f84314a0040 <mutex_a>` / `futex=futex@entry=0x55d31986a060 <a>` / `self=0x7f921f5db700`
WAIT_ADDR_RE = r"(?:mutex|futex|futex_word|self|lock)=(?:\w+@entry=)?(0x[0-9a-f]+)(?: <([^>]+)>)?"


def finish(raw: DumpFrames) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Add roles, states, top, signature and bucket; conform both frames to the contract."""
    threads, frames = raw.threads, raw.frames
    if threads.is_empty():
        return _empty_threads(), _empty_frames()
    if "native" not in frames.columns:
        frames = frames.with_columns(pl.lit(None, dtype=pl.Boolean).alias("native"))
    frames = frames.with_columns(pl.col("native").cast(pl.Boolean), pl.col("function").cast(pl.String),
                                 pl.col("file").cast(pl.String))
    # every regex runs once per distinct (function, file, native), keyed by a hash of the three;
    # a null `native` is decided here
    frames = frames.with_columns(pl.struct("function", "file", "native").hash().alias("_pair"))
    pairs = frames.select("_pair", "function", "file", "native").unique("_pair")
    pairs = pairs.with_columns(pl.coalesce(pl.col("native"), _native_expr()).alias("native"))
    attrs = _pair_attributes(pairs).drop("function", "file")
    # parsers emit each thread's frames innermost first; group_by keeps that order within groups.
    # `_k` (a hash of thread_key) keeps the many groupings on integers rather than strings.
    fr = frames.drop("native").join(attrs, on="_pair", how="left", maintain_order="left")
    fr = fr.with_columns(pl.col("thread_key").hash().alias("_k"))

    app = (pl.col("role") == "app") & ~pl.col("native")
    first_app = pl.when(app).then(pl.col("depth")).min().over("_k")
    cand = (pl.col("depth") < TOP_K) & (pl.col("depth") <= first_app.fill_null(1 << 30))
    fr = fr.with_columns(cand.alias("_cand"))
    fr = fr.with_columns(pl.when(pl.col("_cand")).then(pl.col("_fstate")).alias("_cstate"))

    args = pl.col("args") if "args" in fr.columns else pl.lit(None, dtype=pl.String)
    has_state = pl.col("_cstate").is_not_null()
    # the thread's wait state is the innermost candidate's; the call named is the outermost
    # contiguous frame in that state (`___pthread_mutex_lock`, not `futex_wait`)
    fr = fr.with_columns(pl.col("_cstate").filter(has_state).first().over("_k").alias("_tstate"))
    same = pl.col("_cstate") == pl.col("_tstate")
    per = fr.group_by("_k").agg(
        pl.col("_cstate").filter(has_state).first().alias("_fstate"),
        pl.col("function").filter(same).last().alias("wait_call"),
        (pl.col("_cstate") == "db_wait").any().alias("_db"),
        pl.col("function").filter((pl.col("_cstate") == "db_wait") & (pl.col("function") != "??")).last()
        .alias("_db_call"),
        pl.col("_task").any().alias("_task"),
        pl.col("_idle").any().alias("_idle"),
        pl.col("_tok").str.join(SIG_SEP).alias("signature"),
        pl.col("function").first().alias("_top_fn"),
        pl.col("file").first().alias("_top_file"),
        pl.col("line").first().alias("_top_line"),
        pl.col("locals").filter(~pl.col("native")).first().alias("_top_locals"),
        args.filter(same & args.str.contains(WAIT_ADDR_RE)).last().alias("_wait_args"),
        pl.len().alias("frames_count"),
        *_code_aggs(),
    )
    t = threads.drop([c for c in ("state", "top", "signature", "bucket", "wait_call", "frames_count")
                      if c in threads.columns])
    t = t.with_columns(pl.col("thread_key").hash().alias("_k")).join(per, on="_k", how="left").drop("_k")
    t = t.with_columns(
        pl.when(pl.col("_top_fn").is_not_null()).then(pl.concat_str(
            pl.col("_top_fn"), pl.lit(" ("), pl.col("_top_file").fill_null("?"),
            pl.when(pl.col("_top_line").is_not_null())
            .then(pl.concat_str(pl.lit(":"), pl.col("_top_line").cast(pl.String))).otherwise(pl.lit("")),
            pl.lit(")"))).alias("top")).drop("_top_fn", "_top_file", "_top_line")
    if "status" not in t.columns:
        t = t.with_columns(pl.lit(None, dtype=pl.String).alias("status"))
    hint = _locals_hint()
    running = pl.col("status").is_in(["active", "active+gil", "gil"])
    idle = pl.col("_idle").fill_null(False) & ~pl.col("_task").fill_null(False)
    io_db = (pl.col("_fstate") == "io_wait") & pl.col("_db").fill_null(False)
    t = t.with_columns(hint.alias("_hint"))
    t = _confirm_lock_hints(t)
    # a socket wait inside a database driver is a database wait, named by the driver's call
    t = t.with_columns(pl.when(io_db).then(pl.coalesce("_db_call", "wait_call")).otherwise(pl.col("wait_call"))
                       .alias("wait_call")).drop("_db_call")
    t = t.with_columns(
        pl.when(idle).then(pl.lit("idle"))
        .when(io_db).then(pl.lit("db_wait"))
        .when(pl.col("_fstate").is_not_null()).then(pl.col("_fstate"))
        .when(pl.col("_hint").is_not_null()).then(pl.col("_hint"))
        .when(running).then(pl.lit("running"))
        .otherwise(pl.lit("unknown")).alias("state"),
        pl.when(idle).then(pl.lit("idle"))
        .when(pl.col("_fstate").is_not_null()).then(pl.lit("frames"))
        .when(pl.col("_hint").is_not_null()).then(pl.lit("locals"))
        .when(running).then(pl.lit("status"))
        .otherwise(pl.lit("none")).alias("state_from"),
        pl.col("signature").fill_null(""),
        pl.col("frames_count").fill_null(0),
    )
    waddr = pl.col("_wait_args").str.extract_groups(WAIT_ADDR_RE)
    wait_cols = []
    if "wait_on" not in t.columns:
        wait_cols.append(waddr.struct.field("1").alias("wait_on"))
    else:
        wait_cols.append(pl.coalesce(pl.col("wait_on"), waddr.struct.field("1")).alias("wait_on"))
    if "wait_symbol" not in t.columns:
        wait_cols.append(waddr.struct.field("2").alias("wait_symbol"))
    else:
        wait_cols.append(pl.coalesce(pl.col("wait_symbol"), waddr.struct.field("2")).alias("wait_symbol"))
    t = t.with_columns(wait_cols)
    t = t.drop("_fstate", "_db", "_task", "_idle", "_top_locals", "_wait_args", "_hint")
    t = _with_code(t)
    t = bucket_threads(t, "exact")
    fr_out = fr.drop([c for c in fr.columns if c.startswith("_")])
    return _conform_threads(t), _conform_frames(fr_out)


def _label(function: str = "function", file: str = "file", line: str = "line") -> pl.Expr:
    """`function (file:line)`, the way reports name a place in code: the file as py-spy names it,
    relative to its package folder (`amqp/transport.py`), else its base name (`proj.py`)."""
    path = pl.col(file).fill_null("?").str.replace(r"^.*/(?:site|dist)-packages/", "")
    path = pl.when(path.str.starts_with("/")).then(path.str.replace(r"^.*/", "")).otherwise(path)
    return pl.concat_str(
        pl.col(function).fill_null("?"), pl.lit(" ("), path,
        pl.when(pl.col(line).is_not_null()).then(pl.concat_str(pl.lit(":"), pl.col(line).cast(pl.String)))
        .otherwise(pl.lit("")), pl.lit(")"))


CODE_RANK = {"app": 0, "python": 1, "top": 2}


def _code_aggs() -> list[pl.Expr]:
    """Per thread: its innermost application frame, else its innermost Python frame outside the
    standard library, else any Python frame (a thread blocked in `Thread.join` is named by the
    task that joins, not by threading.py)."""
    py = ~pl.col("native").fill_null(False)
    app = py & (pl.col("role") == "app")
    outside = py & (pl.col("role") != "stdlib")
    return [_label().filter(app).first().alias("_code_app"),
            _label().filter(outside).first().alias("_code_outside"),
            _label().filter(py).first().alias("_code_py")]


def _with_code(t: pl.DataFrame) -> pl.DataFrame:
    """`code` and `code_from`: the best Python place of the thread, else its innermost frame."""
    py = pl.coalesce("_code_outside", "_code_py")
    return t.with_columns(
        pl.coalesce("_code_app", py, "top").alias("code"),
        pl.when(pl.col("_code_app").is_not_null()).then(pl.lit("app"))
        .when(py.is_not_null()).then(pl.lit("python"))
        .when(pl.col("top").is_not_null()).then(pl.lit("top")).alias("code_from"),
    ).drop("_code_app", "_code_outside", "_code_py")


def fill_code(threads: pl.DataFrame) -> pl.DataFrame:
    """Give each thread the best `code` any dump of the same thread (host, pid, tid) shows.

    gdb's `bt` of a Python thread has only C frames (`futex_wait`); its py-bt, or py-spy's dump
    of the same LWP, says which Python line it is blocked in. Threads without pid or tid keep
    their own.
    """
    if threads.is_empty() or "code_from" not in threads.columns:
        return threads
    rank = pl.col("code_from").replace_strict(CODE_RANK, default=len(CODE_RANK), return_dtype=pl.Int64)
    keyed = threads.filter(pl.col("pid").is_not_null() & pl.col("tid").is_not_null() & pl.col("code").is_not_null())
    best = (keyed.with_columns(rank.alias("_rank"))
            .sort("_rank", "source", "line")
            .group_by("host", "pid", "tid", maintain_order=True)
            .agg(pl.col("code").first().alias("_code"), pl.col("code_from").first().alias("_from")))
    if best.is_empty():
        return threads
    t = threads.join(best, on=["host", "pid", "tid"], how="left", maintain_order="left", nulls_equal=True)
    better = pl.col("_code").is_not_null() & (
        pl.col("_from").replace_strict(CODE_RANK, default=len(CODE_RANK), return_dtype=pl.Int64)
        < rank.fill_null(len(CODE_RANK)))
    return t.with_columns(pl.when(better).then(pl.col("_code")).otherwise(pl.col("code")).alias("code"),
                          pl.when(better).then(pl.col("_from")).otherwise(pl.col("code_from")).alias("code_from"),
                          ).drop("_code", "_from")


def _conform_threads(t: pl.DataFrame) -> pl.DataFrame:
    schema = {**THREADS, **THREAD_EXTRA}
    # a fixed column set for every tool, so the bundle can stack dumps of different tools
    return conform(t, schema).select(list(schema)).sort("source", "line", maintain_order=True)


def _conform_frames(f: pl.DataFrame) -> pl.DataFrame:
    schema = {**FRAMES, **FRAME_EXTRA}
    return conform(f, schema).select(list(schema))  # parsers emit frames in source order


def _empty_threads() -> pl.DataFrame:
    return empty({**THREADS, **THREAD_EXTRA})


def _empty_frames() -> pl.DataFrame:
    return empty({**FRAMES, **FRAME_EXTRA})


# --- public analyses --------------------------------------------------------------------------
def classify_state(threads: pl.DataFrame, frames: pl.DataFrame) -> pl.DataFrame:
    """Recompute `state` (and `wait_call`, `state_from`, `top`, `signature`) of parsed threads.

    Useful after editing `stack_rules` in a notebook; parsers already call it through `finish`.
    """
    keep_t = threads.drop([c for c in ("role",) if c in threads.columns])
    keep_f = frames.drop([c for c in ("role",) if c in frames.columns])
    t, _ = finish(DumpFrames(keep_t, keep_f))
    return t


def _bucket_key(level: BucketLevel) -> pl.Expr:
    sig = pl.col("signature").fill_null("")
    if level == "exact":
        return sig
    parts = sig.str.split(SIG_SEP)
    strip = r"@[^@]*$"
    if level == "functions":
        return parts.list.eval(pl.element().str.replace(strip, "")).list.join(SIG_SEP)
    if level == "top3":
        # noise is interpreter / libc plumbing: a NOISE_FUNCTION name in a file that is not Python
        el = pl.element()
        noise = el.str.replace(strip, "").str.contains(R.NOISE_FUNCTION) & ~el.str.contains(r"\.pyw?$")
        kept = parts.list.eval(el.filter(~noise).str.replace(strip, ""))
        return kept.list.head(3).list.join(SIG_SEP)
    raise ValueError(f"unknown bucket level {level!r}")


def bucket_threads(threads: pl.DataFrame, level: BucketLevel = "exact") -> pl.DataFrame:
    """Number groups of threads with the same stack, panicparse-style.

    Levels (strictest first): ``exact`` — identical normalised signature (functions and files);
    ``functions`` — identical function names, files ignored; ``top3`` — identical first three
    significant frames (interpreter / libc plumbing in `NOISE_FUNCTION` skipped).
    Buckets are numbered 1… by size (largest first), then by key, so numbering is deterministic.
    Adds `bucket` (replacing it), `bucket_key` and `bucket_size`.
    """
    if threads.is_empty():
        out = threads.drop([c for c in ("bucket", "bucket_key", "bucket_size") if c in threads.columns])
        return out.with_columns(pl.lit(None, dtype=pl.Int64).alias("bucket"),
                                pl.lit(None, dtype=pl.String).alias("bucket_key"),
                                pl.lit(None, dtype=pl.Int64).alias("bucket_size"))
    t = threads.drop([c for c in ("bucket", "bucket_key", "bucket_size") if c in threads.columns])
    t = t.with_columns(_bucket_key(level).alias("bucket_key"))
    sizes = t.group_by("bucket_key").agg(pl.len().alias("bucket_size"))
    sizes = sizes.sort(["bucket_size", "bucket_key"], descending=[True, False]).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("bucket"))
    t = t.join(sizes, on="bucket_key", how="left")
    cols = [c for c in t.columns if c not in ("bucket", "bucket_key", "bucket_size")]
    if "signature" in cols:
        i = cols.index("signature") + 1
        cols = [*cols[:i], "bucket", *cols[i:], "bucket_key", "bucket_size"]
    else:
        cols = [*cols, "bucket", "bucket_key", "bucket_size"]
    return t.select(cols)


# Tools whose frame names agree, so their signatures can be compared with each other.
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
        pl.concat_str(_mask_function(), pl.lit("@"), _basename()).str.join(SIG_SEP), pl.lit("|"),
        pl.concat_str(pl.col("function").first(), pl.lit(" ("), _basename().first(), pl.lit(":"),
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
                spans: pl.DataFrame | None = None) -> pl.DataFrame:
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
    return _with_typical_runtime(out, tasks)


def _with_typical_runtime(stuck: pl.DataFrame, tasks: pl.DataFrame) -> pl.DataFrame:
    """`typical_runtime_s` (95th percentile of the task name's successful runs in the bundle) and
    `runtime_ratio` (running_for_s over it), said in `summary` too.

    A task still running when the evidence ends is stuck only when it has run long for what it
    is: seconds are nothing for a report that takes an hour, and everything for one that takes
    50 ms. Without finished runs of the same name there is nothing to compare with (null).
    """
    runs = (tasks.filter((pl.col("state") == "SUCCESS") & pl.col("runtime_s").is_not_null())
            .group_by("task_name").agg(pl.col("runtime_s").quantile(0.95, "higher").alias("typical_runtime_s"),
                                       pl.len().alias("_runs"))
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


HEX_RE = re.compile(r"^0x[0-9a-fA-F]+$")


def norm_ident(value: str | int | None) -> str | None:
    """pthread_t as lower-case hex without zero padding: `0x7f92223e3b80`."""
    if value is None:
        return None
    if isinstance(value, int):
        return hex(value)
    v = value.strip()
    try:
        return hex(int(v, 16)) if HEX_RE.match(v) else hex(int(v))
    except ValueError:
        return None
