"""Markdown: verdict and root cause first, evidence in <details>, everything quoted escaped."""

from __future__ import annotations

from analyzer.findings import Evidence
from analyzer.renderers import RenderOptions
from analyzer.renderers.markdown import code, escape, fence, render
from tests.renderers import custom_layout_report, finding, frozen_options, make_report, sample_report


def test_verdict_and_root_cause_come_before_the_findings_table() -> None:
    md = render(sample_report("worker-sigkill"), frozen_options())
    verdict = md.index("**ROOT CAUSE: A pool child was killed by a signal")
    root = md.index("### 1. A pool child was killed by a signal")
    table = md.index("## Findings")
    coverage = md.index("## Coverage")
    assert verdict < root < table < coverage


def test_root_cause_shows_the_causal_chain_it_explains() -> None:
    md = render(sample_report("worker-sigkill"), frozen_options())
    assert "**Causal chain** (what this explains, and why):" in md
    assert "- f1 A pool child was killed by a signal" in md
    assert "  - f2 A task started and never finished (`task.stuck`" in md
    assert "— because a pool child that died (or that Celery killed) leaves its task unfinished" in md


def test_evidence_is_file_line_inside_details() -> None:
    md = render(sample_report("broker-refused"), frozen_options())
    block = md[md.index("<details>"):md.index("</details>")]
    assert "<summary>Evidence (3 of 3): worker.log:1, worker.log:4, worker.log:7</summary>" in block
    assert "`worker.log:4`" in block and "```text\nconsumer: Cannot connect to redis://" in block


def test_remediation_is_a_numbered_list_keeping_the_rules_code_spans() -> None:
    md = render(sample_report("broker-refused"), frozen_options())
    assert "1. Check that the broker process runs and listens where broker\\_url points: " \
           "`redis-cli -h HOST -p PORT PING`." in md


def test_coverage_lists_each_input_with_kind_and_counts() -> None:
    md = render(sample_report("broker-refused"), frozen_options())
    assert "| worker.log | celery\\_log | 9 | 9 | 0 |" in md


def test_healthy_bundle_says_so() -> None:
    md = render(sample_report("healthy"), frozen_options())
    assert "**HEALTHY: no root cause found**" in md and "## Root cause" not in md


def test_html_and_markdown_in_quoted_text_are_escaped() -> None:
    hostile = "<script>alert(1)</script> **bold** [link](http://x) | pipe `tick`"
    rep = make_report([finding(title=hostile, summary=hostile, hosts=["h|1"])])
    md = render(rep, RenderOptions())
    assert "<script>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\*\\*bold\\*\\* \\[link\\](http://x) \\| pipe \\`tick\\`" in md


def test_evidence_fence_is_longer_than_any_backtick_run_in_the_log() -> None:
    text = "print('```')\n````\nend"
    rep = make_report([finding(evidence=[Evidence("worker.log", 3, text)])])
    md = render(rep, RenderOptions())
    assert "`````text\n" + text + "\n`````" in md


def test_helpers() -> None:
    assert fence("a") == "```text\na\n```"
    assert code("a`b") == "``a`b``" and code("`x") == "`` `x ``"
    assert escape("a\nb_c") == "a b\\_c"


def test_inconclusive_verdict_lists_its_reasons_and_the_coverage_hint() -> None:
    md = render(custom_layout_report(), frozen_options())
    assert md.startswith("## celery-postmortem\n\n**INCONCLUSIVE: nothing in the input could be analysed**\n\n"
                         "- worker.log: text in no known layout, read as records and nothing found in them; if it "
                         "is a worker log in a custom layout, "
                         "give that layout with --log-format '&lt;worker\\_log\\_format&gt;'\n"
                         "- 3 files of no known kind: README.md, expected.json, produced.json\n")
    notes = md[md.index("Notes:"):]
    assert "- worker.log: layout unknown: every line read as a record" in notes


def test_healthy_verdict_has_no_reasons() -> None:
    md = render(sample_report("healthy"), frozen_options())
    assert md.startswith("## celery-postmortem\n\n**HEALTHY: no root cause found**\n\nhosts ")


def test_references_are_links() -> None:
    report = make_report([finding(references=["https://docs.celeryq.dev/en/stable/user_guide.html",
                                              "the *manual*"])])
    out = render(report, RenderOptions())
    assert "References: <https://docs.celeryq.dev/en/stable/user_guide.html>; the \\*manual\\*" in out


def test_the_causal_chain_shows_a_finding_explained_twice_once_under_its_first_parent() -> None:
    cats = ("broker.connection_refused", "backend.error", "task.exception", "worker.lost")
    report = make_report([finding(category=c, title=f"finding {c}") for c in cats])
    f1, f2, f3, f4 = (next(f for f in report.findings if f.category == c) for c in cats)
    f1.explains, f2.explains = [f2.id, f3.id, f4.id], [f3.id]
    report.root_causes[:] = [f1.id]
    out = render(report, RenderOptions())
    chain = out[out.index("**Causal chain**"):].split("\n\n")[1].splitlines()
    assert [ln.split(" (")[0] for ln in chain] == [
        f"- {f1.id} finding broker.connection\\_refused", f"  - {f2.id} finding backend.error",
        f"    - {f3.id} finding task.exception", f"  - {f4.id} finding worker.lost"]
