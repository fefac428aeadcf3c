"""What to check next for each root cause: the broker decision tree and the evidence advisor.

The tables are data:

- `BROKER_TREE`: the order in which a broker connection can fail — the network carries the
  connection, TLS is negotiated on it, the credentials are sent over TLS, the broker and the
  worker must have room for the connection, and the open connection must stay healthy. A broker
  root cause sits on one step. A step before it is `passed` only when the bundle shows it: the
  failure itself implies it (`IMPLIES`: a certificate error needs a TCP connection, a refused
  login a completed handshake) or the worker logged `Connected to …` before the failure.
  Every other step is `not reached`: nothing in the bundle shows the worker got past it.
- `EVIDENCE`: per category, artifacts that would confirm or refute the diagnosis and the exact
  command that collects each, with the bundle kind that already holds it — an artifact the
  bundle already has is not asked for again. `CYCLE_EVIDENCE` overrides it for a finding whose
  evidence is a cycle of a kind that other tools see better (a pipe cycle is read off /proc and
  py-spy, not gdb).

Checks and artifacts that only make sense on one broker carry its transport (`amqp`, `redis`);
they are offered only when the bundle's logs name that transport or do not name any.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from analyzer.findings import Finding

# The renderers know these three statuses; a step before the failure that nothing proves passed is
# `not reached` as well (the evidence does not reach it), not a fourth status they cannot show.
PASSED, FAILED, NOT_REACHED = "passed", "failed here", "not reached"


@dataclass(frozen=True)
class Check:
    command: str
    transport: str | None = None  # "amqp" | "redis" when the command talks to that broker only


@dataclass(frozen=True)
class Step:
    name: str
    question: str
    categories: tuple[str, ...]
    checks: tuple[Check, ...]


BROKER_TREE: tuple[Step, ...] = (
    Step("network", "Is the broker reachable?",
         ("broker.connection_refused", "broker.dns", "broker.timeout", "broker.unreachable"),
         (Check("getent hosts BROKER_HOST  # does the name resolve?"),
          Check("nc -vz BROKER_HOST PORT  # does anything accept connections?"),
          Check("rabbitmq-diagnostics check_port_connectivity  # on the RabbitMQ node", "amqp"),
          Check("redis-cli -h BROKER_HOST -p PORT PING", "redis"))),
    Step("tls", "Does TLS verify?",
         ("broker.tls",),
         (Check("openssl s_client -connect BROKER_HOST:PORT -servername BROKER_HOST  # certificate chain and name"),)),
    Step("credentials", "Are the credentials and permissions valid?",
         ("broker.auth", "broker.permission"),
         (Check("rabbitmqctl authenticate_user USER PASSWORD", "amqp"),
          Check("rabbitmqctl list_user_permissions USER  # and list_vhosts", "amqp"),
          Check("redis-cli -h BROKER_HOST -p PORT --user USER --pass '***' PING", "redis"))),
    Step("resources", "Is a resource limit hit?",
         ("broker.fd_exhaustion", "broker.memory", "broker.max_clients"),
         (Check("ulimit -n  # in the worker's environment; cat /proc/WORKER_PID/limits"),
          Check("redis-cli -h BROKER_HOST -p PORT INFO memory  # used_memory vs maxmemory", "redis"),
          Check("redis-cli -h BROKER_HOST -p PORT INFO clients  # connected_clients vs maxclients", "redis"),
          Check("rabbitmq-diagnostics alarms", "amqp"))),
    Step("connection", "Does the connection stay healthy?",
         ("broker.heartbeat", "broker.connection_lost", "broker.ack_timeout", "broker.readonly_replica"),
         (Check("rabbitmqctl list_connections name state timeout  # negotiated heartbeat", "amqp"),
          Check("grep -E 'missed heartbeats|closing AMQP connection' /var/log/rabbitmq/*.log", "amqp"),
          Check("redis-cli -h BROKER_HOST -p PORT INFO server  # uptime_in_seconds: did it restart?", "redis"),
          Check("redis-cli -h BROKER_HOST -p PORT INFO replication  # role:master?", "redis"))),
)


# Steps a failure of the category shows were passed: a certificate error needs a TCP connection; a
# refused login or a full client table is answered over the negotiated (TLS) session; a broker
# that rejects a write (OOM, READONLY), closes a consuming channel or loses the heartbeats of an
# open connection had accepted the login. A worker out of descriptors may not have connected.
IMPLIES: dict[str, tuple[str, ...]] = {
    "broker.tls": ("network",),
    "broker.auth": ("network", "tls"),
    "broker.permission": ("network", "tls"),
    "broker.max_clients": ("network", "tls"),
    "broker.memory": ("network", "tls", "credentials"),
    "broker.heartbeat": ("network", "tls", "credentials"),
    "broker.connection_lost": ("network", "tls", "credentials"),
    "broker.ack_timeout": ("network", "tls", "credentials"),
    "broker.readonly_replica": ("network", "tls", "credentials"),
}

# Celery logs `Connected to URL` once the consumer's connection is open (kombu's Redis channel has
# answered PING, py-amqp has opened the vhost); the eventlet/gevent pidbox logs `pidbox: Connected to`.
CONNECTED = r"^(?:pidbox: )?Connected to [A-Za-z][A-Za-z0-9+.-]*://"
# broker URLs Celery writes: `Connected to`, `Cannot connect to`, the banner's `.> transport:`
BROKER_URL = r"(?:Connected to|Cannot connect to|transport:)\s+([A-Za-z][A-Za-z0-9+.-]*)://"
CLIENT_EXCEPTION = r"\b(amqp|redis)\.exceptions\.[A-Z]"  # py-amqp / redis-py (the backend may use redis-py too)
SCHEMES = {"amqp": "amqp", "amqps": "amqp", "pyamqp": "amqp", "librabbitmq": "amqp",
           "redis": "redis", "rediss": "redis", "sentinel": "redis", "redis+socket": "redis"}
KIND_TRANSPORT = {"redis_info": "redis", "redis_log": "redis", "rabbitmq_log": "amqp", "rabbitmq_cli": "amqp",
                  "rabbitmq_queues": "amqp"}


@dataclass(frozen=True)
class LogFacts:
    """What the advisor reads in the logs, gathered once per bundle: a big log has many root causes
    and many lines naming the broker, and each root cause asks the same questions of them."""

    schemes: frozenset[str] = frozenset()  # transports the broker URLs in the logs name
    clients: frozenset[str] = frozenset()  # amqp / redis, from py-amqp / redis-py exception types
    connected: pl.DataFrame | None = None  # `Connected to …` records: host, ts, source, line

    @classmethod
    def of(cls, events: pl.DataFrame | None) -> LogFacts:
        if events is None or events.is_empty() or "text" not in events.columns:
            return cls()
        # the distinct URL mentions, then the scheme of each in Python: a log can repeat one a million times
        found = (events.select(pl.col("text").str.extract_all(BROKER_URL).alias("m")).explode("m")
                 .get_column("m").drop_nulls().unique().to_list())
        schemes = frozenset(SCHEMES.get(m.lower(), m.lower()) for f in found for m in re.findall(BROKER_URL, f))
        exc = events.get_column("exc_type").drop_nulls().unique().to_list() if "exc_type" in events.columns else []
        clients = frozenset(m for t in exc for m in re.findall(CLIENT_EXCEPTION, t))
        connected = None
        if {"message", "ts", "source", "line", "host"} <= set(events.columns):
            connected = events.filter(pl.col("message").str.contains(CONNECTED)).select("host", "ts", "source", "line")
        return cls(schemes, clients, connected)


def _facts(events: pl.DataFrame | LogFacts | None) -> LogFacts:
    return events if isinstance(events, LogFacts) else LogFacts.of(events)


def transports(finding: Finding, kinds: Iterable[str], events: pl.DataFrame | LogFacts | None = None) -> set[str]:
    """The broker transports the bundle shows, strongest evidence first; empty when it shows none.

    Broker URLs in the logs or the finding's evidence decide; failing those, py-amqp / redis-py
    exception types (weaker: a Redis result backend raises redis-py errors under an AMQP broker);
    failing those, broker artifacts in the bundle (`redis-cli INFO`, RabbitMQ logs and listings).
    """
    facts = _facts(events)
    texts = [e.text for e in finding.evidence]
    urls = {SCHEMES.get(m.lower(), m.lower()) for t in texts for m in re.findall(BROKER_URL, t)} | facts.schemes
    if urls:
        return urls
    clients = {m for t in texts for m in re.findall(CLIENT_EXCEPTION, t)} | facts.clients
    if clients:
        return clients
    return {KIND_TRANSPORT[k] for k in kinds if k in KIND_TRANSPORT}


def _fits(transport: str | None, shown: set[str]) -> bool:
    """A check or artifact for `transport` applies: it is for any broker, or for one the bundle shows
    (all of them when the bundle shows none)."""
    return not shown or transport is None or transport in shown


def _for_transport(items: Iterable[Check], shown: set[str]) -> tuple[str, ...]:
    return tuple(c.command for c in items if _fits(c.transport, shown))


def connected_before(finding: Finding, events: pl.DataFrame | LogFacts | None) -> bool:
    """Whether the worker logged `Connected to …` before the finding's failure.

    Before: earlier by timestamp than its first evidence, or earlier in a file its evidence
    quotes (for lines without a timestamp). When the finding's hosts logged such lines, only
    theirs count (another worker's connection says little about this one's); a broker-side
    finding (host `rabbitmq`) takes any worker's.
    """
    hits = _facts(events).connected
    if hits is None or hits.is_empty():
        return False
    own = set(finding.hosts) & set(hits.get_column("host").drop_nulls().to_list())
    if own:
        hits = hits.filter(pl.col("host").is_in(sorted(own)))
    before = pl.lit(False)
    ts = hits.schema["ts"]
    # first_seen is naive, as the logs write it; a frame already moved to UTC is ordered by lines only
    if finding.first_seen and not (isinstance(ts, pl.Datetime) and ts.time_zone is not None):
        try:
            first = datetime.fromisoformat(finding.first_seen)
        except ValueError:
            pass
        else:
            before = before | (pl.col("ts") <= pl.lit(first)).fill_null(False)
    first_line: dict[str, int] = {}
    for e in finding.evidence:
        first_line[e.source] = min(e.line, first_line.get(e.source, e.line))
    for source, line in first_line.items():
        before = before | ((pl.col("source") == source) & (pl.col("line") < line))
    return not hits.filter(before).is_empty()


@dataclass(frozen=True)
class Artifact:
    what: str
    command: str
    kinds: tuple[str, ...] = ()  # bundle kinds that already hold it
    transport: str | None = None  # "amqp" | "redis" when only that broker has it


EVIDENCE: dict[str, tuple[Artifact, ...]] = {
    "worker.lost": (
        Artifact("kernel log: was the child killed by the OOM killer?",
                 "dmesg -T | grep -i -E 'killed process|out of memory'", ("kernel_log",)),
        Artifact("the worker's memory limit", "systemctl show -p MemoryMax celery-worker  # or the container limit"),
    ),
    "worker.crash": (
        Artifact("a core file of the crashed child (then `gdb python CORE -batch -ex 'thread apply all bt'`)",
                 "coredumpctl list; coredumpctl dump PID -o core.PID", ("core", "gdb", "gdb_mi")),
        Artifact("the child's faulthandler output (worker stderr)", "journalctl -u celery-worker | grep -A40 "
                 "'Fatal Python error'", ("faulthandler",)),
    ),
    "worker.oom": (
        Artifact("kernel log", "dmesg -T | grep -i -E 'killed process|out of memory'", ("kernel_log",)),
    ),
    "task.stuck": (
        Artifact("a thread dump of the pool child running the task",
                 "py-spy dump --pid PID --locals  # twice, a few seconds apart", ("pyspy", "pyspy_json", "gdb")),
        Artifact("what the worker is running now", "celery -A APP inspect active --json", ("inspect_json",)),
    ),
    "io.blocking": (
        Artifact("the socket's peer", "ss -tnp | grep PID"),
        Artifact("a second dump to prove the stack does not move", "py-spy dump --pid PID --locals",
                 ("pyspy", "pyspy_json")),
    ),
    "lock.wait": (
        Artifact("lock objects of every thread (who holds what)", "py-spy dump --pid PID --locals"),
    ),
    "deadlock.lock_cycle": (
        Artifact("native lock owners", "gdb -p PID -batch -ex 'thread apply all bt' -ex 'info threads'", ("gdb",)),
    ),
    "deadlock.database": (
        Artifact("the server's deadlock report with both queries",
                 "grep -A8 'deadlock detected' /var/log/postgresql/*.log  # MySQL: SHOW ENGINE INNODB STATUS\\G",
                 ("postgres_log", "mysql_innodb_status")),
    ),
    "deadlock.edeadlk": (
        Artifact("who holds which byte range", "cat /proc/locks", ("proc_locks",)),
    ),
    "broker.unreachable": (
        Artifact("the worker host's route to the broker and where the path stops",
                 "ip route get BROKER_IP; traceroute -T -p PORT BROKER_HOST"),
        Artifact("whether the worker's container is attached to the broker's network",
                 "docker network inspect NETWORK  # Kubernetes: kubectl get networkpolicy -A"),
    ),
    "broker.max_clients": (
        Artifact("broker client counts", "redis-cli -h BROKER_HOST -p PORT INFO clients", ("redis_info",), "redis"),
    ),
    "broker.memory": (
        Artifact("broker memory", "redis-cli -h BROKER_HOST -p PORT INFO memory", ("redis_info",), "redis"),
        Artifact("whether the broker raised its memory alarm", "rabbitmq-diagnostics alarms", ("rabbitmq_cli",),
                 "amqp"),
    ),
    "broker.fd_exhaustion": (
        Artifact("the worker's descriptor limit and use", "cat /proc/WORKER_PID/limits; ls /proc/WORKER_PID/fd | wc -l",
                 ("ulimit",)),
    ),
    "broker.heartbeat": (
        Artifact("the broker's view", "grep -E 'missed heartbeats' /var/log/rabbitmq/*.log", ("rabbitmq_log",),
                 "amqp"),
    ),
    "broker.auth": (
        Artifact("the broker's reason (clients only see ACCESS_REFUSED)",
                 "grep -E 'login refused|invalid credentials' /var/log/rabbitmq/*.log", ("rabbitmq_log",), "amqp"),
        Artifact("the broker's record of the refused logins (entries with reason auth: user and client address)",
                 "redis-cli -h BROKER_HOST -p PORT --user ADMIN --pass '***' ACL LOG 10", (), "redis"),
    ),
    "events.storm": (
        Artifact("event queue depth and consumers, listed twice to show growth",
                 "for i in 1 2; do date -Is; rabbitmqctl list_queues -p VHOST name messages consumers memory; "
                 "sleep 10; done", ("rabbitmq_queues",), "amqp"),
        Artifact("whether the broker raised its memory alarm", "rabbitmq-diagnostics alarms", ("rabbitmq_cli",),
                 "amqp"),
    ),
    "events.clock_drift": (
        Artifact("each host's clock and its synchronisation", "date -u; timedatectl status; chronyc tracking"),
    ),
    "db.too_many_connections": (
        Artifact("who holds the connections", "psql -c \"select usename, application_name, state, count(*) from "
                 "pg_stat_activity group by 1,2,3 order by 4 desc\"", ("postgres_log",)),
    ),
    "db.pool_exhausted": (
        Artifact("pool settings vs concurrency", "celery -A APP inspect stats --json  # pool.max-concurrency",
                 ("inspect_json",)),
    ),
}

# per `cycles.kind`: what proves a cycle of that kind, in place of the category's artifacts
CYCLE_EVIDENCE: dict[str, tuple[Artifact, ...]] = {
    "pipe": (
        Artifact("which pipes each process holds, and which end (`lr-x` read, `l-wx` write)",
                 "ls -l /proc/PID/fd /proc/CHILD/fd", ("procfs",)),
        Artifact("what each process sleeps in: wait4(CHILD) vs write(FD), the wait channel and kernel stack",
                 "grep -H . /proc/PID/{stat,wchan,syscall,stack} /proc/CHILD/{stat,wchan,syscall,stack}",
                 ("procfs",)),
        Artifact("who is whose child, and their wait channels (do_wait vs pipe_write)",
                 "ps -eo pid,ppid,stat,wchan:32,cmd", ("ps",)),
        Artifact("the Python stacks of the process and its children, with the Process and Connection objects",
                 "py-spy dump --subprocesses --locals --pid PID", ("pyspy", "pyspy_json")),
    ),
}


# per rule: what proves that rule's case, in place of its category's artifacts (Celery's own SIGKILL of
# a child that never reported ready is no OOM kill: the kernel log and the memory limit prove nothing)
RULE_EVIDENCE: dict[str, tuple[Artifact, ...]] = {
    "CP-W012": (
        Artifact("the stack of a new pool child while it starts (what worker_process_init blocks on)",
                 "py-spy dump --subprocesses --pid WORKER_PID  # within worker_proc_alive_timeout of its start",
                 ("pyspy", "pyspy_json")),
        Artifact("the worker's configuration (worker_proc_alive_timeout, worker_max_tasks_per_child)",
                 "celery -A APP inspect conf --json"),
    ),
}


def cycle_kinds(finding: Finding, cycles: pl.DataFrame | None) -> list[str]:
    """Kinds of the cycles a finding's evidence points at (a rule on `cycles` quotes their evidence)."""
    if cycles is None or cycles.is_empty() or not {"kind", "evidence"} <= set(cycles.columns):
        return []
    refs = [f"{e.source}:{e.line}" for e in finding.evidence]
    if not refs:
        return []
    hit = cycles.filter(pl.col("evidence").list.eval(pl.element().is_in(refs)).list.any())
    return sorted(set(hit.get_column("kind").drop_nulls().to_list()))


