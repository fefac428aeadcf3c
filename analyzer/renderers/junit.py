"""JUnit XML for CI report viewers: the loaded catalogue as a test suite.

One `<testsuite name="celery-postmortem">` with one `<testcase>` per rule (`classname` = the
rule's area, `broker` of `broker.auth`; `name` = `ID title`). A rule with a finding at or above
`RenderOptions.fail_on` (default `warning`; the `fail_on` property is written only when it was
given) has a `<failure>` (`message` = the summary, `type` = the severity, text = the evidence as
`source:line: text`); a rule that fired below the threshold passes and says so in `<system-out>`;
a rule that did not fire passes. Rules come from `RenderOptions.rules` (the CLI passes the loaded
catalogue), else from the findings.

What went wrong with the run itself is an `<error>`, so CI viewers do not show it green: one
testcase per rule file that failed to load or evaluate (classname `rules`, `type="rule_error"`),
and one when the verdict is inconclusive (classname `celery-postmortem`, `type="inconclusive"`,
the reasons as text).
Characters XML 1.0 cannot carry (NUL, other C0 controls) are shown as `\\xNN`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from analyzer.categories import SEVERITY_RANK
from analyzer.findings import Finding
from analyzer.renderers import RenderOptions, headline, incident_text, rules_of, verdict
from analyzer.report import Report

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def _details(report: Report, f: Finding, limit: int) -> str:
    lines = [f"{f.id} [{f.severity}] {f.summary}"]
    inc = report.incident_of(f.id)
    if inc is not None and inc.root == f.id:
        lines.append(f"  {incident_text(inc)}")
    lines.extend(f"  explained by {c}: {why}" for c, why in f.because.items())
    if f.baseline is not None:
        lines.append(f"  {f.baseline.describe()}")
    for e in f.evidence[:limit]:
        body = e.text.splitlines() or [""]
        lines.append(f"  {e.source}:{e.line}: {body[0]}")
        lines.extend(f"      {b}" for b in body[1:])
        if e.detail:
            lines.append(f"      ↳ {e.detail}")
    more = max(f.evidence_total, len(f.evidence)) - min(limit, len(f.evidence))
    if more > 0:
        lines.append(f"  … {more} more")
    if f.remediation:
        lines.append("  what to do:")
        lines.extend(f"  - {r}" for r in f.remediation)
    return "\n".join(lines)


def _errors(report: Report, suite: ET.Element) -> int:
    """Error testcases for the run's own trouble: rule errors, an inconclusive verdict."""
    n = 0
    for e in report.rule_problems():
        where = e.source + (f":{e.line}" if e.line is not None else "")
        case = ET.SubElement(suite, "testcase", classname="rules", name=_x(f"rule error {where}"), time="0")
        err = ET.SubElement(case, "error", message=_x(e.message.splitlines()[0] if e.message else ""),
                            type="rule_error")
        err.text = _x(f"{where}: {e.message}")
        n += 1
    if report.verdict == "inconclusive":
        case = ET.SubElement(suite, "testcase", classname="celery-postmortem", name="inputs analysed", time="0")
        err = ET.SubElement(case, "error", message=_x(verdict(report)), type="inconclusive")
        err.text = _x("\n".join(report.inconclusive_reasons()))
        n += 1
    return n


def render(report: Report, options: RenderOptions) -> str:
    fail_on = options.fail_on or "warning"
    threshold = SEVERITY_RANK.get(fail_on, SEVERITY_RANK["warning"])
    by_rule: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_rule.setdefault(f.rule, []).append(f)
    rules = rules_of(report, options)
    suite = ET.Element("testsuite", name="celery-postmortem", tests=str(len(rules)), errors="0", skipped="0",
                       time="0")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="verdict", value=report.verdict)
    ET.SubElement(props, "property", name="root_causes", value=",".join(report.root_causes))
    for inc in report.incidents:
        ET.SubElement(props, "property", name=f"incident_{inc.id}", value=_x(incident_text(inc)))
    if options.fail_on is not None:
        ET.SubElement(props, "property", name="fail_on", value=options.fail_on)
    failures = 0
    for r in rules:
        case = ET.SubElement(suite, "testcase", classname=r.area, name=_x(f"{r.id} {r.title}"), time="0")
        fired = by_rule.get(r.id, [])
        failing = [f for f in fired if SEVERITY_RANK.get(f.severity, 0) >= threshold]
        if failing:
            failures += 1
            first = failing[0]
            message = first.summary + headline(report, first.id) + (
                f" (+{len(failing) - 1} more finding(s))" if len(failing) > 1 else "")
            fail = ET.SubElement(case, "failure", message=_x(message), type=first.severity)
            fail.text = _x("\n\n".join(_details(report, f, options.max_evidence) for f in failing))
        elif fired:
            out = ET.SubElement(case, "system-out")
            out.text = _x("fired below --fail-on " + fail_on + ":\n"
                          + "\n\n".join(_details(report, f, options.max_evidence) for f in fired))
    errors = _errors(report, suite)
    tests = len(rules) + errors
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("tests", str(tests))
    suites = ET.Element("testsuites", name="celery-postmortem", tests=str(tests), failures=str(failures),
                        errors=str(errors), skipped="0", time="0")
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
