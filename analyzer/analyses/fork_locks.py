"""Fork deadlocks: a forked process parked on a lock that was copied, locked, by `fork()`.

`fork()` copies the whole address space but only the calling thread.  A `threading.Lock` that
another thread held at that moment is copied in its locked state, and its owner does not exist in
the child, so the child's first `with lock:` never returns.  The dumps show it as a process with a
single thread, parked in a Python lock acquire, that no thread of its own can release; and, when
the parent was dumped too, the *same address* (the child is a copy of the parent's memory) in the
frame locals of a live thread of another process: the holder, still running in the parent.

`build(threads, frames, workers)` gives the `fork_waits` frame (contract `schema.FORK_WAITS`),
one row per thread that

- waits on a Python lock whose address a tool proved (`threads.wait_on` of a gdb
  ``lock_PyThread_acquire_lock (self=ADDR)`` / ``rlock_acquire`` frame, py-bt's
  ``__enter__ of _thread.lock object at remote ADDR``), not a thread join's ``tstate_lock``;
- in a process every dump of which shows that one thread only (`threads` = 1): nobody in the
  process holds the lock, so nothing will ever release it.

Columns the rule decides on: `process_role` says what `celery inspect stats` knows of the pid
(``worker`` main process, ``pool`` child in ``pool.processes``, ``other`` neither, null without
stats); `holder_*` name a live thread of *another* process whose `--locals` show the same lock
address and that does not wait on it, skipping the parent's copy of the forking thread (its
innermost application function is the waiter's).  `verdict` is ``held in another process``
when such a holder is found, else ``no holder in its process``.

A single thread parked on a plain `Lock` it took itself earlier (acquiring a non-reentrant lock
twice) looks the same in a single dump; the parent's dump (`holder_*`) tells the two apart.
"""

from __future__ import annotations

import json
import re
from typing import Any

import polars as pl

from analyzer.schema import FORK_WAITS, conform, empty

LOCK_REPR_RE = re.compile(r"<(?:_thread\.(?:lock|RLock)|RLock) at (0x[0-9a-f]+)>")
PY_LOCK_CALL = r"(?i)lock_PyThread_acquire_lock|rlock_acquire|_thread\.lock|_thread\.RLock|acquire|__enter__"


def _label(function: Any, file: Any, line: Any) -> str:
    base = str(file).rsplit("/", 1)[-1] if file else "?"
    return f"{function} ({base}:{line})" if line is not None else f"{function} ({base})"


def _roles(workers: pl.DataFrame) -> dict[int, str] | None:
    """pid → ``worker`` / ``pool`` from `celery inspect stats`; None when the bundle has none."""
    if workers.is_empty() or "pid" not in workers.columns:
        return None
    roles: dict[int, str] = {}
    for row in workers.iter_rows(named=True):
        for p in row.get("processes") or []:
            if p is not None:
                roles[int(p)] = "pool"
        if row.get("pid") is not None:
            roles[int(row["pid"])] = "worker"
    return roles


def _lock_locals(frames: pl.DataFrame) -> pl.DataFrame:
    """(pid, tid, depth, function, file, line, name, addr) of every Python lock in py-spy --locals."""
    cols = ("pid", "tid", "depth", "function", "file", "line", "locals", "source", "src_line", "role")
    if frames.is_empty() or not all(c in frames.columns for c in cols):
        return pl.DataFrame()
    sub = frames.filter(pl.col("locals").is_not_null() & pl.col("pid").is_not_null()
                        & pl.col("locals").str.contains("_thread.", literal=True))
    rows = []
    for r in sub.select(cols).iter_rows(named=True):
        try:
            loc = json.loads(r["locals"])
        except (TypeError, ValueError):
            continue
        for name, rep in loc.items():
            m = LOCK_REPR_RE.search(rep) if isinstance(rep, str) else None
            if m:
                rows.append({**{k: r[k] for k in cols if k != "locals"}, "name": name, "addr": m.group(1)})
    return pl.DataFrame(rows) if rows else pl.DataFrame()


def _innermost_app(frames: pl.DataFrame, pid: int, tid: int) -> tuple[str, str] | None:
    """(function, file basename) of the innermost application frame of a thread, from any dump."""
    if frames.is_empty() or "role" not in frames.columns:
        return None
    sub = frames.filter((pl.col("pid") == pid) & (pl.col("tid") == tid) & (pl.col("role") == "app")) \
        .sort("depth", "source")
    if sub.is_empty():
        return None
    r = sub.row(0, named=True)
    return str(r["function"]), str(r["file"]).rsplit("/", 1)[-1]


def _names(th: pl.DataFrame) -> dict[tuple[int, int], str]:
    """(pid, tid) → thread name, py-spy's Python name over gdb's comm."""
    if "name" not in th.columns or "tool" not in th.columns:
        return {}
    rows = th.filter(pl.col("name").is_not_null()).select("pid", "tid", "name", "tool").rows()
    out: dict[tuple[int, int], str] = {}
    for pid, tid, name, _tool in sorted(rows, key=lambda r: (not str(r[3]).startswith("py-spy"), r[2])):
        out.setdefault((int(pid), int(tid)), name)
    return out


