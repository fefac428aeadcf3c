"""Logs written by old Celery releases (3.1, 4.4, 5.0), so the log parser is proven on their real formats.

Each scenario makes (or reuses) a virtualenv with the old Celery from PyPI under
`~/.cache/celery-postmortem/venvs/`, built on a pyenv CPython of the era, and runs a real prefork
worker and client from that venv against a private redis-server. The same task mix runs on every
version: three `add` calls that log through `get_task_logger`, one `divide` by zero, one `flaky`
task that retries once and then succeeds, and one `add` with a countdown that is revoked before
its ETA. Then the worker main process alone gets SIGTERM (warm shutdown).

Note: the bundle's `produced.json` is written by the harness from the generator's own venv
(Celery 5.7); the versions that really wrote these logs are in each bundle's README notes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from harness import Ctx, Scenario, ScenarioError

VENVS = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "celery-postmortem" / "venvs"
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


@dataclass(frozen=True)
class Legacy:
    name: str  # venv folder name
    python: str  # pyenv version whose interpreter builds the venv
    requirements: tuple[str, ...]  # pinned, so reruns use the same stack
    env: tuple[tuple[str, str], ...] = ()

    @property
    def root(self) -> Path:
        return VENVS / self.name

    def bin(self, tool: str) -> str:
        return str(self.root / "bin" / tool)


CELERY4 = Legacy("celery-4.4.7-py3.8", "3.8.18",
                 ("celery[redis]==4.4.7", "kombu==4.6.11", "amqp==2.6.1", "billiard==3.6.4.0", "vine==1.3.0",
                  "redis==3.5.3"))
CELERY3 = Legacy("celery-3.1.26-py3.6", "3.6.15",
                 ("celery==3.1.26.post2", "kombu==3.0.37", "amqp==1.4.9", "billiard==3.3.0.23",
                  "anyjson==0.3.3", "redis==2.10.6"),
                 env=(("C_FORCE_ROOT", "1"),))  # 3.1 refuses/complains when run as root
CELERY50 = Legacy("celery-5.0.5-py3.8", "3.8.18",
                  ("celery[redis]==5.0.5", "kombu==5.0.2", "amqp==5.0.2", "billiard==3.6.4.0",
                   "vine==5.0.0", "click==7.1.2", "redis==3.5.3"))


def ensure_venv(ctx: Ctx, spec: Legacy) -> str:
    """Create the cached venv if it is missing or was built from other pins; return its `pip freeze`."""
    marker = spec.root / ".cpm-requirements"
    want = "\n".join(spec.requirements) + "\n"
    if not (marker.exists() and marker.read_text() == want and Path(spec.bin("celery")).exists()):
        python = PYENV / spec.python / "bin" / f"python{spec.python.rsplit('.', 1)[0]}"
        if not python.exists():
            raise ScenarioError(f"{python} is missing: install CPython {spec.python} with pyenv")
        VENVS.mkdir(parents=True, exist_ok=True)
        steps = [[str(python), "-m", "venv", "--clear", str(spec.root)],
                 [spec.bin("pip"), "install", "--disable-pip-version-check", "-q", *spec.requirements]]
        for argv in steps:
            ctx.commands.append(" ".join(argv).replace(str(VENVS), "~/.cache/celery-postmortem/venvs"))
            r = subprocess.run(argv, capture_output=True, text=True, timeout=540)
            if r.returncode != 0:
                raise ScenarioError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        marker.write_text(want)
    r = subprocess.run([spec.bin("pip"), "freeze", "--disable-pip-version-check"], capture_output=True,
                       text=True, timeout=120, check=True)
    pins = (ln.strip() for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("-"))
    return " ".join(sorted(pins, key=str.lower))


def legacy_env(ctx: Ctx, spec: Legacy) -> dict[str, str]:
    env = ctx.env(**dict(spec.env))
    env["PATH"] = f"{spec.root / 'bin'}:{env['PATH']}"
    env.pop("VIRTUAL_ENV", None)
    return env


def legacy_worker(ctx: Ctx, spec: Legacy, *args: str) -> subprocess.Popen[bytes]:
    """The same worker as `ctx.worker()`, but with the old venv's `celery` binary."""
    argv = [spec.bin("celery"), "-A", "proj", "worker", "-P", "prefork", "-c", "2", "--loglevel=INFO",
            "-n", "w1@sample", "-f", "worker.log", *args]
    return ctx.spawn(argv, log="worker.log.out", env=legacy_env(ctx, spec))


