"""A big log parsed piece by piece gives exactly what parsing it whole gives.

The inputs are real worker logs from samples/ (tracebacks, time limits, lost workers, broker
errors, Celery 3.1), parsed in pieces of a few hundred bytes so every file is cut several
times, often right before a record with continuation lines.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import polars as pl
import pytest

from analyzer.bundle import Member
from analyzer.sources import celery_log
from analyzer.sources.lines import read_lines, record_spans
from analyzer.sources.log_format import LogFormat, compile_format
from tests.conftest import SAMPLES

LOGS = ["app-exception/worker.log", "worker-sigkill/worker.log", "hard-time-limit/worker.log",
        "backend-failure/worker.log", "celery3-format/worker.log", "broker-lost/worker.log"]


def _whole(path: Path) -> celery_log.Parsed:
    return celery_log.parse_lines(read_lines(path), source=path.name)


@pytest.mark.parametrize("name", LOGS)
@pytest.mark.parametrize("parts", [3, 8])
def test_pieces_give_the_same_events_and_coverage(name: str, parts: int) -> None:
    path = SAMPLES / name
    piece = path.stat().st_size // parts
    assert len(record_spans(path, piece, celery_log._header_start)) > 2  # the file really is cut
    by_piece = celery_log.parse_file(path, source=path.name, piece_bytes=piece)
    whole = _whole(path)
    assert by_piece.events.equals(whole.events)
    assert by_piece.coverage.to_dict() == whole.coverage.to_dict()
    # an archive member's bytes are cut the same way
    raw = path.read_bytes()
    assert record_spans(raw, piece, celery_log._header_start) == record_spans(path, piece, celery_log._header_start)
    from_bytes = celery_log.parse_file(raw, source=path.name, piece_bytes=piece)
    assert from_bytes.events.equals(whole.events)
    assert from_bytes.coverage.to_dict() == whole.coverage.to_dict()


def test_spans_tile_the_file_and_each_starts_at_a_header() -> None:
    path = SAMPLES / "app-exception" / "worker.log"
    raw = path.read_bytes()
    spans = record_spans(path, 1000, celery_log._header_start)
    assert spans[0][0] == 0 and spans[-1][1] == len(raw)
    assert all(a[1] == b[0] for a, b in pairwise(spans))
    for start, _ in spans[1:]:
        assert raw[start - 1:start] == b"\n" and celery_log._header_start(b"\n" + raw[start:start + 40]) == 1


def test_invalid_utf8_and_unrecognised_lines_are_counted_once_over_the_pieces(tmp_path: Path) -> None:
    raw = (SAMPLES / "app-exception" / "worker.log").read_bytes()
    bad = b"garbage before the first record\n" + raw.replace(b"ZeroDivisionError", b"ZeroDivision\xffError")
    p = tmp_path / "w.log"
    p.write_bytes(bad)
    by_piece = celery_log.parse_file(p, source="w.log", piece_bytes=2048)
    whole = _whole(p)
    assert by_piece.coverage.invalid_utf8 == whole.coverage.invalid_utf8 == raw.count(b"ZeroDivisionError")
    assert by_piece.coverage.unrecognized == 1 and by_piece.coverage.samples == [(1, "garbage before the first record")]
    assert by_piece.coverage.to_dict() == whole.coverage.to_dict()
    assert by_piece.events.equals(whole.events)


def test_container_prefixed_logs_are_read_whole(tmp_path: Path) -> None:
    """Streams interleave in `docker compose logs`, so a record may span any cut."""
    lines = (SAMPLES / "app-exception" / "worker.log").read_text().splitlines()
    p = tmp_path / "compose.log"
    p.write_text("".join(f"worker_1  | {line}\n" for line in lines))
    assert len(record_spans(p, 2048, celery_log._header_start)) == 1  # no line starts with a header
    by_piece = celery_log.parse_file(p, source="compose.log", piece_bytes=2048)
    assert by_piece.events.equals(_whole(p).events)
    assert by_piece.events.filter(pl.col("kind") == "failed").height == 3


def test_a_piece_grows_past_a_huge_line(tmp_path: Path) -> None:
    raw = (SAMPLES / "healthy" / "worker.log").read_bytes()
    p = tmp_path / "odd.log"
    p.write_bytes(raw + b"x" * 300_000 + b"\n" + raw * 60)
    spans = record_spans(p, 100_000, celery_log._header_start, window=50_000)
    assert spans[0][1] > len(raw) + 300_000  # no cut inside the line: the first piece grew past it
    assert len(spans) >= 2
    by_piece = celery_log.parse_file(p, source="odd.log", piece_bytes=100_000)
    assert by_piece.events.equals(_whole(p).events)


def test_a_real_replacement_character_is_not_counted_as_invalid_utf8(tmp_path: Path) -> None:
    """A log may hold U+FFFD itself (text an application decoded with errors='replace'). Whether a
    lossy decode ran depends on the piece, so only lines with undecodable bytes may be counted."""
    raw = (SAMPLES / "app-exception" / "worker.log").read_bytes()
    first, last = raw.find(b"ZeroDivisionError"), raw.rfind(b"ZeroDivisionError")
    n = len(b"ZeroDivisionError")
    data = (raw[:first] + b"Zero\xffDivisionError" + raw[first + n:last]
            + "Zero\ufffdDivisionError".encode() + raw[last + n:])
    p = tmp_path / "w.log"
    p.write_bytes(data)
    whole = _whole(p)
    assert whole.coverage.invalid_utf8 == 1
    for piece in (512, 1024):
        assert len(record_spans(p, piece, celery_log._header_start)) > 2
        by_piece = celery_log.parse_file(p, source="w.log", piece_bytes=piece)
        assert by_piece.coverage.to_dict() == whole.coverage.to_dict()
        assert by_piece.events.equals(whole.events)
    assert read_lines(data).invalid_utf8 == 1  # bytes in memory count the same


def test_a_header_torn_by_invalid_utf8_is_never_a_cut(tmp_path: Path) -> None:
    """Two bytes of a header's year replaced by a truncated UTF-8 sequence: byte columns 20 and 24
    still hold `,` and `: `, but decoded (one U+FFFD for both bytes) the line is no header, so the
    whole parse folds it into the traceback before it. No piece may start there."""
    raw = (SAMPLES / "app-exception" / "worker.log").read_bytes()
    torn = raw.index(b"\n[", raw.index(b"ZeroDivisionError: division by zero")) + 1
    data = raw[:torn + 1] + b"\xe2\x82" + raw[torn + 3:]
    p = tmp_path / "torn.log"
    p.write_bytes(data)
    whole = _whole(p)
    assert whole.coverage.unrecognized == 0 and whole.coverage.invalid_utf8 == 1
    for piece in range(200, len(data), 150):
        assert torn not in [start for start, _ in record_spans(p, piece, celery_log._header_start)]
        by_piece = celery_log.parse_file(p, source="torn.log", piece_bytes=piece)
        assert by_piece.events.equals(whole.events)
        assert by_piece.coverage.to_dict() == whole.coverage.to_dict()


CUSTOM = SAMPLES / "custom-log-format"


def _custom_formats() -> list[LogFormat]:
    spec = json.loads((CUSTOM / "expected.json").read_text())["log_format"]
    return [compile_format(f) for f in spec]


@pytest.mark.parametrize("parts", [3, 7])
def test_users_formats_cut_into_pieces_give_the_same_events(parts: int) -> None:
    path = CUSTOM / "worker.log"
    formats = _custom_formats()
    piece = path.stat().st_size // parts
    assert len(record_spans(path, piece, celery_log._custom_start(formats))) > 2
    by_piece = celery_log.parse_file(path, source="w.log", piece_bytes=piece, log_formats=formats)
    whole = celery_log.parse_lines(read_lines(path), source="w.log", log_formats=formats)
    assert by_piece.events.equals(whole.events)
    assert by_piece.coverage.to_dict() == whole.coverage.to_dict()
    assert by_piece.events["level"].null_count() == 0  # every record read with the users' format


def test_a_format_ending_with_the_message_matches_up_to_it_only() -> None:
    """`LogFormat.head` + the rest of the line gives the fields the full regex gives, on every
    line of the real custom-format log."""
    lines = read_lines(CUSTOM / "worker.log").frame
    for fmt in _custom_formats():
        assert fmt.head is not None
        full = lines.select(pl.col("text").str.extract_groups(fmt.regex).alias("c")).unnest("c")
        head = lines.select(pl.col("text").str.extract_groups(fmt.head).alias("c"), "text").unnest("c")
        head = head.with_columns(
            pl.when(pl.col("_head").is_not_null()).then(pl.col("text").str.slice(pl.col("_head").str.len_chars()))
            .alias("message")).select(full.columns)
        assert head.equals(full)
        assert full["message"].null_count() < lines.height  # the format matches some lines


def test_a_big_log_in_users_formats_is_judged_on_its_head_and_read_in_pieces(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analyzer import sources

    raw = (CUSTOM / "worker.log").read_bytes()
    p = tmp_path / "big.log"
    p.write_bytes(raw * 40)
    monkeypatch.setattr(sources, "SMALL_LOG", len(raw) * 4)
    monkeypatch.setattr(celery_log, "PIECE_BYTES", len(raw) * 7)
    formats = tuple(_custom_formats())
    member = Member(name="big.log", path=p)
    cuts: list[int] = []
    spans = celery_log.record_spans
    monkeypatch.setattr(celery_log, "record_spans", lambda *a, **k: cuts.append(1) or spans(*a, **k))
    got = sources.parse_member(member, "celery_log", sources.Options(log_formats=formats))
    assert cuts and len(spans(p, len(raw) * 7, celery_log._custom_start(list(formats)))) > 3
    whole = celery_log.parse_lines(read_lines(p), source="big.log", log_formats=list(formats))
    assert got.frames["events"].equals(whole.events)
    assert got.coverage[0].to_dict() == whole.coverage.to_dict()


def test_a_big_log_opening_with_banners_only_is_judged_where_records_begin(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash-looping worker's stdout repeats its banner; both formats read those lines alike, so
    a head holding only them decides nothing: the next probe, with the users' records, does."""
    from analyzer import sources

    stdout = (SAMPLES / "healthy" / "worker.stdout").read_bytes()
    raw = (CUSTOM / "worker.log").read_bytes()
    p = tmp_path / "big.log"
    p.write_bytes(stdout * 6 + raw * 20)
    monkeypatch.setattr(sources, "SMALL_LOG", len(raw))
    monkeypatch.setattr(sources, "PROBE_BYTES", len(stdout) * 2)
    monkeypatch.setattr(celery_log, "PIECE_BYTES", len(raw) * 7)
    formats = _custom_formats()
    got = sources.parse_member(Member(name="big.log", path=p), "celery_log",
                               sources.Options(log_formats=tuple(formats)))
    whole = celery_log.parse_lines(read_lines(p), source="big.log", log_formats=formats)
    events = got.frames["events"]
    assert events.equals(whole.events)
    assert got.coverage[0].to_dict() == whole.coverage.to_dict()
    assert events.filter(pl.col("kind") == "received").height == 4 * 20


def test_a_cut_is_only_made_before_a_whole_line() -> None:
    """A window can end inside a line. With text after the message in a user's format
    (`…%(message)s.`), the beginning of a real line can match where the whole line does not:
    that line must not become a cut."""
    raw = (CUSTOM / "worker.log").read_bytes()
    first = raw.split(b"\n")[0]
    fmt = compile_format(json.loads((CUSTOM / "expected.json").read_text())["log_format"][0] + ".")
    line = next(ln for ln in raw.split(b"\n") if b"127.0.0.1." not in ln and b"127.0.0.1" in ln)
    truncated = line[:line.index(b"127.0.0.1") + len(b"127.")]  # ends with "." inside the line
    assert not line.endswith(b".") and truncated.endswith(b".")
    start = celery_log._custom_start([fmt])
    assert start(b"\n" + truncated + b"\n") == 1  # as a whole line it would be a header of that format
    assert start(first + b"\n" + truncated) is None  # cut off at the window's end: not a cut
