"""Kernel evidence: a pool child killed by the kernel's OOM killer under a memory cgroup (cgroup v1)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

from harness import BIN, Ctx, Scenario, ScenarioError

from scenarios.stuck import _app

CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
LIMIT_BYTES = 192 << 20


def _dmesg() -> list[str]:
    r = subprocess.run(["dmesg"], capture_output=True, text=True)
    if r.returncode != 0:
        raise ScenarioError(f"dmesg is not readable here ({r.returncode}): {r.stderr.strip()}")
    return r.stdout.splitlines()


def _write(path: Path, value: str) -> None:
    path.write_text(value)


HOG = """
    @app.task
    def hog(step_mb):
        with open("hog.pid", "w") as f:
            f.write(str(os.getpid()))
        log.info("allocating %s MiB at a time until told otherwise", step_mb)
        held = []
        while True:
            held.append(b"x" * (step_mb << 20))  # written, so every page is resident
            time.sleep(0.05)
"""


def _limit(ctx: Ctx, group: Path, child: int) -> None:
    """`group` limited to LIMIT_BYTES (with swap when the kernel accounts it), `child` moved into it."""
    ctx.commands.append(f"mkdir {group}")
    _write(group / "memory.limit_in_bytes", str(LIMIT_BYTES))
    ctx.commands.append(f"echo {LIMIT_BYTES} > {group}/memory.limit_in_bytes")
    if (group / "memory.memsw.limit_in_bytes").exists():
        _write(group / "memory.memsw.limit_in_bytes", str(LIMIT_BYTES))
        ctx.commands.append(f"echo {LIMIT_BYTES} > {group}/memory.memsw.limit_in_bytes")
    _write(group / "cgroup.procs", str(child))
    ctx.commands.append(f"echo {child} > {group}/cgroup.procs  # the pool child ForkPoolWorker-1 only")


def _release(ctx: Ctx, group: Path) -> None:
    """Processes left in `group` back to the root, then the group removed."""
    with contextlib.suppress(OSError):
        for pid in (group / "cgroup.procs").read_text().split():
            _write(CGROUP_ROOT / "cgroup.procs", pid)
    for _ in range(50):  # rmdir fails while the killed child's pages are still being freed
        try:
            group.rmdir()
            break
        except OSError:
            time.sleep(0.1)
    ctx.commands.append(f"rmdir {group}")


def worker_cgroup_oom(ctx: Ctx) -> None:
    if not (CGROUP_ROOT / "cgroup.procs").exists():
        raise ScenarioError(f"no cgroup v1 memory controller at {CGROUP_ROOT}")
    port = ctx.redis()
    _app(ctx, port, HOG)
    group = CGROUP_ROOT / f"cpm-oom-{ctx.work.name[-8:]}"
    w = ctx.worker(concurrency=1)
    ctx.wait_ready()
    children = ctx.children(w)
    if len(children) != 1:
        raise ScenarioError(f"expected one pool child of {w.pid}, found {children}")
    child = children[0]
    before = len(_dmesg())
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    group.mkdir()
    try:
        _limit(ctx, group, child)
        ctx.python("""
            from proj import add, hog
            print(add.delay(2, 2).get(timeout=20))
            hog.delay(16)
        """)
        ctx.wait_for("worker.log", r"WorkerLostError\('Worker exited prematurely: signal 9 \(SIGKILL\)", timeout=60)
        time.sleep(0.5)
        ctx.python("""
            from proj import add
            print(add.delay(3, 4).get(timeout=20))
        """)
        ctx.stop(w)
    finally:
        _release(ctx, group)
    ctx.keep("worker.log")
    window = _dmesg()[before:]
    if not any("Killed process" in ln for ln in window):
        raise ScenarioError("the kernel logged no OOM kill in the run window")
    ctx.save("dmesg.txt", "\n".join(window) + "\n")
    ctx.commands.append(f"dmesg | tail -n +{before + 1} > dmesg.txt  # the kernel's lines of the run window")
    # the same window as `dmesg -T` and, when journald runs, `journalctl -k`, for the parser tests (scratch only)
    r = subprocess.run(["dmesg", "-T"], capture_output=True, text=True)
    (ctx.work / "dmesg-T.txt").write_text("\n".join(r.stdout.splitlines()[before:]) + "\n")
    for name, fmt in (("journal-k-short.txt", "short"), ("journal-k-short-iso.txt", "short-iso")):
        r = subprocess.run(["journalctl", "-k", "--no-pager", "-o", fmt, "--since", since], capture_output=True,
                           text=True)
        if r.returncode == 0 and "Killed process" in r.stdout:
            (ctx.work / name).write_text(r.stdout)
    pid = int(ctx.read("hog.pid"))
    ctx.note(f"The worker runs with `-c 1`; only its pool child (pid {child}) is put in the memory cgroup "
             f"`{group.name}` (cgroup v1, memory.limit_in_bytes = memory.memsw.limit_in_bytes = {LIMIT_BYTES} "
             f"bytes); the main process stays outside it and logs the child's death. `proj.hog` (pid {pid}) "
             "allocates 16 MiB at a time until the kernel's OOM killer kills it. `dmesg.txt` holds every kernel "
             "line logged during the run (seconds since boot, as plain `dmesg` prints them), unedited.")


SCENARIOS = [
    Scenario("worker-cgroup-oom", "A pool child running a task that keeps allocating is killed by the kernel's "
             "OOM killer under a memory cgroup limit (cgroup v1); billiard logs the SIGKILL and WorkerLostError "
             "follows; `dmesg` holds the kill.", worker_cgroup_oom, needs=("redis",)),
]


def journald_worker_oom(ctx: Ctx) -> None:
    """The same kill with the worker logging through journald: one `journalctl` copy holds both sides."""
    from scenarios.layouts_real import ensure_journald

    if not (CGROUP_ROOT / "cgroup.procs").exists():
        raise ScenarioError(f"no cgroup v1 memory controller at {CGROUP_ROOT}")
    ensure_journald(ctx)
    port = ctx.redis()
    _app(ctx, port, HOG)
    tag = "celery"
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    time.sleep(1)
    w = ctx.spawn(["systemd-cat", "-t", tag, str(BIN / "celery"), "-A", "proj", "worker", "-P", "prefork", "-c", "1",
                   "--loglevel=INFO", "-n", "w1@sample"])

    def journal(*args: str) -> str:
        r = subprocess.run(["journalctl", "--no-pager", "--since", since, *args], capture_output=True, text=True)
        return r.stdout

    def wait(pattern: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pattern in journal():
                return
            time.sleep(0.3)
        raise ScenarioError(f"journal: {pattern!r} not seen within {timeout}s")

    wait("w1@sample ready.")
    children = ctx.children(w)
    if len(children) != 1:
        raise ScenarioError(f"expected one pool child of {w.pid}, found {children}")
    child = children[0]
    group = CGROUP_ROOT / f"cpm-oom-{ctx.work.name[-8:]}"
    group.mkdir()
    try:
        _limit(ctx, group, child)
        ctx.python("""
            from proj import add, hog
            print(add.delay(2, 2).get(timeout=20))
            hog.delay(16)
        """)
        wait("WorkerLostError('Worker exited prematurely: signal 9 (SIGKILL)")
        time.sleep(0.5)
        ctx.python("""
            from proj import add
            print(add.delay(3, 4).get(timeout=20))
        """)
        ctx.stop(w)
    finally:
        _release(ctx, group)
    time.sleep(1)
    ctx.commands.append(f"journalctl --no-pager --since '{since}' -o short-iso > journal.txt")
    ctx.save("journal.txt", journal("-o", "short-iso"))
    ctx.note(f"The worker ran under `systemd-cat -t {tag}` without `-f` and `-c 1`; only its pool child (pid "
             f"{child}) was put in the memory cgroup `{group.name}` (cgroup v1, {LIMIT_BYTES} bytes with swap). "
             "`journal.txt` is the machine's whole journal of the run (`journalctl -o short-iso --since …`, no "
             "filter): the worker's lines and the kernel's, interleaved, unedited.")


SCENARIOS.append(Scenario(
    "journald-worker-oom", "The cgroup OOM kill of a pool child with the worker logging through journald: "
    "the machine's journal (`journalctl -o short-iso`) holds the worker's lines and the kernel's.",
    journald_worker_oom, needs=("redis",)))
