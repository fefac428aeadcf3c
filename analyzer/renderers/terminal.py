"""The terminal report (rich): verdict first, then root causes with evidence, findings, coverage."""

from __future__ import annotations

import io

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from analyzer.clip import clip
from analyzer.renderers import (
    RenderOptions,
    causal_tree,
    evidence_lines,
    headline,
    ignored_text,
    incident_text,
    inconclusive,
    link_reason,
    same_remediation,
    span,
    standing_text,
    verdict,
)
from analyzer.report import UNANALYSED_KINDS, Report

SEVERITY_STYLE = {"critical": "bold magenta", "error": "bold red", "warning": "yellow", "info": "cyan"}


class _Hang:
    """`first` then `body`; the body's wrapped lines start after `rest` (default: as many spaces as
    `first` is wide), so a tree keeps its bars and a bullet or a location its column instead of
    the text restarting at column 0."""

    def __init__(self, first: str, body: str | Text, style: str = "", rest: str | None = None) -> None:
        self.first, self.rest = first, " " * cell_len(first) if rest is None else rest
        self.body = body if isinstance(body, Text) else Text(body, style=style)
        self.body.overflow = "fold"
        self.style = Style.parse(style) if style else Style()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        indent = max(cell_len(self.first), cell_len(self.rest))
        width = max(8, options.max_width - indent)
        lines = console.render_lines(self.body, options.update(width=width, height=None), pad=False)
        for i, line in enumerate(lines):
            prefix = self.first if i == 0 else self.rest
            yield Segment(prefix, self.style)
            yield from line
            yield Segment.line()


def _hang(first: str, body: str | Text, style: str = "", rest: str | None = None) -> _Hang:
    return _Hang(first, body, style, rest)


def _verdict(report: Report) -> Text:
    if report.verdict == "inconclusive":
        return Text(inconclusive(report), style="bold yellow")
    if report.healthy:
        return Text(verdict(report), style="bold green")
    first = report.finding(report.root_causes[0])
    more = len(report.root_causes) - 1
    tail = f" (+{more} other root cause{'s' if more != 1 else ''})" if more else ""
    hidden = f" ({ignored_text(report)})" if report.ignored else ""
    return Text.assemble(("ROOT CAUSE: ", "bold red"), (first.title, "bold"), (f" [{first.category}]", "dim"),
                         (headline(report, first.id), "bold"), (tail, ""), (hidden, "dim"))


def _root_panel(report: Report, fid: str, opts: RenderOptions) -> Panel:
    f = report.finding(fid)
    lines: list[RenderableType] = [Text(f.summary)]
    when = span(f.first_seen, f.last_seen)
    meta = " · ".join([f"{f.count} occurrence{'s' if f.count != 1 else ''}", *([when] if when else []),
                       *([", ".join(f.hosts)] if f.hosts else [])])
    lines.append(Text(meta, style="dim"))
    inc = report.incident_of(fid)
    if inc is not None and inc.root == fid:
        lines.append(_hang("", incident_text(inc), style="bold", rest="  "))
    if f.explains:
        lines.append(Text("what followed from it:", style="bold"))
        lines.extend(_chain(report, fid))
    if f.evidence:
        lines.append(Text("evidence:", style="bold"))
        for ev in f.evidence[: opts.max_evidence]:
            first, *exc = evidence_lines(ev.text)
            # wrapped, not cut at the panel's edge: the telling part of a line is often its end
            lines.append(_hang(f"  {ev.source}:{ev.line}: ", clip(first, EVIDENCE_CHARS)))
            lines.extend(_hang("    ", clip(e, EVIDENCE_CHARS)) for e in exc)
            if ev.detail:
                lines.append(_hang("    ↳ ", clip(ev.detail, EVIDENCE_CHARS), style="dim"))
        if f.evidence_total > opts.max_evidence:
            lines.append(Text(f"  … {f.evidence_total - opts.max_evidence} more", style="dim"))
    same = same_remediation(report, fid)
    if same:
        lines.append(Text(f"what to do: as for {same}", style="bold"))
    elif f.remediation:
        lines.append(Text("what to do:", style="bold"))
        lines.extend(_hang("  • ", r) for r in f.remediation)
    advice = report.advice.get(fid)
    if advice and advice.tree:
        marks = {"passed": "✓", "failed here": "✗", "not reached": "·"}
        path = "  →  ".join(f"{marks[status]} {step}" for step, _, status in advice.tree)
        lines.append(Text("broker decision tree:", style="bold"))
        lines.append(_hang("  ", path))
        lines.extend(_hang("  $ ", c, style="cyan") for c in advice.checks)
    if advice and advice.missing:
        lines.append(Text("to confirm, collect:", style="bold"))
        for a in advice.missing:
            lines.append(_hang("  ", a.what))
            lines.append(_hang("    $ ", a.command, style="cyan"))
    style = SEVERITY_STYLE.get(f.severity, "")
    return Panel(Group(*lines), title=f"[{style}]{f.id} {escape(f.severity)}[/] {escape(f.title)}",
                 title_align="left")


