"""What `--ignore` hid, counted on a real sample's full report."""

from __future__ import annotations

from analyzer.api import open_bundle
from analyzer.ignored import hidden_counts
from tests.conftest import SAMPLES


def test_each_hidden_finding_counts_once_for_its_first_pattern() -> None:
    full = open_bundle([SAMPLES / "deadlock-lock"]).report()  # deadlock.lock_cycle, lock.wait, task.stuck
    assert hidden_counts(full, ["lock.wait", "CP-H", "task"]) == {"lock.wait": 1, "task": 1}
    assert hidden_counts(full, ["CP-H", "lock.wait"]) == {"CP-H": 1}


def test_a_report_with_ignore_keeps_the_shown_findings_and_counts_the_hidden() -> None:
    bundle = open_bundle([SAMPLES / "worker-sigkill"])
    shown = bundle.report(ignore=["worker.lost"])
    assert shown.findings == [] and shown.ignored == {"worker.lost": 1}
    assert bundle.report().ignored == {}
    assert bundle.report(ignore=["CP-Z"]).ignored == {}  # a pattern that hid nothing is not listed
