"""Locks not taken in time: PostgreSQL lock_timeout, MariaDB innodb_lock_wait_timeout, a redis-py lock
that expired under its holder. Each fails one task with the driver's own exception.
"""

from __future__ import annotations

from harness import Ctx, Scenario

from scenarios.deadlocks import MARIADB, PG, app_source

TABLE = "cpm_lock_timeout_rows"
TASKS = """
    import psycopg2
    import pymysql
    import redis


    def _wait(go):
        while not os.path.exists(go):
            time.sleep(0.05)


    @app.task
    def hold_pg_row(go):
        conn = psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres")
        try:
            with conn, conn.cursor() as cur:
                cur.execute("UPDATE {table} SET n = n + 1 WHERE id = 1")
                log.info("holding row 1 of {table} in PostgreSQL")
                _wait(go)
        finally:
            conn.close()


    @app.task
    def update_pg_row():
        conn = psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres")
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SET lock_timeout = '500ms'")
                cur.execute("UPDATE {table} SET n = n + 1 WHERE id = 1")
        finally:
            conn.close()


    @app.task
    def hold_my_row(go):
        conn = pymysql.connect(host="127.0.0.1", user="root", password="", database="test")
        try:
            conn.begin()
            with conn.cursor() as cur:
                cur.execute("UPDATE {table} SET n = n + 1 WHERE id = 1")
                log.info("holding row 1 of {table} in MariaDB")
                _wait(go)
            conn.commit()
        finally:
            conn.close()


    @app.task
    def update_my_row():
        conn = pymysql.connect(host="127.0.0.1", user="root", password="", database="test")
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
                conn.begin()
                cur.execute("UPDATE {table} SET n = n + 1 WHERE id = 1")
            conn.commit()
        finally:
            conn.close()


    @app.task
    def refresh_cache():
        r = redis.Redis(host="127.0.0.1", port={port})
        lock = r.lock("cpm:refresh-cache", timeout=0.5)
        lock.acquire()
        time.sleep(1.0)  # longer than the lock's timeout: it expires under its holder
        lock.release()
"""


def lock_timeouts(ctx: Ctx) -> None:
    ctx.run([*PG, "-c", f"DROP TABLE IF EXISTS {TABLE}; CREATE TABLE {TABLE} (id int PRIMARY KEY, n int NOT NULL); "
             f"INSERT INTO {TABLE} VALUES (1, 0);"])
    ctx.run([*MARIADB, "-e", f"DROP TABLE IF EXISTS {TABLE}; CREATE TABLE {TABLE} (id INT PRIMARY KEY, n INT NOT NULL) "
             f"ENGINE=InnoDB; INSERT INTO {TABLE} VALUES (1, 0);"])
    try:
        port = ctx.redis()
        ctx.write("proj.py", app_source(port, TASKS.replace("{table}", TABLE).replace("{port}", str(port))))
        w = ctx.worker()
        ctx.wait_ready()
        go_pg, go_my = ctx.work / "go-pg", ctx.work / "go-my"
        ctx.python(f"from proj import hold_pg_row; hold_pg_row.delay({str(go_pg)!r})")
        ctx.wait_for("worker.log", r"holding row 1 of \S+ in PostgreSQL")
        ctx.python("from proj import update_pg_row; update_pg_row.delay()")
        ctx.wait_for("worker.log", r"LockNotAvailable")
        go_pg.touch()
        ctx.wait_for("worker.log", r"hold_pg_row\[\S+\] succeeded")
        ctx.python(f"from proj import hold_my_row; hold_my_row.delay({str(go_my)!r})")
        ctx.wait_for("worker.log", r"holding row 1 of \S+ in MariaDB")
        ctx.python("from proj import update_my_row; update_my_row.delay()")
        ctx.wait_for("worker.log", r"Lock wait timeout exceeded")
        go_my.touch()
        ctx.wait_for("worker.log", r"hold_my_row\[\S+\] succeeded")
        ctx.python("from proj import refresh_cache; refresh_cache.delay()")
        ctx.wait_for("worker.log", r"refresh_cache\[\S+\] raised unexpected")
        ctx.stop(w)
        ctx.keep("worker.log")
    finally:
        ctx.run([*PG, "-c", f"DROP TABLE IF EXISTS {TABLE}"], check=False)
        ctx.run([*MARIADB, "-e", f"DROP TABLE IF EXISTS {TABLE}"], check=False)


SCENARIOS = [
    Scenario("lock-timeouts", "Three tasks fail because a lock was not taken in time: PostgreSQL cancels an "
             "UPDATE after lock_timeout (psycopg2.errors.LockNotAvailable), MariaDB gives up after "
             "innodb_lock_wait_timeout ((1205, 'Lock wait timeout exceeded; try restarting transaction')), "
             "and a redis-py lock expires under its holder (LockNotOwnedError on release). Worker log only.",
             lock_timeouts, needs=("redis", "postgres", "mariadb")),
]
