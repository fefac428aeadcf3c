"""GitHub workflow commands: one annotation per finding, the runner's escaping."""

from __future__ import annotations

from pathlib import Path

from analyzer.findings import Evidence
from analyzer.renderers import RenderOptions
from analyzer.renderers.github import escape_data, escape_property, render
from tests.renderers import (
    broken_rules_report,
    custom_layout_report,
    finding,
    frozen_options,
    make_report,
    sample_report,
)


def test_one_line_per_finding_at_its_first_evidence() -> None:
    out = render(sample_report("worker-sigkill"), frozen_options()).splitlines()
    assert out == [
        "::error file=worker.log,line=10,title=G-W001 A pool child was killed by a signal (root cause 1 — still "
        "failing at the end of the logs)::w1@sample: 1 pool child(ren) died: Process 'ForkPoolWorker-1' pid:13485 "
        "exited with 'signal 9 (SIGKILL)'%0Aincident i1, 2026-11-28T19:03:38.694: still failing at the end of the "
        "logs (task.stuck (f2) still holds when the logs end)",
        "::warning file=worker.log,line=8,title=G-T001 A task started and never finished::"
        "w1@sample: 1 task never finished: proj.crunch[bd54a0c7-d7bd-49f9-8288-c2b0824b7372]",
    ]


def test_severity_picks_the_command() -> None:
    rep = make_report([finding(rule="A", severity="critical"), finding(rule="B", severity="error"),
                       finding(rule="C", severity="warning", category="task.exception"),
                       finding(rule="D", severity="info", category="task.exception")])
    commands = [line.split(" ", 1)[0] for line in render(rep, RenderOptions()).splitlines()]
    assert sorted(commands) == ["::error", "::error", "::notice", "::warning"]


def test_escaping_follows_the_actions_runner() -> None:
    assert escape_data("100%\r\nnext: a, b") == "100%25%0D%0Anext: a, b"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_hostile_file_name_and_message_stay_on_one_line() -> None:
    rep = make_report([finding(summary="boom\n::error::injected", title="t, x: y",
                               evidence=[Evidence("dir,x:y/w.log", 7, "boom")])])
    (line,) = render(rep, RenderOptions()).splitlines()
    assert line == ("::error file=dir%2Cx%3Ay/w.log,line=7,title=CP-X001 t%2C x%3A y (root cause 1)::"
                    "boom%0A::error::injected")


def test_finding_without_evidence_has_no_file() -> None:
    rep = make_report([finding(evidence=[])])
    assert render(rep, RenderOptions()).startswith("::error title=")


def test_rule_errors_are_errors_at_their_rule_file(tmp_path: Path) -> None:
    lines = render(broken_rules_report(tmp_path), frozen_options()).splitlines()
    d = tmp_path / "broken-rules"
    toml = escape_property(str(d / "G-U010.toml"))
    regex = escape_property(str(d / "G-U011.toml"))
    assert lines[0].startswith(f"::error file={toml},title=celery-postmortem rule error::invalid TOML")
    assert lines[1].startswith(f"::error file={regex},line=8,title=celery-postmortem rule error::in 'when'")
    assert any(line.startswith("::error file=worker.log,line=1,title=G-B001") for line in lines[2:])


def test_inconclusive_verdict_is_one_error_with_its_reasons() -> None:
    (line,) = render(custom_layout_report(), frozen_options()).splitlines()
    title, message = line.split("::", 2)[1:]
    assert title == "error title=INCONCLUSIVE%3A nothing in the input could be analysed"
    assert message.startswith("worker.log: text in no known layout, read as records and nothing found in them; "
                              "if it is a worker log in a custom "
                              "layout, give that layout with --log-format '<worker_log_format>'; 3 files of no")


def test_file_is_the_path_from_the_working_directory_after_the_prefix() -> None:
    opts = RenderOptions(artifact_paths=(("worker.log", "incidents/0412/worker.log"),), path_prefix="app")
    out = render(sample_report("worker-sigkill"), opts).splitlines()
    assert [line.split(",", 1)[0] for line in out] == ["::error file=app/incidents/0412/worker.log",
                                                       "::warning file=app/incidents/0412/worker.log"]
    plain = render(sample_report("worker-sigkill"), RenderOptions(path_prefix="app/")).splitlines()
    assert plain[0].startswith("::error file=app/worker.log,line=10,")
