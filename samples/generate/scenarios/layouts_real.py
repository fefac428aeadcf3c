"""Layouts as operators have them: a padded custom `worker_log_format`, a worker logging through journald."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

from harness import BIN, Ctx, Scenario, ScenarioError

from scenarios.tasks import _app

PADDED_LOG_FORMAT = "%(asctime)s %(levelname)-7s [%(processName)s] %(name)s: %(message)s"
PADDED_TASK_LOG_FORMAT = ("%(asctime)s %(levelname)-7s [%(processName)s] %(task_name)s[%(task_id)s] %(name)s: "
                          "%(message)s")


def custom_log_format_padded(ctx: Ctx) -> None:
    port = ctx.redis()
    _app(ctx, port, conf=f"""
        app.conf.worker_log_format = {PADDED_LOG_FORMAT!r}
        app.conf.worker_task_log_format = {PADDED_TASK_LOG_FORMAT!r}
    """)
    ctx.note(f"`worker_log_format = {PADDED_LOG_FORMAT!r}`")
    ctx.note(f"`worker_task_log_format = {PADDED_TASK_LOG_FORMAT!r}`")
    ctx.note("Analysed WITHOUT `--log-format`: the layout is inferred from the file's own lines.")
    w = ctx.worker()
    ctx.wait_for("worker.log", r"w1@sample ready\.")
    ctx.python("""
        from proj import add, divide
        print([r.get(timeout=20) for r in [add.delay(i, i) for i in range(3)]])
        divide.delay(1, 0).get(timeout=20, propagate=False)
    """)
    ctx.wait_for("worker.log", r"raised unexpected: ZeroDivisionError")
    ctx.stop(w)
    ctx.keep("worker.log")


JOURNALD = Path("/lib/systemd/systemd-journald")
JOURNAL_SOCKET = Path("/run/systemd/journal/stdout")


def _journald_running() -> bool:
    if not JOURNAL_SOCKET.exists():
        return False
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(JOURNAL_SOCKET))
        return True
    return False


def ensure_journald(ctx: Ctx) -> None:
    """journald, started by hand when no init runs it (a container has no systemd as pid 1)."""
    if _journald_running():
        ctx.note("systemd-journald was already running.")
        return
    if not JOURNALD.exists():
        raise ScenarioError(f"{JOURNALD} is not installed")
    Path("/run/systemd/journal").mkdir(parents=True, exist_ok=True)
    ctx.spawn([str(JOURNALD)], log="journald.out")
    for _ in range(50):
        if _journald_running():
            ctx.note("systemd-journald was started by hand (`mkdir -p /run/systemd/journal; "
                     "/lib/systemd/systemd-journald`): no init runs it on this machine.")
            return
        time.sleep(0.1)
    raise ScenarioError("systemd-journald did not open its stdout socket")


def journald_worker(ctx: Ctx) -> None:
    ensure_journald(ctx)
    port = ctx.redis()
    _app(ctx, port)
    tag = f"celery-{ctx.work.name[-8:]}"
    since = time.strftime("%Y-%m-%d %H:%M:%S")
    time.sleep(1)
    w = ctx.spawn(["systemd-cat", "-t", tag, str(BIN / "celery"), "-A", "proj", "worker", "-P", "prefork", "-c", "2",
                   "--loglevel=INFO", "-n", "w1@sample"])

    def journal(*args: str) -> str:
        r = subprocess.run(["journalctl", "--no-pager", "-t", tag, "--since", since, *args], capture_output=True,
                           text=True)
        return r.stdout

    def wait(pattern: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pattern in journal():
                return
            time.sleep(0.3)
        raise ScenarioError(f"journal: {pattern!r} not seen within {timeout}s")

    wait("w1@sample ready.")
    ctx.python("""
        from proj import add, divide
        print([r.get(timeout=20) for r in [add.delay(i, i) for i in range(3)]])
        divide.delay(1, 0).get(timeout=20, propagate=False)
    """)
    wait("raised unexpected: ZeroDivisionError")
    time.sleep(0.5)
    ctx.stop(w)
    time.sleep(1)
    ctx.commands.append(f"journalctl --no-pager -t {tag} --since '{since}' -o short-iso > worker.journal")
    ctx.save("worker.journal", journal("-o", "short-iso"))
    ctx.note(f"The worker ran under `systemd-cat -t {tag}` without `-f`: Celery logged to stderr, which journald "
             "stored line by line; `worker.journal` is `journalctl -o short-iso` of that tag, unedited.")


SCENARIOS = [
    Scenario("custom-log-format-padded", "A custom worker_log_format with a padded level "
             "(`%(levelname)-7s`) and a matching task format, analysed without --log-format: three tasks succeed, "
             "one raises ZeroDivisionError.", custom_log_format_padded, needs=("redis",)),
    Scenario("journald-worker", "A worker whose output goes through journald (systemd-cat), copied with "
             "`journalctl -o short-iso`: three tasks succeed, one raises ZeroDivisionError.", journald_worker,
             needs=("redis",)),
]
