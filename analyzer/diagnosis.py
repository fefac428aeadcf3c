"""Causal ranking and incidents: which findings explain which, which are root causes, and when
each incident began, ended and how it stood when the logs end.

A finding A explains B when the causal model (`analyzer/causal_model.toml`, `analyzer.causal`)
has a link from A's category to B's whose place and time agree: the same host (a server's own
log meets every node), or for a blocked consumer loop the thread that runs it; A seen no later
than B was last seen, or B begun during A's outage on that host. Each link keeps its reason
(`Finding.because`), which every report prints. A user rule's `explains` list still adds links
(`causal.declared`). When two findings would explain each other, the earlier one wins (at the
same moment, the better ranked); links that still close a cycle are cut at its first finding, so
every finding of severity warning or above is reached from a root cause. Two findings of the same
category that meet (a host in common, or one from a server's own log) and start within
`SAME_INCIDENT` of each other are one event seen from two sides (RabbitMQ's log and the
worker's, the database server's and the task's traceback): the first seen explains the other.

A finding at a steady low rate over its hosts' whole window is a standing error (`Baseline`):
background, never a cause, and a root cause only when nothing else is wrong; a burst above such a
baseline is what happened, over the burst's interval. Findings linked by cause and effect form an
`Incident`, whose root cause is its earliest unexplained finding. Root causes are the findings of
severity warning or above that nothing explains, best first: infrastructure before application
errors, then severity, confidence, earliest, most evidence. `info` findings are never root causes,
and a bundle with no root cause is healthy.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from analyzer import causal
from analyzer.analyses.threads import host_spans
from analyzer.categories import SEVERITY_RANK
from analyzer.clip import clip
from analyzer.findings import Baseline, Evidence, Finding, Incident
from analyzer.sources.server_logs import SERVER_HOSTS

APPLICATION = ("task.exception",)
UNCLASSIFIED = ("error.unclassified",)  # what no rule names: after everything a rule classified


def _key(f: Finding) -> tuple[object, ...]:
    return (
        f.baseline is not None and f.baseline.kind == "standing",
        f.category in UNCLASSIFIED,
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


# The URL schemes a server's clients use: a RabbitMQ log speaks of amqp clients, not of redis ones
SERVER_SCHEMES: dict[str, frozenset[str]] = {
    "rabbitmq": frozenset({"amqp", "amqps", "pyamqp", "librabbitmq"}),
    "redis": frozenset({"redis", "rediss", "sentinel", "redis+socket"}),
}
SCHEME_RE = r"(?:Connected to|Cannot connect to|transport:)\s+([a-z][a-z0-9+.-]*)://"


def node_schemes(events: pl.DataFrame) -> dict[str, frozenset[str]]:
    """Per node, the broker URL schemes its log names (`Connected to amqp://…`, the banner's transport)."""
    if events.is_empty() or not {"host", "text"} <= set(events.columns):
        return {}
    found = events.select("host", pl.col("text").str.extract_all(SCHEME_RE).alias("_s")).explode("_s").drop_nulls()
    found = found.with_columns(pl.col("_s").str.extract(SCHEME_RE, 1)).drop_nulls()
    out: dict[str, set[str]] = {}
    for host, scheme in found.unique().rows():
        out.setdefault(host, set()).add(scheme)
    return {h: frozenset(v) for h, v in out.items()}


def _hosts_meet(a: Finding, b: Finding, ctx: Context | None = None) -> bool:
    if not a.hosts or not b.hosts:
        return True
    if _server_side(a) or _server_side(b):
        return _serves(a, b, ctx) and _serves(b, a, ctx)
    return bool(set(a.hosts) & set(b.hosts))


def _serves(server: Finding, node: Finding, ctx: Context | None) -> bool:
    """False only when `server` is a broker's log and every node of `node` is known to use another broker."""
    if ctx is None or not _server_side(server) or _server_side(node):
        return True
    wanted = frozenset().union(*(SERVER_SCHEMES.get(h, frozenset()) for h in server.hosts))
    if not wanted:
        return True
    named = _evidence_schemes(node)  # the finding's own lines say which broker failed (`redis://…`)
    if named:
        return bool(named & wanted)
    known = [ctx.schemes.get(h) for h in node.hosts]
    if any(k is None for k in known):
        return True
    return any(k & wanted for k in known if k is not None)


BROKER_SCHEMES = frozenset().union(*SERVER_SCHEMES.values())


def _evidence_schemes(f: Finding) -> frozenset[str]:
    return frozenset(m.group(1) for e in f.evidence for m in re.finditer(r"\b([a-z][a-z0-9+]*)://", e.text)
                     if m.group(1) in BROKER_SCHEMES)


def _at(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _start(f: Finding) -> str | None:
    """When `f` began as a cause or effect: its burst's start for a burst over a baseline."""
    b = f.baseline
    return b.burst_start if b is not None and b.kind == "burst" else f.first_seen


def _end(f: Finding) -> str | None:
    b = f.baseline
    return b.burst_end if b is not None and b.kind == "burst" else f.last_seen


def _before(a: Finding, b: Finding) -> bool:
    a0, b1 = _start(a), _end(b)
    if a0 is None or b1 is None:
        return True
    return a0 <= b1


SAME_INCIDENT = timedelta(minutes=5)
# records that show a host working again after a failure: a broker (re)connection, the worker ready,
# a task that succeeded
RECOVERY_KINDS = ("connected", "ready", "succeeded")
# categories a thread dump or the end of the logs shows as a state: still so when the logs end unless
# a recovery record follows
PERSISTENT = frozenset({"io.blocking", "lock.wait", "deadlock.lock_cycle", "deadlock.fork", "task.stuck"})
# failures within this of a host's last record went on until its logs end
STILL_FAILING_GRACE = timedelta(seconds=60)
# frames that show a thread running the worker's consumer loop (the main process's MainThread)
CONSUMER_FRAME = re.compile(r"celery/worker/consumer/|celery/worker/worker\.py")


@dataclass(frozen=True)
class Recovery:
    at: datetime
    evidence: Evidence


@dataclass
class Context:
    """What the logs, dumps and queue listings say beside the findings: per host, the records that
    show it working again and its first and last record; the thread rows (`source`, `line`) that run
    the consumer loop; queues with ready messages and no consumer."""

    recoveries: dict[str, list[Recovery]] = field(default_factory=dict)
    first_record: dict[str, datetime] = field(default_factory=dict)
    last_record: dict[str, datetime] = field(default_factory=dict)
    consumer_threads: frozenset[tuple[str, int]] = frozenset()
    idle_queues: list[Evidence] = field(default_factory=list)
    # the text of a record at (source, line), for marks given without it (`of(marks=…)`)
    text_of: Callable[[str, int], str] | None = None
    schemes: dict[str, frozenset[str]] = field(default_factory=dict)  # per node, its brokers' URL schemes
    _times: dict[str, list[datetime]] = field(default_factory=dict)  # per host, its recoveries' times
    # per host, its marks from `of` as a frame sorted by time (ts, source, line, message): a long log has
    # a mark per succeeded task, searched in place rather than held as Python objects
    _marks: dict[str, pl.DataFrame] = field(default_factory=dict)

    @classmethod
    def of(cls, events: pl.DataFrame | None = None, threads: pl.DataFrame | None = None,
           frames: pl.DataFrame | None = None, queues: pl.DataFrame | None = None, *,
           spans: pl.DataFrame | None = None, marks: pl.DataFrame | None = None,
           text_of: Callable[[str, int], str] | None = None) -> Context:
        """From the records (`events`), or from what the pipeline keeps of them: per node its first
        and last time (`spans`: host, first_ts, last_ts) and the records showing it at work (`marks`:
        host, ts, source, line; their text from `text_of(source, line)` when they have no `message`)."""
        ctx = cls(text_of=text_of)
        if events is not None and events.height and {"host", "ts", "kind"} <= set(events.columns):
            spans = host_spans(events)
            marks = events.filter(pl.col("kind").is_in(RECOVERY_KINDS))
        if spans is not None and spans.height:
            timed_spans = spans.filter(pl.col("host").is_not_null() & pl.col("first_ts").is_not_null())
            for host, first, last in timed_spans.group_by("host").agg(pl.col("first_ts").min(),
                                                                       pl.col("last_ts").max()).rows():
                ctx.first_record[str(host)], ctx.last_record[str(host)] = first, last
        if marks is not None and marks.height:
            marks = marks.filter(pl.col("host").is_not_null() & pl.col("ts").is_not_null()).sort("ts", "source", "line")
            if "message" not in marks.columns:
                marks = marks.with_columns(pl.lit(None, dtype=pl.String).alias("message"))
            parts = marks.select("host", "ts", "source", "line", "message").partition_by(
                "host", as_dict=True, maintain_order=True, include_key=False)
            ctx._marks = {str(host): part for (host,), part in parts.items()}
        ctx.consumer_threads = _consumer_threads(threads, frames)
        ctx.idle_queues = _idle_queues(queues)
        if events is not None:
            ctx.schemes = node_schemes(events)
        return ctx

    def recovery_after(self, hosts: Iterable[str], after: datetime) -> Recovery | None:
        """The first record after `after` on any of `hosts` that shows it working again."""
        best: Recovery | None = None
        for h in hosts:
            if h in self._marks:
                part = self._marks[h]
                i = int(part.get_column("ts").search_sorted(after, side="right"))
                if i < part.height and (best is None or part.item(i, "ts") < best.at):
                    ts, source, line, message = part.row(i)
                    best = Recovery(ts, Evidence(str(source), int(line or 0), clip(str(message or ""), 300)))
                continue
            marks = self.recoveries.get(h, [])
            if h not in self._times:
                self._times[h] = [m.at for m in marks]
            i = bisect.bisect_right(self._times[h], after)
            if i < len(marks) and (best is None or marks[i].at < best.at):
                best = marks[i]
        if best is not None and not best.evidence.text and self.text_of is not None:
            ev = best.evidence
            best = Recovery(best.at, Evidence(ev.source, ev.line, clip(self.text_of(ev.source, ev.line), 300)))
        return best


def _consumer_threads(threads: pl.DataFrame | None, frames: pl.DataFrame | None) -> frozenset[tuple[str, int]]:
    if threads is None or frames is None or threads.is_empty() or frames.is_empty():
        return frozenset()
    if not {"dump", "tid", "source", "line"} <= set(threads.columns) or not {"dump", "tid", "file"} <= set(
            frames.columns):
        return frozenset()
    loops = frames.filter(pl.col("file").str.contains(CONSUMER_FRAME.pattern)).select("dump", "tid").unique()
    rows = threads.join(loops, on=["dump", "tid"], how="semi").select("source", "line").drop_nulls()
    return frozenset((str(s), int(n)) for s, n in rows.iter_rows())


def _idle_queues(queues: pl.DataFrame | None) -> list[Evidence]:
    """Queues of the last listing with messages ready and no consumer: nothing takes work from them."""
    if queues is None or queues.is_empty() or not {"messages_ready", "consumers", "snapshot"} <= set(queues.columns):
        return []
    last = queues.filter(pl.col("snapshot") == pl.col("snapshot").max().over("source"))
    idle = last.filter((pl.col("messages_ready") > 0) & (pl.col("consumers") == 0)).sort("source", "line")
    return [Evidence(str(r["source"]), int(r["line"] or 0), str(r.get("text") or ""),
                     f"queue {r['name']}: {r['messages_ready']} ready, 0 consumers")
            for r in idle.iter_rows(named=True)]


def _runs_consumer(f: Finding, ctx: Context) -> bool:
    return any((e.source, e.line) in ctx.consumer_threads for e in f.evidence)


def _place(link: causal.Link, a: Finding, b: Finding, ctx: Context) -> str | None:
    """Why `a` and `b` are in the same place for `link`, or None when they are not."""
    if link.place == "consumer":
        if not _runs_consumer(a, ctx):
            return None
        if _server_side(b):
            return f"{_hosts(b)}'s log names no node, and the blocked thread runs {_hosts(a)}'s consumer loop"
        if not _hosts_meet(a, b, ctx):
            return None
        return f"the blocked thread runs the consumer loop of {_hosts(a)}"
    if not _hosts_meet(a, b, ctx):
        return None
    if _server_side(a) and not _server_side(b):
        return f"{_hosts(a)} serves {_hosts(b)}"
    if _server_side(b) and not _server_side(a):
        return f"{_hosts(b)} serves {_hosts(a)}"
    shared = sorted(set(a.hosts) & set(b.hosts))
    return f"both on {', '.join(shared)}" if shared else "one of them names no node"


def _time(link: causal.Link, a: Finding, b: Finding, ctx: Context) -> str | None:
    """Why the time order agrees with `link`, or None when it does not."""
    a0, b0, b1 = _start(a), _start(b), _end(b)
    if link.time == "outage":
        at, bt = _at(a0), _at(b0)
        if at is None or bt is None or bt < at:
            return None
        back = ctx.recovery_after(b.hosts or a.hosts, at)
        if back is not None and back.at <= bt:
            return None
        return f"{b.category} began {_gap(at, bt)} into the outage, before {_host_word(b)} recovered"
    if a0 is None:
        return "a thread dump shows the state, not when it began: time does not refute it"
    if b1 is None:
        return f"{a.category} seen from {a0}"
    if a0 > b1:
        return None
    at, bt = _at(a0), _at(b0)
    if at is not None and bt is not None and at <= bt:
        return f"{a.category} first seen {_gap(at, bt)} before {b.category}"
    return f"{a.category} seen from {a0}, while {b.category} went on"


def _gap(a: datetime, b: datetime) -> str:
    from analyzer.findings import duration

    return duration((b - a).total_seconds())


def _hosts(f: Finding) -> str:
    return ", ".join(f.hosts) or "?"


def _host_word(f: Finding) -> str:
    return ", ".join(f.hosts) if f.hosts else "the worker"


def _link(a: Finding, b: Finding, ctx: Context) -> str | None:
    """The reason `a` explains `b` (mechanism; place; time), or None when no link holds."""
    links = list(causal.links_between(a.category, b.category))
    if b.category in a.explains_categories and not links:
        links.append(causal.declared(a.rule, a.category, b.category))
    for link in links:
        place = _place(link, a, b, ctx)
        when = _time(link, a, b, ctx) if place is not None else None
        if place is not None and when is not None:
            return f"{link.mechanism} (place: {place}; time: {when})"
    return None


def _same_incident(a: Finding, b: Finding, rank: dict[str, int], ctx: Context | None = None) -> bool:
    """`a` is the first side of the incident `b` shows too: same category, hosts meet, both start
    within `SAME_INCIDENT` of each other, `b` not before `a` (at the same moment: the server's
    side first, then rank order) — or `b` has no time at all and `a` has —, and they are two
    views of it: two rules (the broker's log and the client's error), or one rule on a server and
    on a worker. One rule's findings on one side are different groups by design (two exception
    types, two hosts): never one incident."""
    if a.category != b.category or not _hosts_meet(a, b, ctx):
        return False
    if a.rule == b.rule and _server_side(a) == _server_side(b):
        return False
    a0, b0 = _at(a.first_seen), _at(b.first_seen)
    if a0 is None or b0 is None:
        # a snapshot of a shared server, with no time and no node (`redis-cli INFO`), shows the
        # state a timed finding reports happening: the timed one is the incident's first side; so is
        # an untimed finding citing a line the timed one cites (a kernel line, joined with the worker's)
        return a0 is not None and b0 is None and (not b.hosts or _cite_same_line(a, b))
    if abs(b0 - a0) > SAME_INCIDENT:
        return False
    return (a0, not _server_side(a), rank[a.id]) < (b0, not _server_side(b), rank[b.id])


def _cite_same_line(a: Finding, b: Finding) -> bool:
    return bool({(e.source, e.line) for e in a.evidence} & {(e.source, e.line) for e in b.evidence})


def _same_reason(a: Finding, b: Finding) -> str:
    a0, b0 = _at(a.first_seen), _at(b.first_seen)
    when = f", {_gap(a0, b0)} apart" if a0 is not None and b0 is not None else ""
    return (f"the same event seen from two sides: {a.rule} on {_hosts(a)} and {b.rule} on {_hosts(b)}{when} "
            f"(one {a.category} finding)")


def _order(f: Finding, rank: dict[str, int]) -> tuple[str, int]:
    return _start(f) or "", rank[f.id]


def _reachable(by_id: dict[str, Finding], start: list[str]) -> set[str]:
    """The ids reached from `start` (included) along `explains` links."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        fid = todo.pop()
        if fid not in seen:
            seen.add(fid)
            todo.extend(by_id[fid].explains)
    return seen


def _break_cycles(ordered: list[Finding], rank: dict[str, int]) -> None:
    """Findings that only explain each other round a cycle (two causes of each other seen at the same
    moment) would leave the incident with no root cause: the first of them (time, then rank) loses
    the links into it, until every finding of severity warning or above is reached from a root."""
    by_id = {f.id: f for f in ordered}

    def reach(roots: list[Finding]) -> set[str]:
        return _reachable(by_id, [f.id for f in roots])

    def in_cycle(f: Finding) -> bool:
        return f.id in reach([by_id[e] for e in f.explains])

    reached = reach([f for f in ordered if not f.explained_by])
    while stray := [f for f in ordered if f.id not in reached and SEVERITY_RANK.get(f.severity, 0) >= 1]:
        # a stray is in a cycle or downstream of one: cut the cycle, its effects follow
        first = min((f for f in stray if in_cycle(f)), key=lambda f: _order(f, rank), default=stray[0])
        for cause in first.explained_by:
            by_id[cause].explains.remove(first.id)
        first.explained_by = []
        first.because = {}
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
        lines = _last_lines(events, [str(r["task_id"]) for r in rows])
        named = [_lost_text(r, _args_of(inspect, str(r["task_id"])), lines.get(str(r["task_id"]))) for r in rows]
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


def _last_lines(events: pl.DataFrame | None, task_ids: list[str]) -> dict[str, str]:
    """Each task's last record that is not Celery's own lifecycle line (`received`, `started`)."""
    if events is None or events.is_empty() or not {"task_id", "message", "kind"} <= set(events.columns):
        return {}
    own = events.filter(pl.col("task_id").is_in(task_ids) & pl.col("kind").is_null() & pl.col("message").is_not_null())
    last = own.group_by("task_id", maintain_order=True).agg(pl.col("message").last())
    return {str(t): str(m) for t, m in last.rows()}


def diagnose(findings: list[Finding], context: Context | None = None) -> tuple[list[Finding], list[str]]:
    """Order findings, give them ids, link causes and effects (with their reasons); return
    (findings, root cause ids). Baselines (`with_baselines`) should be set first."""
    ctx = context or Context()
    ordered = sorted(findings, key=_key)
    for i, f in enumerate(ordered, 1):
        f.id = f"f{i}"
        f.explains, f.explained_by, f.because = [], [], {}
    rank = {f.id: i for i, f in enumerate(ordered)}
    sides: list[tuple[Finding, Finding]] = []  # (first side, other side) of one event
    for a in ordered:
        if _standing(a):
            continue  # background all along: it explains nothing that happened
        for b in ordered:
            if a is b:
                continue
            if _same_incident(a, b, rank, ctx):
                _tie(a, b, _same_reason(a, b))
                sides.append((a, b))
                continue
            reason = _link(a, b, ctx)
            if reason is None:
                continue
            if _link(b, a, ctx) is not None and _order(b, rank) < _order(a, rank) and not _standing(b):
                continue  # b came first (at the same moment: ranks first): it is the cause
            _tie(a, b, reason)
    _untie_sides(sides, ordered)
    _break_cycles(ordered, rank)
    _reduce(ordered)
    roots = [f for f in ordered if not f.explained_by and SEVERITY_RANK.get(f.severity, 0) >= 1]
    if any(not _standing(f) for f in roots):
        roots = [f for f in roots if not _standing(f)]  # background noise beside a real incident
    if any(f.category not in UNCLASSIFIED for f in roots):
        roots = [f for f in roots if f.category not in UNCLASSIFIED]  # a cause only when nothing else is
    return ordered, [f.id for f in roots]


def _untie_sides(sides: list[tuple[Finding, Finding]], ordered: list[Finding]) -> None:
    """An effect both sides of one event explain is explained by the first side alone (the kernel's kill
    joined with the worker's line, rather than the kernel's line the join cites), which the chain
    first side → other side → effect would otherwise hide (`_reduce`)."""
    by_id = {f.id: f for f in ordered}
    for a, b in sides:
        for c in [c for c in b.explains if c in a.explains]:
            b.explains.remove(c)
            by_id[c].explained_by.remove(b.id)
            by_id[c].because.pop(b.id, None)


def _reduce(ordered: list[Finding]) -> None:
    """Drop a link A → C when C follows from A through another finding (A → B → C): the chain
    then tells each step once (the blocked thread → missed heartbeats → connection lost)."""
    by_id = {f.id: f for f in ordered}

    def reach(start: str, skip: str) -> set[str]:
        return _reachable(by_id, [e for e in by_id[start].explains if e != skip])

    for a in ordered:
        for c in list(a.explains):
            if c in reach(a.id, c):
                a.explains.remove(c)
                by_id[c].explained_by.remove(a.id)
                by_id[c].because.pop(a.id, None)


def _tie(a: Finding, b: Finding, reason: str) -> None:
    a.explains.append(b.id)
    b.explained_by.append(a.id)
    b.because[a.id] = reason


def _standing(f: Finding) -> bool:
    return f.baseline is not None and f.baseline.kind == "standing"


# -- baselines -------------------------------------------------------------------------------------

BASELINE_BINS = 12  # the window cut in this many equal bins
BASELINE_MIN_WINDOW = timedelta(minutes=2)  # shorter windows say nothing of a steady rate
BASELINE_MIN_COUNT = 6
STEADY_BINS = 8  # occurrences in at least this many bins: spread across the whole window
BURST_FACTOR = 4  # a bin this many times the typical (median) non-empty bin is a burst
BURST_MIN = 5  # and holds at least this many occurrences


def with_baselines(findings: list[Finding], ctx: Context) -> list[Finding]:
    """Mark findings that recur all through their hosts' window: standing errors (a steady low
    rate), or a burst above such a baseline (then the burst is what happened)."""
    for f in findings:
        f.baseline = _baseline(f, ctx)
    return findings


def _window(f: Finding, ctx: Context) -> tuple[datetime, datetime] | None:
    starts = [ctx.first_record[h] for h in f.hosts if h in ctx.first_record]
    ends = [ctx.last_record[h] for h in f.hosts if h in ctx.last_record]
    if not starts or not ends:
        return None
    return min(starts), max(ends)


def _baseline(f: Finding, ctx: Context) -> Baseline | None:
    window = _window(f, ctx)
    if window is None or len(f.times) < BASELINE_MIN_COUNT:
        return None
    w0, w1 = window
    span = w1 - w0
    if span < BASELINE_MIN_WINDOW:
        return None
    width = span / BASELINE_BINS
    bins = [0] * BASELINE_BINS
    for t in f.times:
        bins[min(BASELINE_BINS - 1, max(0, int((t - w0) / width)))] += 1
    scale = f.count / len(f.times)  # times are thinned past MAX_TIMES
    filled = sorted(n for n in bins if n)
    if len(filled) < STEADY_BINS:
        return None
    typical = filled[len(filled) // 2]
    hot = [i for i, n in enumerate(bins) if n >= max(BURST_MIN, BURST_FACTOR * typical)]
    iso = _iso
    if not hot:
        return Baseline("standing", round(f.count / (span.total_seconds() / 3600), 3), iso(w0), iso(w1))
    lo, hi = w0 + width * hot[0], w0 + width * (hot[-1] + 1)
    inside = [t for t in f.times if lo <= t < hi or (hot[-1] == BASELINE_BINS - 1 and t == w1)]
    outside = (len(f.times) - len(inside)) * scale
    rest_h = max((span - (hi - lo)).total_seconds() / 3600, 1e-9)
    return Baseline("burst", round(outside / rest_h, 3), iso(w0), iso(w1), iso(inside[0]), iso(inside[-1]),
                    round(len(inside) * scale))


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds" if t.microsecond == 0 else "milliseconds")


# -- one fingerprint, one finding ------------------------------------------------------------------

_VOLATILE = re.compile(r"0x[0-9a-fA-F]{1,16}|[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|\d{1,20}")


def fingerprint(f: Finding) -> tuple[object, ...]:
    """What makes two findings the same problem: rule, category, remediation and the summary with
    numbers, ids, addresses, times and node names masked."""
    summary = f.summary
    for h in f.hosts:
        summary = summary.replace(h, "<host>")
    return (f.rule, f.category, tuple(f.remediation), _VOLATILE.sub("#", summary))


def merge_fingerprints(findings: list[Finding]) -> list[Finding]:
    """Findings of one fingerprint (the same error on three nodes, in three rotated files) become one."""
    out: dict[tuple[object, ...], Finding] = {}
    for f in findings:
        key = fingerprint(f)
        if key not in out:
            out[key] = f
            continue
        g = out[key]
        g.count += f.count
        g.evidence_total += f.evidence_total
        g.evidence = [*g.evidence, *f.evidence][: max(len(g.evidence), len(f.evidence))]
        g.hosts = sorted(set(g.hosts) | set(f.hosts))
        g.tasks = sorted(set(g.tasks) | set(f.tasks))
        g.first_seen = min((t for t in (g.first_seen, f.first_seen) if t), default=None)
        g.last_seen = max((t for t in (g.last_seen, f.last_seen) if t), default=None)
        g.times = tuple(sorted(g.times + f.times))
    return list(out.values())


# -- incidents -------------------------------------------------------------------------------------


def incidents(ordered: list[Finding], roots: list[str], ctx: Context) -> tuple[list[Incident], list[str]]:
    """Group linked findings into incidents (each finding's `incident` is set); return them and the
    root causes reordered: each incident's root first (earliest unexplained finding), in rank order."""
    by_id = {f.id: f for f in ordered}
    rank = {f.id: i for i, f in enumerate(ordered)}
    parent = {f.id: f.id for f in ordered}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for f in ordered:
        for e in f.explains:
            parent[find(e)] = find(f.id)
    groups: dict[str, list[Finding]] = {}
    for f in ordered:
        groups.setdefault(find(f.id), []).append(f)
    root_set = set(roots)
    made: list[tuple[Finding, list[Finding]]] = []
    for members in groups.values():
        heads = sorted((m for m in members if m.id in root_set), key=lambda m: _order(m, rank))
        if not heads:
            continue  # informational only, or standing errors beside a real incident
        made.append((heads[0], members))
    made.sort(key=lambda hm: rank[hm[0].id])
    out: list[Incident] = []
    for i, (head, members) in enumerate(made, 1):
        inc = _incident(f"i{i}", head, sorted(members, key=lambda m: rank[m.id]), ctx)
        for m in members:
            m.incident = inc.id
        out.append(inc)
    firsts = [head.id for head, _ in made]
    return out, [*firsts, *(r for r in roots if r not in firsts and r in by_id)]


def _incident(iid: str, head: Finding, members: list[Finding], ctx: Context) -> Incident:
    starts = [t for t in (_at(_start(m)) for m in members) if t is not None]
    ends = [t for t in (_at(_end(m)) for m in members) if t is not None]
    start, end = (min(starts), max(ends)) if starts and ends else (None, None)
    nodes = sorted({h for m in members for h in m.hosts if h not in SERVER_HOSTS})
    hosts = nodes or sorted({h for m in members for h in m.hosts})
    inc = Incident(iid, head.id, [m.id for m in members], _iso(start) if start else None,
                   _iso(end) if end else None, round((end - start).total_seconds(), 3) if start and end else None,
                   "unknown", "", hosts=hosts)
    _state(inc, members, nodes, start, end, ctx)
    return inc


def _state(inc: Incident, members: list[Finding], nodes: list[str], start: datetime | None,
           end: datetime | None, ctx: Context) -> None:
    """How the incident stood when the logs end: recovered (a record shows the node working after
    the last failure; the incident ends there), still failing (a dump or the queue listing shows it
    stuck, or failures went on until the node's last record), or unknown."""
    stuck = [m for m in members if m.category in PERSISTENT]
    last = max((ctx.last_record[h] for h in nodes if h in ctx.last_record), default=None)
    if stuck:  # a state seen in a dump or at the logs' end: later records do not undo it
        inc.state = "still_failing"
        inc.state_reason = (f"{stuck[0].category} ({stuck[0].id}) still holds when the logs end"
                            + (f"; {'; '.join(q.detail for q in ctx.idle_queues)}" if ctx.idle_queues else ""))
        inc.state_evidence = [*stuck[0].evidence[:1], *ctx.idle_queues]
        return
    back = ctx.recovery_after(nodes, end) if end is not None else None
    if back is not None and start is not None:
        # the outage lasted until the node worked again, not until its last failed retry
        inc.end, inc.duration_s = _iso(back.at), round((back.at - start).total_seconds(), 3)
        inc.state, inc.recovered_at = "recovered", _iso(back.at)
        who = ", ".join(nodes) or "the worker"
        inc.state_reason = f"{who} working again at {_iso(back.at)}: {back.evidence.text}"
        inc.state_evidence = [back.evidence]
        return
    if end is not None and last is not None and end >= last - STILL_FAILING_GRACE:
        inc.state = "still_failing"
        inc.state_reason = (f"failing until {', '.join(nodes)}'s last record ({_iso(last)}), "
                            "with no reconnection, ready or succeeded task after it")
    elif end is None:
        inc.state_reason = "no time for the failure, and no record after it"
    else:
        inc.state_reason = (f"no failure after {_iso(end)}, and nothing in the logs says "
                            f"{', '.join(nodes) or 'the worker'} recovered")
