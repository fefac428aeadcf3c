"""`/proc/locks` snapshots → a `proc_locks` frame (one row per lock line).

Format (Linux `fs/locks.c` `lock_get_status`), observed in samples/deadlock-fcntl::

    1: POSIX  ADVISORY  WRITE 14328 fe:00:2146481 200 200
    1: -> POSIX  ADVISORY  WRITE 14327 fe:00:2146481 200 200
    2: POSIX  ADVISORY  WRITE 14327 fe:00:2146481 100 100
    3: POSIX  ADVISORY  WRITE 3769 fe:00:1474578 0 EOF

`N:` numbers the granted lock; `N: ->` lines are requests *blocked* on lock N (they follow it).
Columns: class (POSIX / FLOCK / OFDLCK / LEASE / DELEG), mode (ADVISORY / MANDATORY / ACTIVE /
BREAKING / BREAKER), access (READ / WRITE / UNLCK / NONE), pid (-1 for OFD locks whose owner is
not a process), `major:minor:inode`, first byte, last byte (`EOF` = to the end of the file).

`parse_lines` is pure (lines in, frame and coverage out); `adapter` wraps it for the bundle.
"""

from __future__ import annotations

import polars as pl

from analyzer.sources.celery_log import Coverage
from analyzer.sources.lines import Lines, read_lines

PROC_LOCKS: dict[str, pl.DataType] = {
    "source": pl.String(), "line": pl.Int64(), "lock_id": pl.Int64(), "blocked": pl.Boolean(),
    "lock_class": pl.String(), "mode": pl.String(), "access": pl.String(), "pid": pl.Int64(),
    "dev": pl.String(), "inode": pl.Int64(), "start": pl.Int64(), "end": pl.Int64(),  # end null = EOF
}

LINE_RE = (r"^\s*(\d+):\s+(->\s+)?(POSIX|FLOCK|OFDLCK|LEASE|DELEG|ACCESS|UNKNOWN)\s+(\S+)\s+(\S+)\s+(-?\d+)\s+"
           r"([0-9a-f]+:[0-9a-f]+):(\d+)\s+(\d+)\s+(\d+|EOF)\s*$")


def parse_lines(lines: Lines, *, source: str) -> tuple[pl.DataFrame, Coverage]:
    df = lines.frame
    ex = df.select("line", pl.col("text").str.extract_groups(LINE_RE).alias("g")).unnest("g")
    names = ["lock_id", "arrow", "lock_class", "mode", "access", "pid", "dev", "inode", "start", "end"]
    ex = ex.rename({str(i + 1): n for i, n in enumerate(names)})
    # numbers past Int64 become null (a strict cast would fail the whole file) and their line unrecognised
    ints = {c: pl.col(c).cast(pl.Int64, strict=False) for c in ("lock_id", "pid", "inode", "start")}
    end = pl.when(pl.col("end") == "EOF").then(None).otherwise(pl.col("end")).cast(pl.Int64, strict=False)
    fits = pl.all_horizontal(*(e.is_not_null() for e in ints.values())) & (end.is_not_null() | (pl.col("end") == "EOF"))
    ok = ex.filter(pl.col("lock_id").is_not_null() & fits)
    frame = ok.select(
        pl.lit(source).alias("source"), "line", ints["lock_id"].alias("lock_id"),
        pl.col("arrow").is_not_null().alias("blocked"), "lock_class", "mode", "access",
        ints["pid"].alias("pid"), "dev", ints["inode"].alias("inode"), ints["start"].alias("start"), end.alias("end"),
    )
    blank = df.get_column("text").str.strip_chars() == ""
    unrec = df.filter(~df.get_column("line").is_in(ok.get_column("line").implode()) & ~blank)
    cov = Coverage.of(source, "proc_locks", df.filter(~blank), unrec)
    return frame.cast(dict(PROC_LOCKS)).select(list(PROC_LOCKS)), cov  # type: ignore[arg-type]


def parse_text(text: str, *, source: str) -> tuple[pl.DataFrame, Coverage]:
    return parse_lines(read_lines(text.encode()), source=source)

