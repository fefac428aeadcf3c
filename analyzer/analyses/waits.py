"""The wait-for graph: one row per edge *waiter → resource → holder*, from every kind of evidence.

`build(frames)` is a pure function of parsed frames (`threads`, `frames`, `gdb_values`,
`events`, `proc_locks`, `innodb_locks`, `inspect`, `workers`, `processes`, `proc_fds`);
`analyzer.api.Bundle` gathers them.  Edges, by kind (`WAITS.kind`):

``mutex``  pthread mutexes in gdb dumps.  The waiter is the thread in ``pthread_mutex_lock``
    (`threads.wait_on` / `wait_symbol`); the holder is `threads.mutex_owner` (GDB/MI) or the
    ``__owner`` of a ``print`` value in the same gdb output (`gdb_values`).  gdb does not echo
    which expression a ``$N`` was, so the struct values are matched to the waited mutexes only
    when exactly one assignment is consistent (an owner never waits on its own mutex); then the
    edge is proven (confidence 1.0).  Otherwise the C frames of the waiter naming *other* mutex
    symbols in their arguments (``hold_then_take (first=0x… <mutex_b>, …)``) are taken as held:
    `inferred`, 0.6.
``lock`` / ``rlock``  Python locks.  What a thread waits on is proven by gdb
    (``lock_PyThread_acquire_lock (self=ADDR)``, ``rlock_acquire``) or py-bt (``<built-in method
    __enter__ of _thread.lock object at remote ADDR>``); without them, a py-bt code line
    ``with NAME:`` / ``NAME.acquire(`` naming a lock in py-spy ``--locals`` of the same frame
    (joined by pid, tid, file and line) gives it (inferred, 0.8).  Holders come from py-spy
    ``--locals``: a lock in the *same frame* where a thread is blocked acquiring another one is
    held by it (nested ``with``; inferred, 0.6, or 0.7 when a py-bt code line confirms that frame
    is at the inner ``with``/``acquire``); a lock in any other frame of a thread not waiting on it
    is a weaker candidate (0.4), used only when there is no better one.  An RLock repr that shows
    ``owner=IDENT`` names its holder (proven), as does gdb's ``print (rlockobject *) ADDR`` followed
    by ``print $->rlock_owner`` (the owner's pthread_t, matched to gdb's ``Thread 0x…`` header).
    Threads are joined across tools by pid + tid.  Locks no dump shows a holder of (module-level
    locks are in no frame's locals; a C extension may take its mutexes inside one function) get
    holders from `ownerless_edges` when every thread of the process is blocked, each on a different
    lock, and nothing moved between dumps (inferred, 0.5-0.6; `via` starts with `OWNERLESS_VIA`).
    A wait with no blocked frame from locals is placed by `threads.code` and its py-bt line.
``fcntl`` / ``flock``  `/proc/locks`: each ``N: ->`` request waits for lock ``N`` (proven). When
    the bundle also has an EDEADLK (``Resource deadlock avoided``) record, the kernel refused a
    request that would have closed a cycle: the holder of a waited range requested a range held
    by the waiter (same inode).  That closing edge is `inferred` (0.7) and carries the EDEADLK
    record as evidence; its task is the refused one.
``db``  PostgreSQL ``Process A waits for MODE on OBJ; blocked by process B.`` lines (server log
    records and driver tracebacks in worker logs, deduplicated, proven) and InnoDB ``LATEST
    DETECTED DEADLOCK`` (a waiting lock of transaction T waits for the granted lock of another
    transaction on the same record / table; for two-transaction reports that omit the holder's
    locks, the other transaction, inferred 0.9).

Ids: threads ``host/pid/tid`` (a process that no inspect output names gets its parent's node),
processes ``pid:N``, PostgreSQL backends ``pg:N``, InnoDB
transactions ``mysql:trx N``.  Resources: ``mutex:ADDR <sym>``, ``lock:ADDR``,
``fcntl:DEV:INODE:START-END``, ``process:PID``, ``pipe:[INODE]`` (``pipe:? <Connection at ADDR>``
when only stacks show it), ``thread:ADDR`` (a joined Thread object), ``pg:transaction 732``,
``mysql:db.table INDEX heap N``.

``process``  a thread blocked in waitpid/join waits for its child's main thread (resource
    ``process:C``).  Proven by ``/proc/PID/syscall`` (``wait4(C, …)``, x86_64/aarch64 numbers,
    the architecture read off the kernel stack) with the wait channel / kernel stack in
    ``do_wait``; otherwise inferred from a stack in ``Popen.wait``/``poll``/``BaseProcess.join``
    (billiard, multiprocessing, subprocess): the child is the process whose stack runs the joined
    Process object (same ``<Process at ADDR>`` in py-spy ``--locals``: fork keeps addresses, 0.8)
    or the only known child by ppid (``ps``, ``/proc/PID/stat``, py-spy ``--subprocesses``
    ``Parent Process`` line; 0.8 with a kernel ``do_wait``, else 0.7).
``pipe``  a thread blocked writing (reading) a pipe waits for the processes holding its read
    (write) end, itself excluded: the fd of the blocked ``write``/``read`` (``/proc/PID/syscall``)
    is a ``pipe:[INODE]`` in the fd listing, whose ``lr-x``/``l-wx`` links say who holds which end
    (proven; 1/n each when n processes hold it).  The holder is that process's one blocked thread,
    else its main thread.  Without fd listings, a stack in multiprocessing/billiard
    ``Connection._send``/``_recv`` whose parent waits for it (a ``process`` edge) waits for that
    parent (inferred, 0.6; 0.7 when the kernel saw the pipe wait or the parent's frames hold the
    same Connection address).  A thread the kernel saw asleep in anything else (epoll, futex) gets
    no process or pipe edge, whatever its stack says.

``join``  a thread blocked in threading ``Thread.join`` / ``_wait_for_tstate_lock`` waits for the
    thread that runs the joined Thread object: the ``self`` of the join frame is the ``self`` of the
    ``run`` / ``_bootstrap_inner`` / ``_bootstrap`` frame (threading.py) of exactly one other thread
    of the same process in the same py-spy ``--locals`` dump (proven; resource ``thread:ADDR``).
    No edge when no live thread runs that object, or when the kernel saw the joiner asleep in
    anything but a futex.  This closes the Queue form of the pipe deadlock: a child that put a
    large object on a multiprocessing/billiard Queue joins its feeder thread at exit
    (``Queue._finalize_join``) while the feeder is blocked writing the queue's pipe.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise, permutations
from typing import Any

import polars as pl

from analyzer.schema import WAITS, conform

# Columns after the contract's (conform keeps them in this order).
WAITS_EXTRA: dict[str, pl.DataType] = {
    "source": pl.String(),  # first evidence, split (findings' evidence and `explain` use source/line)
    "line": pl.Int64(),
    "ts": pl.Datetime("ms"),
    "host": pl.String(),
    "task_id": pl.String(),  # of the waiter, when known
    "holder_task_id": pl.String(),
    "waiter_name": pl.String(),
    "holder_name": pl.String(),
    "waiter_frame": pl.String(),  # where the waiter waits (`take (proj.py:31): with second:`)
    "holder_frame": pl.String(),  # where the holder took / holds the resource, when known
    "via": pl.String(),  # how the edge was derived
    "all_evidence": pl.List(pl.String()),
    # what the code calls the resource, for reports that name code rather than addresses: a lock's
    # variable (`ledger_lock`) and where it has that name (`reconcile_accounts (proj.py:44)`; null for a
    # C global such as a pthread mutex's symbol `mutex_a`)
    "resource_name": pl.String(),
    "resource_named_in": pl.String(),
}
WAITS_FULL: dict[str, pl.DataType] = {**WAITS, **WAITS_EXTRA}

MUTEX_CALLS = ("pthread_mutex_lock", "___pthread_mutex_lock", "__pthread_mutex_lock", "__GI___pthread_mutex_lock",
               "pthread_mutex_timedlock", "__pthread_mutex_lock_full", "lll_mutex_lock_optimized")
LOCK_REPR_RE = re.compile(r"<(?:locked |unlocked )?_?thread\.(lock|RLock|_RLock)(?: object)?"
                          r"(?: owner=(\d+))?(?: count=\d+)?(?: object)? at (0x[0-9a-f]+)>")
MUTEX_ARG_RE = re.compile(r"(\w+)=(?:\w+@entry=)?(0x[0-9a-f]+) <(\w+)>")
WITH_RE = re.compile(r"^\s*(?:async\s+)?with\s+([\w.]+)\s*(?:as\s+\w+\s*)?[:,]|\b([\w.]+)\.acquire\(")
PG_EDGE_RE = re.compile(r"Process (\d+) waits for (\w+) on (.+?); blocked by process (\d+)\.")
PG_QUERY_RE = re.compile(r"^\s*Process (\d+): (.+)$", re.M)
EDEADLK_RE = re.compile(r"Resource deadlock avoided")


@dataclass
class Edge:
    waiter: str
    resource: str
    holder: str | None
    kind: str
    confidence: float
    inferred: bool
    evidence: list[str]
    via: str
    ts: Any = None
    host: str | None = None
    task_id: str | None = None
    holder_task_id: str | None = None
    waiter_name: str | None = None
    holder_name: str | None = None
    waiter_frame: str | None = None
    holder_frame: str | None = None
    resource_name: str | None = None
    resource_named_in: str | None = None


def _ev(source: Any, line: Any) -> str:
    return f"{source}:{line}"


def _frame(name: str, frames: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    df = frames.get(name)
    return df if df is not None else pl.DataFrame()


def _cols(df: pl.DataFrame, *names: str) -> bool:
    return not df.is_empty() and all(n in df.columns for n in names)


# --- identities ---------------------------------------------------------------------------------
@dataclass
class ProcessInfo:
    host: dict[int, str] = field(default_factory=dict)
    task: dict[int, str] = field(default_factory=dict)


def process_info(inspect: pl.DataFrame, workers: pl.DataFrame, threads: pl.DataFrame) -> ProcessInfo:
    """pid → node name and pid → active task id, from `celery inspect active/stats` and dumps."""
    info = ProcessInfo()
    if _cols(workers, "host", "pid"):
        for row in workers.iter_rows(named=True):
            if row["pid"] is not None and row["host"]:
                info.host.setdefault(int(row["pid"]), row["host"])
            for p in row.get("processes") or []:
                if p is not None and row["host"]:
                    info.host.setdefault(int(p), row["host"])
    if _cols(inspect, "worker_pid", "host", "task_id", "state"):
        active = inspect.filter((pl.col("state") == "active") & pl.col("worker_pid").is_not_null())
        for row in active.sort("source", "line").iter_rows(named=True):
            pid = int(row["worker_pid"])
            if row["host"]:
                info.host.setdefault(pid, row["host"])
            info.task.setdefault(pid, row["task_id"])
    if _cols(threads, "pid", "host"):
        for pid, host in threads.filter(pl.col("host").is_not_null() & pl.col("pid").is_not_null()) \
                .select("pid", "host").unique().sort("pid", "host").rows():
            info.host.setdefault(int(pid), host)
    return info


def thread_id(info: ProcessInfo, pid: int, tid: int) -> str:
    return f"{info.host.get(pid, '?')}/{pid}/{tid}"


# --- threads: pthread mutexes and Python locks ---------------------------------------------------
def _thread_names(threads: pl.DataFrame) -> dict[tuple[int, int], str]:
    """Best thread name per (pid, tid): a Python name (py-spy) over gdb's comm."""
    names: dict[tuple[int, int], str] = {}
    if not _cols(threads, "pid", "tid", "name", "tool"):
        return names
    rank = {"py-spy": 0, "py-spy-json": 0, "gdb-mi": 1, "gdb": 2, "gdb-py-bt": 2, "core": 2}
    rows = threads.filter(pl.col("pid").is_not_null() & pl.col("tid").is_not_null() & pl.col("name").is_not_null())
    for pid, tid, name, _tool in sorted(rows.select("pid", "tid", "name", "tool").rows(),
                                       key=lambda r: (rank.get(r[3], 3), r[2])):
        names.setdefault((int(pid), int(tid)), name)
    return names


