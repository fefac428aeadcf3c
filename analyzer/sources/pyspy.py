"""py-spy ``dump`` output (text, ``--locals``, ``--native``, ``--json``) → `threads` and `frames`.

FORMATS.md D.1/D.2. The text form is parsed in bulk: every line gets a shape by prefix and
regex (polars), then cumulative sums number process sections, threads and frames, so no Python
loop runs per line. Line shapes (the states of the implied machine), with real samples from
``samples/deadlock-lock`` and ``samples/deadlock-pthread``:

- ``process``  `Process 12466: /work/main/.venv/bin/python3 /work/main/.venv/bin/celery -A proj …`
  → starts a dump (section); next: ``python`` / ``parent`` / ``blank``.
- ``parent``   `Parent Process 12464: …` (``--subprocesses``).
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

from analyzer.analyses.stack_rules import NATIVE_FILE, NATIVE_FUNCTION
from analyzer.analyses.threads import DumpFrames, finish, norm_ident, raw_frames, raw_threads
from analyzer.sources.lines import Lines, read_lines

TOOL = "py-spy"
TOOL_JSON = "py-spy-json"

# `Process 12466: /work/main/.venv/bin/python3 /work/main/.venv/bin/celery -A proj worker …`
PROCESS_RE = r"^Process (\d+): (.*)$"
# `Parent Process 12464: /work/main/.venv/bin/python3 …` (--subprocesses)
PARENT_RE = r"^Parent Process (\d+): (.*)$"
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
    return (
        pl.when(text.str.strip_chars() == "").then(pl.lit("blank"))
        .when(text.str.starts_with("    ") & ~text.str.starts_with("     ") & text.str.contains(FRAME_RE))
        .then(pl.lit("frame"))
        .when(text.str.starts_with(" " * 12) & text.str.contains(LOCAL_RE)).then(pl.lit("local"))
        .when(text == ARGS_LINE).then(pl.lit("args"))
        .when(text == LOCALS_LINE).then(pl.lit("locals"))
        .when(text.str.starts_with("Thread ") & text.str.contains(THREAD_RE)).then(pl.lit("thread"))
        .when(text.str.starts_with("Process ") & text.str.contains(PROCESS_RE)).then(pl.lit("process"))
        .when(text.str.starts_with("Python v") & text.str.contains(PYTHON_RE)).then(pl.lit("python"))
        .when(text.str.starts_with("Parent Process ") & text.str.contains(PARENT_RE)).then(pl.lit("parent"))
        .when(text.str.starts_with("Signal ") & text.str.contains(SIGNAL_RE)).then(pl.lit("signal"))
        .when(text.str.contains(SEPARATOR_RE)).then(pl.lit("separator"))
        .otherwise(pl.lit("unknown"))
    )


def _json_str(col: pl.Expr) -> pl.Expr:
    """A JSON string literal of each value (through polars' struct encoder)."""
    return pl.struct(col.alias("k")).struct.json_encode().str.slice(5).str.strip_suffix("}")


def parse_lines(lines: Lines, *, source: str, captured_at: datetime | None = None,
                host: str | None = None) -> DumpFrames:
    """Raw threads/frames of one py-spy text artifact (call `finish` for the public frames)."""
    df = lines.frame.select("line", "text").with_columns(_shape(pl.col("text")).alias("k"))
    line = pl.col("line")
    is_ = {k: pl.col("k") == k for k in ("process", "thread", "frame", "local", "args", "locals")}
    df = df.with_columns(
        pl.when(is_["process"]).then(line).forward_fill().alias("_proc_line"),
        pl.when(is_["thread"]).then(line).forward_fill().alias("_thr_line"),
        pl.when(is_["frame"]).then(line).forward_fill().alias("_frm_line"),
        pl.when(is_["args"] | is_["locals"]).then(pl.col("k")).forward_fill().alias("_sect"),
        pl.when(is_["args"] | is_["locals"] | is_["frame"]).then(line).forward_fill().alias("_sect_line"),
        pl.col("k").is_in(["process"]).cast(pl.Int64).cum_sum().alias("_section"),
    )
    proc = df.filter(is_["process"]).with_columns(
        pl.col("text").str.extract(PROCESS_RE, 1).cast(pl.Int64).alias("pid"),
        pl.col("text").str.extract(PROCESS_RE, 2).alias("cmdline"),
    ).select(pl.col("line").alias("_proc_line"), "pid", "cmdline")

    # a thread belongs to the latest process header above it (if any)
    thr = df.filter(is_["thread"])
    caps = pl.col("text").str.extract_groups(THREAD_RE)
    thr = thr.with_columns(
        caps.struct.field("1").alias("_id"), caps.struct.field("2").alias("status"),
        caps.struct.field("3").alias("name"),
    ).join(proc, on="_proc_line", how="left")
    dump = pl.when(pl.col("pid").is_not_null()).then(
        pl.concat_str(pl.lit(source + "#"), pl.col("pid").cast(pl.String))
    ).otherwise(pl.concat_str(pl.lit(source + "#"), pl.col("_section").cast(pl.String)))
    is_hex = pl.col("_id").str.starts_with("0x")
    threads = thr.select(
        dump.alias("dump"), pl.lit(source).alias("source"), pl.col("line"), pl.lit(TOOL).alias("tool"),
        pl.lit(captured_at, dtype=pl.Datetime("ms")).alias("captured_at"),
        pl.lit(host, dtype=pl.String).alias("host"), pl.col("pid"),
        pl.when(~is_hex).then(pl.col("_id").cast(pl.Int64, strict=False)).alias("tid"),
        pl.when(is_hex).then(pl.col("_id").str.to_lowercase().str.replace(r"^0x0*", "0x")).alias("thread_ident"),
        pl.col("name"), pl.col("status"),
        pl.concat_str(pl.lit(source + ":"), pl.col("line").cast(pl.String)).alias("thread_key"),
    )

    # frames: after a thread header of the same section
    in_thread = pl.col("_thr_line").is_not_null() & (pl.col("_thr_line") > pl.col("_proc_line").fill_null(0))
    fr = df.filter(is_["frame"] & in_thread)
    fcaps = pl.col("text").str.extract_groups(FRAME_RE)
    fr = fr.with_columns(
        fcaps.struct.field("1").alias("function"), fcaps.struct.field("2").alias("file"),
        fcaps.struct.field("3").cast(pl.Int64).alias("fline"),
    )
    # locals / arguments attach to the frame above them
    loc = df.filter(is_["local"] & in_thread & (pl.col("_frm_line") > pl.col("_thr_line"))
                    & pl.col("_sect").is_not_null() & (pl.col("_sect_line") > pl.col("_frm_line")))
    if loc.height:
        lcaps = pl.col("text").str.extract_groups(LOCAL_RE)
        loc = loc.with_columns(lcaps.struct.field("1").alias("_n"), lcaps.struct.field("2").alias("_v"))
        kv = pl.concat_str(_json_str(pl.col("_n")), pl.lit(":"), _json_str(pl.col("_v")))
        loc = loc.with_columns(kv.alias("_kv"))
        lj = loc.group_by("_frm_line").agg(
            pl.concat_str(pl.lit("{"), pl.col("_kv").sort_by("line").str.join(","), pl.lit("}")).alias("locals"))
        fr = fr.join(lj.rename({"_frm_line": "line"}), on="line", how="left")
    else:
        fr = fr.with_columns(pl.lit(None, dtype=pl.String).alias("locals"))
    fr = fr.join(threads.select(pl.col("line").alias("_thr_line"), "dump", "pid", "tid", "thread_key"),
                 on="_thr_line", how="left")
    frames = fr.sort("line").select(
        "dump", pl.lit(source).alias("source"), pl.col("line").alias("src_line"), "pid", "tid",
        pl.int_range(pl.len(), dtype=pl.Int64).over("thread_key").alias("depth"),
        "function", "file", pl.col("fline").alias("line"),
        (pl.col("file").str.contains(NATIVE_FILE) | pl.col("function").str.contains(NATIVE_FUNCTION)).alias("native"),
        pl.lit(None, dtype=pl.String).alias("code"), "locals", "thread_key",
    )

    # coverage: unknown lines, and locals lines that had no frame to go to
    orphan_local = (is_["local"] | is_["args"] | is_["locals"] | is_["frame"]) & ~in_thread
    unrec = df.filter((pl.col("k") == "unknown") | orphan_local)
    out = DumpFrames(threads, frames, lines=df.height, unrecognized=unrec.height)
    out.parsed = out.lines - out.unrecognized
    out.samples = [(int(a), str(b)[:300]) for a, b in unrec.head(SAMPLE_LIMIT).select("line", "text").rows()]
    if threads.is_empty() and df.height:
        out.notes.append("no py-spy thread header found")
    empty_threads = threads.join(frames.group_by("thread_key").len(), on="thread_key", how="anti")
    if empty_threads.height:
        out.notes.append(f"{empty_threads.height} thread(s) without frames (truncated dump?), first at line "
                         f"{empty_threads.sort('line')['line'][0]}")
    return out


def parse_text(text: str | bytes, *, source: str, captured_at: datetime | None = None,
               host: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame, DumpFrames]:
    """Parse py-spy text; returns (threads, frames, raw result with coverage facts)."""
    data = text.encode() if isinstance(text, str) else text
    raw = parse_lines(read_lines(data), source=source, captured_at=captured_at, host=host)
    threads, frames = finish(raw)
    return threads, frames, raw


# --- JSON --------------------------------------------------------------------------------------
# `    "thread_id": 140265557706432,` — the line of each StackTrace object
JSON_THREAD_KEY = re.compile(r'^\s*"thread_id":', re.M)
# `        "filename": "/tmp/cpm-deadlock-lock-_venn5jx/proj.py",` — the line of each frame object
JSON_FRAME_KEY = re.compile(r'^\s*"filename":', re.M)


def _decode_array(text: str) -> tuple[list[dict[str, object]], str | None]:
    """Decode a JSON array element by element, keeping what parsed before a truncation."""
    dec = json.JSONDecoder()
    items: list[dict[str, object]] = []
    i = text.find("[")
    if i < 0:
        return items, "no JSON array"
    i += 1
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n:
            return items, "JSON array not closed (truncated)"
        if text[i] == "]":
            return items, None
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            return items, f"JSON stops parsing at char {exc.pos}: {exc.msg} (truncated?)"
        if isinstance(obj, dict):
            items.append(obj)


def parse_json(text: str | bytes, *, source: str, captured_at: datetime | None = None,
               host: str | None = None) -> DumpFrames:
    """Raw threads/frames of ``py-spy dump --json`` (an array of StackTrace objects)."""
    s = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    items, problem = _decode_array(s)
    nl = [m.start() for m in re.finditer("\n", s)]

    def line_of(pos: int) -> int:
        return bisect_right(nl, pos - 1) + 1

    t_lines = [line_of(m.start()) for m in JSON_THREAD_KEY.finditer(s)]
    f_lines = [line_of(m.start()) for m in JSON_FRAME_KEY.finditer(s)]
    trows: list[dict[str, object]] = []
    frows: list[dict[str, object]] = []
    fi = 0
    for ti, st in enumerate(items):
        pid = st.get("pid")
        tline = t_lines[ti] if ti < len(t_lines) else None
        key = f"{source}:{tline}" if tline is not None else f"{source}:#{ti}"
        dump = f"{source}#{pid}"
        os_tid = st.get("os_thread_id")
        tid = os_tid if isinstance(os_tid, int) else None
        thread_id = st.get("thread_id")
        trows.append({
            "dump": dump, "source": source, "line": tline, "tool": TOOL_JSON, "captured_at": captured_at,
            "host": host, "pid": pid, "tid": tid,
            "thread_ident": norm_ident(thread_id) if isinstance(thread_id, int) else None,
            "name": st.get("thread_name"),
            "status": ("active+gil" if st.get("owns_gil") else "active") if st.get("active") else "idle",
            "thread_key": key,
        })
        frames = st.get("frames")
        for depth, fr in enumerate(frames if isinstance(frames, list) else []):
            if not isinstance(fr, dict):
                continue
            loc = fr.get("locals")
            locals_s = None
            if isinstance(loc, list) and loc:
                locals_s = json.dumps({str(v.get("name")): v.get("repr") for v in loc if isinstance(v, dict)},
                                      ensure_ascii=False)
            line_no = fr.get("line")
            module = fr.get("module")
            name = str(fr.get("name") or "?")
            frows.append({
                "dump": dump, "source": source, "src_line": f_lines[fi] if fi < len(f_lines) else None,
                "pid": pid, "tid": tid, "depth": depth, "function": name,
                "file": fr.get("filename") or fr.get("short_filename"),
                "line": line_no if isinstance(line_no, int) and line_no > 0 else None,
                "native": bool(module) or bool(re.match(NATIVE_FUNCTION, name)),
                "code": None, "locals": locals_s, "thread_key": key,
            })
            fi += 1
    n_lines = s.count("\n") + (0 if s.endswith("\n") or not s else 1)
    out = DumpFrames(raw_threads(trows),
                     raw_frames(frows), lines=n_lines, parsed=n_lines)
    if problem:
        ok_upto = t_lines[len(items)] - 1 if len(items) < len(t_lines) else n_lines
        out.parsed = min(n_lines, max(ok_upto, 0))
        out.unrecognized = n_lines - out.parsed
        out.notes.append(f"{problem}; kept {len(items)} complete thread(s)")
    return out


def read_json(data: bytes | Path) -> str:
    raw = data if isinstance(data, bytes) else Path(data).read_bytes()
    return raw.decode("utf-8", errors="replace")
