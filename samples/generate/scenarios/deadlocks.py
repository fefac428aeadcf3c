"""Deadlocks: Python lock cycles, a native pthread mutex cycle, fcntl EDEADLK and database deadlocks.

Every hung process is inspected with the real tools (py-spy, gdb with and without CPython's
gdb extension, faulthandler, `celery inspect`) and their output is stored verbatim.
The capture helpers here are shared with `hangs.py`.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from harness import BIN, PY, Ctx, Scenario, ScenarioError

HERE = Path(__file__).resolve().parent
NATIVE = HERE / "native"
PYSPY = str(BIN / "py-spy")
CELERY = str(BIN / "celery")
PG = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1"]
MARIADB = ["mariadb", "-uroot", "-h127.0.0.1", "test"]

# The Celery app every scenario here writes; `{tasks}` is the scenario's own task code.
HEADER = """
    import faulthandler
    import os
    import signal
    import sys
    import threading
    import time

    from celery import Celery
    from celery.signals import worker_process_init
    from celery.utils.log import get_task_logger

    app = Celery("proj", broker="redis://127.0.0.1:{port}/0", backend="redis://127.0.0.1:{port}/1")
    app.conf.broker_connection_retry_on_startup = True
    log = get_task_logger(__name__)


    @worker_process_init.connect
    def dump_threads_on_sigusr2(**_):
        # `kill -USR2 <pool child>` writes every thread's Python stack to the child's fd 2
        # (the worker's stderr), the usual way to ask a hung child where it is.
        faulthandler.register(signal.SIGUSR2, file=sys.__stderr__, all_threads=True)
"""


def app_source(port: int, tasks: str) -> str:
    import textwrap

    return textwrap.dedent(HEADER).format(port=port) + textwrap.dedent(tasks)


# --- captures ----------------------------------------------------------------------------------

def python_gdb_extension() -> Path | None:
    """CPython's gdb extension for the interpreter that runs the workers, if installed."""
    real = Path(os.path.realpath(PY))
    cands = [real.with_name(real.name + "-gdb.py")]
    cands += sorted(real.parent.parent.glob("lib/python3*/**/libpython.py"))
    return next((c for c in cands if c.exists()), None)


def pyspy(ctx: Ctx, pid: int, *flags: str) -> str:
    r = ctx.run([PYSPY, "dump", "--pid", str(pid), *flags], timeout=60, check=False)
    if r.returncode != 0 or not r.stdout.strip():
        raise ScenarioError(f"py-spy dump {' '.join(flags)} failed ({r.returncode}): {r.stderr}")
    return r.stdout


def gdb(ctx: Ctx, pid: int, *commands: str, pre: tuple[str, ...] = ()) -> str:
    argv = ["gdb", "-p", str(pid), "-batch", *pre]
    for c in commands:
        argv += ["-ex", c]
    r = ctx.run(argv, timeout=120, check=False)
    if "Thread " not in r.stdout:
        raise ScenarioError(f"gdb gave no threads ({r.returncode}): {r.stderr[-2000:]}")
    return r.stdout


def gdb_bt(ctx: Ctx, pid: int) -> str:
    return gdb(ctx, pid, "thread apply all bt")


def gdb_py_bt(ctx: Ctx, pid: int) -> str | None:
    ext = python_gdb_extension()
    if ext is None:
        ctx.note("CPython's gdb extension (python3.X-gdb.py / libpython.py) was not found for this "
                 "interpreter, so there is no py-bt dump.")
        return None
    ctx.note(f"`gdb-py-bt.txt` used CPython's gdb extension `{ext.name}` installed next to the interpreter.")
    return gdb(ctx, pid, f"source {ext}", "thread apply all py-bt")


def faulthandler_dump(ctx: Ctx, pid: int, threads: int, log: str = "worker.log.out") -> None:
    """SIGUSR2 to a pool child whose worker registered faulthandler; wait for all stacks."""
    before = ctx.read(log).count("(most recent call first):")
    ctx.commands.append(f"kill -USR2 {pid}")
    os.kill(pid, signal.SIGUSR2)
    ctx.wait_for(log, r"\(most recent call first\):", count=before + threads, timeout=20)
    time.sleep(0.5)  # the last thread's frames


