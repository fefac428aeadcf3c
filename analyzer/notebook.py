"""How bundles, reports and findings show themselves in Jupyter: small, escaped HTML / Markdown.

Every function returns a string (never `None`) and stays cheap: a bundle's repr parses the
inputs (it has to, to count rows) but runs the rules only if the report is already cached.
Long tables are cut to `MAX_ROWS` rows with a count of what was left out, long texts to
`MAX_TEXT` characters, and everything quoted from the bundle is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyzer.api import Bundle
    from analyzer.findings import Finding
    from analyzer.report import Report

MAX_ROWS = 12
MAX_TEXT = 200
MAX_EVIDENCE = 5

SEVERITY_COLOURS = {"critical": "#b2182b", "error": "#d6604d", "warning": "#e08214", "info": "#4393c3"}
_TABLE = 'style="border-collapse:collapse;font-size:90%"'
_CELL = 'style="text-align:left;padding:1px 8px;vertical-align:top"'


def shorten(text: object, limit: int = MAX_TEXT) -> str:
    """First line of `text`, cut to `limit` characters with an ellipsis (not escaped)."""
    s = "" if text is None else str(text)
    first = s.splitlines()[0] if s.strip() else s
    more = len(first) > limit or first != s
    return (first[:limit] + "…") if more else first


def _e(value: object, limit: int = MAX_TEXT) -> str:
    return html.escape(shorten(value, limit))


def _md(value: object, limit: int = MAX_TEXT) -> str:
    """Escaped for a Markdown table cell: HTML special characters, pipes, backticks, newlines."""
    return _e(value, limit).replace("|", "\\|").replace("`", "\\`").replace("*", "\\*").replace("_", "\\_")


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, total: int | None = None) -> str:
    """An escaped HTML table of at most `MAX_ROWS` rows, with a note on how many were left out."""
    total = len(rows) if total is None else total
    head = "".join(f"<th {_CELL}>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {_CELL}>{_e(v)}</td>" for v in row) + "</tr>" for row in rows[:MAX_ROWS])
    shown = min(len(rows), MAX_ROWS)
    note = f"<div><i>… {total - shown} more</i></div>" if total > shown else ""
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, total: int | None = None) -> str:
    """A Markdown table of at most `MAX_ROWS` rows, cells escaped, with a note on the rest."""
    total = len(rows) if total is None else total
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(v) for v in row) + " |" for row in rows[:MAX_ROWS]]
    shown = min(len(rows), MAX_ROWS)
    if total > shown:
        lines.append(f"\n*… {total - shown} more*")
    return "\n".join(lines)


# -- bundle --------------------------------------------------------------------------------------


def _bundle_parts(bundle: Bundle) -> tuple[str, list[list[object]], list[list[object]], Report | None]:
    from analyzer.schema import ATTRIBUTE_FRAMES

    title = ", ".join(str(p) for p in bundle.paths) or "(in-memory bundle)"
    inputs = [[c.source, c.kind, c.lines, c.parsed, c.unrecognized] for c in bundle.coverage]
    frames: list[list[object]] = [[name, getattr(bundle, name).height, len(getattr(bundle, name).columns)]
                                  for name in ATTRIBUTE_FRAMES]
    return title, inputs, frames, bundle._report


def _verdict(report: Report | None) -> tuple[str, list[Finding]]:
    if report is None:
        return "findings not computed yet: call `.report()` or read `.findings`", []
    if report.verdict == "inconclusive":
        return _report_verdict(report), []
    if report.healthy:
        return f"healthy ({len(report.findings)} informational findings)", []
    roots = [report.finding(fid) for fid in report.root_causes]
    return f"{len(report.root_causes)} root cause(s) among {len(report.findings)} findings", roots


def bundle_html(bundle: Bundle) -> str:
    """HTML summary of a bundle: inputs with coverage, frame sizes, root causes if computed."""
    title, inputs, frames, report = _bundle_parts(bundle)
    verdict, roots = _verdict(report)
    root_list = "".join(f"<li><b>{_e(f.id)}</b> {_e(f.category)}: {_e(f.title)}</li>" for f in roots)
    return (f"<div><b>Bundle</b> {_e(title)}<br>{_e(verdict)}"
            + (f"<ul>{root_list}</ul>" if root_list else "")
            + html_table(["input", "kind", "lines", "parsed", "unrecognized"], inputs)
            + html_table(["frame", "rows", "columns"], frames) + "</div>")


def bundle_markdown(bundle: Bundle) -> str:
    """Markdown summary of a bundle (same content as `bundle_html`)."""
    title, inputs, frames, report = _bundle_parts(bundle)
    verdict, roots = _verdict(report)
    parts = [f"**Bundle** {_md(title)}", "", _md(verdict), ""]
    parts += [f"- **{_md(f.id)}** {_md(f.category)}: {_md(f.title)}" for f in roots]
    parts += ["", markdown_table(["input", "kind", "lines", "parsed", "unrecognized"], inputs), "",
              markdown_table(["frame", "rows", "columns"], frames)]
    return "\n".join(parts)


# -- report --------------------------------------------------------------------------------------


def _finding_rows(report: Report) -> list[list[object]]:
    roots = set(report.root_causes)
    return [[f.id + (" ★" if f.id in roots else ""), f.severity, f.category, f.count, f.first_seen or "",
             ", ".join(f.hosts), f.title] for f in report.findings]


FINDING_HEADER = ["id", "severity", "category", "count", "first seen", "hosts", "title"]


def _coverage_line(report: Report) -> str:
    lines = sum(c.lines for c in report.inputs)
    unrecognized = sum(c.unrecognized for c in report.inputs)
    return f"{len(report.inputs)} inputs, {lines} lines, {unrecognized} unrecognized"


def _report_verdict(report: Report) -> str:
    if report.verdict == "inconclusive":
        return "inconclusive: " + "; ".join(report.inconclusive_reasons())
    return "healthy" if report.healthy else "root causes: " + ", ".join(report.root_causes)


def report_html(report: Report) -> str:
    """HTML of a report: verdict, findings table (root causes starred), coverage totals."""
    verdict = _report_verdict(report)
    errors = f"<div>{len(report.rule_errors)} rule error(s)</div>" if report.rule_errors else ""
    problems = f"<div>{len(report.problems)} input problem(s)</div>" if report.problems else ""
    return (f"<div><b>Report</b>: {_e(verdict)}<br>{_e(_coverage_line(report))}{errors}{problems}"
            + html_table(FINDING_HEADER, _finding_rows(report)) + "</div>")


def report_markdown(report: Report) -> str:
    """Markdown of a report (same content as `report_html`)."""
    verdict = _report_verdict(report)
    parts = [f"**Report**: {_md(verdict)}", "", _md(_coverage_line(report))]
    if report.rule_errors:
        parts.append(f"{len(report.rule_errors)} rule error(s)")
    if report.findings:
        parts += ["", markdown_table(FINDING_HEADER, _finding_rows(report))]
    return "\n".join(parts)


# -- finding -------------------------------------------------------------------------------------


def _links(f: Finding) -> str:
    parts = []
    if f.explained_by:
        parts.append("explained by " + ", ".join(f.explained_by))
    if f.explains:
        parts.append("explains " + ", ".join(f.explains))
    return "; ".join(parts)


def finding_html(finding: Finding) -> str:
    """HTML of one finding: header, summary, the first evidence lines, remediation."""
    f = finding
    colour = SEVERITY_COLOURS.get(f.severity, "#555")
    seen = f"{f.first_seen or '?'} → {f.last_seen or '?'}"
    evidence = [[f"{e.source}:{e.line}", e.text] for e in f.evidence[:MAX_EVIDENCE]]
    remediation = "".join(f"<li>{_e(r, 400)}</li>" for r in f.remediation)
    return (f'<div><b style="color:{colour}">{_e(f.severity)}</b> <b>{_e(f.id)}</b> {_e(f.rule)} '
            f"<code>{_e(f.category)}</code>: {_e(f.title)}<br>{_e(f.summary, 400)}<br>"
            f"{f.count} match(es), {_e(seen)}, hosts: {_e(', '.join(f.hosts) or '-')}"
            + (f"<br>{_e(_links(f))}" if _links(f) else "")
            + html_table(["where", "evidence"], evidence, total=max(f.evidence_total, len(f.evidence)))
            + (f"<div>Remediation:<ul>{remediation}</ul></div>" if remediation else "") + "</div>")


def finding_markdown(finding: Finding) -> str:
    """Markdown of one finding (same content as `finding_html`)."""
    f = finding
    parts = [f"**{_md(f.severity)}** **{_md(f.id)}** {_md(f.rule)} `{html.escape(f.category)}`: {_md(f.title)}",
             "", _md(f.summary, 400), "",
             f"{f.count} match(es), {_md(f.first_seen or '?')} → {_md(f.last_seen or '?')}, "
             f"hosts: {_md(', '.join(f.hosts) or '-')}"]
    if _links(f):
        parts += ["", _md(_links(f))]
    evidence = [[f"{e.source}:{e.line}", e.text] for e in f.evidence[:MAX_EVIDENCE]]
    if evidence:
        parts += ["", markdown_table(["where", "evidence"], evidence, total=max(f.evidence_total, len(evidence)))]
    if f.remediation:
        parts += ["", "Remediation:", *(f"- {_md(r, 400)}" for r in f.remediation)]
    return "\n".join(parts)
