"""The `when` condition language: a pyparsing grammar that builds `nodes` trees.

Precedence, loosest binding first (Sigma-style: write it down, test it with tree equality):

1. `A followed by B within D [by k, ...]`, `A not followed by B within D [by k, ...]`, and the same
   with `preceded by` (B before A) -- the whole condition; non-associative (parenthesise to nest
   or combine).
2. `or`  (left-associative, n-ary: `a or b or c` is one `Or` of three)
3. `and` (left-associative, n-ary)
4. `not` (prefix, right-associative)
5. predicates and `( ... )`.

Predicates (`col` is a frame column, checked against the frame schema when compiled):

    col == value     != < <= > >=     value: "string" | 'string' | 12 | 1.5 | 300s | true
                                      | false | other_col | a bare level name (below)
    col ~ "regex"    col !~ "regex"   Rust-regex syntax (polars); `~i` / `!~i` ignore case
    col contains "text"               plain substring, no regex (fast); `not contains` too
    col in [v, ...]  col not in [v, ...]
    col is null      col is not null
    true   false
    count(cond) >= N [within D] [by col, ...]     (`> N` means `>= N+1`)
    burst(cond) >= Kx within D [by col, ...]
    first(cond) [by col, ...]     last(cond) [by col, ...]

Literals.  Strings are double- or single-quoted; the only escape is a backslash before the
closing quote character (`"say \\"hi\\""`); every other backslash is kept as written, so regexes
read as they would in a raw string (`"Errno \\d+"`).  Numbers are decimal (`-3`, `2.5`).
Durations are a number and a unit: `ms`, `s`, `m`, `h`, `d` (`300s`, `5m`, `1.5h`, `2d`).
A bare identifier on the right of a comparison with `level` or `severity` is a rank name
when it is one (DEBUG < INFO < WARNING < ERROR < CRITICAL; info < warning < error < critical,
any case; WARN and FATAL are aliases) and such comparisons compare ranks; elsewhere a bare
identifier is a column.  Inside `[...]` bare identifiers are string literals.
Keywords (reserved, lower case): and or not in is null true false contains within by followed
count burst first last preceded.

The temporal meaning of `count`, `burst`, `first`, `last`, `followed by` and `preceded by` is specified in
`compiler.py`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pyparsing as pp

from .errors import ConditionError
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

KEYWORDS = [
    *("and", "or", "not", "in", "is", "null", "true", "false"),
    *("contains", "within", "by", "followed", "count", "burst", "first", "last", "preceded"),
]

# Bare identifiers that stand for ranks when compared with these columns (upper-cased keys).
LEVEL_RANK: dict[str, int] = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50,
                              "FATAL": 50}
SEVERITY_RANK: dict[str, int] = {"INFO": 0, "WARNING": 1, "ERROR": 2, "CRITICAL": 3}
RANKED_COLUMNS: dict[str, dict[str, int]] = {"level": LEVEL_RANK, "severity": SEVERITY_RANK}

UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _unquote(raw: str) -> str:
    quote = raw[0]
    return raw[1:-1].replace("\\" + quote, quote)


def _kw(word: str) -> pp.Keyword:
    return pp.Keyword(word, ident_chars=pp.identbodychars)


@lru_cache(maxsize=1)
def _grammar() -> pp.ParserElement:
    kw = {w: _kw(w) for w in KEYWORDS}
    AND, OR, NOT, IN, IS, NULL, TRUE, FALSE = (kw[w] for w in KEYWORDS[:8])
    CONTAINS, WITHIN, BY, FOLLOWED, COUNT, BURST, FIRST, LAST, PRECEDED = (kw[w] for w in KEYWORDS[8:])
    LPAR, RPAR, LBRACK, RBRACK = map(pp.Suppress, "()[]")

    reserved = pp.MatchFirst(list(kw.values()))
    ident = (~reserved + pp.Word(pp.identchars, pp.identbodychars)).set_name("column name")
    column = ident.copy().set_parse_action(lambda s, loc, t: Column(t[0], pos=_skip(s, loc)))

    string = pp.Regex(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'").set_name("quoted string")
    string_lit = string.copy().set_parse_action(lambda s, loc, t: Literal(_unquote(t[0]), pos=_skip(s, loc)))
    duration = pp.Regex(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)(?![\w.])").set_name("duration")
    duration.set_parse_action(lambda s, loc, t: _duration(t[0], _skip(s, loc)))
    number = pp.Regex(r"-?\d+(?:\.\d+)?(?![\w.])").set_name("number")
    number.set_parse_action(lambda s, loc, t: Literal(_number(t[0]), pos=_skip(s, loc)))
    integer = pp.Regex(r"\d+(?![\w.])").set_name("integer").set_parse_action(lambda t: int(t[0]))
    factor = pp.Regex(r"(\d+(?:\.\d+)?)x(?![\w.])").set_name("factor such as 10x")
    factor.set_parse_action(lambda t: float(t[0][:-1]))
    boolean = (TRUE | FALSE).set_parse_action(lambda s, loc, t: Literal(t[0] == "true", pos=_skip(s, loc)))
    bare_word = ident.copy().set_parse_action(lambda s, loc, t: Literal(t[0], pos=_skip(s, loc)))

    value = (duration | number | string_lit | boolean | column).set_name("value")
    list_value = (duration | number | string_lit | boolean | bare_word).set_name("value")

    condition = pp.Forward().set_name("condition")
    or_expr = pp.Forward().set_name("condition")

    cmp_op = pp.one_of("== != <= >= < >").set_name("comparison operator")
    comparison = (column + cmp_op - value).set_parse_action(_compare)
    match_op = pp.one_of("!~i !~ ~i ~").set_name("~ or !~")
    match = (column + match_op - string_lit).set_parse_action(_match)
    contains = (column + pp.Opt(NOT)("neg") + CONTAINS - string_lit).set_parse_action(
        lambda t: Contains(t[0], t[-1].value, negate="neg" in t)
    )
    in_list = (
        column + pp.Opt(NOT)("neg") + IN - LBRACK + pp.Group(pp.Opt(pp.DelimitedList(list_value)))
        + RBRACK
    ).set_parse_action(lambda t: InList(t[0], tuple(t[-1]), negate="neg" in t))
    is_null = (column + IS - pp.Opt(NOT)("neg") + NULL).set_parse_action(
        lambda t: IsNull(t[0], negate="neg" in t)
    )
    const = (TRUE | FALSE).set_parse_action(lambda t: Const(t[0] == "true"))

    by_clause = pp.Group(pp.Opt(BY.suppress() - pp.DelimitedList(column)))("by")
    within = pp.Opt(WITHIN.suppress() - duration)("within")
    count = (
        COUNT.suppress() - LPAR + condition("inner") + RPAR + pp.one_of(">= >")("op") + integer("n")
        + within + by_clause
    ).set_parse_action(_count)
    burst = (
        BURST.suppress() - LPAR + condition("inner") + RPAR + pp.Literal(">=").suppress() + factor("k")
        + WITHIN.suppress() + duration("within") + by_clause
    ).set_parse_action(
        lambda t: Burst(t["inner"], t["k"], t["within"], tuple(t["by"]))
    )
    first_last = ((FIRST | LAST)("which") - LPAR + condition("inner") + RPAR + by_clause).set_parse_action(
        lambda t: FirstLast(t["which"], t["inner"], tuple(t["by"]))
    )

    predicate = (
        count | burst | first_last | const | is_null | in_list | contains | match | comparison
        | (LPAR + condition + RPAR)
    ).set_name("condition")
    or_expr <<= pp.infix_notation(
        predicate,
        [
            (NOT, 1, pp.OpAssoc.RIGHT, lambda t: Not(t[0][1])),
            (AND, 2, pp.OpAssoc.LEFT, lambda t: And(tuple(t[0][0::2]))),
            (OR, 2, pp.OpAssoc.LEFT, lambda t: Or(tuple(t[0][0::2]))),
        ],
    )
    # `A [not] followed|preceded by ...` as an optional tail, so A is parsed once (no backtracking).
    followed_tail = pp.Group(
        pp.Opt(NOT)("neg") + (FOLLOWED | PRECEDED)("dir") - BY.suppress() + or_expr("then")
        + WITHIN.suppress() + duration("within") + by_clause
    )
    condition <<= (or_expr("first") + pp.Opt(followed_tail)("tail")).set_parse_action(_followed)
    return condition


def _skip(text: str, loc: int) -> int:
    """Parse actions get the offset before skipped whitespace; nodes record the token's own."""
    while loc < len(text) and text[loc].isspace():
        loc += 1
    return loc


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _duration(text: str, pos: int) -> Duration:
    unit = text.lstrip("0123456789.")
    seconds = float(text[: len(text) - len(unit)]) * UNITS[unit]
    if seconds <= 0:
        raise ConditionError("a duration must be positive", offset=pos)
    return Duration(seconds, pos=pos)


