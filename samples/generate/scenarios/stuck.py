"""Stuck and lost work: time limits, dead pool children, exhausted pools/locks, a task that never ends."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from harness import BIN, Ctx, Scenario, ScenarioError, free_port, wait_port

HEAD = """
    import os, time
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


def _app(ctx: Ctx, port: int, body: str = "") -> None:
    import textwrap

    ctx.write("proj.py", textwrap.dedent(HEAD).format(port=port) + textwrap.dedent(body))


# --- 1. hard time limit ---------------------------------------------------------------------------
def hard_time_limit(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        @app.task(time_limit=2)
        def slow(seconds):
            log.info("sleeping %s s", seconds)
            time.sleep(seconds)
            return seconds
    """)
    ctx.note("`proj.slow` has `time_limit=2` and no soft limit; it sleeps 30 s.")
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import add, slow
        print(add.delay(1, 2).get(timeout=20))
        slow.delay(30)
    """)
    ctx.wait_for("worker.log", r"Hard time limit \(2s\) exceeded")
    ctx.wait_for("worker.log", r"Process 'ForkPoolWorker-\d+' pid:\d+ exited with")
    time.sleep(1)
    ctx.stop(w)
    ctx.keep("worker.log")


# --- 2. soft time limit ---------------------------------------------------------------------------
def soft_time_limit(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        from celery.exceptions import SoftTimeLimitExceeded

        @app.task(soft_time_limit=1)
        def slow(seconds):
            log.info("sleeping %s s", seconds)
            time.sleep(seconds)
            return seconds

        @app.task(soft_time_limit=1)
        def careful(seconds):
            log.info("sleeping %s s", seconds)
            try:
                time.sleep(seconds)
            except SoftTimeLimitExceeded:
                log.warning("soft time limit hit, cleaning up and returning a partial result")
                return "partial"
            return "full"
    """)
    ctx.note("Both tasks have `soft_time_limit=1` and no hard limit. `proj.slow` lets SoftTimeLimitExceeded "
             "propagate (FAILURE); `proj.careful` catches it, cleans up and returns 'partial' (SUCCESS).")
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import slow, careful
        a = slow.delay(5)
        b = careful.delay(5)
        print(b.get(timeout=30))
        a.get(timeout=30, propagate=False)
    """)
    ctx.wait_for("worker.log", r"raised unexpected: SoftTimeLimitExceeded")
    ctx.wait_for("worker.log", r"proj.careful\[\S+\] succeeded in")
    ctx.stop(w)
    ctx.keep("worker.log")


# --- 3. a pool child SIGKILLed mid-task -------------------------------------------------------------
def worker_sigkill(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        @app.task
        def crunch(n):
            with open("crunch.pid", "w") as f:
                f.write(str(os.getpid()))
            log.info("crunching %s", n)
            time.sleep(60)
            return n
    """)
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import add, crunch
        print(add.delay(2, 2).get(timeout=20))
        crunch.delay(7)
    """)
    ctx.wait_for("worker.log", r"crunching 7")
    pid = int(ctx.read("crunch.pid"))
    if pid not in ctx.children(w):
        raise ScenarioError(f"pid {pid} is not a pool child of {w.pid}")
    ctx.commands.append(f"kill -KILL {pid}  # the pool child running proj.crunch")
    os.kill(pid, signal.SIGKILL)
    ctx.wait_for("worker.log", r"WorkerLostError\('Worker exited prematurely: signal 9 \(SIGKILL\)", timeout=40)
    time.sleep(0.5)
    ctx.stop(w)
    ctx.keep("worker.log")
    r = subprocess.run(["dmesg"], capture_output=True, text=True)
    oom = [ln for ln in r.stdout.splitlines() if "Killed process" in ln or "Out of memory" in ln]
    ctx.note(f"The child (pid {pid}) was killed with `kill -KILL` by the generator, standing in for the kernel "
             f"OOM killer. `dmesg` was readable (exit {r.returncode}) and holds {len(oom)} OOM-killer lines, so "
             "none are in this bundle: the OOM killer is a hypothesis here, not a finding.")


