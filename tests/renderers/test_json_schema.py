"""The JSON report's schema (analyzer/schemas/report.schema.json) describes Report.to_dict()."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from analyzer.api import open_bundle
from analyzer.categories import CATEGORIES, SEVERITIES
from analyzer.renderers import RenderOptions
from analyzer.renderers.json_report import render
from analyzer.report import VERDICTS
from tests.conftest import SAMPLES, sample_dirs
from tests.renderers import (
    broken_rules_report,
    custom_layout_report,
    finding,
    frozen_options,
    make_report,
    sample_report,
)


@cache
def schema() -> dict:  # type: ignore[type-arg]
    text = resources.files("analyzer").joinpath("schemas/report.schema.json").read_text(encoding="utf-8")
    data = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(data)
    return data  # type: ignore[no-any-return]


def errors(doc: object) -> list[str]:
    v = jsonschema.Draft202012Validator(schema())
    return [f"{list(e.path)}: {e.message}" for e in v.iter_errors(doc)]


@pytest.mark.parametrize("sample", [p.name for p in sample_dirs()] + ["app-exception", "healthy"])
def test_every_sample_report_validates(sample: str) -> None:
    for rep in (sample_report(sample, frozen_rules=False), sample_report(sample)):
        assert not errors(json.loads(render(rep, frozen_options())))


def test_enums_follow_the_taxonomy() -> None:
    defs = schema()["$defs"]
    assert defs["severity"]["enum"] == list(SEVERITIES)
    assert set(defs["category"]["enum"]) == set(CATEGORIES)
    assert schema()["properties"]["verdict"]["enum"] == list(VERDICTS)


def test_schema_rejects_what_the_contract_forbids() -> None:
    good = make_report([finding()]).to_dict()
    assert not errors(good)
    bad_sev = json.loads(json.dumps(good))
    bad_sev["findings"][0]["severity"] = "fatal"
    bad_id = json.loads(json.dumps(good))
    bad_id["root_causes"] = ["1"]
    extra = json.loads(json.dumps(good))
    extra["findings"][0]["surprise"] = 1
    missing = json.loads(json.dumps(good))
    del missing["findings"][0]["evidence"][0]["line"]
    for doc in (bad_sev, bad_id, extra, missing):
        assert errors(doc)


def test_schema_ships_inside_the_package() -> None:
    assert resources.files("analyzer").joinpath("schemas/report.schema.json").is_file()
    assert render(make_report([]), RenderOptions()).startswith("{")


@pytest.mark.parametrize("sample", [p.name for p in sample_dirs()])
def test_samples_read_as_recorded_are_never_inconclusive(sample: str) -> None:
    """The verdict of each sample read with the log formats its expected.json names (as the sample
    tests do): unhealthy exactly when there is a root cause, and never inconclusive."""
    exp = json.loads((SAMPLES / sample / "expected.json").read_text())
    formats = exp.get("log_format", [])
    rep = (open_bundle([SAMPLES / sample], log_formats=formats).report() if formats
           else sample_report(sample, frozen_rules=False))  # the report the test above validated
    doc = json.loads(render(rep, RenderOptions()))
    assert doc["verdict"] == ("unhealthy" if doc["root_causes"] else "healthy")
    assert doc["verdict"] == ("healthy" if exp["healthy"] else "unhealthy")


def test_inconclusive_report_validates() -> None:
    doc = json.loads(render(custom_layout_report(), frozen_options()))
    assert not errors(doc)
    assert doc["verdict"] == "inconclusive" and doc["root_causes"] == [] and doc["findings"] == []
    bad = json.loads(json.dumps(doc))
    bad["verdict"] = "fine"
    assert errors(bad)


def test_rule_error_report_validates(tmp_path: Path) -> None:
    doc = json.loads(render(broken_rules_report(tmp_path), frozen_options()))
    assert not errors(doc)
    d = tmp_path / "broken-rules"
    assert [(e["source"], e.get("line"), e.get("column")) for e in doc["rule_errors"]] == [
        (str(d / "G-U010.toml"), None, None), (str(d / "G-U011.toml"), 8, 9)]
    assert doc["rule_errors"][1]["message"].startswith("in 'when': invalid regex '(unclosed'")
    assert doc["problems"] == [] and doc["root_causes"]
    bad = json.loads(json.dumps(doc))
    bad["rule_errors"][0]["line"] = "8"
    assert errors(bad)


def test_ignored_is_in_the_contract_only_when_something_was_hidden() -> None:
    from dataclasses import replace

    rep = replace(make_report([finding()]), ignored={"worker.lost": 2})
    doc = json.loads(render(rep, RenderOptions()))
    assert doc["ignored"] == [{"pattern": "worker.lost", "findings": 2}] and not errors(doc)
    assert "ignored" not in make_report([finding()]).to_dict()
    doc["ignored"] = [{"pattern": "worker.lost", "findings": 0}]
    assert errors(doc)
    doc["ignored"] = []
    assert errors(doc)
