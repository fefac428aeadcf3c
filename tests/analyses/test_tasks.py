"""The `tasks` frame on real logs: how a task's end is found when Celery logs no outcome for it."""

from __future__ import annotations

from datetime import datetime

from analyzer import open_bundle
from tests.conftest import SAMPLES


def test_a_task_whose_child_warns_exception_raised_outside_body_failed() -> None:
    """backend-failure: the result backend died; each pool child warns `Exception raised outside body`
    after the body of the task it ran (no `succeeded` line follows), so those tasks ended, FAILURE."""
    tasks = open_bundle(SAMPLES / "backend-failure").tasks
    ended = {r["task_id"][:8]: r for r in tasks.iter_rows(named=True) if r["state"] == "FAILURE"}
    # ForkPoolWorker-2 logged for 9226c483 at 15.617 and warned at 15.674 (line 19); ForkPoolWorker-1 for
    # f10ebb17 at 15.622, warned at 15.719 (line 99); ForkPoolWorker-2 again for bdb8cdb8, warned at 15.781
    assert {k: r["finished_at"] for k, r in ended.items()} == {
        "9226c483": datetime(2026, 11, 28, 19, 23, 15, 674000),
        "f10ebb17": datetime(2026, 11, 28, 19, 23, 15, 719000),
        "bdb8cdb8": datetime(2026, 11, 28, 19, 23, 15, 781000),
    }
    assert {r["exc_type"] for r in ended.values()} == {"redis.exceptions.ConnectionError"}
    assert all(0 < r["runtime_s"] < 0.2 for r in ended.values())
    assert sorted(tasks["state"].to_list()) == ["FAILURE"] * 3 + ["SUCCESS"] * 3


def test_a_warning_no_unfinished_task_of_that_child_explains_changes_nothing() -> None:
    """redis-oom: the child warns, but the three tasks it may have run never logged from a child, so
    which one it was is unknown: they stay RECEIVED (their messages were restored to the queue)."""
    states = open_bundle(SAMPLES / "redis-oom").tasks["state"].to_list()
    assert sorted(states) == ["RECEIVED"] * 3 + ["SUCCESS"] * 3
