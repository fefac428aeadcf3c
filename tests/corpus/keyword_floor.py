"""The keyword floor: what a naive operator's grep over the raw text would name.

About thirty ordered regexes, first hit wins, no parsing, no layout, no context. Each pattern is a
message string as the code that prints it writes it (Celery, kombu, billiard, py-amqp, redis-py,
psycopg2/PostgreSQL, MySQL, SQLAlchemy, RabbitMQ, the Linux kernel), not a phrase taken from the
corpus excerpts; the order is an operator's: specific infrastructure causes before the symptoms
they produce, generic words last.

The corpus test holds the analyzer to "right wherever this floor is right": the floor is a
reference, never a target, so it is not tuned to the excerpts either.

Every pattern is an alternation of literals with at most a single `\\d+`: linear, no nested or
ambiguous repetition.
"""

from __future__ import annotations

import re

HEALTHY = "healthy"

# (category, pattern) in the order the grep tries them. Sources in the comments.
RULES: tuple[tuple[str, str], ...] = (
    # celery/worker/consumer/consumer.py UNKNOWN_TASK_ERROR
    ("task.unregistered", r"Received unregistered task of type"),
    # celery/worker/request.py on_timeout; billiard/pool.py on_hard_timeout
    ("task.hard_time_limit", r"Hard time limit \(|TimeLimitExceeded\("),
    # celery/worker/request.py on_timeout; billiard SoftTimeLimitExceeded
    ("task.soft_time_limit", r"Soft time limit \(|SoftTimeLimitExceeded"),
    # linux mm/oom_kill.c; kubelet OOMKilled; Python MemoryError
    ("worker.oom", r"Out of memory: Kill|Killed process \d+|oom-kill:|Memory cgroup out of memory|OOMKilled|"
                   r"MemoryError"),
    # billiard/common.py human_status for SIGSEGV/SIGABRT/SIGBUS; linux arch/x86/mm/fault.c
    ("worker.crash", r"signal 11 \(SIGSEGV\)|signal 6 \(SIGABRT\)|signal 7 \(SIGBUS\)|segfault at "),
    # billiard/pool.py mark_as_worker_lost / maintain_pool
    ("worker.lost", r"Worker exited prematurely|WorkerLostError|exited with 'signal 9 \(SIGKILL\)'"),
    # PostgreSQL deadlock.c; MySQL ER_LOCK_DEADLOCK (1213)
    ("deadlock.database", r"deadlock detected|Deadlock found when trying to get lock"),
    # errno EDEADLK
    ("deadlock.edeadlk", r"Resource deadlock avoided|EDEADLK"),
    # sqlalchemy/pool/impl.py QueuePool._do_get
    ("db.pool_exhausted", r"QueuePool limit of size"),
    # PostgreSQL postmaster "sorry, too many clients already"; MySQL ER_CON_COUNT_ERROR (1040)
    ("db.too_many_connections", r"too many clients already|Too many connections"),
    # MySQL ER_LOCK_WAIT_TIMEOUT (1205); PostgreSQL lock_timeout; redis-py redis/lock.py
    ("lock.wait", r"Lock wait timeout exceeded|LockNotAvailable|canceling statement due to lock timeout|LockError"),
    # RabbitMQ rabbit_reader/rabbit_auth_backend_internal; Redis AUTH replies
    ("broker.auth", r"ACCESS_REFUSED|invalid credentials|WRONGPASS|NOAUTH|invalid username-password pair"),
    # RabbitMQ vhost access; Redis ACL
    ("broker.permission", r"NOT_ALLOWED - access to vhost|NOPERM"),
    # Redis server.c OOM reply; RabbitMQ rabbit_alarm
    ("broker.memory", r"command not allowed when used memory|memory resource limit alarm"),
    # Redis replica reply; redis-py ReadOnlyError
    ("broker.readonly_replica", r"READONLY You can't write|read only replica|ReadOnlyError"),
    # RabbitMQ rabbit_channel consumer_timeout (3.8.15+ and 3.8.0-3.8.14 wordings)
    ("broker.ack_timeout", r"delivery acknowledgement on channel \d+ timed out|consumer ack timed out"),
    # py-amqp connection.heartbeat_tick; RabbitMQ rabbit_heartbeat
    ("broker.heartbeat", r"Too many heartbeats missed|missed heartbeats from client"),
    # errno EMFILE
    ("broker.fd_exhaustion", r"Too many open files|EMFILE"),
    # ssl module (SSLError, SSLCertVerificationError reasons)
    ("broker.tls", r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|SSLError|WRONG_VERSION_NUMBER"),
    # socket.gaierror / getaddrinfo (glibc, BSD)
    ("broker.dns", r"Name or service not known|nodename nor servname|Temporary failure in name resolution|gaierror"),
    # errno EHOSTUNREACH / ENETUNREACH
    ("broker.unreachable", r"No route to host|Network is unreachable|EHOSTUNREACH|ENETUNREACH"),
    # errno ECONNREFUSED; kombu "Cannot connect to"; redis-py "Error 111 connecting"
    ("broker.connection_refused", r"Connection refused|ECONNREFUSED|actively refused"),
    # socket.timeout; redis-py "Timeout connecting to server"; kombu "Cannot connect to ...: timed out"
    ("broker.timeout", r"timed out|Timeout connecting"),
    # celery consumer CONNECTION_RETRY; errno ECONNRESET/EPIPE; kombu "Couldn't ack"
    ("broker.connection_lost", r"Connection to broker lost|Connection reset by peer|ECONNRESET|Broken pipe|"
                               r"Connection closed by server|Couldn't ack"),
    # kombu/serialization.py; kombu ContentDisallowed; json "is not JSON serializable"
    ("task.serialization", r"EncodeError|DecodeError|is not JSON serializable|ContentDisallowed"),
    # celery/backends/base.py
    ("backend.error", r"BackendStoreError|BackendGetMetaError"),
    # celery/worker/worker.py WorkController.start
    ("worker.unrecoverable", r"Unrecoverable error"),
    # celery/app/trace.py "raised unexpected", Celery 3.x "raised exception"
    ("task.exception", r"raised unexpected|raised exception"),
    # anything that looks like an error at all
    ("error.unclassified", r"Traceback \(most recent call last\)|\bERROR\b|\bCRITICAL\b|\bFATAL\b|Error:"),
)

_COMPILED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (category, re.compile(pattern, 0 if category == "error.unclassified" else re.IGNORECASE))
    for category, pattern in RULES)


def classify(text: str) -> str:
    """The first category whose pattern occurs anywhere in `text`, else "healthy"."""
    for category, pattern in _COMPILED:
        if pattern.search(text):
            return category
    return HEALTHY
