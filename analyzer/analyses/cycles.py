"""Deadlock cycles in the wait-for graph (`waits`), with the lock order that would break them.

Graph: one node per waiter/holder id, an edge waiter → holder per `waits` row with a holder
(parallel edges for several resources collapse; their resources are kept).  `strongly_connected`
is Tarjan's algorithm; `elementary_cycles` enumerates every elementary cycle inside each
component by a bounded depth-first search from each node over larger nodes only (each cycle is
found once, rooted at its smallest node; `MAX_CYCLES` bounds the work).  A self-loop (a thread
waiting for a mutex it owns) is a cycle of one.  Node ids already merge what several dumps of
one process say, so the same cycle seen in gdb, py-bt and py-spy is one row with all evidence.

Per cycle (`CYCLES` contract, then `CYCLES_EXTRA`): `members` (ids, rotated to start at the
smallest), `resources` (`resources[i]` is what `members[i]` waits for, held by `members[i+1]`),
`kind` (`lock` for threading.Lock/RLock, `mutex`, `fcntl`, `flock`, `db`, `pipe` for processes
blocked on each other through pipes and waitpid/join — a child's thread joins inside it included,
the Queue form — or `mixed`), `evidence` (every `source:line` of its edges) and `lock_order`: a
proposed global order of its resources.  A pipe cycle has no lock order; its `lock_order` puts the
pipes before the processes and threads and `lock_order_text` says what breaks it (`pipe_order`:
drain the pipe, or the queue, before waiting for the child).

`holders_seen` is false when a holder was inferred only from every thread of the process being
blocked (`waits.ownerless_edges`; the cycle text says so); when three or more such threads fit
several rings, `ownerless_groups` makes one row of all of them, without holders or lock order.

`lock_order`: every thread that holds H and waits for W took H before W (a *held → waited* pair;
the whole `waits` frame counts, not only this cycle).  Within a cycle these pairs are cyclic, so
the least-supported pair is dropped (fewest distinct members observed doing it, then lowest
confidence, then the pair that goes *against* sorted order, so ties give the sorted order) until
the pairs are acyclic; the order is the topological sort with the smallest id first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import polars as pl

from analyzer.analyses.waits import OWNERLESS_VIA
from analyzer.schema import CYCLES, conform

N = TypeVar("N", bound=Hashable)
MAX_CYCLES = 1000
MAX_LENGTH = 32

CYCLES_EXTRA: dict[str, pl.DataType] = {
    "members_text": pl.String(),  # `w1@sample/12466/12504 "ledger-writer", …`
    "resources_text": pl.String(),
    "lock_order_text": pl.String(),  # `lock:0x…700 → lock:0x…940`
    "cycle_text": pl.String(),  # `A waits for R1 held by B; B waits for R2 held by A`
    "confidence": pl.Float64(),  # weakest edge
    "inferred": pl.Boolean(),  # any edge inferred
    "holders_seen": pl.Boolean(),  # false when a holder is only inferred from every thread being blocked
    # JSON list, per member: id, name, host, pid, tid, task_id, holds [{resource, frame}], waits_for
    "detail": pl.String(),
    "source": pl.String(),  # first evidence (findings cite source:line)
    "line": pl.Int64(),
    "ts": pl.Datetime("ms"),
    "host": pl.String(),
    "task_id": pl.String(),  # a member's task, when known
    "task_ids": pl.List(pl.String()),
    "message": pl.String(),  # same as cycle_text (evidence text of findings)
}
CYCLES_FULL: dict[str, pl.DataType] = {**CYCLES, **CYCLES_EXTRA}


# --- graph algorithms (pure, on small edge sets) ------------------------------------------------
def strongly_connected(nodes: Iterable[N], edges: Iterable[tuple[N, N]]) -> list[list[N]]:
    """Tarjan's SCCs (iterative), each sorted, the list sorted by its first node."""
    adj: dict[N, list[N]] = {n: [] for n in nodes}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, [])
    for k in adj:
        adj[k] = sorted(set(adj[k]), key=_k)
    index: dict[N, int] = {}
    low: dict[N, int] = {}
    on_stack: set[N] = set()
    stack: list[N] = []
    out: list[list[N]] = []
    counter = 0
    for root in sorted(adj, key=_k):
        if root in index:
            continue
        work: list[tuple[N, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            recurse = False
            for j in range(i, len(adj[v])):
                w = adj[v][j]
                if w not in index:
                    work.append((v, j + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp, key=_k))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return sorted(out, key=lambda c: _k(c[0]))


def _k(n: Any) -> tuple[str, str]:
    return (type(n).__name__, f"{n:>20}" if isinstance(n, int) else str(n))


def elementary_cycles(nodes: Iterable[N], edges: Iterable[tuple[N, N]], *, limit: int = MAX_CYCLES,
                      max_length: int = MAX_LENGTH) -> list[list[N]]:
    """Every elementary cycle (no repeated node), rooted at its smallest node, in sorted order."""
    edge_list = list(edges)
    adj: dict[N, set[N]] = {}
    for a, b in edge_list:
        adj.setdefault(a, set()).add(b)
    found: list[list[N]] = []
    for comp in strongly_connected(nodes, edge_list):
        members = set(comp)
        rank = {n: i for i, n in enumerate(comp)}
        if len(comp) == 1:
            n = comp[0]
            if n in adj.get(n, set()):
                found.append([n])
            continue
        for start in comp:
            if n_self := (start in adj.get(start, set())):
                found.append([start])
            del n_self
            path = [start]
            on_path = {start}
            iters = [iter(sorted((w for w in adj.get(start, ()) if w in members and rank[w] >= rank[start]), key=_k))]
            while iters and len(found) < limit:
                nxt = next(iters[-1], None)
                if nxt is None:
                    iters.pop()
                    on_path.discard(path.pop())
                    continue
                if nxt == start:
                    if len(path) > 1:
                        found.append(list(path))
                    continue
                if nxt in on_path or rank[nxt] < rank[start] or len(path) >= max_length:
                    continue
                path.append(nxt)
                on_path.add(nxt)
                iters.append(iter(sorted((w for w in adj.get(nxt, ()) if w in members), key=_k)))
            if len(found) >= limit:
                break
    return sorted(found, key=lambda c: (len(c), [_k(n) for n in c]))


# --- lock order -------------------------------------------------------------------------------
def acquisition_pairs(waits: pl.DataFrame) -> dict[tuple[str, str], tuple[set[str], float]]:
    """(held, waited) → (members observed taking held before waited, best confidence)."""
    pairs: dict[tuple[str, str], tuple[set[str], float]] = {}
    rows = waits.filter(pl.col("holder").is_not_null()).select("waiter", "resource", "holder", "confidence").rows()
    held_by: dict[str, list[tuple[str, float]]] = {}
    for _, res, holder, conf in rows:
        held_by.setdefault(holder, []).append((res, conf))
    for waiter, res, _, conf in rows:
        for h, hconf in held_by.get(waiter, []):
            if h == res:
                continue
            who, best = pairs.get((h, res), (set(), 0.0))
            who.add(waiter)
            pairs[(h, res)] = (who, max(best, min(conf, hconf)))
    return pairs


def lock_order(resources: Sequence[str], pairs: Mapping[tuple[str, str], tuple[set[str], float]]) -> list[str]:
    """A total order of `resources` consistent with the best-supported acquisition pairs."""
    res = sorted(set(resources))
    edges = {(a, b): (len(w), c) for (a, b), (w, c) in pairs.items() if a in res and b in res and a != b}
    while True:
        cyc = elementary_cycles(res, list(edges), limit=1)
        if not cyc:
            break
        c = cyc[0]
        ring = [(c[i], c[(i + 1) % len(c)]) for i in range(len(c))]
        # least support, then lowest confidence, then the pair against sorted order (a > b), largest first
        drop = min(ring, key=lambda e: (edges[e][0], edges[e][1], not (e[0] > e[1]), [-ord(ch) for ch in e[0]]))
        del edges[drop]
    indeg = {r: 0 for r in res}
    for _, b in edges:
        indeg[b] += 1
    order: list[str] = []
    ready = sorted(r for r in res if indeg[r] == 0)
    while ready:
        r = ready.pop(0)
        order.append(r)
        for a, b in sorted(edges):
            if a == r:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
                    ready.sort()
    return order


# --- cycles frame -----------------------------------------------------------------------------
def _cycle_kind(kinds: set[str]) -> str:
    norm = {"rlock": "lock"}.get
    ks = {norm(k, k) for k in kinds}
    if "pipe" in ks and ks <= {"pipe", "process", "join"}:
        return "pipe"  # processes blocked on each other through pipes (and waitpid/join, thread joins)
    if len(ks) == 1:
        return ks.pop()
    if ks <= {"lock", "mutex", "join"}:
        return "lock"  # threads of one process: a pthread mutex and a Python lock, or a lock and a join
    return "mixed"


def pipe_order(ring: Sequence[tuple[str, str]], edge_rows: Sequence[Sequence[Mapping[str, Any]]]) -> tuple[
        list[str], str]:
    """What breaks a pipe cycle: the process waiting for a child services the pipe first.

    Order: the pipes, then the processes and threads (drain before waiting).  Text: per
    `process:C` wait of the cycle, the pipe C is blocked on — directly, or through the threads
    C's main thread joins (a Queue's feeder thread: the child cannot exit before it has written
    everything); a cycle of pipes alone gets the general rule.
    """
    waits_on = {a: rows[0] for (a, _), rows in zip(ring, edge_rows, strict=True)}
    steps = []
    for (waiter, child), rows in zip(ring, edge_rows, strict=True):
        r = rows[0]
        if r["kind"] != "process":
            continue
        joins: list[Mapping[str, Any]] = []
        pipe = waits_on.get(child)
        while pipe is not None and pipe["kind"] == "join" and len(joins) < len(ring):
            joins.append(pipe)
            pipe = waits_on.get(pipe["holder"])
        if pipe is None or pipe["kind"] != "pipe" or pipe["holder"] != waiter:
            continue
        reading = "read" in str(pipe.get("via") or "").split("(", 1)[0]
        feeder = any("QueueFeederThread" in str(j.get("holder_name") or "")
                     or "_finalize_join" in str(j.get("waiter_frame") or "") for j in joins)
        if feeder and not reading:
            steps.append(f"drain the queue — get() every item — before join(): {_res(pipe)} must be read "
                         f"before {_res(r)} can exit (at exit its main thread joins the queue's feeder "
                         f"thread, {_joined(joins[-1])}, which is blocked writing the items into that pipe)")
        elif joins:
            verb = "write or close" if reading else "drain"
            steps.append(f"{verb} {_res(pipe)} before waiting for {_res(r)} (the child's thread "
                         f"{_joined(joins[-1])} is blocked {'reading' if reading else 'writing'} it and the "
                         "child joins that thread before it can exit)")
        elif reading:
            steps.append(f"write or close {_res(pipe)} before waiting for {_res(r)} (the child is "
                         "blocked reading it: send its input, then close the write end, before join()/wait())")
        else:
            steps.append(f"drain {_res(pipe)} before waiting for {_res(r)} (read the child's output "
                         "first — Connection.recv(), Queue.get(), Popen.communicate() — then join()/wait())")
    resources = [rows[0]["resource"] for rows in edge_rows]
    order = sorted(r for r in resources if r.startswith("pipe:")) + sorted(r for r in resources
                                                                           if not r.startswith("pipe:"))
    if not steps:
        steps.append("never block on one pipe while the process at its other end may be blocked on a pipe to you: "
                     "serve both directions from one poll/select loop, or a thread per direction")
    return order, "; ".join(steps)


# --- code, not addresses: how reports name the members, resources and places of a cycle ----------
# `take (proj.py:31) holds `first`` / `hold_then_take (deadlock.c:15) `first`` / `… has `lock``
HELD_RE = re.compile(r"^(.+\))(?: holds| has)? `(\w+)`$")
# `<Connection at 0x7f40fdc82a10>` in a resource (`pipe:? <Connection at 0x…>`)
OBJECT_AT_RE = re.compile(r"<(\w+) at 0x[0-9a-fA-F]+>")
# kinds whose members are threads and whose places are code; db and file-lock cycles keep their ids
CODE_KINDS = {"lock", "rlock", "mutex", "join", "pipe", "process"}


def _res(row: Mapping[str, Any]) -> str:
    """A resource as code names it: a lock's variable, a child process, a pipe; never an address."""
    res, name = str(row["resource"]), row.get("resource_name")
    if name:
        return f"`{name}`"
    if res.startswith("process:"):
        return f"process {res[8:]}"
    if res.startswith("thread:"):
        return _joined(row)
    if res.startswith(("lock:", "mutex:")):
        kind = "mutex" if res.startswith("mutex:") else "lock"
        held = _held(row.get("holder_frame"))
        if held:  # the holder's variable for it
            return f"`{held[1]}` of {held[0]}"
        return f"the {kind} {_thread(row.get('holder'), row.get('holder_name'))} holds"
    return _no_object_address(res)


def _no_object_address(text: Any) -> str:
    """`<Connection at 0x7f…>` → `(Connection)`: the object's type, its address left to the evidence."""
    return OBJECT_AT_RE.sub(r"(\1)", str(text))


def _joined(row: Mapping[str, Any]) -> str:
    """The thread a join waits for, by name and tid (its Thread object's address is evidence)."""
    return _thread(row.get("holder"), row.get("holder_name"))


def _thread(member: Any, name: Any) -> str:
    ids = _split_id(str(member or ""))
    where = f"tid {ids['tid']}" if ids["tid"] is not None else (f"pid {ids['pid']}" if ids["pid"] else str(member))
    return f'"{name}" ({where})' if name else where


def _held(frame: Any) -> tuple[str, str] | None:
    """(place, variable) of a holder frame such as ``take (proj.py:31) holds `first```."""
    m = HELD_RE.match(str(frame or ""))
    return (m.group(1), m.group(2)) if m else None


def _waits_in(frame: Any) -> str | None:
    """Where a waiter waits, as code: ``take (proj.py:31) `with second:``` (procfs and kernel details
    after `;` stay in the evidence; a join names the code that joins)."""
    if not frame:
        return None
    text = str(frame).split(";", 1)[0].strip()
    if " in " in text and text.endswith(")"):
        text = text.rsplit(" in ", 1)[1]
    place, sep, code = text.partition("): ")
    return f"{place}) `{code.strip()}`" if sep and code.strip() else text


def code_cycle_text(ring: Sequence[tuple[str, str]], edge_rows: Sequence[Sequence[Mapping[str, Any]]]) -> str:
    """Each wait of the cycle in words of code: who waits where, for what, held by whom where."""
    parts = []
    for (waiter, holder), rows in zip(ring, edge_rows, strict=True):
        r = rows[0]
        who = _thread(waiter, r.get("waiter_name"))
        where = _waits_in(r.get("waiter_frame"))
        at = f" in {where}" if where else ""
        kind, res = str(r["kind"]), str(r["resource"])
        if kind == "join" or res.startswith("thread:"):
            parts.append(f"{who} waits{at} for {_joined(r)} to finish")
            continue
        if kind == "process" or res.startswith("process:"):
            parts.append(f"{who} waits{at} for its child, {_res(r)}, to exit")
            continue
        held = _held(r.get("holder_frame"))
        by = _thread(holder, r.get("holder_name"))
        if held:
            by += f", which holds it in {held[0]} as `{held[1]}`"
        elif r.get("holder_frame") and kind == "pipe":
            by += f" ({_no_object_address(r['holder_frame'])})"
        what = _res(r)
        if not r.get("resource_name") and res.startswith(("lock:", "mutex:")):
            what = "a mutex" if res.startswith("mutex:") else "a lock"  # the holder's part says where
            if not held:  # nor does it: the lock by the address the waiter's frame shows (`self=0x…`)
                what = f"the {what[2:]} at {res.split(':', 1)[1].split(' ', 1)[0]}"
        parts.append(f"{who} waits{at} for {what}, held by {by}")
    return "; ".join(parts)


def code_lock_order(order: Sequence[str], ring: Sequence[tuple[str, str]],
                    edge_rows: Sequence[Sequence[Mapping[str, Any]]]) -> str:
    """The proposed order by the locks' names, and the thread that takes them the other way round."""
    by_res = {rows[0]["resource"]: rows[0] for rows in edge_rows}
    names = [_res(by_res[r]) if r in by_res else _no_object_address(r) for r in order]
    named_in = {by_res[r].get("resource_named_in") for r in order if r in by_res}
    text = " before ".join(names)
    if len(named_in) == 1 and (where := next(iter(named_in))):
        text += f" (as {where} names them)"
    rank = {r: i for i, r in enumerate(order)}
    waits_for = {w: rows[0] for (w, _), rows in zip(ring, edge_rows, strict=True)}
    for (_, holder), rows in zip(ring, edge_rows, strict=True):
        held_row = rows[0]  # `holder` holds this resource and waits for the next one
        nxt = waits_for.get(holder)
        if nxt is None or held_row["resource"] not in rank or nxt["resource"] not in rank:
            continue
        if rank[nxt["resource"]] < rank[held_row["resource"]]:
            held = _held(held_row.get("holder_frame"))
            where = _waits_in(nxt.get("waiter_frame"))
            as_held = f" (in {held[0]}, as `{held[1]}`)" if held and held_row.get("resource_name") else ""
            text += (f"; {_thread(holder, held_row.get('holder_name'))} takes them the other way round: it holds "
                     f"{_res(held_row)}{as_held}"
                     + f" and waits for {_res(nxt)}" + (f" in {where}" if where else ""))
    return text


def _split_id(member: str) -> dict[str, Any]:
    parts = member.split("/")
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return {"host": None if parts[0] == "?" else parts[0], "pid": int(parts[1]), "tid": int(parts[2])}
    if member.startswith("pid:") and member[4:].isdigit():
        return {"host": None, "pid": int(member[4:]), "tid": None}
    return {"host": None, "pid": None, "tid": None}


def build(waits: pl.DataFrame) -> pl.DataFrame:
    """The `cycles` frame from a `waits` frame (extra waits columns are used when present)."""
    if waits.is_empty():
        return conform(pl.DataFrame(schema=CYCLES_FULL), CYCLES)
    w = waits.filter(pl.col("holder").is_not_null())
    rows = w.to_dicts()
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by_pair.setdefault((r["waiter"], r["holder"]), []).append(r)
    nodes = sorted({r["waiter"] for r in rows} | {r["holder"] for r in rows})
    pairs = acquisition_pairs(w)
    out = []
    for cyc in elementary_cycles(nodes, list(by_pair)):
        ring = [(cyc[i], cyc[(i + 1) % len(cyc)]) for i in range(len(cyc))]
        edge_rows = [sorted(by_pair[e], key=lambda r: (-r["confidence"], r["resource"])) for e in ring]
        resources = [er[0]["resource"] for er in edge_rows]
        all_rows = [r for er in edge_rows for r in er]
        evidence: list[str] = sorted({ev for r in all_rows for ev in (r.get("all_evidence") or [r["evidence"]])
                                      if ev}, key=_ev_key)
        kind = _cycle_kind({r["kind"] for r in all_rows})
        code = kind in CODE_KINDS and all(_split_id(m)["tid"] is not None for m in cyc)
        if kind == "pipe":
            order, order_text = pipe_order(ring, edge_rows)
        else:
            order = lock_order(resources, pairs)
            order_text = code_lock_order(order, ring, edge_rows) if code else " → ".join(order)
        names: dict[str, str | None] = {}
        tasks: dict[str, str] = {}
        hosts: dict[str, str] = {}
        frames_wait: dict[tuple[str, str], str | None] = {}
        holds: dict[str, list[dict[str, Any]]] = {m: [] for m in cyc}
        for r in all_rows:
            names.setdefault(r["waiter"], r.get("waiter_name"))
            names.setdefault(r["holder"], r.get("holder_name"))
            if r.get("task_id"):
                tasks.setdefault(r["waiter"], r["task_id"])
            if r.get("holder_task_id"):
                tasks.setdefault(r["holder"], r["holder_task_id"])
            if r.get("host"):
                hosts.setdefault(r["waiter"], r["host"])
            frames_wait.setdefault((r["waiter"], r["resource"]), r.get("waiter_frame"))
            entry = {"resource": r["resource"], "frame": r.get("holder_frame")}
            if entry not in holds[r["holder"]]:
                holds[r["holder"]].append(entry)
        detail = []
        for m, res in zip(cyc, resources, strict=True):
            ids = _split_id(m)
            detail.append({"id": m, "name": names.get(m), "host": ids["host"] or hosts.get(m), "pid": ids["pid"],
                           "tid": ids["tid"], "task_id": tasks.get(m), "holds": holds[m],
                           "waits_for": {"resource": res, "frame": frames_wait.get((m, res))}})
        label = {m: (f'{m} "{names[m]}"' if names.get(m) else m) for m in cyc}
        # `message` (the evidence's detail) keeps ids and addresses; the texts for messages name code
        text = "; ".join(f"{label[a]} waits for {res} held by {label[b]}"
                         for (a, b), res in zip(ring, resources, strict=True))
        cycle_text = code_cycle_text(ring, edge_rows) if code else text
        unseen = sorted({str(er[0]["via"]) for er in edge_rows
                         if str(er[0].get("via") or "").startswith(OWNERLESS_VIA)})
        if unseen:
            cycle_text += f" (holders inferred: {unseen[0]})"
        first = evidence[0] if evidence else ""
        src, _, ln = first.rpartition(":")
        ts_vals = [r["ts"] for r in all_rows if r.get("ts") is not None]
        host_vals = sorted({h for h in (hosts.get(m) or _split_id(m)["host"] for m in cyc) if h})
        task_vals = sorted({t for t in tasks.values() if t})
        out.append({
            "members": list(cyc), "resources": resources, "kind": kind, "evidence": evidence, "lock_order": order,
            "members_text": ", ".join(label[m] for m in cyc), "resources_text": ", ".join(resources),
            "lock_order_text": order_text, "cycle_text": cycle_text,
            "confidence": min(er[0]["confidence"] for er in edge_rows),
            "inferred": any(er[0]["inferred"] for er in edge_rows), "holders_seen": not unseen,
            "detail": json.dumps(detail, sort_keys=True), "source": src or None,
            "line": int(ln) if ln.isdigit() else None, "ts": min(ts_vals) if ts_vals else None,
            "host": next((h for h in host_vals if "@" in h), host_vals[0] if host_vals else None),
            "task_id": task_vals[0] if task_vals else None, "task_ids": task_vals, "message": text,
        })
    out.extend(ownerless_groups(waits))
    out.sort(key=lambda r: (r["kind"], r["members"], r["resources"]))
    for i, r in enumerate(out, 1):
        r["cycle"] = i
    if not out:
        return conform(pl.DataFrame(schema=CYCLES_FULL), CYCLES)
    return conform(pl.DataFrame(out, schema=CYCLES_FULL), CYCLES)


def _lock_named(row: Mapping[str, Any]) -> str:
    """A lock by its name in code, else by the address its waiter's frame shows."""
    if row.get("resource_name"):
        return f"`{row['resource_name']}`"
    res = str(row["resource"])
    kind = "mutex" if res.startswith("mutex:") else "lock"
    return f"the {kind} at {res.split(':', 1)[1].split(' ', 1)[0]}"


def ownerless_groups(waits: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows for the owner-less deadlocks whose cycle is not known (`waits.ownerless_edges`: three or
    more threads of a process blocked, each on a different lock, nothing else running, and several
    ways the locks could be held among them): one row per process, its members the blocked threads in
    id order, `resources[i]` what `members[i]` waits for, no holders and no proposed order."""
    if not {"via", "holder"} <= set(waits.columns):
        return []
    rows = waits.filter(pl.col("holder").is_null() & pl.col("via").fill_null("").str.starts_with(OWNERLESS_VIA))
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows.sort("waiter", "resource").to_dicts():
        groups.setdefault(str(r["waiter"]).rsplit("/", 1)[0], []).append(r)
    out = []
    for _, rs in sorted(groups.items()):
        members = [r["waiter"] for r in rs]
        evidence = sorted({ev for r in rs for ev in (r.get("all_evidence") or [r["evidence"]]) if ev}, key=_ev_key)
        parts = []
        for r in rs:
            where = _waits_in(r.get("waiter_frame"))
            parts.append(f"{_thread(r['waiter'], r.get('waiter_name'))} waits{f' in {where}' if where else ''} "
                         f"for {_lock_named(r)}")
        text = "; ".join(parts) + f" (holders inferred: {rs[0]['via']})"
        names = ", ".join(_lock_named(r) for r in rs)
        detail = [{"id": r["waiter"], "name": r.get("waiter_name"), **_split_id(str(r["waiter"])),
                   "task_id": r.get("task_id"), "holds": [],
                   "waits_for": {"resource": r["resource"], "frame": r.get("waiter_frame")}} for r in rs]
        src, _, ln = (evidence[0] if evidence else "").rpartition(":")
        ts_vals = [r["ts"] for r in rs if r.get("ts") is not None]
        tasks = sorted({r["task_id"] for r in rs if r.get("task_id")})
        out.append({
            "members": members, "resources": [r["resource"] for r in rs],
            "kind": _cycle_kind({str(r["kind"]) for r in rs}), "evidence": evidence, "lock_order": [],
            "members_text": ", ".join(f'{m} "{r["waiter_name"]}"' if r.get("waiter_name") else m
                                      for m, r in zip(members, rs, strict=True)),
            "resources_text": ", ".join(r["resource"] for r in rs),
            "lock_order_text": f"one order for {names}, the same in every code path (the dumps do not show "
                               "which thread took which lock first, so none is proposed)",
            "cycle_text": text, "confidence": min(float(r["confidence"]) for r in rs), "inferred": True,
            "holders_seen": False, "detail": json.dumps(detail, sort_keys=True), "source": src or None,
            "line": int(ln) if ln.isdigit() else None, "ts": min(ts_vals) if ts_vals else None,
            "host": next((r["host"] for r in rs if r.get("host")), None),
            "task_id": tasks[0] if tasks else None, "task_ids": tasks,
            "message": "; ".join(f"{r['waiter']} waits for {r['resource']}" for r in rs) + "; holders not seen",
        })
    return out


def _ev_key(ev: str) -> tuple[str, int]:
    src, _, ln = ev.rpartition(":")
    return (src, int(ln)) if ln.isdigit() else (ev, 0)


def from_waits(waits: pl.DataFrame, extra: pl.DataFrame | None = None) -> pl.DataFrame:
    """`build`, plus `cycles` rows that sources produced themselves (`extra`)."""
    df = build(waits)
    if extra is not None and extra.height:
        df = pl.concat([df, conform(extra, CYCLES)], how="diagonal_relaxed")
    return df
