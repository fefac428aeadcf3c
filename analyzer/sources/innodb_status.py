"""`SHOW ENGINE INNODB STATUS` output → an `innodb_locks` frame from its LATEST DETECTED DEADLOCK.

One row per lock line of the deadlock section.  Observed with MariaDB (samples/deadlock-mariadb)::

    LATEST DETECTED DEADLOCK
    ------------------------
    2026-11-28 19:04:45 0x7f81ae6aa6c0
    *** (1) TRANSACTION:
    TRANSACTION 37, ACTIVE 1 sec starting index read
    MariaDB thread id 16, OS thread handle 140194953733824, query id 53 127.0.0.1 root Updating
    UPDATE cpm_deadlock_accounts SET balance = balance + 10 WHERE id = 1
    *** WAITING FOR THIS LOCK TO BE GRANTED:
    RECORD LOCKS space id 6 page no 3 n bits 320 index PRIMARY of table `test`.`cpm_deadlock_accounts` \
        trx id 37 lock_mode X locks rec but not gap waiting   (one line in the output)
    Record lock, heap no 2 PHYSICAL RECORD: …
    *** CONFLICTING WITH:
    RECORD LOCKS … trx id 38 lock_mode X locks rec but not gap
    …
    *** WE ROLL BACK TRANSACTION (1)

MySQL 8 writes `*** (1) HOLDS THE LOCK(S):` / `*** (1) WAITING FOR THIS LOCK TO BE GRANTED:` and
MySQL 5.x `*** (2) HOLDS THE LOCK(S):`; all are read the same way: a lock line is *waiting* when it
ends in ``waiting`` or sits under a WAITING header, otherwise it is held by the `trx id` it names.
`TABLE LOCK table `db`.`t` trx id N lock mode IX` lines give table locks.

Columns: `source`, `line` (of the lock line), `deadlock_at` (the section's timestamp line),
`trx` (the `(n)` of the transaction block), `trx_id` (the lock's `trx id`), `thread_id` (MySQL /
MariaDB connection id of the block's transaction), `query` (first statement line of the block),
`waiting`, `lock_type` (RECORD / TABLE), `db`, `table`, `index`, `heap_no`, `lock_mode`,
`rolled_back` (the block's transaction is the victim).  `parse_text` is pure.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import polars as pl

from analyzer.sources.celery_log import Coverage
from analyzer.sources.checked import int64

if TYPE_CHECKING:
    from analyzer.bundle import Member
    from analyzer.sources import Options, SourceResult

INNODB_LOCKS: dict[str, pl.DataType] = {
    "source": pl.String(), "line": pl.Int64(), "deadlock_at": pl.String(), "trx": pl.Int64(),
    "trx_id": pl.String(), "thread_id": pl.Int64(), "query": pl.String(), "waiting": pl.Boolean(),
    "lock_type": pl.String(), "db": pl.String(), "table": pl.String(), "index": pl.String(),
    "heap_no": pl.Int64(), "lock_mode": pl.String(), "rolled_back": pl.Boolean(),
}

SECTION_RE = re.compile(r"^LATEST DETECTED DEADLOCK\s*$")
SECTION_END_RE = re.compile(r"^-{4,}\s*$")
TS_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\b")
TRX_BLOCK_RE = re.compile(r"^\*\*\* \((\d+)\) TRANSACTION:")
TRX_RE = re.compile(r"^TRANSACTION (\d+), ")
THREAD_RE = re.compile(r"^(?:MySQL|MariaDB) thread id (\d+)")
HEADER_RE = re.compile(r"^\*\*\* (?:\((\d+)\) )?(WAITING FOR THIS LOCK TO BE GRANTED|HOLDS THE LOCK\(S\)|"
                       r"CONFLICTING WITH)")
ROLLBACK_RE = re.compile(r"^\*\*\* WE ROLL BACK TRANSACTION \((\d+)\)")
# the lock mode ends at the last non-blank character: `(.*\S)\s*$`, not `(.+?)\s*$`, which tries
# `\s*$` from every position of a run of blanks (quadratic in a long one)
RECORD_RE = re.compile(r"^RECORD LOCKS space id \d+ page no \d+ n bits \d+ index (\S+) of table "
                       r"`([^`]*)`\.`([^`]*)` trx id (\d+) lock[_ ]mode (.*\S)\s*$")
TABLE_RE = re.compile(r"^TABLE LOCK table `([^`]*)`\.`([^`]*)` trx id (\d+) lock mode (.*\S)\s*$")
HEAP_RE = re.compile(r"^Record lock, heap no (\d+)")
SKIP_RE = re.compile(r"^(?:\*{3,} \d+\. row \*{3,}|\s*(?:Type|Name|Status):|={3,}|-{3,}|\s*\d+: len \d+;|\s*$)")


def parse_text(text: str, *, source: str) -> tuple[pl.DataFrame, Coverage]:
    lines = text.splitlines()
    rows: list[dict[str, object]] = []
    in_section = False
    ts: str | None = None
    trx: int | None = None
    thread_id: int | None = None
    query: str | None = None
    expect_query = False
    header_waiting = False
    victims: set[int] = set()
    parsed = 0
    for i, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        if SECTION_RE.match(line):
            in_section, ts, trx, rows = True, None, None, []  # the status has one; keep the last
            victims = set()
            parsed += 1
            continue
        if not in_section:
            continue
        parsed += 1
        if SECTION_END_RE.match(line) and i < len(lines) and lines[i].rstrip("\r") == "TRANSACTIONS":
            in_section = False  # the next monitor section begins
            continue
        if ts is None and (m := TS_RE.match(line)):
            ts = m.group(1)
            continue
        if m := TRX_BLOCK_RE.match(line):
            trx, thread_id, query, header_waiting = int64(m.group(1)), None, None, False
            continue
        if m := THREAD_RE.match(line):
            thread_id, expect_query = int64(m.group(1)), True
            continue
        if m := HEADER_RE.match(line):
            if m.group(1):
                trx = int64(m.group(1))
            header_waiting = m.group(2).startswith("WAITING")
            expect_query = False
            continue
        if m := ROLLBACK_RE.match(line):
            if (victim := int64(m.group(1))) is not None:
                victims.add(victim)
            continue
        if m := RECORD_RE.match(line):
            mode = m.group(5)
            rows.append({"line": i, "trx": trx, "trx_id": m.group(4), "thread_id": thread_id, "query": query,
                         "waiting": mode.endswith(" waiting") or (header_waiting and "waiting" in mode),
                         "lock_type": "RECORD", "db": m.group(2), "table": m.group(3), "index": m.group(1),
                         "heap_no": None, "lock_mode": mode.removesuffix(" waiting")})
            continue
        if m := TABLE_RE.match(line):
            mode = m.group(4)
            rows.append({"line": i, "trx": trx, "trx_id": m.group(3), "thread_id": thread_id, "query": query,
                         "waiting": mode.endswith(" waiting"), "lock_type": "TABLE", "db": m.group(1),
                         "table": m.group(2), "index": None, "heap_no": None,
                         "lock_mode": mode.removesuffix(" waiting")})
            continue
        if m := HEAP_RE.match(line):
            if rows and rows[-1]["heap_no"] is None and rows[-1]["lock_type"] == "RECORD":
                rows[-1]["heap_no"] = int64(m.group(1))
            continue
        if expect_query and line.strip() and not line.startswith("***"):
            query, expect_query = line.strip(), False
            continue
    for r in rows:
        r.update(source=source, deadlock_at=ts, rolled_back=r["trx"] in victims)
    frame = pl.from_dicts(rows, schema=INNODB_LOCKS) if rows else pl.DataFrame(schema=INNODB_LOCKS)
    n = sum(1 for ln in lines if ln.strip())
    # the rest of the monitor output (buffer pool, I/O, …) is read and deliberately not used
    cov = Coverage(source=source, kind="mysql_innodb_status", lines=n, parsed=n, unrecognized=0)
    cov.notes.append(f"LATEST DETECTED DEADLOCK: {frame.height} lock line(s)" if rows else
                     "no LATEST DETECTED DEADLOCK section")
    return frame, cov


def adapter(member: Member, opts: Options) -> SourceResult:
    from analyzer.sources import SourceResult

    frame, cov = parse_text(member.read().decode("utf-8", errors="replace"), source=member.name)
    return SourceResult({"innodb_locks": frame}, [cov])