def _frame_label(function: Any, file: Any, line: Any, code: Any = None) -> str:
    base = str(file).rsplit("/", 1)[-1] if file else "?"
    label = f"{function} ({base}:{line})" if line is not None else f"{function} ({base})"
    return f"{label}: {code.strip()}" if code else label


def _lock_frames(frames: pl.DataFrame) -> list[dict[str, Any]]:
    """Frames whose py-spy --locals hold Python lock objects, with the locks by local name."""
    if not _cols(frames, "locals", "pid", "tid"):
        return []
    sub = frames.filter(pl.col("locals").is_not_null() & pl.col("pid").is_not_null() & pl.col("tid").is_not_null()
                        & pl.col("locals").str.contains("thread.", literal=True))
    out = []
    for row in sub.sort("source", "src_line").iter_rows(named=True):
        try:
            loc = json.loads(row["locals"])
        except (ValueError, TypeError):
            continue
        locks: dict[str, tuple[str, str, str | None]] = {}
        for name, rep in loc.items():
            m = LOCK_REPR_RE.search(str(rep)) if isinstance(rep, str) else None
            if m:
                kind = "rlock" if "RLock" in m.group(1) else "lock"
                locks[name] = (m.group(3), kind, m.group(2))
        if locks:
            out.append({**row, "locks": locks})
    return out


def _code_lines(frames: pl.DataFrame) -> dict[tuple[int, int, str, int], str]:
    """(pid, tid, file basename, line) → source text, from gdb py-bt frames."""
    if not _cols(frames, "code", "pid", "tid", "file", "line"):
        return {}
    sub = frames.filter(pl.col("code").is_not_null() & pl.col("pid").is_not_null() & pl.col("line").is_not_null())
    out: dict[tuple[int, int, str, int], str] = {}
    for pid, tid, file, line, code in sub.select("pid", "tid", "file", "line", "code").rows():
        out.setdefault((int(pid), int(tid), str(file).rsplit("/", 1)[-1], int(line)), code)
    return out


def _with_target(code: str | None) -> str | None:
    if not code:
        return None
    m = WITH_RE.search(code)
    if not m:
        return None
    return (m.group(1) or m.group(2)).rsplit(".", 1)[-1]


def _mutex_owners(threads: pl.DataFrame, gdb_values: pl.DataFrame) -> dict[tuple[str, str], tuple[int, str]]:
    """(source, mutex address) → (owner LWP, evidence) from gdb `print` struct values."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    if not _cols(gdb_values, "source", "line", "owner") or not _cols(threads, "wait_call", "wait_on"):
        return out
    mt = threads.filter(pl.col("wait_call").is_in(list(MUTEX_CALLS)) & pl.col("wait_on").is_not_null())
    for (source,), grp in mt.group_by(["source"], maintain_order=True):
        waiters: dict[str, set[int]] = {}
        for addr, tid in grp.select("wait_on", "tid").rows():
            waiters.setdefault(addr, set()).add(int(tid) if tid is not None else -1)
        vals = gdb_values.filter((pl.col("source") == source) & pl.col("owner").is_not_null()
                                 & (pl.col("owner") > 0)).sort("line")
        owners = [(int(o), int(ln)) for o, ln in vals.select("owner", "line").rows()]
        mutexes = sorted(waiters)
        if not owners or len(owners) != len(mutexes) or len(mutexes) > 6:
            continue
        consistent = []
        for perm in permutations(range(len(owners))):
            if all(owners[perm[i]][0] not in waiters[m] or len(mutexes) == 1 for i, m in enumerate(mutexes)):
                consistent.append(perm)
        if len(consistent) != 1:
            continue
        for i, m in enumerate(mutexes):
            owner, line = owners[consistent[0][i]]
            out[(str(source), m)] = (owner, _ev(source, line))
    return out


def _arg_holds(arg_frames: pl.DataFrame, row: Mapping[str, Any], addr: str, who: str, name: str | None,
               task: str | None) -> list[Edge]:
    """Mutexes other than the waited one named in a blocked thread's C frame arguments: held (inferred)."""
    out: list[Edge] = []
    if arg_frames.is_empty():
        return out
    for fr in arg_frames.filter(pl.col("thread_key") == row["thread_key"]).sort("depth").iter_rows(named=True):
        for arg, a, sym in MUTEX_ARG_RE.findall(fr["args"]):
            if a != addr and arg not in ("mutex", "futex", "futex_word"):
                out.append(Edge("", f"mutex:{a} <{sym}>", who, "mutex", 0.6, True, [_ev(fr["source"], fr["src_line"])],
                                "gdb frame arguments", holder_name=name, holder_task_id=task,
                                holder_frame=_frame_label(fr["function"], fr["file"], fr["line"]) + f" `{arg}`"))
    return out


# glibc's own sources in gdb frames (`./nptl/pthread_mutex_lock.c`, `../sysdeps/nptl/futex-internal.h`)
LIBC_FILE_RE = re.compile(r"^\.\.?/|(?:^|/)(?:nptl|sysdeps)/")
# the mutex implementation's frames: `___pthread_mutex_lock`, `lll_mutex_lock_optimized`, `futex_wait`
LOCK_IMPL_RE = re.compile(r"^_*(?:GI_+)?(?:pthread_mutex|lll_|futex)")


def _c_place(frames: pl.DataFrame, thread_key: Any) -> str | None:
    """Where a thread blocked in pthread_mutex_lock takes the mutex: its innermost C frame with a
    source file outside glibc (`hold_then_take (deadlock.c:15)`), with its caller when that is in
    the same file (`from take_a_then_b (deadlock.c:22)`): the code path that takes the locks."""
    if thread_key is None or not _cols(frames, "thread_key", "depth", "function", "file"):
        return None
    own = frames.filter((pl.col("thread_key") == thread_key) & pl.col("file").is_not_null()).sort("depth")
    rows = [r for r in own.iter_rows(named=True)
            if not LIBC_FILE_RE.search(str(r["file"])) and not LOCK_IMPL_RE.search(str(r["function"]))]
    if not rows:
        return None
    first = rows[0]
    label = _frame_label(first["function"], first["file"], first["line"])
    if len(rows) > 1 and rows[1]["file"] == first["file"] and rows[1]["depth"] == first["depth"] + 1:
        label += " from " + _frame_label(rows[1]["function"], rows[1]["file"], rows[1]["line"])
    return label


