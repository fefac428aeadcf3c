"""One self-contained HTML page: inline CSS, no script, no network, readable on a phone.

Every string from the bundle or a rule (log text, file names, titles, remediation, hosts) goes
through `html.escape` (`_e`) and nothing else reaches the page, so a log line holding
`<script>` shows as text. The Content-Security-Policy forbids scripts and any fetch outright,
as a second wall. Plots (`RenderOptions.plots`: title and PNG bytes) are embedded as
`data:image/png;base64` images.
"""

from __future__ import annotations

import base64
import re
from html import escape

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

CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--bg:#fff;--line:#d0d7de;--code:#f6f8fa;--crit:#8250df;--err:#cf222e;
--warn:#9a6700;--info:#0969da;--ok:#1a7f37}
*{box-sizing:border-box}
body{margin:0 auto;max-width:60rem;padding:1rem;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;
color:var(--fg);background:var(--bg);overflow-wrap:anywhere}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid var(--line)}
h3{font-size:1.05rem;margin:.2rem 0}
.verdict{padding:.75rem 1rem;border-radius:6px;font-weight:600;color:#fff;background:var(--err)}
.verdict.ok{background:var(--ok)}.verdict.unknown{background:var(--warn)}
.meta,.muted{color:var(--muted);font-size:.9rem}
.card{border:1px solid var(--line);border-radius:6px;padding:.75rem 1rem;margin:1rem 0}
.sev{display:inline-block;padding:0 .4rem;border-radius:4px;color:#fff;font-size:.8rem;font-weight:600}
.sev-critical{background:var(--crit)}.sev-error{background:var(--err)}.sev-warning{background:var(--warn)}
.sev-info{background:var(--info)}
.detail{opacity:.75;font-size:.9rem;margin:-.25rem 0 .5rem}
pre{background:var(--code);padding:.5rem;border-radius:4px;overflow-x:auto;white-space:pre-wrap;
font-size:.85rem;margin:.25rem 0 .75rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top;
overflow-wrap:normal;word-break:normal}
td.n{text-align:right}td.nw{white-space:nowrap}td.prose{min-width:10em}
details summary{cursor:pointer}
ul.chain{margin:.25rem 0}
img.plot{max-width:100%;height:auto}figcaption{font-weight:600;margin:.5rem 0 .25rem}
@media (max-width:40rem){body{padding:.5rem;font-size:15px}th,td{padding:.2rem .3rem}}
"""


_VERDICT_CLASS = {"healthy": " ok", "inconclusive": " unknown", "unhealthy": ""}


def _e(text: object) -> str:
    return escape(str(text), quote=True)


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def _prose(text: str) -> str:
    """Rule prose (remediation) with its `code spans` as <code>, everything escaped."""
    out, at = [], 0
    for m in _CODE_SPAN.finditer(text):
        out += [_e(text[at:m.start()]), f"<code>{_e(m.group(1))}</code>"]
        at = m.end()
    return "".join([*out, _e(text[at:])])


def _reference(ref: str) -> str:
    """A rule's reference with its URLs as links (escaped; `https:` and `http:` only)."""
    return with_links(ref, _e, lambda url: f'<a href="{_e(url)}">{_e(url)}</a>')


def _sev(severity: str) -> str:
    return f'<span class="sev sev-{_e(severity)}">{_e(severity)}</span>'


def _evidence(evidence: list[Evidence], total: int, limit: int, open_: bool) -> list[str]:
    if not evidence:
        return []
    shown = evidence[:limit]
    n = max(total, len(evidence))
    more = f", {n - len(shown)} more not shown" if n > len(shown) else ""
    out = [f"<details{' open' if open_ else ''}><summary>Evidence ({len(shown)} of {n}{_e(more)})</summary>"]
    for e in shown:
        out.append(f"<div><code>{_e(e.source)}:{e.line}</code></div><pre>{_e(e.text)}</pre>")
        if e.detail:
            out.append(f'<div class="detail">↳ {_e(e.detail)}</div>')
    out.append("</details>")
    return out


def _meta(f: Finding) -> str:
    when = span(f.first_seen, f.last_seen)
    parts = [f"confidence {f.confidence:.2f}", f"{f.count} occurrence{'s' if f.count != 1 else ''}",
             *([_e(when)] if when else [])]
    if f.hosts:
        parts.append("hosts " + ", ".join(f"<code>{_e(h)}</code>" for h in f.hosts))
    if f.tasks:
        parts.append("tasks " + ", ".join(f"<code>{_e(t)}</code>" for t in f.tasks[:5])
                     + (f" (+{len(f.tasks) - 5})" if len(f.tasks) > 5 else ""))
    parts.append(f"rule <code>{_e(f.rule)}</code>")
    return f'<p class="meta">{" · ".join(parts)}</p>'


def _finding(report: Report, f: Finding, opts: RenderOptions, root: bool) -> list[str]:
    out = [f'<section class="card" id="{_e(f.id)}">',
           f"<h3>{_sev(f.severity)} {_e(f.id)} {_e(f.title)} <code>{_e(f.category)}</code></h3>",
           f"<p>{_e(f.summary)}</p>", _meta(f)]
    inc = report.incident_of(f.id)
    if root and inc is not None and inc.root == f.id:
        out.append(f'<p class="incident"><strong>{_e(inc.headline())}</strong> · '
                   f"{_e(incident_text(inc, headline=False))}</p>")
    tree = causal_tree(report, f.id) if root else []
    if tree:
        out.append("<p><strong>Causal chain</strong> (what this explains, and why):</p>")
        out.append('<ul class="chain">')
        out.append(f'<li><a href="#{_e(f.id)}">{_e(f.id)}</a> {_e(f.title)} <code>{_e(f.category)}</code> '
                   f"{_sev(f.severity)}")
        depth_now = 0
        for node in tree:
            e = report.finding(node.id)
            why = link_reason(report, node.id, node.parent)
            if node.depth > depth_now:
                out.append('<ul class="chain">')
            else:
                out.append("</li>")
                out.extend("</ul></li>" for _ in range(depth_now - node.depth))
            depth_now = node.depth
            because = f' <span class="muted">because {_e(why)}</span>' if why else ""
            out.append(f'<li><a href="#{_e(e.id)}">{_e(e.id)}</a> {_e(e.title)} <code>{_e(e.category)}</code> '
                       f"{_sev(e.severity)}{because}")
        out.append("</li>")
        out.extend("</ul></li>" for _ in range(depth_now))
        out.append("</ul>")
    if f.explained_by:
        links = "; ".join(f'<a href="#{_e(i)}">{_e(i)}</a>'
                          + (f" (because {_e(f.because[i])})" if i in f.because else "") for i in f.explained_by)
        out.append(f"<p class=\"muted\">Explained by {links}.</p>")
    if f.baseline is not None:
        out.append(f'<p class="muted">{_e(f.baseline.describe())}</p>')
    same = same_remediation(report, f.id) if root else None
    if same:
        out.append(f'<p><strong>What to do</strong>: as for <a href="#{_e(same)}">{_e(same)}</a>.</p>')
    elif f.remediation:
        out.append("<p><strong>What to do</strong></p><ol>")
        out.extend(f"<li>{_prose(r)}</li>" for r in f.remediation)
        out.append("</ol>")
    advice = report.advice.get(f.id) if root else None
    if advice and advice.tree:
        steps = " → ".join(f"{_e(step)} <em>{_e(status)}</em>" for step, _, status in advice.tree)
        out.append(f"<p><strong>Broker decision tree:</strong> {steps}</p>")
        out.append("<pre>" + _e("\n".join(advice.checks)) + "</pre>")
    if advice and advice.missing:
        out.append("<p><strong>To confirm, collect</strong></p><ul>")
        out.extend(f"<li>{_e(a.what)}: <code>{_e(a.command)}</code></li>" for a in advice.missing)
        out.append("</ul>")
    out += _evidence(f.evidence, f.evidence_total, opts.max_evidence, open_=root)
    if f.references:
        out.append('<p class="muted">References: ' + "; ".join(_reference(r) for r in f.references) + "</p>")
    out.append("</section>")
    return out


def _table(head: list[str], rows: list[list[str]], numeric: set[int], wrap: set[int],
           prose: frozenset[int] = frozenset()) -> list[str]:
    """A table whose cells never break inside a word: numbers, ids, categories and paths stay on
    one line (`nw`); the `wrap` columns (a date and its time, short lists) and headers wrap at
    spaces only, `prose` columns too but keep a readable width; a table still wider than the page
    scrolls sideways."""
    out = ['<div class="scroll"><table><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for i, c in enumerate(row):
            cls = " ".join(["n"] * (i in numeric) + (["prose"] if i in prose else ["nw"] * (i not in wrap)))
            cells.append(f'<td class="{cls}">{c}</td>' if cls else f"<td>{c}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return out


def render(report: Report, options: RenderOptions) -> str:
    s = report.summary
    title = "celery-postmortem: " + verdict(report)
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
           "style-src 'unsafe-inline'; img-src data:\">",
           f"<title>{_e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
           "<h1>celery-postmortem</h1>",
           f'<p class="verdict{_VERDICT_CLASS[report.verdict]}">{_e(verdict(report))}</p>']
    reasons = report.inconclusive_reasons()
    if reasons:
        out.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>")
    tasks = ", ".join(f"{k} {v}" for k, v in s.tasks_by_state.items()) or "none"
    hosts = ", ".join(f"<code>{_e(h)}</code>" for h in s.hosts) or "?"
    when = span(s.first_ts, s.last_ts) or "no timestamps"
    out.append(f'<p class="meta">hosts {hosts} · {_e(when)} · {s.events} records · tasks: {_e(tasks)}</p>')
    if report.root_causes:
        out.append(f"<h2>Root cause{'s' if len(report.root_causes) > 1 else ''}</h2>")
        for fid in report.root_causes:
            out += _finding(report, report.finding(fid), options, root=True)
    standing = [f for f in report.standing() if f.id not in report.root_causes]
    if standing:
        out.append("<h2>Standing errors</h2><p class=\"muted\">A steady rate all through the logs: background, "
                   "not causes.</p><ul>")
        out.extend(f'<li><a href="#{_e(f.id)}">{_e(f.id)}</a> {_e(standing_text(f))}</li>' for f in standing)
        out.append("</ul>")
    if report.findings:
        out.append("<h2>Findings</h2>")
        rows = [[f'<a href="#{_e(f.id)}">{_e(f.id)}</a>', _sev(f.severity), f"<code>{_e(f.category)}</code>",
                 str(f.count), _e((f.first_seen or "").replace("T", " ")), _e(", ".join(f.explained_by)),
                 _e(f.title)] for f in report.findings]
        out += _table(["id", "severity", "category", "count", "first seen", "explained by", "title"], rows, {3},
                      wrap={4, 5, 6}, prose=frozenset({6}))
        for f in report.findings:
            if f.id not in report.root_causes:
                out += _finding(report, f, options, root=False)
    if options.plots:
        out.append("<h2>Plots</h2>")
        for plot_title, png in options.plots:
            data = base64.b64encode(png).decode("ascii")
            out.append(f"<figure><figcaption>{_e(plot_title)}</figcaption>"  # above its figure, as a heading
                       f'<img class="plot" alt="{_e(plot_title)}" src="data:image/png;base64,{data}"></figure>')
    out.append("<h2>Coverage</h2>")
    rows = [[f"<code>{_e(c.source)}</code>", _e(c.kind), str(c.lines), str(c.parsed), str(c.unrecognized)]
            for c in report.inputs]
    out += _table(["input", "kind", "lines", "parsed", "unrecognized"], rows, {2, 3, 4}, wrap=set())
    samples = [(c.source, ln, t) for c in report.inputs for ln, t in c.samples[:3]]
    if samples:
        text = "\n".join(f"{src}:{ln}: {t}" for src, ln, t in samples)
        out.append(f"<details><summary>Unrecognised lines (samples)</summary><pre>{_e(text)}</pre></details>")
    notes = [(c.source, n) for c in report.inputs for n in [*c.notes, report.log_format_hint(c)] if n]
    if notes:
        out.append("<ul class=\"muted\">" + "".join(f"<li><code>{_e(src)}</code>: {_e(n)}</li>" for src, n in notes)
                   + "</ul>")
    if report.clocks:
        out.append("<h2>Clocks</h2><ul>")
        out.extend(f"<li>{_e(c)}</li>" for c in report.clocks)
        out.append("</ul>")
    if report.problems:
        out.append("<h2>Problems</h2><ul>")
        out.extend(f"<li><code>{_e(p.source)}</code>: {_e(p.message)}</li>" for p in report.problems)
        out.append("</ul>")
    if report.rule_errors:
        out.append("<h2>Rule errors</h2><ul>")
        out.extend(f"<li>{_e(e)}</li>" for e in report.rule_errors)
        out.append("</ul>")
    overrides = report.rule_overrides()
    if overrides:
        out.append("<h2>Rule overrides</h2><ul>")
        out.extend(f"<li>{_e(o)}</li>" for o in overrides)
        out.append("</ul>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
