"""CPython faulthandler dumps → `threads` and `frames`, standalone or embedded in a worker log.

FORMATS.md D.3. Only the lines that can belong to a dump are looked at (selected in bulk with
polars), so a large worker log costs one vectorised filter; the state machine then runs over
that short list. States, with real samples (``samples/worker-segfault/worker.stdout``,
``samples/deadlock-lock/worker.stdout``):

- OUTSIDE  → FATAL on `Fatal Python error: Segmentation fault`; → THREAD on a thread header.
- FATAL    `Fatal Python error: Segmentation fault` (starts a dump); `Python runtime state:
  initialized` → THREAD.
- THREAD   `Thread 0x00007f921ebdc6c0 (most recent call first):` /
           `Current thread 0x00007fc51ac59b80 (most recent call first):` (3.14: `… [python] (most …`)
           → FRAME, ELLIPSIS, NOFRAME.
- FRAME    `  File "/tmp/cpm-worker-segfault-hv0b6epj/proj.py", line 20 in parse` (no comma before
           `in`) → FRAME, ELLIPSIS, blank, THREAD.
- ELLIPSIS `  ...` (stack truncated by faulthandler); NOFRAME `  <no Python frame>`.
- TRAILER  `Extension modules: wcwidth._wcwidth_c, psutil._psutil_linux (total: 2)` ends the dump.

A dump is the run of thread blocks separated only by blank lines; a new `Fatal Python error` or
any other line in between starts a new one. `dump` = ``"{source}#L{first line}"``. faulthandler
prints the pthread_t (`thread_ident`), not the LWP: `pid`/`tid` stay null here (see
`analyzer.analyses.threads.fill_native_ids`); the ``Current thread`` gets name ``current``
unless 3.14 printed a name. Lines outside dumps are not this parser's (the Celery log parser
accounts for them); coverage counts the dump lines only.
"""

from __future__ import annotations

import re
from datetime import datetime

import polars as pl

from analyzer.clip import SAMPLE_CHARS, clip
from analyzer.sources.checked import int64
from analyzer.sources.lines import Lines, read_lines
from analyzer.sources.stacks import DumpFrames, finish, norm_ident, raw_frames, raw_threads

TOOL = "faulthandler"

# `Fatal Python error: Segmentation fault`
FATAL_RE = re.compile(r"^Fatal Python error: (.*)$")
# `Python runtime state: initialized`
RUNTIME_RE = re.compile(r"^Python runtime state: \w+")
# `Current thread 0x00007fc51ac59b80 (most recent call first):` / `Thread 0x00007f921ebdc6c0 (most …`
THREAD_RE = re.compile(r"^(Current thread|Thread) (0x[0-9a-fA-F]+)(?: \[([^\]]*)\])? \(most recent call first\):$")
# `  File "/work/main/.venv/lib/python3.11/site-packages/celery/app/trace.py", line 883 in __protected_call__`
FRAME_RE = re.compile(r'^  File "(.*)", line (\d+|\?\?\?) in (.+)$')
ELLIPSIS = "  ..."
NO_FRAME = "  <no Python frame>"
# `Extension modules: wcwidth._wcwidth_c, psutil._psutil_linux (total: 2)`
EXTENSIONS_RE = re.compile(r"^Extension modules: .*")

# polars pre-filter: every line that may belong to a dump (blank lines keep blocks together)
CANDIDATE_RE = (r'^(?:Fatal Python error: |Python runtime state: |(?:Current thread|Thread) 0x[0-9a-fA-F]+ |'
                r'  File ".*", line (?:\d+|\?\?\?) in |  \.\.\.$|  <no Python frame>$|Extension modules: |\s*$)')

SAMPLES = ["samples/worker-segfault/worker.stdout", "samples/deadlock-lock/worker.stdout"]
_SNIFF = re.compile(r"^(?:Current thread|Thread) 0x[0-9a-f]+(?: \[[^\]]*\])? \(most recent call first\):", re.M)


def sniff(head: str) -> bool:
    """True when the head holds a faulthandler thread header (kind ``faulthandler`` when the file
    is not a Celery log; inside a worker log the ``celery_log`` kind runs `parse_lines` too)."""
    return bool(_SNIFF.search(head))


