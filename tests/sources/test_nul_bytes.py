"""NUL bytes are not content: a log truncated in place (`logrotate copytruncate` while the worker
keeps its file offset) starts with a run of them, and must still be read as the log it is.

The leading run holds no newline, so it is part of line 1: once NULs are removed, every line keeps
the number it has in the original log.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import polars as pl
import pytest

from analyzer.api import Bundle
from analyzer.bundle import Member
from analyzer.sniff import sniff
from analyzer.sources import celery_log
from analyzer.sources.lines import nul_note, read_lines
from tests.conftest import SAMPLES

LOG = SAMPLES / "backend-failure" / "worker.log"


def _variants() -> dict[str, bytes]:
    raw = LOG.read_bytes()
    return {
        "run of one head": b"\0" * 4096 + raw,  # exactly what the sniffer reads
        "run of 3 MB": b"\0" * (3 << 20) + raw,  # longer than any head, as a rotated file's old size
        "one inside a line": raw[:200] + b"\0" + raw[200:],
    }


def _write(tmp_path: Path, data: bytes) -> Path:
    (tmp_path / "nul").mkdir()
    path = tmp_path / "nul" / LOG.name  # same name as the original: events carry it as `source`
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(_variants()))
def test_a_log_with_nul_bytes_is_sniffed_and_parsed_as_the_log_it_is(tmp_path: Path, case: str) -> None:
    data = _variants()[case]
    path = _write(tmp_path, data)
    assert sniff(Member(path.name, path=path).head()) == "celery_log"
    assert sniff(Member(path.name, data=data).head()) == "celery_log"
    original, truncated = Bundle([LOG]), Bundle([path])
    assert [i.kind for i in truncated.inputs] == ["celery_log"]
    assert original.events.height > 10
    assert truncated.events.equals(original.events)  # same records, same line numbers
    (cov,) = truncated.coverage
    assert (cov.lines, cov.unrecognized) == (original.coverage[0].lines, 0)
    assert cov.notes == [nul_note(data.count(b"\0"))]


@pytest.mark.parametrize("case", list(_variants()))
def test_lines_drop_nul_bytes_and_count_them(tmp_path: Path, case: str) -> None:
    data = _variants()[case]
    path = _write(tmp_path, data)
    plain = read_lines(LOG)
    assert plain.nul_bytes == 0
    for source in (data, path):
        lines = read_lines(source)
        assert lines.frame.equals(plain.frame)
        assert lines.nul_bytes == data.count(b"\0")
    n = data.count(b"\0")
    assert nul_note(n) == f"{n} NUL byte(s) removed (a log truncated in place, e.g. logrotate copytruncate?)"


def test_pieces_of_a_big_log_keep_line_numbers_after_a_nul_run(tmp_path: Path) -> None:
    data = b"\0" * 70_000 + LOG.read_bytes()
    path = _write(tmp_path, data)
    whole = celery_log.parse(LOG, source=LOG.name)
    pieces = celery_log.parse_file(path, source=LOG.name, piece_bytes=2_000)
    assert pieces.events.height == whole.events.height
    assert pieces.coverage.notes == [nul_note(70_000)]  # one note of the pieces' sum
    assert pieces.events.select("line", "message").equals(whole.events.select("line", "message"))


def test_a_separator_byte_and_a_nul_byte_together(tmp_path: Path) -> None:
    """The rarer read (the optimistic separator refused) drops NULs too."""
    raw = LOG.read_bytes()
    data = raw.replace(b"\n", b"\n\x1f", 1)
    data = b"\0" * 100 + data[:300] + b"\0" + data[300:]
    path = _write(tmp_path, data)
    expected = read_lines(raw.replace(b"\n", b"\n\x1f", 1)).frame
    for source in (data, path):
        lines = read_lines(source)
        assert lines.nul_bytes == 101
        assert lines.frame.equals(expected)


@pytest.mark.parametrize("what", ["elf executable", "random bytes"])
def test_real_binary_content_is_still_binary(tmp_path: Path, what: str) -> None:
    # the interpreter running the tests is an executable every machine that runs them has
    data = Path(sys.executable).resolve().read_bytes()[:8192] if what == "elf executable" else os.urandom(8192)
    path = tmp_path / "blob.log"
    path.write_bytes(data)
    assert sniff(Member(path.name, path=path).head()) == "binary"
    b = Bundle([path])
    assert [i.kind for i in b.inputs] == ["binary"]
    assert b.report().inconclusive_reasons() == ["blob.log: binary, not analysed"]  # not "is empty"


def test_no_real_text_sample_is_judged_binary_by_its_control_bytes() -> None:
    """The control-byte share that tells binary from text leaves every sample artifact (text
    logs, dumps, CLI output with ANSI colour) with its kind."""
    kinds = pl.DataFrame([{"path": str(p), "kind": sniff(p.read_bytes()[:4096])}
                          for p in sorted(SAMPLES.glob("*/*")) if p.is_file()])
    assert kinds.height > 20
    assert kinds.filter(pl.col("kind") == "binary").height == 0
    assert kinds.filter(pl.col("kind") == "celery_log").height >= 10


def test_a_sparse_hole_before_the_log_is_skipped_not_held(tmp_path):
    """`logrotate copytruncate` leaves a hole as long as the old log: 256 MiB of NULs must not cost
    their size in memory (the hardening issue's 2 GiB hole cost 4.2 GB)."""
    import json
    import subprocess
    import sys

    from tests.conftest import SAMPLES

    hole = 256 << 20
    log = tmp_path / "b" / "worker.log"
    log.parent.mkdir()
    with log.open("wb") as f:
        f.truncate(hole)
        f.seek(hole)
        f.write((SAMPLES / "broker-refused" / "worker.log").read_bytes())
    code = ("import resource, subprocess, sys; r = subprocess.run([sys.executable, '-m', 'analyzer', 'analyze', "
            f"{str(log.parent)!r}, '-f', 'json'], capture_output=True); sys.stdout.buffer.write(r.stdout); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=300)
    peak_kb = int(r.stderr.split()[-1])
    doc = json.loads(r.stdout)
    assert doc["findings"][0]["category"] == "broker.connection_refused"
    assert any(f"{hole} NUL byte(s) removed" in n for n in doc["inputs"][0]["notes"])
    assert peak_kb < 350_000, f"peak RSS {peak_kb} KB for a {hole >> 20} MiB hole"
