"""GitHub Actions workflow commands: one annotation line per finding.

`::error file=worker.log,line=118,title=CP-B001 Broker refuses connections (root cause 1)::summary`
— critical and error findings are `::error`, warning `::warning`, info `::notice`; the location
is the finding's first evidence line (no `file` when it has none), its path from the working
directory when the CLI knows it, after any `--path-prefix` (`renderers.artifact_path`). A rule that failed to load or
evaluate is an `::error` at its rule file (`title=celery-postmortem rule error`); an inconclusive
verdict is one `::error` with its reasons. Escaping follows the Actions
runner (`ActionCommand`): in the message `%` → `%25`, CR → `%0D`, LF → `%0A`; in property values
also `:` → `%3A` and `,` → `%2C`.
"""

from __future__ import annotations

from analyzer.renderers import RenderOptions, artifact_path, headline, incident_text, verdict
from analyzer.report import Report

COMMANDS = {"critical": "error", "error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _run_errors(report: Report) -> list[str]:
    lines = []
    for e in report.rule_problems():
        props = [f"file={escape_property(e.source)}"] if e.source != "<rule>" else []
        if e.line is not None:
            props.append(f"line={e.line}")
        props.append(f"title={escape_property('celery-postmortem rule error')}")
        lines.append(f"::error {','.join(props)}::{escape_data(e.message)}")
    if report.verdict == "inconclusive":
        message = "; ".join(report.inconclusive_reasons())
        lines.append(f"::error title={escape_property(verdict(report))}::{escape_data(message)}")
    return lines


def render(report: Report, options: RenderOptions) -> str:
    lines = _run_errors(report)
    for f in report.findings:
        title = f"{f.rule} {f.title}"
        if f.id in report.root_causes:
            title += f" (root cause {report.root_causes.index(f.id) + 1}{headline(report, f.id)})"
        props = []
        if f.evidence:
            path = artifact_path(f.evidence[0].source, options)
            props += [f"file={escape_property(path)}", f"line={max(1, f.evidence[0].line)}"]
        props.append(f"title={escape_property(title)}")
        message = f.summary or f.title
        inc = report.incident_of(f.id)
        if inc is not None and inc.root == f.id:
            message += f"\n{incident_text(inc)}"
        if f.baseline is not None:
            message += f"\n{f.baseline.describe()}"
        lines.append(f"::{COMMANDS.get(f.severity, 'warning')} {','.join(props)}::{escape_data(message)}")
    return "".join(line + "\n" for line in lines)
