"""Markdown for a GitHub PR comment or an incident ticket (GitHub-flavoured).

Order: verdict, then each root cause (summary, what it explains as a causal chain, what to do,
evidence as `file:line` in a collapsible `<details>`), a compact findings table, coverage per
input, problems. Every string that comes from the bundle or a rule is escaped (`escape`,
`cell`); quoted log text goes into fenced code blocks whose fence is longer than any run of
backticks in the text, so nothing in a log line can end the block or inject HTML.
"""

from __future__ import annotations

import html
import re

from analyzer.findings import Evidence, Finding
from analyzer.renderers import (
    RenderOptions,
    causal_tree,
    incident_text,
    link_reason,
    same_remediation,
    span,
    standing_text,
    verdict,
    with_links,
)
from analyzer.report import Report

# Characters with a meaning in GFM inline text; `<`, `>`, `&` become entities (raw HTML is allowed
# in GitHub Markdown, so `<script>` would otherwise reach the renderer as a tag).
# `#`, `-`, `+` and `1.` only mean something at the start of a line, and escaped text is always
# placed after a prefix (`> `, `- `, a table pipe), so they are left alone.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]|~])")


def escape(text: str) -> str:
    """Inline Markdown text showing `text` literally (one line: newlines become spaces)."""
    text = " ".join(text.replace("\r", "").split("\n"))
    text = html.escape(text, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


_CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def escape_keep_code(text: str) -> str:
    """Like `escape`, but `code spans` written by a rule author stay code spans (their content is
    literal in Markdown, so it cannot inject anything)."""
    text = " ".join(text.replace("\r", "").split("\n"))
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        out.append(escape(text[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def cell(text: str) -> str:
    """Table cell text: escaped, on one line (`|` is escaped by `escape`)."""
    return escape(text)


def code(text: str) -> str:
    """Inline code span that survives backticks in `text` (GFM: a longer backtick run)."""
    text = " ".join(text.split("\n"))
    runs = [len(m) for m in re.findall(r"`+", text)]
    ticks = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fence(text: str, info: str = "text") -> str:
    """A fenced code block holding `text` verbatim."""
    runs = [len(m) for m in re.findall(r"`{3,}", text)]
    ticks = "`" * max(3, max(runs, default=0) + 1)
    return f"{ticks}{info}\n{text.rstrip(chr(10))}\n{ticks}"


def _reference(ref: str) -> str:
    """A rule's reference, escaped, with its URLs as autolinks (`<https://…>`)."""
    return with_links(ref, escape, lambda url: f"<{url}>")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _meta(f: Finding) -> str:
    when = span(f.first_seen, f.last_seen)
    parts = [f"**{escape(f.severity)}**", f"confidence {f.confidence:.2f}", _plural(f.count, "occurrence"),
             *([escape(when)] if when else [])]
    if f.hosts:
        parts.append("hosts " + ", ".join(code(h) for h in f.hosts))
    if f.tasks:
        shown = ", ".join(code(t) for t in f.tasks[:5])
        parts.append(f"tasks {shown}" + (f" (+{len(f.tasks) - 5})" if len(f.tasks) > 5 else ""))
    parts.append(f"rule {code(f.rule)}")
    return " · ".join(parts)


def _evidence(evidence: list[Evidence], total: int, limit: int) -> list[str]:
    if not evidence:
        return []
    shown = evidence[:limit]
    where = ", ".join(f"{e.source}:{e.line}" for e in shown)
    more = max(total, len(evidence)) - len(shown)
    label = f"Evidence ({len(shown)} of {max(total, len(evidence))}): {where}" + (f", … {more} more" if more else "")
    out = ["<details>", f"<summary>{html.escape(label)}</summary>", ""]
    for e in shown:
        out += [f"{code(f'{e.source}:{e.line}')}", "", fence(e.text), ""]
        if e.detail:
            out += [f"↳ {code(e.detail)}", ""]
    out += ["</details>", ""]
    return out


def _root(report: Report, rank: int, fid: str, opts: RenderOptions) -> list[str]:
    f = report.finding(fid)
    out = [f"### {rank}. {escape(f.title)} ({code(f.category)}, {f.id})", "", f"> {escape(f.summary)}", "",
           _meta(f), ""]
    inc = report.incident_of(fid)
    if inc is not None and inc.root == fid:
        out += [f"**{escape(inc.headline())}** · {escape(incident_text(inc, headline=False))}", ""]
    tree = causal_tree(report, fid)
    if tree:
        out += ["**Causal chain** (what this explains, and why):", "",
                f"- {f.id} {escape(f.title)} ({code(f.category)}, {escape(f.severity)}, "
                f"{_plural(f.count, 'occurrence')})"]
        for node in tree:
            e = report.finding(node.id)
            why = link_reason(report, node.id, node.parent)
            out.append(f"{'  ' * node.depth}- {e.id} {escape(e.title)} ({code(e.category)}, {escape(e.severity)}, "
                       f"{_plural(e.count, 'occurrence')})" + (f" — because {escape(why)}" if why else ""))
        out.append("")
    same = same_remediation(report, fid)
    if same:
        out += [f"**What to do:** as for {same}.", ""]
    elif f.remediation:
        out += ["**What to do:**", ""]
        out += [f"{n}. {escape_keep_code(r)}" for n, r in enumerate(f.remediation, 1)]
        out.append("")
    advice = report.advice.get(fid)
    if advice and advice.tree:
        marks = {"passed": "✓", "failed here": "✗ **failed here**", "not reached": "not reached"}
        out += ["**Broker decision tree:** " + " → ".join(f"{step} {marks[status]}" for step, _, status in advice.tree),
                "", fence("\n".join(advice.checks)), ""]
    if advice and advice.missing:
        out += ["**To confirm, collect:**", ""]
        out += [f"- {escape(a.what)}: {code(a.command)}" for a in advice.missing]
        out.append("")
    out += _evidence(f.evidence, f.evidence_total, opts.max_evidence)
    if f.references:
        out += ["References: " + "; ".join(_reference(r) for r in f.references), ""]
    return out


def _findings_table(report: Report) -> list[str]:
    out = ["## Findings", "", "| id | severity | category | count | first seen | explained by | title |",
           "| --- | --- | --- | ---: | --- | --- | --- |"]
    for f in report.findings:
        out.append(f"| {f.id} | {cell(f.severity)} | {code(f.category)} | {f.count} | {cell(f.first_seen or '')} | "
                   f"{cell(', '.join(f.explained_by))} | {cell(f.title)} |")
    out.append("")
    others = [f for f in report.findings if f.id not in report.root_causes]
    for f in others:
        out += [f"#### {f.id} {escape(f.title)}", "", f"> {escape(f.summary)}", "", _meta(f), ""]
        if f.explained_by:
            out += ["Explained by " + "; ".join(
                f"{c} (because {escape(f.because[c])})" if c in f.because else c for c in f.explained_by) + ".", ""]
        out += _evidence(f.evidence, f.evidence_total, 3)
    return out


def _coverage(report: Report) -> list[str]:
    out = ["## Coverage", "", "| input | kind | lines | parsed | unrecognized |", "| --- | --- | ---: | ---: | ---: |"]
    for c in report.inputs:
        out.append(f"| {cell(c.source)} | {cell(c.kind)} | {c.lines} | {c.parsed} | {c.unrecognized} |")
    out.append("")
    samples = [(c.source, ln, t) for c in report.inputs for ln, t in c.samples[:3]]
    if samples:
        out += ["<details>", "<summary>Unrecognised lines (samples)</summary>", ""]
        out.append(fence("\n".join(f"{s}:{ln}: {t}" for s, ln, t in samples)))
        out += ["", "</details>", ""]
    notes = [f"- {cell(c.source)}: {escape(n)}" for c in report.inputs
             for n in [*c.notes, report.log_format_hint(c)] if n]
    if notes:
        out += ["Notes:", "", *notes, ""]
    return out


def render(report: Report, options: RenderOptions) -> str:
    s = report.summary
    tasks = ", ".join(f"{k} {v}" for k, v in s.tasks_by_state.items()) or "none"
    hosts = ", ".join(code(h) for h in s.hosts) or "?"
    out = ["## celery-postmortem", "", f"**{escape(verdict(report))}**", ""]
    reasons = report.inconclusive_reasons()
    if reasons:
        out += [f"- {escape(r)}" for r in reasons] + [""]
    when = span(s.first_ts, s.last_ts) or "no timestamps"
    out += [f"hosts {hosts} · {escape(when)} · {s.events} records · tasks: {escape(tasks)}", ""]
    if report.root_causes:
        out += ["## Root cause" + ("s" if len(report.root_causes) > 1 else ""), ""]
        for rank, fid in enumerate(report.root_causes, 1):
            out += _root(report, rank, fid, options)
    standing = [f for f in report.standing() if f.id not in report.root_causes]
    if standing:
        out += ["## Standing errors", "", "A steady rate all through the logs: background, not causes.", ""]
        out += [f"- {escape(standing_text(f))}" for f in standing] + [""]
    if report.findings:
        out += _findings_table(report)
    out += _coverage(report)
    if report.clocks:
        out += ["## Clocks", ""] + [f"- {escape(c)}" for c in report.clocks] + [""]
    if report.problems:
        out += ["## Problems", ""] + [f"- {cell(p.source)}: {escape(p.message)}" for p in report.problems] + [""]
    if report.rule_errors:
        out += ["## Rule errors", ""] + [f"- {escape(e)}" for e in report.rule_errors] + [""]
    overrides = report.rule_overrides()
    if overrides:
        out += ["## Rule overrides", ""] + [f"- {escape(str(o))}" for o in overrides] + [""]
    return "\n".join(out).rstrip("\n") + "\n"