# --- 3b. Celery kills a pool child that did not start in time ----------------------------------------
def worker_up_timeout(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        from celery.signals import worker_process_init

        app.conf.worker_proc_alive_timeout = 2
        app.conf.worker_max_tasks_per_child = 1

        @worker_process_init.connect
        def warm_cache(**kwargs):
            # a pool child started while `slow-init` exists loads a slow cache (longer than
            # worker_proc_alive_timeout); it takes the file, so the next one starts at once
            try:
                os.remove("slow-init")
            except FileNotFoundError:
                return
            with open("slow-init.pid", "w") as f:
                f.write(str(os.getpid()))
            time.sleep(30)
    """)
    ctx.note("`worker_proc_alive_timeout = 2` and `worker_max_tasks_per_child = 1`. A `worker_process_init` handler "
             "sleeps 30 s in a pool child started while the file `slow-init` exists (and removes it). Celery checks "
             "the UP message only for children it starts after the worker is up, so the generator creates "
             "`slow-init` after `ready`, then sends a task: its child exits after that one task (recycled "
             "silently, exit code 155) and the replacement hangs in `worker_process_init`.")
    w = ctx.worker()
    ctx.wait_ready()
    ctx.write("slow-init", "")
    ctx.commands.append("touch slow-init  # the next pool child to start blocks in worker_process_init")
    ctx.python("""
        from proj import add
        print(add.delay(2, 3).get(timeout=30))
    """)
    ctx.wait_for("worker.log", r"Timed out waiting for UP message from", timeout=30)
    ctx.wait_for("worker.log", r"Process 'ForkPoolWorker-\d+' pid:\d+ exited with 'signal 9 \(SIGKILL\)'",
                 timeout=30)
    ctx.python("""
        from proj import add
        print(add.delay(4, 5).get(timeout=30))
    """)
    ctx.wait_for("worker.log", r"succeeded in", count=2)
    time.sleep(0.5)
    ctx.stop(w)
    ctx.keep("worker.log")
    killed = ctx.read("slow-init.pid").strip() or "?"
    ctx.note(f"The killed child (pid {killed}) was running no task: it never finished `worker_process_init`. "
             "Nothing outside Celery sent a signal.")


# --- 4. a pool child segfaults ----------------------------------------------------------------------
def worker_segfault(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        import ctypes

        @app.task
        def parse(blob):
            log.info("parsing %d bytes with the C extension", len(blob))
            return ctypes.string_at(0)  # NULL dereference: SIGSEGV in the pool child
    """)
    ctx.note("The worker runs with `PYTHONFAULTHANDLER=1`; the child's faulthandler dump goes to the inherited "
             "stderr, captured as `worker.stdout` (with the startup banner), not to `worker.log`.")
    w = ctx.worker(env=ctx.env(PYTHONFAULTHANDLER="1"))
    ctx.wait_ready()
    ctx.python("""
        from proj import add, parse
        print(add.delay(2, 3).get(timeout=20))
        parse.delay("abcdef")
    """)
    ctx.wait_for("worker.log", r"exited with 'signal 11 \(SIGSEGV\)'")
    ctx.wait_for("worker.log", r"WorkerLostError\('Worker exited prematurely: signal 11", timeout=40)
    ctx.wait_for("worker.log.out", r"Fatal Python error: Segmentation fault")
    time.sleep(0.5)
    ctx.stop(w)
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")


# --- 5. SQLAlchemy QueuePool exhausted ---------------------------------------------------------------
def sqlalchemy_pool_exhausted(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        import threading
        from sqlalchemy import create_engine, text

        _engine = None

        def engine():
            global _engine  # one engine per pool child, created after fork
            if _engine is None:
                _engine = create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/test",
                                        pool_size=1, max_overflow=0, pool_timeout=1)
            return _engine

        @app.task
        def quick_query():
            with engine().connect() as c:
                return c.execute(text("select 1")).scalar()

        @app.task
        def report():
            held = threading.Event()

            def export():
                with engine().connect() as c:
                    held.set()
                    c.execute(text("select pg_sleep(3)"))

            t = threading.Thread(target=export, name="export")
            t.start()
            held.wait(10)
            log.info("export thread holds the only pooled connection; querying totals")
            try:
                with engine().connect() as c:
                    return c.execute(text("select count(*) from pg_stat_activity")).scalar()
            finally:
                t.join()
    """)
    ctx.note("Each pool child has its own engine (`pool_size=1, max_overflow=0, pool_timeout=1`) on the local "
             "PostgreSQL. Inside `proj.report` a thread holds the only connection in `pg_sleep(3)` while the task "
             "asks for a second one and gets the QueuePool TimeoutError.")
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import quick_query, report
        print(quick_query.delay().get(timeout=20))
        report.delay().get(timeout=30, propagate=False)
    """)
    ctx.wait_for("worker.log", r"QueuePool limit of size 1 overflow 0 reached")
    ctx.stop(w)
    ctx.keep("worker.log")


