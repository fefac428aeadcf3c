"""Compiled conditions select the right rows of tiny hand-typed frames (the language, not the parsers)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

import polars as pl
import pytest

from analyzer.engine.compiler import compile_condition
from analyzer.engine.errors import ConditionError
from analyzer.engine.evaluate import sort_frame
from analyzer.engine.grammar import parse_condition
from analyzer.engine.nodes import Column
from analyzer.schema import EVENTS, TASKS, THREADS, conform

T0 = datetime(2024, 5, 1, 10, 0, 0)


def events(rows: list[dict[str, object]]) -> pl.DataFrame:
    """An events frame from partial rows; `t` is seconds after T0, lines are numbered."""
    full = []
    for i, row in enumerate(rows, 1):
        row = dict(row)
        t = cast("float | None", row.pop("t", None))
        full.append(
            {"source": "w1.log", "line": i, "ts": None if t is None else T0 + timedelta(seconds=t), **row}
        )
    return sort_frame(conform(pl.DataFrame(full, infer_schema_length=None), EVENTS))


def select(when: str, df: pl.DataFrame, schema: object = EVENTS) -> list[int]:
    """1-based `line`s of the rows `when` selects."""
    expr = compile_condition(parse_condition(when), schema)  # type: ignore[arg-type]
    return df.filter(expr).get_column("line").to_list()


LEVELS = events(
    [{"t": i, "level": lv} for i, lv in enumerate(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", None])]
)


@pytest.mark.parametrize(
    ("when", "lines"),
    [
        # line 6's level is unknown (a line no layout reads): it passes a lower bound, fails the rest
        ("level >= WARNING", [3, 4, 5, 6]),
        ("level > error", [5, 6]),
        ("level < info", [1]),
        ("level == error", [4]),
        ("level != INFO", [1, 3, 4, 5, 6]),
        ("level in [error, CRITICAL]", [4, 5]),
        ("level not in [DEBUG]", [2, 3, 4, 5, 6]),
        ("level >= WARN", [3, 4, 5, 6]),
    ],
)
def test_level_compares_by_rank(when: str, lines: list[int]) -> None:
    assert select(when, LEVELS) == lines


def test_unknown_level_name_is_rejected() -> None:
    with pytest.raises(ConditionError, match="not a level"):
        compile_condition(parse_condition('level >= "LOUD"'), EVENTS)


MSGS = events(
    [
        {"t": 0, "message": "consumer: Cannot connect to redis://:**@127.0.0.1:6399/0: Error 111"},
        {"t": 1, "message": "Task proj.add[1] received", "task_id": "1"},
        {"t": 2, "message": "connection REFUSED"},
        {"t": 3, "message": None},
    ]
)


@pytest.mark.parametrize(
    ("when", "lines"),
    [
        (r'message ~ "Error \d+"', [1]),
        ('message ~ "refused"', []),
        ('message ~i "refused"', [3]),
        ('message ~ "(?i)refused"', [3]),
        ('message !~ "Task"', [1, 3, 4]),
        ('message contains "127.0.0.1"', [1]),
        ('message not contains "127.0.0.1"', [2, 3, 4]),
        ('message ~ "127.0.0.1:6399"', [1]),
        ("message is null", [4]),
        ("task_id is not null", [2]),
        ('task_id != "1"', [1, 3, 4]),
        ('not task_id == "1"', [1, 3, 4]),
        ("true", [1, 2, 3, 4]),
        ("false", []),
        ('message contains "Task" or message contains "REFUSED"', [2, 3]),
        ('(message ~ "n" and not message ~ "Task") or task_id == "1"', [1, 2, 3]),
    ],
)
def test_text_predicates_and_boolean_logic(when: str, lines: list[int]) -> None:
    assert select(when, MSGS) == lines


def test_numbers_durations_and_datetimes() -> None:
    df = events([{"t": i, "runtime_s": r} for i, r in enumerate([1.0, 299.0, 300.0, 301.5, None])])
    assert select("runtime_s > 5m", df) == [4]
    assert select("runtime_s >= 300", df) == [3, 4]
    assert select("runtime_s <= 1", df) == [1]
    assert select("ts >= '2024-05-01T10:00:03'", df) == [4, 5]


def test_column_to_column_comparison() -> None:
    tasks = conform(
        pl.DataFrame(
            {"task_id": ["a", "b"], "started_at": [T0, T0], "finished_at": [T0 - timedelta(seconds=1), T0]},
        ),
        TASKS,
    ).with_columns(line=pl.Series([1, 2]))
    assert select("finished_at < started_at", tasks, TASKS) == [1]


def test_frames_without_ts_work_for_plain_conditions() -> None:
    threads = conform(
        pl.DataFrame({"name": ["MainThread", "w"], "state": ["lock_wait", "running"], "line": [1, 2]}),
        THREADS,
    )
    assert select('state == "lock_wait" and name ~ "^Main"', threads, THREADS) == [1]
    assert select("first(state is not null)", threads, THREADS) == [1]


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("colour == 1", "unknown column 'colour'"),
        ('runtime_s == "x"', "cannot be compared"),
        ("message > 5m", "duration cannot be compared"),
        ("runtime_s ~ 'x'", "needs a text column"),
        ("message ~ '(?=x)'", "invalid regex"),
        ("ts > 'yesterday'", "not an ISO date-time"),
        ("count(true) >= 2 within 1m by nosuch", "unknown column 'nosuch'"),
    ],
)
def test_type_and_schema_errors(when: str, message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        compile_condition(parse_condition(when), EVENTS)


def test_unknown_column_error_points_at_the_column() -> None:
    with pytest.raises(ConditionError) as info:
        compile_condition(parse_condition("level >= INFO and colour == 1"), EVENTS)
    assert info.value.offset == len("level >= INFO and ")


def test_temporal_forms_need_a_ts_column() -> None:
    with pytest.raises(ConditionError, match="needs a 'ts'"):
        compile_condition(parse_condition("count(true) >= 2 within 1m"), THREADS)


def test_unknown_node_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        compile_condition(Column("level"), EVENTS)  # type: ignore[arg-type]


# -- temporal forms ---------------------------------------------------------------------------------

STORM = events(
    [
        {"t": 0, "host": "a", "message": "lost"},
        {"t": 100, "host": "a", "message": "lost"},
        {"t": 130, "host": "b", "message": "lost"},
        {"t": 160, "host": "a", "message": "lost"},
        {"t": 170, "host": "a", "message": "ok"},
        {"t": 200, "host": "a", "message": "lost"},
        {"t": 1000, "host": "a", "message": "lost"},
        {"t": None, "host": "a", "message": "lost"},
    ]
)


def test_count_within_selects_every_row_of_a_qualifying_window() -> None:
    # a: 100, 160, 200 lie within 100s; t=0 and t=1000 are alone; b has one row
    assert select('count(message == "lost") >= 3 within 100s by host', STORM) == [2, 4, 6]


def test_count_without_group_counts_all_hosts() -> None:
    assert select('count(message == "lost") >= 4 within 100s', STORM) == [2, 3, 4, 6]


def test_count_window_is_inclusive() -> None:
    assert select('count(message == "lost") >= 2 within 100s by host', STORM) == [1, 2, 4, 6]
    assert select('count(message == "lost") >= 2 within 99s by host', STORM) == [2, 4, 6]


def test_count_without_window_counts_the_whole_group() -> None:
    assert select('count(message == "lost") >= 2 by host', STORM) == [1, 2, 4, 6, 7, 8]
    assert select('count(message == "lost") > 6', STORM) == [1, 2, 3, 4, 6, 7, 8]


LIFECYCLE = events(
    [
        {"t": 0, "kind": "received", "task_id": "a"},
        {"t": 1, "kind": "received", "task_id": "b"},
        {"t": 2, "kind": "received", "task_id": "c"},
        {"t": 3, "kind": "received", "task_id": None},
        {"t": 10, "kind": "succeeded", "task_id": "a"},
        {"t": 400, "kind": "succeeded", "task_id": "b"},
        {"t": 700, "kind": "received", "task_id": "d"},
        {"t": 800, "kind": "received", "task_id": "e"},
        {"t": 1000, "kind": "heartbeat", "task_id": None},
    ]
)


def test_not_followed_by_ignores_rows_too_close_to_the_end_of_the_log() -> None:
    when = 'kind == "received" not followed by kind in [succeeded, failed] within 300s by task_id'
    # b finished after 399s (late), c never; d is 300s before the end (known), e only 200s (unknown)
    assert select(when, LIFECYCLE) == [2, 3, 7]


def test_followed_by_positive_form() -> None:
    when = 'kind == "received" followed by kind == "succeeded" within 300s by task_id'
    assert select(when, LIFECYCLE) == [1]
    assert select(when.replace("300s", "400s"), LIFECYCLE) == [1, 2]


def test_not_followed_by_end_is_per_source() -> None:
    df = pl.concat(
        [
            LIFECYCLE,
            events([{"t": 5000, "kind": "heartbeat"}]).with_columns(
                source=pl.lit("w2.log"), line=pl.lit(99, dtype=pl.Int64)
            ),
        ]
    )
    df = sort_frame(df)
    when = 'kind == "received" not followed by kind == "succeeded" within 300s by task_id'
    assert select(when, df) == [2, 3, 7]


def test_followed_by_needs_a_later_row_not_the_same_one() -> None:
    df = events([{"t": 0, "kind": "x", "task_id": "a"}, {"t": 1000, "kind": "y", "task_id": "b"}])
    assert select('kind == "x" followed by kind == "x" within 1h by task_id', df) == []
    assert select('kind == "x" not followed by kind == "x" within 5m by task_id', df) == [1]


def test_first_and_last_per_group() -> None:
    assert select('first(message == "lost") by host', STORM) == [1, 3]
    assert select('last(message == "lost") by host', STORM) == [3, 7]
    assert select('last(message == "lost")', STORM) == [7]


def test_burst_compares_a_window_with_the_mean_rate() -> None:
    steady = [{"t": 60 * i + 1, "host": "a", "level": "ERROR"} for i in range(60)]
    spike = [{"t": 1800 + i, "host": "b", "level": "ERROR"} for i in range(12)]
    calm_b = [{"t": 60 * i + 5, "host": "b", "level": "INFO"} for i in range(60)]
    df = events(steady + spike + calm_b)
    hits = df.filter(
        compile_condition(parse_condition("burst(level >= ERROR) >= 10x within 1m by host"), EVENTS)
    )
    assert hits.get_column("host").unique().to_list() == ["b"]
    assert hits.height == 12


def test_burst_needs_at_least_k_rows_in_a_window() -> None:
    df = events([{"t": 0, "level": "ERROR"}, {"t": 86400, "level": "INFO"}])
    assert select("burst(level >= ERROR) >= 3x within 1m", df) == []
    assert select("burst(level >= ERROR) >= 1x within 1m", df) == [1]
