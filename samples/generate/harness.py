"""Run real Celery workers into real failures and keep what they leave behind.

A scenario gets a `Ctx`: a scratch directory with the Celery app it wrote, helpers to start
a worker, its own broker, a client snippet, and to copy artifacts into `samples/<name>/`.
Everything started is stopped by pid (whole process group), never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent


class ScenarioError(RuntimeError):
    pass


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[Ctx], None]
    needs: tuple[str, ...] = ()  # "redis", "rabbitmq", "postgres", "mariadb", "gdb", "py-spy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise ScenarioError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("celery", "kombu", "billiard", "amqp", "redis", "py-spy", "psycopg2-binary", "SQLAlchemy",
                "PyMySQL", "filelock"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


@dataclass
class Ctx:
    scenario: Scenario
    work: Path
    out: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # what was run, for the README
    notes: list[str] = field(default_factory=list)

    # --- the app -------------------------------------------------------------------------
    def write(self, name: str, text: str) -> Path:
        p = self.work / name
        p.write_text(textwrap.dedent(text))
        return p

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PYTEST"))}
        env["PYTHONPATH"] = str(self.work)
        env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    # --- processes -----------------------------------------------------------------------
    def spawn(self, argv: Sequence[str], *, log: str | None = None, env: dict[str, str] | None = None,
              preexec: Callable[[], None] | None = None, record: bool = True) -> subprocess.Popen[bytes]:
        """Start a process in its own session so it and its children can be stopped by pgid."""
        out = open(self.work / log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        if record:
            self.commands.append(" ".join(argv))
        p = subprocess.Popen(list(argv), cwd=self.work, env=env or self.env(), stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec)
        self.procs.append(p)
        return p

    def worker(self, *args: str, app: str = "proj", node: str = "w1@sample", logfile: str = "worker.log",
               concurrency: int = 2, env: dict[str, str] | None = None,
               preexec: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
        """A real prefork worker at INFO, logging to `logfile`; stdout/stderr go to `<logfile>.out`."""
        argv = [str(BIN / "celery"), "-A", app, "worker", "-P", "prefork", "-c", str(concurrency),
                "--loglevel=INFO", "-n", node, "-f", logfile, *args]
        return self.spawn(argv, log=f"{logfile}.out", env=env, preexec=preexec)

    def python(self, code: str, *, timeout: float = 60, check: bool = True,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a client snippet (send tasks, inspect) in the app's directory and wait for it."""
        code = textwrap.dedent(code)
        self.commands.append(f"python -c {code!r}")
        r = subprocess.run([PY, "-c", code], cwd=self.work, env=env or self.env(), capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise ScenarioError(f"client snippet failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def run(self, argv: Sequence[str], *, timeout: float = 60, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        self.commands.append(" ".join(argv))
        r = subprocess.run(list(argv), cwd=self.work, env=env or self.env(), capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise ScenarioError(f"{argv[0]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def stop(self, p: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        """Stop a process group we started: `sig`, then SIGKILL after `grace` seconds."""
        if p.poll() is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, sig)
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)  # leftovers in the group (pool children)

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            self.stop(p, grace=10)

    # --- waiting on what the software writes ---------------------------------------------
    def read(self, name: str) -> str:
        p = self.work / name
        return p.read_text(errors="replace") if p.exists() else ""

    def wait_for(self, name: str, pattern: str, *, timeout: float = 60, count: int = 1) -> re.Match[str]:
        """Wait until `pattern` (a regex) occurs `count` times in the file `name`."""
        end = time.monotonic() + timeout
        rx = re.compile(pattern, re.M)
        while time.monotonic() < end:
            found = list(rx.finditer(self.read(name)))
            if len(found) >= count:
                return found[count - 1]
            time.sleep(0.2)
        tail = "\n".join(self.read(name).splitlines()[-30:])
        raise ScenarioError(f"{name}: /{pattern}/ x{count} not seen within {timeout}s; tail:\n{tail}")

    def wait_ready(self, logfile: str = "worker.log", timeout: float = 60) -> None:
        self.wait_for(logfile, r"\] \S+@\S+ ready\.", timeout=timeout)

    def children(self, p: subprocess.Popen[bytes]) -> list[int]:
        """Pool children of a worker, from /proc (the worker is the group leader)."""
        out = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = (d / "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[1]) == p.pid and int(d.name) != p.pid:  # ppid
                    out.append(int(d.name))
        return sorted(out)

    # --- brokers of our own ----------------------------------------------------------------
    def redis(self, *args: str, port: int | None = None) -> int:
        """A private redis-server on a free port, nothing persisted."""
        port = port or free_port()
        d = self.work / f"redis-{port}"
        d.mkdir(exist_ok=True)
        self.spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(d), *args], log=f"redis-{port}.log")
        wait_port(port)
        return port

    # --- the bundle ------------------------------------------------------------------------
    def keep(self, name: str, as_name: str | None = None) -> Path:
        """Copy an artifact from the scratch directory into the sample bundle, unchanged."""
        src = self.work / name
        if not src.exists():
            raise ScenarioError(f"artifact {name} was not produced")
        dst = self.out / (as_name or name)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return dst

    def save(self, as_name: str, text: str) -> Path:
        """Store captured tool output (a dump, inspect JSON) exactly as the tool printed it."""
        dst = self.out / as_name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(text)
        return dst

    def note(self, text: str) -> None:
        self.notes.append(text)


def _write_readme(ctx: Ctx) -> None:
    files = sorted(p.relative_to(ctx.out).as_posix() for p in ctx.out.rglob("*")
                   if p.is_file() and p.name not in ("README.md", "expected.json", "produced.json"))
    lines = [f"# {ctx.scenario.name}", "", ctx.scenario.description.strip(), "",
             "Produced by the real software on this machine with:", "",
             "```", f"python samples/generate/run.py {ctx.scenario.name}", "```", "",
             "Artifacts (unedited output of the software):", ""]
    lines += [f"- `{f}`" for f in files]
    if ctx.notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in ctx.notes]
    lines += ["", "Commands the generator ran (scratch paths vary):", "", "```"]
    lines += [c.replace(str(ctx.work), "$WORK").replace(f"{BIN}/", "").replace(PY, "python")
              for c in ctx.commands]
    lines += ["```", ""]
    (ctx.out / "README.md").write_text("\n".join(lines))
    (ctx.out / "produced.json").write_text(json.dumps({"versions": versions()}, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def _scratch(name: str) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=f"cpm-{name}-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def produce(scenario: Scenario, out_root: Path = SAMPLES, keep_scratch: bool = False) -> Path:
    """Run one scenario and (re)write its bundle folder. `expected.json` is left untouched."""
    out = out_root / scenario.name
    out.mkdir(parents=True, exist_ok=True)
    for p in out.iterdir():
        if p.name != "expected.json":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    with _scratch(scenario.name) as work:
        ctx = Ctx(scenario, work, out)
        try:
            scenario.run(ctx)
        finally:
            ctx.stop_all()
            if keep_scratch:
                shutil.copytree(work, out_root / f".scratch-{scenario.name}", dirs_exist_ok=True)
        _write_readme(ctx)
    return out