# --- 6. PostgreSQL: sorry, too many clients already --------------------------------------------------
def pg_too_many_clients(ctx: Ctx) -> None:
    pg = pwd.getpwnam("postgres")
    data = Path(tempfile.mkdtemp(prefix="cpm-pgdata-"))
    os.chown(data, pg.pw_uid, pg.pw_gid)
    ctx.work.chmod(0o711)  # postgres runs with cwd = the scratch dir; let it enter (not list) it

    def as_postgres() -> None:
        os.setgid(pg.pw_gid)
        os.setuid(pg.pw_uid)

    try:
        r = subprocess.run(["initdb", "-D", str(data / "db"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                            "--locale=C"], capture_output=True, text=True, preexec_fn=as_postgres, timeout=120)
        if r.returncode != 0:
            raise ScenarioError(f"initdb failed:\n{r.stdout}\n{r.stderr}")
        ctx.commands.append(f"initdb -D {data}/db -U postgres --auth=trust -E UTF8 --locale=C  # as user postgres")
        pgport = free_port()
        ctx.spawn(["postgres", "-D", str(data / "db"), "-p", str(pgport), "-k", str(data),
                   "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=3",
                   "-c", "superuser_reserved_connections=0", "-c", "logging_collector=off",
                   "-c", "log_line_prefix=%m [%p] ", "-c", "log_connections=on", "-c", "log_disconnections=on"],
                  log="postgresql.log", preexec=as_postgres)
        wait_port(pgport)
        time.sleep(1)
        port = ctx.redis()
        _app(ctx, port, f"""
            import psycopg2

            DSN = "host=127.0.0.1 port={pgport} user=postgres dbname=postgres connect_timeout=5"

            @app.task
            def load_rows(n):
                conn = psycopg2.connect(DSN)
                try:
                    with conn.cursor() as cur:
                        cur.execute("select %s::int", (n,))
                        return cur.fetchone()[0]
                finally:
                    conn.close()
        """)
        ctx.note(f"A scratch PostgreSQL cluster (initdb into a temp dir, `postgres -p {pgport}` as user postgres, "
                 "`max_connections=3 superuser_reserved_connections=0`, log to stderr = `postgresql.log`). "
                 "A client holds all three slots while two `proj.load_rows` tasks run (both fail with "
                 "`sorry, too many clients already`), then releases them and a third task succeeds.")
        w = ctx.worker()
        ctx.wait_ready()
        ctx.python(f"""
            import psycopg2, time
            from proj import load_rows
            hogs = [psycopg2.connect("host=127.0.0.1 port={pgport} user=postgres dbname=postgres")
                    for _ in range(3)]
            for r in [load_rows.delay(1), load_rows.delay(2)]:
                r.get(timeout=30, propagate=False)
            for h in hogs:
                h.close()
            time.sleep(0.5)
            print(load_rows.delay(3).get(timeout=30))
        """)
        ctx.wait_for("worker.log", r"sorry, too many clients already", count=2)
        ctx.wait_for("worker.log", r"proj.load_rows\[\S+\] succeeded in")
        ctx.stop(w)
        ctx.stop_all()  # the scratch postgres (SIGTERM: smart shutdown) and redis
        ctx.keep("worker.log")
        ctx.keep("postgresql.log")
    finally:
        ctx.stop_all()
        shutil.rmtree(data, ignore_errors=True)


# --- 7. filelock timeout ---------------------------------------------------------------------------
def filelock_timeout(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        from filelock import FileLock

        LOCK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "export.lock")

        @app.task
        def rebuild_index(seconds):
            with FileLock(LOCK, timeout=1):
                log.info("holding %s for %s s", LOCK, seconds)
                time.sleep(seconds)
            return "rebuilt"

        @app.task
        def update_index(item):
            log.info("updating %s", item)
            with FileLock(LOCK, timeout=1):
                return item
    """)
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import rebuild_index
        rebuild_index.delay(5)
    """)
    ctx.wait_for("worker.log", r"holding .* for 5 s")
    ctx.python("""
        from proj import update_index
        update_index.delay("doc-42").get(timeout=30, propagate=False)
    """)
    ctx.wait_for("worker.log", r"proj.update_index\[\S+\] raised unexpected")
    ctx.wait_for("worker.log", r"proj.rebuild_index\[\S+\] succeeded in", timeout=30)
    ctx.stop(w)
    ctx.keep("worker.log")