def _lock_names(lock_frames: Sequence[Mapping[str, Any]], frames: pl.DataFrame,
                waits_on: Mapping[tuple[int, int], Mapping[str, Any]]) -> dict[tuple[int, str], tuple[str, str]]:
    """(pid, lock address) → (a name the code gives that lock, where): reports name locks by code.

    Candidates: the variables of py-spy ``--locals`` that hold the lock (application frames
    first), then the ``with NAME:`` / ``NAME.acquire(`` of the py-bt line a thread is blocked on
    (a module-level lock is no local). A name that stands for two locks of one process (``first``
    in two calls of one function with the locks swapped) names neither.
    """
    cands: dict[tuple[int, str], list[tuple[int, str, str, str, int]]] = {}
    addrs: dict[tuple[int, str], set[str]] = {}

    def add(pid: int, addr: str, rank: int, name: str, where: str, source: Any, line: Any) -> None:
        addrs.setdefault((pid, name), set()).add(addr)
        cands.setdefault((pid, addr), []).append((rank, name, where, str(source), int(line or 0)))

    for lf in lock_frames:
        pid = int(lf["pid"])
        for lname, (addr, _, _) in lf["locks"].items():
            add(pid, addr, 0 if lf.get("role") == "app" else 1, lname,
                _frame_label(lf["function"], lf["file"], lf["line"]), lf["source"], lf["src_line"])
    if waits_on and _cols(frames, "code", "pid", "tid", "depth"):
        coded = frames.filter(pl.col("code").is_not_null() & pl.col("pid").is_not_null()
                              & pl.col("tid").is_not_null() & ~pl.col("native").fill_null(False))
        for (pid, tid), w in sorted(waits_on.items()):
            rows = coded.filter((pl.col("pid") == pid) & (pl.col("tid") == tid)).sort("depth", "source")
            for r in rows.iter_rows(named=True):
                target = _with_target(r["code"])
                if target:
                    add(pid, w["addr"], 2, target, _frame_label(r["function"], r["file"], r["line"]),
                        r["source"], r["src_line"])
                    break
    out: dict[tuple[int, str], tuple[str, str]] = {}
    for (pid, addr), cs in cands.items():
        unique = sorted(c for c in cs if addrs[(pid, c[1])] == {addr})
        if unique:
            out[(pid, addr)] = (unique[0][1], unique[0][2])
    return out


def _name_resources(edges: Sequence[Edge], names: Mapping[tuple[int, str], tuple[str, str]]) -> None:
    """Set `resource_name` / `resource_named_in` of lock and mutex edges."""
    for e in edges:
        if e.resource.startswith("mutex:") and e.resource.endswith(">") and " <" in e.resource:
            e.resource_name = e.resource.rsplit(" <", 1)[1][:-1]
        elif e.resource.startswith("lock:"):
            for who in (e.waiter, e.holder):
                parts = (who or "").split("/")
                if len(parts) == 3 and parts[1].isdigit() and (got := names.get((int(parts[1]), e.resource[5:]))):
                    e.resource_name, e.resource_named_in = got
                    break


# `$1 = (rlockobject *) 0x7fb0f6aa9040` then `$2 = 140398019462848` (`print $->rlock_owner`)
RLOCK_PTR_RE = re.compile(r"^\(rlockobject \*\) (0x[0-9a-f]+)$")
OWNER_IDENT_RE = re.compile(r"^(\d+)$")
# `post_ledger (proj.py:33)`: a `threads.code` place
PLACE_RE = re.compile(r"^(.*) \(([^():]+):(\d+)\)$")


def _rlock_owners(gdb_values: pl.DataFrame) -> dict[str, tuple[str, str]]:
    """RLock address → (owning thread's ident, evidence) from gdb values printed in pairs:
    `print (rlockobject *) ADDR` then `print $->rlock_owner` (CPython's Modules/_threadmodule.c
    keeps the owner's pthread_t, 0 when unowned). A value is paired only with the one right after
    it in the same output."""
    out: dict[str, tuple[str, str]] = {}
    if not _cols(gdb_values, "source", "line", "value"):
        return out
    for (source,), grp in gdb_values.group_by(["source"], maintain_order=True):
        rows = grp.sort("line").select("line", "value").rows()
        for (_, v1), (ln2, v2) in pairwise(rows):
            p, o = RLOCK_PTR_RE.match(str(v1).strip()), OWNER_IDENT_RE.match(str(v2).strip())
            if p and o and int(o.group(1)) > 0:
                out[p.group(1)] = (o.group(1), _ev(source, ln2))
    return out


def _code_place(threads: pl.DataFrame, code: Mapping[tuple[int, int, str, int], str], pid: int,
                tid: int) -> str | None:
    """Where a thread waits, as `threads.code` says (its innermost application frame, from any dump
    of it), with that line's source text when a py-bt shows it: `post_ledger (proj.py:33): with audit_lock:`."""
    if not _cols(threads, "pid", "tid", "code"):
        return None
    rows = threads.filter((pl.col("pid") == pid) & (pl.col("tid") == tid) & pl.col("code").is_not_null())
    if "code_from" in rows.columns:
        rows = rows.filter(pl.col("code_from") != "top")  # a C frame (`futex_wait`) says nothing of the code
    if rows.is_empty():
        return None
    rows = rows.with_columns((pl.col("code_from") != "app").alias("_not_app")) if "code_from" in rows.columns \
        else rows.with_columns(pl.lit(False).alias("_not_app"))
    place = str(rows.sort("_not_app", "source", "line")["code"][0])
    m = PLACE_RE.match(place)
    text = code.get((pid, tid, m.group(2).rsplit("/", 1)[-1], int(m.group(3)))) if m else None
    return f"{place}: {text.strip()}" if text else place


