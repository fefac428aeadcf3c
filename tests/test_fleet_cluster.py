"""analyze-many --cluster (issue 18): on a LocalCluster of 2 workers and on a `dask scheduler` and
`dask worker` started here as processes on loopback, the reports and the summary are the bytes of
the local run."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analyzer.cli import app
from tests.conftest import REQUIRE_LIVE, SAMPLES

runner = CliRunner()
CHOSEN = ("broker-refused", "deadlock-lock", "healthy", "worker-sigkill")


def _need_dask() -> None:
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        if REQUIRE_LIVE:
            pytest.fail("CPM_REQUIRE_LIVE=1 but dask.distributed is not installed (the [cluster] extra)")
        pytest.skip("needs dask.distributed (pip install 'celery-postmortem[cluster]')")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    for name in CHOSEN:
        shutil.copytree(SAMPLES / name, root / name)
    return root


def _run(fleet: Path, out: Path, *extra: str) -> str:
    r = runner.invoke(app, ["analyze-many", str(fleet), "--out-dir", str(out), "-f", "json", "-f", "html",
                            "--summary", "json", *extra])
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.fixture(scope="module")
def local(fleet: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("local")
    return out, _run(fleet, out, "-j", "1")


def _same(local: tuple[Path, str], out: Path, summary: str) -> None:
    assert summary == local[1]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in local[0].iterdir())
    for p in local[0].iterdir():
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name


def test_local_cluster_of_two_workers_equals_the_local_run(fleet: Path, local: tuple[Path, str],
                                                          tmp_path: Path) -> None:
    _need_dask()
    _same(local, tmp_path, _run(fleet, tmp_path, "--cluster", "local", "-j", "2"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def scheduler() -> Iterator[str]:
    """`dask scheduler` and a `dask worker` of 2 processes, started as processes on loopback."""
    _need_dask()
    from dask.distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    pytest.fail("dask scheduler did not start")
                time.sleep(0.2)
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--host",
                                       "127.0.0.1", "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_separate_scheduler_and_workers_equal_the_local_run(fleet: Path, local: tuple[Path, str], scheduler: str,
                                                            tmp_path: Path) -> None:
    _same(local, tmp_path, _run(fleet, tmp_path, "--cluster", scheduler))


def test_an_unreachable_scheduler_is_one_line_and_exit_two(fleet: Path) -> None:
    _need_dask()
    r = runner.invoke(app, ["analyze-many", str(fleet), "--cluster", f"tcp://127.0.0.1:{_free_port()}"])
    assert r.exit_code == 2
    assert "cannot reach the scheduler" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_big_bundles_are_mapped_piece_by_piece_on_the_workers(fleet: Path, local: tuple[Path, str],
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bundle counts as big and its logs are cut into pieces of 400 bytes: the pieces' map_records run
    on the cluster's workers, the partials come back and merge here into the same reports."""
    _need_dask()
    from dask.distributed import Client, LocalCluster, get_task_stream

    monkeypatch.setenv("CPM_CLUSTER_CHUNKED_BYTES", "1")
    monkeypatch.setenv("CPM_PIECE_BYTES", "400")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        with get_task_stream(client) as stream:
            summary = _run(fleet, tmp_path, "--cluster", cluster.scheduler_address)
        mapped = [t for t in stream.data if str(t["key"]).startswith("map_records")]
    _same(local, tmp_path, summary)
    assert len(mapped) > len(CHOSEN)  # pieces, not bundles
    assert {t["worker"] for t in mapped} and all(t["status"] == "OK" for t in mapped)
