"""The chunk partial contract: partials of any cut, merged in any grouping, equal the whole's."""

from __future__ import annotations

import itertools
import random

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import analyzer
from analyzer.analyses import tasks
from analyzer.pipeline.partial import COVERAGE, SAMPLES, Partial, hosts
from analyzer.schema import empty
from tests.conftest import sample_dirs

SAMPLES_WITH_TASKS = [d for d in sample_dirs() if (d / "worker.log").exists()]


def _events(sample: str) -> pl.DataFrame:
    return analyzer.open_bundle(sample).events


def _partial(records: pl.DataFrame) -> Partial:
    return Partial.of_records(records, empty(COVERAGE), empty(SAMPLES))


def _pieces(events: pl.DataFrame, cuts: list[int]) -> list[pl.DataFrame]:
    bounds = [0, *sorted(set(cuts)), events.height]
    return [events.slice(a, b - a) for a, b in itertools.pairwise(bounds) if b > a]


def _between_received_and_finished(events: pl.DataFrame) -> list[int]:
    """Row cuts that separate each task's `received` record from the records that settle it."""
    rows = events.with_row_index("_row")
    got = rows.filter(pl.col("kind") == "received").get_column("_row").to_list()
    return [r + 1 for r in got]


@pytest.mark.parametrize("sample", SAMPLES_WITH_TASKS, ids=lambda p: p.name)
def test_tasks_from_merged_chunks_equal_the_whole(sample):
    events = _events(str(sample))
    whole = tasks.build(events)
    rng = random.Random(sample.name)
    cuttings = [_between_received_and_finished(events),
                [rng.randrange(events.height + 1) for _ in range(7)],
                list(range(min(events.height, 300)))]  # one record a chunk (at the start of big ones)
    for cuts in cuttings:
        parts = [_partial(p) for p in _pieces(events, cuts)]
        rng.shuffle(parts)  # pieces come back from workers in any order
        merged = Partial.merge(parts)
        assert_frame_equal(tasks.finish(merged.tasks, events), whole)
        assert_frame_equal(merged.hosts, hosts(events))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=6), st.randoms(use_true_random=False))
def test_merge_is_associative_and_commutative(cuts, rnd):
    events = _events("samples/retry-then-success")
    parts = [tasks.partial(p) for p in _pieces(events, [c % (events.height + 1) for c in cuts])]
    flat = tasks.merge(parts)
    rnd.shuffle(parts)
    k = rnd.randrange(len(parts) + 1)
    left = [tasks.merge(parts[:k])] if k else []
    right = [tasks.merge(parts[k:])] if k < len(parts) else []
    assert_frame_equal(tasks.merge(left + right), flat)


def test_coverage_and_samples_merge_by_sum_and_first_lines():
    cov = pl.DataFrame({"source": ["a", "a"], "layout": ["celery", "celery"], "lines": [3, 4], "parsed": [2, 4],
                        "unrecognized": [1, 0], "invalid_utf8": [0, 1], "nul_bytes": [0, 0]}, schema=COVERAGE)
    lines = list(range(1, 9))
    one = Partial.of_records(empty(analyzer.schema.EVENTS), cov.head(1),
                             pl.DataFrame({"source": ["a"] * 4, "line": lines[4:], "text": ["x"] * 4}, schema=SAMPLES))
    two = Partial.of_records(empty(analyzer.schema.EVENTS), cov.tail(1),
                             pl.DataFrame({"source": ["a"] * 4, "line": lines[:4], "text": ["y"] * 4}, schema=SAMPLES))
    merged = Partial.merge([one, two])
    assert merged.coverage.row(0) == ("a", "celery", 7, 6, 1, 1, 0)
    assert merged.samples["line"].to_list() == [1, 2, 3, 4, 5]
