"""Hangs that are not deadlocks: a task blocked forever on a socket read, and many threads
waiting on one lock held by a busy thread (the "not a deadlock" control)."""

from __future__ import annotations

import time

from harness import PY, Ctx, Scenario, free_port, wait_port

from scenarios.deadlocks import (
    app_source,
    faulthandler_dump,
    finish_hung,
    gdb_bt,
    inspect,
    pid_from_log,
    pyspy,
)

# --- 7: a recv() with no timeout on a server that never answers ----------------------------------

SILENT_SERVER = """
    import socket
    import sys

    # Accepts connections and never sends a byte back (a stalled upstream).
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1])))
    srv.listen()
    print("listening on", srv.getsockname(), flush=True)
    conns = []
    while True:
        conn, peer = srv.accept()
        conns.append(conn)
        print("accepted", peer, flush=True)
"""

SOCKET_TASKS = """
    import socket


    @app.task
    def ping():
        return "pong"


    @app.task
    def fetch_rates(port):
        log.info("fetch_rates running in pid %d, connecting to 127.0.0.1:%d", os.getpid(), port)
        sock = socket.create_connection(("127.0.0.1", port))  # no timeout given
        sock.sendall(b"GET /rates HTTP/1.0\\r\\nHost: rates.internal\\r\\n\\r\\n")
        data = sock.recv(65536)  # the server never answers: blocks forever
        return data.decode()
"""


def hang_socket_read(ctx: Ctx) -> None:
    srv_port = free_port()
    ctx.write("silent_server.py", SILENT_SERVER)
    ctx.spawn([PY, "silent_server.py", str(srv_port)],
              log="silent_server.log")
    wait_port(srv_port)
    port = ctx.redis()
    ctx.write("proj.py", app_source(port, SOCKET_TASKS))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("""
        from proj import ping
        print(ping.delay().get(timeout=20))
    """)
    ctx.wait_for("worker.log", r"succeeded in")
    ctx.python(f"from proj import fetch_rates; print(fetch_rates.delay({srv_port}).id)")
    pid = pid_from_log(ctx, r"fetch_rates running in pid (?P<pid>\d+)")
    ctx.wait_for("silent_server.log", r"accepted")
    time.sleep(1.0)
    ctx.save("pyspy-1.txt", pyspy(ctx, pid))
    ctx.save("inspect-active-1.json", inspect(ctx, "active"))
    time.sleep(5.0)
    ctx.save("pyspy-2.txt", pyspy(ctx, pid))
    ctx.save("inspect-active-2.json", inspect(ctx, "active"))
    ctx.note("`pyspy-1.txt`/`inspect-active-1.json` and `pyspy-2.txt`/`inspect-active-2.json` were captured "
             "about six seconds apart: the same stack, the same active task.")
    ctx.save("pyspy-locals.txt", pyspy(ctx, pid, "--locals"))
    ctx.save("gdb-bt.txt", gdb_bt(ctx, pid))
    faulthandler_dump(ctx, pid, threads=1)
    ctx.save("inspect-stats.json", inspect(ctx, "stats"))
    finish_hung(ctx, w)


# --- 8: five threads waiting on a lock held by a busy sixth (no cycle) ---------------------------

LOCK_WAIT_TASKS = """

    def hold_and_work(lock, ready):
        with lock:
            ready.set()
            rounds = 0
            while True:  # a long rebuild that keeps the lock for its whole duration
                rounds += 1
                time.sleep(0.1)


    def wait_for_index(lock, n):
        with lock:
            log.info("reader %d got the index", n)


    @app.task
    def rebuild_index():
        log.info("rebuild_index running in pid %d", os.getpid())
        index_lock = threading.Lock()
        ready = threading.Event()
        builder = threading.Thread(target=hold_and_work, args=(index_lock, ready), name="index-builder")
        builder.start()
        ready.wait()
        readers = [threading.Thread(target=wait_for_index, args=(index_lock, n), name=f"reader-{n}")
                   for n in range(5)]
        for t in readers:
            t.start()
        log.info("%d readers waiting for the index lock", len(readers))
        for t in readers:
            t.join()
        builder.join()
        return "rebuilt"
"""


def lock_wait_many(ctx: Ctx) -> None:
    port = ctx.redis()
    ctx.write("proj.py", app_source(port, LOCK_WAIT_TASKS))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("from proj import rebuild_index; print(rebuild_index.delay().id)")
    pid = pid_from_log(ctx, r"rebuild_index running in pid (?P<pid>\d+)")
    ctx.wait_for("worker.log", r"5 readers waiting for the index lock")
    time.sleep(1.0)
    ctx.save(f"pyspy-{pid}.txt", pyspy(ctx, pid))
    ctx.save("pyspy-locals.txt", pyspy(ctx, pid, "--locals"))
    ctx.save("inspect-active.json", inspect(ctx, "active"))
    ctx.save("inspect-stats.json", inspect(ctx, "stats"))
    finish_hung(ctx, w)


SCENARIOS = [
    Scenario("hang-socket-read", "A task connects to a loopback server that accepts and never answers and "
             "calls recv() with no timeout: the pool child blocks forever. One quick task succeeds first. "
             "py-spy and inspect active twice a few seconds apart (same stack), py-spy --locals, gdb bt, "
             "faulthandler, inspect stats.", hang_socket_read, needs=("redis", "py-spy", "gdb")),
    Scenario("lock-wait-many", "Not a deadlock: a task starts five threads that all wait on one "
             "threading.Lock held by a sixth thread that stays busy for the whole capture. py-spy (plain, "
             "--locals) and inspect active.", lock_wait_many, needs=("redis", "py-spy")),
]
