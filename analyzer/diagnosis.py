"""Causal ranking: which findings explain which, and which are root causes.

A finding A explains B when A's rule names B's category in `explains`, A was seen no later
than B was last seen, and they share a host (or one of them has none). When two findings
would explain each other, the earlier one wins. Two findings of the same category that meet
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
    """`a` is the first side of the incident `b` shows too: same category, hosts meet, `b` starts
    within `SAME_INCIDENT` of `a`'s last sighting and not before `a` (at the same moment: the
    server's side first, then rank order)."""
    if a.category != b.category or not _hosts_meet(a, b):
        return False
    a0, a1, b0 = _at(a.first_seen), _at(a.last_seen), _at(b.first_seen)
    if a0 is None or b0 is None or b0 > (a1 or a0) + SAME_INCIDENT:
        return False
    return (a0, not _server_side(a), rank[a.id]) < (b0, not _server_side(b), rank[b.id])


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
            if mutual and (b.first_seen or "") < (a.first_seen or ""):
                continue  # b came first: it is the cause
            a.explains.append(b.id)
            b.explained_by.append(a.id)
    roots = [f.id for f in ordered if not f.explained_by and SEVERITY_RANK.get(f.severity, 0) >= 1]
    return ordered, roots
