"""Deadlocks whose locks no dump shows an owner for: module-level threading.Lock / RLock, and
module-level pthread mutexes inside a CPython extension.

The locks are globals, so py-spy ``--locals`` shows none of them in any frame; gdb shows each
blocked thread in ``lock_PyThread_acquire_lock (self=…)`` / ``rlock_acquire (self=…)`` /
``pthread_mutex_lock`` on a different lock while the task's main thread joins them. Each hung
pool child is dumped twice, a couple of seconds apart, by py-spy and by gdb, so the analyzer can
see that nothing moved. For the RLock case the second gdb dump also prints each waited RLock's
``rlock_owner`` (the owning thread's ident), the owner data an RLock carries.
"""

from __future__ import annotations

import re
import shutil
import sysconfig
import time

from harness import Ctx, Scenario

from scenarios.deadlocks import (
    NATIVE,
    app_source,
    faulthandler_dump,
    finish_hung,
    gdb,
    gdb_py_bt,
    inspect,
    pid_from_log,
    pyspy,
)

GAP_S = 2.0  # between the first and the second dump of each tool

GLOBAL_LOCK_TASKS = """

    ledger_lock = threading.{kind}()
    audit_lock = threading.{kind}()


    def post_ledger():
        with ledger_lock:
            log.info("ledger-writer (tid %d) holds ledger_lock", threading.get_native_id())
            time.sleep(0.5)
            with audit_lock:
                log.info("ledger-writer got both locks")


    def post_audit():
        with audit_lock:
            log.info("audit-writer (tid %d) holds audit_lock", threading.get_native_id())
            time.sleep(0.5)
            with ledger_lock:
                log.info("audit-writer got both locks")


    @app.task
    def reconcile_accounts():
        log.info("reconcile_accounts running in pid %d", os.getpid())
        a = threading.Thread(target=post_ledger, name="ledger-writer")
        b = threading.Thread(target=post_audit, name="audit-writer")
        a.start()
        b.start()
        a.join()
        b.join()
        return "reconciled"
"""

# `#8  0x00007f5803b13280 in rlock_acquire (self=0x7f58017bfe40, args=…`
RLOCK_SELF_RE = re.compile(r"\brlock_acquire \(self=(0x[0-9a-f]+)")


def _rlock_owner_prints(bt: str) -> list[str]:
    """gdb commands printing each waited RLock's owner: `$N = (rlockobject *) ADDR`, then
    `$N+1 = IDENT` (the owning thread's pthread_t, as in gdb's `Thread 0x… (LWP …)` header)."""
    cmds: list[str] = []
    for addr in sorted(set(RLOCK_SELF_RE.findall(bt))):
        cmds += [f"print (rlockobject *) {addr}", "print $->rlock_owner"]
    return cmds


def _global_lock_cycle(ctx: Ctx, kind: str) -> None:
    port = ctx.redis()
    ctx.write("proj.py", app_source(port, GLOBAL_LOCK_TASKS.replace("{kind}", kind)))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("from proj import reconcile_accounts; print(reconcile_accounts.delay().id)")
    pid = pid_from_log(ctx, r"reconcile_accounts running in pid (?P<pid>\d+)")
    ctx.wait_for("worker.log", r"holds (?:ledger|audit)_lock", count=2)
    time.sleep(1.5)  # 0.5 s later each thread blocks on the lock the other holds
    ctx.save(f"pyspy-{pid}-1.txt", pyspy(ctx, pid))
    ctx.save("pyspy-locals.txt", pyspy(ctx, pid, "--locals"))
    bt1 = gdb(ctx, pid, "thread apply all bt")
    ctx.save("gdb-bt-1.txt", bt1)
    pybt = gdb_py_bt(ctx, pid)
    if pybt is not None:
        ctx.save("gdb-py-bt.txt", pybt)
    time.sleep(GAP_S)
    ctx.save(f"pyspy-{pid}-2.txt", pyspy(ctx, pid))
    owners = _rlock_owner_prints(bt1) if kind == "RLock" else []
    ctx.save("gdb-bt-2.txt", gdb(ctx, pid, "thread apply all bt", *owners))
    if owners:
        ctx.note("`gdb-bt-2.txt` ends with each waited RLock's `rlock_owner` (CPython's rlockobject, "
                 "Modules/_threadmodule.c): `print (rlockobject *) ADDR` then `print $->rlock_owner`, ADDR "
                 "being the `self=` of an `rlock_acquire` frame in `gdb-bt-1.txt`.")
    ctx.note(f"Two dumps per tool of pool child {pid}, about {GAP_S:.0f} s apart: `pyspy-{pid}-1.txt` / "
             f"`pyspy-{pid}-2.txt` and `gdb-bt-1.txt` / `gdb-bt-2.txt`. The locks are module globals, so "
             "`pyspy-locals.txt` shows no lock in any frame.")
    faulthandler_dump(ctx, pid, threads=3)
    ctx.save("inspect-active.json", inspect(ctx, "active"))
    ctx.save("inspect-stats.json", inspect(ctx, "stats"))
    finish_hung(ctx, w)


