"""Causal ranking: which findings explain which, and which are root causes.

A finding A explains B when A's rule names B's category in `explains`, A was seen no later
than B was last seen, and they share a host (or one of them has none). When two findings
would explain each other, the earlier one wins (at the same moment, the better ranked); links
that still close a cycle are cut at its first finding, so every finding of severity warning or
above is reached from a root cause. Two findings of the same category that meet
(a host in common, or one from a server's own log) and start within `SAME_INCIDENT` of each
other are one incident seen from two sides (RabbitMQ's log and the worker's, the database
server's and the task's traceback): the first seen explains the other. Root causes are the findings of severity
warning or above that nothing explains, best first: infrastructure before application
errors, then severity, confidence, earliest, most evidence. `info` findings are never root
causes, and a bundle with no root cause is healthy.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from analyzer.categories import SEVERITY_RANK
from analyzer.clip import clip
from analyzer.findings import Finding
from analyzer.sources.server_logs import SERVER_HOSTS

APPLICATION = ("task.exception",)


def _key(f: Finding) -> tuple[object, ...]:
    return (
        f.category in APPLICATION,
        -SEVERITY_RANK.get(f.severity, 0),
        -f.confidence,
        f.first_seen or "9999",
        -f.count,
        f.rule,
        tuple(f.hosts),
    )


def _server_side(f: Finding) -> bool:
    """Seen only in a broker or database server's own log (`rabbitmq`, `postgres`): every Celery node
    talks to that server, so it can cause effects on any of them. (A worker log that never named its
    node has its file's stem for host: that is a node, not a server.)"""
    return bool(f.hosts) and all(h in SERVER_HOSTS for h in f.hosts)


def _hosts_meet(a: Finding, b: Finding) -> bool:
    if not a.hosts or not b.hosts or _server_side(a) or _server_side(b):
        return True
    return bool(set(a.hosts) & set(b.hosts))


def _before(a: Finding, b: Finding) -> bool:
    if a.first_seen is None or b.last_seen is None:
        return True
    return a.first_seen <= b.last_seen


SAME_INCIDENT = timedelta(minutes=5)


def _at(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _same_incident(a: Finding, b: Finding, rank: dict[str, int]) -> bool:
    """`a` is the first side of the incident `b` shows too: same category, hosts meet, both start
    within `SAME_INCIDENT` of each other, `b` not before `a` (at the same moment: the server's
    side first, then rank order) — or `b` has no time at all and `a` has —, and they are two
    views of it: two rules (the broker's log and the client's error), or one rule on a server and
    on a worker. One rule's findings on one side are different groups by design (two exception
    types, two hosts): never one incident."""
    if a.category != b.category or not _hosts_meet(a, b):
        return False
    if a.rule == b.rule and _server_side(a) == _server_side(b):
        return False
    a0, b0 = _at(a.first_seen), _at(b.first_seen)
    if a0 is None or b0 is None:
        # a snapshot of a shared server, with no time and no node (`redis-cli INFO`), shows the
        # state a timed finding reports happening: the timed one is the incident's first side
        return a0 is not None and b0 is None and not b.hosts
    if abs(b0 - a0) > SAME_INCIDENT:
        return False
    return (a0, not _server_side(a), rank[a.id]) < (b0, not _server_side(b), rank[b.id])


def _order(f: Finding, rank: dict[str, int]) -> tuple[str, int]:
    return f.first_seen or "", rank[f.id]


def _break_cycles(ordered: list[Finding], rank: dict[str, int]) -> None:
    """Findings that only explain each other round a cycle (two causes of each other seen at the same
    moment) would leave the incident with no root cause: the first of them (time, then rank) loses
    the links into it, until every finding of severity warning or above is reached from a root."""
    by_id = {f.id: f for f in ordered}

    def reach(roots: list[Finding]) -> set[str]:
        seen: set[str] = set()
        todo = [f.id for f in roots]
        while todo:
            fid = todo.pop()
            if fid not in seen:
                seen.add(fid)
                todo.extend(by_id[fid].explains)
        return seen

    def in_cycle(f: Finding) -> bool:
        return f.id in reach([by_id[e] for e in f.explains])

    reached = reach([f for f in ordered if not f.explained_by])
    while stray := [f for f in ordered if f.id not in reached and SEVERITY_RANK.get(f.severity, 0) >= 1]:
        # a stray is in a cycle or downstream of one: cut the cycle, its effects follow
        first = min((f for f in stray if in_cycle(f)), key=lambda f: _order(f, rank), default=stray[0])
        for cause in first.explained_by:
            by_id[cause].explains.remove(first.id)
        first.explained_by = []
        reached |= reach([first])


# Log-level deadlock findings and the cycle kind that shows the same incident in full.
CYCLE_KINDS = {"deadlock.edeadlk": ("fcntl",), "deadlock.database": ("db",)}


def with_cycles(findings: list[Finding], cycles: pl.DataFrame) -> list[Finding]:
    """Give a log-level deadlock finding (EDEADLK, a database deadlock) the cycle behind it.

    The log line says only that the kernel or the server broke a deadlock; the wait-for graph
    (from /proc/locks, the PostgreSQL DETAIL lines, InnoDB's report) says between whom and on
    what, and in which order to take the locks. One finding per incident, with both.
    """
    if cycles.is_empty():
        return findings
    for f in findings:
        kinds = CYCLE_KINDS.get(f.category)
        if not kinds:
            continue
        rows = cycles.filter(pl.col("kind").is_in(list(kinds))).sort("cycle")
        if rows.is_empty():
            continue
        texts = [f"{c} (lock order: {o})" for c, o in rows.select("cycle_text", "lock_order_text").rows()]
        sep = " " if f.summary.rstrip().endswith((".", ";", ":")) else ". "
        f.summary = f"{f.summary.rstrip()}{sep}Cycle: {'; '.join(texts)}."
    return findings


# Rules whose findings report a pool child lost (`worker.lost`) with the tasks it took with it;
# CP-W012 (Celery killed a child that never started) runs none by definition.
LOST_RULES = ("CP-W001",)
ARGS_CHARS = 200  # of a lost task's arguments repr (redacted when rendered)
LAST_LINE_CHARS = 160
# a LOST task ends when its child exited; the finding may start later, at Celery's WorkerLostError
# (logged when the pool notices, up to ~10 s after the exit, whose record another finding may hold)
LOST_BEFORE = timedelta(seconds=30)


def with_lost_tasks(findings: list[Finding], tasks: pl.DataFrame, events: pl.DataFrame | None = None,
                    inspect: pl.DataFrame | None = None) -> list[Finding]:
    """Name the tasks a lost pool child took with it: id, name, arguments, last line logged.

    The rule sees billiard's `Process … exited` and Celery 5's `WorkerLostError(…)`, neither of
    which names the task; the `tasks` frame does (its LOST tasks: the unfinished task whose
    child exited). A LOST task of the finding's node that ended within its first and last record
    (or `LOST_BEFORE` before the first) was lost with it. Arguments come from `celery inspect`
    (Celery's log lines never carry them); the task's last log line often shows what it was
    doing. With none, the message says the logs name no task lost with the child.
    """
    lost = tasks.filter(pl.col("state") == "LOST") if "state" in tasks.columns else tasks.clear()
    for f in findings:
        if f.rule not in LOST_RULES:
            continue
        rows = _lost_in(f, lost)
        if not rows:
            f.summary = f"{f.summary.rstrip()}. The logs name no task lost with it."
            continue
        f.tasks = sorted({str(r["task_id"]) for r in rows} | set(f.tasks))
        named = [_lost_text(r, _args_of(inspect, str(r["task_id"])), _last_line(events, str(r["task_id"])))
                 for r in rows]
        f.summary = f"{f.summary.rstrip()}. Lost with it: {'; '.join(named)}."
    return findings


def _lost_in(f: Finding, lost: pl.DataFrame) -> list[dict[str, object]]:
    if lost.is_empty():
        return []
    rows = lost.filter(pl.col("host").is_in(f.hosts)) if f.hosts else lost
    start, end = _at(f.first_seen), _at(f.last_seen)
    if start is not None and end is not None and "finished_at" in rows.columns:
        rows = rows.filter(pl.col("finished_at").is_between(start - LOST_BEFORE, end))
    return rows.sort("finished_at", "task_id", nulls_last=True).to_dicts()


def _lost_text(row: dict[str, object], args: str | None, last: str | None) -> str:
    text = f"{row.get('task_name') or '?'}[{row['task_id']}]"
    if args:
        text += f" with args {clip(args, ARGS_CHARS)}"
    started = row.get("started_at")
    if isinstance(started, datetime):
        text += f", started {started.isoformat(timespec='milliseconds')}"
    if last:
        text += f", last logged: {clip(last, LAST_LINE_CHARS)}"
    return text


def _args_of(inspect: pl.DataFrame | None, task_id: str) -> str | None:
    if inspect is None or inspect.is_empty() or not {"task_id", "args"} <= set(inspect.columns):
        return None
    got = inspect.filter((pl.col("task_id") == task_id) & pl.col("args").is_not_null()).get_column("args")
    return str(got[0]) if got.len() else None


def _last_line(events: pl.DataFrame | None, task_id: str) -> str | None:
    """The task's last record that is not Celery's own lifecycle line (`received`, `started`)."""
    if events is None or events.is_empty() or not {"task_id", "message", "kind"} <= set(events.columns):
        return None
    own = events.filter((pl.col("task_id") == task_id) & pl.col("kind").is_null() & pl.col("message").is_not_null())
    return str(own.get_column("message")[-1]) if own.height else None


def diagnose(findings: list[Finding]) -> tuple[list[Finding], list[str]]:
    """Order findings, give them ids, link causes and effects; return (findings, root cause ids)."""
    ordered = sorted(findings, key=_key)
    for i, f in enumerate(ordered, 1):
        f.id = f"f{i}"
        f.explains, f.explained_by = [], []
    rank = {f.id: i for i, f in enumerate(ordered)}
    for a in ordered:
        for b in ordered:
            if a is b:
                continue
            if _same_incident(a, b, rank):
                a.explains.append(b.id)
                b.explained_by.append(a.id)
                continue
            if b.category not in a.explains_categories:
                continue
            if not (_hosts_meet(a, b) and _before(a, b)):
                continue
            mutual = a.category in b.explains_categories and _before(b, a)
            if mutual and _order(b, rank) < _order(a, rank):
                continue  # b came first (at the same moment: ranks first): it is the cause
            a.explains.append(b.id)
            b.explained_by.append(a.id)
    _break_cycles(ordered, rank)
    roots = [f.id for f in ordered if not f.explained_by and SEVERITY_RANK.get(f.severity, 0) >= 1]
    return ordered, roots
