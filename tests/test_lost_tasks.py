"""worker.lost names what was lost, and tells Celery's own kill of a child that never started from a
kill by the kernel or from outside."""

from __future__ import annotations

import json
from pathlib import Path

from analyzer import open_bundle
from tests.conftest import SAMPLES

SIGKILL_LOG = (SAMPLES / "worker-sigkill" / "worker.log").read_text()
LOST_ID = "bd54a0c7-d7bd-49f9-8288-c2b0824b7372"


def _lost(path: Path | list[Path]):  # type: ignore[no-untyped-def]
    report = open_bundle(path).report()
    return report, [f for f in report.findings if f.category == "worker.lost"]


def test_a_child_killed_mid_task_names_the_task_and_what_it_last_logged() -> None:
    _, lost = _lost(SAMPLES / "worker-sigkill")
    assert len(lost) == 1 and lost[0].rule == "CP-W001"
    assert lost[0].tasks == [LOST_ID]
    assert f"Lost with it: proj.crunch[{LOST_ID}], started 2026-11-28T19:03:34.395, last logged: " in lost[0].summary
    assert lost[0].summary.endswith("crunching 7.")


def test_the_lost_task_s_arguments_come_from_inspect(tmp_path: Path) -> None:
    (tmp_path / "worker.log").write_text(SIGKILL_LOG)
    active = {"w1@sample": [{"id": LOST_ID, "name": "proj.crunch", "args": [7], "kwargs": {"mode": "fast"},
                             "type": "proj.crunch", "hostname": "w1@sample", "time_start": 1795892614.39,
                             "acknowledged": True, "delivery_info": {"exchange": "", "routing_key": "celery",
                                                                     "priority": 0, "redelivered": False},
                             "worker_pid": 13485}]}
    (tmp_path / "inspect-active.json").write_text(json.dumps(active))
    _, lost = _lost(tmp_path)
    assert f"proj.crunch[{LOST_ID}] with args [7]" in lost[0].summary


def test_a_child_killed_while_idle_names_no_task(tmp_path: Path) -> None:
    head = SIGKILL_LOG.splitlines()[:4]  # connected … ready
    exited = "[2026-11-28 19:03:38,694: ERROR/MainProcess] Process 'ForkPoolWorker-1' pid:13485 exited with " \
             "'signal 9 (SIGKILL)'"
    (tmp_path / "worker.log").write_text("\n".join([*head, exited, ""]))
    _, lost = _lost(tmp_path / "worker.log")
    assert [f.rule for f in lost] == ["CP-W001"]
    assert lost[0].tasks == [] and lost[0].summary.endswith("The logs name no task lost with it.")
    assert "running a task" not in lost[0].title


def test_celery_s_own_kill_of_a_child_that_never_started_is_not_an_oom_kill() -> None:
    report, lost = _lost(SAMPLES / "worker-up-timeout")
    assert [f.rule for f in lost] == ["CP-W012"]  # billiard's `exited with 'signal 9'` is not a second finding
    f = lost[0]
    assert report.root_causes == [f.id]
    assert "no task was running" in f.summary and "running a task" not in f.title
    assert f.tasks == []
    advice = json.dumps(report.advice[f.id].to_dict())
    assert "dmesg" not in advice and "MemoryMax" not in advice and "worker_process_init" in advice
    assert not any("Confirm the OOM killer" in r for r in f.remediation)


def test_an_exit_long_after_an_up_timeout_is_a_loss_again(tmp_path: Path) -> None:
    lines = (SAMPLES / "worker-up-timeout" / "worker.log").read_text().splitlines()
    late = lines[8].replace("19:46:08,500", "19:46:45,500")  # 40 s after the timeout, not its kill
    (tmp_path / "worker.log").write_text("\n".join([*lines[:8], late, ""]))
    _, lost = _lost(tmp_path / "worker.log")
    assert sorted(f.rule for f in lost) == ["CP-W001", "CP-W012"]
