"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

- `runs[0].tool.driver.rules` is built from rule metadata (`RenderOptions.rules`, else what the
  findings carry): id, name, shortDescription (title), fullDescription (what), help (why and
  what to do), `defaultConfiguration.level` (critical/error → error, warning → warning,
  info → note) and `properties.category`.
- One result per finding: `ruleId`, `ruleIndex`, `level`, `message.text` (the summary), the first
  evidence line as the location (`artifactLocation.uri` is the source's path from the working
  directory when the CLI knows it, else bundle-relative, after any `--path-prefix`
  (`renderers.artifact_path`), percent-encoded; `region.startLine`), further evidence as
  `relatedLocations`.
- A finding without evidence is located at line 1 of the first input (GitHub requires a
  location on every result); with no input at all, at `.` line 1.
- `partialFingerprints["celeryPostmortem/v1"]`: SHA-256 of rule id, category, hosts and the first
  evidence text with volatile tokens masked (log header, timestamps, uuids, hex, numbers) — not
  line numbers or times, so the same problem in tomorrow's logs keeps its fingerprint.
- `properties.rootCause` (and `rootCauseRank`, 1 = most likely) marks root causes; the run's
  `properties` carry `rootCauses`, `healthy` and `verdict` (healthy, unhealthy, inconclusive).
- Rule errors and the reasons of an inconclusive verdict are `error` notifications of the
  invocation (whose `executionSuccessful` is then false, as the exit code 2 says), bundle
  problems `warning`, user rules replacing built-in ones `note`.
- At most 25,000 results (GitHub's limit per run).
"""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import quote

from analyzer.findings import Evidence, Finding
from analyzer.renderers import RenderOptions, RuleInfo, artifact_path, headline, rules_of, verdict
from analyzer.report import Report

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/celery-postmortem/"
MAX_RESULTS = 25_000
FINGERPRINT_KEY = "celeryPostmortem/v1"
LEVELS = {"critical": "error", "error": "error", "warning": "warning", "info": "note"}

# Volatile tokens, masked in order (Drain3-style) before fingerprinting.
VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    # [2026-11-28 19:01:04,915: ERROR/MainProcess]
    (re.compile(r"^\[[^\]]*\d{2}:\d{2}:\d{2}[^\]]*\]\s*", re.MULTILINE), ""),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?"), "<ts>"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "<uuid>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)*"), "<n>"),
)


def mask(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    for pattern, repl in VOLATILE:
        first = pattern.sub(repl, first)
    return first.strip()


def fingerprint(f: Finding) -> str:
    first = mask(f.evidence[0].text) if f.evidence else ""
    key = "\x1f".join([f.rule, f.category, ",".join(sorted(f.hosts)), first])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _uri(path: str) -> str:
    """Relative URI reference (`a.tar.gz:worker.log` → `a.tar.gz%3Aworker.log`)."""
    return quote(path.lstrip("/"), safe="/") or "."


def _location(ev: Evidence, opts: RenderOptions) -> dict[str, object]:
    return {"physicalLocation": {"artifactLocation": {"uri": _uri(artifact_path(ev.source, opts))},
                                 "region": {"startLine": max(1, ev.line)}}}


def _name(title: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", title)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Rule"


def _rule(r: RuleInfo) -> dict[str, object]:
    help_text = r.why or r.title
    help_md = help_text
    if r.remediation:
        help_text += "\n\nWhat to do:\n" + "\n".join(f"- {x}" for x in r.remediation)
        help_md += "\n\n**What to do:**\n\n" + "\n".join(f"- {x}" for x in r.remediation)
    out: dict[str, object] = {
        "id": r.id,
        "name": _name(r.title),
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.what or r.title},
        "help": {"text": help_text, "markdown": help_md},
        "defaultConfiguration": {"level": LEVELS.get(r.severity, "warning")},
        "properties": {"category": r.category, "severity": r.severity, "tags": [r.area, r.category]},
    }
    urls = [x for x in r.references if x.startswith(("https://", "http://"))]
    if urls:
        out["helpUri"] = urls[0]
    return out


def _result(report: Report, f: Finding, index: int, opts: RenderOptions) -> dict[str, object]:
    if f.evidence:
        locations = [_location(f.evidence[0], opts)]
    else:
        first = report.inputs[0].source if report.inputs else "."
        locations = [_location(Evidence(first, 1, ""), opts)]
    props: dict[str, object] = {
        "findingId": f.id, "category": f.category, "severity": f.severity, "confidence": f.confidence,
        "count": f.count, "firstSeen": f.first_seen, "lastSeen": f.last_seen, "hosts": list(f.hosts),
        "explains": list(f.explains), "explainedBy": list(f.explained_by),
        "rootCause": f.id in report.root_causes,
    }
    if f.because:
        props["because"] = dict(f.because)
    if f.incident is not None:
        props["incident"] = f.incident
    if f.baseline is not None:
        props["baseline"] = f.baseline.to_dict()
    if f.id in report.root_causes:
        props["rootCauseRank"] = report.root_causes.index(f.id) + 1
    if f.tasks:
        props["tasks"] = list(f.tasks)
    result: dict[str, object] = {
        "ruleId": f.rule,
        "ruleIndex": index,
        "level": LEVELS.get(f.severity, "warning"),
        "message": {"text": (f.summary or f.title) + headline(report, f.id)},
        "locations": locations,
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(f)},
        "properties": props,
    }
    related = [dict(_location(e, opts), id=i, message={"text": e.text.splitlines()[0] if e.text else ""})
               for i, e in enumerate(f.evidence[1:opts.max_evidence], 1)]
    if related:
        result["relatedLocations"] = related
    return result


def sarif(report: Report, options: RenderOptions) -> dict[str, object]:
    """The SARIF log as a dict (the renderer serialises it)."""
    from analyzer import __version__

    rules = rules_of(report, options)
    index = {r.id: i for i, r in enumerate(rules)}
    results = [_result(report, f, index[f.rule], options) for f in report.findings[:MAX_RESULTS]]
    notifications = [{"level": "error", "message": {"text": e}} for e in report.rule_errors]
    notifications += [{"level": "error", "message": {"text": f"{verdict(report)}: {r}"}}
                      for r in report.inconclusive_reasons()]
    notifications += [{"level": "note", "message": {"text": str(o)}} for o in report.rule_overrides()]
    notifications += [{"level": "warning", "message": {"text": f"{p.source}: {p.message}"}} for p in report.problems]
    # as the CLI's exit code 2 says: a run with broken rules or nothing it could read did not succeed
    invocation: dict[str, object] = {"executionSuccessful": not report.rule_errors
                                     and report.verdict != "inconclusive"}
    if notifications:
        invocation["toolConfigurationNotifications"] = notifications
    run: dict[str, object] = {
        "tool": {"driver": {"name": "celery-postmortem", "version": __version__, "semanticVersion": __version__,
                            "informationUri": INFORMATION_URI, "rules": [_rule(r) for r in rules]}},
        "invocations": [invocation],
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": {"rootCauses": list(report.root_causes), "healthy": report.verdict == "healthy",
                       "verdict": report.verdict,
                       "incidents": [i.to_dict() for i in report.incidents],
                       "truncated": len(report.findings) > MAX_RESULTS},
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report: Report, options: RenderOptions) -> str:
    return json.dumps(sarif(report, options), indent=2, ensure_ascii=False) + "\n"
