"""The kernel's OOM kill joined with billiard's pool child by pid (`analyses.oom`, rule CP-W025), on
real artifacts (tests/data/kernel, samples/worker-cgroup-oom): the same pid on both sides proves
`worker.oom` with both lines as evidence and names the task; another pid joins nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import open_bundle

ROOT = Path(__file__).parent.parent.parent
DATA = ROOT / "tests" / "data" / "kernel"
SAMPLE = ROOT / "samples" / "worker-cgroup-oom"


def _root(paths: list[Path]):
    report = open_bundle(paths).report()
    return report, (report.finding(report.root_causes[0]) if report.root_causes else None)


@pytest.mark.parametrize("kernel", ["oom2-dmesg.txt", "oom2-dmesg-T.txt", "oom2-journalctl-k-short.txt",
                                    "oom2-journalctl-k-short-iso.txt"])
def test_same_pid_proves_the_oom_kill_with_both_lines(kernel: str) -> None:
    report, root = _root([DATA / kernel, DATA / "oom2-worker.log"])
    assert root is not None and (root.rule, root.category) == ("CP-W025", "worker.oom")
    assert {(Path(e.source).name, e.line) for e in root.evidence} == {(kernel, 79), ("oom2-worker.log", 10)}
    assert "ForkPoolWorker-1 (pid 14981, celery)" in root.summary and "proj.hog[" in root.summary
    lost = next(f for f in report.findings if f.category == "worker.lost")
    assert lost.explained_by == [root.id]  # explained by the join, not by the kernel's line alone
    assert root.id in next(f for f in report.findings if f.rule == "CP-W020").explained_by


def test_the_sample_names_the_task_and_the_cgroup() -> None:
    bundle = open_bundle(SAMPLE)
    kills = bundle.frame_map()["oom_kills"]
    assert kills.get_column("side").to_list() == ["kernel", "worker"]
    row = kills.row(0, named=True)
    assert (row["pid"], row["process"], row["task_name"], row["constraint"]) == (
        8572, "ForkPoolWorker-1", "proj.hog", "CONSTRAINT_MEMCG")
    assert row["task_id"] == "bcd56d93-b2c8-4b7b-ae24-473597b4b8fc"


@pytest.mark.parametrize(("kernel", "worker"), [
    (SAMPLE / "dmesg.txt", DATA / "oom2-worker.log"),  # killed 8572, the child that died was 14981
    (DATA / "oom2-dmesg.txt", SAMPLE / "worker.log"),
    (DATA / "oom2-dmesg.txt", ROOT / "samples" / "worker-sigkill" / "worker.log"),
], ids=["sample-kernel", "oom2-kernel", "sigkill-worker"])
def test_another_pid_joins_nothing(kernel: Path, worker: Path) -> None:
    bundle = open_bundle([kernel, worker])
    assert bundle.frame_map()["oom_kills"].is_empty()
    report = bundle.report()
    assert "CP-W025" not in {f.rule for f in report.findings}
    assert "CP-W020" in {f.rule for f in report.findings}  # the kernel's line still says what it says


def test_no_kernel_log_no_join_and_dmesg_is_asked_for() -> None:
    report, root = _root([SAMPLE / "worker.log"])
    assert root is not None and root.category == "worker.lost"
    assert any("dmesg" in a.command for a in report.advice[root.id].missing)


def test_a_kernel_log_in_the_bundle_is_not_asked_for_again() -> None:
    report, root = _root([SAMPLE / "dmesg.txt", DATA / "oom2-worker.log"])  # no join: worker.oom unproven
    assert root is not None and root.rule == "CP-W020"
    assert not any("dmesg" in a.command for a in report.advice[root.id].missing)


def test_two_kernel_logs_of_one_machine_are_one_death() -> None:
    report, root = _root([DATA / "oom2-dmesg.txt", DATA / "oom2-dmesg-T.txt", DATA / "oom2-worker.log"])
    assert root is not None and root.rule == "CP-W025"
    assert sorted((Path(e.source).name, e.line) for e in root.evidence) == [
        ("oom2-dmesg-T.txt", 79), ("oom2-dmesg.txt", 79), ("oom2-worker.log", 10)]
    assert [f.rule for f in report.findings].count("CP-W025") == 1
    assert all(root.id in f.explained_by for f in report.findings if f.rule == "CP-W020")


def test_a_whole_journal_joins_the_kernel_lines_read_inside_worker_records() -> None:
    """samples/journald-worker-oom: the machine's journal, kernel and worker lines interleaved; the kernel's
    lines sit inside a worker record (continuation lines), and each is still a kernel row of its own line."""
    from analyzer.sources.kernel_log import folded_rows

    bundle = open_bundle(ROOT / "samples" / "journald-worker-oom")
    rows = folded_rows(bundle.kept_events)
    kill = rows.filter(rows.get_column("event") == "oom_kill").row(0, named=True)
    assert (kill["source"], kill["line"], kill["pid"], kill["constraint"]) == (
        "journal.txt", 111, 27940, "CONSTRAINT_MEMCG")
    assert (ROOT / "samples" / "journald-worker-oom" / "journal.txt").read_text().splitlines()[110].endswith(
        kill["text"])
    report = bundle.report()
    root = report.finding(report.root_causes[0])
    assert root.rule == "CP-W025" and [(e.source, e.line) for e in root.evidence] == [
        ("journal.txt", 111), ("journal.txt", 112)]