def legacy_python(ctx: Ctx, spec: Legacy, code: str, timeout: float = 60) -> str:
    """A client snippet run by the old venv's interpreter (old clients speak the old message protocol)."""
    code = textwrap.dedent(code)
    ctx.commands.append(f"python -c {code!r}  # {spec.name}")
    r = subprocess.run([spec.bin("python"), "-c", code], cwd=ctx.work, env=legacy_env(ctx, spec),
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise ScenarioError(f"client snippet failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


def warm_shutdown(ctx: Ctx, w: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM to the worker main process only (as `kill PID` would), then wait for it to exit."""
    ctx.commands.append("kill -TERM <worker pid>")
    os.kill(w.pid, signal.SIGTERM)
    try:
        w.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        raise ScenarioError(f"worker did not finish its warm shutdown within {grace}s") from None
    finally:
        ctx.stop(w)  # reaps anything left in the group


TASKS = """
    import os
    from celery.utils.log import get_task_logger

    log = get_task_logger(__name__)
    ATTEMPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attempts")


    class UpstreamDown(Exception):
        pass


    @app.task
    def add(x, y):
        log.info("adding %s + %s", x, y)
        return x + y


    @app.task
    def divide(x, y):
        return x / y


    @app.task(bind=True)
    def flaky(self, url):
        with open(ATTEMPTS, "a+") as f:
            f.write("x")
            f.seek(0)
            n = len(f.read())
        log.info("attempt %d for %s", n, url)
        if n == 1:
            raise self.retry(exc=UpstreamDown("upstream down"), countdown=1, max_retries=3)
        return "fetched"
"""

APP4 = """
    from celery import Celery

    app = Celery("proj", broker="redis://127.0.0.1:{port}/0", backend="redis://127.0.0.1:{port}/1")
"""

APP3 = """
    from celery import Celery

    app = Celery("proj", broker="redis://127.0.0.1:{port}/0", backend="redis://127.0.0.1:{port}/1")
    app.conf.update(
        CELERY_ACCEPT_CONTENT=["json"],
        CELERY_TASK_SERIALIZER="json",
        CELERY_RESULT_SERIALIZER="json",
    )
"""


def task_mix(ctx: Ctx, spec: Legacy, app: str) -> None:
    freeze = ensure_venv(ctx, spec)
    ctx.note(f"Written by a real worker and client from a venv (CPython {spec.python}, `pip install "
             f"{' '.join(spec.requirements)}`, cached under ~/.cache/celery-postmortem/venvs/{spec.name}) "
             f"holding: {freeze}. `produced.json` lists the generator's own venv, not these.")
    port = ctx.redis()
    ctx.write("proj.py", textwrap.dedent(app).format(port=port) + textwrap.dedent(TASKS))
    w = legacy_worker(ctx, spec)
    ctx.wait_ready()
    # 1. a task with a countdown, revoked while it waits for its ETA in the worker
    out = legacy_python(ctx, spec, """
        from proj import add
        print(add.apply_async((100, 100), countdown=8).id)
    """)
    doomed = out.split()[-1]
    ctx.wait_for("worker.log", rf"(Received task: |Task )proj\.add\[{re.escape(doomed)}\]")
    legacy_python(ctx, spec, f"""
        from proj import app
        app.control.revoke({doomed!r})
    """)
    # 2. three successes (task logger), one failure, one retry that then succeeds
    legacy_python(ctx, spec, """
        from proj import add, divide, flaky
        print([r.get(timeout=30) for r in [add.delay(i, i) for i in range(3)]])
        print(divide.delay(1, 0).get(timeout=30, propagate=False))
        print(flaky.delay("https://upstream.invalid/data").get(timeout=30))
    """, timeout=90)
    ctx.wait_for("worker.log", r"proj\.flaky\[\S+\] succeeded in")
    ctx.wait_for("worker.log", rf"Discarding revoked task: proj\.add\[{re.escape(doomed)}\]", timeout=30)
    warm_shutdown(ctx, w)
    ctx.note(f"`proj.add[{doomed}]` was sent with countdown=8 and revoked with `app.control.revoke` after "
             "the worker received it; `proj.divide(1, 0)` raises ZeroDivisionError (an application error); "
             "`proj.flaky` retries once (countdown=1) and then succeeds. Warm shutdown: SIGTERM to the main "
             "process.")
    ctx.keep("worker.log")
    ctx.keep("worker.log.out", "worker.stdout")


def celery4_format(ctx: Ctx) -> None:
    task_mix(ctx, CELERY4, APP4)


def celery3_format(ctx: Ctx) -> None:
    task_mix(ctx, CELERY3, APP3)


def celery5_early(ctx: Ctx) -> None:
    task_mix(ctx, CELERY50, APP4)


_MIX = ("three tasks succeed (one logs through get_task_logger), one raises ZeroDivisionError, one retries "
        "once and then succeeds, one countdown task is revoked before its ETA; warm shutdown.")

SCENARIOS = [
    Scenario("celery4-format", "Celery 4.4.7 (CPython 3.8, kombu 4.6.11, redis-py 3.5.3) default log "
             f"format: {_MIX}", celery4_format, needs=("redis",)),
    Scenario("celery3-format", "Celery 3.1.26.post2 (CPython 3.6, kombu 3.0.37, redis-py 2.10.6) default "
             f"log format: {_MIX}", celery3_format, needs=("redis",)),
    Scenario("celery5-early", "Celery 5.0.5 (CPython 3.8, kombu 5.0.2, redis-py 3.5.3) default log format, "
             f"the last 5.x series with `Received task:` wording: {_MIX}", celery5_early, needs=("redis",)),
]
