"""`ps` output → the `processes` frame (one row per process line), for parent pids and wait channels.

The columns are whatever the header names (procps-ng): observed in samples/deadlock-pipe
(``ps -o pid,ppid,stat,wchan:32,cmd``) and samples/fork-lock (``ps -o pid,ppid,comm,args``)::

      PID  PPID STAT WCHAN                            CMD
    10379 10377 S    do_wait                          /work/main/.venv/bin/python3 …/celery -A proj worker …
    10382 10379 S    anon_pipe_write                  /work/main/.venv/bin/python3 …

Every column but the last is one word (``-`` is null: WCHAN of a running process); the last
(CMD / COMMAND / ARGS) is the rest of the line.  When COMMAND appears twice (``comm,args``) the
first is the short name.  ``ps -L`` adds LWP / TID (a row per thread).  `parse_lines` is pure.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from analyzer.sources.celery_log import Coverage
from analyzer.sources.checked import int64
from analyzer.sources.lines import Lines, read_lines
from analyzer.sources.procfs import PROCESSES

COMMAND_COLS = ("CMD", "COMMAND", "ARGS")
# a header is upper-case words (`  PID  PPID STAT WCHAN  CMD`), told word by word: the regex form
# `^\s*(?:[A-Z%]+\s+)*PID(?:\s+[A-Z%]+)*\s*$` backtracks over every `PID` of a long line
HEADER_WORD_RE = re.compile(r"[A-Z%]+")


def _header(text: str) -> list[str] | None:
    """The column names of a header line (one names PID, one a command), else None."""
    words = text.split()
    if "PID" in words and any(c in words for c in COMMAND_COLS) and all(HEADER_WORD_RE.fullmatch(w) for w in words):
        return words
    return None


def _row(cols: list[str], parts: list[str], source: str, line: int) -> dict[str, Any] | None:
    row: dict[str, Any] = {"source": source, "line": line, "tool": "ps", "pid": None, "tid": None, "ppid": None,
                           "comm": None, "state": None, "wchan": None, "syscall": None, "syscall_args": None,
                           "kstack": None, "cmd": None,
                           "wchan_line": None, "syscall_line": None}
    seen_command = cols[:-1].count("COMMAND") > 0
    for i, (col, val) in enumerate(zip(cols, parts, strict=False)):
        value = None if val == "-" else val
        last = i == len(cols) - 1
        if col in ("PID", "PPID", "LWP", "TID", "SPID"):
            number = int64(value)
            if number is None:
                return None
            key = {"PID": "pid", "PPID": "ppid"}.get(col, "tid")
            row[key] = number
        elif col in ("STAT", "S"):
            row["state"] = value
        elif col == "WCHAN":
            row["wchan"], row["wchan_line"] = value, line if value else None
        elif col in ("COMM", "UCOMM") or (col == "COMMAND" and seen_command and not last):
            row["comm"] = value
        elif last and col in COMMAND_COLS:
            row["cmd"] = val
    if row["pid"] is None:
        return None
    if row["tid"] == row["pid"]:
        row["tid"] = None  # the main thread: same key as a process row
    return row


def parse_lines(lines: Lines, *, source: str) -> tuple[pl.DataFrame, Coverage]:
    df = lines.frame
    rows: list[dict[str, Any]] = []
    bad: list[tuple[int, str]] = []
    cols: list[str] | None = None
    for line, text in df.select("line", "text").rows():
        if not text.strip():
            continue
        if (header := _header(text)) is not None:
            cols = header
            continue
        parts = text.split(None, len(cols) - 1) if cols else []
        row = _row(cols, parts, source, line) if cols else None
        if row is None:
            bad.append((line, text))
        else:
            rows.append(row)
    frame = pl.DataFrame(rows, schema=PROCESSES) if rows else pl.DataFrame(schema=PROCESSES)
    unrec = pl.DataFrame(bad, schema={"line": pl.Int64, "text": pl.String}, orient="row")
    return frame, Coverage.of(source, "ps", df.filter(pl.col("text").str.strip_chars() != ""), unrec)


def parse_text(text: str, *, source: str) -> tuple[pl.DataFrame, Coverage]:
    return parse_lines(read_lines(text.encode()), source=source)

