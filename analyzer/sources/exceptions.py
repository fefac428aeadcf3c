"""What a record's exception is: its category by the exception-class table, and its message template.

`exception_classes.toml` (data beside the taxonomy) says which raised exceptions are infrastructure;
`classify` adds `exc_category` from it and `template` (the message with ids, addresses and numbers
masked) to the records that can carry an error: those with an exception or at ERROR / CRITICAL.
Rules group unclassified errors by (`exc_type`, `template`), like Sentry groups issues.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import polars as pl

from analyzer.categories import CATEGORIES

# Where an exception's class is written: an exception line of a traceback (column 0), Celery's repr
# after `raised unexpected: ` / `raised error: ` / `Unrecoverable error: `, or a wrapper's
# `(original.Class) message` (SQLAlchemy)
_BEFORE = r"(?:^|raised unexpected: |raised error: |Unrecoverable error: |\()"
_AFTER = r"(?:\(|\)|:|$)"
TEMPLATE_MAX = 160
# A token holding a digit is a value (an id, a count, a port, an address, `A-100`), as log parsers
# such as Drain take it; uuids first, so that one stays one mask
_MASKS = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<id>"),
    (r"[^\s'\"(),\[\]{}<>:=]*[0-9][^\s'\"(),\[\]{}<>:=]*", "<*>"),
)


class TableError(ValueError):
    """The exception table names an unknown category or holds a bad entry (a packaging mistake)."""


@dataclass(frozen=True)
class Entry:
    category: str
    classes: tuple[str, ...]
    message: str | None
    source: str

    def expr(self, text: pl.Expr) -> pl.Expr:
        conds = []
        if self.classes:
            conds.append(text.str.contains(class_pattern(self.classes)))
        if self.message:
            conds.append(text.str.contains(self.message))
        return pl.all_horizontal(conds)


def class_pattern(classes: tuple[str, ...]) -> str:
    """A regex finding any of `classes` where an exception class is written (a bare name: any module)."""
    names = []
    for name in classes:
        dotted = re.escape(name)
        names.append(dotted if "." in name else rf"(?:[A-Za-z_]\w*\.)*{dotted}")
    return rf"(?m){_BEFORE}(?:{'|'.join(names)}){_AFTER}"


def parse_table(text: str) -> tuple[Entry, ...]:
    entries: list[Entry] = []
    for i, raw in enumerate(tomllib.loads(text).get("entry", []), 1):
        where = f"exception table entry {i}"
        category, classes, message = raw.get("category"), raw.get("classes", []), raw.get("message")
        if category not in CATEGORIES:
            raise TableError(f"{where}: unknown category {category!r}")
        if not classes and not message:
            raise TableError(f"{where}: neither classes nor message")
        if not raw.get("source"):
            raise TableError(f"{where}: no source")
        if message is not None:
            try:
                re.compile(message)
            except re.error as exc:
                raise TableError(f"{where}: bad message regex: {exc}") from exc
        entries.append(Entry(category, tuple(classes), message, raw["source"]))
    return tuple(entries)


@cache
def table() -> tuple[Entry, ...]:
    return parse_table(resources.files("analyzer").joinpath("exception_classes.toml").read_text(encoding="utf-8"))


def category_expr(text: pl.Expr) -> pl.Expr:
    """The first table entry's category that `text` (a record's whole text) matches, else null."""
    out: pl.Expr = pl.lit(None, dtype=pl.String)
    for entry in reversed(table()):
        out = pl.when(entry.expr(text)).then(pl.lit(entry.category)).otherwise(out)
    return out


def template_expr(message: pl.Expr) -> pl.Expr:
    """`message`'s first line with values (tokens holding a digit) masked: one template per error kind."""
    out = message.str.slice(0, 4 * TEMPLATE_MAX)
    for pattern, mask in _MASKS:
        out = out.str.replace_all(pattern, mask)
    return out.str.slice(0, TEMPLATE_MAX)


def may_err() -> pl.Expr:
    """Records that can carry an error: an exception folded in, or logged at ERROR / CRITICAL."""
    return (pl.col("exc_type").is_not_null() | pl.col("level").is_in(["ERROR", "CRITICAL"])).fill_null(False)


def classify(records: pl.DataFrame) -> pl.DataFrame:
    """`records` with `exc_category` and `template` set on those that may carry an error (null elsewhere);
    the regexes run on those rows only."""
    if records.is_empty():
        return records.with_columns(pl.lit(None, dtype=pl.String).alias("exc_category"),
                                    pl.lit(None, dtype=pl.String).alias("template"))
    indexed = records.with_row_index("_row")
    some = indexed.filter(may_err()).select(
        "_row", category_expr(pl.col("text").fill_null(pl.col("message"))).alias("exc_category"),
        template_expr(pl.col("message").fill_null("")).alias("template"))
    return (indexed.drop("exc_category", "template", strict=False)
            .join(some, on="_row", how="left", maintain_order="left").drop("_row"))
