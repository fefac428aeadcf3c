"""Typed, immutable nodes of a parsed `when` condition.

The grammar (`grammar.py`) builds these; the compiler (`compiler.py`) turns them into one
boolean `pl.Expr` with a single `match`.  Nodes are frozen dataclasses, so trees compare by
value (grammar tests assert tree equality) and can be shared without copying.

`pos` is the 0-based offset of the node in the `when` string; it is excluded from equality
and only serves error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal as TypingLiteral

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Column:
    """A frame column, by name."""

    name: str
    pos: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class Literal:
    """A string, number or boolean constant (also a bare level/severity name such as WARNING)."""

    value: Scalar
    pos: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class Duration:
    """A duration literal such as `300s`, `5m`, `1h`, `2d`, `250ms`, held in seconds."""

    seconds: float
    pos: int = field(default=-1, compare=False, repr=False)


Value = Column | Literal | Duration

CompareOp = TypingLiteral["==", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True)
class Const:
    """`true` / `false` as a whole condition."""

    value: bool


@dataclass(frozen=True)
class Compare:
    """`column OP value`; `level` and `severity` compare by rank."""

    left: Column
    op: CompareOp
    right: Value


@dataclass(frozen=True)
class Match:
    """`column ~ "re"` (negate: `!~`; ignore_case: `~i` / `!~i`)."""

    column: Column
    pattern: str
    negate: bool = False
    ignore_case: bool = False


@dataclass(frozen=True)
class Contains:
    """`column contains "literal"` (substring, no regex); negate: `not contains`."""

    column: Column
    text: str
    negate: bool = False


@dataclass(frozen=True)
class InList:
    """`column in [v, ...]` / `column not in [v, ...]`."""

    column: Column
    values: tuple[Literal, ...]
    negate: bool = False


@dataclass(frozen=True)
class IsNull:
    """`column is null` / `column is not null`."""

    column: Column
    negate: bool = False


@dataclass(frozen=True)
class Not:
    operand: Condition


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class Count:
    """`count(cond) >= N [within D] [by c1, c2]`: rows of `cond` in a window holding >= N of them.

    `minimum` is N normalised to `>=` (`> N` parses as minimum N+1).  `window` is None for a
    count over the whole frame (per group).
    """

    operand: Condition
    minimum: int
    window: Duration | None = None
    by: tuple[Column, ...] = ()


@dataclass(frozen=True)
class FollowedBy:
    """`A [not] followed by B within D [by key]`; with `before`, `A [not] preceded by B …` (B earlier)."""

    first: Condition
    then: Condition
    window: Duration
    by: tuple[Column, ...] = ()
    negate: bool = False
    before: bool = False


@dataclass(frozen=True)
class FirstLast:
    """`first(cond) [by cols]` / `last(cond) [by cols]`: one row per group."""

    which: TypingLiteral["first", "last"]
    operand: Condition
    by: tuple[Column, ...] = ()


@dataclass(frozen=True)
class Burst:
    """`burst(cond) >= Kx within D [by cols]`: windows with >= K times the group's mean rate."""

    operand: Condition
    factor: float
    window: Duration
    by: tuple[Column, ...] = ()


Condition = (
    Const | Compare | Match | Contains | InList | IsNull | Not | And | Or
    | Count | FollowedBy | FirstLast | Burst
)


def columns(node: object) -> list[Column]:
    """Every `Column` the tree names, in source order (for schema checks)."""
    found: list[Column] = []

    def walk(n: object) -> None:
        match n:
            case Column():
                found.append(n)
            case Literal() | Duration() | Const():
                pass
            case Compare(left=left, right=right):
                walk(left)
                walk(right)
            case Match(column=c) | Contains(column=c) | InList(column=c) | IsNull(column=c):
                walk(c)
            case Not(operand=o):
                walk(o)
            case And(operands=ops) | Or(operands=ops):
                for o in ops:
                    walk(o)
            case Count(operand=o, by=by) | FirstLast(operand=o, by=by) | Burst(operand=o, by=by):
                walk(o)
                for c in by:
                    walk(c)
            case FollowedBy(first=a, then=b, by=by):
                walk(a)
                walk(b)
                for c in by:
                    walk(c)
            case _:
                raise TypeError(f"not a condition node: {n!r}")

    walk(node)
    return found


def is_temporal(node: object) -> bool:
    """True when the tree contains a form that needs row order by time."""
    match node:
        case Count() | FollowedBy() | Burst() | FirstLast():
            return True
        case Not(operand=o):
            return is_temporal(o)
        case And(operands=ops) | Or(operands=ops):
            return any(is_temporal(o) for o in ops)
        case _:
            return False
