"""Thread dumps as rows: the contract every dump parser fills, and what `finish` adds to it.

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
from typing import Literal

import polars as pl

from analyzer.schema import FRAMES, THREADS, conform, empty
from analyzer.sources import stack_rules as R

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


def mask_function() -> pl.Expr:
    expr = _str("function")
    for pattern, mask in R.SIGNATURE_MASKS:
        expr = expr.str.replace_all(pattern, mask)
    return expr


def basename() -> pl.Expr:
    return _str("file").str.extract(r"([^/]*)$", 1).fill_null("")


def _pair_attributes(pairs: pl.DataFrame) -> pl.DataFrame:
    """Every regex-derived attribute of each distinct (function, file, native) triple."""
    return pairs.with_columns(
        frame_role_expr().alias("role"),
        _frame_state_expr().alias("_fstate"),
        (_str("function").str.contains(R.TASK_FRAME)).alias("_task"),
        _any_of(R.IDLE_STACK).alias("_idle"),
        pl.concat_str(mask_function(), pl.lit("@"), basename()).alias("_tok"),
        mask_function().alias("_fn"),
        mask_function().str.contains(R.NOISE_FUNCTION).alias("_noise"),
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
