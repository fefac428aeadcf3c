"""Timeline order: the check agrees with a sort, so ordered frames can skip the copy."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.order import is_ordered, timeline

ROW = st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.sampled_from(["a", "b"]), st.integers(1, 4))


def _frame(rows: list[tuple[int | None, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"ts": [None if t is None else datetime(2026, 1, 1, 0, 0, t) for t, _, _ in rows],
         "source": [s for _, s, _ in rows], "line": [n for _, _, n in rows]},
        schema={"ts": pl.Datetime("ms"), "source": pl.String, "line": pl.Int64})


@settings(max_examples=300, deadline=None)
@given(st.lists(ROW, max_size=8))
def test_is_ordered_agrees_with_sorting(rows: list[tuple[int | None, str, int]]) -> None:
    df = _frame(rows)
    by_sort = df.sort("ts", "source", "line", nulls_last=True, maintain_order=True)
    assert is_ordered(df, ["ts", "source", "line"]) == df.equals(by_sort)
    assert timeline(df).equals(by_sort)


def test_null_times_go_last_and_an_ordered_frame_is_returned_as_is() -> None:
    df = _frame([(None, "a", 1), (1, "a", 2)])
    assert not is_ordered(df, ["ts", "source", "line"])
    assert timeline(df)["line"].to_list() == [2, 1]
    ordered = _frame([(1, "a", 2), (1, "b", 1), (None, "a", 1)])
    assert timeline(ordered) is ordered
