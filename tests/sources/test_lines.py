"""Reading lines: nothing is lost whatever bytes a real log carries."""

from __future__ import annotations

from pathlib import Path

from analyzer.sources.lines import read_lines
from tests.conftest import SAMPLES


def _real() -> bytes:
    return (SAMPLES / "app-exception" / "worker.log").read_bytes()


def test_a_line_holding_the_separator_byte_is_kept_whole(tmp_path: Path) -> None:
    raw = _real().replace(b"adding 1 + 2", b"adding \x1f1 + 2", 1)
    p = tmp_path / "w.log"
    p.write_bytes(raw)
    lines = read_lines(p).frame
    assert lines.height == raw.count(b"\n")
    assert lines.filter(lines["text"].str.contains("\x1f", literal=True)).height == 1


def test_file_and_bytes_give_the_same_lines(tmp_path: Path) -> None:
    raw = _real().replace(b"\n", b"\r\n")
    p = tmp_path / "w.log"
    p.write_bytes(raw)
    from_file, from_bytes = read_lines(p).frame, read_lines(raw).frame
    assert from_file.equals(from_bytes)
    assert not from_file["text"].str.ends_with("\r").any()
