"""Timeline order (`ts` with nulls last, then `source`, `line`) without copying ordered frames.

Sorting a frame gathers every column into new buffers; for a big log that is hundreds of MB
and most frames arrive already in order (one file, written in time order). A vectorised
pairwise check costs a few ms and lets those through untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

TIMELINE = ("ts", "source", "line")


def is_ordered(df: pl.DataFrame, keys: Sequence[str]) -> bool:
    """Whether each row's key tuple is >= the previous row's, nulls sorting after values."""
    if df.height < 2 or not keys:
        return True
    later: pl.Expr = pl.lit(False)
    same: pl.Expr = pl.lit(True)
    for key in keys:
        cur, prev = pl.col(key), pl.col(key).shift(1)
        greater = (cur > prev).fill_null(False) | (cur.is_null() & prev.is_not_null())
        equal = (cur == prev).fill_null(False) | (cur.is_null() & prev.is_null())
        later = later | (same & greater)
        same = same & equal
    return bool(df.select((later | same).slice(1).all()).item())


def timeline(df: pl.DataFrame, keys: Sequence[str] = TIMELINE) -> pl.DataFrame:
    """`df` sorted by those of `keys` it has (nulls last, stable); itself when already so."""
    present = [k for k in keys if k in df.columns]
    if not present or is_ordered(df, present):
        return df
    return df.sort(present, nulls_last=True, maintain_order=True)