def _kill_group(ctx: Ctx, w: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's whole process group: the log ends mid-task, with no shutdown lines."""
    ctx.commands.append("kill -KILL -<worker pgid>")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(w.pid, signal.SIGKILL)
    w.wait(timeout=10)


# --- 11. a task that never finishes -----------------------------------------------------------------
def task_never_finishes(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        @app.task
        def sync_forever(account):
            log.info("syncing account %s", account)
            time.sleep(600)
            return account
    """)
    ctx.note("`proj.sync_forever` sleeps 600 s with no time limit. `inspect active/stats --json` were taken while it "
             "ran; then the whole worker process group was SIGKILLed, so the log ends mid-task with no shutdown.")
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import add, sync_forever
        print(add.delay(20, 22).get(timeout=20))
        sync_forever.delay("acme")
    """)
    ctx.wait_for("worker.log", r"syncing account acme")
    time.sleep(1)
    celery = str(BIN / "celery")
    r = ctx.run([celery, "-A", "proj", "inspect", "active", "--json", "--timeout", "5"])
    ctx.save("inspect-active.json", r.stdout)
    r = ctx.run([celery, "-A", "proj", "inspect", "stats", "--json", "--timeout", "5"])
    ctx.save("inspect-stats.json", r.stdout)
    time.sleep(3)
    _kill_group(ctx, w)
    ctx.keep("worker.log")


# --- 12. a task that hangs while the worker goes on logging -----------------------------------------
def task_hangs_others_run(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, """
        @app.task
        def sync_account(account):
            log.info("syncing account %s", account)
            time.sleep(600 if account == "acme" else 0.05)
            return account
    """)
    ctx.note("`proj.sync_account` takes 50 ms, except for account `acme`, where it sleeps 600 s with no time limit. "
             "The other pool child goes on syncing accounts for about 12 s after `acme` started, so the log runs "
             "on well past the hung task; then the worker process group is SIGKILLed. Only the log is kept: "
             "no inspect output, no dump.")
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        import time
        from proj import sync_account
        print(sync_account.delay("a-100").get(timeout=20))
        sync_account.delay("acme")
        for i in range(24):
            print(sync_account.delay(f"b-{i}").get(timeout=20))
            time.sleep(0.5)
    """)
    ctx.wait_for("worker.log", r"sync_account\[\S+\] succeeded in .*: 'b-23'")
    _kill_group(ctx, w)
    ctx.keep("worker.log")


SCENARIOS = [
    Scenario("hard-time-limit", "A task with time_limit=2 (no soft limit) sleeps 30 s; the pool kills it "
             "(TimeLimitExceeded, Hard time limit, child exits) and a quick task succeeds.",
             hard_time_limit, needs=("redis",)),
    Scenario("soft-time-limit", "soft_time_limit=1 only: one task lets SoftTimeLimitExceeded propagate and fails, "
             "another catches it, cleans up and succeeds.", soft_time_limit, needs=("redis",)),
    Scenario("worker-sigkill", "A pool child is SIGKILLed mid-task (what the OOM killer does); WorkerLostError "
             "follows ~10 s later. No OOM-killer evidence exists.", worker_sigkill, needs=("redis",)),
    Scenario("worker-up-timeout", "A pool child recycled by worker_max_tasks_per_child=1 is replaced by one whose "
             "worker_process_init handler blocks past worker_proc_alive_timeout (2 s): Celery logs `Timed out "
             "waiting for UP message` and kills it with SIGKILL (no task was running in it); the next child starts "
             "and a task succeeds.",
             worker_up_timeout, needs=("redis",)),
    Scenario("worker-segfault", "A task dereferences NULL through ctypes; the pool child dies of SIGSEGV, "
             "faulthandler writes its dump to the worker's stderr, WorkerLostError follows.",
             worker_segfault, needs=("redis",)),
    Scenario("sqlalchemy-pool-exhausted", "A task's own thread holds the only SQLAlchemy pooled connection "
             "(pool_size=1, max_overflow=0, pool_timeout=1); the task times out waiting for another.",
             sqlalchemy_pool_exhausted, needs=("redis", "postgres")),
    Scenario("pg-too-many-clients", "A scratch PostgreSQL with max_connections=3 is full; two tasks fail with "
             "'sorry, too many clients already', one succeeds after the slots free up.",
             pg_too_many_clients, needs=("redis", "postgres")),
    Scenario("filelock-timeout", "Two tasks contend on a filelock.FileLock(timeout=1): one holds it 5 s, the "
             "other raises filelock.Timeout.", filelock_timeout, needs=("redis",)),
    Scenario("task-never-finishes", "A task sleeps 600 s with no time limit; inspect active/stats taken while it "
             "runs; the worker is SIGKILLed ~5 s later so the log ends with the task started, never finished.",
             task_never_finishes, needs=("redis",)),
    Scenario("task-hangs-others-run", "One call of a 50 ms task sleeps 600 s while the other pool child runs 24 "
             "more calls over ~12 s; the worker is then SIGKILLed. Log only: the log runs on past the hung task.",
             task_hangs_others_run, needs=("redis",)),
]
