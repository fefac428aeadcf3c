"""Compile a condition tree into one boolean `pl.Expr`, checking it against a frame schema.

`compile_condition(node, schema)` is a single `match` over the node types (an unknown node is
a `TypeError`).  It checks every column against `schema` and raises `ConditionError` (with the
node's offset in the `when` string) for unknown columns and type mismatches, so a rule that
loads is a rule that runs.

Truth values are two-valued: every predicate is `false` where its column is null, and the
negated forms (`!=`, `!~`, `not in`, `not contains`, `not ...`) are exactly the negation of the
positive ones, so `host != "a"` is true for a null host.

Temporal forms assume the frame is **sorted by `ts`** (nulls last, ties by `source`, `line`):
`evaluate.sort_frame` does that.  Rows with a null `ts` never match a temporal form.  "Within D"
is inclusive: two rows exactly D apart are within D.  All of them are window expressions
(`over`, `rolling_*_by`, fills), never a Python loop over rows.

- `count(c) >= N within D by g`: a row matching `c` is selected when some window of length D
  that contains it holds at least N rows matching `c` of the same group `g` -- so the first
  rows of a storm are selected too, not only the N-th onwards.  Computed as a trailing count
  per matching row (rows in [t-D, t]) followed by a leading "any qualifying row in [t, t+D]".
  Without `within`, the window is the whole frame: all matching rows when the group has >= N.
- `A followed by B within D by k`: rows matching A that have a later row (in sorted order)
  matching B with the same key `k` at most D after them.
- `A not followed by B within D by k`: rows matching A with no such B row, **and** at least D
  before the end of their own log: `ts(A) + D <= max(ts)` over the rows with the same `source`
  (over the whole frame when it has no `source` column).  Before that we cannot know yet.
  In both forms, rows with a null key never match (they cannot be correlated).  (In `count`,
  `burst`, `first` and `last`, rows with a null `by` value form a group of their own.)
- `first(c) by g` / `last(c) by g`: the first / last row matching `c` in each group (row order).
- `burst(c) >= Kx within D by g`: time is cut into fixed windows of length D aligned to the
  Unix epoch (as `dt.truncate`).  For each group, the baseline is the mean number of rows
  matching `c` per window over the windows the group spans (from its first to its last row
  with a `ts`, any row, empty windows included), floored at 1.  A matching row is selected
  when its window holds at least K x baseline matching rows of its group -- so a burst always
  needs at least K rows in one window, and a steady rate is never a burst.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import polars as pl

from .errors import ConditionError
from .grammar import RANKED_COLUMNS
from .nodes import (
    And,
    Burst,
    Column,
    Compare,
    Condition,
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
    Value,
)

TIME_COLUMN = "ts"
SOURCE_COLUMN = "source"
Schema = Mapping[str, pl.DataType]

_REGEX_META = set(".^$*+?{}[]\\|()")


def compile_condition(node: Condition, schema: Schema) -> pl.Expr:
    """A boolean, null-free `pl.Expr` selecting the rows `node` matches on a frame of `schema`."""
    return _Compiler(schema).compile(node)


class _Compiler:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    # -- dispatch ------------------------------------------------------------------------------
    def compile(self, node: Condition) -> pl.Expr:
        match node:
            case Const(value=value):
                return pl.lit(value, dtype=pl.Boolean)
            case Compare():
                return self._compare(node)
            case Match():
                return self._match(node)
            case Contains():
                return self._contains(node)
            case InList():
                return self._in_list(node)
            case IsNull(column=column, negate=negate):
                expr = self._col(column).is_null()
                return ~expr if negate else expr
            case Not(operand=operand):
                return ~self.compile(operand)
            case And(operands=operands):
                return pl.all_horizontal([self.compile(o) for o in operands])
            case Or(operands=operands):
                return pl.any_horizontal([self.compile(o) for o in operands])
            case Count():
                return self._count(node)
            case FollowedBy():
                return self._followed_by(node)
            case FirstLast():
                return self._first_last(node)
            case Burst():
                return self._burst(node)
            case _:
                raise TypeError(f"cannot compile {type(node).__name__} node: {node!r}")

    # -- columns and literals -------------------------------------------------------------------
    def _dtype(self, column: Column) -> pl.DataType:
        if column.name not in self.schema:
            known = ", ".join(self.schema)
            raise ConditionError(f"unknown column {column.name!r} (columns: {known})", offset=column.pos)
        return self.schema[column.name]

    def _col(self, column: Column) -> pl.Expr:
        self._dtype(column)
        return pl.col(column.name)

    def _string_column(self, column: Column, what: str) -> pl.Expr:
        dtype = self._dtype(column)
        if dtype != pl.String:
            raise ConditionError(f"{what} needs a text column; {column.name!r} is {dtype}", offset=column.pos)
        return pl.col(column.name)

    def _literal(self, column: Column, value: Literal | Duration) -> pl.Expr:
        dtype = self._dtype(column)
        return pl.lit(self._convert(column, dtype, value), dtype=dtype)

    def _convert(self, column: Column, dtype: pl.DataType, value: Literal | Duration) -> object:
        """The Python value of a literal compared with `column`, or `ConditionError`."""
        pos = value.pos
        if isinstance(value, Duration):
            if dtype.is_numeric():
                return value.seconds
            raise ConditionError(f"a duration cannot be compared with {column.name!r} ({dtype})", offset=pos)
        v = value.value
        if dtype == pl.String and isinstance(v, str):
            return v
        if dtype == pl.Boolean and isinstance(v, bool):
            return v
        if dtype.is_numeric() and isinstance(v, int | float) and not isinstance(v, bool):
            return v
        if dtype.is_temporal() and isinstance(v, str):
            try:
                return datetime.fromisoformat(v)
            except ValueError:
                message = f"{v!r} is not an ISO date-time for {column.name!r}"
                raise ConditionError(message, offset=pos) from None
        raise ConditionError(f"{v!r} cannot be compared with {column.name!r} ({dtype})", offset=pos)

    def _rank(self, column: Column, value: Literal) -> tuple[pl.Expr, int]:
        ranks = RANKED_COLUMNS[column.name]
        if not isinstance(value.value, str) or value.value.upper() not in ranks:
            names = ", ".join(ranks)
            raise ConditionError(f"{value.value!r} is not a {column.name} (one of {names})", offset=value.pos)
        ranked = (
            self._string_column(column, "a rank comparison")
            .str.to_uppercase()
            .replace_strict(ranks, default=None, return_dtype=pl.Int8)
        )
        return ranked, ranks[value.value.upper()]

    # -- predicates -----------------------------------------------------------------------------
    def _compare(self, node: Compare) -> pl.Expr:
        left = node.left
        right: Value = node.right
        if isinstance(right, Literal) and left.name in RANKED_COLUMNS:
            lhs, rank = self._rank(left, right)
            rhs = pl.lit(rank, dtype=pl.Int8)
        elif isinstance(right, Column):
            ldt, rdt = self._dtype(left), self._dtype(right)
            if not (ldt == rdt or (ldt.is_numeric() and rdt.is_numeric())):
                raise ConditionError(f"cannot compare {left.name} ({ldt}) with {right.name} ({rdt})",
                                     offset=right.pos)
            lhs, rhs = pl.col(left.name), pl.col(right.name)
        else:
            lhs, rhs = self._col(left), self._literal(left, right)
        if node.op not in ("==", "!=") and self._dtype(left) == pl.Boolean:
            raise ConditionError(f"{left.name!r} is true/false: use == or !=", offset=left.pos)
        match node.op:
            case "==":
                return (lhs == rhs).fill_null(False)
            case "!=":
                return ~(lhs == rhs).fill_null(False)
            case "<":
                return (lhs < rhs).fill_null(False)
            case "<=":
                return (lhs <= rhs).fill_null(False)
            case ">":
                return (lhs > rhs).fill_null(False)
            case ">=":
                return (lhs >= rhs).fill_null(False)
        raise TypeError(f"unknown comparison operator {node.op!r}")

    def _match(self, node: Match) -> pl.Expr:
        col = self._string_column(node.column, "a regex match")
        pattern = node.pattern
        if not node.ignore_case and literal_pattern(pattern):
            expr = col.str.contains(pattern, literal=True)
        else:
            if node.ignore_case:
                pattern = "(?i)" + pattern
            try:
                pl.select(pl.lit("").str.contains(pattern))
            except pl.exceptions.PolarsError as exc:
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                message = f"invalid regex {node.pattern!r}: {reason}"
                raise ConditionError(message, offset=node.column.pos) from None
            expr = col.str.contains(pattern)
        expr = expr.fill_null(False)
        return ~expr if node.negate else expr

    def _contains(self, node: Contains) -> pl.Expr:
        dtype = self._dtype(node.column)
        if isinstance(dtype, pl.List):
            expr = pl.col(node.column.name).list.contains(node.text)
        else:
            expr = self._string_column(node.column, "contains").str.contains(node.text, literal=True)
        expr = expr.fill_null(False)
        return ~expr if node.negate else expr

    def _in_list(self, node: InList) -> pl.Expr:
        column = node.column
        dtype = self._dtype(column)
        if column.name in RANKED_COLUMNS:
            pairs = [self._rank(column, v) for v in node.values]
            lhs = pairs[0][0] if pairs else pl.col(column.name)
            ranks = pl.Series([rank for _, rank in pairs], dtype=pl.Int8).implode()
            expr = lhs.is_in(ranks) if pairs else pl.lit(False)
        else:
            values = [self._convert(column, dtype, v) for v in node.values]
            expr = pl.col(column.name).is_in(pl.Series(values, dtype=dtype).implode())
        expr = expr.fill_null(False)
        return ~expr if node.negate else expr

    # -- temporal forms -------------------------------------------------------------------------
    def _time(self, what: str, pos: int = -1) -> pl.Expr:
        """Epoch milliseconds of `ts`, gaps filled so the column stays sorted (for `*_by` windows)."""
        dtype = self.schema.get(TIME_COLUMN)
        if dtype is None or not dtype.is_temporal():
            raise ConditionError(f"{what} needs a {TIME_COLUMN!r} time column in the frame", offset=pos)
        return pl.col(TIME_COLUMN).dt.epoch("ms").forward_fill().backward_fill()

    def _by(self, by: tuple[Column, ...]) -> list[pl.Expr]:
        return [self._col(c) for c in by]

    def _has_ts(self) -> pl.Expr:
        return pl.col(TIME_COLUMN).is_not_null()

    def _count(self, node: Count) -> pl.Expr:
        by = self._by(node.by)
        if node.window is None:
            m = self.compile(node.operand)
            return m & _over(m.sum(), by).ge(node.minimum)
        t = self._time("count(...) within", node.window.pos)
        m = self.compile(node.operand) & self._has_ts()
        size = _window(node.window)
        trailing = _over(m.cast(pl.Int32).rolling_sum_by(t, window_size=size, closed="both"), by)
        qualifies = (m & trailing.ge(node.minimum)).cast(pl.Int8)
        # Any qualifying row in [t, t+D]: a trailing window over the reversed, negated time.
        leading = _over(
            qualifies.reverse().rolling_max_by((-t).reverse(), window_size=size, closed="both").reverse(), by
        )
        return m & leading.ge(1).fill_null(False)

    def _followed_by(self, node: FollowedBy) -> pl.Expr:
        t = self._time("followed by", node.window.pos)
        by = self._by(node.by)
        a = self.compile(node.first) & self._has_ts()
        for key in by:
            a = a & key.is_not_null()
        b = self.compile(node.then) & self._has_ts()
        ms = _millis(node.window)
        next_b = _over(pl.when(b).then(t).shift(-1).backward_fill(), by)
        followed = (next_b - t).le(ms).fill_null(False)
        if not node.negate:
            return a & followed
        end = t.max().over(SOURCE_COLUMN) if SOURCE_COLUMN in self.schema else t.max()
        return a & ~followed & (t + ms).le(end).fill_null(False)

    def _first_last(self, node: FirstLast) -> pl.Expr:
        by = self._by(node.by)
        m = self.compile(node.operand)
        if TIME_COLUMN in self.schema:
            m = m & self._has_ts()
        seen = m.cast(pl.UInt32).cum_sum(reverse=node.which == "last")
        return m & _over(seen, by).eq(1)

    def _burst(self, node: Burst) -> pl.Expr:
        t = self._time("burst(...) within", node.window.pos)
        by = self._by(node.by)
        ms = _millis(node.window)
        has_ts = self._has_ts()
        m = self.compile(node.operand) & has_ts
        bucket = pl.when(has_ts).then(t.floordiv(ms))
        in_window = m.cast(pl.UInt32).sum().over([*by, bucket])
        span = _over(bucket.max() - bucket.min() + 1, by)
        baseline = pl.max_horizontal(_over(m.cast(pl.UInt32).sum(), by) / span, pl.lit(1.0))
        return m & (in_window >= baseline * node.factor).fill_null(False)


def _over(expr: pl.Expr, by: list[pl.Expr]) -> pl.Expr:
    return expr.over(by) if by else expr


def _millis(window: Duration) -> int:
    return max(1, math.ceil(window.seconds * 1000 - 1e-9))


def _window(window: Duration) -> str:
    return f"{_millis(window)}i"


def literal_pattern(pattern: str) -> bool:
    """True when a `~` pattern has no regex syntax, so a plain substring search does the job."""
    return not (_REGEX_META & set(pattern))
