"""Broker and result-backend failures: refused, lost, auth, vhost/ACL, DNS, timeout, Redis OOM and
maxclients, fd exhaustion, missed AMQP heartbeats, a dead result backend.

Every broker that gets broken is our own (a private redis-server, a listening socket or proxy we hold, a
vhost or user we create on the system RabbitMQ and delete afterwards); the shared services are otherwise
only read from (its log file, `rabbitmqctl list_*`). Helpers that need no Ctx change live here, not in
the harness.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import resource
import signal
import subprocess
import time
from pathlib import Path

from harness import Ctx, Scenario, ScenarioError, free_port

APP = """
    import os
    import socket
    import time

    from celery import Celery
    from celery.utils.log import get_task_logger

    app = Celery("proj", broker={broker!r}, backend={backend!r})
    app.conf.broker_connection_retry_on_startup = True
    app.conf.update({conf!r})
    log = get_task_logger(__name__)

    @app.task
    def add(x, y):
        log.info("adding %s + %s", x, y)
        return x + y

    @app.task
    def blob(n, pad=None):
        return "x" * n

    _kept = []

    @app.task
    def hold_files(n):
        # Opens n descriptors (files and sockets) and keeps them: a leak, as in real code that
        # forgets to close what it opens.
        for i in range(n):
            if i % 2:
                _kept.append(open(os.devnull, "rb"))
            else:
                _kept.append(socket.socket())
        return len(_kept)
"""

RABBIT_LOG_DIR = Path("/var/log/rabbitmq")
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d \[", re.M)
PID_RX = re.compile(r"<\d+\.\d+\.\d+>")


def app(ctx: Ctx, broker: str, backend: str | None = None, **conf: object) -> None:
    ctx.write("proj.py", APP.format(broker=broker, backend=backend, conf=conf))


def wait_exit(p: subprocess.Popen[bytes], timeout: float) -> int | None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        return p.wait(timeout=timeout)
    return None


def redis_proc(ctx: Ctx, port: int) -> subprocess.Popen[bytes]:
    """The Popen of the redis-server we started on `port` (the last one, after a restart)."""
    for p in reversed(ctx.procs):
        if p.args[:3] == ["redis-server", "--port", str(port)] and p.poll() is None:
            return p
    raise ScenarioError(f"no redis-server of ours on {port}")


def redis_info(ctx: Ctx, port: int, *auth: str, as_name: str = "redis-info.txt") -> None:
    r = ctx.run(["redis-cli", "-p", str(port), *auth, "INFO"])
    ctx.save(as_name, r.stdout)


# --- RabbitMQ server log ------------------------------------------------------------------------

def rabbit_log() -> Path | None:
    logs = sorted(p for p in RABBIT_LOG_DIR.glob("rabbit@*.log") if "_upgrade" not in p.name)
    return logs[0] if logs else None


def rabbit_mark() -> int:
    log = rabbit_log()
    return log.stat().st_size if log else 0


def rabbit_excerpt(ctx: Ctx, mark: int, interest: str, as_name: str = "rabbitmq-server.log") -> None:
    """Keep the RabbitMQ log records written since `mark` that belong to connections whose records
    match `interest` (whole records, verbatim; other clients of the shared broker are left out)."""
    log = rabbit_log()
    if log is None:
        ctx.note("RabbitMQ server log not found under /var/log/rabbitmq; no server-side lines kept.")
        return
    time.sleep(1.0)  # let the broker flush
    with open(log, "rb") as f:
        f.seek(mark)
        text = f.read().decode("utf-8", errors="replace")
    starts = [m.start() for m in RECORD.finditer(text)] + [len(text)]
    records = [text[a:b] for a, b in itertools.pairwise(starts)]
    rx = re.compile(interest)
    ids = {pid for r in records if rx.search(r) for pid in PID_RX.findall(r)}
    kept = [r for r in records if any(pid in r for pid in ids)]
    if not kept:
        ctx.note(f"No record in {log} matched /{interest}/ during the run.")
        return
    ctx.save(as_name, "".join(kept))
    ctx.note(f"`{as_name}` holds the records appended to the RabbitMQ server log `{log}` during the run "
             f"that belong to the worker's connections (selected as whole records, unedited; other "
             f"clients of the shared broker left out).")


# --- scenarios ----------------------------------------------------------------------------------

def _refused(ctx: Ctx, url: str) -> None:
    app(ctx, url)
    w = ctx.worker()
    ctx.wait_for("worker.log", r"Trying again in .*\(3/100\)", timeout=60)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")


def redis_cli_attempt(ctx: Ctx, *argv: str) -> None:
    """What an operator sees checking the broker by hand: redis-cli's own output (stdout and stderr)."""
    r = ctx.run(["redis-cli", *argv, "INFO"], check=False)
    ctx.save("redis-cli.txt", r.stdout + r.stderr)
    ctx.note(f"`redis-cli.txt` is the output of `redis-cli {' '.join(argv)} INFO` (exit status {r.returncode}).")


