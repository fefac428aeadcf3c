"""Which records a piece keeps: those some rule on `events` can match or read (its prefilter).

Every rule on `events` has a cheap necessary condition (`engine.compiler.prefilter`); their union,
run on each piece, keeps every row `evaluate` would look at, so rules give the same findings on the
kept records as on all of them. A rule without one (a `burst`, a user's rule) keeps everything.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from analyzer.engine.compiler import Leaf, prefilter, prefilter_expr, row_local
from analyzer.engine.evaluate import WITHIN
from analyzer.engine.rule import Rule
from analyzer.engine.schemas import frame_schemas

# Columns a piece does not know yet: a leaf on them cannot decide there
UNSETTLED = frozenset({"host"})


def leaves(rules: Iterable[Rule], frame: str = "events") -> list[Leaf] | None:
    """The prefilter leaves of every rule on `frame`; None when some rule has none. (Rows of `tasks`
    are kept after their node is settled: any leaf serves.)"""
    schema = frame_schemas()[frame]
    out: list[Leaf] = []
    for rule in rules:
        if rule.on != frame:
            continue
        if frame != "events" and row_local(rule.condition, schema):
            out.append(rule.expr)  # its whole condition: rows are kept after they are settled
            continue
        found = prefilter(rule.condition, schema)
        if found is None or (frame == "events" and any(_reads_unsettled(leaf) for leaf in found)):
            return None
        out.extend(found)
    return out


def _reads_unsettled(leaf: Leaf) -> bool:
    if isinstance(leaf, tuple):
        return leaf[0] in UNSETTLED
    return bool(UNSETTLED & set(leaf.meta.root_names()))


def keep_expr(rules: Iterable[Rule], frame: str = "events") -> pl.Expr | None:
    """The rows of `frame` to keep for `rules` (None: all of them)."""
    found = leaves(rules, frame)
    return None if found is None else prefilter_expr(found, WITHIN.get(frame))


def covers(kept: list[Leaf] | None, rules: Iterable[Rule], frame: str = "events") -> bool:
    """Whether rows kept for `kept` leaves serve `rules` too (each of their leaves is one of them)."""
    if kept is None:
        return True
    wanted = leaves(rules, frame)
    if wanted is None:
        return False
    have = {_key(leaf) for leaf in kept}
    return all(_key(leaf) in have for leaf in wanted)


def _key(leaf: Leaf) -> str:
    return repr(leaf) if isinstance(leaf, tuple) else str(leaf.meta.serialize(format="json"))
