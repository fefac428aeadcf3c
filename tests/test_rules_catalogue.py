"""The shipped rule catalogue: it loads cleanly, every example behaves through the real parsers,
stable rules fire on the samples they name, and the taxonomy is covered."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from analyzer import open_bundle
from analyzer.api import parse_example
from analyzer.categories import CATEGORIES
from analyzer.engine.catalogue import default_rule_dir
from analyzer.engine.evaluate import check_examples, evaluate
from analyzer.engine.rule import Rule, load_rules
from tests.conftest import SAMPLES

RULES, ERRORS = load_rules(default_rule_dir())

# Categories with no rule yet, each with the reason (kept explicit so the gap is visible).
NO_RULE_YET: dict[str, str] = {}


def test_catalogue_loads_without_errors() -> None:
    assert not ERRORS, "\n".join(str(e) for e in ERRORS)
    assert RULES


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_file_is_named_after_its_id(rule: Rule) -> None:
    assert rule.path is not None
    assert Path(rule.path).name.startswith(f"{rule.id}-"), rule.path
    assert Path(rule.path).parent.parent == default_rule_dir()


def _example_cases() -> list[object]:
    cases = []
    for rule in RULES:
        for i, ex in enumerate(rule.examples):
            marks = [pytest.mark.xfail(strict=True, reason=ex.xfail)] if ex.xfail else []
            cases.append(pytest.param(rule, i, id=f"{rule.id}:{i + 1}:{ex.expect}", marks=marks))
    return cases


@pytest.mark.parametrize(("rule", "index"), _example_cases())
def test_rule_example(rule: Rule, index: int) -> None:
    result = check_examples(rule, parse_example, RULES)[index]
    assert result.passed, result.reason


@cache
def _frames(sample: str) -> dict[str, object]:
    return open_bundle(SAMPLES / sample).frame_map()


def _stable_cases() -> list[object]:
    return [pytest.param(r, s, id=f"{r.id}@{s}") for r in RULES if r.status == "stable" for s in r.samples]


@pytest.mark.parametrize(("rule", "sample"), _stable_cases())
def test_stable_rule_fires_on_its_samples(rule: Rule, sample: str) -> None:
    assert (SAMPLES / sample / "expected.json").exists(), f"no sample {sample}"
    assert evaluate([rule], _frames(sample)), f"{rule.id} does not fire on samples/{sample}"  # type: ignore[arg-type]


def test_stable_rules_name_samples() -> None:
    assert [r.id for r in RULES if r.status == "stable" and not r.samples] == []


def test_every_category_has_a_rule_or_a_stated_gap() -> None:
    covered = {r.category for r in RULES}
    assert sorted(set(CATEGORIES) - set(NO_RULE_YET) - covered) == []
    assert sorted(set(NO_RULE_YET) & covered) == [], "a gap was closed: remove it from NO_RULE_YET"