def broker_refused(ctx: Ctx) -> None:
    port = free_port()
    _refused(ctx, f"redis://127.0.0.1:{port}/0")
    redis_cli_attempt(ctx, "-p", str(port))


def broker_refused_amqp(ctx: Ctx) -> None:
    _refused(ctx, f"amqp://guest:guest@127.0.0.1:{free_port()}//")


def broker_dns(ctx: Ctx) -> None:
    app(ctx, "redis://nonexistent.invalid:6379/0")
    w = ctx.worker()
    ctx.wait_for("worker.log", r"Trying again in .*\(3/100\)", timeout=60)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    redis_cli_attempt(ctx, "-h", "nonexistent.invalid", "-p", "6379")


def redis_wrong_password(ctx: Ctx) -> None:
    port = ctx.redis("--requirepass", "s3cret-right")
    app(ctx, f"redis://:wrong-password@127.0.0.1:{port}/0", f"redis://:wrong-password@127.0.0.1:{port}/1")
    w = ctx.worker()
    m = None
    with contextlib.suppress(ScenarioError):
        m = ctx.wait_for("worker.log", r"Trying again in .*\(3/100\)|Unrecoverable error", timeout=40)
    if m is None or "Unrecoverable" not in m.group(0):
        ctx.stop(w)
    else:
        wait_exit(w, 20)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    redis_info(ctx, port, "--no-auth-warning", "-a", "s3cret-right")


def _rabbit_refused(ctx: Ctx, url: str, interest: str) -> None:
    mark = rabbit_mark()
    app(ctx, url)
    w = ctx.worker()
    m = ctx.wait_for("worker.log", r"Trying again in .*\(3/100\)|Unrecoverable error|Frequent restarts detected",
                     timeout=60)
    if "Unrecoverable" in m.group(0):  # the worker gives up by itself
        if wait_exit(w, 30) is None:
            ctx.stop(w)
    else:
        if "Frequent" in m.group(0):  # it reconnects in a tight loop: keep two rounds of it
            ctx.wait_for("worker.log", r"Frequent restarts detected", count=2, timeout=30)
        ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    rabbit_excerpt(ctx, mark, interest)


def rabbitmq_access_refused(ctx: Ctx) -> None:
    _rabbit_refused(ctx, "amqp://guest:wrong-password@127.0.0.1:5672//", r"login refused")


def rabbitmq_vhost(ctx: Ctx) -> None:
    _rabbit_refused(ctx, "amqp://guest:guest@127.0.0.1:5672/cpm-missing-vhost", r"cpm-missing-vhost")
    ctx.save("rabbitmqctl-list_vhosts.txt", ctx.run(["rabbitmqctl", "list_vhosts"]).stdout)
    ctx.note("`rabbitmqctl-list_vhosts.txt` lists the vhosts of the shared broker at the end of the run; other "
             "helpers' vhosts may appear in it.")