def _compare(t: pp.ParseResults) -> Compare:
    left: Column = t[0]
    op: Any = t[1]
    right: Value = t[2]
    ranks = RANKED_COLUMNS.get(left.name)
    if ranks is not None and isinstance(right, Column) and right.name.upper() in ranks:
        right = Literal(right.name, pos=right.pos)
    return Compare(left, op, right)


def _match(t: pp.ParseResults) -> Match:
    op: str = t[1]
    return Match(t[0], t[2].value, negate=op.startswith("!"), ignore_case=op.endswith("i"))


def _followed(t: pp.ParseResults) -> Condition:
    first: Condition = t[0]
    if len(t) == 1:
        return first
    tail = t[1]
    return FollowedBy(first, tail["then"], tail["within"], tuple(tail["by"]), negate="neg" in tail,
                      before=tail["dir"] == "preceded")


def _count(t: pp.ParseResults) -> Count:
    n: int = t["n"]
    minimum = n + 1 if t["op"] == ">" else n
    window = t["within"][0] if "within" in t else None
    return Count(t["inner"], minimum, window, tuple(t["by"]))


def parse_condition(text: str) -> Condition:
    """Parse a `when` string into a node tree, or raise `ConditionError` located in `text`."""
    try:
        result = _grammar().parse_string(text, parse_all=True)
    except pp.ParseBaseException as exc:
        loc = exc.loc
        while loc < len(text) and text[loc].isspace():
            loc += 1
        found = text[loc : loc + 20].split("\n")[0]
        what = f"unexpected {found!r}" if found else "unexpected end of condition"
        line, column = offset_to_line_col(text, loc)
        raise ConditionError(f"{what}: {exc.msg}", offset=loc, line=line, column=column) from None
    except ConditionError as exc:
        line, column = offset_to_line_col(text, exc.offset)
        raise ConditionError(exc.message, offset=exc.offset, line=line, column=column) from None
    node: Condition = result[0]
    return node


def offset_to_line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based offset in `text`."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column
