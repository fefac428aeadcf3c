"""Bundles read through fsspec URLs (issue 18): over HTTP from a local `http.server` and from a
local S3-compatible server (moto's server mode), both on loopback and started here. The reports
equal those of the same bundles read from disk; credentials never reach an output."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analyzer.cli import app
from analyzer.fleet.remote import shown_location
from tests.conftest import REQUIRE_LIVE, SAMPLES

runner = CliRunner()
CHOSEN = ("broker-refused", "healthy", "worker-sigkill")
SECRET = "Zq8secretKEYnotInReports0"


def _need(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        if REQUIRE_LIVE:
            pytest.fail(f"CPM_REQUIRE_LIVE=1 but {module} is not installed (the [remote] extra)")
        pytest.skip(f"needs {module} (pip install 'celery-postmortem[remote]')")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two bundle directories and one bundle as an archive."""
    root = tmp_path_factory.mktemp("fleet")
    for name in CHOSEN[:2]:
        shutil.copytree(SAMPLES / name, root / name)
    with tarfile.open(root / "worker-sigkill.tgz", "w:gz") as tar:
        for p in sorted((SAMPLES / "worker-sigkill").iterdir()):
            tar.add(p, arcname=p.name)
    return root


@pytest.fixture(scope="module")
def local(fleet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local")
    r = runner.invoke(app, ["analyze-many", str(fleet), "--out-dir", str(out), "-f", "json", "-f", "markdown",
                            "-j", "1"])
    assert r.exit_code == 0, r.output
    return out


def _same_reports(url: str, local: Path, out: Path) -> str:
    r = runner.invoke(app, ["analyze-many", url, "--out-dir", str(out), "-f", "json", "-f", "markdown", "-j", "1",
                            "--summary", "json"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in local.iterdir())
    for p in local.iterdir():
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name
    return r.stdout


@pytest.fixture(scope="module")
def http_url(fleet: Path) -> Iterator[str]:
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(fleet))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_analyze_reads_a_bundle_over_http(http_url: str, fleet: Path, tmp_path: Path) -> None:
    _need("aiohttp")
    for name in ("broker-refused/", "worker-sigkill.tgz"):
        r = runner.invoke(app, ["analyze", http_url + name, "-f", "json", "-o", str(tmp_path / "url.json")])
        assert r.exit_code == 0, r.output
        runner.invoke(app, ["analyze", str(fleet / name), "-f", "json", "-o", str(tmp_path / "disk.json")])
        assert (tmp_path / "url.json").read_bytes() == (tmp_path / "disk.json").read_bytes()
    missing = runner.invoke(app, ["analyze", http_url + "no-such-bundle/"])
    assert missing.exit_code == 2 and "no such object" in missing.stderr


def test_analyze_many_over_http_equals_from_disk(http_url: str, local: Path, tmp_path: Path) -> None:
    _need("aiohttp")
    summary = _same_reports(http_url, local, tmp_path)
    assert f'"source": "{http_url}broker-refused/"' in summary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3(fleet: Path) -> Iterator[str]:
    """A moto server on loopback with bucket `ci-artifacts` holding the fleet under `night/`; the
    endpoint and credentials only in the environment, as a user's would be."""
    _need("moto.server")
    _need("s3fs")
    import boto3

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ACCESS_KEY_ID": "AKIAFLEETTEST", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("moto server did not start")
                time.sleep(0.2)
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
        client.create_bucket(Bucket="ci-artifacts")
        for p in sorted(fleet.rglob("*")):
            if p.is_file():
                client.upload_file(str(p), "ci-artifacts", f"night/{p.relative_to(fleet).as_posix()}")
        yield "s3://ci-artifacts/night/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_analyze_many_from_s3_equals_from_disk_without_credentials(s3: str, local: Path, tmp_path: Path) -> None:
    summary = _same_reports(s3, local, tmp_path)
    assert '"source": "s3://ci-artifacts/night/broker-refused/"' in summary
    texts = [summary, *(p.read_text() for p in tmp_path.iterdir())]
    assert not any(SECRET in t or "AKIAFLEETTEST" in t for t in texts)


def test_analyze_reads_one_bundle_from_s3(s3: str, fleet: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["analyze", s3 + "worker-sigkill.tgz", "-f", "json"])
    assert r.exit_code == 0, r.output
    disk = runner.invoke(app, ["analyze", str(fleet / "worker-sigkill.tgz"), "-f", "json"])
    assert r.stdout == disk.stdout


def test_shown_locations_lose_user_password_and_query() -> None:
    url = "https://ci:hunter2@artifacts.example/run/17.tgz?X-Amz-Signature=abc&token=t"
    assert shown_location(url) == "https://artifacts.example/run/17.tgz"
    assert shown_location(f"cannot read {url}: 403") == "cannot read https://artifacts.example/run/17.tgz: 403"


def test_file_urls_read_as_paths(fleet: Path, local: Path, tmp_path: Path) -> None:
    _need("fsspec")
    summary = _same_reports(fleet.as_uri() + "/", local, tmp_path)
    assert f'"source": "{fleet.as_uri()}/healthy/"' in summary
