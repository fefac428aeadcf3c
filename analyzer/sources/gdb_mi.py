"""GDB/MI records and core files → `threads` and `frames`.

FORMATS.md D.6. Two entry points:

- `parse_records(text)`: a saved MI transcript (one record per line) read with
  `pygdbmi.gdbmiparser.parse_response`. A ``^done`` payload with ``threads`` (``-thread-info``)
  gives the threads; payloads with ``stack`` (``-stack-list-frames``) give their frames, matched
  by the record's token when it equals a thread id (what `analyze_core` writes), else in order;
  ``console`` records are concatenated and, when they hold ``thread apply all bt`` text, parsed
  with `analyzer.sources.gdb`. ``-data-evaluate-expression`` answers with a token equal to
  ``100000 + thread id`` are read as that thread's mutex ``__data.__owner``.
- `analyze_core(core, executable)`: drives gdb on a core file through
  `pygdbmi.gdbcontroller.GdbController` (`GDB_COMMAND`: no gdbinit, auto-load off, and no value
  from the bundle on the command line: nothing from the bundle runs), asks every thread's frames
  and, for threads stopped in ``pthread_mutex_lock``/``__lll_lock_wait``, evaluates
  ``((pthread_mutex_t*)ADDR)->__data.__owner`` for the waited mutex, then parses the transcript
  with `parse_records`. Without gdb on PATH it returns nothing but a coverage note saying what is
  missing and how to get it.

Sample MI lines (FORMATS D.6, observed with pygdbmi 0.11):
`^done,threads=[{id="1",target-id="Thread 0x7f… (LWP 10697)",frame={level="0",addr="0x…",func="futex_wait",…}}]`
`5^done,stack=[frame={level="0",addr="0x…",func="___pthread_mutex_lock",file="…",line="93"}]`
`~"Thread 2 (Thread 0x7febf64246c0 (LWP 10698)):\\n"`
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from analyzer.clip import SAMPLE_CHARS, clip
from analyzer.sources import checked
from analyzer.sources import gdb as gdb_text
from analyzer.sources.stack_rules import NATIVE_FILE
from analyzer.sources.stacks import DumpFrames, norm_ident, raw_frames, raw_threads

TOOL = "gdb-mi"
TOOL_CORE = "core"
OWNER_TOKEN = 100000  # token of `-data-evaluate-expression` = OWNER_TOKEN + gdb thread id
ARGS_TOKEN = 200000  # token of `-stack-list-arguments` = ARGS_TOKEN + gdb thread id

# `Thread 0x7febf64246c0 (LWP 10698)` / `LWP 10341` / `process 4242`
TARGET_ID_RE = re.compile(r"^(?:Thread (0x[0-9a-f]+) )?\(?(?:LWP|process) (\d+)\)?")
# `mutex=0x7f84314a0040 <mutex_a>` in a lock frame's args
MUTEX_ARG_RE = re.compile(r"(?:mutex|futex)=(?:\w+@entry=)?(0x[0-9a-f]+)")
LOCK_FUNCS = re.compile(r"(?:pthread_mutex_(?:timed)?lock|lll_lock_wait\w*|lll_mutex_lock\w*)$")
# `~"…"` / `^done,…` / `=thread-group-added,…` / `*stopped,…`
_SNIFF = re.compile(r'^(?:\d*\^(?:done|error|running)|=thread-group-added|~"|\*stopped)', re.M)

SAMPLES: list[str] = []  # no real MI transcript or core file is in samples/ yet


def sniff(head: str) -> bool:
    """True for GDB/MI transcripts (kind ``gdb_mi`` in `analyzer.sniff`)."""
    return bool(_SNIFF.search(head))


# an MI c-string (`"…"` with backslash escapes): alternatives that cannot overlap, so linear
_C_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")
_CLOSES = {"]": "[", "}": "{"}


def well_formed(line: str) -> bool:
    """Whether an MI record's strings close and its lists and tuples nest: pygdbmi's parser loops
    forever at the end of an unclosed list (`^done,threads=[`), so such a line never reaches it."""
    bare = _C_STRING.sub("", line)
    if '"' in bare:
        return False
    open_: list[str] = []
    for m in _BRACKET.finditer(bare):
        c = m.group()
        if c in "[{":
            open_.append(c)
        elif not open_ or open_.pop() != _CLOSES[c]:
            return False
    return not open_


def _args_text(args: Any) -> str | None:
    if isinstance(args, list):
        return ", ".join(f"{a.get('name')}={a.get('value')}" for a in args if isinstance(a, dict))
    return None


def parse_records(text: str, *, source: str, captured_at: datetime | None = None, host: str | None = None,
                  tool: str = TOOL, pid: int | None = None) -> DumpFrames:
    from pygdbmi.gdbmiparser import parse_response  # heavy import kept local (STYLE)

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    thread_list: list[tuple[int, dict[str, Any]]] = []
    stacks: list[tuple[int, int | None, list[dict[str, Any]]]] = []
    owners: dict[int, int] = {}
    stack_args: dict[int, dict[str, str | None]] = {}
    console: list[tuple[int, str]] = []
    n_unrec = 0
    samples: list[tuple[int, str]] = []
    for i, s in enumerate(lines, start=1):
        if not s.strip():
            continue
        try:
            rec = parse_response(s) if well_formed(s) else {"type": "output", "payload": s}
        except Exception:  # pygdbmi raises on malformed records; count the line, go on
            rec = {"type": "output", "payload": s}
        typ = rec.get("type")
        payload = rec.get("payload")
        token = rec.get("token")
        if typ == "result" and isinstance(payload, dict):
            if isinstance(payload.get("threads"), list):
                thread_list.extend((i, t) for t in payload["threads"] if isinstance(t, dict))
            elif isinstance(payload.get("stack"), list):
                frames = [f for f in payload["stack"] if isinstance(f, dict)]
                stacks.append((i, token if isinstance(token, int) else None, frames))
            elif isinstance(payload.get("stack-args"), list) and isinstance(token, int) and token >= ARGS_TOKEN:
                stack_args[token - ARGS_TOKEN] = {
                    str(a.get("level")): _args_text(a.get("args")) for a in payload["stack-args"]
                    if isinstance(a, dict)}
            elif "value" in payload and isinstance(token, int) and OWNER_TOKEN <= token < ARGS_TOKEN:
                owner = checked.int64(str(payload["value"]))
                if owner is not None:
                    owners[token - OWNER_TOKEN] = owner
            continue
        if typ in ("console", "log", "target"):
            if typ == "console" and isinstance(payload, str):
                console.append((i, payload))
            continue
        if typ in ("notify", "done", "result"):
            continue
        n_unrec += 1
        if len(samples) < 5:
            samples.append((i, clip(s, SAMPLE_CHARS)))

    trows: list[dict[str, Any]] = []
    frows: list[dict[str, Any]] = []
    by_id: dict[int, tuple[str, int | None]] = {}
    main_lwp = None
    for line_no, t in thread_list:
        m = TARGET_ID_RE.match(str(t.get("target-id", "")))
        lwp = checked.int64(m.group(2)) if m else None
        tnum = checked.int64(str(t.get("id")))
        if tnum is None:
            continue
        if tnum == 1:
            main_lwp = lwp
        key = f"{source}:{line_no}:{tnum}"
        by_id[tnum] = (key, lwp)
        trows.append({"source": source, "line": line_no, "tool": tool, "captured_at": captured_at, "host": host,
                      "tid": lwp, "thread_ident": norm_ident(m.group(1)) if m and m.group(1) else None,
                      "name": t.get("name"), "thread_key": key, "gdb_num": tnum,
                      "mutex_owner": owners.get(tnum)})
        # the current frame, in case no stack was listed for this thread
        fr = t.get("frame")
        if isinstance(fr, dict) and not any(tok == tnum for _, tok, _ in stacks):
            stacks.append((line_no, tnum, [fr]))
    the_pid = pid or main_lwp
    dump = f"{source}#{the_pid if the_pid is not None else 'mi'}"
    for r in trows:
        r["pid"] = the_pid
        r["dump"] = dump
    order = iter(sorted(by_id))
    for line_no, token, frames in stacks:
        picked = token if token in by_id else next(order, None)
        if picked is None or picked not in by_id:
            continue
        tnum = picked
        key, lwp = by_id[tnum]
        for f in frames:
            file = f.get("fullname") or f.get("file") or f.get("from")
            ln = f.get("line")
            frows.append({"dump": dump, "source": source, "src_line": line_no, "pid": the_pid, "tid": lwp,
                          "depth": checked.int64(str(f.get("level", 0))) or 0,
                          "function": f.get("func") or f.get("addr"), "file": file,
                          "line": checked.int64(ln) if isinstance(ln, str) else None,
                          "native": not (isinstance(file, str) and file.endswith(".py")
                                         and not re.search(NATIVE_FILE, file)),
                          "code": None, "locals": None, "thread_key": key,
                          "args": _args_text(f.get("args")) or stack_args.get(tnum, {}).get(str(f.get("level")))})
    out = DumpFrames(raw_threads(trows),
                     raw_frames(frows),
                     lines=len(lines), parsed=len(lines) - n_unrec, unrecognized=n_unrec, samples=samples)
    if not trows and console:
        # a transcript of `-interpreter-exec console "thread apply all bt"`: parse the CLI text
        cli = "".join(p for _, p in console)
        sub = gdb_text.parse(cli, source=source, captured_at=captured_at, host=host)
        sub.lines, sub.parsed, sub.unrecognized = out.lines, out.parsed, out.unrecognized
        sub.samples = samples
        sub.notes.append("threads read from console records (CLI `bt` text inside MI); line numbers are "
                         "those of the concatenated console text")
        return sub
    if not trows:
        out.notes.append("no -thread-info reply in the MI records")
    return out


def _has_gdb() -> bool:
    return shutil.which("gdb") is not None


def no_gdb_note(core: str) -> str:
    return (f"{core}: a core file, but gdb is not on PATH, so its threads, frames and mutex owners "
            "were not read. Install gdb (apt-get install gdb) and re-run, or run "
            "`gdb -batch -ex 'thread apply all bt' EXECUTABLE CORE > bt.txt` where gdb exists and add "
            "bt.txt to the bundle.")


# Fixed: no value from a bundle is ever an argument. `-nx`/`-nh` skip every gdbinit (system, home,
# current directory, which may be the bundle), `set auto-load off` keeps scripts beside the core's
# objects from running, debuginfod stays off (no network); files come in through MI commands.
GDB_COMMAND = ("gdb", "-nx", "-nh", "--quiet", "--interpreter=mi3", "-iex", "set auto-load off",
               "-iex", "set exec-file-mismatch off", "-iex", "set debuginfod enabled off",
               "-iex", "set pagination off", "-iex", "set confirm off")


PLAIN_PATH = re.compile(r"[\w/.-]+")  # an MI argument that needs no quoting (gdb unquotes few commands)


def _private_dir() -> tempfile.TemporaryDirectory[str]:
    """A folder of our own whose path is a plain MI argument (TMPDIR may hold spaces)."""
    tmp = tempfile.TemporaryDirectory(prefix="cpm-core-")
    if PLAIN_PATH.fullmatch(tmp.name):
        return tmp
    tmp.cleanup()
    return tempfile.TemporaryDirectory(prefix="cpm-core-", dir="/tmp")


def analyze_core(core: Path, executable: Path | None = None, *, source: str | None = None,
                 timeout: float = 60.0) -> tuple[DumpFrames, list[str]]:
    """Drive gdb on a core file; returns raw dump rows and notes (never raises on bad cores).

    Core and executable reach gdb as links of fixed names in a private folder, loaded with
    ``-file-exec-and-symbols`` / ``-target-select core``: a bundle's name can neither be read as an
    option nor split into two MI arguments.
    """
    src = source or core.name
    notes: list[str] = []
    empty = parse_records("", source=src, tool=TOOL_CORE)
    if not _has_gdb():
        return empty, [no_gdb_note(src)]
    from pygdbmi.gdbcontroller import GdbController  # heavy import kept local (STYLE)

    transcript: list[str] = []

    def record(resp: list[dict[str, Any]]) -> None:
        for r in resp:
            transcript.append(_unparse(r))

    tmp = _private_dir()
    core_arg = Path(tmp.name) / "core"
    core_arg.symlink_to(core.resolve())
    exe_arg = None
    if executable is not None:
        exe_arg = Path(tmp.name) / "exe"
        exe_arg.symlink_to(executable.resolve())
    gdb = GdbController(command=list(GDB_COMMAND))
    try:
        record(gdb.get_gdb_response(timeout_sec=5, raise_error_on_timeout=False))
        if exe_arg is not None:
            loaded = gdb.write(f"-file-exec-and-symbols {exe_arg}", timeout_sec=timeout,
                               raise_error_on_timeout=False)
            record(loaded)
            notes.extend(f"{src}: gdb: executable not loaded: {r['payload'].get('msg')}" for r in loaded
                         if r.get("type") == "result" and r.get("message") == "error"
                         and isinstance(r.get("payload"), dict))
        sel = gdb.write(f"-target-select core {core_arg}", timeout_sec=timeout,
                        raise_error_on_timeout=False)
        record(sel)
        notes.extend(f"{src}: gdb: {r['payload'].get('msg')}" for r in sel if r.get("type") == "result"
                     and r.get("message") == "error" and isinstance(r.get("payload"), dict))
        info = gdb.write("-thread-info", timeout_sec=timeout, raise_error_on_timeout=False)
        record(info)
        threads: list[dict[str, Any]] = []
        for r in info:
            p = r.get("payload")
            if r.get("type") == "result" and isinstance(p, dict) and isinstance(p.get("threads"), list):
                threads = [t for t in p["threads"] if isinstance(t, dict)]
        for t in threads:
            tid = str(t.get("id"))
            if not tid.isdigit():
                continue
            resp = gdb.write(f"{tid}-stack-list-frames --thread {tid}", timeout_sec=timeout,
                             raise_error_on_timeout=False)
            record(resp)
            args = gdb.write(f"{ARGS_TOKEN + int(tid)}-stack-list-arguments --thread {tid} 1",
                             timeout_sec=timeout, raise_error_on_timeout=False)
            record(args)
            addr = _waited_mutex(resp, args)
            if addr:
                ev = gdb.write(f'{OWNER_TOKEN + int(tid)}-data-evaluate-expression --thread {tid} '
                               f'"((pthread_mutex_t*){addr})->__data.__owner"',
                               timeout_sec=timeout, raise_error_on_timeout=False)
                record(ev)
                notes.extend(f"thread {tid}: owner of mutex {addr} not read: {r['payload'].get('msg')}"
                             for r in ev if r.get("type") == "result" and r.get("message") == "error"
                             and isinstance(r.get("payload"), dict))
    except Exception as exc:  # gdb died, timed out, refused the core: say so, keep what we have
        notes.append(f"{src}: gdb failed on the core file: {type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            gdb.exit()
        tmp.cleanup()
    raw = parse_records("\n".join(transcript), source=src, tool=TOOL_CORE)
    core_lines = [ln for ln in transcript if ln.startswith('~"Core was generated by') or "Program terminated" in ln]
    notes.extend(json.loads(ln[1:]) .strip() for ln in core_lines if ln.startswith('~"'))
    raw.lines = raw.parsed = raw.unrecognized = 0  # a binary input: no lines to account for
    raw.samples = []
    if raw.threads.is_empty():
        notes.append(f"{src}: gdb read no threads from the core file (wrong executable? pass the one that "
                     "dumped it, e.g. a core.json sidecar with \"executable\")")
    return raw, notes


def _payload_list(resp: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    for r in resp:
        p = r.get("payload")
        if r.get("type") == "result" and isinstance(p, dict) and isinstance(p.get(key), list):
            return [f for f in p[key] if isinstance(f, dict)]
    return []


def _waited_mutex(resp: list[dict[str, Any]], args: list[dict[str, Any]]) -> str | None:
    """Address of the mutex a thread waits on: the `mutex=` argument of its lock frame."""
    by_level = {str(a.get("level")): _args_text(a.get("args")) or "" for a in _payload_list(args, "stack-args")}
    for f in _payload_list(resp, "stack"):
        if LOCK_FUNCS.search(str(f.get("func", ""))):
            m = MUTEX_ARG_RE.search(by_level.get(str(f.get("level")), "") or _args_text(f.get("args")) or "")
            if m:
                return m.group(1)
    return None


def _mi_value(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}={_mi_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_mi_value(x) for x in v) + "]"
    return json.dumps(str(v))


def _unparse(r: dict[str, Any]) -> str:
    """Back to an MI line, so a live session and a saved transcript share one parser."""
    typ, msg, payload, token = r.get("type"), r.get("message"), r.get("payload"), r.get("token")
    tok = str(token) if isinstance(token, int) else ""
    if typ == "result":
        body = ",".join(f"{k}={_mi_value(v)}" for k, v in payload.items()) if isinstance(payload, dict) else ""
        return f"{tok}^{msg}" + (f",{body}" if body else "")
    if typ == "notify":
        body = ",".join(f"{k}={_mi_value(v)}" for k, v in payload.items()) if isinstance(payload, dict) else ""
        return f"={msg}" + (f",{body}" if body else "")
    if typ in ("console", "log", "target"):
        prefix = {"console": "~", "log": "&", "target": "@"}[typ]
        return prefix + json.dumps(str(payload or ""))
    return "(gdb)" if typ == "done" else str(payload or "")
