"""The terminal report: at its default 100 columns and at the terminal's width, nothing an
operator needs is cut off, wrapped lines keep their indent, the causal tree draws each finding
once with its branches, and nothing is said in filler (`1 time(s)`, `· ? ·`, raw byte counts)."""

from __future__ import annotations

import re

import pytest

from analyzer.renderers import RenderOptions
from tests.conftest import SAMPLES
from tests.renderers import finding, make_report, renderer, sample_report


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


def _tree(out: str) -> list[str]:
    """The lines of the causal tree (from `what followed from it:` to the next section), panel
    borders gone."""
    body = re.split(r"evidence:|what to do:", out.split("what followed from it:", 1)[1], maxsplit=1)[0]
    return [ln.strip().removeprefix("│ ").removesuffix("│").rstrip() for ln in body.splitlines()[1:-1]]


@pytest.mark.parametrize("sample", ["deadlock-lock", "redis-oom", "heartbeat-stall-hang"])
def test_the_causal_tree_shows_each_finding_once(sample: str) -> None:
    report = sample_report(sample, frozen_rules=False)
    out = renderer("terminal")(report, RenderOptions(width=120))
    nodes = [re.search(r"[├└]─ (f\d+) ", ln) for ln in _tree(out)]
    ids = [m[1] for m in nodes if m]
    assert len(ids) == len(set(ids)) == len(report.findings) - 1, ids


def test_the_causal_tree_branches_show_which_child_is_last() -> None:
    # f1 explains f2, f3 and f4; f2 also explains f3: f3 is drawn once, under f2
    report = make_report([finding(category=c, title=f"finding {c}", evidence=[]) for c in
                          ("broker.connection_refused", "backend.error", "task.exception", "worker.lost")])
    f1, f2, f3, f4 = (next(f for f in report.findings if f.category == c) for c in
                      ("broker.connection_refused", "backend.error", "task.exception", "worker.lost"))
    f1.explains, f2.explains = [f2.id, f3.id, f4.id], [f3.id]
    f3.because = {f2.id: "the reason why f2 leads to f3"}
    f2.because = {f1.id: "the reason why f1 leads to f2"}
    report.root_causes[:] = [f1.id]
    lines = _tree(renderer("terminal")(report, RenderOptions(width=120)))
    assert lines == [
        f"├─ {f2.id} backend.error: finding backend.error (1×)",
        "│  │  because the reason why f1 leads to f2",
        f"│  └─ {f3.id} task.exception: finding task.exception (1×)",
        "│        because the reason why f2 leads to f3",
        f"└─ {f4.id} worker.lost: finding worker.lost (1×)",
    ]


def test_no_filler_in_a_finding_without_times_or_with_one_time() -> None:
    out = renderer("terminal")(sample_report("deadlock-lock", frozen_rules=False), RenderOptions())
    panel = out[:out.index("Findings")]
    assert "· ? ·" not in panel and "(s)" not in panel
    assert "1 occurrence · w1@sample" in out


def test_counts_and_sizes_are_said_in_words() -> None:
    report = sample_report("redis-oom", frozen_rules=False)
    summaries = " ".join(f.summary for f in report.findings)
    assert "(s)" not in summaries and " bytes" not in summaries
    assert "uses 2.1 MiB of maxmemory 2.0 MiB" in summaries
    for f in report.findings:
        if f.first_seen is not None and f.first_seen == f.last_seen:
            assert f"from {f.first_seen} to {f.first_seen}" not in f.summary


def test_traceback_evidence_shows_the_exception_line() -> None:
    report = sample_report("redis-oom", frozen_rules=False)
    out = _flat(renderer("terminal")(report, RenderOptions(width=120)))
    assert "producer.log:1: Traceback (most recent call last): kombu.exceptions.OperationalError: Command # 1" in out


def test_dump_evidence_shows_the_thread_not_its_columns() -> None:
    report = sample_report("heartbeat-stall-hang", frozen_rules=False)
    out = _flat(renderer("terminal")(report, RenderOptions(width=120)))
    assert ('↳ thread "MainThread" (tid 9646, pid 9646 on w1@sample) io_wait in TCPTransport._read '
            "(amqp/transport.py:648)") in out
    assert "signature=" not in out and "tool=py-spy" not in out


def _captured(sample: str, columns: int) -> str:
    from typer.testing import CliRunner

    from analyzer.cli import app

    result = CliRunner().invoke(app, ["analyze", str(SAMPLES / sample), "--no-color"],
                                env={"COLUMNS": str(columns)})
    return result.stdout


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("sample", ["heartbeat-stall-hang", "redis-oom", "deadlock-lock"])
def test_captured_at_the_terminals_width_no_line_wraps_and_wrapped_lines_indent(sample: str, columns: int) -> None:
    out = _captured(sample, columns)
    lines = out.splitlines()
    assert max(len(ln) for ln in lines) <= columns
    assert any(len(ln) == columns for ln in lines)  # the box is drawn at the width asked for
    verdict_end = next(i for i, ln in enumerate(lines) if ln.startswith("hosts: "))
    assert all(ln.startswith("  ") for ln in lines[1:verdict_end])
    inner = [ln[2:-1].rstrip() for ln in lines if ln.startswith("│ ") and ln.endswith("│")]
    tree = inner[inner.index("what followed from it:") + 1:inner.index("evidence:")]
    assert tree and all(ln[:1] in "├└│ " for ln in tree), tree
    todo = inner[inner.index("what to do:") + 1:]
    todo = todo[:next((i for i, ln in enumerate(todo) if not ln.startswith(" ")), len(todo))]
    assert todo and all(ln.startswith(("  • ", "    ")) for ln in todo), todo


def test_a_traceback_whose_first_line_names_the_exception_adds_no_second_line() -> None:
    from analyzer.renderers import evidence_lines

    text = ('Task handler raised error: WorkerLostError(\'Worker exited\')\nTraceback (most recent call last):\n'
            '  File "pool.py", line 1, in f\n    raise WorkerLostError(\nbilliard.einfo.ExceptionWithTraceback: \n'
            '"""\nbilliard.exceptions.WorkerLostError: Worker exited\n"""')
    assert evidence_lines(text) == ["Task handler raised error: WorkerLostError('Worker exited')"]
    bare = "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\nKeyError: 'x'\n"
    assert evidence_lines(bare) == ["Traceback (most recent call last):", "KeyError: 'x'"]
