"""The summary across bundles in terminal, JSON, Markdown and HTML: per bundle its verdict and root
cause, then the signatures table. Pure functions of the two frames of `summary` (sorted there), so
the same bundles give the same bytes."""

from __future__ import annotations

import html
import json
from collections.abc import Callable

import polars as pl

from analyzer.fleet.summary import signatures_frame, verdict_counts

SCHEMA = "celery-postmortem/summary@1"
FORMATS = ("terminal", "json", "markdown", "html")
EXTENSIONS = {"terminal": "txt", "json": "json", "markdown": "md", "html": "html"}


def _root(row: dict[str, object]) -> str:
    if row["root_rule"] is None:
        return str(row["trouble"] or "-") if row["verdict"] in ("inconclusive", "error") else "-"
    return f"{row['root_category']} ({row['root_rule']}): {row['root_summary']}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def _head(bundles: pl.DataFrame) -> str:
    counts = verdict_counts(bundles)
    total = int(bundles["bytes"].sum() or 0) if bundles.height else 0
    parts = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    return f"{bundles.height} bundle{'s' if bundles.height != 1 else ''} ({_size(total)}): {parts or 'none'}"


def terminal(bundles: pl.DataFrame) -> str:
    sigs = signatures_frame(bundles)
    lines = [_head(bundles), "", "Bundles"]
    width = max([len("bundle"), *(len(b) for b in bundles["bundle"])])
    for row in bundles.iter_rows(named=True):
        lines.append(f"  {row['bundle']:<{width}}  {row['verdict']:<12}  {_root(row)}")
    lines += ["", "Signatures (root cause in / found in bundles, occurrences)"]
    if sigs.is_empty():
        lines.append("  none")
    for row in sigs.iter_rows(named=True):
        lines.append(f"  {row['root_cause_in']:>3} / {row['found_in']:<3} {row['occurrences']:>6}  "
                     f"{row['category']} ({row['rule']}, {row['severity']})")
        lines.append(f"      template: {row['template']}")
        seen = f"{row['first_seen'] or '?'} → {row['last_seen'] or '?'}"
        lines.append(f"      seen {seen} in {', '.join(row['bundles'])}")
    return "\n".join(lines) + "\n"


def as_dict(bundles: pl.DataFrame) -> dict[str, object]:
    sigs = signatures_frame(bundles)
    rows = []
    for row in bundles.iter_rows(named=True):
        root = None if row["root_rule"] is None else {
            "category": row["root_category"], "rule": row["root_rule"], "template": row["root_template"],
            "summary": row["root_summary"]}
        rows.append({"bundle": row["bundle"], "source": row["source"], "bytes": row["bytes"],
                     "verdict": row["verdict"], "worst_severity": row["worst_severity"], "root_cause": root,
                     "findings": row["n_findings"], "rule_errors": row["rule_errors"],
                     "trouble": row["trouble"] or None})
    return {"schema": SCHEMA, "verdicts": verdict_counts(bundles), "bundles": rows, "signatures": sigs.to_dicts()}


def as_json(bundles: pl.DataFrame) -> str:
    return json.dumps(as_dict(bundles), indent=2, ensure_ascii=False) + "\n"


def _md(text: object) -> str:
    return str(text if text is not None else "").replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(bundles: pl.DataFrame) -> str:
    sigs = signatures_frame(bundles)
    out = ["# celery-postmortem: summary of many bundles", "", _md(_head(bundles)), "", "## Bundles", "",
           "| bundle | verdict | worst | root cause |", "| --- | --- | --- | --- |"]
    for row in bundles.iter_rows(named=True):
        out.append(f"| {_md(row['bundle'])} | {row['verdict']} | {row['worst_severity'] or '-'} | {_md(_root(row))} |")
    out += ["", "## Signatures", "", "| category | rule | template | severity | root cause in | found in | "
            "occurrences | first seen | last seen | bundles |", "| --- | --- | --- | --- | ---: | ---: | ---: | --- "
            "| --- | --- |"]
    for row in sigs.iter_rows(named=True):
        out.append(f"| {_md(row['category'])} | {_md(row['rule'])} | `{_md(row['template']).replace('`', '')}` | "
                   f"{row['severity']} | {row['root_cause_in']} | {row['found_in']} | {row['occurrences']} | "
                   f"{_md(row['first_seen'])} | {_md(row['last_seen'])} | {_md(', '.join(row['bundles']))} |")
    return "\n".join(out) + "\n"


def _table(head: list[str], rows: list[list[object]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c if c is not None else ''))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def as_html(bundles: pl.DataFrame) -> str:
    sigs = signatures_frame(bundles)
    b = _table(["bundle", "verdict", "worst", "root cause"],
               [[r["bundle"], r["verdict"], r["worst_severity"] or "-", _root(r)]
                for r in bundles.iter_rows(named=True)])
    s = _table(["category", "rule", "template", "severity", "root cause in", "found in", "occurrences", "first seen",
                "last seen", "bundles"],
               [[r["category"], r["rule"], r["template"], r["severity"], r["root_cause_in"], r["found_in"],
                 r["occurrences"], r["first_seen"], r["last_seen"], ", ".join(r["bundles"])]
                for r in sigs.iter_rows(named=True)])
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>celery-postmortem summary</title>"
            f"<style>{style}</style></head><body>\n<h1>Summary of many bundles</h1>\n<p>{html.escape(_head(bundles))}"
            f"</p>\n<h2>Bundles</h2>\n{b}\n<h2>Signatures</h2>\n{s}\n</body></html>\n")


def registry() -> dict[str, Callable[[pl.DataFrame], str]]:
    return {"terminal": terminal, "json": as_json, "markdown": markdown, "html": as_html}
