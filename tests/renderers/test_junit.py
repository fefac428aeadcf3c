"""JUnit XML: one testcase per loaded rule, failures for rules that fired at the threshold, read
back with junitparser (what CI report viewers use)."""

from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml

from analyzer.findings import Evidence
from analyzer.renderers import RenderOptions
from analyzer.renderers.junit import render
from tests.renderers import (
    broken_rules_report,
    catalogue_options,
    custom_layout_report,
    finding,
    frozen_options,
    make_report,
    sample_report,
)


def read(text: str, tmp_path: Path) -> JUnitXml:
    path = tmp_path / "report.xml"
    path.write_text(text, encoding="utf-8")
    return JUnitXml.fromfile(str(path))


def only_case(xml: JUnitXml):  # type: ignore[no-untyped-def]
    (case,) = list(cases(xml).values())
    return case


def cases(xml: JUnitXml) -> dict[str, object]:
    (suite,) = list(xml)
    return {case.name: case for case in suite}


def test_one_testcase_per_catalogue_rule(tmp_path: Path) -> None:
    opts = catalogue_options()
    xml = read(render(sample_report("broker-refused", frozen_rules=False), opts), tmp_path)
    got = cases(xml)
    assert sorted(got) == sorted(f"{r.id} {r.title}" for r in opts.rules)
    assert {c.classname for c in got.values()} == {r.area for r in opts.rules}  # type: ignore[attr-defined]


def test_fired_rule_fails_with_summary_and_evidence(tmp_path: Path) -> None:
    xml = read(render(sample_report("worker-sigkill"), frozen_options()), tmp_path)
    (suite,) = list(xml)
    assert suite.tests == 4 and suite.failures == 2 and suite.errors == 0
    case = cases(xml)["G-W001 A pool child was killed by a signal"]
    (failure,) = case.result  # type: ignore[attr-defined]
    assert isinstance(failure, Failure)
    assert failure.message.startswith("w1@sample: 1 pool child(ren) died")
    assert failure.type == "error"
    assert "worker.log:10: Process 'ForkPoolWorker-1' pid:13485 exited with 'signal 9 (SIGKILL)'" in failure.text
    assert cases(xml)["G-B001 Broker refuses connections"].is_passed  # type: ignore[attr-defined]


def test_healthy_sample_passes_every_case(tmp_path: Path) -> None:
    xml = read(render(sample_report("healthy"), frozen_options()), tmp_path)
    assert all(c.is_passed for c in cases(xml).values())  # type: ignore[attr-defined]


def test_findings_below_the_threshold_pass(tmp_path: Path) -> None:
    rep = make_report([finding(severity="warning", category="task.exception")])
    assert only_case(read(render(rep, RenderOptions(fail_on="error")), tmp_path)).is_passed
    assert not only_case(read(render(rep, RenderOptions(fail_on="warning")), tmp_path)).is_passed


def test_control_characters_and_markup_survive_as_valid_xml(tmp_path: Path) -> None:
    rep = make_report([finding(summary="nul\x00 <b>&amp;", evidence=[Evidence("w.log", 2, "bell\x07 ]]> <x/>")])])
    (failure,) = only_case(read(render(rep, RenderOptions()), tmp_path)).result
    assert failure.message == "nul\\x00 <b>&amp;"
    assert "bell\\x07 ]]> <x/>" in failure.text


def test_fail_on_property_only_when_it_was_given(tmp_path: Path) -> None:
    rep = sample_report("worker-sigkill")
    (suite,) = list(read(render(rep, frozen_options()), tmp_path))
    assert "fail_on" not in {p.name for p in suite.properties()}
    assert suite.failures == 2  # the threshold is still warning
    (suite,) = list(read(render(rep, RenderOptions(rules=frozen_options().rules, fail_on="error")), tmp_path))
    assert {p.name: p.value for p in suite.properties()}["fail_on"] == "error"
    assert suite.failures == 1


def test_rule_errors_are_error_testcases_beside_the_rules_that_ran(tmp_path: Path) -> None:
    rep = broken_rules_report(tmp_path)
    (suite,) = list(read(render(rep, frozen_options()), tmp_path))
    errors = {c.name: c.result[0] for c in suite if c.classname == "rules"}
    d = tmp_path / "broken-rules"
    assert set(errors) == {f"rule error {d / 'G-U010.toml'}", f"rule error {d / 'G-U011.toml'}:8"}
    assert all(isinstance(e, Error) and e.type == "rule_error" for e in errors.values())
    assert errors[f"rule error {d / 'G-U010.toml'}"].message.startswith("invalid TOML")
    assert suite.errors == 2 and suite.tests == len(frozen_options().rules) + 2
    ran = cases(read(render(rep, frozen_options()), tmp_path))["G-B001 Broker refuses connections"]
    assert not ran.is_passed  # type: ignore[attr-defined]


def test_inconclusive_verdict_is_an_error_with_its_reasons(tmp_path: Path) -> None:
    (suite,) = list(read(render(custom_layout_report(), frozen_options()), tmp_path))
    assert {p.name: p.value for p in suite.properties()}["verdict"] == "inconclusive"
    (case,) = [c for c in suite if c.classname == "celery-postmortem"]
    (err,) = case.result
    assert isinstance(err, Error) and err.type == "inconclusive"
    assert "worker.log: text in no known layout" in err.text and "--log-format" in err.text
    assert suite.errors == 1 and suite.failures == 0