def thread_edges(threads: pl.DataFrame, frames: pl.DataFrame, gdb_values: pl.DataFrame,
                 info: ProcessInfo) -> list[Edge]:
    if not _cols(threads, "pid", "tid", "wait_call", "wait_on"):
        return []
    names = _thread_names(threads)
    owners = _mutex_owners(threads, gdb_values)
    th = threads.filter(pl.col("pid").is_not_null() & pl.col("tid").is_not_null()).sort("source", "line")
    edges: list[Edge] = []

    def tid_of(pid: int, tid: int) -> str:
        return thread_id(info, pid, tid)

    def mk(pid: int, tid: int, resource: str, holder: tuple[int, int] | None, kind: str, conf: float,
           inferred: bool, ev: list[str], via: str, wframe: str | None = None, hframe: str | None = None) -> Edge:
        return Edge(tid_of(pid, tid), resource, tid_of(*holder) if holder else None, kind, conf, inferred, ev, via,
                    host=info.host.get(pid), task_id=info.task.get(pid),
                    holder_task_id=info.task.get(holder[0]) if holder else None,
                    waiter_name=names.get((pid, tid)), holder_name=names.get(holder) if holder else None,
                    waiter_frame=wframe, holder_frame=hframe)

    # pthread mutexes
    mut = th.filter(pl.col("wait_call").is_in(list(MUTEX_CALLS)) & pl.col("wait_on").is_not_null())
    holds: list[Edge] = []
    arg_frames = frames.filter(pl.col("args").is_not_null() & pl.col("args").str.contains(" <", literal=True)) \
        if _cols(frames, "args", "thread_key") else pl.DataFrame()
    for row in mut.iter_rows(named=True):
        pid, tid, addr, sym = int(row["pid"]), int(row["tid"]), row["wait_on"], row.get("wait_symbol")
        res = f"mutex:{addr} <{sym}>" if sym else f"mutex:{addr}"
        ev = [_ev(row["source"], row["line"])]
        owner = row.get("mutex_owner")
        got = owners.get((str(row["source"]), addr))
        holds.extend(_arg_holds(arg_frames, row, addr, tid_of(pid, tid), names.get((pid, tid)), info.task.get(pid)))
        place = _c_place(frames, row.get("thread_key"))
        if owner is not None and owner > 0:
            edges.append(mk(pid, tid, res, (pid, int(owner)), "mutex", 1.0, False, ev, "gdb mutex __owner", place))
            continue
        if got is not None:
            edges.append(mk(pid, tid, res, (pid, got[0]), "mutex", 1.0, False, [*ev, got[1]],
                            "gdb print mutex __owner", place))
            continue
        edges.append(mk(pid, tid, res, None, "mutex", 1.0, False, ev, "gdb pthread_mutex_lock", place))
    edges.extend(holds)

    # Python locks: what each thread waits on
    waits_on: dict[tuple[int, int], dict[str, Any]] = {}
    py = th.filter(~pl.col("wait_call").is_in(list(MUTEX_CALLS)) & pl.col("wait_on").is_not_null()
                   & pl.col("wait_call").str.contains(r"(?i)lock|acquire|__enter__"))
    py = py.filter(~pl.col("wait_call").str.contains("tstate_lock"))
    tool_rank = {"gdb-py-bt": 0, "gdb": 1, "gdb-mi": 1, "core": 1}
    for row in sorted(py.iter_rows(named=True), key=lambda r: (tool_rank.get(r["tool"], 5), r["source"], r["line"])):
        key = (int(row["pid"]), int(row["tid"]))
        kind = "rlock" if "rlock" in str(row["wait_call"]).lower() else "lock"
        w = waits_on.setdefault(key, {"addr": row["wait_on"], "kind": kind, "ev": [], "proven": True})
        if w["addr"] == row["wait_on"]:
            w["ev"].append(_ev(row["source"], row["line"]))
            if kind == "rlock":
                w["kind"] = "rlock"
    lock_frames = _lock_frames(frames)
    code = _code_lines(frames)
    kind_of: dict[str, str] = {}
    rlock_owner: dict[str, tuple[str, str]] = {}
    for lf in lock_frames:
        for addr, kind, owner in lf["locks"].values():
            kind_of.setdefault(addr, kind)
            if owner:
                rlock_owner[addr] = (owner, _ev(lf["source"], lf["src_line"]))
    # a py-bt `with NAME:` line naming a lock local identifies the wait when no tool gave an address
    blocked_frame: dict[tuple[int, int], dict[str, Any]] = {}
    for lf in lock_frames:
        key = (int(lf["pid"]), int(lf["tid"]))
        fkey = (key[0], key[1], str(lf["file"]).rsplit("/", 1)[-1], int(lf["line"] or -1))
        target = _with_target(code.get(fkey))
        wo = waits_on.get(key)
        if wo is not None and any(a == wo["addr"] for a, _, _ in lf["locks"].values()):
            blocked_frame.setdefault(key, {**lf, "confirmed": target is not None
                                           and target in lf["locks"] and lf["locks"][target][0] == wo["addr"]})
        elif wo is None and target is not None and target in lf["locks"]:
            addr, kind, _ = lf["locks"][target]
            waits_on[key] = {"addr": addr, "kind": kind, "ev": [_ev(lf["source"], lf["src_line"])], "proven": False}
            blocked_frame[key] = {**lf, "confirmed": True}
    rlock_owner.update(_rlock_owners(gdb_values))
    ident_to_thread: dict[int, tuple[int, int]] = {}
    if "thread_ident" in th.columns:
        for pid, tid, ident in th.filter(pl.col("thread_ident").is_not_null()).select("pid", "tid", "thread_ident") \
                .unique().rows():
            with contextlib.suppress(ValueError):
                ident_to_thread[int(ident, 16)] = (int(pid), int(tid))
    # candidate holders of each waited lock
    waited = {w["addr"] for w in waits_on.values()}
    cands: dict[str, list[tuple[float, tuple[int, int], str, str]]] = {}
    for key, bf in sorted(blocked_frame.items()):
        w = waits_on[key]
        for lname, (addr, _, _) in sorted(bf["locks"].items()):
            if addr != w["addr"] and addr in waited:
                conf = 0.7 if bf["confirmed"] else 0.6
                label = _frame_label(bf["function"], bf["file"], bf["line"]) + f" holds `{lname}`"
                cands.setdefault(addr, []).append((conf, key, _ev(bf["source"], bf["src_line"]), label))
    for lf in lock_frames:
        key = (int(lf["pid"]), int(lf["tid"]))
        for lname, (addr, _, _) in sorted(lf["locks"].items()):
            if addr not in waited or any(c[1] == key for c in cands.get(addr, [])):
                continue
            if waits_on.get(key, {}).get("addr") == addr:
                continue
            if str(lf.get("role")) == "stdlib":
                continue
            label = _frame_label(lf["function"], lf["file"], lf["line"]) + f" has `{lname}`"
            cands.setdefault(addr, []).append((0.4, key, _ev(lf["source"], lf["src_line"]), label))
    for key, w in sorted(waits_on.items()):
        pid, tid = key
        addr, kind = w["addr"], kind_of.get(w["addr"], w["kind"])
        res = f"lock:{addr}"
        bfw = blocked_frame.get(key)
        wframe = _code_place(th, code, pid, tid)  # a module-level lock is in no frame's locals
        if bfw is not None:
            fkey = (pid, tid, str(bfw["file"]).rsplit("/", 1)[-1], int(bfw["line"] or -1))
            wframe = _frame_label(bfw["function"], bfw["file"], bfw["line"], code.get(fkey))
        base_conf = 1.0 if w["proven"] else 0.8
        owner = rlock_owner.get(addr)
        holder_key = ident_to_thread.get(int(owner[0])) if owner else None
        if holder_key is not None and owner is not None:
            edges.append(mk(pid, tid, res, holder_key, kind, base_conf, not w["proven"], [*w["ev"], owner[1]],
                            "RLock owner", wframe))
            continue
        cs = [c for c in cands.get(addr, []) if c[1] != key and c[1][0] == pid]
        best = max((c[0] for c in cs), default=None)
        cs = [c for c in cs if c[0] == best]
        if not cs:
            edges.append(mk(pid, tid, res, None, kind, base_conf, not w["proven"], w["ev"],
                            "gdb/py-bt lock wait" if w["proven"] else "py-bt with + py-spy locals", wframe))
            continue
        for conf, hkey, hev, hlabel in sorted(cs, key=lambda c: c[1]):
            c = min(base_conf, conf if len(cs) == 1 else conf / 2)
            edges.append(mk(pid, tid, res, hkey, kind, round(c, 2), True, [*w["ev"], hev],
                            "lock wait + py-spy locals of the holder", wframe, hlabel))
    _name_resources(edges, _lock_names(lock_frames, frames, waits_on))
    return edges


# --- file locks -------------------------------------------------------------------------------
def _range(start: Any, end: Any) -> str:
    return f"{start}-{'EOF' if end is None else end}"


def file_lock_edges(proc_locks: pl.DataFrame, events: pl.DataFrame) -> list[Edge]:
    if not _cols(proc_locks, "lock_id", "blocked", "pid", "dev", "inode"):
        return []
    edges: list[Edge] = []
    kinds = {"POSIX": "fcntl", "OFDLCK": "fcntl", "FLOCK": "flock", "LEASE": "lease"}
    for (source,), snap in proc_locks.group_by(["source"], maintain_order=True):
        held = snap.filter(~pl.col("blocked")).sort("line")
        by_id = {r["lock_id"]: r for r in held.iter_rows(named=True)}
        waiting: set[int] = set()
        for w in snap.filter(pl.col("blocked")).sort("line").iter_rows(named=True):
            h = by_id.get(w["lock_id"])
            if h is None:
                continue
            kind = kinds.get(h["lock_class"], "fcntl")
            res = f"{kind}:{h['dev']}:{h['inode']}:{_range(h['start'], h['end'])}"
            waiting.add(int(w["pid"]))
            edges.append(Edge(f"pid:{w['pid']}", res, f"pid:{h['pid']}", kind, 1.0, False,
                              [_ev(source, w["line"]), _ev(source, h["line"])], "/proc/locks"))
        # EDEADLK: the refused request closed a cycle through a waiter of this snapshot
        if not edges or not _cols(events, "text", "source", "line"):
            continue
        refused = events.filter(pl.col("text").str.contains(EDEADLK_RE.pattern)).sort("ts", "source", "line",
                                                                                        nulls_last=True)
        if refused.is_empty():
            continue
        r = refused.row(0, named=True)
        for e in [e for e in edges if e.kind == "fcntl" and e.evidence[0].startswith(f"{source}:")]:
            holder_pid = int(e.holder.split(":")[1]) if e.holder else None
            waiter_pid = int(e.waiter.split(":")[1])
            if holder_pid is None or holder_pid in waiting:
                continue
            _, dev_inode_range = e.resource.split(":", 1)
            dev_inode = dev_inode_range.rsplit(":", 1)[0]
            for h in held.filter(pl.col("pid") == waiter_pid).iter_rows(named=True):
                if f"{h['dev']}:{h['inode']}" != dev_inode:
                    continue
                res = f"fcntl:{h['dev']}:{h['inode']}:{_range(h['start'], h['end'])}"
                if res == e.resource:
                    continue
                edges.append(Edge(f"pid:{holder_pid}", res, f"pid:{waiter_pid}", "fcntl", 0.7, True,
                                  [_ev(r["source"], r["line"]), _ev(source, h["line"])],
                                  "EDEADLK: refused request closing the cycle", ts=r.get("ts"),
                                  host=r.get("host"), task_id=r.get("task_id"),
                                  waiter_frame=str(r.get("message") or "")[:200]))
    return edges


# --- databases --------------------------------------------------------------------------------
def pg_edges(events: pl.DataFrame) -> list[Edge]:
    if not _cols(events, "text", "source", "line"):
        return []
    sub = events.filter(pl.col("text").str.contains("waits for ", literal=True)
                        & pl.col("text").str.contains("; blocked by process ", literal=True))
    edges: dict[tuple[str, str, str], Edge] = {}
    for row in sub.sort("ts", "source", "line", nulls_last=True).iter_rows(named=True):
        text: str = row["text"]
        queries = {int(p): q.strip() for p, q in PG_QUERY_RE.findall(text)}
        first = None
        for m in PG_EDGE_RE.finditer(text):
            a, mode, obj, b = m.group(1), m.group(2), m.group(3), m.group(4)
            first = first or a
            line = int(row["line"]) + text.count("\n", 0, m.start())
            key = (f"pg:{a}", f"pg:{obj}", f"pg:{b}")
            # the backend that reports the deadlock is the first waiter; the task that got the error ran it
            task = row.get("task_id") if a == first else None
            e = edges.get(key)
            if e is None:
                edges[key] = Edge(key[0], key[1], key[2], "db", 1.0, False, [_ev(row["source"], line)],
                                  f"PostgreSQL deadlock report ({mode})", ts=row.get("ts"), host=row.get("host"),
                                  task_id=task, waiter_frame=queries.get(int(a)), holder_frame=queries.get(int(b)))
            else:
                ev = _ev(row["source"], line)
                if ev not in e.evidence:
                    e.evidence.append(ev)
                e.task_id = e.task_id or task
                e.waiter_frame = e.waiter_frame or queries.get(int(a))
                e.holder_frame = e.holder_frame or queries.get(int(b))
                if row.get("host") and "@" in str(row.get("host")) and not (e.host and "@" in e.host):
                    e.host = row.get("host")
    return list(edges.values())


