"""Evidence quotes the place it points to: `file:line` shows what the file says there."""

from __future__ import annotations

import pytest

from analyzer import open_bundle, quotes
from tests.conftest import SAMPLES


def _line(path: str, n: int) -> str:
    return (SAMPLES / path).read_text(encoding="utf-8").splitlines()[n - 1]


def test_thread_evidence_is_the_dumps_thread_header_with_the_row_as_detail() -> None:
    report = open_bundle(SAMPLES / "lock-wait-many").report()
    [f] = [f for f in report.findings if f.rule == "CP-H002"]
    for e in f.evidence:
        assert e.text == _line(f"lock-wait-many/{e.source}", e.line)
        assert e.text.startswith("Thread ") and "tool=py-spy" in e.detail


def test_cycle_evidence_is_the_fd_listing_line() -> None:
    report = open_bundle(SAMPLES / "deadlock-pipe").report()
    [f] = [f for f in report.findings if f.rule == "CP-X030"]
    e = f.evidence[0]
    assert (e.source, e.line) == ("proc-fd.txt", 5) and e.text == _line("deadlock-pipe/proc-fd.txt", 5)
    assert "-> pipe:[" in e.text and "waits for" in e.detail


def test_task_evidence_is_its_log_record_as_log_rules_show_it() -> None:
    report = open_bundle(SAMPLES / "retry-then-success").report()
    [f] = [f for f in report.findings if f.rule == "CP-A002"]
    e = f.evidence[0]
    assert _line("retry-then-success/worker.log", e.line).endswith("] " + e.text)
    assert e.text.startswith("Task proj.fetch[") and e.detail.startswith("task_id=")


def test_a_long_line_is_cut_and_log_rule_evidence_is_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    # `inspect active` replies are one JSON line of any length (this one is 351 characters)
    monkeypatch.setattr(quotes, "MAX_QUOTE", 100)
    report = open_bundle(SAMPLES / "task-never-finishes").report()
    [stuck] = [f for f in report.findings if f.rule == "CP-S010"]
    e = stuck.evidence[0]
    assert e.source == "inspect-active.json" and len(e.text) == 101 and e.text.endswith("…")
    assert _line("task-never-finishes/inspect-active.json", 1).startswith(e.text[:-1])
    assert e.detail.startswith("celery inspect active: w1@sample proj.sync_forever[")
    refused = open_bundle(SAMPLES / "broker-refused").report()
    assert all(not e.detail for f in refused.findings for e in f.evidence)
    assert "detail" not in refused.to_dict()["findings"][0]["evidence"][0]  # type: ignore[index]
