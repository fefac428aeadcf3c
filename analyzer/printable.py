"""Text from a bundle made safe to show: control characters are shown, never obeyed.

Log lines, file names, thread names, hosts and user rules end up on a terminal, in a CI log, in
a browser. A control character there is an instruction to whatever displays it: `ESC]52;c;…`
writes the clipboard, `ESC]8;;url` makes a link, `ESC P` starts a device control string,
`ESC[?1049h` (or the one-character C1 CSI, U+009B) switches screens, BEL rings, CR and backspace
overwrite what was written before them, and bidi overrides and isolates (U+202A-U+202E,
U+2066-U+2069) reorder text so that what is read is not what is there (Trojan Source,
CVE-2021-42574). Each such character becomes a visible escape, as Python writes it (`\\x1b`,
`\\x9b`, `\\u202e`; a byte that was not UTF-8 kept as a lone surrogate shows as `\\xNN`), so
`ESC]8;;url` reads `\\x1b]8;;url`: nothing is lost, nothing is obeyed.

`printable_report` does this once to every string of a `Report` when `Bundle.report()` makes it,
so every renderer, the notebook and the CLI's messages show the same clean text, and the only
control sequences in any output are the styling a renderer adds itself.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, cast

from analyzer.advice import Advice, Artifact
from analyzer.bundle import Problem
from analyzer.engine.rule import Rule
from analyzer.findings import Baseline, Evidence, Finding, Incident
from analyzer.report import Report, Summary
from analyzer.sources.celery_log import Coverage

# C0 but tab and line feed, DEL, C1, bidi marks, embeddings, overrides and isolates, surrogates.
# One character class, no repetition: linear in the text.
_CONTROL = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_IN_LINES = re.compile(f"[{_CONTROL}]")  # multi-line text: line feeds stay
_IN_LINE = re.compile(f"[\n{_CONTROL}]")  # a name or a one-line message: a line feed is escaped too


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    if code < 0x100:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by `surrogateescape`
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def printable(text: str, *, lines: bool = False) -> str:
    """`text` with every control character written as its escape; tabs stay, and line feeds
    when `lines` (a multi-line log record)."""
    pattern = _IN_LINES if lines else _IN_LINE
    return pattern.sub(_escape, text) if pattern.search(text) else text


# (record, field) whose text is several lines by nature: a multi-line log record, rule prose
_MULTILINE = {(Evidence, "text"), (Finding, "remediation"), (Report, "rule_errors")}
_RECORDS = (Report, Coverage, Problem, Finding, Evidence, Summary, Advice, Artifact, Incident, Baseline)
# what reports show of a rule, and whether it may hold several lines
_RULE_TEXT = {"title": False, "what": True, "why": True, "remediation": True, "references": False, "path": False}


def _clean(value: Any, lines: bool = False) -> Any:
    if isinstance(value, str):
        return printable(value, lines=lines)
    if isinstance(value, (list, tuple)):
        return type(value)(_clean(v, lines) for v in value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v, lines) for k, v in value.items()}
    if isinstance(value, Rule):  # its condition and expression are code, not text to show
        return dataclasses.replace(value, **{name: _clean(getattr(value, name), multi)
                                             for name, multi in _RULE_TEXT.items()})
    if isinstance(value, _RECORDS):
        kind = type(value)
        return dataclasses.replace(value, **{f.name: _clean(getattr(value, f.name), (kind, f.name) in _MULTILINE)
                                             for f in dataclasses.fields(value) if f.init})
    return value


def printable_report(report: Report) -> Report:
    """`report` with `printable` applied to every string it holds (a new report; `report` is
    left as it is)."""
    return cast(Report, _clean(report))