EVIDENCE_CHARS = 400  # of an evidence line's first line (and of its detail) in the terminal



def _findings_table(report: Report) -> Table:
    t = Table(title="Findings", title_justify="left", expand=False)
    for col in ("id", "severity", "category", "count", "first seen", "title"):
        # identifiers stay whole, a time wraps between date and time, the title at its spaces
        t.add_column(col, overflow="fold", no_wrap=col in ("id", "severity", "category", "count"),
                     max_width=12 if col == "first seen" else None)
    for f in report.findings:
        title = Text(f.title)
        if f.explained_by:
            title.append(f" (explained by {', '.join(f.explained_by)})", style="dim")
        t.add_row(f.id, Text(f.severity, style=SEVERITY_STYLE.get(f.severity, "")), f.category, str(f.count),
                  (f.first_seen or "").replace("T", " "), title)
    return t


def _inputs_table(report: Report) -> Table:
    t = Table(title="Inputs", title_justify="left", expand=False)
    for col in ("path", "kind", "lines", "parsed", "unrecognized"):
        t.add_column(col, overflow="fold")
    for c in report.inputs:
        if c.kind not in UNANALYSED_KINDS:
            t.add_row(c.source, c.kind, str(c.lines), str(c.parsed),
                      Text(str(c.unrecognized), style="yellow" if c.unrecognized else ""))
    return t


def _chain(report: Report, fid: str) -> list[RenderableType]:
    """The effects a root cause explains as a tree (`├─`, `└─`, `│`; each finding once), with why
    each link holds under it; wrapped lines keep the tree's bars."""
    out: list[RenderableType] = []
    for node in causal_tree(report, fid):
        f = report.finding(node.id)
        out.append(_hang(node.branch(), Text(f"{f.id} {f.category}: {f.title} ({f.count}×)", style="italic"),
                         rest=node.beside()))
        reason = link_reason(report, node.id, node.parent)
        if reason:
            out.append(_hang(node.under(), f"because {reason}", style="dim", rest=node.under()))
    return out


def render(report: Report, options: RenderOptions) -> str:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=options.color, no_color=not options.color, width=options.width,
                      highlight=False, emoji=False, soft_wrap=False)
    console.print(_hang("", _verdict(report), rest="  "))
    for reason in report.inconclusive_reasons():
        console.print(_hang("  • ", reason, style="yellow"))
    s = report.summary
    when = span(s.first_ts, s.last_ts) or "no timestamps"
    tasks = ", ".join(f"{k} {v}" for k, v in s.tasks_by_state.items()) or "none"
    console.print(_hang("hosts: ", f"{', '.join(s.hosts) or '?'} · {when} · {s.events} records · tasks: {tasks}",
                        style="dim"))
    for fid in report.root_causes:
        console.print(_root_panel(report, fid, options))
    standing = [f for f in report.standing() if f.id not in report.root_causes]
    if standing:
        console.print(Text("standing errors (a steady rate all along: background, not causes):", style="bold"))
        for f in standing:
            console.print(_hang("  ", standing_text(f)))
    if report.findings:
        console.print(_findings_table(report))
    console.print(_inputs_table(report))
    other = [c.source for c in report.inputs if c.kind in UNANALYSED_KINDS]
    if other:
        files = f"{len(other)} file{'s' if len(other) != 1 else ''}"
        console.print(_hang("not analysed ", f"({files} of no known kind): {', '.join(other)}", style="dim"))
    for c in report.inputs:
        if c.kind in UNANALYSED_KINDS:
            continue
        for line, text in c.samples[:3]:
            console.print(Text(f"  unrecognised {c.source}:{line}: {text}", style="dim", overflow="ellipsis",
                               no_wrap=True))
        for note in c.notes:
            console.print(_hang(f"  note {c.source}: ", note, style="dim"))
        hint = report.log_format_hint(c)
        if hint:
            console.print(_hang(f"  hint {c.source}: ", hint, style="yellow"))
    for note_line, style in run_notes(report):
        head, sep, rest = note_line.partition(": ")
        console.print(_hang(head + sep, rest, style=style) if sep else _hang("", note_line, style=style, rest="  "))
    return buf.getvalue()


def run_notes(report: Report) -> list[tuple[str, str]]:
    """(line, style) for what went wrong around the analysis: bundle problems (refused or unreadable
    members), rule errors, user rules replacing shipped ones. The report ends with them; `export`
    prints them on stderr."""
    return [*((f"clock: {c}", "yellow") for c in report.clocks),
            *((f"problem: {p.source}: {p.message}", "yellow") for p in report.problems),
            *((f"rule error: {e}", "yellow") for e in report.rule_errors),
            *((f"rule override: {o}", "dim") for o in report.rule_overrides())]
