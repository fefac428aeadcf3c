"""A hang that is not a deadlock, in a database call: a task's query blocks on PostgreSQL for
minutes (`SELECT pg_sleep(600)`, no `statement_timeout`), so its pool child is parked in libpq
waiting for the server's answer. Captured with the helpers of `deadlocks.py` / `hangs.py`."""

from __future__ import annotations

import signal
import subprocess
import time

from harness import Ctx, Scenario, ScenarioError

from scenarios.deadlocks import (
    PG,
    app_source,
    gdb_bt,
    inspect,
    pid_from_log,
    pyspy,
)

APP_NAME = "celery-hang-db-query"  # application_name of the task's connection, for the cleanup

DB_TASKS = """
    import psycopg2


    @app.task
    def ping():
        return "pong"


    @app.task
    def monthly_report():
        log.info("monthly_report running in pid %d", os.getpid())
        conn = psycopg2.connect("host=127.0.0.1 dbname=test user=postgres application_name={app_name}")
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                log.info("monthly_report querying on backend %d", cur.fetchone()[0])
                cur.execute("SELECT pg_sleep(600)")  # no statement_timeout: blocks for ten minutes
                return cur.fetchone()
        finally:
            conn.close()
"""


def _psql(sql: str) -> str:
    """A polling query (not recorded in the README's command list)."""
    r = subprocess.run([*PG, "-At", "-c", sql], capture_output=True, text=True, timeout=30, check=False)
    return r.stdout.strip()


def _cancel_backends(ctx: Ctx) -> None:
    """Cancel (then, if it survives, terminate) the task's backend."""
    ctx.run([*PG, "-At", "-c", "SELECT pid, pg_cancel_backend(pid) FROM pg_stat_activity "
             f"WHERE application_name = '{APP_NAME}'"], check=False)
    for _ in range(50):
        if _psql(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{APP_NAME}'") == "0":
            return
        time.sleep(0.1)
    ctx.run([*PG, "-At", "-c", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             f"WHERE application_name = '{APP_NAME}'"], check=False)


def hang_db_query(ctx: Ctx) -> None:
    try:
        port = ctx.redis()
        ctx.write("proj.py", app_source(port, DB_TASKS.replace("{app_name}", APP_NAME)))
        w = ctx.worker()
        ctx.wait_ready()
        ctx.python("""
            from proj import ping
            print(ping.delay().get(timeout=20))
        """)
        ctx.wait_for("worker.log", r"succeeded in")
        ctx.python("from proj import monthly_report; print(monthly_report.delay().id)")
        pid = pid_from_log(ctx, r"monthly_report running in pid (?P<pid>\d+)")
        backend = int(ctx.wait_for("worker.log", r"querying on backend (?P<b>\d+)").group("b"))
        # the backend is in pg_sleep: the query was sent and the client waits for its answer
        for _ in range(100):
            if "pg_sleep" in _psql(f"SELECT query FROM pg_stat_activity WHERE pid = {backend} AND state = 'active'"):
                break
            time.sleep(0.1)
        else:
            raise ScenarioError(f"backend {backend} is not running pg_sleep")
        time.sleep(1.0)
        ctx.save("pyspy-1.txt", pyspy(ctx, pid))
        ctx.save("inspect-active-1.json", inspect(ctx, "active"))
        time.sleep(5.0)
        ctx.save("pyspy-2.txt", pyspy(ctx, pid))
        ctx.save("inspect-active-2.json", inspect(ctx, "active"))
        ctx.note("`pyspy-1.txt`/`inspect-active-1.json` and `pyspy-2.txt`/`inspect-active-2.json` were "
                 "captured about six seconds apart: the same stack, the same active task.")
        ctx.save("pyspy-locals.txt", pyspy(ctx, pid, "--locals"))
        ctx.save("gdb-bt.txt", gdb_bt(ctx, pid))
        ctx.save("inspect-stats.json", inspect(ctx, "stats"))
        # kill the worker before cancelling the query, so the task never sees QueryCanceled
        ctx.stop(w, sig=signal.SIGKILL)
        ctx.note("The worker was hung; the generator stopped it with SIGKILL to its process group after the "
                 "captures, so the log ends without a shutdown message. Then it cancelled the orphaned "
                 f"`pg_sleep` on PostgreSQL backend {backend} with `pg_cancel_backend` (the task never "
                 "saw the cancel).")
        ctx.keep("worker.log")
        ctx.keep("worker.log.out", "worker.stdout")
    finally:
        _cancel_backends(ctx)


SCENARIOS = [
    Scenario("hang-db-query", "A task runs `SELECT pg_sleep(600)` through psycopg2 on PostgreSQL with no "
             "statement_timeout: its pool child waits in libpq for an answer that does not come for ten "
             "minutes. One quick task succeeds first. py-spy and inspect active twice a few seconds apart, "
             "py-spy --locals, gdb bt, inspect stats.", hang_db_query, needs=("redis", "postgres", "py-spy", "gdb")),
]
