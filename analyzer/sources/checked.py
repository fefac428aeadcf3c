"""Per-value checks of decoded JSON (or Python literals) before they go into typed frames.

A document from a bundle may hold any value anywhere: `"time_start": 1e20`, a list where a string
belongs, a pid past 2**63. Built into a polars frame, one such value fails the whole frame and so
drops every other worker of the file. Each check here returns the value when it fits its column and
None otherwise, and records what it left out in a `Rejects`, which gives one coverage note per file
(however many values were bad), naming where each of the first few was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from analyzer.clip import clip

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
LISTED = 5  # rejected values named in the note; the rest are counted
VALUE_CHARS = 40  # how much of a rejected value the note quotes


@dataclass
class Rejects:
    """Values left out of one file's rows: how many, and where the first `LISTED` were."""

    count: int = 0
    first: list[str] = field(default_factory=list)

    def add(self, where: str, name: str, value: object, why: str) -> None:
        self.count += 1
        if len(self.first) < LISTED:
            self.first.append(f"{where}: {name}={clip(_repr(value), VALUE_CHARS)} ({why})")

    def note(self, what: str = "value(s)") -> str | None:
        """The coverage note, or None when nothing was left out."""
        if not self.count:
            return None
        more = f"; and {self.count - len(self.first)} more" if self.count > len(self.first) else ""
        return (f"{self.count} {what} of the wrong type or out of range left empty, the rest of each entry "
                f"kept: {'; '.join(self.first)}{more}")


def _repr(value: object) -> str:
    try:
        return repr(value)
    except (RecursionError, ValueError):  # a deeply nested value; an int past the repr digit limit
        return f"<{type(value).__name__}>"


def int64(text: str | None) -> int | None:
    """`text` as an Int64 when it is one (optional sign, then decimal digits), else None.

    `int()` of a bundle's digits is no safe conversion: past 4,300 digits it raises ValueError,
    `str.isdigit()` passes superscripts `int()` refuses, and a value past 2**63 fails the whole
    polars frame it goes into.
    """
    if not text:
        return None
    digits = text[1:] if text[0] in "+-" else text
    if not digits.isdecimal() or len(digits) > 19:
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


def string(value: object, where: str, name: str, rejects: Rejects) -> str | None:
    if value is None or isinstance(value, str):
        return value
    rejects.add(where, name, value, "not a string")
    return None


def integer(value: object, where: str, name: str, rejects: Rejects) -> int | None:
    """An int that fits Int64 (bool is not an int here)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if INT64_MIN <= value <= INT64_MAX:
            return value
        rejects.add(where, name, value, "out of range")
        return None
    rejects.add(where, name, value, "not an integer")
    return None


def number(value: object, where: str, name: str, rejects: Rejects) -> float | None:
    """A finite float (an int is converted when it fits a float)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            f = float(value)
        except OverflowError:
            f = math.inf
        if math.isfinite(f):
            return f
        rejects.add(where, name, value, "out of range")
        return None
    rejects.add(where, name, value, "not a number")
    return None


def boolean(value: object, where: str, name: str, rejects: Rejects) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    rejects.add(where, name, value, "not true/false")
    return None


def timestamp(value: object, where: str, name: str, rejects: Rejects) -> datetime | None:
    """A Unix time in seconds as a naive UTC datetime; 0 (never set) is None without a note."""
    f = number(value, where, name, rejects)
    if f is None or f == 0:
        return None
    try:
        if f < 0:
            raise ValueError
        return datetime.fromtimestamp(f, tz=UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        rejects.add(where, name, value, "not a time")
        return None
