"""Processes blocked on each other through a pipe: the parent joins a child that blocks writing to it.

`deadlock-pipe`: the task (in a prefork pool child) starts a `billiard.Process` that sends its
result back over a `billiard.Pipe(duplex=False)` (an OS pipe), and then joins the process before
reading the pipe. The result is bigger than the pipe buffer (64 KiB on Linux), so the child's
`send()` blocks in write(2) until someone reads, and the only reader is the task, parked in
waitpid(2) until the child exits: the "joining processes that use queues/pipes" deadlock of the
multiprocessing programming guidelines. Neither process ever runs again.

Why not Celery's own pool pipes: Celery 5's prefork parent (AsynPool) writes jobs to its
children with non-blocking writes from its event loop, and the old parent↔child pipe hangs of
Celery 3 (celery/celery#957, #1310: the parent blocked writing a large job to a dead child) are
fixed there; no realistic setup made MainProcess block on a pool pipe. The task-level hang here is
the same kernel-level cycle in a shape users hit today.

`deadlock-queue`: the same deadlock through a `billiard.Queue`: the child's `put()` hands the
rows to the queue's feeder thread, which blocks in write(2) on the queue's pipe; the child's main
thread returns from its target and, at exit, joins the feeder thread (`Queue._finalize_join`)
before the process can end, while the task joins the process before `get()`. Three waits: the
task for the child process, the child's main thread for its feeder thread, the feeder for a
reader of the pipe. The kernel state is captured for every thread (`/proc/PID/task/TID/…`).

Captured per process, with the real tools: `py-spy dump` (plain and `--locals`, and both processes in
one `--subprocesses --locals` dump of the pool child), `ls -l
/proc/PID/fd` (which pipe inode each fd is and whether it is the read or write end), `grep -H .
/proc/PID/{stat,wchan,syscall,stack}` (parent pid, the kernel function it sleeps in, the blocked
system call with its arguments: write(fd, …) and wait4(pid, …), the kernel stack), `ps` with the
wait channel, and `celery inspect active` / `stats`.
"""

from __future__ import annotations

import re
import time
from subprocess import Popen

from harness import Ctx, Scenario, ScenarioError

from scenarios.deadlocks import app_source, finish_hung, inspect, pid_from_log, pyspy

PIPE_TASKS = """
    from billiard import Pipe, Process


    def summarize(conn, n):
        log.info("summarize pid %d (parent %d) sends %d rows", os.getpid(), os.getppid(), n)
        rows = [{"id": i, "name": f"customer-{i}", "total": i * 3} for i in range(n)]
        conn.send(rows)
        conn.close()
        log.info("summarize pid %d sent its rows", os.getpid())


    @app.task
    def export_summary(n):
        log.info("export_summary running in pid %d", os.getpid())
        reader, writer = Pipe(duplex=False)
        proc = Process(target=summarize, args=(writer, n), name="summarize")
        proc.start()
        log.info("export_summary in pid %d started pid %d, joining it", os.getpid(), proc.pid)
        proc.join()
        rows = reader.recv()
        return len(rows)
"""

ROWS = 20000  # pickled, several hundred KiB: far more than a pipe buffer holds

QUEUE_TASKS = """
    from billiard import Process, Queue


    def collect(queue, n):
        log.info("collect pid %d (parent %d) puts %d rows", os.getpid(), os.getppid(), n)
        rows = [{"id": i, "name": f"customer-{i}", "total": i * 3} for i in range(n)]
        queue.put(rows)
        log.info("collect pid %d put its rows, returning", os.getpid())


    @app.task
    def export_report(n):
        log.info("export_report running in pid %d", os.getpid())
        queue = Queue()
        proc = Process(target=collect, args=(queue, n), name="collect")
        proc.start()
        log.info("export_report in pid %d started pid %d, joining it", os.getpid(), proc.pid)
        proc.join()
        rows = queue.get()
        return len(rows)
"""


def _proc_files(ctx: Ctx, pids: list[int]) -> str:
    files = [f"/proc/{p}/{name}" for p in pids for name in ("stat", "wchan", "syscall", "stack")]
    return ctx.run(["grep", "-H", ".", *files], timeout=20).stdout


def _task_files(ctx: Ctx, pids: list[int]) -> str:
    """/proc/PID/task/TID/{stat,wchan,syscall,stack} of every thread of `pids`."""
    tids = [(p, t) for p in pids for t in sorted(int(x) for x in ctx.run(["ls", f"/proc/{p}/task"]).stdout.split())]
    files = [f"/proc/{p}/task/{t}/{name}" for p, t in tids for name in ("stat", "wchan", "syscall", "stack")]
    return ctx.run(["grep", "-H", ".", *files], timeout=20).stdout


def _start(ctx: Ctx, tasks: str, task: str, child_re: str) -> tuple[Popen[bytes], int, int]:
    """A worker running `task`, and the pids of its pool child and of the process the task started
    (`child_re` names it in the log with its parent, which must be the pool child)."""
    port = ctx.redis()
    ctx.write("proj.py", app_source(port, tasks))
    w = ctx.worker()
    ctx.wait_ready()
    ctx.python(f"from proj import {task}; print({task}.delay({ROWS}).id)")
    pool = pid_from_log(ctx, rf"{task} running in pid (?P<pid>\d+)")
    m = ctx.wait_for("worker.log", child_re, timeout=30)
    child = int(m.group("pid"))
    if int(m.group("ppid")) != pool:
        raise ScenarioError(f"pid {child} has parent {m.group('ppid')}, not the pool child {pool}")
    return w, pool, child