def build(threads: pl.DataFrame, frames: pl.DataFrame, workers: pl.DataFrame) -> pl.DataFrame:
    """The `fork_waits` frame: single-threaded processes parked on a Python lock (see module doc)."""
    need = ("pid", "tid", "dump", "state", "wait_on", "wait_call")
    if threads.is_empty() or not all(c in threads.columns for c in need):
        return empty(FORK_WAITS)
    th = threads.filter(pl.col("pid").is_not_null() & pl.col("tid").is_not_null())
    waiting = th.filter((pl.col("state") == "lock_wait") & pl.col("wait_on").is_not_null()
                        & pl.col("wait_call").str.contains(PY_LOCK_CALL)
                        & ~pl.col("wait_call").str.contains("tstate_lock|pthread_mutex"))
    if waiting.is_empty():
        return empty(FORK_WAITS)
    # threads of a process: the most any one of its dumps shows
    per_dump = th.group_by("pid", "dump").agg(pl.col("tid").n_unique().alias("n"))
    nthreads = dict(per_dump.group_by("pid").agg(pl.col("n").max()).rows())
    roles = _roles(workers)
    locks = _lock_locals(frames)
    names = _names(th)
    rows = []
    for w in waiting.sort("source", "line").iter_rows(named=True):
        pid, tid, addr = int(w["pid"]), int(w["tid"]), str(w["wait_on"])
        if nthreads.get(pid, 0) != 1:
            continue
        kind = "rlock" if "rlock" in str(w["wait_call"]).lower() else "lock"
        where, named, holders = None, None, []
        if not locks.is_empty():
            own = locks.filter((pl.col("pid") == pid) & (pl.col("tid") == tid) & (pl.col("addr") == addr)) \
                .sort("depth", "source")
            if own.height:
                o = own.row(0, named=True)
                where = _label(o["function"], o["file"], o["line"]) + f" `{o['name']}`"
                named = f"`{o['name']}` in {_label(o['function'], o['file'], o['line'])}"
            mine = _innermost_app(frames, pid, tid)
            others = locks.filter((pl.col("pid") != pid) & (pl.col("addr") == addr)).sort("source", "src_line")
            waiters_elsewhere = {(int(p), int(t)) for p, t in th.filter(
                (pl.col("state") == "lock_wait") & (pl.col("wait_on") == addr)).select("pid", "tid").rows()}
            seen: set[tuple[int, int]] = set()
            for o in others.iter_rows(named=True):
                key = (int(o["pid"]), int(o["tid"]))
                if key in seen or key in waiters_elsewhere:
                    continue
                seen.add(key)
                if mine is not None and _innermost_app(frames, *key) == mine:
                    continue  # the parent's copy of the thread that forked, not a holder
                holders.append((key, _label(o["function"], o["file"], o["line"]) + f" `{o['name']}`",
                                f"{o['source']}:{o['src_line']}",
                                f"as `{o['name']}` in {_label(o['function'], o['file'], o['line'])}"))
        holder = holders[0] if holders else None
        hkey = holder[0] if holder else None
        hname = names.get(hkey) if hkey else None
        role = None if roles is None else roles.get(pid, "other")
        wname = names.get((pid, tid)) or w.get("name")
        verdict = "held in another process" if holder else "no holder in its process"
        # the message names code; the address is in the evidence (`text`) and the `lock` column
        lock_txt = f"{kind} {named}" if named else f"a {kind} (its address is in the evidence)"
        if holder and hkey:
            summary = (f"pid {pid} has a single thread ({wname}), parked acquiring {lock_txt}; the same lock "
                       f"(same address: fork copies it) is held in pid {hkey[0]} by thread {hname} (tid {hkey[1]}) "
                       f"{holder[3]}: pid {pid} is a fork of it, made while that thread held the lock")
        else:
            summary = (f"pid {pid} has a single thread ({wname}), parked acquiring {lock_txt} that no thread of "
                       f"its own holds: the lock was copied, locked, into a forked process")
        if role == "other":
            summary += "; inspect stats lists it neither as the worker nor as a pool process"
        rows.append({
            "source": w["source"], "line": w.get("line"), "tool": w.get("tool"), "ts": w.get("captured_at"),
            "host": w.get("host") or (roles_host(workers, hkey[0]) if hkey else None),
            "pid": pid, "tid": tid, "name": wname, "lock": addr, "lock_kind": kind, "frame": where,
            "threads": 1, "process_role": role,
            "holder_pid": hkey[0] if hkey else None, "holder_tid": hkey[1] if hkey else None,
            "holder_name": hname, "holder_frame": holder[1] if holder else None,
            "holder_evidence": holder[2] if holder else None,
            "verdict": verdict, "summary": summary,
            "text": f"{w.get('tool')}: pid {pid} thread {tid} ({wname}), the only "
                    f"thread of its process, waits in {w['wait_call']} on {addr}",
        })
    if not rows:
        return empty(FORK_WAITS)
    df = pl.DataFrame(rows, schema_overrides={k: v for k, v in FORK_WAITS.items()})
    return conform(df, FORK_WAITS).sort("source", "line")


def roles_host(workers: pl.DataFrame, pid: int) -> str | None:
    """Node name of the worker whose main pid or pool lists `pid` (`inspect stats`)."""
    if workers.is_empty() or "host" not in workers.columns:
        return None
    for row in workers.iter_rows(named=True):
        if row.get("pid") == pid or pid in (row.get("processes") or []):
            return str(row["host"]) if row.get("host") else None
    return None
