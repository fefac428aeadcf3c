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
  In both forms, rows with a null key never match (they cannot be correlated).
- `A preceded by B within D by k` / `A not preceded by B within D by k`: the same looking back:
  rows matching A that have (have no) earlier row matching B with the same key at most D before
  them.  The negated form has no condition on the start of the log (a B before the log began is
  not known), and a row matching A without a time or key counts as not preceded.  (In `count`,
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


def regex_reason(error: str, shift: int = 0) -> str:
    """What is wrong with a pattern, from the regex crate's report that polars wraps (`regex parse
    error:` / the pattern / a caret line / `error: unclosed group` / the polars expression): the
    reason and the character it points at, without polars' internals.

        regex parse error:
            (unclosed
            ^
        error: unclosed group
    """
    lines = error.splitlines()
    reason = next((ln.removeprefix("error:").strip() for ln in lines if ln.startswith("error:")), "")
    caret = next((ln for ln in lines if ln.strip() and set(ln.strip()) <= {"^"}), None)
    if not reason:
        return "not a valid regular expression"
    if caret is None:
        return reason
    at = len(caret) - len(caret.lstrip()) - 4 - shift  # the crate indents the pattern by 4
    return f"{reason} (at character {at + 1})" if at >= 0 else reason


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
    def _unknown_level(self, column: Column) -> pl.Expr:
        """A record whose level is unknown (a line no layout reads: DESIGN "Every line is evidence")
        passes a lower bound on `level`, so its text is still judged; `==`, `<` and `in` it fails."""
        return pl.col("level").is_null() if column.name == "level" else pl.lit(False)

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
                return (lhs > rhs).fill_null(False) | self._unknown_level(left)
            case ">=":
                return (lhs >= rhs).fill_null(False) | self._unknown_level(left)
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
                shift = len(pattern) - len(node.pattern)  # the `(?i)` added in front
                message = f"invalid regex {node.pattern!r}: {regex_reason(str(exc), shift)}"
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
        if node.before:
            prev_b = _over(pl.when(b).then(t).shift(1).forward_fill(), by)
            preceded = a & (t - prev_b).le(ms).fill_null(False)
            # nothing is known before a row without a time or key: it is not preceded
            return self.compile(node.first) & ~preceded if node.negate else preceded
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


# -- prefilters -----------------------------------------------------------------------------------
# A prefilter is a cheap necessary condition for a row-local rule: a disjunction of leaves, each a
# literal substring of a text column (`Needle`) or a cheap expression.  Rows failing every rule's
# prefilter cannot match any of those rules, so `evaluate` runs the full conditions (regexes) only
# on the rows that pass.  `None` means "no cheap necessary condition" (the rule needs every row).

Needle = tuple[str, str]  # (text column, literal it must contain)
Leaf = Needle | pl.Expr


def prefilter(node: Condition, schema: Schema) -> list[Leaf] | None:
    """Leaves whose OR holds on every row `node` can match and every row its evaluation reads.

    For a row-local condition that is a necessary condition of a match. A temporal form (`count`,
    `followed by`, `first`/`last`) only ever counts, pairs or picks rows of its operands, and
    keeps their order and times, so it gives the same result on the rows its operands may match:
    those are added. `burst` compares with a rate over the whole frame: None. None too when some
    part has no cheap condition; the rule then sees the whole frame.
    """
    p = _Prefilter(schema)
    top, need = p.leaves(node), p.need(node)
    return None if top is None or need is None else [*top, *need]


def row_local(node: Condition, schema: Schema) -> bool:
    """Whether `node` reads each row alone (no temporal form): its compiled expression then keeps
    exactly the rows it can match, a tighter filter than its prefilter."""
    return _Prefilter(schema).need(node) == []


def prefilter_expr(leaves: list[Leaf], within: Mapping[str, str] | None = None) -> pl.Expr:
    """One boolean expression for the OR of `leaves`: one multi-literal scan per text column.

    `within` maps a column to one that holds its every value as a substring (`events.message`
    is the start of `events.text`): its literals are looked for in the wider column instead, a
    looser condition that saves a scan.
    """
    needles: dict[str, list[str]] = {}
    exprs: list[pl.Expr] = []
    for leaf in leaves:
        if isinstance(leaf, tuple):
            column = (within or {}).get(leaf[0], leaf[0])
            needles.setdefault(column, [])
            if leaf[1] not in needles[column]:
                needles[column].append(leaf[1])
        else:
            exprs.append(leaf)
    for column, texts in needles.items():
        exprs.append(pl.col(column).str.contains_any(texts).fill_null(False))
    return pl.any_horizontal(exprs) if exprs else pl.lit(False)


class _Prefilter(_Compiler):
    def leaves(self, node: Condition) -> list[Leaf] | None:
        match node:
            case Const(value=value):
                return None if value else []
            case Contains(column=column, text=text, negate=False) if self.schema.get(column.name) == pl.String:
                return [(column.name, text)]
            case Match(column=column, negate=False) if self.schema.get(column.name) == pl.String:
                needles = None if node.ignore_case else required_literals(node.pattern)
                if needles is None:  # any match needs a value
                    return [pl.col(column.name).is_not_null()]
                return [(column.name, text) for text in needles]
            case Compare(op="==", left=left, right=Literal()) if left.name not in RANKED_COLUMNS:
                return [self.compile(node)]
            case InList(column=column, negate=False) if column.name not in RANKED_COLUMNS:
                return [self.compile(node)]
            case IsNull(negate=True):
                return [self.compile(node)]
            case Or(operands=operands):
                out: list[Leaf] = []
                for operand in operands:
                    sub = self.leaves(operand)
                    if sub is None:
                        return None
                    out.extend(sub)
                return out
            case And(operands=operands):
                # any operand's leaves are necessary: take the most selective-looking one
                options = [sub for sub in (self.leaves(o) for o in operands) if sub is not None]
                return min(options, key=_leaf_cost) if options else None
            # a temporal form matches rows of its (first) operand only
            case Count(operand=operand) | FirstLast(operand=operand) | FollowedBy(first=operand):
                return self.leaves(operand)
            case _:
                return None

    def need(self, node: Condition) -> list[Leaf] | None:
        """Leaves covering the rows the temporal forms inside `node` read ([] when it has none)."""
        match node:
            case Count(operand=operand) | FirstLast(operand=operand):
                return self._rows_of(operand)
            case FollowedBy(first=first, then=then, negate=negate, before=before):
                a, b = self._rows_of(first), self._rows_of(then)
                if a is None or b is None:
                    return None
                # `not followed by` also reads where each source's log ends (its last time)
                end = [self._last_rows()] if negate and not before and TIME_COLUMN in self.schema else []
                return [*a, *b, *end]
            case Burst():
                return None
            case Not(operand=operand):
                return self.need(operand)
            case And(operands=operands) | Or(operands=operands):
                out: list[Leaf] = []
                for operand in operands:
                    sub = self.need(operand)
                    if sub is None:
                        return None
                    out.extend(sub)
                return out
            case _:
                return []

    def _last_rows(self) -> pl.Expr:
        t = pl.col(TIME_COLUMN)
        return t == (t.max().over(SOURCE_COLUMN) if SOURCE_COLUMN in self.schema else t.max())

    def _rows_of(self, operand: Condition) -> list[Leaf] | None:
        leaves, need = self.leaves(operand), self.need(operand)
        return None if leaves is None or need is None else [*leaves, *need]


def _leaf_cost(leaves: list[Leaf]) -> int:
    # a literal or an equality is selective; `is not null` (a regex we could not read) hardly is
    return sum(1 if isinstance(leaf, tuple) else 2 for leaf in leaves) + (
        100 * sum(1 for leaf in leaves if not isinstance(leaf, tuple) and "is_not_null" in str(leaf)))


def required_literals(pattern: str) -> list[str] | None:
    """Literals one of which any match of `pattern` contains (one per top-level alternative), or None.

    Conservative: inline flags (`(?i)`, …) give None; groups and classes are skipped (their content
    is not required), a char followed by `?`, `*` or `{` is optional; escapes of letters and digits
    (`\\d`, `\\b`, `\\n`) end a literal run.  Each alternative contributes its longest run.
    """
    if "(?" in pattern:
        return None
    alternatives: list[str] = []
    runs: list[str] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            runs.append("".join(run))
            run.clear()

    def end_alternative() -> bool:
        end_run()
        if not runs:
            return False
        alternatives.append(max(runs, key=len))
        runs.clear()
        return True

    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                return None
            nxt = pattern[i + 1]
            if nxt.isalnum() or nxt in "<>":
                end_run()
            else:
                run.append(nxt)
            i += 2
            continue
        if c in "?*{":
            if run:
                run.pop()
            end_run()
            if c == "{":
                close = pattern.find("}", i)
                if close < 0:
                    return None
                i = close + 1
                continue
        elif c == "+":
            end_run()
        elif c == "|":
            if not end_alternative():
                return None
        elif c == "(":
            end_run()
            i = _skip_group(pattern, i)
            if i < 0:
                return None
            continue
        elif c == "[":
            end_run()
            i = _skip_class(pattern, i)
            if i < 0:
                return None
            continue
        elif c in ".^$)]}":
            end_run()
        else:
            run.append(c)
        i += 1
    if not end_alternative():
        return None
    return alternatives


def _skip_class(pattern: str, i: int) -> int:
    """Index after the `[...]` class starting at `i`, or -1."""
    j = i + 1
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    while j < len(pattern):
        if pattern[j] == "\\":
            j += 2
            continue
        if pattern[j] == "[":
            return -1  # nested classes: do not try
        if pattern[j] == "]":
            return j + 1
        j += 1
    return -1


def _skip_group(pattern: str, i: int) -> int:
    """Index after the `(...)` group starting at `i` (and its quantifier does not matter), or -1."""
    depth, j = 0, i
    while j < len(pattern):
        c = pattern[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            j = _skip_class(pattern, j)
            if j < 0:
                return -1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return -1
