"""Small logs parsed together give exactly what each gives alone: records never cross a file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from analyzer import open_bundle
from analyzer import sources as sources_module
from analyzer.sniff import sniff
from analyzer.sources import celery_log
from analyzer.sources.celery_log import Coverage
from tests.conftest import SAMPLES


def _celery_logs() -> list[Path]:
    return [p for p in sorted(SAMPLES.glob("*/*")) if p.is_file() and sniff(p.read_bytes()[:4096]) == "celery_log"]


def _alone(paths: list[tuple[Path | bytes, str]]) -> tuple[pl.DataFrame, list[dict[str, object]]]:
    parsed = [celery_log.parse(data, source=name) for data, name in paths]
    events = pl.concat([p.events for p in parsed])
    return events, [p.coverage.to_dict() for p in parsed]


def _batch_equals_alone(items: list[tuple[Path | bytes, str]]) -> list[Coverage]:
    """Parse `items` as one batch, assert it gives what each gives alone, return its coverages."""
    events, covs = celery_log.parse_many(items)
    alone_events, alone_covs = _alone(items)
    assert events.equals(alone_events)
    assert [c.to_dict() for c in covs] == alone_covs
    return covs


def test_every_sample_log_parsed_in_one_batch_equals_each_alone() -> None:
    items: list[tuple[Path | bytes, str]] = [(p, f"{p.parent.name}/{p.name}") for p in _celery_logs()]
    assert len(items) > 60
    _batch_equals_alone(items)


def test_a_file_never_folds_into_the_one_before(tmp_path: Path) -> None:
    """A log ending in a traceback, then one starting with the tail of a traceback (a log rotated
    mid-record) and a blank line: those lines stay unrecognised preamble of the second file, the
    first file's traceback stays whole."""
    first = (SAMPLES / "app-exception" / "worker.log").read_bytes()
    assert first.rstrip().endswith(b"ZeroDivisionError: division by zero")  # ends with a traceback
    tail = b"\n".join(first.rstrip().split(b"\n")[-3:])
    second = tail + b"\n\n" + (SAMPLES / "healthy" / "worker.log").read_bytes()
    items: list[tuple[Path | bytes, str]] = [(first, "a.log"), (second, "b.log"), (b"", "empty.log")]
    covs = _batch_equals_alone(items)
    assert covs[1].unrecognized == 3 and covs[2].lines == 0


@pytest.mark.parametrize("sample", ["worker-segfault", "deadlock-lock", "clock-drift", "heartbeat-stall-hang"])
def test_bundles_give_the_same_frames_batched_or_not(sample: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Faulthandler dumps inside a batched stdout still reach threads/frames; hosts settle alike."""
    batched = open_bundle(SAMPLES / sample)
    monkeypatch.setattr(sources_module, "SMALL_LOG", -1)
    alone = open_bundle(SAMPLES / sample)
    for name in ("events", "tasks", "threads", "frames", "cycles"):
        assert getattr(batched, name).equals(getattr(alone, name)), name
    assert [c.to_dict() for c in batched.coverage] == [c.to_dict() for c in alone.coverage]


def test_files_read_together_get_exactly_their_own_lines() -> None:
    """One CSV read for the batch: every file's lines as `read_lines` gives them, numbered from 1,
    CRLF and colour codes included (celery-colour), files without a final newline and empty ones."""
    from analyzer.sources.lines import read_joined, read_lines

    paths = [p for p in _celery_logs() if p.parent.name in ("celery-colour", "app-exception", "healthy")]
    raws = [p.read_bytes() for p in paths]
    sources: list[bytes | Path] = [*paths, raws[0].rstrip(b"\n"), b"", raws[1]]
    joined = read_joined(sources)
    assert joined is not None
    lines, counts = joined
    for i, source in enumerate(sources):
        alone = read_lines(source).frame.select("line", "text")
        mine = lines.frame.filter(pl.col("_src") == i).select("line", "text")
        assert mine.equals(alone) and counts[i] == alone.height


def test_files_that_must_be_read_alone_are(tmp_path: Path) -> None:
    """Invalid UTF-8 or container prefixes in one file: the batch is read file by file, and still
    gives what each file gives alone."""
    from analyzer.sources.lines import read_joined

    raw = (SAMPLES / "app-exception" / "worker.log").read_bytes()
    prefixed = b"".join(b"worker_1  | " + line + b"\n" for line in raw.splitlines())
    for odd in (raw.replace(b"ZeroDivisionError", b"Zero\xffDivisionError"), prefixed):
        items: list[tuple[Path | bytes, str]] = [(raw, "a.log"), (odd, "b.log")]
        assert read_joined([raw, odd]) is None
        _batch_equals_alone(items)


def test_a_byte_order_mark_is_dropped_in_every_file_of_a_batch() -> None:
    """polars drops a UTF-8 BOM at the start of its input: a file saved with one (Windows editors,
    PowerShell) must lose it in a batch too, else its first header reads as preamble."""
    raw = (SAMPLES / "app-exception" / "worker.log").read_bytes()
    bom = b"\xef\xbb\xbf" + (SAMPLES / "healthy" / "worker.log").read_bytes()
    items: list[tuple[Path | bytes, str]] = [(raw, "a.log"), (bom, "b.log"), (b"\xef\xbb\xbf", "c.log")]
    covs = _batch_equals_alone(items)
    assert covs[1].unrecognized == 0 and covs[2].lines == 0


def test_container_prefixes_are_judged_on_each_files_first_200_lines() -> None:
    """`read_lines` judges prefixes on a file's first 200 lines, blank ones left out: blank lines,
    a few prefixed lines, then a plain log is a prefixed file there, and so in a batch."""
    from analyzer.sources.lines import read_joined, read_lines

    raw = (SAMPLES / "app-exception" / "worker.log").read_bytes()
    prefixed = b"".join(b"worker_1  | " + line + b"\n" for line in raw.splitlines()[:10])
    odd = b"\n" * 190 + prefixed + raw
    assert read_lines(odd).had_prefix
    assert read_joined([raw, odd]) is None
    items: list[tuple[Path | bytes, str]] = [(raw, "a.log"), (odd, "b.log")]
    _batch_equals_alone(items)
