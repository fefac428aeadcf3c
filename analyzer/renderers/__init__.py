"""One module per output format, one signature (`render(report, options) -> str`), one registry.

Redaction happens once, before any renderer sees the report: `registry()` wraps every renderer
so that with `RenderOptions.redact` (the default) it draws `analyzer.redact.redact_report(report)`.
Calling a module's `render` directly draws the report as given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analyzer.findings import Finding, Incident
from analyzer.report import Report

if TYPE_CHECKING:
    from analyzer.engine.rule import Rule


@dataclass(frozen=True)
class RuleInfo:
    """What SARIF and JUnit need to know about a rule (the rule file's documentation fields)."""

    id: str
    category: str
    severity: str
    title: str
    what: str = ""
    why: str = ""
    remediation: tuple[str, ...] = ()
    references: tuple[str, ...] = ()

    @classmethod
    def from_rule(cls, rule: Rule) -> RuleInfo:
        return cls(rule.id, rule.category, rule.severity, rule.title, rule.what, rule.why,
                   tuple(rule.remediation), tuple(rule.references))

    @property
    def area(self) -> str:
        """`broker` of `broker.connection_refused`."""
        return self.category.split(".", 1)[0]


# A URL in a rule's reference: what `with_links` turns into a link
URL_RE = re.compile(r"https?://[^\s<>\"'`]+")


def with_links(text: str, escape: Callable[[str], str], link: Callable[[str], str]) -> str:
    """`text` escaped for a format, its `http(s)` URLs (without trailing punctuation) as that format's links."""
    out, at = [], 0
    for m in URL_RE.finditer(text):
        url = m.group(0).rstrip(".,;)")
        out += [escape(text[at:m.start()]), link(url)]
        at = m.start() + len(url)
    return "".join([*out, escape(text[at:])])


def rule_infos(rules: Sequence[Rule]) -> tuple[RuleInfo, ...]:
    return tuple(RuleInfo.from_rule(r) for r in rules)


def rules_of(report: Report, options: RenderOptions) -> list[RuleInfo]:
    """The loaded rules when the caller passed them, else what the findings tell (sorted by id);
    a rule that fired but is missing from `options.rules` is added from its finding."""
    known = {r.id: r for r in options.rules}
    for f in report.findings:
        if f.rule not in known:
            known[f.rule] = RuleInfo(f.rule, f.category, f.severity, f.title, "", "", tuple(f.remediation),
                                     tuple(f.references))
    return [known[k] for k in sorted(known)]


@dataclass(frozen=True)
class RenderOptions:
    color: bool = False
    width: int = 100
    max_evidence: int = 5
    redact: bool = True  # applied by `registry()` renderers, see the module docstring
    rules: tuple[RuleInfo, ...] = ()  # the loaded catalogue: SARIF `rules`, one JUnit testcase each
    fail_on: str | None = None  # JUnit: findings at or above it are failures; None: `--fail-on` not given
    # (then warning, and the suite does not claim a `fail_on` property)
    plots: tuple[tuple[str, bytes], ...] = ()  # HTML: (title, PNG bytes), embedded as data: URIs
    # SARIF and github: where each source is as a path from the working directory (`analyzer.locations`),
    # and a folder put before every such path (`--path-prefix`), so annotations land on the repository's file
    artifact_paths: tuple[tuple[str, str], ...] = ()
    path_prefix: str = ""


Renderer = Callable[[Report, RenderOptions], str]


def artifact_path(source: str, options: RenderOptions) -> str:
    """Where SARIF and github annotations say `source` is: its path from the working directory when
    `options.artifact_paths` knows it (else the bundle-relative name), after `options.path_prefix`."""
    path = dict(options.artifact_paths).get(source, source)
    prefix = options.path_prefix.strip("/")
    return f"{prefix}/{path.lstrip('/')}" if prefix else path


def _redacting(render: Renderer) -> Renderer:
    def wrapped(report: Report, options: RenderOptions) -> str:
        if options.redact:
            from analyzer.redact import redact_report

            report = redact_report(report)
        return render(report, options)

    wrapped.__name__ = getattr(render, "__module__", "render").rsplit(".", 1)[-1]
    wrapped.__doc__ = render.__doc__
    return wrapped


def registry() -> dict[str, Renderer]:
    """Format name → renderer (redacting by default); imported lazily so `--help` stays instant."""
    from analyzer.renderers import github, html, json_report, junit, markdown, sarif, terminal

    plain: dict[str, Renderer] = {
        "terminal": terminal.render, "json": json_report.render, "markdown": markdown.render,
        "html": html.render, "sarif": sarif.render, "junit": junit.render, "github": github.render,
    }
    return {name: _redacting(fn) for name, fn in plain.items()}


def causal_chain(report: Report, fid: str) -> list[tuple[int, str]]:
    """(depth, finding id) of what `fid` explains, depth-first, each finding once (depth 0 is `fid`)."""
    return [(0, fid), *((n.depth, n.id) for n in causal_tree(report, fid))]


@dataclass(frozen=True)
class TreeNode:
    """One finding in the tree of what a root cause explains, placed under the first finding that
    reaches it depth-first (a finding explained by two others is drawn once)."""

    id: str
    parent: str  # the finding it hangs under (whose `because` link says why)
    lasts: tuple[bool, ...]  # per level from 1 to its own: is it (or its ancestor there) the last child
    has_children: bool

    @property
    def depth(self) -> int:
        return len(self.lasts)

    def branch(self) -> str:
        """`│  ├─ `: the ancestors' bars, then this node's connector."""
        return "".join("   " if last else "│  " for last in self.lasts[:-1]) + ("└─ " if self.lasts[-1] else "├─ ")

    def beside(self) -> str:
        """The prefix of the node's own wrapped line: its column, with the bars still open."""
        return "".join("   " if last else "│  " for last in self.lasts)

    def under(self) -> str:
        """The prefix of lines under the node's own (its reason): bars still open, and one down to
        its children when it has any."""
        return "".join("   " if last else "│  " for last in self.lasts) + ("│  " if self.has_children else "   ")


def causal_tree(report: Report, fid: str) -> list[TreeNode]:
    """What root cause `fid` explains as a tree, depth-first in `explains` order, each finding once
    (`fid` itself is not in it)."""
    children: dict[str, list[str]] = {}
    seen = {fid}

    def place(i: str) -> None:
        kids = children.setdefault(i, [])
        for e in report.finding(i).explains:
            if e not in seen:
                seen.add(e)
                kids.append(e)
                place(e)

    place(fid)
    out: list[TreeNode] = []

    def walk(i: str, lasts: tuple[bool, ...]) -> None:
        kids = children[i]
        for n, k in enumerate(kids):
            node_lasts = (*lasts, n == len(kids) - 1)
            out.append(TreeNode(k, i, node_lasts, bool(children[k])))
            walk(k, node_lasts)

    walk(fid, ())
    return out


INCONCLUSIVE = "INCONCLUSIVE: nothing in the input could be analysed"
# the rest of the bundle was read and shows nothing wrong, but a worker log was mostly not understood
INCONCLUSIVE_UNREAD = "INCONCLUSIVE: a worker log could not be read; nothing wrong in the rest"


def inconclusive(report: Report) -> str:
    return INCONCLUSIVE_UNREAD if report.analysed else INCONCLUSIVE


def verdict(report: Report) -> str:
    """One line: `ROOT CAUSE: <title> [<category>] (+n other root causes)`, `HEALTHY: …` or
    `INCONCLUSIVE: …` (its reasons: `Report.inconclusive_reasons`)."""
    if report.verdict == "inconclusive":
        return inconclusive(report)
    if report.healthy:
        n = len(report.findings)
        notes = [f"{n} informational finding{'s' if n != 1 else ''}"] if n else []
        notes += [ignored_text(report)] if report.ignored else []
        return "HEALTHY: no root cause found" + (f" ({'; '.join(notes)})" if notes else "")
    first = report.finding(report.root_causes[0])
    more = len(report.root_causes) - 1
    tail = f" (+{more} other root cause{'s' if more != 1 else ''})" if more else ""
    hidden = f" ({ignored_text(report)})" if report.ignored else ""
    return f"ROOT CAUSE: {first.title} [{first.category}]{headline(report, first.id)}{tail}{hidden}"


def ignored_text(report: Report) -> str:
    """`1 finding ignored: worker.lost` (`--ignore` hid it), empty when nothing was hidden."""
    n = sum(report.ignored.values())
    if not n:
        return ""
    return f"{n} finding{'s' if n != 1 else ''} ignored: {', '.join(report.ignored)}"


def headline(report: Report, fid: str) -> str:
    """` — recovered after 12 s` / ` — still failing at the end of the logs` for the incident a root
    cause leads (empty when it leads none)."""
    inc = report.incident_of(fid)
    return f" — {inc.headline()}" if inc is not None else ""


def incident_text(inc: Incident, *, headline: bool = True) -> str:
    """One line: `incident i1, 03:12:07 → 03:12:19 (12 s): recovered after 12 s (why)` (without
    `headline`: `…(12 s); why`, for a renderer that shows the headline itself)."""
    if not headline:
        return f"incident {inc.id}, {inc.interval()}; {inc.state_reason}"
    return f"incident {inc.id}, {inc.interval()}: {inc.headline()} ({inc.state_reason})"


def link_reason(report: Report, effect: str, cause: str) -> str:
    """Why finding `cause` explains finding `effect` (empty when the report has no reason)."""
    return report.finding(effect).because.get(cause, "")


def standing_text(f: Finding) -> str:
    """`f3 task.exception: <title> — standing error: a steady 0.7/h from … to …, not a cause`."""
    desc = f.baseline.describe() if f.baseline is not None else ""
    return f"{f.id} {f.category}: {f.title} ({f.count}×, first {f.first_seen}, last {f.last_seen}) — {desc}"


def same_remediation(report: Report, fid: str) -> str | None:
    """The earlier root cause whose remediation `fid`'s repeats word for word (said once, then referred to)."""
    f = report.finding(fid)
    for other in report.root_causes:
        if other == fid:
            return None
        if f.remediation and report.finding(other).remediation == f.remediation:
            return other
    return None


# `ConnectionRefusedError: [Errno 111] Connection refused`, `billiard.exceptions.WorkerLostError: …`,
# `KeyboardInterrupt`: a dotted name, then nothing or `: message`
EXCEPTION_LINE = re.compile(r"(?P<type>[A-Za-z_][\w.]*)(?::\s.*|:)?")


def evidence_lines(text: str) -> list[str]:
    """What a one-line view shows of an evidence text: its first line, and for a traceback its
    exception line (`ConnectionRefusedError: [Errno 111] Connection refused`) unless the first line
    already names that exception — `Traceback (most recent call last):` alone names nothing."""
    lines = text.splitlines()
    if not lines:
        return [""]
    if "Traceback (most recent call last)" not in text:
        return lines[:1]
    tail = next((ln for ln in reversed(lines[1:]) if EXCEPTION_LINE.fullmatch(ln)), None)
    if tail is None:
        return lines[:1]
    m = EXCEPTION_LINE.fullmatch(tail)
    if m is None or m["type"].rsplit(".", 1)[-1] in lines[0]:
        return lines[:1]
    return [lines[0], tail]


def span(first: str | None, last: str | None) -> str:
    """`A → B`, or `A` when they are one time (`?` for a missing end); empty without a time."""
    if first is None and last is None:
        return ""
    return f"{first or '?'} → {last or '?'}" if first != last else (first or "?")
