"""The terminal report at its default 100 columns: nothing an operator needs is cut off."""

from __future__ import annotations

from analyzer.renderers import RenderOptions
from tests.renderers import renderer, sample_report


def _flat(out: str) -> str:
    """The report's words in order, panel borders and line breaks gone."""
    return " ".join(out.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


def test_a_long_evidence_line_wraps_instead_of_losing_its_end() -> None:
    # backend-failure's evidence is `/…/celery/app/trace.py:809: RuntimeWarning: Exception raised outside
    # body: network:ConnectionError:`, whose telling part comes after 90 characters of path
    report = sample_report("backend-failure", frozen_rules=False)
    out = renderer("terminal")(report, RenderOptions())
    first = report.finding(report.root_causes[0]).evidence[0]
    assert len(first.text.splitlines()[0]) > 100
    assert "RuntimeWarning: Exception raised outside body: network:ConnectionError:" in _flat(out)
    assert "…" not in out.split("evidence:")[1].split("what to do:")[0].replace("… 1 more", "")
    assert all(len(line) <= 100 for line in out.splitlines())


def test_categories_and_ids_stay_whole_in_the_findings_table() -> None:
    report = sample_report("heartbeat-stall-hang", frozen_rules=False)
    out = renderer("terminal")(report, RenderOptions())
    table = out[out.index("Findings"):]
    for f in report.findings:
        assert f" {f.category} " in table and f" {f.id} " in table
    assert "(explained by f1)" in _flat(table)
    assert all(len(line) <= 100 for line in out.splitlines())
