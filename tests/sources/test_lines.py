"""Reading lines: nothing is lost whatever bytes a real log carries."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

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


@pytest.mark.parametrize("where", ["first", "later"])
def test_the_separator_byte_in_the_first_or_a_later_line_of_bytes_and_files(tmp_path: Path, where: str) -> None:
    """polars refuses the optimistic separator differently when the first line holds it."""
    raw = _real()
    first_line = raw.split(b"\n", 1)[0]
    raw = (raw.replace(first_line, first_line + b"\x1f", 1) if where == "first"
           else raw + b"tail \x1f line\n")
    p = tmp_path / "w.log"
    p.write_bytes(raw)
    for source in (raw, p):
        lines = read_lines(source).frame
        assert lines.height == raw.count(b"\n")
        assert lines["text"].str.contains("\x1f", literal=True).sum() == 1


def test_a_span_of_a_file_is_numbered_from_its_first_line(tmp_path: Path) -> None:
    raw = _real()
    p = tmp_path / "w.log"
    p.write_bytes(raw)
    cut = raw.index(b"\n", len(raw) // 2) + 1
    head = read_lines(p, span=(0, cut)).frame
    tail = read_lines(p, span=(cut, len(raw)), first_line=head.height + 1).frame
    assert pl.concat([head, tail]).equals(read_lines(p).frame)


def test_file_and_bytes_give_the_same_lines(tmp_path: Path) -> None:
    raw = _real().replace(b"\n", b"\r\n")
    p = tmp_path / "w.log"
    p.write_bytes(raw)
    from_file, from_bytes = read_lines(p).frame, read_lines(raw).frame
    assert from_file.equals(from_bytes)
    assert not from_file["text"].str.ends_with("\r").any()
