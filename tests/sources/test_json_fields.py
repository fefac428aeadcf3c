"""JSON-lines logs: skipping the JSON paths whose key never occurs changes nothing."""

from __future__ import annotations

import polars as pl

from analyzer.sources import json_log
from analyzer.sources.lines import read_lines
from tests.conftest import SAMPLES


def test_fields_equal_matching_every_path_on_the_real_json_log() -> None:
    objs = read_lines(SAMPLES / "json-log" / "worker.log").frame
    every = objs.with_columns(**{name: json_log._field(paths) for name, paths in json_log.FIELDS.items()})
    fast = json_log._fields(objs)
    assert fast.equals(every)
    assert fast["task_id"].null_count() < fast.height and fast["message"].null_count() == 0


def test_a_key_seen_only_in_a_later_line_is_still_read() -> None:
    """Keys are looked for over all lines, not a sample: `data` appears from line 5 on."""
    objs = read_lines(SAMPLES / "json-log" / "worker.log").frame
    first_data = objs.with_row_index().filter(pl.col("text").str.contains('"data"', literal=True))["index"][0]
    assert first_data > 0
    assert json_log._fields(objs)["task_name"].drop_nulls().len() > 0