def _ps_and_inspect(ctx: Ctx, columns: list[str], pids: list[int]) -> None:
    ps = ctx.run(["ps", *columns, "-p", ",".join(map(str, pids))], timeout=20)
    ctx.save("ps.txt", ps.stdout)
    ctx.save("inspect-active.json", inspect(ctx, "active"))
    ctx.save("inspect-stats.json", inspect(ctx, "stats"))


def deadlock_pipe(ctx: Ctx) -> None:
    w, pool, child = _start(ctx, PIPE_TASKS, "export_summary",
                            r"summarize pid (?P<pid>\d+) \(parent (?P<ppid>\d+)\) sends")
    ctx.wait_for("worker.log", rf"in pid {pool} started pid {child}, joining it", timeout=30)
    time.sleep(1.5)  # the child has filled the pipe and sleeps in write(2); the task sleeps in wait4(2)
    if re.search(rf"summarize pid {child} sent its rows", ctx.read("worker.log")):
        raise ScenarioError("the child's send() returned: no hang to capture")
    # kernel-side state first: py-spy attaches with ptrace, which interrupts (and restarts) the syscalls
    ctx.save("proc-fd.txt", ctx.run(["ls", "-l", f"/proc/{pool}/fd", f"/proc/{child}/fd"], timeout=20).stdout)
    state = _proc_files(ctx, [pool, child])
    ctx.save("proc-state.txt", state)
    if not re.search(rf"^/proc/{child}/wchan:\w*pipe_write$", state, re.M) or \
            f"/proc/{pool}/wchan:do_wait" not in state:
        raise ScenarioError(f"not the expected kernel waits:\n{state}")
    for pid in (pool, child):
        ctx.save(f"pyspy-{pid}.txt", pyspy(ctx, pid))
        ctx.save(f"pyspy-locals-{pid}.txt", pyspy(ctx, pid, "--locals"))
    # both processes in one dump: the task's pool child and its children
    ctx.save("pyspy-subprocesses.txt", pyspy(ctx, pool, "--subprocesses", "--locals"))
    _ps_and_inspect(ctx, ["-o", "pid,ppid,stat,wchan:32,cmd"], [w.pid, pool, child])
    ctx.note(f"Pool child {pool} ran the task: it started process {child} (billiard.Process) to build "
             f"{ROWS} rows and send them over a billiard.Pipe(duplex=False), then joined it before reading the "
             f"pipe. The pickled rows are bigger than the pipe buffer, so {child} sleeps in write(2) on the pipe "
             f"(`pipe_write`, `anon_pipe_write` on recent kernels) and {pool} in wait4(2) for {child} "
             "(`do_wait`): neither can go on. `proc-fd.txt` and `proc-state.txt` were captured before py-spy "
             "attached.")
    ctx.note(f"Process {child} is in the worker's process group, so the final SIGKILL to the group stops it too.")
    finish_hung(ctx, w)


def deadlock_queue(ctx: Ctx) -> None:
    w, pool, child = _start(ctx, QUEUE_TASKS, "export_report",
                            r"collect pid (?P<pid>\d+) \(parent (?P<ppid>\d+)\) puts")
    ctx.wait_for("worker.log", rf"collect pid {child} put its rows, returning", timeout=30)
    ctx.wait_for("worker.log", rf"in pid {pool} started pid {child}, joining it", timeout=30)
    time.sleep(1.5)  # the feeder has filled the pipe; the child's main thread joins it at exit
    ctx.save("proc-fd.txt", ctx.run(["ls", "-l", f"/proc/{pool}/fd", f"/proc/{child}/fd"], timeout=20).stdout)
    state = _task_files(ctx, [pool, child])
    ctx.save("proc-state.txt", state)
    if not re.search(rf"^/proc/{child}/task/\d+/wchan:\w*pipe_write$", state, re.M) or \
            f"/proc/{pool}/task/{pool}/wchan:do_wait" not in state:
        raise ScenarioError(f"not the expected kernel waits:\n{state}")
    ctx.save("pyspy-subprocesses.txt", pyspy(ctx, pool, "--subprocesses", "--locals"))
    _ps_and_inspect(ctx, ["-L", "-o", "pid,lwp,ppid,stat,wchan:32,cmd"], [w.pid, pool, child])
    ctx.note(f"Pool child {pool} ran the task: it started process {child} (billiard.Process) that puts {ROWS} "
             f"rows on a billiard.Queue, then joined it before get(). In {child} the queue's feeder thread "
             "(QueueFeederThread) sleeps in write(2) on the queue's full pipe, and its main thread, back from the "
             f"target, joins the feeder at exit (`Queue._finalize_join`); {pool} sleeps in wait4(2) for "
             f"{child}. `proc-fd.txt` and `proc-state.txt` (every thread) were captured before py-spy attached.")
    ctx.note(f"Process {child} is in the worker's process group, so the final SIGKILL to the group stops it too.")
    finish_hung(ctx, w)


SCENARIOS = [
    Scenario("deadlock-pipe", "A pipe deadlock between two processes: a task starts a billiard.Process that sends "
             "a result bigger than the pipe buffer over a billiard.Pipe, and joins it before reading the pipe; the "
             "child blocks in write(2), the task in waitpid(2), forever. py-spy, /proc fd listings, "
             "/proc/PID/{stat,wchan,syscall,stack}, ps and inspect.", deadlock_pipe, needs=("redis", "py-spy")),
    Scenario("deadlock-queue", "The same deadlock through a billiard.Queue: the child's feeder thread blocks in "
             "write(2) on the queue's full pipe, the child's main thread joins the feeder at exit, the task joins "
             "the child before get(). py-spy --subprocesses --locals, /proc fd listings, "
             "/proc/PID/task/TID/{stat,wchan,syscall,stack}, ps -L and inspect.", deadlock_queue,
             needs=("redis", "py-spy")),
]
