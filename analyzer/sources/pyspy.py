"""py-spy ``dump`` output (text, ``--locals``, ``--native``, ``--json``) → `threads` and `frames`.

FORMATS.md D.1/D.2. The text form is parsed in bulk: every line gets a shape by prefix and
regex (polars), then cumulative sums number process sections, threads and frames, so no Python
loop runs per line. Line shapes (the states of the implied machine), with real samples from
``samples/deadlock-lock`` and ``samples/deadlock-pthread``:

- ``process``  `Process 12466: /work/main/.venv/bin/python3 /work/main/.venv/bin/celery -A proj …`
  → starts a dump (section); next: ``python`` / ``parent`` / ``blank``.
- ``parent``   `Parent Process 14700: …` (``--subprocesses``, after the header of each child's
  section; samples/deadlock-pipe) → a `processes` row (pid, ppid, cmd), so the wait-for graph
  knows who is whose child without ps or /proc.
- ``python``   `Python v3.11.7 (/root/.pyenv/versions/3.11.7/bin/python3.11)`.
- ``signal``   `Signal 11: core.1234` (``--core``).
- ``thread``   `Thread 12466 (idle): "MainThread"` / `Thread 0x7F1A2B3C4700 (active)` → a thread;
  next: ``frame``.
- ``frame``    `    Thread.join (threading.py:1119)` / `    pthread_mutex_lock (libc.so.6)`
  → next: ``frame``, ``args``/``locals``, ``thread``, ``process``.
- ``args`` / ``locals``  `        Arguments:` / `        Locals:` → next: ``local``.
- ``local``    `            ledger_lock: <_thread.lock at 0x7f921f5db700>`.
- ``separator`` a line of dashes between subprocess sections; ``blank``.
Anything else is counted as unrecognised, with samples.

Ids: `dump` = ``"{source}#{pid}"`` (``"{source}#{n}"`` when the header is missing); `tid` is
py-spy's thread id when decimal (the OS TID on Linux), else the hex value goes to
`thread_ident`. py-spy prints no capture time: `captured_at` is what the caller passes (for
example the file's mtime or an order it knows), else null.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from datetime import datetime
from pathlib import Path

import polars as pl

from analyzer.clip import SAMPLE_CHARS, clip
from analyzer.sources.checked import Rejects, integer, string
from analyzer.sources.lines import Lines, read_lines
from analyzer.sources.procfs import PROCESSES
from analyzer.sources.stack_rules import NATIVE_FUNCTION
from analyzer.sources.stacks import DumpFrames, finish, norm_ident, raw_frames, raw_threads

TOOL = "py-spy"
TOOL_JSON = "py-spy-json"

# `Process 12466: /work/main/.venv/bin/python3 /work/main/.venv/bin/celery -A proj worker …`
PROCESS_RE = r"^Process (\d+): (.*)$"
# `Parent Process 12464: /work/main/.venv/bin/python3 …` (--subprocesses)
PARENT_RE = r"^Parent Process (\d+): (.*)$"
# the node name a worker was started with, in that command line: `… worker … -n w1@sample …` /
# `--hostname=w1@%h`; a `%` pattern is expanded by Celery at start-up, so it names no node here
NODE_IN_CMDLINE_RE = r"\s(?:-n|--hostname)(?:\s+|=)([^\s%]+@[^\s%]+)(?:\s|$)"
# `Python v3.11.7 (/root/.pyenv/versions/3.11.7/bin/python3.11)`
PYTHON_RE = r"^Python v(\S+) \((.*)\)$"
# `Signal 11: /tmp/core.1234` (py-spy dump --core)
SIGNAL_RE = r"^Signal (\d+): (.*)$"
# `Thread 12466 (idle): "MainThread"` / `Thread 0x7F1A2B3C4700 (active+gil)` / core: `Thread 12 (gil)`
THREAD_RE = r'^Thread (\d+|0x[0-9A-Fa-f]+)(?: \((idle|active|active\+gil|gil)\))?(?:: "(.*)")?$'
# `    _install_stack_protection.<locals>.__protected_call__ (celery/app/trace.py:883)`
# `    0x7f84338a3f16 (libc.so.6)` / `    hold_then_take (deadlock.c:16)`
FRAME_RE = r"^ {4}(\S.*) \(([^()]*?)(?::(\d+))?\)$"
# `        Arguments:` / `        Locals:`
ARGS_LINE = "        Arguments:"
LOCALS_LINE = "        Locals:"
# `            ledger_lock: <_thread.lock at 0x7f921f5db700>`
LOCAL_RE = r"^ {12}([^:\s][^:]*): (.*)$"
SEPARATOR_RE = r"^[-─━]{10,}$"
SHAPES = ("blank", "frame", "local", "args", "locals", "thread", "process", "python", "parent", "signal",
          "separator", "unknown")
SHAPE_ENUM = pl.Enum(SHAPES)

SAMPLES = [
    "samples/deadlock-lock/pyspy-12466.txt",
    "samples/deadlock-lock/pyspy-locals.txt",
    "samples/deadlock-pthread/pyspy-native.txt",
    "samples/deadlock-lock/pyspy.json",
]
SAMPLE_LIMIT = 5

_SNIFF_TEXT = re.compile(r"^(?:Signal \d+: .*\n)?Process \d+: .*\nPython v\d", re.M)
_SNIFF_THREAD = re.compile(r'^Thread (?:\d+|0x[0-9A-F]+) \((?:idle|active|active\+gil|gil)\)', re.M)
_SNIFF_JSON = re.compile(r'^\s*\[\s*\{\s*"pid":\s*\d+,\s*"thread_id":', re.S)


def sniff(head: str) -> bool:
    """True for py-spy text dumps (same test as `analyzer.sniff` kind ``pyspy``)."""
    return bool(_SNIFF_TEXT.search(head) or _SNIFF_THREAD.search(head))


def sniff_json(head: str) -> bool:
    """True for ``py-spy dump --json`` (kind ``pyspy_json``)."""
    return bool(_SNIFF_JSON.search(head))


def _shape(text: pl.Expr) -> pl.Expr:
    """Line shape by prefix only (cheap); the regex of the shape is applied when its fields are
    extracted, and a line whose extraction fails is turned back into ``unknown``."""
    sp4 = text.str.starts_with("    ")
    return (
        pl.when(text.str.strip_chars() == "").then(pl.lit("blank"))
        .when(sp4 & ~text.str.starts_with("     ") & text.str.ends_with(")")).then(pl.lit("frame"))
        .when(text.str.starts_with(" " * 12)).then(pl.lit("local"))
        .when(text == ARGS_LINE).then(pl.lit("args"))
        .when(text == LOCALS_LINE).then(pl.lit("locals"))
        .when(text.str.starts_with("Thread ")).then(pl.lit("thread"))
        .when(text.str.starts_with("Process ") & text.str.contains(PROCESS_RE)).then(pl.lit("process"))
        .when(text.str.starts_with("Python v") & text.str.contains(PYTHON_RE)).then(pl.lit("python"))
        .when(text.str.starts_with("Parent Process ") & text.str.contains(PARENT_RE)).then(pl.lit("parent"))
        .when(text.str.starts_with("Signal ") & text.str.contains(SIGNAL_RE)).then(pl.lit("signal"))
        .when(text.str.contains(SEPARATOR_RE)).then(pl.lit("separator"))
        .otherwise(pl.lit("unknown"))
    )


def _validate(df: pl.DataFrame) -> pl.DataFrame:
    """Shapes chosen by prefix whose regex does not match become ``unknown``."""
    k, text = pl.col("k"), pl.col("text")
    bad = ((k == "frame") & ~text.str.contains(FRAME_RE)) | ((k == "thread") & ~text.str.contains(THREAD_RE)) \
        | ((k == "local") & ~text.str.contains(LOCAL_RE))
    return df.with_columns(pl.when(bad).then(pl.lit("unknown")).otherwise(k).alias("k"))


def _frame_fields(u: pl.DataFrame) -> list[pl.Expr]:
    """FRAME_RE's groups by plain string operations (regex captures cost ~10x more in bulk):
    `    Thread.join (threading.py:1119)` → function, then `threading.py:1119` split at ':'."""
    is_frame = pl.col("k") == "frame"
    loc = pl.col("text").str.split(" (").list.last()
    where = loc.str.strip_suffix(")").str.split_exact(":", 1)
    fline = where.struct.field("field_1").cast(pl.Int64, strict=False)
    function = pl.col("text").str.slice(4).str.strip_suffix(pl.concat_str(pl.lit(" ("), loc))
    file = pl.when(fline.is_not_null()).then(where.struct.field("field_0")).otherwise(loc.str.strip_suffix(")"))
    return [pl.when(is_frame).then(function).alias("function"), pl.when(is_frame).then(file).alias("file"),
            pl.when(is_frame).then(fline).alias("fline")]


def _json_str(col: pl.Expr) -> pl.Expr:
    """A JSON string literal of each value (through polars' struct encoder)."""
    return pl.struct(col.alias("k")).struct.json_encode().str.slice(5).str.strip_suffix("}")


def parse_lines(lines: Lines, *, source: str, captured_at: datetime | None = None,
                host: str | None = None) -> DumpFrames:
    """Raw threads/frames of one py-spy text artifact (call `finish` for the public frames)."""
    df = lines.frame.select(pl.lit(source).alias("source"), "line", "text")
    return parse_frame(df, captured_at=captured_at, host=host)


def parse_frame(df: pl.DataFrame, *, captured_at: datetime | None = None, host: str | None = None) -> DumpFrames:
    """Raw rows of py-spy text given as a frame of `source`, `line`, `text` (one or many files).

    Rows of one source must be contiguous and in line order (line 1 first). Everything is a
    global forward fill or cumulative sum over row numbers, checked against the row number
    where the row's source starts, so no window function per source is needed.
    """
    # Dumps repeat themselves (a pool's threads share most frames), so shapes and frame fields
    # are computed once per distinct line text and joined back.
    uniq = _validate(df.select("text").unique().with_columns(_shape(pl.col("text")).alias("k")))
    uniq = uniq.with_columns(*_frame_fields(uniq), pl.col("k").cast(SHAPE_ENUM))
    has_locals = bool(uniq.select((pl.col("k") == "local").any()).item())
    has_parents = bool(uniq.select((pl.col("k") == "parent").any()).item())
    df = df.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_g")).join(
        uniq, on="text", how="left", maintain_order="left")
    g = pl.col("_g")
    is_ = {k: pl.col("k") == k for k in ("process", "thread", "frame", "local", "args", "locals")}
    fc = is_["frame"].cast(pl.Int64).cum_sum()
    local_cols = [
        pl.when(is_["frame"]).then(g).forward_fill().alias("_frm_g"),
        pl.when(is_["args"] | is_["locals"]).then(g).forward_fill().alias("_sect_g"),
    ] if has_locals else [pl.lit(None, dtype=pl.Int64).alias("_frm_g"), pl.lit(None, dtype=pl.Int64).alias("_sect_g")]
    df = df.with_columns(
        pl.when(pl.col("line") == 1).then(g).forward_fill().alias("_src_g"),
        pl.when(is_["process"]).then(g).forward_fill().alias("_proc_g"),
        pl.when(is_["thread"]).then(g).forward_fill().alias("_thr_g"),
        *local_cols,
        fc.alias("_fc"),
        pl.when(is_["thread"]).then(fc).forward_fill().alias("_fc_thr"),
    )
    src_start = pl.col("_src_g").fill_null(0)
    df = df.with_columns(
        pl.when(pl.col("_proc_g") >= src_start).then(pl.col("_proc_g")).alias("_proc_g"),
        pl.when(pl.col("_thr_g") >= src_start).then(pl.col("_thr_g")).alias("_thr_g"),
    )
    proc = df.filter(is_["process"]).select(
        pl.col("_g").alias("_proc_g"),
        pl.col("text").str.extract(PROCESS_RE, 1).cast(pl.Int64, strict=False).alias("pid"),  # null past Int64
        pl.col("text").str.extract(NODE_IN_CMDLINE_RE, 1).alias("_node"))
    parents = _parents(df, proc) if has_parents else pl.DataFrame()

    # a thread belongs to the latest process header above it in the same source (if any)
    thr = df.filter(is_["thread"])
    caps = pl.col("text").str.extract_groups(THREAD_RE)
    thr = thr.with_columns(
        caps.struct.field("1").alias("_id"), caps.struct.field("2").alias("status"),
        caps.struct.field("3").alias("name"),
    ).join(proc, on="_proc_g", how="left")
    src = pl.col("source")
    section = pl.when(pl.col("_proc_g").is_not_null()).then(pl.col("_proc_g")).otherwise(pl.lit(0)).cast(pl.String)
    dump = pl.concat_str(src, pl.lit("#"), pl.coalesce(pl.col("pid").cast(pl.String), section))
    is_hex = pl.col("_id").str.starts_with("0x")
    threads = thr.select(
        dump.alias("dump"), src, pl.col("line"), pl.lit(TOOL).alias("tool"),
        pl.lit(captured_at, dtype=pl.Datetime("ms")).alias("captured_at"),
        pl.coalesce(pl.lit(host, dtype=pl.String), pl.col("_node")).alias("host"), pl.col("pid"),
        pl.when(~is_hex).then(pl.col("_id").cast(pl.Int64, strict=False)).alias("tid"),
        pl.when(is_hex).then(pl.col("_id").str.to_lowercase().str.replace(r"^0x0*", "0x")).alias("thread_ident"),
        pl.col("name"), pl.col("status"),
        pl.concat_str(src, pl.lit(":"), pl.col("line").cast(pl.String)).alias("thread_key"),
        pl.col("_g").alias("_thr_g"),
    )

    # frames: after a thread header of the same section
    in_thread = pl.col("_thr_g").is_not_null() & (pl.col("_thr_g") > pl.col("_proc_g").fill_null(-1))
    fr = df.filter(is_["frame"] & in_thread)
    fr = fr.with_columns((pl.col("_fc") - pl.col("_fc_thr").fill_null(0) - 1).alias("depth"))
    # locals / arguments attach to the frame above them
    loc = df.filter(is_["local"] & in_thread & (pl.col("_frm_g") > pl.col("_thr_g"))
                    & pl.col("_sect_g").is_not_null() & (pl.col("_sect_g") > pl.col("_frm_g")))
    if loc.height:
        lcaps = pl.col("text").str.extract_groups(LOCAL_RE)
        loc = loc.with_columns(lcaps.struct.field("1").alias("_n"), lcaps.struct.field("2").alias("_v"))
        kv = pl.concat_str(_json_str(pl.col("_n")), pl.lit(":"), _json_str(pl.col("_v")))
        loc = loc.with_columns(kv.alias("_kv"))
        lj = loc.group_by("_frm_g").agg(
            pl.concat_str(pl.lit("{"), pl.col("_kv").sort_by("_g").str.join(","), pl.lit("}")).alias("locals"))
        fr = fr.join(lj.rename({"_frm_g": "_g"}), on="_g", how="left", maintain_order="left")
    else:
        fr = fr.with_columns(pl.lit(None, dtype=pl.String).alias("locals"))
    fr = fr.drop("source").join(threads.select("_thr_g", "dump", "source", "pid", "tid", "thread_key"),
                                on="_thr_g", how="left", maintain_order="left")
    frames = fr.select(
        "dump", "source", pl.col("line").alias("src_line"), "pid", "tid", "depth",
        "function", "file", pl.col("fline").alias("line"),
        pl.lit(None, dtype=pl.Boolean).alias("native"),  # decided per distinct frame by `finish`
        pl.lit(None, dtype=pl.String).alias("code"), "locals", "thread_key",
    )
    threads = threads.drop("_thr_g")

    # coverage: unknown lines, and locals lines that had no frame to go to
    orphan_local = (is_["local"] | is_["args"] | is_["locals"] | is_["frame"]) & ~in_thread
    unrec = df.filter((pl.col("k") == "unknown") | orphan_local)
    out = DumpFrames(threads, frames, lines=df.height, unrecognized=unrec.height)
    if parents.height:
        out.extra["processes"] = parents
    out.parsed = out.lines - out.unrecognized
    out.samples = [(int(a), clip(str(b), SAMPLE_CHARS))
                   for a, b in unrec.head(SAMPLE_LIMIT).select("line", "text").rows()]
    if threads.is_empty() and df.height:
        out.notes.append("no py-spy thread header found")
    empty_threads = threads.join(frames.group_by("thread_key").len(), on="thread_key", how="anti")
    if empty_threads.height:
        out.notes.append(f"{empty_threads.height} thread(s) without frames (truncated dump?), first at line "
                         f"{empty_threads.sort('line')['line'][0]}")
    return out


