"""Categories that needed a sample of their own: RabbitMQ delivery-acknowledgement timeout (a private
RabbitMQ node), memory exhaustion in a pool child (a real MemoryError and billiard's max-memory recycle),
and clock drift between two gossiping workers (one under libfaketime).

Everything runs against brokers we start ourselves (a private RabbitMQ node, a private redis-server),
stopped by pid at the end; the shared services are not touched.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from harness import BIN, Ctx, Scenario, ScenarioError, free_port, wait_port

# --- a private RabbitMQ node -----------------------------------------------------------------------


def rabbit_node(ctx: Ctx, name: str, conf: str, advanced: str = "") -> tuple[int, str]:
    """Start a private RabbitMQ node (`name@localhost`) as the rabbitmq user on free ports, with its
    own mnesia, log, config, feature-flags and (empty) plugins files under the scratch directory.
    Returns (AMQP port, path of the node's log file). It is stopped by pid with the other processes."""
    d = ctx.work / "rabbit"
    for sub in ("mnesia", "log"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    port, dist = free_port(), free_port()
    (d / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{port}\n{conf}")
    (d / "advanced.config").write_text(advanced or "[].\n")
    (d / "enabled_plugins").write_text("[].\n")  # no management plugin
    uid, gid = pwd.getpwnam("rabbitmq").pw_uid, grp.getgrnam("rabbitmq").gr_gid
    os.chmod(ctx.work, 0o755)  # the node runs as rabbitmq and needs to reach its directory
    for p in [d, *d.rglob("*")]:
        os.chown(p, uid, gid)
    node = f"{name}@localhost"
    env = ctx.env(
        HOME="/var/lib/rabbitmq",  # the rabbitmq user's Erlang cookie
        RABBITMQ_NODENAME=node,
        RABBITMQ_NODE_PORT=str(port),
        RABBITMQ_DIST_PORT=str(dist),
        RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
        RABBITMQ_LOG_BASE=str(d / "log"),
        RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE=str(d / "advanced.config"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
        RABBITMQ_FEATURE_FLAGS_FILE=str(d / "feature_flags"),
        RABBITMQ_PLUGINS_EXPAND_DIR=str(d / "plugins-expand"),
        RABBITMQ_PID_FILE=str(d / "node.pid"),
    )

    def as_rabbitmq() -> None:
        os.setgid(gid)
        os.setuid(uid)

    p = ctx.spawn(["/usr/lib/rabbitmq/bin/rabbitmq-server"], log="rabbit/startup.log", env=env,
                  preexec=as_rabbitmq)
    try:
        wait_port(port, timeout=90)
    except ScenarioError:
        raise ScenarioError(f"private RabbitMQ node {node} did not start (exit {p.poll()}):\n"
                            + ctx.read("rabbit/startup.log")[-3000:]) from None
    ctx.note(f"A private RabbitMQ node `{node}` (the system's rabbitmq-server {rabbit_version()}, run as the "
             f"rabbitmq user, no plugins) listened on a free port with this rabbitmq.conf: "
             f"`{conf.strip()}` and advanced.config `{(advanced or '[].').strip()}`; it was stopped by pid "
             f"(SIGTERM to its process group) at the end.")
    return port, f"rabbit/log/{node}.log"


def rabbit_version() -> str:
    for p in Path("/usr/lib/rabbitmq/lib").glob("rabbitmq_server-*"):
        return p.name.split("-", 1)[1]
    return "?"


ACK_APP = """
    import time

    from celery import Celery
    from celery.utils.log import get_task_logger

    app = Celery("proj", broker="amqp://guest:guest@127.0.0.1:{port}//")
    app.conf.broker_connection_retry_on_startup = True
    log = get_task_logger(__name__)

    @app.task
    def add(x, y):
        log.info("adding %s + %s", x, y)
        return x + y

    @app.task(acks_late=True)
    def slow_report(seconds):
        log.info("building report, %s s", seconds)
        time.sleep(seconds)
        return seconds
"""


def rabbitmq_ack_timeout(ctx: Ctx) -> None:
    port, node_log = rabbit_node(
        ctx, "cpmsample-acktimeout", "consumer_timeout = 5000\n",
        # The channel checks consumer_timeout on its tick (60 s by default); 1 s keeps the run short.
        advanced="[{rabbit, [{channel_tick_interval, 1000}]}].\n")
    ctx.write("proj.py", ACK_APP.format(port=port))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import add
        add.delay(2, 2)
    """)
    ctx.wait_for("worker.log", r"succeeded in", count=1)
    ctx.python("""
        from proj import slow_report
        slow_report.delay(15)
    """)
    ctx.wait_for("worker.log", r"Unrecoverable error: PreconditionFailed", timeout=60)
    ctx.wait_for("worker.log", r"slow_report\[.*succeeded in", timeout=60)
    try:
        w.wait(timeout=60)  # Celery shuts the worker down after an unrecoverable error
    except subprocess.TimeoutExpired:
        raise ScenarioError("the worker did not exit after the unrecoverable error") from None
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    time.sleep(1)
    ctx.keep(node_log, "rabbitmq-server.log")
    ctx.note("`rabbitmq-server.log` is the private node's whole log file (boot included), unedited. "
             "`slow_report` is `acks_late=True` and sleeps 15 s, three times the 5000 ms consumer_timeout.")


SCENARIOS = [
    Scenario("rabbitmq-ack-timeout",
             "RabbitMQ (consumer_timeout = 5000 ms) closes the worker's channel while an acks_late task runs "
             "15 s: `PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out`; Celery treats it "
             "as an unrecoverable error, the running task still finishes (its late ack "
             "can fail with `Couldn't ack`) and the worker shuts down.",
             rabbitmq_ack_timeout, needs=("rabbitmq",)),
]



# --- memory exhaustion in a pool child -------------------------------------------------------------

MEM_APP = """
    import resource

    from celery import Celery
    from celery.signals import worker_process_init
    from celery.utils.log import get_task_logger

    app = Celery("proj", broker="redis://127.0.0.1:{port}/0", backend="redis://127.0.0.1:{port}/1")
    app.conf.broker_connection_retry_on_startup = True
    log = get_task_logger(__name__)

    HEADROOM = 512 * 1024 * 1024


    @worker_process_init.connect
    def cap_address_space(**kwargs):
        # Like a container memory limit, but only for the pool child: its address space may grow
        # by HEADROOM beyond what it has mapped after fork.
        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (size + HEADROOM, size + HEADROOM))


    _cache = []


    @app.task
    def add(x, y):
        log.info("adding %s + %s", x, y)
        return x + y


    @app.task
    def load_matrix(gib):
        log.info("allocating %s GiB", gib)
        data = bytearray(gib * 1024 * 1024 * 1024)
        return len(data)


    @app.task
    def warm_cache(mib):
        # A leak: keeps mib MiB alive in the child after the task returns.
        _cache.append(b"x" * (mib * 1024 * 1024))
        log.info("cache holds %s MiB", sum(len(b) for b in _cache) // (1024 * 1024))
        return len(_cache)
"""


def worker_memory(ctx: Ctx) -> None:
    port = ctx.redis()
    ctx.write("proj.py", MEM_APP.format(port=port))
    argv = ("--max-memory-per-child", "200000")
    w = ctx.worker(*argv, concurrency=1, env=ctx.env(MP_LOG="1"))
    ctx.wait_ready()
    ctx.python("""
        from proj import add, load_matrix
        print(add.delay(1, 1).get(timeout=20))
        print(load_matrix.delay(4).id)
    """)
    ctx.wait_for("worker.log", r"raised unexpected: MemoryError", timeout=30)
    ctx.wait_for("worker.log", r"Unrecoverable error: MemoryError", timeout=30)
    try:
        w.wait(timeout=40)  # Celery shuts the worker down after a MemoryError in the pool
    except subprocess.TimeoutExpired:
        raise ScenarioError("the worker did not exit after the MemoryError") from None
    ctx.keep("worker.log.out", "worker.stdout")
    # Restarted as a process supervisor would, appending to the same log file.
    w = ctx.worker(*argv, concurrency=1, env=ctx.env(MP_LOG="1"))
    ctx.wait_ready()
    ctx.wait_for("worker.log", r"\] \S+@\S+ ready\.", count=2, timeout=60)
    ctx.python("""
        from proj import add, warm_cache
        print(warm_cache.delay(300).get(timeout=30))
        print(add.delay(2, 2).get(timeout=30))
    """)
    ctx.wait_for("worker.log", r"exceeding memory limit", timeout=30)
    ctx.wait_for("worker.log", r"succeeded in", count=3, timeout=30)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker-restarted.stdout")
    ctx.note("The pool child's address space is capped with RLIMIT_AS (512 MiB above its size after fork) in a "
             "`worker_process_init` handler, so `load_matrix(4)` (a 4 GiB bytearray) raises a real MemoryError "
             "without endangering the machine; Celery then stops the whole worker (`Unrecoverable error: "
             "MemoryError('Process got: ')`). The worker was started again (same log file, as a supervisor "
             "would), with `-c 1 --max-memory-per-child 200000` (KiB) and `MP_LOG=1` (so billiard's WARNING "
             "reaches the log) both times; `warm_cache(300)` keeps 300 MiB alive, after which the child exits "
             "and a new one runs the last `add`. The result of `load_matrix` was never stored.")


SCENARIOS.append(Scenario(
    "worker-memory",
    "Memory exhaustion in a pool child: a task's 4 GiB allocation fails with MemoryError (address space capped "
    "with RLIMIT_AS) and Celery shuts the worker down (`Unrecoverable error: MemoryError('Process got: ')`); "
    "restarted, a leaking task pushes the child past --max-memory-per-child, which billiard logs "
    "(`child process exiting after exceeding memory limit`) before replacing the child.",
    worker_memory, needs=("redis",)))


# --- clock drift between gossiping workers ---------------------------------------------------------

DRIFT_APP = """
    from celery import Celery
    from celery.utils.log import get_task_logger

    app = Celery("proj", broker="redis://127.0.0.1:{port}/0", backend="redis://127.0.0.1:{port}/1")
    app.conf.broker_connection_retry_on_startup = True
    log = get_task_logger(__name__)

    @app.task
    def add(x, y):
        log.info("adding %s + %s", x, y)
        return x + y
"""

SKEW = "+120s"


def clock_drift(ctx: Ctx) -> None:
    faketime = shutil.which("faketime")
    if not faketime:
        raise ScenarioError("faketime is not installed (apt-get install faketime)")
    port = ctx.redis()
    ctx.write("proj.py", DRIFT_APP.format(port=port))
    w1 = ctx.worker("-E")
    ctx.wait_ready()
    argv = [faketime, "-f", SKEW, str(BIN / "celery"), "-A", "proj", "worker", "-P", "prefork", "-c", "2",
            "--loglevel=INFO", "-n", "w2@sample", "-f", "worker2.log", "-E"]
    w2 = ctx.spawn(argv, log="worker2.log.out", env=ctx.env(FAKETIME_DONT_FAKE_MONOTONIC="1"))
    ctx.wait_ready("worker2.log")
    ctx.wait_for("worker.log", r"Substantial drift from w2@sample", timeout=30)
    ctx.wait_for("worker2.log", r"Substantial drift from w1@sample", timeout=30)
    ctx.python("""
        from proj import add
        rs = [add.delay(i, i) for i in range(4)]
        print([r.get(timeout=20) for r in rs])
    """)
    ctx.stop(w2)
    ctx.stop(w1)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")
    ctx.keep("worker2.log")
    ctx.keep("worker2.log.out", "worker2.stdout")
    ctx.note(f"Both workers run with events (`-E`) and gossip (on by default) against one private redis-server; "
             f"`w2@sample` runs under libfaketime (`faketime -f '{SKEW}'`, FAKETIME_DONT_FAKE_MONOTONIC=1), so "
             f"its wall clock, its log timestamps and its event timestamps are {SKEW[1:]} ahead of `w1@sample`'s. "
             "Four `add` tasks were sent after both logged the drift; which worker ran which varies by run.")


SCENARIOS.append(Scenario(
    "clock-drift",
    "Two gossiping workers whose clocks disagree by 120 s (the second under libfaketime): each logs "
    "`Substantial drift from <other> may mean clocks are out of sync`; tasks still run.",
    clock_drift, needs=("redis",)))
