"""The real-world corpus: excerpts users posted in public threads, and how the analyzer reads them.

Each excerpt is `excerpts/<id>.log` (the log text exactly as posted) with `excerpts/<id>.toml`
beside it: `source` (URL), `project`, `expected` (the category a Celery expert names first, or
"healthy"), `also` (other categories present), `shapes` (how the copy was made: docker-compose,
ansi-caret, journald, ...) and `reason`.

The analyzer reads each excerpt as a user would hand it over: a bundle directory holding only
`excerpt.log`, no `--log-format`, no hint. Its answer is the category of the first root cause,
else the verdict ("healthy" or "inconclusive").

`known_gaps.toml` lists the excerpts the analyzer gets wrong today, each with the reason; whoever
fixes one deletes its line (the strict xfail turns the fix into a failure until they do).
"""

from __future__ import annotations

import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from analyzer import open_bundle
from analyzer.categories import CATEGORIES, SEVERITY_RANK
from analyzer.engine.catalogue import load_catalogue
from analyzer.engine.rule import Rule

if TYPE_CHECKING:
    from analyzer.report import Report

HERE = Path(__file__).resolve().parent
EXCERPTS = HERE / "excerpts"
KNOWN_GAPS = HERE / "known_gaps.toml"
HEALTHY = "healthy"
INCONCLUSIVE = "inconclusive"
BUNDLE_NAME = "excerpt.log"  # neutral: the analyzer must not learn anything from the file name

# DESIGN.md "Categories", "Added in use": named there before the package has them all.
ADDED_IN_USE = frozenset({"broker.unreachable", "events.clock_drift", "worker.unrecoverable", "error.unclassified"})
TAXONOMY = frozenset(CATEGORIES) | ADDED_IN_USE
SIDE_KEYS = frozenset({"source", "project", "expected", "also", "shapes", "reason"})


@dataclass(frozen=True)
class Excerpt:
    id: str
    path: Path
    source: str
    project: str
    expected: str
    also: tuple[str, ...]
    shapes: tuple[str, ...]
    reason: str

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def load_excerpt(log: Path) -> Excerpt:
    """One excerpt and its sidecar; a missing or malformed sidecar raises with the file named."""
    side = log.with_suffix(".toml")
    meta = tomllib.loads(side.read_text(encoding="utf-8"))
    if set(meta) != SIDE_KEYS:
        raise ValueError(f"{side}: keys {sorted(meta)}, want {sorted(SIDE_KEYS)}")
    return Excerpt(id=log.stem, path=log, source=meta["source"], project=meta["project"],
                   expected=meta["expected"], also=tuple(meta["also"]), shapes=tuple(meta["shapes"]),
                   reason=meta["reason"])


@cache
def excerpts() -> tuple[Excerpt, ...]:
    """Every excerpt, sorted by id."""
    return tuple(load_excerpt(p) for p in sorted(EXCERPTS.glob("*.log")))


@cache
def known_gaps() -> dict[str, str]:
    """Excerpt id → why the analyzer gets it wrong today."""
    data = tomllib.loads(KNOWN_GAPS.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.get("gaps", {}).items()}


@dataclass(frozen=True)
class Reading:
    """What the analyzer made of one excerpt."""

    answer: str  # first root cause's category, else the verdict
    verdict: str
    categories: tuple[str, ...]  # every finding's category, in report order
    loud: tuple[str, ...]  # categories of findings of severity warning or above
    lines: int
    parsed: int
    kinds: tuple[str, ...] = field(default=())


@cache
def shipped_rules() -> tuple[Rule, ...]:
    """The shipped rule catalogue, parsed once: parsing it is four fifths of a small bundle's time."""
    rules, errors = load_catalogue()
    if errors:
        raise RuntimeError(f"shipped rules do not load: {errors}")
    return tuple(rules)


def analyse(path: Path, *, shortcut: bool = True) -> Report:
    """`open_bundle(path).report()`; with `shortcut`, the same rules handed over already parsed
    (what `builtin_rules=True` would load, in the same order)."""
    if not shortcut:
        return open_bundle(path).report()
    return open_bundle(path, rules=list(shipped_rules())).report(builtin_rules=False)


@cache
def read(excerpt: Excerpt) -> Reading:
    """Analyse `excerpt` as a bundle holding only `excerpt.log` (cached: both tests use it)."""
    tmp = Path(tempfile.mkdtemp(prefix="cpm-corpus-"))
    try:
        shutil.copyfile(excerpt.path, tmp / BUNDLE_NAME)
        report = analyse(tmp)
        by_id = {f.id: f for f in report.findings}
        answer = by_id[report.root_causes[0]].category if report.root_causes else report.verdict
        warning = SEVERITY_RANK["warning"]
        return Reading(
            answer=answer, verdict=report.verdict,
            categories=tuple(f.category for f in report.findings),
            loud=tuple(f.category for f in report.findings if SEVERITY_RANK[f.severity] >= warning),
            lines=sum(c.lines for c in report.inputs), parsed=sum(c.parsed for c in report.inputs),
            kinds=tuple(sorted(set(report.kinds.values()))))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def right(excerpt: Excerpt, reading: Reading) -> bool:
    """Top-1 right: the expected category first, or for a healthy excerpt a healthy verdict with no
    finding of severity warning or above."""
    if excerpt.expected == HEALTHY:
        return reading.verdict == HEALTHY and not reading.loud
    return reading.answer == excerpt.expected


def failure_cause(excerpt: Excerpt, reading: Reading) -> str:
    """Why the analyzer is wrong, grouped for the work plan (issue 13): the group before the colon."""
    if excerpt.expected == HEALTHY:
        if reading.loud:
            return f"false alarm: {', '.join(dict.fromkeys(reading.loud))} on a healthy excerpt"
        return f"layout unknown: {reading.parsed} of {reading.lines} lines parsed, verdict {reading.verdict}"
    if reading.verdict == INCONCLUSIVE:
        return f"layout unknown: {reading.parsed} of {reading.lines} lines parsed, nothing found"
    if reading.verdict == HEALTHY:
        if reading.parsed < reading.lines:
            return (f"partly read: {reading.lines - reading.parsed} of {reading.lines} lines unrecognised, "
                    f"no finding for {excerpt.expected}")
        return f"no rule: all {reading.lines} lines parsed, no finding for {excerpt.expected}"
    if excerpt.expected in reading.categories:
        return f"wrong ranking: {reading.answer} ranked above {excerpt.expected}"
    return f"wrong category: {reading.answer}, no finding for {excerpt.expected}"