def inspect(ctx: Ctx, what: str) -> str:
    r = ctx.run([CELERY, "-A", "proj", "inspect", what, "--json", "--timeout", "5"], timeout=60, check=False)
    if r.returncode != 0 or not r.stdout.strip().startswith("{"):
        raise ScenarioError(f"celery inspect {what} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r.stdout


def pid_from_log(ctx: Ctx, pattern: str, log: str = "worker.log") -> int:
    return int(ctx.wait_for(log, pattern, timeout=60).group("pid"))


def standard_captures(ctx: Ctx, pid: int, threads: int, *, native: bool = False) -> None:
    """The full set for a hung pool child: py-spy (plain, locals, json), gdb bt and py-bt,
    faulthandler, inspect active and stats."""
    ctx.save(f"pyspy-{pid}.txt", pyspy(ctx, pid))
    ctx.save("pyspy-locals.txt", pyspy(ctx, pid, "--locals"))
    ctx.save("pyspy.json", pyspy(ctx, pid, "--json"))
    if native:
        ctx.save("pyspy-native.txt", pyspy(ctx, pid, "--native"))
    ctx.save("gdb-bt.txt", gdb_bt(ctx, pid))
    pybt = gdb_py_bt(ctx, pid)
    if pybt is not None:
        ctx.save("gdb-py-bt.txt", pybt)
    faulthandler_dump(ctx, pid, threads)
    ctx.save("inspect-active.json", inspect(ctx, "active"))
    ctx.save("inspect-stats.json", inspect(ctx, "stats"))


def finish_hung(ctx: Ctx, worker: subprocess.Popen[bytes]) -> None:
    """A hung worker will not shut down warm: SIGKILL the whole group, keep its logs."""
    ctx.stop(worker, sig=signal.SIGKILL)
    ctx.note("The worker was hung; the generator stopped it with SIGKILL to its process group after the "
             "captures, so the log ends without a shutdown message.")
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")


def wait_file(path: Path, pattern: str, timeout: float = 20) -> str:
    end = time.monotonic() + timeout
    rx = re.compile(pattern, re.M)
    while time.monotonic() < end:
        text = path.read_text(errors="replace") if path.exists() else ""
        if rx.search(text):
            return text
        time.sleep(0.1)
    raise ScenarioError(f"{path}: /{pattern}/ not seen within {timeout}s")


# --- 1, 2: threading.Lock / threading.RLock cycle ----------------------------------------------

LOCK_TASKS = """

    def take(first, second):
        me = threading.current_thread()
        with first:
            log.info("%s (tid %d) holds %r", me.name, me.native_id, first)
            time.sleep(0.5)
            log.info("%s (tid %d) waits for %r", me.name, me.native_id, second)
            with second:
                log.info("%s got both locks", me.name)


    @app.task
    def reconcile_accounts(kind):
        log.info("reconcile_accounts running in pid %d", os.getpid())
        ledger_lock = getattr(threading, kind)()
        audit_lock = getattr(threading, kind)()
        a = threading.Thread(target=take, args=(ledger_lock, audit_lock), name="ledger-writer")
        b = threading.Thread(target=take, args=(audit_lock, ledger_lock), name="audit-writer")
        a.start()
        b.start()
        a.join()
        b.join()
        return "reconciled"
"""


def _lock_cycle(ctx: Ctx, kind: str) -> None:
    port = ctx.redis()
    ctx.write("proj.py", app_source(port, LOCK_TASKS))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python(f"from proj import reconcile_accounts; print(reconcile_accounts.delay({kind!r}).id)")
    pid = pid_from_log(ctx, r"reconcile_accounts running in pid (?P<pid>\d+)")
    ctx.wait_for("worker.log", r"waits for", count=2)
    time.sleep(1.0)  # both threads are now parked on the other's lock
    standard_captures(ctx, pid, threads=3)
    finish_hung(ctx, w)


def deadlock_lock(ctx: Ctx) -> None:
    _lock_cycle(ctx, "Lock")


def deadlock_rlock(ctx: Ctx) -> None:
    _lock_cycle(ctx, "RLock")


# --- 3: pthread mutex cycle in a C library --------------------------------------------------------

PTHREAD_TASKS = """
    import ctypes


    def call_native(fn):
        me = threading.current_thread()
        log.info("%s (tid %d) calls %s", me.name, me.native_id, fn.__name__)
        fn()


    @app.task
    def resize_images(libpath):
        log.info("resize_images running in pid %d", os.getpid())
        lib = ctypes.CDLL(libpath)  # CDLL releases the GIL during calls
        a = threading.Thread(target=call_native, args=(lib.take_a_then_b,), name="native-ab")
        b = threading.Thread(target=call_native, args=(lib.take_b_then_a,), name="native-ba")
        a.start()
        b.start()
        a.join()
        b.join()
        return "resized"
"""

CORE_LIMIT = 3 * 1024 * 1024


def deadlock_pthread(ctx: Ctx) -> None:
    lib = ctx.work / "libdeadlock.so"
    shutil.copyfile(NATIVE / "deadlock.c", ctx.work / "deadlock.c")
    src = ctx.work / "deadlock.c"
    ctx.run(["cc", "-shared", "-fPIC", "-g", "-O0", "-o", str(lib), str(src), "-lpthread"])
    port = ctx.redis()
    ctx.write("proj.py", app_source(port, PTHREAD_TASKS))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python(f"from proj import resize_images; print(resize_images.delay({str(lib)!r}).id)")
    pid = pid_from_log(ctx, r"resize_images running in pid (?P<pid>\d+)")
    ctx.wait_for("worker.log", r"calls take_", count=2)
    time.sleep(1.5)  # 0.5 s in the C code, then both threads block on the other's mutex
    ctx.save(f"pyspy-{pid}.txt", pyspy(ctx, pid))
    ctx.save("pyspy-native.txt", pyspy(ctx, pid, "--native"))
    ctx.save("pyspy.json", pyspy(ctx, pid, "--json"))
    ctx.save("gdb-bt.txt", gdb(ctx, pid, "thread apply all bt", "print mutex_a", "print mutex_b",
                               "print mutex_a.__data.__owner", "print mutex_b.__data.__owner"))
    pybt = gdb_py_bt(ctx, pid)
    if pybt is not None:
        ctx.save("gdb-py-bt.txt", pybt)
    faulthandler_dump(ctx, pid, threads=3)
    ctx.save("inspect-active.json", inspect(ctx, "active"))
    ctx.save("inspect-stats.json", inspect(ctx, "stats"))
    # a core file of the hung child (gdb's gcore), kept only if it compresses small enough
    ctx.run(["gcore", "-o", str(ctx.work / "core"), str(pid)], timeout=180)
    core = ctx.work / f"core.{pid}"
    raw = core.stat().st_size
    gz = ctx.work / f"core.{pid}.gz"
    with core.open("rb") as src, gz.open("wb") as raw_gz, \
            gzip.GzipFile(filename=core.name, mode="wb", compresslevel=9, fileobj=raw_gz, mtime=0) as dst:
        shutil.copyfileobj(src, dst)
    exe = os.path.realpath(PY)
    if gz.stat().st_size <= CORE_LIMIT:
        ctx.keep(gz.name)
        ctx.save("core.json", json.dumps({"executable": exe, "pid": pid}, indent=2) + "\n")
        ctx.note(f"`core.{pid}.gz` is `gcore -o core {pid}` of the hung pool child, gzip-compressed "
                 f"({raw} bytes raw). Executable: `{exe}`; the C library was `{lib}` (scratch, not kept).")
    else:
        ctx.note(f"`gcore` of the hung pool child was {raw} bytes ({gz.stat().st_size} gzip-compressed), "
                 f"too big to keep in the bundle, so there is no core file. Executable: `{exe}`.")
    finish_hung(ctx, w)


# --- 4: fcntl.lockf AB/BA between two pool children -> EDEADLK -----------------------------------

FCNTL_TASKS = """
    import fcntl


    @app.task
    def compact_segment(path, first, second, go):
        with open(path, "r+b") as f:
            fcntl.lockf(f, fcntl.LOCK_EX, 1, first)
            log.info("pid %d holds byte %d of %s", os.getpid(), first, path)
            while not os.path.exists(go):
                time.sleep(0.05)
            log.info("pid %d waits for byte %d", os.getpid(), second)
            fcntl.lockf(f, fcntl.LOCK_EX, 1, second)
            log.info("pid %d holds bytes %d and %d", os.getpid(), first, second)
            time.sleep(0.2)
        return "compacted"
"""


def deadlock_fcntl(ctx: Ctx) -> None:
    data = ctx.work / "segments.dat"
    data.write_bytes(b"\0" * 4096)
    port = ctx.redis()
    ctx.write("proj.py", app_source(port, FCNTL_TASKS))
    w = ctx.worker()
    ctx.wait_ready()
    go1, go2 = ctx.work / "go-1", ctx.work / "go-2"
    ctx.python(f"""
        from proj import compact_segment
        compact_segment.delay({str(data)!r}, 100, 200, {str(go1)!r})
        compact_segment.delay({str(data)!r}, 200, 100, {str(go2)!r})
    """)
    ctx.wait_for("worker.log", r"holds byte \d+ of", count=2)
    go1.touch()  # the first task now blocks on byte 200, held by the second
    text = wait_file(Path("/proc/locks"), r"^\d+: -> POSIX")
    ctx.commands.append("cat /proc/locks")
    ctx.save("proc-locks.txt", text)
    ino = os.stat(data).st_ino
    ctx.note(f"`proc-locks.txt` is /proc/locks (whole machine) while both children held their first byte "
             f"and the first was blocked on its second; the data file is inode {ino} "
             f"(`{os.major(os.stat(data).st_dev):02x}:{os.minor(os.stat(data).st_dev):02x}:{ino}`).")
    go2.touch()  # the second task's request closes the cycle: the kernel refuses it with EDEADLK
    ctx.wait_for("worker.log", r"Resource deadlock avoided")
    ctx.wait_for("worker.log", r"succeeded in")
    ctx.stop(w)
    ctx.keep("worker.log")


# --- 5: PostgreSQL deadlock ---------------------------------------------------------------------

PG_TABLE = "cpm_deadlock_accounts"
PG_TASKS = """
    import psycopg2


    @app.task
    def transfer(src, dst, go):
        conn = psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres",
                                application_name="celery-transfer")
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                backend = cur.fetchone()[0]
                cur.execute("UPDATE {table} SET balance = balance - 10 WHERE id = %s", (src,))
                log.info("backend %d debited account %d", backend, src)
                while not os.path.exists(go):
                    time.sleep(0.05)
                log.info("backend %d credits account %d", backend, dst)
                cur.execute("UPDATE {table} SET balance = balance + 10 WHERE id = %s", (dst,))
            return "transferred"
        finally:
            conn.close()
"""


def _pg_log_path() -> Path:
    logs = sorted(Path("/var/log/postgresql").glob("postgresql-*.log"))
    if not logs:
        raise ScenarioError("no PostgreSQL server log under /var/log/postgresql")
    return logs[-1]


def _lines_of_backends(text: str, pids: set[int]) -> str:
    """Server log records (a prefixed line and its tab-indented continuations) of our backends."""
    out, keep = [], False
    for line in text.splitlines(keepends=True):
        m = re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[(\d+)\] ", line)
        if m:
            keep = int(m.group(1)) in pids
        if keep:
            out.append(line)
    return "".join(out)


def deadlock_postgres(ctx: Ctx) -> None:
    log_path = _pg_log_path()
    start = log_path.stat().st_size
    ctx.run([*PG, "-c", f"DROP TABLE IF EXISTS {PG_TABLE}; CREATE TABLE {PG_TABLE} "
             "(id int PRIMARY KEY, balance int NOT NULL); INSERT INTO "
             f"{PG_TABLE} VALUES (1, 100), (2, 100);"])
    try:
        port = ctx.redis()
        ctx.write("proj.py", app_source(port, PG_TASKS.replace("{table}", PG_TABLE)))
        w = ctx.worker()
        ctx.wait_ready()
        go1, go2 = ctx.work / "go-1", ctx.work / "go-2"
        ctx.python(f"""
            from proj import transfer
            transfer.delay(1, 2, {str(go1)!r})
            transfer.delay(2, 1, {str(go2)!r})
        """)
        ctx.wait_for("worker.log", r"debited account", count=2)
        go1.touch()
        ctx.wait_for("worker.log", r"credits account", count=1)
        time.sleep(1.5)  # longer than deadlock_timeout (1s): the first waiter checked and found no cycle
        go2.touch()  # the second waiter's check after 1s finds the cycle and is cancelled
        ctx.wait_for("worker.log", r"deadlock detected")
        ctx.wait_for("worker.log", r"succeeded in")
        ctx.stop(w)
        ctx.keep("worker.log")
    finally:
        ctx.run([*PG, "-c", f"DROP TABLE IF EXISTS {PG_TABLE}"], check=False)
    time.sleep(0.5)
    with log_path.open("rb") as f:
        f.seek(start)
        appended = f.read().decode(errors="replace")
    pids = {int(p) for p in re.findall(r"backend (\d+) debited", ctx.read("worker.log"))}
    ctx.commands.append(f"tail -c +{start + 1} {log_path}  # lines of backends {sorted(pids)} only")
    text = _lines_of_backends(appended, pids)
    if "deadlock detected" not in text:
        raise ScenarioError(f"no deadlock report in the server log; appended:\n{appended[-3000:]}")
    ctx.save("postgresql.log", text)
    ctx.note(f"`postgresql.log` holds the lines the PostgreSQL server appended to `{log_path}` during the "
             f"scenario, restricted to the records of the two task backends (pids {sorted(pids)}), since "
             "other clients share the server.")


# --- 6: MariaDB / InnoDB deadlock ---------------------------------------------------------------

MY_TABLE = "cpm_deadlock_accounts"
MY_TASKS = """
    import pymysql


    @app.task
    def transfer(src, dst, go):
        conn = pymysql.connect(host="127.0.0.1", user="root", password="", database="test")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT CONNECTION_ID()")
                cid = cur.fetchone()[0]
                conn.begin()
                cur.execute("UPDATE {table} SET balance = balance - 10 WHERE id = %s", (src,))
                log.info("connection %d debited account %d", cid, src)
                while not os.path.exists(go):
                    time.sleep(0.05)
                log.info("connection %d credits account %d", cid, dst)
                cur.execute("UPDATE {table} SET balance = balance + 10 WHERE id = %s", (dst,))
                conn.commit()
            return "transferred"
        finally:
            conn.close()
"""


def deadlock_mariadb(ctx: Ctx) -> None:
    ctx.run([*MARIADB, "-e", f"DROP TABLE IF EXISTS {MY_TABLE}; CREATE TABLE {MY_TABLE} "
             "(id INT PRIMARY KEY, balance INT NOT NULL) ENGINE=InnoDB; "
             f"INSERT INTO {MY_TABLE} VALUES (1, 100), (2, 100);"])
    try:
        port = ctx.redis()
        ctx.write("proj.py", app_source(port, MY_TASKS.replace("{table}", MY_TABLE)))
        w = ctx.worker()
        ctx.wait_ready()
        go1, go2 = ctx.work / "go-1", ctx.work / "go-2"
        ctx.python(f"""
            from proj import transfer
            transfer.delay(1, 2, {str(go1)!r})
            transfer.delay(2, 1, {str(go2)!r})
        """)
        ctx.wait_for("worker.log", r"debited account", count=2)
        go1.touch()
        ctx.wait_for("worker.log", r"credits account", count=1)
        time.sleep(1.0)  # the first transaction is waiting for the second's row lock
        go2.touch()  # InnoDB sees the cycle at once and rolls one transaction back
        ctx.wait_for("worker.log", r"Deadlock found when trying to get lock")
        ctx.wait_for("worker.log", r"succeeded in")
        r = ctx.run(["mariadb", "-uroot", "-h127.0.0.1", "-e", "SHOW ENGINE INNODB STATUS\\G"])
        if "LATEST DETECTED DEADLOCK" not in r.stdout:
            raise ScenarioError("SHOW ENGINE INNODB STATUS has no LATEST DETECTED DEADLOCK section")
        ctx.save("innodb-status.txt", r.stdout)
        ctx.stop(w)
        ctx.keep("worker.log")
    finally:
        ctx.run([*MARIADB, "-e", f"DROP TABLE IF EXISTS {MY_TABLE}"], check=False)


SCENARIOS = [
    Scenario("deadlock-lock", "Two threads inside one task take two threading.Lock objects in opposite order "
             "and the task joins them: the pool child hangs for good. Dumped with py-spy (plain, --locals, "
             "--json), gdb (bt and py-bt), faulthandler (SIGUSR2) and celery inspect.",
             deadlock_lock, needs=("redis", "py-spy", "gdb")),
    Scenario("deadlock-rlock", "The lock-order deadlock of deadlock-lock with threading.RLock: two threads "
             "of one task hold one RLock each and wait for the other's. Same dumps.",
             deadlock_rlock, needs=("redis", "py-spy", "gdb")),
    Scenario("deadlock-pthread", "A native AB/BA deadlock: a task calls a small C library through ctypes "
             "from two threads, which take two pthread mutexes in opposite order. gdb bt with the mutex "
             "owners, py-spy --native, faulthandler, inspect, and a core file if small enough.",
             deadlock_pthread, needs=("redis", "py-spy", "gdb")),
    Scenario("deadlock-fcntl", "Two tasks in two pool children take fcntl.lockf locks on two bytes of one "
             "file in opposite order; the kernel refuses the request that closes the cycle with "
             "`OSError: [Errno 35] Resource deadlock avoided`, the other task then succeeds.",
             deadlock_fcntl, needs=("redis",)),
    Scenario("deadlock-postgres", "Two tasks update two rows of a PostgreSQL table in opposite order in one "
             "transaction each; PostgreSQL cancels one with `deadlock detected` (psycopg2 DeadlockDetected), "
             "the other commits. Worker log plus the server log lines.",
             deadlock_postgres, needs=("redis", "postgres")),
    Scenario("deadlock-mariadb", "Two tasks update two rows of an InnoDB table in opposite order; MariaDB "
             "rolls one back with (1213, 'Deadlock found when trying to get lock; try restarting "
             "transaction'), the other commits. Worker log plus SHOW ENGINE INNODB STATUS.",
             deadlock_mariadb, needs=("redis", "mariadb")),
]
