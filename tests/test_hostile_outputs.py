"""A hostile bundle writes nothing but the outputs asked for (hardening issue, "How it is checked").

One bundle carries a bit of everything an attacker controls: traversal and link members in an
archive, a core sidecar naming an option, gdbinit files, escape sequences and secrets in log
lines. Every format and every export target runs on it from inside the bundle's folder; the only
new files anywhere under the test's folder are the chosen outputs.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from analyzer.renderers import registry

LOG = (
    "[2024-05-01 10:00:00,000: ERROR/MainProcess] consumer: Cannot connect to "
    "redis://:hunter2secret@broker:6379/0: Error 111 connecting to broker:6379. Connection refused..\n"
    "[2024-05-01 10:00:01,000: ERROR/MainProcess] \x1b]52;c;cm0gLXJmIH4=\x07 \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\n"
)


def _tar(members: dict[str, bytes], links: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def _bundle(root: Path) -> Path:
    bundle = root / "bundle"
    bundle.mkdir()
    (bundle / "worker.log").write_text(LOG)
    (bundle / "core.json").write_text('{"executable": "--command=cmds.gdb"}')
    (bundle / "cmds.gdb").write_text(f"shell touch {root}/ran\n")
    (bundle / ".gdbinit").write_text(f"shell touch {root}/ran\n")
    (bundle / "nested.tgz").write_bytes(_tar(
        {"../escaped.log": LOG.encode(), "/abs.log": LOG.encode(), "ok.log": LOG.encode()},
        {"link.log": "/etc/passwd", "up.log": "../../escaped"}))
    return bundle


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "analyzer", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.mark.parametrize("fmt", sorted(registry()))
def test_analyze_writes_only_its_output(tmp_path: Path, fmt: str) -> None:
    bundle = _bundle(tmp_path)
    out = tmp_path / "out" / f"report.{fmt}"
    out.parent.mkdir()
    before = _tree(tmp_path)
    r = _run(["analyze", ".", "--format", fmt, "-o", str(out)], cwd=bundle)
    assert r.returncode in (0, 1, 2), r.stderr
    assert _tree(tmp_path) - before == {"out/report." + fmt}
    text = out.read_bytes()
    assert b"hunter2secret" not in text and b"\x1b]" not in text and b"root:x:0" not in text


@pytest.mark.parametrize("to", ["csv", "parquet", "ndjson"])
def test_export_writes_only_into_its_directory(tmp_path: Path, to: str) -> None:
    bundle = _bundle(tmp_path)
    before = _tree(tmp_path)
    r = _run(["export", ".", str(tmp_path / "frames"), "--to", to], cwd=bundle)
    assert r.returncode in (0, 1, 2), r.stderr
    new = _tree(tmp_path) - before
    assert new and all(p == "frames" or p.startswith("frames" + os.sep) for p in new)
    for p in (tmp_path / "frames").iterdir():
        assert b"hunter2secret" not in p.read_bytes()
