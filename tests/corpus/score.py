"""Corpus top-1 figures of the analyzer and of the keyword floor.

    python -m tests.corpus.score            # figures per project and per shape, then the misses
    python -m tests.corpus.score --gaps     # today's misses as `known_gaps.toml` lines

Top-1 right: the first root cause has the expected category; for a healthy excerpt, a healthy
verdict with no finding of severity warning or above. The floor is `keyword_floor.classify`.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `tests.corpus` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.corpus.corpus import Excerpt, Reading, excerpts, failure_cause, known_gaps, read, right
from tests.corpus.keyword_floor import classify


@dataclass(frozen=True)
class Row:
    excerpt: Excerpt
    reading: Reading
    floor: str

    @property
    def analyzer_right(self) -> bool:
        return right(self.excerpt, self.reading)

    @property
    def floor_right(self) -> bool:
        return self.floor == self.excerpt.expected


def rows() -> list[Row]:
    return [Row(e, read(e), classify(e.text)) for e in excerpts()]


def _pct(n: int, d: int) -> str:
    return f"{n}/{d} = {n / d:.0%}" if d else "-"


def _table(title: str, groups: dict[str, list[Row]]) -> Iterable[str]:
    yield f"\n{title}"
    width = max((len(k) for k in groups), default=8)
    yield f"  {'':{width}}  {'n':>3}  {'analyzer':>8}  {'floor':>6}"
    for key in sorted(groups, key=lambda k: (-len(groups[k]), k)):
        g = groups[key]
        a = sum(r.analyzer_right for r in g)
        f = sum(r.floor_right for r in g)
        yield f"  {key:{width}}  {len(g):>3}  {a:>8}  {f:>6}"


def report(all_rows: list[Row]) -> Iterable[str]:
    n = len(all_rows)
    healthy = [r for r in all_rows if r.excerpt.expected == "healthy"]
    projects = {r.excerpt.project for r in all_rows}
    yield (f"corpus: {n} excerpts ({n - len(healthy)} incidents, {len(healthy)} healthy), "
           f"{len(projects)} projects")
    yield f"analyzer top-1: {_pct(sum(r.analyzer_right for r in all_rows), n)}"
    yield f"floor top-1:    {_pct(sum(r.floor_right for r in all_rows), n)}"
    by_project: dict[str, list[Row]] = defaultdict(list)
    by_shape: dict[str, list[Row]] = defaultdict(list)
    by_expected: dict[str, list[Row]] = defaultdict(list)
    for r in all_rows:
        by_project[r.excerpt.project].append(r)
        by_expected[r.excerpt.expected].append(r)
        for s in r.excerpt.shapes:
            by_shape[s].append(r)
    yield from _table("per project", by_project)
    yield from _table("per shape (an excerpt counts under each of its shapes)", by_shape)
    yield from _table("per expected category", by_expected)
    misses = [r for r in all_rows if not r.analyzer_right]
    causes = Counter(failure_cause(r.excerpt, r.reading).split(":", 1)[0] for r in misses)
    yield "\nanalyzer misses by cause"
    for cause, count in causes.most_common():
        yield f"  {count:>3}  {cause}"
    below = [r for r in misses if r.floor_right]
    yield f"\nfloor right, analyzer wrong: {len(below)}"
    gaps = known_gaps()
    for r in below:
        listed = "" if r.excerpt.id in gaps else "  (NOT in known_gaps.toml)"
        yield (f"  {r.excerpt.id}: expected {r.excerpt.expected}, analyzer {r.reading.answer}; "
               f"{failure_cause(r.excerpt, r.reading)}{listed}")
    floor_only_wrong = [r for r in misses if not r.floor_right]
    yield f"\nboth wrong: {len(floor_only_wrong)}"
    for r in floor_only_wrong:
        yield (f"  {r.excerpt.id}: expected {r.excerpt.expected}, analyzer {r.reading.answer}, "
               f"floor {r.floor}; {failure_cause(r.excerpt, r.reading)}")


def gap_lines(all_rows: list[Row]) -> Iterable[str]:
    """`known_gaps.toml` as today's analyzer would have it."""
    yield "# Excerpts the analyzer gets wrong today (tests/corpus/test_corpus.py marks them strict xfail)."
    yield "# Whoever fixes one deletes its line. Regenerate the reasons with: python -m tests.corpus.score --gaps"
    yield "[gaps]"
    for r in all_rows:
        if not r.analyzer_right:
            reason = failure_cause(r.excerpt, r.reading).replace("\\", "\\\\").replace('"', '\\"')
            shapes = ", ".join(r.excerpt.shapes)
            yield f'"{r.excerpt.id}" = "{reason} [{shapes}]"'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gaps", action="store_true", help="print today's misses as known_gaps.toml")
    args = parser.parse_args(argv)
    all_rows = rows()
    for line in (gap_lines(all_rows) if args.gaps else report(all_rows)):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