def deadlock_lock_global(ctx: Ctx) -> None:
    _global_lock_cycle(ctx, "Lock")


def deadlock_rlock_global(ctx: Ctx) -> None:
    _global_lock_cycle(ctx, "RLock")


EXTENSION_TASKS = """
    import _ledger


    def call(fn):
        log.info("%s (tid %d) calls _ledger.%s", threading.current_thread().name,
                 threading.get_native_id(), fn.__name__)
        fn()


    @app.task
    def post_entries():
        log.info("post_entries running in pid %d", os.getpid())
        a = threading.Thread(target=call, args=(_ledger.post_ledger,), name="ledger-writer")
        b = threading.Thread(target=call, args=(_ledger.post_audit,), name="audit-writer")
        a.start()
        b.start()
        a.join()
        b.join()
        return "posted"
"""


def deadlock_pthread_extension(ctx: Ctx) -> None:
    src = ctx.work / "ledger.c"
    shutil.copyfile(NATIVE / "ledger.c", src)
    ext = ctx.work / f"_ledger{sysconfig.get_config_var('EXT_SUFFIX')}"
    ctx.run(["cc", "-shared", "-fPIC", "-g", "-O0", f"-I{sysconfig.get_paths()['include']}", "-o", str(ext),
             str(src), "-lpthread"])
    port = ctx.redis()
    ctx.write("proj.py", app_source(port, EXTENSION_TASKS))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python("from proj import post_entries; print(post_entries.delay().id)")
    pid = pid_from_log(ctx, r"post_entries running in pid (?P<pid>\d+)")
    ctx.wait_for("worker.log", r"calls _ledger\.", count=2)
    time.sleep(1.5)  # 0.5 s in the C code, then both threads block on the other's mutex
    ctx.save(f"pyspy-{pid}-1.txt", pyspy(ctx, pid))
    ctx.save("pyspy-native.txt", pyspy(ctx, pid, "--native"))
    ctx.save("gdb-bt-1.txt", gdb(ctx, pid, "thread apply all bt"))
    pybt = gdb_py_bt(ctx, pid)
    if pybt is not None:
        ctx.save("gdb-py-bt.txt", pybt)
    time.sleep(GAP_S)
    ctx.save(f"pyspy-{pid}-2.txt", pyspy(ctx, pid))
    ctx.save("gdb-bt-2.txt", gdb(ctx, pid, "thread apply all bt"))
    ctx.note(f"Two dumps per tool of pool child {pid}, about {GAP_S:.0f} s apart. The extension `_ledger` "
             "(`samples/generate/scenarios/native/ledger.c`, built with cc against this interpreter's "
             "Python.h) takes its two static pthread mutexes inside its functions, so no gdb frame names "
             "the mutex a thread holds, and no `print` of the mutexes was made: no owner is known.")
    faulthandler_dump(ctx, pid, threads=3)
    ctx.save("inspect-active.json", inspect(ctx, "active"))
    ctx.save("inspect-stats.json", inspect(ctx, "stats"))
    finish_hung(ctx, w)


SCENARIOS = [
    Scenario("deadlock-lock-global", "Two threads of one task take two module-level threading.Lock objects "
             "in opposite order while the task joins them: no dump shows a lock owner. py-spy (twice, and "
             "--locals), gdb bt (twice) and py-bt, faulthandler, celery inspect.",
             deadlock_lock_global, needs=("redis", "py-spy", "gdb")),
    Scenario("deadlock-rlock-global", "deadlock-lock-global with module-level threading.RLock objects; the "
             "second gdb dump prints each waited RLock's rlock_owner.",
             deadlock_rlock_global, needs=("redis", "py-spy", "gdb")),
    Scenario("deadlock-pthread-extension", "Two threads of one task call a CPython extension whose functions "
             "take two static pthread mutexes in opposite order (GIL released): no dump shows an owner. "
             "py-spy (twice, and --native), gdb bt (twice) and py-bt, faulthandler, celery inspect.",
             deadlock_pthread_extension, needs=("redis", "py-spy", "gdb")),
]