def parse_lines(lines: Lines, *, source: str, captured_at: datetime | None = None, host: str | None = None,
                pid: int | None = None) -> DumpFrames:
    df = lines.frame
    cand = df.filter(pl.col("text").str.contains(CANDIDATE_RE))
    has_header = cand.filter(pl.col("text").str.contains(r"^(?:Current thread|Thread) 0x")).height > 0
    if not has_header:
        return DumpFrames(raw_threads([]), raw_frames([]), lines=0)
    trows: list[dict[str, object]] = []
    frows: list[dict[str, object]] = []
    notes: list[str] = []
    truncated: list[int] = []  # lines of `  ...`
    dump: str | None = None
    fatal: str | None = None
    key: str | None = None
    depth = 0
    prev_line = 0
    dump_lines = 0
    state = "OUTSIDE"
    pending_fatal: tuple[int, str] | None = None
    for ln, text in cand.select("line", "text").iter_rows():
        gap = ln != prev_line + 1  # something that is not a dump line came in between
        prev_line = ln
        if gap and state != "OUTSIDE":
            state, dump, key = "OUTSIDE", None, None
        if not text.strip():
            if state == "FRAME":
                state = "BETWEEN"
            continue
        m = FATAL_RE.match(text)
        if m:
            pending_fatal = (ln, m.group(1))
            fatal = m.group(1)
            state, dump, key = "FATAL", f"{source}#L{ln}", None
            dump_lines += 1
            continue
        if RUNTIME_RE.match(text):
            dump_lines += 1
            continue
        m = THREAD_RE.match(text)
        if m:
            if dump is None:
                dump = f"{source}#L{ln}"
                fatal = None
            current = m.group(1) == "Current thread"
            key = f"{source}:{ln}"
            trows.append({"dump": dump, "source": source, "line": ln, "tool": TOOL, "captured_at": captured_at,
                          "host": host, "pid": pid, "tid": None, "thread_ident": norm_ident(m.group(2)),
                          "name": m.group(3) or ("current" if current else None), "thread_key": key,
                          "fatal": fatal})
            depth = 0
            state = "THREAD"
            dump_lines += 1
            continue
        m = FRAME_RE.match(text)
        if m and key is not None and state in ("THREAD", "FRAME"):
            lno = m.group(2)
            frows.append({"dump": dump, "source": source, "src_line": ln, "pid": pid, "tid": None, "depth": depth,
                          "function": m.group(3), "file": m.group(1), "line": int64(lno),
                          "native": False, "code": None, "locals": None, "thread_key": key})
            depth += 1
            state = "FRAME"
            dump_lines += 1
            continue
        if text in (ELLIPSIS, NO_FRAME) and key is not None:
            if text == ELLIPSIS:
                truncated.append(ln)
            dump_lines += 1
            state = "FRAME"
            continue
        if EXTENSIONS_RE.match(text) and dump is not None:
            dump_lines += 1
            state, dump, key = "OUTSIDE", None, None
            continue
        # a candidate shape out of place (a traceback `File` line of a log record, say): not ours
        state, dump, key = "OUTSIDE", None, None
    del pending_fatal
    if truncated:  # one note, however many stacks: not one line of report per truncated stack
        notes.append(f"{len(truncated)} stack(s) truncated by faulthandler (`...`), first at line {truncated[0]}")
    out = DumpFrames(raw_threads(trows),
                     raw_frames(frows),
                     lines=dump_lines, parsed=dump_lines, notes=notes)
    return out


def parse_text(text: str | bytes, *, source: str, captured_at: datetime | None = None,
               host: str | None = None, pid: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame, DumpFrames]:
    data = text.encode() if isinstance(text, str) else text
    raw = parse_lines(read_lines(data), source=source, captured_at=captured_at, host=host, pid=pid)
    threads, frames = finish(raw)
    return threads, frames, raw


def standalone(lines: Lines, *, source: str) -> DumpFrames:
    """A file that is only a faulthandler dump: lines outside dumps count as unrecognised."""
    raw = parse_lines(lines, source=source)
    total = lines.frame.height
    blank = lines.frame.filter(pl.col("text").str.strip_chars() == "").height
    dump_lines = raw.lines
    raw.lines = total
    raw.parsed = dump_lines + blank
    raw.unrecognized = max(total - raw.parsed, 0)
    if raw.unrecognized:
        used = set(raw.frames["src_line"].to_list()) | set(raw.threads["line"].to_list())
        other = lines.frame.filter(~pl.col("line").is_in(list(used)) & (pl.col("text").str.strip_chars() != "")
                                   & ~pl.col("text").str.contains(CANDIDATE_RE))
        raw.samples = [(int(a), clip(str(b), SAMPLE_CHARS)) for a, b in other.head(5).select("line", "text").rows()]
        raw.unrecognized = other.height
        raw.parsed = total - raw.unrecognized
    return raw
