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
