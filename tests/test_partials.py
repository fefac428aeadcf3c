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
from analyzer.pipeline.mapper import map_records, needed
from analyzer.pipeline.partial import Partial
from tests.conftest import sample_dirs

SAMPLES_WITH_TASKS = [d for d in sample_dirs() if (d / "worker.log").exists()]


def _events(sample: str) -> pl.DataFrame:
    return analyzer.open_bundle(sample).events


def _records(events: pl.DataFrame) -> pl.DataFrame:
    """Settled records as pieces' records: each one's node as the one it names itself."""
    return events.with_columns(pl.col("host").alias("_hostname"), pl.lit(None, dtype=pl.String).alias("stream"))


def _assert_partials_equal(got: Partial, want: Partial) -> None:
    assert_frame_equal(needed(got), needed(want))
    for name in ("hosts", "activity", "names", "marks"):
        assert_frame_equal(getattr(got, name), getattr(want, name))


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
    keep = pl.col("level").is_in(["WARNING", "ERROR"])  # some records kept, most counted
    whole_partial = map_records(_records(events), keep)
    for cuts in cuttings:
        pieces = _pieces(events, cuts)
        parts = [tasks.partial(p) for p in pieces]
        rng.shuffle(parts)  # pieces come back from workers in any order
        assert_frame_equal(tasks.finish(tasks.merge(parts), events), whole)
        partials = [map_records(_records(p), keep) for p in pieces]
        rng.shuffle(partials)
        _assert_partials_equal(Partial.merge(partials), whole_partial)


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
