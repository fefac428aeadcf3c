"""Cutting text for reports without cutting a secret in half.

Evidence and coverage samples are cut when they are made and redacted when a report is rendered
(`analyzer.redact`): half a `redis://:password@host` would no longer look like a URL to the
redactor, and the start of the password would leak.
"""

from __future__ import annotations

import re

# where a token ends: a secret (a URL's password, a token=value) never spans one of these
_BOUNDARY = re.compile(r"[\s\"',;]")


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters (then "…") at a token's end, never inside one.

    A token that alone is longer than `limit` is dropped whole.
    """
    if len(text) <= limit:
        return text
    ends = [m.start() for m in _BOUNDARY.finditer(text, 0, limit + 1)]
    return text[:ends[-1] if ends else 0] + "…"


SAMPLE_CHARS = 300  # of an unrecognised line kept as a coverage sample
