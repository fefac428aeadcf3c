"""`A [not] preceded by B within D [by k]`: `followed by` looking back (CP-W001 leaves a child that
Celery itself killed for never reporting ready to CP-W012)."""

from __future__ import annotations

from analyzer.engine.grammar import parse_condition
from analyzer.engine.nodes import Column, Compare, Duration, FollowedBy, Literal
from tests.engine.test_compiler import events, select

A = Compare(Column("a"), "==", Literal(1))
B = Compare(Column("b"), "==", Literal(2))


def test_preceded_by_parses_to_a_backward_followed_by() -> None:
    assert parse_condition("a == 1 preceded by b == 2 within 10s by host") == FollowedBy(
        A, B, Duration(10.0), (Column("host"),), before=True)
    assert parse_condition("a == 1 not preceded by b == 2 within 10s") == FollowedBy(
        A, B, Duration(10.0), negate=True, before=True)


KILLS = events([
    {"t": 0, "kind": "process_exited", "host": "w1"},  # nothing before it
    {"t": 10, "message": "Timed out waiting for UP message", "host": "w1"},
    {"t": 13, "kind": "process_exited", "host": "w1"},  # 3 s after the timeout, same node
    {"t": 14, "kind": "process_exited", "host": "w2"},  # another node
    {"t": 40, "kind": "process_exited", "host": "w1"},  # 30 s later
    {"t": None, "kind": "process_exited", "host": "w1"},  # no time: nothing known before it
])
UP = 'message contains "Timed out waiting for UP message"'


def test_preceded_by_selects_rows_with_an_earlier_match_of_the_same_key_in_the_window() -> None:
    assert select(f'kind == "process_exited" preceded by {UP} within 10s by host', KILLS) == [3]
    assert select(f'kind == "process_exited" preceded by {UP} within 1s by host', KILLS) == []


def test_not_preceded_by_keeps_every_other_row_even_without_time() -> None:
    assert select(f'kind == "process_exited" not preceded by {UP} within 10s by host', KILLS) == [1, 4, 5, 6]
    assert select(f'kind == "process_exited" not preceded by {UP} within 10s', KILLS) == [1, 5, 6]


def test_a_row_does_not_precede_itself() -> None:
    df = events([{"t": 0, "kind": "x", "task_id": "a"}])
    assert select('kind == "x" preceded by kind == "x" within 1h by task_id', df) == []
