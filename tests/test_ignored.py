"""What `--ignore` hid, counted on a real sample's full report."""

from __future__ import annotations

from analyzer.api import open_bundle
from analyzer.ignored import hidden_counts, with_ignored
from tests.conftest import SAMPLES


def test_each_hidden_finding_counts_once_for_its_first_pattern() -> None:
    full = open_bundle([SAMPLES / "deadlock-lock"]).report()  # deadlock.lock_cycle, lock.wait, task.stuck
    assert hidden_counts(full, ["lock.wait", "CP-H", "task"]) == {"lock.wait": 1, "task": 1}
    assert hidden_counts(full, ["CP-H", "lock.wait"]) == {"CP-H": 1}


def test_with_ignored_leaves_the_shown_findings_and_adds_the_count() -> None:
    bundle = open_bundle([SAMPLES / "worker-sigkill"])
    shown = bundle.report(ignore=["worker.lost"])
    marked = with_ignored(shown, bundle, ignore=["worker.lost"])
    assert marked.findings == shown.findings == [] and marked.ignored == {"worker.lost": 1}
    assert with_ignored(bundle.report(), bundle).ignored == {}
