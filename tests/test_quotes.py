"""Evidence quotes the place it points to: `file:line` shows what the file says there."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import open_bundle, quotes
from analyzer.clip import clip
from analyzer.engine.evaluate import MAX_EVIDENCE_CHARS
from analyzer.renderers import RenderOptions
from tests.conftest import SAMPLES
from tests.renderers import renderer


def _line(path: str, n: int) -> str:
    return (SAMPLES / path).read_text(encoding="utf-8").splitlines()[n - 1]


def test_thread_evidence_is_the_dumps_thread_header_with_the_row_as_detail() -> None:
    report = open_bundle(SAMPLES / "lock-wait-many").report()
    [f] = [f for f in report.findings if f.rule == "CP-H002"]
    for e in f.evidence:
        assert e.text == _line(f"lock-wait-many/{e.source}", e.line)
        # the row in words: the thread and where it is in the application, not its columns
        assert e.text.startswith("Thread ") and e.detail.startswith('thread "') and " lock_wait in " in e.detail
        assert "tool=" not in e.detail and "signature=" not in e.detail


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


def test_a_long_line_is_cut_at_a_token_end_and_log_rule_evidence_is_untouched(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quotes, "MAX_QUOTE", 20)
    report = open_bundle(SAMPLES / "lock-wait-many").report()
    [f] = [f for f in report.findings if f.rule == "CP-H002"]
    assert _line("lock-wait-many/pyspy-locals.txt", 301) == 'Thread 15620 (idle): "reader-0"'
    assert f.evidence[0].text == "Thread 15620 (idle):…"
    refused = open_bundle(SAMPLES / "broker-refused").report()
    assert all(not e.detail for f in refused.findings for e in f.evidence)
    assert "detail" not in refused.to_dict()["findings"][0]["evidence"][0]  # type: ignore[index]


def test_inspect_replies_keep_the_entry_the_row_describes() -> None:
    """`celery inspect active --json` writes every worker on one line: its start may be another worker's
    tasks, so the evidence stays the row's own account of the entry."""
    report = open_bundle(SAMPLES / "task-never-finishes").report()
    [stuck] = [f for f in report.findings if f.rule == "CP-S010"]
    e = stuck.evidence[0]
    assert e.source == "inspect-active.json" and not e.detail
    assert e.text.startswith("celery inspect active: w1@sample proj.sync_forever[3ae2e070-")


def test_cut_evidence_never_leaves_half_a_secret_for_the_redactor(tmp_path: Path) -> None:
    """Evidence is cut when findings are made and redacted when rendered: a cut inside
    `redis://:password@` would hide the URL from the redactor and leak the password's start."""
    assert clip("x" * 480 + " redis://:TopSecretPass@127.0.0.1:6379/0 tail", 500) == "x" * 480 + "…"
    lines = (SAMPLES / "broker-refused" / "worker.log").read_text().splitlines()
    i = next(n for n, line in enumerate(lines) if "Cannot connect to redis://" in line)
    head, url = lines[i].split("] ", 1)[0] + "] ", lines[i].split("Cannot connect to ", 1)[1]
    # the evidence is the message (`consumer: Cannot connect to …`): its password starts 5 characters
    # before the cut at MAX_EVIDENCE_CHARS
    prefix = "consumer: Cannot connect to "
    pad = "p" * (MAX_EVIDENCE_CHARS - 5 - len(prefix) - len(" redis://:"))
    lines[i] = f"{head}{prefix}{pad} redis://:TopSecretPass@127.0.0.1:6379/0 {url}"
    (tmp_path / "worker.log").write_text("\n".join(lines) + "\n")
    report = open_bundle(tmp_path / "worker.log").report()
    [e] = [e for f in report.findings for e in f.evidence if e.line == i + 1]
    assert e.text.endswith("pppp…")
    out = renderer("json")(report, RenderOptions())
    assert "TopSe" not in out and "Cannot connect to pppp" in out


def test_coverage_samples_are_cut_where_the_redactor_still_sees_a_secret(tmp_path: Path) -> None:
    # an unrecognised first line: 280 characters, then a broker URL whose password crosses character 300
    log = (SAMPLES / "healthy" / "worker.log").read_text()
    (tmp_path / "worker.log").write_text("x" * 280 + " redis://:SuperSecretPassword123@10.0.0.7:6379/0 tail\n" + log)
    report = open_bundle(tmp_path / "worker.log").report()
    [(line, text)] = report.inputs[0].samples
    assert line == 1 and text == "x" * 280 + "…"
    for fmt in ("json", "terminal", "markdown", "html"):
        assert "SuperSe" not in renderer(fmt)(report, RenderOptions())