def innodb_edges(locks: pl.DataFrame) -> list[Edge]:
    if not _cols(locks, "trx_id", "waiting"):
        return []
    edges: list[Edge] = []

    def res(r: Mapping[str, Any]) -> str:
        if r["lock_type"] == "TABLE":
            return f"mysql:{r['db']}.{r['table']} table"
        return f"mysql:{r['db']}.{r['table']} {r['index']} heap {r['heap_no']}"

    for (source,), grp in locks.group_by(["source"], maintain_order=True):
        rows = grp.sort("line").to_dicts()
        block_of = {}
        for r in rows:
            if r["waiting"]:
                block_of[r["trx_id"]] = r
        trxs = sorted({r["trx_id"] for r in rows}, key=lambda t: int(t))
        for w in [r for r in rows if r["waiting"]]:
            holders = [r for r in rows if not r["waiting"] and r["trx_id"] != w["trx_id"] and res(r) == res(w)]
            inferred = False
            if not holders and len(trxs) == 2:
                other = next(t for t in trxs if t != w["trx_id"])
                holders, inferred = [{**w, "trx_id": other, "line": w["line"]}], True
            for h in holders:
                hb = block_of.get(h["trx_id"], {})
                edges.append(Edge(f"mysql:trx {w['trx_id']}", res(w), f"mysql:trx {h['trx_id']}", "db",
                                  0.9 if inferred else 1.0, inferred,
                                  [_ev(source, w["line"]), _ev(source, h["line"])],
                                  "InnoDB LATEST DETECTED DEADLOCK" + (" (victim)" if w["rolled_back"] else ""),
                                  host="mysql", waiter_name=f"thread id {w['thread_id']}" if w["thread_id"] else None,
                                  holder_name=f"thread id {hb['thread_id']}" if hb.get("thread_id") else None,
                                  waiter_frame=w["query"], holder_frame=hb.get("query")))
    return edges


# --- processes: waitpid/join and pipes -----------------------------------------------------------
# Blocked system calls by number, per architecture (/proc/PID/syscall prints the number only).
SYSCALLS = {
    "x86_64": {0: "read", 1: "write", 19: "readv", 20: "writev", 61: "wait4", 247: "waitid"},
    "aarch64": {63: "read", 64: "write", 65: "readv", 66: "writev", 260: "wait4", 95: "waitid"},
}
SYSCALL_CLASS = {"read": "read", "readv": "read", "write": "write", "writev": "write", "wait4": "wait",
                 "waitid": "wait"}
KERNEL_CLASS_RE = [("wait", re.compile(r"^(?:do_wait|kernel_wait4|kernel_waitid)$")),
                   ("write", re.compile(r"pipe_write$")),
                   ("read", re.compile(r"pipe_read$|^pipe_wait(?:_readable)?$"))]
# Python frames blocked in a process wait / a pipe operation: (function's last part, file basename);
# popen_fork.py, process.py and connection.py count only inside billiard or multiprocessing
PY_WAIT = {("poll", "popen_fork.py"), ("wait", "popen_fork.py"), ("join", "process.py"),
           ("_try_wait", "subprocess.py"), ("wait", "subprocess.py"), ("_wait", "subprocess.py")}
PY_PIPE = {("_send", "connection.py"): "write", ("_recv", "connection.py"): "read"}
NATIVE_CLASS = {"wait4": "wait", "__wait4": "wait", "__GI___wait4": "wait", "waitpid": "wait", "__waitpid": "wait",
                "waitid": "wait", "__waitid": "wait", "write": "write", "__libc_write": "write",
                "__GI___libc_write": "write", "read": "read", "__libc_read": "read", "__GI___libc_read": "read"}
PROCESS_OBJ_RE = re.compile(r"<(?:\w+\.)?(?:\w*Process) at (0x[0-9a-f]+)>")
CONNECTION_RE = re.compile(r"<(?:\w+\.)?Connection at (0x[0-9a-f]+)>")


@dataclass
class _Wait:
    """What one thread is blocked in: `cls` wait / write / read, with what proves it."""

    cls: str
    kernel: bool  # seen by the kernel (/proc wchan, syscall, stack or ps WCHAN), not only in a stack
    evidence: list[str]
    label: str
    target: int | None = None  # wait4's pid, or the fd of a read/write
    obj: str | None = None  # address of the Process joined / the Connection used (py-spy --locals)


def _arch(kstack: Sequence[str]) -> str | None:
    text = " ".join(kstack)
    if "entry_SYSCALL_64" in text or "do_syscall_64" in text or "__x64_sys" in text:
        return "x86_64"
    if "el0_svc" in text or "invoke_syscall" in text or "__arm64_sys" in text:
        return "aarch64"
    return None


def _parent_evidence(processes: pl.DataFrame) -> dict[int, str]:
    """pid → the line that names its parent (procfs stat/status, ps, py-spy ``Parent Process``)."""
    if not _cols(processes, "pid", "ppid", "tid", "tool", "source", "line"):
        return {}
    rows = processes.filter(pl.col("pid").is_not_null() & pl.col("ppid").is_not_null() & pl.col("tid").is_null())
    out: dict[int, str] = {}
    for pid, src, line in rows.sort("tool", "source", "line").select("pid", "source", "line").rows():
        out.setdefault(int(pid), _ev(src, line))
    return out


def _kernel_waits(processes: pl.DataFrame) -> tuple[dict[tuple[int, int], _Wait | None], dict[int, int]]:
    """(pid, tid) → the kernel's word on what the thread sleeps in (None: in nothing we follow); pid → ppid
    (procfs before ps before py-spy ``--subprocesses``)."""
    waits: dict[tuple[int, int], _Wait | None] = {}
    ppid: dict[int, int] = {}
    if not _cols(processes, "pid", "ppid", "wchan", "syscall", "kstack"):
        return waits, ppid
    rows = processes.filter(pl.col("pid").is_not_null()).sort("tool", "source", "line")  # procfs, ps, py-spy
    for r in rows.iter_rows(named=True):
        pid = int(r["pid"])
        if r["ppid"] is not None and r["tid"] is None:
            ppid.setdefault(pid, int(r["ppid"]))
        key = (pid, int(r["tid"]) if r["tid"] is not None else pid)
        kstack = list(r["kstack"] or [])
        top = [x for x in (r["wchan"], kstack[0] if kstack else None) if x]
        if not top:
            continue
        cls = next((c for c, rx in KERNEL_CLASS_RE if any(rx.search(t) for t in top)), None)
        ev = [_ev(r["source"], r["wchan_line"] or r["line"])]
        if cls is None:
            waits.setdefault(key, None)  # asleep in something else (epoll, futex …): no process/pipe wait
            continue
        w = _Wait(cls, True, ev, f"{r['tool']}: {top[0]}")
        name = SYSCALLS.get(_arch(kstack) or "", {}).get(r["syscall"]) if r["syscall"] is not None else None
        args = list(r["syscall_args"] or [])
        if name and SYSCALL_CLASS.get(name) == cls and args:
            with contextlib.suppress(ValueError):
                a0, a1 = int(args[0], 16), int(args[1], 16) if len(args) > 1 else -1
                if name == "wait4" and 0 < a0 < 1 << 31:
                    w.target = a0
                elif name == "waitid" and a0 == 1:  # P_PID
                    w.target = a1
                elif cls in ("read", "write"):
                    w.target = a0
                if w.target is not None:
                    w.label = f"{r['tool']}: {name}({w.target}) in {top[0]}"
                    w.evidence.append(_ev(r["source"], r["syscall_line"]))
        prev = waits.get(key)
        if prev is None or (w.target is not None and prev.target is None):
            waits[key] = w
    return waits, ppid


def _python_waits(frames: pl.DataFrame) -> dict[tuple[int, int], _Wait]:
    """(pid, tid) → a process wait or pipe operation at the innermost frames of a dumped stack."""
    out: dict[tuple[int, int], _Wait] = {}
    if not _cols(frames, "pid", "tid", "depth", "function", "file"):
        return out
    sub = frames.filter(pl.col("pid").is_not_null() & pl.col("tid").is_not_null() & (pl.col("depth") <= 3))
    has_locals = "locals" in sub.columns
    for (_, _), grp in sub.group_by(["source", "thread_key"], maintain_order=True):
        rows = grp.sort("depth").to_dicts()
        top_py = next((r for r in rows if not r.get("native")), None)
        found: _Wait | None = None
        for r in rows:
            func = str(r["function"] or "").rsplit(".", 1)[-1]
            path = str(r["file"] or "")
            base = path.rsplit("/", 1)[-1]
            if base != "subprocess.py" and "billiard" not in path and "multiprocessing" not in path:
                base = ""  # a process.py / connection.py of the application is not multiprocessing's
            ev = [_ev(r["source"], r.get("src_line"))]
            if r.get("native"):
                cls = NATIVE_CLASS.get(str(r["function"]))
                if cls and r["depth"] <= 2:
                    found = _Wait(cls, False, ev, _frame_label(r["function"], r["file"], r["line"]))
                    break
                continue
            if r is not top_py:
                continue
            if (func, base) in PY_WAIT:
                found = _Wait("wait", False, ev, _frame_label(r["function"], r["file"], r["line"]))
            elif (func, base) in PY_PIPE:
                found = _Wait(PY_PIPE[(func, base)], False, ev, _frame_label(r["function"], r["file"], r["line"]))
            break
        if found is None:
            continue
        if has_locals:  # the Process joined / the Connection written: addresses survive fork
            rx = PROCESS_OBJ_RE if found.cls == "wait" else CONNECTION_RE
            for r in rows:
                m = rx.search(str(_locals(r).get("self", "")))
                if m:
                    found.obj = m.group(1)
                    break
        key = (int(rows[0]["pid"]), int(rows[0]["tid"]))
        prev = out.get(key)
        if prev is None:
            out[key] = found
        elif prev.cls == found.cls:
            prev.evidence += [e for e in found.evidence if e not in prev.evidence]
            prev.obj = prev.obj or found.obj
    return out