def rabbitmq_permission(ctx: Ctx) -> None:
    user = "cpm-sample-noperm"
    subprocess.run(["rabbitmqctl", "delete_user", user], capture_output=True, check=False)  # an aborted run's
    ctx.run(["rabbitmqctl", "add_user", user, "noperm-pw"])
    try:
        ctx.save("rabbitmqctl-list_user_permissions.txt",
                 ctx.run(["rabbitmqctl", "list_user_permissions", user]).stdout)
        ctx.save("rabbitmqctl-list_permissions.txt", ctx.run(["rabbitmqctl", "list_permissions", "-p", "/"]).stdout)
        _rabbit_refused(ctx, f"amqp://{user}:noperm-pw@127.0.0.1:5672//", re.escape(user))
    finally:
        ctx.run(["rabbitmqctl", "delete_user", user], check=False)
    ctx.note(f"The user `{user}` was created for the run (no permissions on any vhost) and deleted afterwards.")


SCENARIOS = [
    Scenario("broker-refused", "Nothing listens on the Redis broker port: the worker retries "
             "(`Cannot connect to redis://...: Error 111 ... Connection refused..`) until stopped.",
             broker_refused),
    Scenario("broker-refused-amqp", "Nothing listens on the AMQP broker port: the worker retries "
             "(`Cannot connect to amqp://...: [Errno 111] Connection refused.`) until stopped.",
             broker_refused_amqp),
    Scenario("broker-dns", "The broker host does not resolve (`nonexistent.invalid`): the worker retries "
             "with `Error -2 connecting to nonexistent.invalid:6379` until stopped.", broker_dns),
    Scenario("redis-wrong-password", "The Redis broker requires a password and the worker's URL has the "
             "wrong one (WRONGPASS / AuthenticationError).", redis_wrong_password, needs=("redis",)),
    Scenario("rabbitmq-access-refused", "RabbitMQ refuses the login: wrong password for guest "
             "(ACCESS_REFUSED 403).", rabbitmq_access_refused, needs=("rabbitmq",)),
    Scenario("rabbitmq-vhost", "The broker URL names a RabbitMQ vhost that does not exist "
             "(NOT_ALLOWED 530 - vhost not found).", rabbitmq_vhost, needs=("rabbitmq",)),
    Scenario("rabbitmq-permission", "A RabbitMQ user with no permission on the vhost `/` "
             "(NOT_ALLOWED 530 - access to vhost refused).", rabbitmq_permission, needs=("rabbitmq",)),
]


# --- connection lost, timeout, result backend --------------------------------------------------

SEND = """
    from proj import add
    rs = [add.delay(i, {k}) for i in range({n})]
    print([r.get(timeout=30) for r in rs])
"""