@dataclass(frozen=True)
class Advice:
    """Where a root cause sits in the broker tree, the checks for that step, and what to collect.

    Tree statuses: `passed` (the bundle shows the worker got past the step), `failed here`, and
    `not reached` (nothing shows it got past the step: after the failing one, or before it when
    no line proves it was passed).
    """

    finding: str
    tree: tuple[tuple[str, str, str], ...] = ()  # (step, question, passed | failed here | not reached)
    checks: tuple[str, ...] = ()
    missing: tuple[Artifact, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {}
        if self.tree:
            d["decision_tree"] = [{"step": s, "question": q, "status": st} for s, q, st in self.tree]
        if self.checks:
            d["checks"] = list(self.checks)
        if self.missing:
            d["collect"] = [{"what": a.what, "command": a.command} for a in self.missing]
        return d


def advise(finding: Finding, kinds: Iterable[str], cycles: pl.DataFrame | None = None,
           events: pl.DataFrame | LogFacts | None = None) -> Advice:
    """The decision-tree position and the evidence to collect for one (root-cause) finding.

    `cycles` (the bundle's `cycles` frame) lets a deadlock finding get the artifacts that prove
    its kind of cycle rather than its category's. `events` (the naive frame rules see) lets a
    `Connected to …` line before the failure prove the steps before it, and names the transport
    so that only that broker's commands are offered; without it only the finding's own evidence
    and the bundle kinds do.
    """
    have = set(kinds)
    events = _facts(events)
    shown = transports(finding, have, events)
    tree: list[tuple[str, str, str]] = []
    checks: tuple[str, ...] = ()
    failed_at = next((i for i, s in enumerate(BROKER_TREE) if finding.category in s.categories), None)
    if failed_at is not None:
        proven = set(IMPLIES.get(finding.category, ()))
        if connected_before(finding, events):  # an open connection got past every step but its upkeep
            proven |= {s.name for s in BROKER_TREE if s.name != "connection"}
        for i, step in enumerate(BROKER_TREE):
            status = FAILED if i == failed_at else PASSED if i < failed_at and step.name in proven else NOT_REACHED
            tree.append((step.name, step.question, status))
        checks = _for_transport(BROKER_TREE[failed_at].checks, shown)
    wanted: list[Artifact] = []
    for kind in cycle_kinds(finding, cycles) or [""]:
        for a in CYCLE_EVIDENCE.get(kind) or RULE_EVIDENCE.get(finding.rule) or EVIDENCE.get(finding.category, ()):
            if a not in wanted and _fits(a.transport, shown):
                wanted.append(a)
    missing = tuple(a for a in wanted if not (set(a.kinds) & have))
    return Advice(finding.id, tuple(tree), checks, missing)
