"""The `when` language parses into the documented trees: precedence, quantifiers, literals, errors."""

from __future__ import annotations

import pytest

from analyzer.engine.errors import ConditionError
from analyzer.engine.grammar import parse_condition
from analyzer.engine.nodes import (
    And,
    Burst,
    Column,
    Compare,
    Const,
    Contains,
    Count,
    Duration,
    FirstLast,
    FollowedBy,
    InList,
    IsNull,
    Literal,
    Match,
    Not,
    Or,
    columns,
    is_temporal,
)


def eq(col: str, value: object) -> Compare:
    return Compare(Column(col), "==", Literal(value))  # type: ignore[arg-type]


A, B, C, D = eq("a", 1), eq("b", 2), eq("c", 3), eq("d", 4)


def test_and_binds_tighter_than_or() -> None:
    assert parse_condition("a == 1 or b == 2 and c == 3") == Or((A, And((B, C))))


def test_not_binds_tighter_than_and() -> None:
    assert parse_condition("not a == 1 and b == 2") == And((Not(A), B))


def test_parentheses_override_precedence() -> None:
    assert parse_condition("(a == 1 or b == 2) and c == 3") == And((Or((A, B)), C))


def test_same_operator_chains_into_one_nary_node() -> None:
    assert parse_condition("a == 1 and b == 2 and c == 3 or d == 4") == Or((And((A, B, C)), D))


def test_double_not_nests() -> None:
    assert parse_condition("not not a == 1") == Not(Not(A))


def test_followed_by_is_loosest_and_takes_whole_or_expressions() -> None:
    tree = parse_condition("a == 1 or b == 2 not followed by c == 3 and d == 4 within 5m by task_id")
    assert tree == FollowedBy(Or((A, B)), And((C, D)), Duration(300.0), (Column("task_id"),), negate=True)


def test_positive_followed_by_without_key() -> None:
    assert parse_condition("a == 1 followed by b == 2 within 300s") == FollowedBy(A, B, Duration(300.0))


def test_parenthesised_followed_by_combines_with_and() -> None:
    tree = parse_condition("(a == 1 followed by b == 2 within 1s) and c == 3")
    assert tree == And((FollowedBy(A, B, Duration(1.0)), C))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("300s", 300.0), ("5m", 300.0), ("1h", 3600.0), ("2d", 172800.0), ("1.5h", 5400.0)],
)
def test_duration_units(text: str, seconds: float) -> None:
    assert parse_condition(f"runtime_s > {text}") == Compare(Column("runtime_s"), ">", Duration(seconds))


def test_count_with_window_and_groups() -> None:
    tree = parse_condition('count(message contains "refused") >= 5 within 5m by host, source')
    assert tree == Count(
        Contains(Column("message"), "refused"), 5, Duration(300.0), (Column("host"), Column("source"))
    )


def test_count_greater_than_is_normalised_to_at_least_n_plus_one() -> None:
    assert parse_condition("count(a == 1) > 2") == Count(A, 3)


def test_count_rejects_upper_bounds() -> None:
    with pytest.raises(ConditionError):
        parse_condition("count(a == 1) < 3 within 1m")


def test_burst_factor() -> None:
    tree = parse_condition("burst(level >= ERROR) >= 10x within 1m by host")
    assert tree == Burst(
        Compare(Column("level"), ">=", Literal("ERROR")), 10.0, Duration(60.0), (Column("host"),)
    )


def test_first_and_last() -> None:
    assert parse_condition("first(a == 1) by host") == FirstLast("first", A, (Column("host"),))
    assert parse_condition("last(true)") == FirstLast("last", Const(True))


def test_bare_level_name_is_a_literal_next_to_level() -> None:
    assert parse_condition("level >= warning") == Compare(Column("level"), ">=", Literal("warning"))


def test_bare_identifier_elsewhere_is_a_column() -> None:
    assert parse_condition("finished_at < started_at") == Compare(
        Column("finished_at"), "<", Column("started_at")
    )


def test_regex_operators() -> None:
    assert parse_condition(r'message ~ "Errno \d+"') == Match(Column("message"), r"Errno \d+")
    assert parse_condition('message !~ "x"') == Match(Column("message"), "x", negate=True)
    assert parse_condition('message ~i "x"') == Match(Column("message"), "x", ignore_case=True)
    assert parse_condition('message !~i "x"') == Match(Column("message"), "x", negate=True, ignore_case=True)


def test_only_the_quote_character_is_escaped_in_strings() -> None:
    assert parse_condition(r'message ~ "say \"hi\" \d"') == Match(Column("message"), r'say "hi" \d')
    assert parse_condition(r"message contains 'it\'s'") == Contains(Column("message"), "it's")


def test_membership_and_null_tests() -> None:
    assert parse_condition("kind in [succeeded, 'failed', 3]") == InList(
        Column("kind"), (Literal("succeeded"), Literal("failed"), Literal(3))
    )
    assert parse_condition("kind not in []") == InList(Column("kind"), (), negate=True)
    assert parse_condition("task_id is null") == IsNull(Column("task_id"))
    assert parse_condition("task_id is not null") == IsNull(Column("task_id"), negate=True)
    assert parse_condition('text not contains "x"') == Contains(Column("text"), "x", negate=True)


def test_literal_types() -> None:
    assert parse_condition("native == true") == Compare(Column("native"), "==", Literal(True))
    assert parse_condition("runtime_s >= -1.5") == Compare(Column("runtime_s"), ">=", Literal(-1.5))
    assert parse_condition("false") == Const(False)


def test_positions_do_not_affect_equality_but_are_recorded() -> None:
    tree = parse_condition("   host == 'x'")
    assert isinstance(tree, Compare)
    assert tree.left.pos == 3
    assert tree == eq("host", "x")


def test_columns_lists_every_column_in_source_order() -> None:
    tree = parse_condition("a == 1 not followed by b == c within 1s by task_id")
    assert [c.name for c in columns(tree)] == ["a", "b", "c", "task_id"]


def test_is_temporal() -> None:
    assert is_temporal(parse_condition("not first(a == 1)"))
    assert not is_temporal(parse_condition("a == 1 or b == 2"))


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("a ==", 1, 5),
        ("a == 1 and\n  b = 2", 2, 3),
        ("a in 3", 1, 6),
        ("a ~ b", 1, 5),
        ("a == 1 )", 1, 8),
        ("a == 1 followed by b == 2", 1, 26),
        ("a == 0s", 1, 6),
        ("and == 1", 1, 1),
    ],
)
def test_parse_errors_point_at_the_problem(text: str, line: int, column: int) -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition(text)
    assert (info.value.line, info.value.column) == (line, column)