def _parents(df: pl.DataFrame, proc: pl.DataFrame) -> pl.DataFrame:
    """`processes` rows of the sections a ``Parent Process`` line names the parent of."""
    par = df.filter((pl.col("k") == "parent") & pl.col("_proc_g").is_not_null())
    if par.is_empty():
        return pl.DataFrame(schema=PROCESSES)
    heads = df.filter(pl.col("k") == "process").select("_g", pl.col("text").str.extract(PROCESS_RE, 2).alias("cmd"))
    par = par.join(proc, on="_proc_g", how="inner").join(heads.rename({"_g": "_proc_g"}), on="_proc_g", how="left")
    rows = par.select(
        "source", "line", pl.lit(TOOL).alias("tool"), "pid",
        pl.col("text").str.extract(PARENT_RE, 1).cast(pl.Int64, strict=False).alias("ppid"), "cmd")
    return pl.concat([pl.DataFrame(schema=PROCESSES), rows], how="diagonal_relaxed").select(list(PROCESSES))


def parse_many(dumps: list[tuple[str, bytes]], *, captured_at: datetime | None = None
               ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Many py-spy text dumps (source name, bytes) in one vectorised pass → (threads, frames).

    Buckets are numbered across all of them. Coverage is not reported per dump here; use
    `parse_lines` per member for that.
    """
    if not dumps:
        return finish(DumpFrames(pl.DataFrame(), pl.DataFrame()))
    # one read for all: join the texts (each ends with a newline) and label rows by line counts
    blobs = [d if d.endswith(b"\n") else d + b"\n" for _, d in dumps]
    counts = [b.count(b"\n") for b in blobs]
    lines = read_lines(b"".join(blobs)).frame
    names = pl.Series("source", [n for n, _ in dumps], dtype=pl.String)
    src = names.to_frame().with_columns(pl.Series("_n", counts)).select(
        pl.col("source").repeat_by("_n").explode())
    starts = pl.Series("_start", [0, *counts[:-1]]).cum_sum()
    first = starts.to_frame().select(pl.col("_start").repeat_by(pl.Series(counts)).explode())
    df = pl.DataFrame({"source": src["source"], "text": lines["text"]}).with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) - first["_start"] + 1).alias("line"))
    raw = parse_frame(df.select("source", "line", "text"), captured_at=captured_at)
    return finish(raw)


def parse_text(text: str | bytes, *, source: str, captured_at: datetime | None = None,
               host: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame, DumpFrames]:
    """Parse py-spy text; returns (threads, frames, raw result with coverage facts)."""
    data = text.encode() if isinstance(text, str) else text
    raw = parse_lines(read_lines(data), source=source, captured_at=captured_at, host=host)
    threads, frames = finish(raw)
    return threads, frames, raw


# --- JSON --------------------------------------------------------------------------------------
# `    "thread_id": 140265557706432,` — the line of each StackTrace object (`[ \t]*`, not `\s*`: with
# re.M, `^\s*` runs over every following blank line from every line start, quadratic in a run of them)
JSON_THREAD_KEY = re.compile(r'^[ \t]*"thread_id":', re.M)
# `        "filename": "/tmp/cpm-deadlock-lock-_venn5jx/proj.py",` — the line of each frame object
JSON_FRAME_KEY = re.compile(r'^[ \t]*"filename":', re.M)


def _decode_array(text: str) -> tuple[list[dict[str, object]], str | None, int]:
    """Decode a JSON array element by element, keeping what parsed before a truncation; also
    the number of elements that were not objects (skipped)."""
    dec = json.JSONDecoder()
    items: list[dict[str, object]] = []
    skipped = 0
    i = text.find("[")
    if i < 0:
        return items, "no JSON array", skipped
    i += 1
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            return items, "JSON array not closed (truncated)", skipped
        if text[i] == "]":
            return items, None, skipped
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            return items, f"JSON stops parsing at char {exc.pos}: {exc.msg} (truncated?)", skipped
        except (RecursionError, ValueError):  # too deep; an int past the digit limit
            return items, f"JSON not readable after char {i} (nested too deeply or a number too long)", skipped
        if isinstance(obj, dict):
            items.append(obj)
        else:
            skipped += 1


def parse_json(text: str | bytes, *, source: str, captured_at: datetime | None = None,
               host: str | None = None) -> DumpFrames:
    """Raw threads/frames of ``py-spy dump --json`` (an array of StackTrace objects).

    Each thread and frame is checked on its own (`analyzer.sources.checked`): a value that does
    not fit its column (`"pid": "x"`, `"line": 1e20`, a list for a name) is left empty and named
    in one note, and the other threads of the file are kept.
    """
    s = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    items, problem, skipped = _decode_array(s)
    nl = [m.start() for m in re.finditer("\n", s)]

    def line_of(pos: int) -> int:
        return bisect_right(nl, pos - 1) + 1

    t_lines = [line_of(m.start()) for m in JSON_THREAD_KEY.finditer(s)]
    f_lines = [line_of(m.start()) for m in JSON_FRAME_KEY.finditer(s)]
    rej = Rejects()
    trows: list[dict[str, object]] = []
    frows: list[dict[str, object]] = []
    fi = 0
    for ti, st in enumerate(items):
        tline = t_lines[ti] if ti < len(t_lines) else None
        row = _json_thread(st, source, tline, ti, rej, captured_at, host)
        trows.append(row)
        frames = st.get("frames")
        if frames is not None and not isinstance(frames, list):
            rej.add(f"thread {row['thread_key']}", "frames", frames, "not a list")
        for depth, fr in enumerate(frames if isinstance(frames, list) else []):
            if not isinstance(fr, dict):
                rej.add(f"thread {row['thread_key']}", f"frames[{depth}]", fr, "not an object")
                continue
            frows.append(_json_frame(fr, row, depth, f_lines[fi] if fi < len(f_lines) else None, rej))
            fi += 1
    n_lines = s.count("\n") + (0 if s.endswith("\n") or not s else 1)
    out = DumpFrames(raw_threads(trows),
                     raw_frames(frows), lines=n_lines, parsed=n_lines)
    if problem:
        ok_upto = t_lines[len(items)] - 1 if len(items) < len(t_lines) else n_lines
        out.parsed = min(n_lines, max(ok_upto, 0))
        out.unrecognized = n_lines - out.parsed
        out.notes.append(f"{problem}; kept {len(items)} complete thread(s)")
    if skipped:
        out.notes.append(f"{skipped} element(s) of the array are not objects (skipped)")
    if (note := rej.note()) is not None:
        out.notes.append(note)
    return out


def _json_thread(st: dict[str, object], source: str, tline: int | None, ti: int, rej: Rejects,
                 captured_at: datetime | None, host: str | None) -> dict[str, object]:
    """A raw `threads` row of one StackTrace object; bad values are left empty, noted in `rej`."""
    key = f"{source}:{tline}" if tline is not None else f"{source}:#{ti}"
    where = f"thread {key}"
    pid = integer(st.get("pid"), where, "pid", rej)
    os_tid = st.get("os_thread_id")
    thread_id = st.get("thread_id")
    tid = integer(os_tid, where, "os_thread_id", rej) if isinstance(os_tid, int) else None
    return {
        "dump": f"{source}#{pid}", "source": source, "line": tline, "tool": TOOL_JSON, "captured_at": captured_at,
        "host": host, "pid": pid, "tid": tid,
        "thread_ident": norm_ident(thread_id) if isinstance(thread_id, int) and not isinstance(thread_id, bool)
        and 0 <= thread_id < (1 << 64) else None,
        "name": string(st.get("thread_name"), where, "thread_name", rej),
        "status": ("active+gil" if st.get("owns_gil") else "active") if st.get("active") else "idle",
        "thread_key": key,
    }


def _json_frame(fr: dict[str, object], thread: dict[str, object], depth: int, src_line: int | None,
                rej: Rejects) -> dict[str, object]:
    """A raw `frames` row of one frame object of `thread`'s row."""
    where = f"thread {thread['thread_key']} frame {depth}"
    loc = fr.get("locals")
    locals_s = None
    if isinstance(loc, list) and loc:
        try:
            locals_s = json.dumps({str(v.get("name")): v.get("repr") for v in loc if isinstance(v, dict)},
                                  ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            rej.add(where, "locals", loc, "not name/repr pairs")
    line_no = integer(fr.get("line"), where, "line", rej)
    name = string(fr.get("name"), where, "name", rej) or "?"
    file = string(fr.get("filename"), where, "filename", rej) or string(fr.get("short_filename"), where,
                                                                           "short_filename", rej)
    return {
        "dump": thread["dump"], "source": thread["source"], "src_line": src_line, "pid": thread["pid"],
        "tid": thread["tid"], "depth": depth, "function": name, "file": file,
        "line": line_no if line_no is not None and line_no > 0 else None,
        "native": bool(fr.get("module")) or bool(re.match(NATIVE_FUNCTION, name)),
        "code": None, "locals": locals_s, "thread_key": thread["thread_key"],
    }


def read_json(data: bytes | Path) -> str:
    raw = data if isinstance(data, bytes) else Path(data).read_bytes()
    return raw.decode("utf-8", errors="replace")
