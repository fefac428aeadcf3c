"""The measuring stick of issue #14 measures what it says: lnav's Celery format recognises every
header of the real sample logs (else its baseline would time lnav skipping lines), the check catches
an lnav that did not, peak RSS is each child's own, and --check-equal ignores only timing keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, require

sys.path.insert(0, str(Path(__file__).resolve().parent / "benchmarks"))
import bench_stream as B  # the benchmark is a script beside bench_parse, not a package

DEFAULT_LAYOUT_LOGS = [p for p in sorted(SAMPLES.glob("*/worker.log")) if B.count_headers(p)]


def test_some_samples_are_in_the_default_layout() -> None:
    assert len(DEFAULT_LAYOUT_LOGS) >= 10


@pytest.mark.live
@pytest.mark.parametrize("log", DEFAULT_LAYOUT_LOGS, ids=lambda p: p.parent.name)
def test_lnav_format_counts_every_header_of_a_real_log(log: Path, tmp_path: Path) -> None:
    require("lnav")
    cfg, home = B.lnav_config(tmp_path)
    _, err = B.run_lnav(B.shutil.which("lnav") or "lnav", cfg, home, log, B.count_headers(log), 60)
    assert err == "", err


@pytest.mark.live
def test_lnav_check_fails_when_the_format_is_not_loaded(tmp_path: Path) -> None:
    """lnav exits 0 on an unknown table: only the counts can tell that it did not read the lines."""
    require("lnav")
    log = SAMPLES / "app-exception" / "worker.log"
    _, home = B.lnav_config(tmp_path)
    (tmp_path / "empty-config").mkdir()
    run, err = B.run_lnav(B.shutil.which("lnav") or "lnav", tmp_path / "empty-config", home, log,
                          B.count_headers(log), 60)
    assert run.rc == 0
    assert "lnav did not recognise the lines" in err


MEASURE_BOTH = """
import json, sys
sys.path.insert(0, sys.argv[1])
import bench_stream as B
big = B.measure([sys.executable, "-c", "b = bytearray(300 << 20); b[::4096] = b'x' * len(b[::4096])"])
small = B.measure([sys.executable, "-c", "pass"])
print(json.dumps([big.rc, small.rc, big.peak_mib, small.peak_mib]))
"""


def test_peak_rss_is_each_childs_own() -> None:
    # measured from a small process, as the benchmark runs: a child forked from this big test process
    # would start with its parent's pages counted
    out = subprocess.run([sys.executable, "-c", MEASURE_BOTH, str(Path(B.__file__).parent)], capture_output=True,
                         text=True, check=True).stdout
    big_rc, small_rc, big, small = json.loads(out)
    assert big_rc == small_rc == 0
    assert big > 300
    assert small < 100  # its own, not the largest of all children so far (RUSAGE_CHILDREN)


@pytest.mark.parametrize(("text", "mib"), [("200M", 200), ("2G", 2048), ("10G", 10240), ("64", 64), ("1.5G", 1536)])
def test_parse_size(text: str, mib: int) -> None:
    assert B.parse_size(text) == mib


def test_parse_size_rejects_junk() -> None:
    with pytest.raises(B.argparse.ArgumentTypeError):
        B.parse_size("2T")


def test_parse_mode_splits_environment_from_arguments() -> None:
    assert B.parse_mode("CPM_CHUNK_BYTES=1048576 --select 'CP-B001' X=a=b") == (
        {"CPM_CHUNK_BYTES": "1048576", "X": "a=b"}, ["--select", "CP-B001"])
    assert B.parse_mode("") == ({}, [])


def test_default_mode_b_uses_the_named_chunk_variable() -> None:
    assert B.parse_args(["--chunk-env", "CPM_PIECE"]).mode_b == "CPM_PIECE=1048576"


def test_diff_reports_ignores_only_the_given_keys(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    a.write_text(json.dumps({"findings": [{"id": "f1", "elapsed_s": 1.0}], "duration_s": 2}))
    b.write_text(json.dumps({"findings": [{"id": "f1", "elapsed_s": 9.0}], "duration_s": 2}))
    c.write_text(json.dumps({"findings": [{"id": "f1", "elapsed_s": 1.0}], "duration_s": 3}))
    assert B.diff_reports(a, b, {"elapsed_s"}) == []
    assert any(line.startswith("+") and "3" in line for line in B.diff_reports(a, c, {"elapsed_s"}))


def test_a_run_past_the_timeout_is_killed_and_said_so(tmp_path: Path) -> None:
    base = [sys.executable, "-c", "import time; time.sleep(30)"]
    run, err = B.run_analyze(base, tmp_path / "x.log", tmp_path / "r.json", "", 0.5)
    assert run.rc < 0
    assert run.wall < 10
    assert err.startswith("analyze killed (--timeout)")