def _locals(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        loc = json.loads(row.get("locals") or "{}")
    except (ValueError, TypeError):
        return {}
    return loc if isinstance(loc, dict) else {}


def _running_objects(frames: pl.DataFrame, pattern: re.Pattern[str], functions: tuple[str, ...]) -> dict[str, set[int]]:
    """Object address → pids whose frames `functions` have it as `self` (a Process's run/_bootstrap)."""
    out: dict[str, set[int]] = {}
    if not _cols(frames, "locals", "pid", "function"):
        return out
    sub = frames.filter(pl.col("locals").is_not_null() & pl.col("pid").is_not_null()
                        & pl.col("function").str.contains("|".join(re.escape(f) for f in functions)))
    for r in sub.select("pid", "function", "locals").to_dicts():
        if str(r["function"]).rsplit(".", 1)[-1] not in {f.rsplit(".", 1)[-1] for f in functions}:
            continue
        m = pattern.search(str(_locals(r).get("self", "")))
        if m:
            out.setdefault(m.group(1), set()).add(int(r["pid"]))
    return out


def _holders_of(frames: pl.DataFrame, pid: int, address: str) -> list[str]:
    """Evidence of frames of `pid` whose locals hold an object at `address` (fork keeps addresses)."""
    if not _cols(frames, "locals", "pid", "source", "src_line"):
        return []
    sub = frames.filter((pl.col("pid") == pid) & pl.col("locals").is_not_null()
                        & pl.col("locals").str.contains(address, literal=True))
    return [_ev(s, ln) for s, ln in sub.select("source", "src_line").rows()]


RUN_FUNCTIONS = ("BaseProcess.run", "BaseProcess._bootstrap", "Process.run")


def object_parents(frames: pl.DataFrame) -> dict[int, int]:
    """child pid → parent pid where a stack joins the Process object that another process's stack runs."""
    runs = _running_objects(frames, PROCESS_OBJ_RE, RUN_FUNCTIONS)
    out: dict[int, int] = {}
    for (pid, _), w in sorted(_python_waits(frames).items()):
        kids = sorted(p for p in runs.get(w.obj or "", set()) if p != pid) if w.cls == "wait" else []
        if len(kids) == 1:
            out.setdefault(kids[0], pid)
    return out


def inherit_parents(info: ProcessInfo, ppid: Mapping[int, int]) -> None:
    """A process no inspect output names (forked by a task) belongs to its parent's node and task:
    each from the nearest ancestor that has one (its node may already be known from its own
    command line, its task never is)."""
    def ancestor(pid: int, known: Mapping[int, object]) -> int | None:
        p, seen = pid, set()
        while p in ppid and p not in known and p not in seen:
            seen.add(p)
            p = ppid[p]
        return p if p != pid and p in known else None

    for pid in sorted(ppid):
        if pid not in info.host and (a := ancestor(pid, info.host)) is not None:
            info.host[pid] = info.host[a]
        if pid not in info.task and (a := ancestor(pid, info.task)) is not None:
            info.task[pid] = info.task[a]


def process_edges(frames: pl.DataFrame, processes: pl.DataFrame, proc_fds: pl.DataFrame,
                  info: ProcessInfo, names: Mapping[tuple[int, int], str]) -> list[Edge]:
    """``process`` edges (a thread in waitpid/join waits for the child's main thread) and ``pipe`` edges
    (a thread blocked writing/reading a pipe waits for the processes holding the other end).

    Proven: /proc/PID/syscall gives wait4's pid and the fd of a read/write, the fd listing turns
    the fd into `pipe:[inode]` and names who holds the other end (permission bits: `r`/`w`).
    Inferred, without them: a stack blocked in a process wait joins the only known child (ps /
    /proc stat ppid / py-spy ``Parent Process``) or the process whose stack runs the joined
    Process object (same address in py-spy --locals, as fork keeps it); a stack blocked in a
    multiprocessing Connection send/recv waits for its parent when the parent waits for it (the
    join-before-drain deadlock).
    """
    kern, ppid = _kernel_waits(processes)
    py = _python_waits(frames)
    waits: dict[tuple[int, int], _Wait] = {}
    for key in sorted(set(kern) | set(py)):
        p = py.get(key)
        if key not in kern:
            if p is not None:
                waits[key] = p
            continue
        k = kern[key]
        if k is None:  # the kernel saw it asleep elsewhere: a stale or busy stack is not a wait
            continue
        if p is not None and p.cls == k.cls:
            k.evidence += p.evidence
            k.obj, k.label = p.obj, f"{p.label}; {k.label}"
        waits[key] = k
    children: dict[int, list[int]] = {}
    for c, pp in ppid.items():
        children.setdefault(pp, []).append(c)
    runs = _running_objects(frames, PROCESS_OBJ_RE, RUN_FUNCTIONS)
    parent_ev = _parent_evidence(processes)

    def tid(pid: int, t: int) -> str:
        return thread_id(info, pid, t)

    def blocked_thread(pid: int) -> int:
        ts = sorted(t for p, t in waits if p == pid)
        return ts[0] if len(ts) == 1 else pid

    edges: list[Edge] = []
    joins: dict[int, tuple[int, int]] = {}  # child pid → (pid, tid) of the thread waiting for it
    for (pid, t), w in sorted(waits.items()):
        if w.cls != "wait":
            continue
        child, conf, inferred, ev, how = w.target, 1.0, False, list(w.evidence), "/proc/PID/syscall wait4"
        if child is None:
            by_obj = sorted(p for p in runs.get(w.obj or "", set()) if p != pid)
            kids = sorted(children.get(pid, []))
            if len(by_obj) == 1:
                child, conf, how = by_obj[0], 0.8, "joined Process object running in the child (py-spy --locals)"
            elif len(kids) == 1:
                child, conf, how = kids[0], 0.8 if w.kernel else 0.7, "the only known child (ppid)"
                ev += [parent_ev[child]] if child in parent_ev else []
            inferred = True
        if child is None or child == pid:
            continue
        joins.setdefault(child, (pid, t))
        edges.append(Edge(tid(pid, t), f"process:{child}", tid(child, child), "process", conf, inferred, ev,
                          how, host=info.host.get(pid), task_id=info.task.get(pid),
                          holder_task_id=info.task.get(child), waiter_name=names.get((pid, t)),
                          holder_name=names.get((child, child)), waiter_frame=w.label,
                          holder_frame=f"process {child}" + (f" (child of {ppid[child]})" if child in ppid else "")))
    fds = proc_fds.filter(pl.col("pid").is_not_null() & (pl.col("object") == "pipe")) \
        if _cols(proc_fds, "pid", "object", "inode", "mode") else pl.DataFrame()
    for (pid, t), w in sorted(waits.items()):
        if w.cls not in ("read", "write"):
            continue
        other = "r" if w.cls == "write" else "w"
        mine = "w" if w.cls == "write" else "r"
        base = dict(host=info.host.get(pid), task_id=info.task.get(pid), waiter_name=names.get((pid, t)))
        proven = False
        if w.kernel and w.target is not None and not fds.is_empty():
            fd = fds.filter((pl.col("pid") == pid) & (pl.col("fd") == w.target)
                            & pl.col("mode").str.contains(mine, literal=True)).sort("source", "line")
            if fd.height:
                inode = int(fd["inode"][0])
                ends = fds.filter((pl.col("inode") == inode) & (pl.col("pid") != pid)
                                  & pl.col("mode").str.contains(other, literal=True)).sort("pid", "source", "line")
                holders = sorted({int(p) for p in ends["pid"]})
                proven = bool(holders)
                for h in holders:
                    h_ends = ends.filter(pl.col("pid") == h)
                    h_ev = [_ev(s, ln) for s, ln in h_ends.select("source", "line").rows()]
                    end = "read" if other == "r" else "write"
                    hfds = ", ".join(str(x) for x in h_ends["fd"].unique(maintain_order=True))
                    edges.append(Edge(
                        tid(pid, t), f"pipe:[{inode}]", tid(h, blocked_thread(h)), "pipe",
                        1.0 if len(holders) == 1 else round(1 / len(holders), 2), False,
                        [*w.evidence, _ev(fd["source"][0], fd["line"][0]), *h_ev],
                        f"/proc/PID/syscall {w.cls}(fd {w.target}) + fd listings", **base,
                        holder_task_id=info.task.get(h), holder_name=names.get((h, blocked_thread(h))),
                        waiter_frame=f"{w.label} (fd {w.target}, {mine} end of pipe:[{inode}])",
                        holder_frame=f"process {h} holds the {end} end (fd {hfds})"))
        if proven:
            continue
        join = joins.get(pid)
        if join is None or (pid in ppid and join[0] != ppid[pid]):
            continue  # only the documented shape: the reader/writer's parent waits for it
        shared = _holders_of(frames, join[0], w.obj) if w.obj else []
        res = f"pipe:? <Connection at {w.obj}>" if w.obj else f"pipe:? {pid}↔{join[0]}"
        conf = 0.7 if (shared or w.kernel) else 0.6
        edges.append(Edge(tid(pid, t), res, tid(*join), "pipe", conf, True, [*w.evidence, *shared[:1]],
                          f"pipe {w.cls} in a child its parent waits for (join before drain)", **base,
                          holder_task_id=info.task.get(join[0]), holder_name=names.get(join),
                          waiter_frame=w.label,
                          holder_frame=f"process {join[0]} waits for {pid}"
                          + (" and holds the same Connection" if shared else "")))
    return edges


# --- threads joining threads --------------------------------------------------------------------
OBJ_RE = re.compile(r"^<[\w.]+ at (0x[0-9a-f]+)>$")
JOIN_FUNCTIONS = ("join", "_wait_for_tstate_lock")  # Thread methods a joiner is blocked in (threading.py)
THREAD_RUN_FUNCTIONS = ("run", "_bootstrap_inner", "_bootstrap")  # frames of a started Thread (threading.py)


def _in_threading(row: Mapping[str, Any]) -> bool:
    return str(row.get("file") or "").rsplit("/", 1)[-1] == "threading.py"


def _kernel_tops(processes: pl.DataFrame) -> dict[tuple[int, int], list[tuple[str, str]]]:
    """(pid, tid) → (wait channel or top of kernel stack, evidence) the kernel gave for that thread."""
    out: dict[tuple[int, int], list[tuple[str, str]]] = {}
    if not _cols(processes, "pid", "tid", "wchan", "kstack", "source", "line"):
        return out
    for r in processes.filter(pl.col("pid").is_not_null()).sort("tool", "source", "line").iter_rows(named=True):
        key = (int(r["pid"]), int(r["tid"]) if r["tid"] is not None else int(r["pid"]))
        ev = _ev(r["source"], r.get("wchan_line") or r["line"])
        for top in (r["wchan"], (r["kstack"] or [None])[0]):
            if top:
                out.setdefault(key, []).append((str(top), ev))
    return out


def _join_timeout(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The timeout a join waits with, None when it waits for good: `Thread.join(timeout=None)`,
    `_wait_for_tstate_lock(block=True, timeout=-1)` (py-spy --locals)."""
    for r in rows:
        loc = _locals(r)
        fn = str(r["function"]).rsplit(".", 1)[-1]
        t = str(loc.get("timeout", "None" if fn == "join" else "-1"))
        if (fn == "join" and t != "None") or (fn == "_wait_for_tstate_lock" and (
                t not in ("-1", "None") or str(loc.get("block", "True")) == "False")):
            return t
    return None


def join_edges(frames: pl.DataFrame, processes: pl.DataFrame, info: ProcessInfo,
               names: Mapping[tuple[int, int], str]) -> list[Edge]:
    """``join`` edges: a thread blocked in ``Thread.join`` waits for the thread running the joined object.

    Only within one process of one dump: addresses are per process (and fork copies them into
    children, where the same address may run another thread), so a join is matched to a run frame
    of the same pid in the same source.  A joiner the kernel saw asleep outside a futex is not
    blocked in the join (a stale or busy stack).
    """
    if not _cols(frames, "locals", "pid", "tid", "depth", "function", "file", "source", "src_line", "thread_key"):
        return []
    sub = frames.filter(pl.col("pid").is_not_null() & pl.col("tid").is_not_null()
                        & pl.col("file").str.contains(r"(?:^|/)threading\.py$"))
    if sub.is_empty():
        return []
    kernel = _kernel_tops(processes)
    # (source, pid) → address → {tid: frame} of the threads whose run/_bootstrap frames have it as `self`
    runs: dict[tuple[str, int], dict[str, dict[int, dict[str, Any]]]] = {}
    for r in sub.filter(pl.col("locals").is_not_null()).sort("source", "src_line").iter_rows(named=True):
        if str(r["function"]).rsplit(".", 1)[-1] not in THREAD_RUN_FUNCTIONS:
            continue
        m = OBJ_RE.match(str(_locals(r).get("self", "")))
        if m:
            runs.setdefault((r["source"], int(r["pid"])), {}).setdefault(m.group(1), {}).setdefault(int(r["tid"]), r)
    joiners = sub.filter(pl.col("function").str.contains(rf"(?:^|\.)(?:{'|'.join(JOIN_FUNCTIONS)})$"))["thread_key"]
    edges: list[Edge] = []
    for (source, _), grp in frames.filter(pl.col("thread_key").is_in(joiners.unique().to_list())
                                          & pl.col("pid").is_not_null() & pl.col("tid").is_not_null()) \
            .group_by(["source", "thread_key"], maintain_order=True):
        rows = [r for r in grp.sort("depth").to_dicts() if not r.get("native")]
        top = 0
        while top < len(rows) and _in_threading(rows[top]) \
                and str(rows[top]["function"]).rsplit(".", 1)[-1] in JOIN_FUNCTIONS:
            top += 1
        if top == 0:
            continue  # the innermost Python frame is not a Thread.join
        pid, tid = int(rows[0]["pid"]), int(rows[0]["tid"])
        addrs = {m.group(1) for r in rows[:top] if (m := OBJ_RE.match(str(_locals(r).get("self", ""))))}
        if len(addrs) != 1:
            continue  # no --locals, or frames that disagree
        addr = addrs.pop()
        targets = {t: r for t, r in runs.get((str(source), pid), {}).get(addr, {}).items() if t != tid}
        if len(targets) != 1:
            continue  # the joined thread is not (or not unambiguously) a live thread of this dump
        (ttid, run), = targets.items()
        tops = kernel.get((pid, tid), [])
        if tops and not any("futex" in t for t, _ in tops):
            continue
        bound = _join_timeout(rows[:top])
        caller = rows[top] if top < len(rows) else None
        label = _frame_label(rows[0]["function"], rows[0]["file"], rows[0]["line"])
        if caller is not None:
            label += " in " + _frame_label(caller["function"], caller["file"], caller["line"])
        if bound is not None:
            label += f" (timeout={bound}: it wakes up, a caller that loops on it does not progress)"
        if tops:
            label += f"; kernel: {tops[0][0]}"
        ev = [_ev(source, rows[0]["src_line"]), *(e for _, e in tops[:1]), _ev(run["source"], run["src_line"])]
        edges.append(Edge(thread_id(info, pid, tid), f"thread:{addr}", thread_id(info, pid, ttid), "join",
                          1.0 if bound is None else 0.5, False,
                          ev, "Thread.join on the Thread object another thread of the process runs (py-spy --locals)",
                          host=info.host.get(pid), task_id=info.task.get(pid), holder_task_id=info.task.get(pid),
                          waiter_name=names.get((pid, tid)), holder_name=names.get((pid, ttid)), waiter_frame=label,
                          holder_frame=f"thread {ttid} runs the joined Thread object ("
                          + _frame_label(run["function"], run["file"], run["line"]) + ")"))
    return edges


# --- deadlocks without owners -------------------------------------------------------------------
LOCK_KINDS = ("lock", "rlock", "mutex")
# states of a thread that cannot release a lock another thread waits for: blocked itself, or Celery
# plumbing waiting for work (`stack_rules.IDLE_STACK`)
BLOCKED_STATES = ("lock_wait", "idle")
MAX_OWNERLESS = 6  # waiters of one process tried for a unique assignment (6! permutations)
OWNERLESS_VIA = "every thread of the process is blocked"  # how (`via`) an edge of `ownerless_edges` begins
OWNERLESS_CONFIDENCE = 0.5  # one dump of each thread: blocked now, maybe not for good
OWNERLESS_CONFIRMED = 0.6  # successive dumps show every thread of the process unchanged


def _tid_parts(member: str | None) -> tuple[int, int] | None:
    parts = (member or "").split("/")
    return (int(parts[1]), int(parts[2])) if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() else None


def _joiners(frames: pl.DataFrame) -> set[tuple[int, int]]:
    """(pid, tid) of threads whose innermost Python frame, in some dump, is threading's `Thread.join`
    / `_wait_for_tstate_lock`: the lock they wait on is the joined thread's, held until it exits."""
    if not _cols(frames, "pid", "tid", "depth", "function", "file", "thread_key"):
        return set()
    py = frames.filter(pl.col("pid").is_not_null() & pl.col("tid").is_not_null() & ~pl.col("native").fill_null(False)
                       & pl.col("file").is_not_null())
    top = py.sort("depth").group_by("thread_key", maintain_order=True).first()
    out = set()
    for r in top.select("pid", "tid", "function", "file").to_dicts():
        if _in_threading(r) and str(r["function"]).rsplit(".", 1)[-1] in JOIN_FUNCTIONS:
            out.add((int(r["pid"]), int(r["tid"])))
    return out


def _assignments(waits: Mapping[str, str], known: Mapping[str, str], limit: int = 2) -> list[dict[str, str]]:
    """Ways (at most `limit`) to give each waited resource a holder among the waiters, each waiter
    holding one resource and none its own (`waits`: waiter → resource; `known`: resource →
    observed holder), as resource → holder."""
    ws = sorted(waits)
    found: list[dict[str, str]] = []
    for perm in permutations(ws):
        # resource of waiter ws[i] is held by perm[i]
        if any(h == w for w, h in zip(ws, perm, strict=True)):
            continue
        got = {waits[w]: h for w, h in zip(ws, perm, strict=True)}
        if all(got[r] == h for r, h in known.items() if r in got):
            found.append(got)
            if len(found) >= limit:
                break
    return found


def _unique_assignment(waits: Mapping[str, str], known: Mapping[str, str]) -> dict[str, str] | None:
    """The one way of `_assignments`, or None when there are none or several."""
    found = _assignments(waits, known)
    return found[0] if len(found) == 1 else None


def ownerless_edges(edges: Sequence[Edge], threads: pl.DataFrame, frames: pl.DataFrame) -> list[Edge]:
    """Holders inferred for lock waits no dump shows an owner of (module-level Python locks, C mutexes).

    In one process, when at least two threads wait on locks (gdb ``lock_PyThread_acquire_lock
    (self=…)``/``rlock_acquire``/``pthread_mutex_lock``, py-bt), each on a different one; every other
    thread of that process is blocked too (a lock wait — a ``Thread.join`` among them — or idle
    Celery plumbing) in every dump of it; and no thread was seen to progress between successive
    dumps (`threads.compare_dumps`), then nothing that could release those locks is running: they
    are held by the waiters themselves. When exactly one assignment gives each waiter one of the
    others' locks (two threads: the crossed one; more when observed owners fix the rest), its
    edges are added: inferred, confidence `OWNERLESS_CONFIRMED` when successive dumps show every
    waiter unchanged, else `OWNERLESS_CONFIDENCE`. When several assignments fit (three or more
    threads, no owner known), the waits keep no holder and get this `via` plus "which … holds which
    lock is not known"; `cycles.ownerless_groups` makes one row of them. Several threads queued on
    one lock (held by a thread doing something else) is a lock wait, never this.

    What the dumps cannot rule out: a thread that joins the waiters could hold one of the locks
    (the process hangs in every such assignment; the ring shown is the one among the waiters); a
    lock left held by a thread that has exited; an ``acquire(timeout=…)`` that will return and back
    off (gdb shows no timeout of a `with` / acquire). Hence inferred, and the lower confidence.
    """
    from analyzer.analyses.threads import compare_dumps

    if not _cols(threads, "pid", "tid", "state"):
        return []
    joiners = _joiners(frames)
    by_pid: dict[int, list[Edge]] = {}
    for e in edges:
        ids = _tid_parts(e.waiter)
        if e.kind in LOCK_KINDS and ids is not None and ids not in joiners:
            by_pid.setdefault(ids[0], []).append(e)
    out: list[Edge] = []
    for pid, es in sorted(by_pid.items()):
        waits: dict[str, set[str]] = {}
        for e in es:
            waits.setdefault(e.waiter, set()).add(e.resource)
        if len(waits) < 2 or len(waits) > MAX_OWNERLESS or any(len(r) != 1 for r in waits.values()):
            continue
        one = {w: next(iter(r)) for w, r in waits.items()}
        if len(set(one.values())) != len(one):
            continue  # two threads queue on one lock: its holder is doing something else
        unknown = [e for e in es if e.holder is None]
        if not unknown:
            continue
        proc = threads.filter(pl.col("pid") == pid)
        waiting = {ids[1] for w in waits if (ids := _tid_parts(w))} | {t for p, t in joiners if p == pid}
        others = proc.filter(~pl.col("tid").is_in(sorted(waiting)))
        if not others.filter(~pl.col("state").is_in(list(BLOCKED_STATES))).is_empty():
            continue  # some other thread may be running and hold (and release) one of the locks
        verdicts = compare_dumps(proc, frames)
        if not verdicts.filter(pl.col("verdict") == "progressing").is_empty():
            continue
        stuck = {(int(p), int(t)) for p, t in verdicts.filter(pl.col("verdict") == "stuck").select("pid", "tid").rows()}
        known = {e.resource: e.holder for e in es if e.holder is not None and e.holder in waits}
        ways = _assignments(one, known)
        if not ways:
            continue
        confirmed = all(_tid_parts(w) in stuck for w in waits)
        conf = OWNERLESS_CONFIRMED if confirmed else OWNERLESS_CONFIDENCE
        names = {e.waiter: e.waiter_name for e in es}
        frames_of = {e.waiter: e.waiter_frame for e in es}
        how = (OWNERLESS_VIA + ", each on a different lock, "
               + ("and successive dumps show none of them moving" if confirmed else "in the one dump of each")
               + ", so the blocked threads hold these locks themselves; no dump shows an owner")
        if len(ways) > 1:  # a deadlock all the same, but which thread holds which lock is not known
            out.extend(replace(e, confidence=min(e.confidence, conf), inferred=True,
                               via=how + f"; which of the {len(one)} threads holds which lock is not known")
                       for e in es if e.holder is None)
            continue
        got = ways[0]
        for e in unknown:
            h = got[e.resource]
            out.append(Edge(
                e.waiter, e.resource, h, e.kind, min(e.confidence, conf), True,
                [*e.evidence, *(x for o in es if o.waiter == h for x in o.evidence[:1])], how, ts=e.ts, host=e.host,
                task_id=e.task_id, holder_task_id=e.task_id, waiter_name=e.waiter_name, holder_name=names.get(h),
                waiter_frame=e.waiter_frame,
                holder_frame=None if frames_of.get(h) is None else f"{frames_of[h]} (blocked there; that it holds "
                "this lock is inferred)",
                resource_name=e.resource_name, resource_named_in=e.resource_named_in))
    return out


# --- assembly ---------------------------------------------------------------------------------
def _merge(edges: Iterable[Edge]) -> list[Edge]:
    """One edge per (waiter, resource, holder, kind), all evidence kept, best confidence."""
    out: dict[tuple[str, str, str | None, str], Edge] = {}
    for e in edges:
        key = (e.waiter, e.resource, e.holder, e.kind)
        if key not in out:
            out[key] = e
            continue
        m = out[key]
        for ev in e.evidence:
            if ev not in m.evidence:
                m.evidence.append(ev)
        if e.confidence > m.confidence:
            m.confidence, m.inferred, m.via = e.confidence, e.inferred, e.via
        for attr in ("task_id", "holder_task_id", "waiter_name", "holder_name", "waiter_frame", "holder_frame",
                     "host", "ts", "resource_name", "resource_named_in"):
            if getattr(m, attr) is None and getattr(e, attr) is not None:
                setattr(m, attr, getattr(e, attr))
    return list(out.values())


def _complete_holds(edges: list[Edge]) -> list[Edge]:
    """Fold "X holds R" facts (edges with an empty waiter) into the waits on R; drop them."""
    holds = [e for e in edges if e.waiter == ""]
    rest = [e for e in edges if e.waiter != ""]
    out = []
    for e in rest:
        same = [h for h in holds if h.resource == e.resource and h.holder == e.holder]
        if e.holder is not None and same and e.holder_frame is None:
            e.holder_frame = same[0].holder_frame
        if e.holder is None:
            hs = sorted({h.holder for h in holds if h.resource == e.resource and h.holder and h.holder != e.waiter})
            if len(hs) == 1:
                h = next(h for h in holds if h.resource == e.resource and h.holder == hs[0])
                e.holder, e.confidence, e.inferred, e.via = hs[0], min(e.confidence, h.confidence), True, h.via
                e.holder_name, e.holder_frame, e.holder_task_id = h.holder_name, h.holder_frame, h.holder_task_id
                e.evidence = [*e.evidence, *(x for x in h.evidence if x not in e.evidence)]
        out.append(e)
    return out


def build(frames: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """The `waits` frame (contract columns, then `WAITS_EXTRA`) from parsed frames."""
    threads, fr = _frame("threads", frames), _frame("frames", frames)
    events = _frame("events", frames)
    info = process_info(_frame("inspect", frames), _frame("workers", frames), threads)
    inherit_parents(info, {**object_parents(fr), **_kernel_waits(_frame("processes", frames))[1]})
    names, processes = _thread_names(threads), _frame("processes", frames)
    edges = [*thread_edges(threads, fr, _frame("gdb_values", frames), info),
             *file_lock_edges(_frame("proc_locks", frames), events),
             *pg_edges(events), *innodb_edges(_frame("innodb_locks", frames)),
             *process_edges(fr, processes, _frame("proc_fds", frames), info, names),
             *join_edges(fr, processes, info, names)]
    edges = _merge(_complete_holds(_merge(edges)))
    inferred = ownerless_edges(edges, threads, fr)
    if inferred:
        done = {(e.waiter, e.resource) for e in inferred}
        edges = [e for e in edges if e.holder is not None or (e.waiter, e.resource) not in done] + inferred
    rows = []
    for e in edges:
        ev = sorted(e.evidence, key=_ev_key)
        src, _, ln = ev[0].rpartition(":") if ev else ("", "", "")
        rows.append({"waiter": e.waiter, "resource": e.resource, "holder": e.holder, "kind": e.kind,
                     "confidence": e.confidence, "inferred": e.inferred, "evidence": ev[0] if ev else None,
                     "source": src or None, "line": int(ln) if ln.isdigit() else None, "ts": e.ts, "host": e.host,
                     "task_id": e.task_id, "holder_task_id": e.holder_task_id, "waiter_name": e.waiter_name,
                     "holder_name": e.holder_name, "waiter_frame": e.waiter_frame, "holder_frame": e.holder_frame,
                     "via": e.via, "all_evidence": ev, "resource_name": e.resource_name,
                     "resource_named_in": e.resource_named_in})
    if not rows:
        return conform(pl.DataFrame(schema=WAITS_FULL), WAITS)
    df = pl.DataFrame(rows, schema=WAITS_FULL)
    return conform(df, WAITS).sort("kind", "waiter", "resource", "holder", nulls_last=True)


def _ev_key(ev: str) -> tuple[str, int]:
    src, _, ln = ev.rpartition(":")
    return (src, int(ln)) if ln.isdigit() else (ev, 0)


FRAME_NAMES = ("threads", "frames", "gdb_values", "proc_locks", "innodb_locks", "inspect", "workers", "processes",
               "proc_fds")