def broker_lost(ctx: Ctx) -> None:
    port = ctx.redis()
    app(ctx, f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/1")
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python(SEND.format(n=3, k=100))
    ctx.wait_for("worker.log", r"succeeded in", count=3)
    redis = redis_proc(ctx, port)
    ctx.commands.append(f"kill -KILL {redis.pid}  # the redis-server broker")
    os.kill(redis.pid, signal.SIGKILL)
    redis.wait(timeout=10)
    ctx.wait_for("worker.log", r"Connection to broker lost")
    ctx.wait_for("worker.log", r"Cannot connect to .*\n.*\(2/100\)", timeout=30)
    ctx.redis(port=port)  # the same port again, empty: nothing persisted
    ctx.wait_for("worker.log", r"Connected to redis://", count=2, timeout=60)
    ctx.python(SEND.format(n=3, k=200))
    ctx.wait_for("worker.log", r"succeeded in", count=6)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    redis_info(ctx, port)
    ctx.note("`redis-info.txt` is `INFO` of the restarted redis-server, taken after the worker reconnected.")


BLACKHOLE = """
    # A TCP listener that never accepts: its accept queue is filled by connections made here, after which
    # the kernel drops further SYNs, so a client's connect() hangs until its own timeout.
    import socket, sys, time

    port = int(sys.argv[1])
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(0)
    held = []
    while True:
        c = socket.socket()
        c.settimeout(1.0)
        try:
            c.connect(("127.0.0.1", port))
        except (TimeoutError, OSError):
            c.close()
            break
        held.append(c)
    print(f"listening on {port}, accept queue full after {len(held)} connections", flush=True)
    while True:
        time.sleep(60)
"""


def _timeout(ctx: Ctx, scheme: str) -> None:
    port = free_port()
    ctx.write("blackhole.py", BLACKHOLE)
    ctx.spawn([str(Path(ctx.env()["PATH"].split(":")[0]) / "python"), "blackhole.py", str(port)],
              log="blackhole.log")
    ctx.wait_for("blackhole.log", r"accept queue full", timeout=30)
    if scheme == "redis":
        # kombu's Redis transport takes its connect timeout from the transport options, not from
        # broker_connection_timeout (without it, connect() waits for the kernel's SYN retries).
        app(ctx, f"redis://127.0.0.1:{port}/0", broker_connection_timeout=2.0,
            broker_transport_options={"socket_connect_timeout": 2.0})
    else:
        app(ctx, f"amqp://guest:guest@127.0.0.1:{port}//", broker_connection_timeout=2.0)
    w = ctx.worker()
    ctx.wait_for("worker.log", r"Trying again in .*\(3/100\)", timeout=90)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    ctx.keep("blackhole.log")
    ctx.note("The broker port is held by `blackhole.py` (a listener whose accept queue is full and that never "
             "calls accept()), so connects time out after 2 s (`broker_connection_timeout=2.0`; for Redis "
             "also `broker_transport_options={'socket_connect_timeout': 2.0}`).")


def broker_timeout(ctx: Ctx) -> None:
    _timeout(ctx, "redis")


def broker_timeout_amqp(ctx: Ctx) -> None:
    _timeout(ctx, "amqp")


def backend_failure(ctx: Ctx) -> None:
    broker = ctx.redis()
    backend = ctx.redis()
    app(ctx, f"redis://127.0.0.1:{broker}/0", f"redis://127.0.0.1:{backend}/0")
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python(SEND.format(n=3, k=100))
    ctx.wait_for("worker.log", r"succeeded in", count=3)
    redis = redis_proc(ctx, backend)
    ctx.commands.append(f"kill -KILL {redis.pid}  # the redis-server result backend")
    os.kill(redis.pid, signal.SIGKILL)
    redis.wait(timeout=10)
    # A producer without a result backend: the tasks still go through the (healthy) broker.
    ctx.python(f"""
        from celery import Celery
        producer = Celery("producer", broker="redis://127.0.0.1:{broker}/0")
        for i in range(3):
            print(producer.send_task("proj.add", (i, 300)).id)
    """)
    ctx.wait_for("worker.log", r"Task proj\.add\[[^\]]+\] received", count=6)
    ctx.wait_for("worker.log", r"Pool callback raised exception", count=3)
    time.sleep(2)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    redis_info(ctx, broker, as_name="redis-info-broker.txt")


SCENARIOS += [
    Scenario("broker-lost", "The Redis broker is SIGKILLed while the worker is idle and restarted on the same "
             "port: `Connection to broker lost`, reconnect attempts, `Connected to` again; three tasks succeed "
             "before and three after.", broker_lost, needs=("redis",)),
    Scenario("broker-timeout", "The Redis broker port accepts no connections (full accept queue, never "
             "accepted): connects time out after `broker_connection_timeout=2` and the worker retries.",
             broker_timeout),
    Scenario("broker-timeout-amqp", "The AMQP broker port accepts no connections (full accept queue, never "
             "accepted): connects time out after `broker_connection_timeout=2` and the worker retries.",
             broker_timeout_amqp),
    Scenario("backend-failure", "The Redis result backend (a separate redis-server) is SIGKILLed while the "
             "broker stays up: tasks still run, storing their results fails.", backend_failure,
             needs=("redis",)),
]


# --- Redis limits: maxmemory, maxclients --------------------------------------------------------

FILL = """
    # Fill the Redis server up to its maxmemory with one growing key, as a runaway producer would.
    import redis

    r = redis.Redis(port={port}, db=2)
    n = 0
    try:
        while True:
            r.append("filler", "x" * 16384)
            n += 1
    except redis.exceptions.RedisError as exc:
        print(f"APPEND #{{n + 1}} failed: {{type(exc).__module__}}.{{type(exc).__name__}}: {{exc}}")
"""

PUBLISH_AFTER = """
    import traceback
    from proj import blob

    try:
        blob.delay(10, pad="p" * 131072)  # a task with a 128 KiB argument
    except Exception:
        traceback.print_exc()
"""


def redis_oom(ctx: Ctx) -> None:
    port = ctx.redis("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    app(ctx, f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/1")
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python(SEND.format(n=3, k=100))
    ctx.wait_for("worker.log", r"succeeded in", count=3)
    # Three tasks with an ETA and a 128 KiB result: the worker receives (and holds) them now and runs
    # them after the fill.
    ctx.python("""
        from proj import blob
        for i in range(3):
            print(blob.apply_async((131072,), countdown=8).id)
    """)
    ctx.wait_for("worker.log", r"Task proj\.blob\[[^\]]+\] received", count=3)
    r = ctx.python(FILL.format(port=port))
    ctx.save("filler.log", r.stdout)
    r = ctx.python(PUBLISH_AFTER)
    ctx.save("producer.log", r.stdout + r.stderr)
    ctx.wait_for("worker.log", r"OutOfMemoryError", count=3, timeout=40)
    time.sleep(3)
    time.sleep(2)
    redis_info(ctx, port)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    ctx.note("`filler.log` is the output of a client that APPENDs 16 KiB at a time to one key until Redis "
             "refuses; `producer.log` is the stdout/stderr of a client publishing one more task afterwards.")


SCENARIOS += [
    Scenario("redis-oom", "The Redis broker and result backend (one redis-server, `--maxmemory 2mb "
             "--maxmemory-policy noeviction`) is filled up to maxmemory while the worker holds three ETA tasks: "
             "storing their 128 KiB results and publishing a task with a 128 KiB argument fail with `OOM "
             "command not allowed when used memory > 'maxmemory'`; three earlier tasks succeeded.", redis_oom,
             needs=("redis",)),
]


def redis_maxclients(ctx: Ctx) -> None:
    port = ctx.redis("--maxclients", "3")
    app(ctx, f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/1")
    w = ctx.worker()
    ctx.wait_for("worker.log", r"Unrecoverable error|ready\.", timeout=60)
    if wait_exit(w, 30) is None:
        ctx.stop(w)
    redis_info(ctx, port)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")


SCENARIOS += [
    Scenario("redis-maxclients", "A Redis broker with `--maxclients 3`: the worker connects, then its "
             "next connections are refused with `max number of clients reached` and it exits with an "
             "unrecoverable error.", redis_maxclients, needs=("redis",)),
]


# --- file descriptors -------------------------------------------------------------------------------

NOFILE = int(os.environ.get("CPM_NOFILE", "64"))


def _low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def fd_exhaustion(ctx: Ctx) -> None:
    port = ctx.redis()
    app(ctx, f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/1")
    r = subprocess.run(["bash", "-c", "ulimit -a"], capture_output=True, text=True, preexec_fn=_low_nofile,
                       check=True)
    ctx.commands.append(f"bash -c 'ulimit -a'  # under setrlimit(RLIMIT_NOFILE, ({NOFILE}, {NOFILE}))")
    ctx.save("ulimit.txt", r.stdout)
    ctx.commands.append(f"# the worker below runs under setrlimit(RLIMIT_NOFILE, ({NOFILE}, {NOFILE}))")
    w = ctx.worker(concurrency=1, preexec=_low_nofile)
    ctx.wait_ready()
    ctx.python("""
        from proj import hold_files, add
        for i in range(4):
            r = hold_files.delay(20)
            print(r.get(timeout=30, propagate=False), r.state, flush=True)
        r = add.delay(1, 2)
        print(r.get(timeout=30, propagate=False), r.state)
    """)
    ctx.wait_for("worker.log", r"Task proj\.add\[[^\]]+\] succeeded", timeout=30)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    ctx.note(f"The worker and `ulimit.txt` ran under `setrlimit(RLIMIT_NOFILE, ({NOFILE}, {NOFILE}))` (a preexec "
             "hook); with `-c 1` the pool child starts with about 15 descriptors and each `hold_files(20)` "
             "leaks 20 more, so the third call fails.")


def fd_exhaustion_startup(ctx: Ctx) -> None:
    port = ctx.redis()
    app(ctx, f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/1")
    r = subprocess.run(["bash", "-c", "ulimit -a"], capture_output=True, text=True, preexec_fn=_low_nofile,
                       check=True)
    ctx.commands.append(f"bash -c 'ulimit -a'  # under setrlimit(RLIMIT_NOFILE, ({NOFILE}, {NOFILE}))")
    ctx.save("ulimit.txt", r.stdout)
    ctx.commands.append(f"# the worker below runs under setrlimit(RLIMIT_NOFILE, ({NOFILE}, {NOFILE}))")
    w = ctx.worker(concurrency=8, preexec=_low_nofile)
    ctx.wait_for("worker.log", r"Too many open files|Unrecoverable error|ready\.", timeout=60)
    if wait_exit(w, 30) is None:
        ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    ctx.note(f"The worker and `ulimit.txt` ran under `setrlimit(RLIMIT_NOFILE, ({NOFILE}, {NOFILE}))` (a preexec "
             "hook); eight pool processes take most of the descriptors before the consumer has started.")


# --- AMQP heartbeats -----------------------------------------------------------------------------

VHOST = "cpm-sample-heartbeat"
STALL_VHOST = "cpm-sample-stall"


def wait_rabbit_log(mark: int, pattern: str, timeout: float) -> None:
    log = rabbit_log()
    end = time.monotonic() + timeout
    rx = re.compile(pattern)
    while log and time.monotonic() < end:
        with open(log, "rb") as f:
            f.seek(mark)
            if rx.search(f.read().decode("utf-8", errors="replace")):
                return
        time.sleep(0.5)
    raise ScenarioError(f"/{pattern}/ not in the RabbitMQ log within {timeout}s")


def heartbeat_missed(ctx: Ctx) -> None:
    _heartbeat_missed(ctx, None)


def heartbeat_missed_clock_offset(ctx: Ctx) -> None:
    """heartbeat-missed with the worker in another zone than RabbitMQ: Celery writes local time without a
    zone, so its log is an hour ahead of the broker's (UTC) for the same moments."""
    _heartbeat_missed(ctx, "Etc/GMT-1")
    ctx.note("The worker ran with `TZ=Etc/GMT-1` (UTC+1) while RabbitMQ logs UTC: the two logs' clocks are an "
             "hour apart for the same moments, as when a worker host and the broker host differ in zone.")


def _heartbeat_missed(ctx: Ctx, worker_tz: str | None) -> None:
    subprocess.run(["rabbitmqctl", "delete_vhost", VHOST], capture_output=True, check=False)  # an aborted run's
    ctx.run(["rabbitmqctl", "add_vhost", VHOST])
    try:
        ctx.run(["rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"])
        mark = rabbit_mark()
        port = ctx.redis()
        app(ctx, f"amqp://guest:guest@127.0.0.1:5672/{VHOST}", f"redis://127.0.0.1:{port}/0", broker_heartbeat=2)
        w = ctx.worker(env=ctx.env(TZ=worker_tz) if worker_tz else None)
        if worker_tz:
            ctx.commands.append(f"# the worker above ran with TZ={worker_tz}")
        ctx.wait_ready()
        ctx.python(SEND.format(n=3, k=100))
        ctx.wait_for("worker.log", r"succeeded in", count=3)
        cols = ["vhost", "user", "peer_port", "state", "timeout"]
        ctx.save("rabbitmqctl-list_connections-before.txt",
                 ctx.run(["rabbitmqctl", "list_connections", *cols]).stdout)
        ctx.commands.append(f"kill -STOP -{w.pid}  # freeze the whole worker (process group)")
        os.killpg(w.pid, signal.SIGSTOP)
        try:
            wait_rabbit_log(mark, r"missed heartbeats from client", timeout=30)
            ctx.save("rabbitmqctl-list_connections-frozen.txt",
                     ctx.run(["rabbitmqctl", "list_connections", *cols]).stdout)
        finally:
            ctx.commands.append(f"kill -CONT -{w.pid}")
            os.killpg(w.pid, signal.SIGCONT)
        ctx.wait_for("worker.log", r"Connection to broker lost", timeout=30)
        ctx.wait_for("worker.log", r"Connected to amqp://", count=2, timeout=60)
        ctx.python(SEND.format(n=3, k=200))
        ctx.wait_for("worker.log", r"succeeded in", count=6)
        ctx.stop(w)
        ctx.keep("worker.log")
        ctx.keep("worker.log.out", "worker.stdout")
        rabbit_excerpt(ctx, mark, rf"vhost: '{VHOST}'|vhost '{VHOST}'")
    finally:
        ctx.run(["rabbitmqctl", "delete_vhost", VHOST], check=False)
    ctx.note(f"The vhost `{VHOST}` was created for the run (guest has all permissions on it) and deleted "
             "afterwards. `broker_heartbeat=2`; the worker's process group was stopped with SIGSTOP until "
             "RabbitMQ logged the missed heartbeats, then continued with SIGCONT. The `rabbitmqctl "
             "list_connections` files list every client of the shared broker, not only this worker.")


STALL_PROXY = """
    # A loopback TCP proxy to RabbitMQ. On SIGUSR1 it stalls every connection open at that moment: it stops
    # forwarding in both directions but keeps both sockets open (a hung NAT/LB or a partitioned link).
    # Connections made later are forwarded normally.
    import signal, socket, sys, threading, time

    listen_port, target_port = int(sys.argv[1]), int(sys.argv[2])
    conns, stalled = [], set()
    lock = threading.Lock()

    def on_usr1(signum, frame):
        with lock:
            stalled.update(id(c) for c in conns)
        print(f"stalled {len(conns)} connection(s)", flush=True)

    signal.signal(signal.SIGUSR1, on_usr1)

    def pump(src, dst, key):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with lock:
                frozen = key in stalled
            if frozen:
                while True:  # hold the sockets open, forward nothing
                    time.sleep(3600)
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            dst.sendall(data)

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(64)
    print(f"proxy 127.0.0.1:{listen_port} -> 127.0.0.1:{target_port}", flush=True)
    while True:
        client, _ = srv.accept()
        upstream = socket.create_connection(("127.0.0.1", target_port))
        with lock:
            conns.append(client)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pump, args=(a, b, id(client)), daemon=True).start()
"""


def heartbeat_stall_hang(ctx: Ctx) -> None:
    subprocess.run(["rabbitmqctl", "delete_vhost", STALL_VHOST], capture_output=True, check=False)  # an aborted run's
    ctx.run(["rabbitmqctl", "add_vhost", STALL_VHOST])
    try:
        ctx.run(["rabbitmqctl", "set_permissions", "-p", STALL_VHOST, "guest", ".*", ".*", ".*"])
        mark = rabbit_mark()
        port = ctx.redis()
        pport = free_port()
        ctx.write("stall_proxy.py", STALL_PROXY)
        proxy = ctx.spawn([str(Path(ctx.env()["PATH"].split(":")[0]) / "python"), "stall_proxy.py", str(pport),
                           "5672"], log="proxy.log")
        ctx.wait_for("proxy.log", r"^proxy ")
        app(ctx, f"amqp://guest:guest@127.0.0.1:{pport}/{STALL_VHOST}", f"redis://127.0.0.1:{port}/0",
            broker_heartbeat=2)
        w = ctx.worker()
        ctx.wait_ready()
        ctx.python(SEND.format(n=3, k=100))
        ctx.wait_for("worker.log", r"succeeded in", count=3)
        ctx.commands.append(f"kill -USR1 {proxy.pid}  # the proxy stalls the worker's connections")
        os.kill(proxy.pid, signal.SIGUSR1)
        ctx.wait_for("proxy.log", r"^stalled ")
        ctx.wait_for("worker.log", r"Connection to broker lost", timeout=30)
        ctx.wait_for("worker.log", r"Connected to amqp://", count=2, timeout=60)
        wait_rabbit_log(mark, r"missed heartbeats from client", timeout=30)
        time.sleep(8)  # the restart never gets past closing the old (stalled) event connection
        if "mingle: searching" in ctx.read("worker.log").rsplit("Connected to amqp://", 1)[1]:
            raise ScenarioError("the worker recovered; expected it to hang")
        dump = ctx.run([str(Path(ctx.env()["PATH"].split(":")[0]) / "py-spy"), "dump", "--pid", str(w.pid)])
        ctx.save("py-spy-dump.txt", dump.stdout)
        ctx.python(f"""
            from celery import Celery
            producer = Celery("producer", broker="amqp://guest:guest@127.0.0.1:5672/{STALL_VHOST}")
            for i in range(3):
                print(producer.send_task("proj.add", (i, 200)).id)
        """)
        time.sleep(3)
        ctx.save("rabbitmqctl-list_queues.txt", ctx.run(
            ["rabbitmqctl", "list_queues", "-p", STALL_VHOST, "name", "messages", "messages_ready",
             "messages_unacknowledged", "consumers"]).stdout)
        ctx.stop(w, grace=5)
        ctx.keep("worker.log")
        ctx.keep("worker.log.out", "worker.stdout")
        ctx.keep("proxy.log")
        rabbit_excerpt(ctx, mark, rf"vhost: '{STALL_VHOST}'|vhost '{STALL_VHOST}'")
    finally:
        ctx.run(["rabbitmqctl", "delete_vhost", STALL_VHOST], check=False)
    ctx.note(f"The vhost `{STALL_VHOST}` was created for the run (guest has all permissions on it) and deleted "
             "afterwards. The worker reaches RabbitMQ through `stall_proxy.py` (a loopback TCP proxy); on "
             "SIGUSR1 the proxy stops forwarding the connections it holds without closing them, so both ends "
             "miss heartbeats (`broker_heartbeat=2`). The worker's new connections are forwarded normally. "
             "`py-spy-dump.txt` was taken 8 s after the reconnect; the producer of the last three tasks "
             "connected to RabbitMQ directly.")


SCENARIOS += [
    Scenario("fd-exhaustion", "A worker started with RLIMIT_NOFILE=64 runs tasks that leak file descriptors "
             "(sockets and files) until the pool child hits `[Errno 24] Too many open files`.", fd_exhaustion,
             needs=("redis",)),
    Scenario("fd-exhaustion-startup", "A worker with `-c 8` started with RLIMIT_NOFILE=64: the pool takes "
             "the descriptors and the consumer aborts with `Too many open files. Aborting...`.",
             fd_exhaustion_startup, needs=("redis",)),
    Scenario("heartbeat-missed", "RabbitMQ closes the worker's connection after missed heartbeats "
             "(`broker_heartbeat=2`, the worker frozen with SIGSTOP); on SIGCONT the worker finds the connection "
             "gone and reconnects. Three tasks succeed before and three after.", heartbeat_missed,
             needs=("rabbitmq", "redis")),
    Scenario("heartbeat-missed-clock-offset", "heartbeat-missed with the worker's clock zone an hour ahead of "
             "RabbitMQ's (TZ=Etc/GMT-1 for the worker, RabbitMQ logs UTC): one incident, two logs an hour apart.",
             heartbeat_missed_clock_offset, needs=("rabbitmq", "redis")),
    Scenario("heartbeat-stall-hang", "A stalled network path to RabbitMQ (a loopback proxy that stops "
             "forwarding without closing): the worker raises `Too many heartbeats missed`, RabbitMQ logs missed "
             "heartbeats from the client, the worker reconnects but then hangs for good closing its old event "
             "connection (blocking read, no timeout; see `py-spy-dump.txt`). Three tasks succeeded before; three "
             "sent afterwards stay in the queue.", heartbeat_stall_hang, needs=("rabbitmq", "redis", "py-spy")),
]
