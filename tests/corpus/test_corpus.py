"""The real-world corpus as tests (issue 13, item 6).

`test_analyzer_top1`: the analyzer, handed an excerpt as a bundle holding only `excerpt.log`, names
the expected category first (a healthy excerpt: healthy verdict, no finding of warning or above).
`test_not_below_keyword_floor`: wherever the naive keyword floor is right, the analyzer is right.
Excerpts listed in `known_gaps.toml` are strict xfails with their reason: a fix makes the test
XPASS, which fails until the fixer deletes the line.

Figures: `python -m tests.corpus.score`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _pytest.mark.structures import ParameterSet

from tests.corpus.corpus import (
    HEALTHY,
    TAXONOMY,
    Excerpt,
    analyse,
    excerpts,
    failure_cause,
    known_gaps,
    read,
    right,
)
from tests.corpus.keyword_floor import RULES, classify

MIN_INCIDENTS = 80
MIN_HEALTHY = 5
MIN_PROJECTS = 10
Record = Callable[[str, object], None]  # pytest's record_property fixture


def _gap(excerpt: Excerpt) -> pytest.MarkDecorator | None:
    reason = known_gaps().get(excerpt.id)
    return None if reason is None else pytest.mark.xfail(strict=True, reason=reason)


def _params(only_floor_right: bool = False) -> list[ParameterSet]:
    out: list[ParameterSet] = []
    for e in excerpts():
        gap = _gap(e)
        if only_floor_right and classify(e.text) != e.expected:
            gap = None  # the floor is wrong too: no claim to hold the analyzer to
        out.append(pytest.param(e, id=e.id, marks=() if gap is None else (gap,)))
    return out


@pytest.mark.parametrize("excerpt", _params())
def test_analyzer_top1(excerpt: Excerpt, record_property: Record) -> None:
    reading = read(excerpt)
    record_property("analyzer", reading.answer)
    assert right(excerpt, reading), (
        f"{excerpt.id} ({excerpt.source}): expected {excerpt.expected}, got {reading.answer} "
        f"(verdict {reading.verdict}, findings {list(reading.categories)}); {failure_cause(excerpt, reading)}")


@pytest.mark.parametrize("excerpt", _params(only_floor_right=True))
def test_not_below_keyword_floor(excerpt: Excerpt, record_property: Record) -> None:
    floor = classify(excerpt.text)
    record_property("floor", floor)
    reading = read(excerpt)
    assert right(excerpt, reading) or floor != excerpt.expected, (
        f"{excerpt.id}: the keyword floor says {floor} (right), the analyzer {reading.answer}; "
        f"{failure_cause(excerpt, reading)}")


@pytest.mark.parametrize("excerpt", [pytest.param(e, id=e.id) for e in excerpts() if e.expected == HEALTHY])
def test_healthy_excerpt_raises_no_alarm(excerpt: Excerpt) -> None:
    """Whatever else it cannot read yet, a healthy excerpt never yields a warning-or-worse finding."""
    assert not read(excerpt).loud


def test_corpus_is_big_and_varied_enough() -> None:
    all_ = excerpts()
    incidents = [e for e in all_ if e.expected != HEALTHY]
    assert len(incidents) >= MIN_INCIDENTS
    assert len(all_) - len(incidents) >= MIN_HEALTHY
    assert len({e.project for e in all_}) >= MIN_PROJECTS


@pytest.mark.parametrize("excerpt", [pytest.param(e, id=e.id) for e in excerpts()])
def test_sidecar_is_well_formed(excerpt: Excerpt) -> None:
    assert excerpt.source.startswith("https://"), excerpt.source
    assert excerpt.expected == HEALTHY or excerpt.expected in TAXONOMY, excerpt.expected
    assert set(excerpt.also) <= TAXONOMY, sorted(set(excerpt.also) - TAXONOMY)
    assert excerpt.expected not in excerpt.also
    assert excerpt.shapes and excerpt.reason.strip() and excerpt.project.strip()
    assert excerpt.text.strip(), "empty excerpt"


def test_known_gaps_name_existing_excerpts() -> None:
    ids = {e.id for e in excerpts()}
    assert sorted(set(known_gaps()) - ids) == []


def test_known_gaps_have_reasons() -> None:
    assert [k for k, v in known_gaps().items() if not v.strip()] == []


@pytest.mark.parametrize("excerpt_id", ["celery-2952-soft-limit-31", "dify-14810-refused", "billiard-380-sigkill"])
def test_parsed_rules_shortcut_matches_plain_report(excerpt_id: str, tmp_path: Path) -> None:
    """The corpus hands the shipped rules over already parsed; the answer is that of a plain
    `open_bundle(dir).report()`, so the figures are the ones a user gets."""
    excerpt = next(e for e in excerpts() if e.id == excerpt_id)
    (tmp_path / "excerpt.log").write_bytes(excerpt.path.read_bytes())
    fast, plain = analyse(tmp_path), analyse(tmp_path, shortcut=False)
    assert [f.to_dict() for f in fast.findings] == [f.to_dict() for f in plain.findings]
    assert (fast.root_causes, fast.verdict) == (plain.root_causes, plain.verdict)


def test_floor_names_only_taxonomy_categories() -> None:
    assert [c for c, _ in RULES if c not in TAXONOMY] == []


def test_floor_first_hit_wins() -> None:
    text = "Hard time limit (300s) exceeded ... Process 'ForkPoolWorker-1' pid:9 exited with 'signal 9 (SIGKILL)'"
    assert classify(text) == "task.hard_time_limit"
    assert classify("[2024-01-01 00:00:00,000: INFO/MainProcess] celery@h ready.") == HEALTHY
