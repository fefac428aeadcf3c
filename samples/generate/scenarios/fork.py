"""Fork while another thread holds a lock: the forked process waits forever on the copied lock.

`fork-lock`: the task (in a prefork pool child) starts a background thread that takes a
`threading.Lock` and keeps it while it sleeps, then calls `os.fork()`. The fork copies the
address space with the lock in its locked state but only the calling thread, so in the forked
process nobody will ever release it: its `with lock:` blocks forever, and the task, waiting for
the forked process with `os.waitpid`, never finishes. Captured with the real tools: py-spy (plain
and `--locals`) of the forked process and `--locals` of the pool child (where the holder thread is
alive, the same lock address in its frame), gdb `thread apply all bt` of the forked process,
`ps` of both, and `celery inspect active` / `stats` (the forked pid is not a pool process).
"""

from __future__ import annotations

import re
import time

from harness import Ctx, Scenario, ScenarioError

from scenarios.deadlocks import app_source, finish_hung, gdb_bt, inspect, pid_from_log, pyspy

FORK_TASKS = """

    def refresh_cache(lock, held):
        with lock:
            log.info("cache-refresher (tid %d) holds %r", threading.get_native_id(), lock)
            held.set()
            time.sleep(3600)


    @app.task
    def export_report():
        log.info("export_report running in pid %d", os.getpid())
        cache_lock = threading.Lock()
        held = threading.Event()
        threading.Thread(target=refresh_cache, args=(cache_lock, held), name="cache-refresher",
                         daemon=True).start()
        held.wait()
        child = os.fork()
        if child == 0:
            log.info("forked pid %d (parent %d) takes %r", os.getpid(), os.getppid(), cache_lock)
            with cache_lock:
                log.info("forked pid %d got the lock", os.getpid())
            os._exit(0)
        log.info("export_report in pid %d forked pid %d, waiting for it", os.getpid(), child)
        os.waitpid(child, 0)
        return "exported"
"""


def fork_lock(ctx: Ctx) -> None:
    port = ctx.redis()
    ctx.write("proj.py", app_source(port, FORK_TASKS))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("from proj import export_report; print(export_report.delay().id)")
    pool = pid_from_log(ctx, r"export_report running in pid (?P<pid>\d+)")
    m = ctx.wait_for("worker.log", r"forked pid (?P<pid>\d+) \(parent (?P<ppid>\d+)\) takes", timeout=30)
    forked = int(m.group("pid"))
    if int(m.group("ppid")) != pool:
        raise ScenarioError(f"forked pid {forked} has parent {m.group('ppid')}, not the pool child {pool}")
    ctx.wait_for("worker.log", rf"in pid {pool} forked pid {forked}, waiting", timeout=30)
    # the forked process has logged that it takes the lock; give it time to park in the acquire
    time.sleep(1.5)
    if re.search(r"forked pid \d+ got the lock", ctx.read("worker.log")):
        raise ScenarioError("the forked process got the lock: no hang to capture")
    ctx.save(f"pyspy-{forked}.txt", pyspy(ctx, forked))
    ctx.save(f"pyspy-locals-{forked}.txt", pyspy(ctx, forked, "--locals"))
    ctx.save(f"pyspy-locals-{pool}.txt", pyspy(ctx, pool, "--locals"))
    ctx.save(f"gdb-bt-{forked}.txt", gdb_bt(ctx, forked))
    ps = ctx.run(["ps", "-o", "pid,ppid,comm,args", "-p", f"{pool},{forked}"], timeout=20)
    ctx.save("ps.txt", ps.stdout)
    ctx.save("inspect-active.json", inspect(ctx, "active"))
    ctx.save("inspect-stats.json", inspect(ctx, "stats"))
    ctx.note(f"Pool child {pool} ran the task; its `cache-refresher` thread held the lock when the task "
             f"called os.fork(); the forked process {forked} has only the forking thread and blocks in "
             "`with cache_lock:` forever, while the task waits for it in os.waitpid. The forked process is "
             "in the worker's process group, so the final SIGKILL to the group stops it too.")
    finish_hung(ctx, w)


SCENARIOS = [
    Scenario("fork-lock", "A fork deadlock: a task forks while a background thread of the pool child holds a "
             "threading.Lock; the forked process blocks forever acquiring the copied lock and the task, waiting "
             "for it, never finishes.", fork_lock, needs=("redis", "py-spy", "gdb")),
]
