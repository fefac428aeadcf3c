"""Layouts as operators have them: a padded custom `worker_log_format`, a worker logging through journald."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from harness import BIN, PY, Ctx, Scenario, ScenarioError

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


# --- a worker in a container, copied with `docker-compose logs` --------------------------------------
DOCKERD = Path("/usr/sbin/dockerd")
# no registry is reached: an image of four symlinks (bin, lib, lib64, sbin → usr/…), the host's /usr,
# /etc, Python and the app bind-mounted read-only, the host's network (the scenario's redis-server)
HOSTFS_IMAGE = "cpm-hostfs:empty"
COMPOSE = """
    version: "2.4"
    services:
      worker:
        image: {image}
        network_mode: host
        working_dir: {work}
        environment:
          PYTHONPATH: {work}
          PYTHONUNBUFFERED: "1"
        volumes:
          - /usr:/usr:ro
          - /etc:/etc:ro
          - {python}:{python}:ro
          - {venv}:{venv}:ro
          - {work}:{work}
        command: ["{celery}", "-A", "proj", "worker", "-P", "prefork", "-c", "2", "--loglevel=INFO", "-n", "w1@sample"]
"""


def _docker_ok() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def ensure_dockerd(ctx: Ctx) -> None:
    if _docker_ok():
        ctx.note("dockerd was already running.")
        return
    if not DOCKERD.exists():
        raise ScenarioError("dockerd is not installed (apt-get install docker.io docker-compose)")
    ctx.spawn([str(DOCKERD), "--iptables=false", "--bridge=none"], log="dockerd.out")
    for _ in range(300):
        if _docker_ok():
            ctx.note("dockerd (docker.io 20.10 from apt) was started by hand with `--iptables=false --bridge=none`.")
            return
        time.sleep(0.2)
    raise ScenarioError("dockerd did not come up")


def _hostfs_image(ctx: Ctx) -> None:
    root = ctx.work / "hostfs"
    root.mkdir()
    for d in ("tmp", "work"):
        (root / d).mkdir()
    for link in ("bin", "lib", "lib64", "sbin"):
        (root / link).symlink_to(f"usr/{link}")
    tar = subprocess.run(["tar", "-cC", str(root), "."], capture_output=True, check=True).stdout
    shutil.rmtree(root)
    r = subprocess.run(["docker", "import", "-", HOSTFS_IMAGE], input=tar, capture_output=True)
    if r.returncode != 0:
        raise ScenarioError(f"docker import failed: {r.stderr.decode(errors='replace')}")
    ctx.commands.append(f"tar -cC hostfs . | docker import - {HOSTFS_IMAGE}  # bin, lib, lib64, sbin -> usr/…")


def compose_worker(ctx: Ctx) -> None:
    ensure_dockerd(ctx)
    _hostfs_image(ctx)
    port = ctx.redis()
    _app(ctx, port)
    python = Path(os.path.realpath(PY)).parent.parent  # the interpreter's prefix the venv links to
    ctx.write("docker-compose.yml", COMPOSE.format(image=HOSTFS_IMAGE, work=ctx.work, python=python,
                                                   venv=BIN.parent, celery=BIN / "celery"))
    project = f"cpm{ctx.work.name[-8:].lower().replace('_', '')}"
    compose = ["docker-compose", "-p", project, "-f", str(ctx.work / "docker-compose.yml")]

    def logs() -> str:
        return subprocess.run([*compose, "logs", "--no-color"], capture_output=True, text=True).stdout

    def wait(pattern: str, timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pattern in logs():
                return
            time.sleep(0.5)
        raise ScenarioError(f"compose logs: {pattern!r} not seen within {timeout}s:\n{logs()[-2000:]}")

    ctx.run([*compose, "up", "-d"], timeout=120)
    try:
        wait("w1@sample ready.")
        ctx.python("""
            from proj import add, divide
            print([r.get(timeout=20) for r in [add.delay(i, i) for i in range(3)]])
            divide.delay(1, 0).get(timeout=20, propagate=False)
        """)
        wait("raised unexpected: ZeroDivisionError")
        time.sleep(0.5)
        ctx.run([*compose, "stop", "-t", "10"], timeout=60)
        ctx.commands.append(f"docker-compose -p {project} logs --no-color > compose.log")
        ctx.save("compose.log", logs())
    finally:
        subprocess.run([*compose, "down"], capture_output=True, timeout=120)
        ctx.commands.append(f"docker-compose -p {project} down")
    ctx.note("The worker ran in a container of docker-compose 1.29 (service `worker`, no `-f`: Celery logged to "
             "stderr); the image is four symlinks and the host's /usr, /etc, Python and the app are bind-mounted "
             "read-only, with the host's network, so no registry was reached. `compose.log` is "
             "`docker-compose logs --no-color`, unedited.")


SCENARIOS.append(Scenario(
    "compose-worker", "A worker in a docker-compose service, copied with `docker-compose logs --no-color` "
    "(`worker_1  | ` prefixes): three tasks succeed, one raises ZeroDivisionError.", compose_worker,
    needs=("redis",)))


# --- a worker container killed by the kernel's OOM killer under a docker memory limit ----------------
OOM_LIMIT = "200m"
OOM_HOSTNAME = "cpm-oom-worker"
OOM_COMPOSE = """
    version: "2.4"
    services:
      worker:
        image: {image}
        network_mode: host
        hostname: {hostname}
        mem_limit: {limit}
        memswap_limit: {limit}
        working_dir: {work}
        environment:
          PYTHONPATH: {work}
          PYTHONUNBUFFERED: "1"
        volumes:
          - /usr:/usr:ro
          - /etc:/etc:ro
          - {python}:{python}:ro
          - {venv}:{venv}:ro
          - {work}:{work}
        command: ["{celery}", "-A", "proj", "worker", {pool}, "--loglevel=INFO"]
