"""What `/proc` said about processes: fd listings and per-process kernel state.

Two shapes of real command output, observed in samples/deadlock-pipe (Linux 6.18, coreutils 9.1):

``ls -l /proc/PID/fd /proc/PID2/fd`` (several directories: each listing gets a header)::

    /proc/10379/fd:
    total 0
    lr-x------ 1 root root 64 Nov 28 21:08 10 -> pipe:[18313]
    l-wx------ 1 root root 64 Nov 28 21:08 11 -> pipe:[18313]

The link's permission bits are the open mode of the fd (``lr-x`` read end, ``l-wx`` write end,
``lrwx`` both), which is what tells the two ends of a pipe apart.  Lines naming the link by its
full path (``… /proc/41840/fd/50 -> pipe:[548796]``, from ``find /proc -type l | xargs ls -l``)
carry their pid themselves; a listing without either has no pid (kept, pid null).

``grep -H . /proc/PID/{stat,wchan,syscall,stack}`` (one ``path:content`` line per line)::

    /proc/10382/stat:10382 (celery) S 10379 10377 10377 0 -1 …     (pid, comm, state, ppid)
    /proc/10382/wchan:anon_pipe_write                               (kernel function it sleeps in)
    /proc/10382/syscall:1 0xb 0x7f6322211030 0x9e5f9 …              (blocked syscall nr and args)
    /proc/10382/stack:[<0>] anon_pipe_write+0x332/0x6c0             (kernel stack, innermost first)

``/proc/PID/task/TID/…`` paths are per thread; ``/proc/PID/status`` lines ``PPid:``/``State:``/
``Name:`` are read too.  Frames: `proc_fds` (one row per fd) and `processes` (one row per
pid/tid of a file: `tid` null means the process's main thread).  `parse_lines` is pure.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from analyzer.sources.celery_log import Coverage
from analyzer.sources.checked import int64
from analyzer.sources.lines import Lines, read_lines

PROC_FDS: dict[str, pl.DataType] = {
    "source": pl.String(), "line": pl.Int64(), "pid": pl.Int64(), "tid": pl.Int64(), "fd": pl.Int64(),
    "mode": pl.String(),  # r / w / rw: the open mode, from the link's permission bits
    "target": pl.String(),  # `pipe:[18313]`, `socket:[…]`, `anon_inode:[eventpoll]`, a path
    "object": pl.String(),  # pipe / socket / anon_inode / file
    "inode": pl.Int64(),  # of a pipe or socket
}

# One row per process (or thread) and input; `tool` says which command made it (procfs / ps).
PROCESSES: dict[str, pl.DataType] = {
    "source": pl.String(), "line": pl.Int64(), "tool": pl.String(), "pid": pl.Int64(), "tid": pl.Int64(),
    "ppid": pl.Int64(), "comm": pl.String(), "state": pl.String(), "wchan": pl.String(),
    "syscall": pl.Int64(),  # number of the blocked system call (architecture-specific), null when running
    "syscall_args": pl.List(pl.String()),  # its six arguments as the kernel prints them (hex)
    "kstack": pl.List(pl.String()),  # kernel stack functions, innermost first, offsets dropped
    "cmd": pl.String(),
    "wchan_line": pl.Int64(),  # lines of the wchan and syscall facts in the input (evidence)
    "syscall_line": pl.Int64(),
}

HEADER_RE = r"^/proc/(\d+)(?:/task/(\d+))?/fd:\s*$"
# `lr-x------ 1 root root 64 Nov 28 21:08 10 -> pipe:[18313]` (any date style; name = fd or its path)
LS_RE = (r"^l([r-])([w-])[xsStT-]\S*\s+\d+\s+\S+\s+\S+\s+\d+\s+.*?\s"
         r"(?:/proc/(\d+)(?:/task/(\d+))?/fd/)?(\d+) -> (.*)$")
TOTAL_RE = r"^total \d+\s*$"
GREP_RE = r"^/proc/(\d+)(?:/task/(\d+))?/(stat|wchan|syscall|stack|status):(.*)$"
STAT_RE = re.compile(r"^(\d+) \((.*)\) (\S) (-?\d+)\b")
KSTACK_RE = re.compile(r"^\[<[0-9a-fx]+>\]\s+([\w.]+)")
OBJECT_RE = r"^(pipe|socket|anon_inode):\[?([^\]]*)\]?$"


def _fds(df: pl.DataFrame, source: str) -> tuple[pl.DataFrame, pl.Series]:
    # casts are not strict: a number past Int64 becomes null (its line unrecognised), not an error for the file
    hdr = pl.col("text").str.extract_groups(HEADER_RE)
    ls = pl.col("text").str.extract_groups(LS_RE)
    x = df.select(
        "line",
        hdr.struct.field("1").cast(pl.Int64, strict=False).alias("h_pid"),
        hdr.struct.field("2").cast(pl.Int64, strict=False).alias("h_tid"),
        ls.struct.field("1").alias("r"), ls.struct.field("2").alias("w"),
        ls.struct.field("3").cast(pl.Int64, strict=False).alias("p_pid"),
        ls.struct.field("4").cast(pl.Int64, strict=False).alias("p_tid"),
        ls.struct.field("5").cast(pl.Int64, strict=False).alias("fd"), ls.struct.field("6").alias("target"),
    )
    # a listing's pid (and tid) is its header's, until the next header
    block = pl.col("h_pid").is_not_null().cum_sum()
    x = x.with_columns(pl.col("h_pid").forward_fill().alias("cur_pid"),
                       pl.col("h_tid").forward_fill().over(block).alias("cur_tid"))
    obj = pl.col("target").str.extract_groups(OBJECT_RE)
    rows = x.filter(pl.col("fd").is_not_null()).select(
        pl.lit(source).alias("source"), "line",
        pl.coalesce("p_pid", "cur_pid").alias("pid"),
        pl.when(pl.col("p_pid").is_not_null()).then(pl.col("p_tid")).otherwise(pl.col("cur_tid")).alias("tid"),
        "fd",
        pl.concat_str(pl.when(pl.col("r") == "r").then(pl.lit("r")).otherwise(pl.lit("")),
                      pl.when(pl.col("w") == "w").then(pl.lit("w")).otherwise(pl.lit(""))).alias("mode"),
        "target",
        pl.coalesce(obj.struct.field("1"), pl.lit("file")).alias("object"),
        pl.when(obj.struct.field("1").is_in(["pipe", "socket"]))
        .then(obj.struct.field("2").cast(pl.Int64, strict=False)).otherwise(None).alias("inode"),
    )
    understood = x.filter(pl.col("fd").is_not_null() | pl.col("h_pid").is_not_null()).get_column("line")
    return rows.cast(dict(PROC_FDS)).select(list(PROC_FDS)), understood  # type: ignore[arg-type]


def _processes(df: pl.DataFrame, source: str) -> tuple[pl.DataFrame, pl.Series]:
    g = pl.col("text").str.extract_groups(GREP_RE)
    x = df.select("line", g.struct.field("1").cast(pl.Int64, strict=False).alias("pid"),
                  g.struct.field("2").cast(pl.Int64, strict=False).alias("tid"), g.struct.field("3").alias("file"),
                  g.struct.field("4").alias("value")).filter(pl.col("pid").is_not_null())
    procs: dict[tuple[int, int | None], dict[str, Any]] = {}
    bad: list[int] = []
    for line, pid, tid, file, value in x.rows():
        p = procs.setdefault((pid, tid), {"source": source, "line": line, "tool": "procfs", "pid": pid, "tid": tid,
                                          "ppid": None, "comm": None, "state": None, "wchan": None,
                                          "syscall": None, "syscall_args": None, "kstack": [], "cmd": None,
                                          "wchan_line": None, "syscall_line": None})
        if not _fact(p, file, value.strip(), line):
            bad.append(line)
    rows = list(procs.values())
    for p in rows:
        p["kstack"] = p["kstack"] or None
    frame = pl.DataFrame(rows, schema=PROCESSES) if rows else pl.DataFrame(schema=PROCESSES)
    understood = x.filter(~pl.col("line").is_in(bad)).get_column("line")
    return frame, understood


def _fact(p: dict[str, Any], file: str, value: str, line: int) -> bool:
    """Fold one `/proc/PID/FILE:` line into the process's row; False when the line makes no sense."""
    if file == "stat":
        m = STAT_RE.match(value)
        if not m:
            return False
        p["comm"], p["state"], p["ppid"] = m.group(2), m.group(3), int64(m.group(4))
    elif file == "wchan":
        p["wchan"], p["wchan_line"] = (None, None) if value in ("", "0") else (value, line)
    elif file == "syscall":
        parts = value.split()
        if not parts:
            return False
        if parts[0] == "running":
            return True
        nr = int64(parts[0])
        if nr is None:
            return False
        if nr >= 0:
            p["syscall"], p["syscall_args"], p["syscall_line"] = nr, parts[1:7], line
    elif file == "stack":
        m = KSTACK_RE.match(value)
        if not m:
            return False
        p["kstack"].append(m.group(1))
    elif file == "status":
        key, _, val = value.partition(":")
        val = val.strip()
        if key == "PPid" and int64(val) is not None:
            p["ppid"] = int64(val)
        elif key == "State" and val:
            p["state"] = val.split()[0]
        elif key == "Name":
            p["comm"] = val
    return True


def parse_lines(lines: Lines, *, source: str) -> tuple[dict[str, pl.DataFrame], Coverage]:
    """`proc_fds` and `processes` frames of one input, and its coverage."""
    df = lines.frame
    fds, fd_lines = _fds(df, source)
    procs, proc_lines = _processes(df, source)
    text = pl.col("text").str.strip_chars()
    known = pl.concat([fd_lines, proc_lines])
    rest = df.filter((text != "") & ~pl.col("text").str.contains(TOTAL_RE) & ~pl.col("line").is_in(known.implode()))
    cov = Coverage.of(source, "procfs", df.filter(text != ""), rest)
    if fds.height and fds.get_column("pid").null_count():
        cov.notes.append("fd listing without a /proc/PID/fd: header: its pid is unknown")
    return {"proc_fds": fds, "processes": procs}, cov


def parse_text(text: str, *, source: str) -> tuple[dict[str, pl.DataFrame], Coverage]:
    return parse_lines(read_lines(text.encode()), source=source)

