"""A bundle's core file never makes gdb run anything from the bundle (hardening issue, item 1).

gdb runs commands from gdbinit files, from `--command` / `-x` options and from auto-loaded
scripts beside the objects it reads. Each test plants all three kinds in a hostile bundle, each
creating a marker file, and asserts no marker appears, while the core is still read.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

import analyzer
from analyzer.sources import gdb_mi
from tests.conftest import require

PYTHON = Path(os.path.realpath(sys.executable))


def _script(marker: Path) -> str:
    """gdb commands that leave `marker` behind if gdb ever runs them."""
    return f"shell touch {marker}-shell\npython open('{marker}-python', 'w').close()\n"


@pytest.fixture(scope="module")
def python_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real core of a Python process with one thread waiting on a lock."""
    require("gdb")
    out = tmp_path_factory.mktemp("core") / "core"
    code = ("import threading, time\na = threading.Lock(); a.acquire()\n"
            "threading.Thread(target=a.acquire, name='waiter').start()\ntime.sleep(120)\n")
    proc = subprocess.Popen([str(PYTHON), "-c", code])
    try:
        time.sleep(1.5)
        subprocess.run(["gdb", "-batch", "-nx", "-p", str(proc.pid), "-ex", f"gcore {out}"], check=True,
                       capture_output=True, timeout=120)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return out


def _hostile_bundle(root: Path, core: Path, executable: str, marker: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy(core, root / "core")
    (root / "core.json").write_text(f'{{"executable": "{executable}"}}')
    if not (root / executable).exists():
        (root / executable).write_text("")  # the exploit's empty file named like an option
    (root / "cmds.gdb").write_text(_script(marker))
    (root / ".gdbinit").write_text(_script(marker))
    # an auto-load script for the executable, were it loaded from the bundle by that name
    (root / "python3-gdb.py").write_text(f"open('{marker}-autoload', 'w').close()\n")
    (root / "python3-gdb.gdb").write_text(_script(marker))
    return root


def _hostile_home(home: Path, marker: Path) -> dict[str, str]:
    (home / ".config" / "gdb").mkdir(parents=True)
    (home / ".gdbinit").write_text(_script(marker))
    (home / ".config" / "gdb" / "gdbinit").write_text(_script(marker))
    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}


def _markers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.rglob("marker*"))


def _analyze_inside(bundle: Path, env: dict[str, str]) -> str:
    """`analyze .` run inside the bundle, as the issue's exploit did."""
    r = subprocess.run([sys.executable, "-m", "analyzer", "analyze", ".", "--format", "json"], cwd=bundle,
                       env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode in (0, 1, 2), r.stderr
    return r.stdout


@pytest.mark.parametrize("executable", ["--command=cmds.gdb", "-x cmds.gdb", "cmds.gdb", "--eval-command=shell id"])
def test_a_sidecar_value_never_runs_commands(python_core: Path, tmp_path: Path, executable: str) -> None:
    marker = tmp_path / "marker"
    bundle = _hostile_bundle(tmp_path / "bundle", python_core, executable, marker)
    out = _analyze_inside(bundle, _hostile_home(tmp_path / "home", marker))
    assert _markers(tmp_path) == []
    assert '"kind": "core"' in out  # the core was handed to gdb all the same


def test_gdb_command_line_holds_no_bundle_value(python_core: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from pygdbmi import gdbcontroller

    seen: list[list[str]] = []
    real = gdbcontroller.GdbController

    def spy(*args: Any, command: list[str], **kw: Any) -> Any:
        seen.append(list(command))
        return real(*args, command=command, **kw)

    monkeypatch.setattr(gdbcontroller, "GdbController", spy)
    marker = tmp_path / "marker"
    bundle = _hostile_bundle(tmp_path / "bundle", python_core, "python3", marker)
    shutil.copy(PYTHON, bundle / "python3")
    b = analyzer.open_bundle(bundle)
    assert not b.threads.is_empty()  # the bundle's own executable resolved the core's functions
    assert seen == [list(gdb_mi.GDB_COMMAND)]
    for flag in ("-nx", "-nh", "set auto-load off"):
        assert flag in gdb_mi.GDB_COMMAND
    assert _markers(tmp_path) == []


def test_an_absolute_sidecar_path_is_not_used_but_the_users_option_is(python_core: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(python_core, bundle / "core")
    (bundle / "core.json").write_text(f'{{"executable": "{PYTHON}"}}')
    b = analyzer.open_bundle(bundle)
    notes = [n for c in b.coverage for n in c.notes]
    assert b.threads.is_empty()
    assert any("outside the bundle and was not used" in n and "--core-executable" in n for n in notes)
    mine = analyzer.open_bundle(bundle, core_executable=PYTHON)
    assert set(mine.threads["state"]) == {"sleep", "lock_wait"}


def test_an_executable_that_leaves_the_bundle_is_refused(python_core: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "cores").mkdir(parents=True)
    shutil.copy(python_core, bundle / "cores" / "core")
    shutil.copy(PYTHON, tmp_path / "python3")  # a real file, just outside the bundle
    (bundle / "cores" / "core.json").write_text('{"executable": "../../python3"}')
    notes = [n for c in analyzer.open_bundle(bundle).coverage for n in c.notes]
    assert any("leaves the bundle; ignored" in n for n in notes)


def test_names_with_spaces_and_quotes_reach_gdb_whole(python_core: Path, tmp_path: Path) -> None:
    folder = tmp_path / 'odd "dir" \\ name'
    folder.mkdir()
    shutil.copy(python_core, folder / "core file")
    shutil.copy(PYTHON, folder / "py thon")
    (folder / "core file.json").write_text('{"executable": "py thon"}')
    b = analyzer.open_bundle(folder)
    assert set(b.threads["state"]) == {"sleep", "lock_wait"}


def test_an_archived_core_uses_the_archived_executable(python_core: Path, tmp_path: Path) -> None:
    sidecar = tmp_path / "core.json"
    sidecar.write_text('{"executable": "bin/python3"}')
    archive = tmp_path / "incident.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(python_core, "dumps/core")
        tar.add(sidecar, "dumps/core.json")
        tar.add(PYTHON, "dumps/bin/python3")
    b = analyzer.open_bundle(archive)
    assert set(b.threads["state"]) == {"sleep", "lock_wait"}


def test_the_cli_takes_the_users_executable(python_core: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(python_core, bundle / "core")
    run = [sys.executable, "-m", "analyzer", "analyze", str(bundle), "--format", "json"]
    r = subprocess.run([*run, "--core-executable", str(PYTHON)], capture_output=True, text=True, timeout=300,
                       check=False)
    assert '"kind": "core"' in r.stdout and "gdb resolved no function" not in r.stdout
    missing = subprocess.run([*run, "--core-executable", str(tmp_path / "nope")], capture_output=True, text=True,
                             timeout=60, check=False)
    assert missing.returncode == 2 and "--core-executable" in missing.stderr and "not a file" in missing.stderr
