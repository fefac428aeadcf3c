"""The category taxonomy of DESIGN.md: every finding has exactly one of these.

A new category is added to DESIGN.md first, then here with its one-line meaning (DESIGN.md is
shared and read-only here: `events.clock_drift` waits there, see the issue notes).
"""

from __future__ import annotations

CATEGORIES: dict[str, str] = {
    # broker
    "broker.connection_refused": "nothing accepts connections on the broker's address and port",
    "broker.dns": "the broker's host name does not resolve",
    "broker.timeout": "connecting to or talking with the broker timed out",
    # not in DESIGN.md, which files EHOSTUNREACH / ENETUNREACH (FORMATS.md B.3) nowhere: no route is no timeout
    "broker.unreachable": "no route to the broker's host or network",
    "broker.auth": "the broker rejected the credentials",
    "broker.permission": "the broker user lacks access to the vhost or an ACL",
    "broker.connection_lost": "an established broker connection dropped",
    "broker.heartbeat": "heartbeats were missed and the connection was closed",
    "broker.fd_exhaustion": "the worker ran out of file descriptors",
    "broker.memory": "the broker refused work for lack of memory (Redis maxmemory, RabbitMQ alarm)",
    "broker.max_clients": "the broker's client limit was reached",
    "broker.tls": "the TLS handshake with the broker failed",
    "broker.ack_timeout": "RabbitMQ closed the channel: delivery acknowledgement timeout",
    "broker.readonly_replica": "Redis answered READONLY: writing to a replica",
    "backend.error": "the result backend failed",
    # stuck / lost work
    "task.hard_time_limit": "a task hit its hard time limit and its pool child was killed",
    "task.soft_time_limit": "a task hit its soft time limit",
    "worker.lost": "a pool child died while running a task",
    "worker.crash": "a worker process died of a signal such as SIGSEGV or SIGABRT",
    "worker.oom": "evidence of memory exhaustion",
    "task.stuck": "a task started and never finished, or sits in the same stack across dumps",
    "db.pool_exhausted": "the database connection pool had no free connection",
    "db.too_many_connections": "the database server refused a connection: too many clients",
    "lock.file_timeout": "a file lock could not be acquired in time",
    "lock.wait": "threads are parked on a lock",
    "io.blocking": "threads are parked on network I/O with no timeout",
    "events.storm": "the event stream overwhelms the broker or monitors",
    # not in DESIGN.md, which files clock skew nowhere: "Substantial drift" is no event storm
    "events.clock_drift": "worker clocks disagree: event timestamps drift beyond Celery's limit",
    # DESIGN.md "Added in use": Celery's `Unrecoverable error`, and what no rule classifies
    "worker.unrecoverable": "the worker's main process stopped on an error no other category explains",
    "error.unclassified": "an ERROR or CRITICAL record that no rule classifies (grouped by exception and message)",
    # deadlocks
    "deadlock.edeadlk": "the kernel refused a lock: Resource deadlock avoided (errno 35)",
    "deadlock.lock_cycle": "a cycle in the wait-for graph of threads and locks",
    "deadlock.database": "the database detected a deadlock between transactions",
    "deadlock.fork": "a forked child is parked on a lock taken before fork",
    # tasks
    "task.unregistered": "a message named a task the worker does not know",
    "task.serialization": "a message or result could not be encoded or decoded",
    "task.exception": "an application error, not infrastructure",
}

SEVERITIES: tuple[str, ...] = ("info", "warning", "error", "critical")
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