"""


def container_oom(ctx: Ctx, prefork: bool = False) -> None:
    """The whole worker (pid 1 of its container, `-P solo`) runs a task that allocates until the kernel kills
    it; with `prefork`, a pool child runs it, is killed, and the container is stopped afterwards."""
    from scenarios.kernel import HOG, _dmesg
    from scenarios.stuck import _app as _stuck_app

    ensure_dockerd(ctx)
    _hostfs_image(ctx)
    port = ctx.redis()
    _stuck_app(ctx, port, HOG)
    python = Path(os.path.realpath(PY)).parent.parent
    pool_args = '"-P", "prefork", "-c", "1"' if prefork else '"-P", "solo"'
    ctx.write("docker-compose.yml", OOM_COMPOSE.format(image=HOSTFS_IMAGE, work=ctx.work, python=python,
                                                       venv=BIN.parent, celery=BIN / "celery", limit=OOM_LIMIT,
                                                       hostname=OOM_HOSTNAME, pool=pool_args))
    project = f"cpm{ctx.work.name[-8:].lower().replace('_', '')}"
    compose = ["docker-compose", "-p", project, "-f", str(ctx.work / "docker-compose.yml")]

    def logs() -> str:
        return subprocess.run([*compose, "logs", "--no-color"], capture_output=True, text=True).stdout

    def wait(pattern: str, timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pattern in logs():
                return
            time.sleep(0.5)
        raise ScenarioError(f"compose logs: {pattern!r} not seen within {timeout}s:\n{logs()[-2000:]}")

    before = len(_dmesg())
    ctx.run([*compose, "up", "-d"], timeout=120)
    try:
        wait(f"celery@{OOM_HOSTNAME} ready.")
        cid = subprocess.run([*compose, "ps", "-q", "worker"], capture_output=True, text=True).stdout.strip()
        ctx.python("""
            from proj import add, hog
            print(add.delay(2, 2).get(timeout=20))
            hog.delay(16)
        """)
        if prefork:
            wait("WorkerLostError('Worker exited prematurely: signal 9 (SIGKILL)")
            time.sleep(0.5)
            ctx.python("""
                from proj import add
                print(add.delay(3, 4).get(timeout=20))
            """)
            ctx.run([*compose, "stop", "-t", "10"], timeout=60)
        end = time.monotonic() + 90
        while time.monotonic() < end:
            r = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", cid], capture_output=True, text=True)
            if r.stdout.strip() == "false":
                break
            time.sleep(0.5)
        else:
            raise ScenarioError(f"the worker container was not killed:\n{logs()[-2000:]}")
        time.sleep(1)
        ctx.commands.append(f"docker inspect {cid} > inspect.json")
        inspect = subprocess.run(["docker", "inspect", cid], capture_output=True, text=True, check=True).stdout
        ctx.save("inspect.json", inspect)
        ctx.commands.append(f"docker-compose -p {project} logs --no-color > compose.log")
        ctx.save("compose.log", logs())
        ctx.commands.append(f"docker-compose -p {project} ps > compose-ps.txt")
        ctx.save("compose-ps.txt", subprocess.run([*compose, "ps"], capture_output=True, text=True).stdout)
    finally:
        subprocess.run([*compose, "down"], capture_output=True, timeout=120)
        ctx.commands.append(f"docker-compose -p {project} down")
    window = _dmesg()[before:]
    if not any("Killed process" in ln for ln in window):
        raise ScenarioError("the kernel logged no OOM kill in the run window")
    ctx.save("dmesg.txt", "\n".join(window) + "\n")
    ctx.commands.append(f"dmesg | tail -n +{before + 1} > dmesg.txt  # the kernel's lines of the run window")
    pool = ("`-P prefork -c 1`: the kernel's OOM killer kills the pool child running `proj.hog`; the main "
            "process (pid 1 of the container) logs WorkerLostError, runs one more task, and the container is "
            "stopped with `docker-compose stop` (the exit code is pid 1's, not 137); docker still says "
            "`OOMKilled: true` (moby sets it on any OOM event of the container's cgroup). billiard logs the "
            "child's pid in the container's pid namespace, the kernel the host's."
            if prefork else
            "`-P solo`: the worker is pid 1 of the container and runs the task itself, so the kernel's OOM killer "
            "kills the whole worker and the container exits with 137 (with prefork the killer picks the pool "
            "child that grew: see container-oom-prefork).")
    ctx.note(f"The worker ran in a docker-compose 1.29 service with `mem_limit: {OOM_LIMIT}` and "
             f"`memswap_limit: {OOM_LIMIT}`, `hostname: {OOM_HOSTNAME}`, no `-n` (node name "
             f"`celery@{OOM_HOSTNAME}`) and {pool} `proj.hog` allocates 16 MiB at a time. The image and mounts "
             "are those of compose-worker.")
    ctx.note("`inspect.json` is `docker inspect` of the killed container, `compose.log` is `docker-compose logs "
             "--no-color`, `compose-ps.txt` is `docker-compose ps` after the kill, `dmesg.txt` every kernel line "
             "of the run window (plain `dmesg`), all unedited.")


SCENARIOS.append(Scenario(
    "container-oom", "A worker container (`-P solo`, pid 1) under a docker memory limit runs a task that keeps "
    "allocating until the kernel's OOM killer kills it: `docker inspect` says `\"OOMKilled\": true`, exit code "
    "137; `docker-compose logs` and `dmesg` of the kill.", container_oom, needs=("redis",)))


SCENARIOS.append(Scenario(
    "container-oom-prefork", "A prefork worker container under a docker memory limit: the kernel's OOM killer "
    "kills the pool child running a task that keeps allocating; billiard logs WorkerLostError, the container "
    "keeps running until stopped, and `docker inspect` still says `\"OOMKilled\": true`.",
    lambda ctx: container_oom(ctx, prefork=True), needs=("redis",)))
