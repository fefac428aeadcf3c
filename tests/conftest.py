"""Shared fixtures. Live services: a test that needs one calls `require(...)`; it skips with the
reason when the service is absent, and fails instead when CPM_REQUIRE_LIVE=1 (set by .ci/run),
so CI proves the live tests ran."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
REQUIRE_LIVE = os.environ.get("CPM_REQUIRE_LIVE") == "1"


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


SERVICES = {
    "redis": lambda: shutil.which("redis-server") is not None and _port_open(6379),
    "redis-server": lambda: shutil.which("redis-server") is not None,
    "rabbitmq": lambda: _port_open(5672),
    "postgres": lambda: _port_open(5432),
    "mariadb": lambda: _port_open(3306),
    "gdb": lambda: shutil.which("gdb") is not None,
    "lnav": lambda: shutil.which("lnav") is not None,
    "cc": lambda: shutil.which("cc") is not None,
    "py-spy": lambda: (Path(os.sys.executable).parent / "py-spy").exists() or shutil.which("py-spy") is not None,
    "chromium": lambda: shutil.which("chromium") is not None or shutil.which("chromium-browser") is not None,
}


def require(*names: str) -> None:
    missing = [n for n in names if not SERVICES[n]()]
    if not missing:
        return
    reason = f"needs {', '.join(missing)} (absent here)"
    if REQUIRE_LIVE:
        pytest.fail(f"CPM_REQUIRE_LIVE=1 but this test {reason}")
    pytest.skip(reason)


def sample_dirs() -> list[Path]:
    return sorted(p.parent for p in SAMPLES.glob("*/expected.json"))
