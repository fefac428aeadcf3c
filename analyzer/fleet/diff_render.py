"""A `Diff` in terminal text, JSON or Markdown (sorted in `diff.compare`: the same bytes every run)."""

from __future__ import annotations

import json
from collections.abc import Callable

from analyzer.fleet.diff import MOVED, Diff

FORMATS = ("terminal", "json", "markdown")


def _rate(v: object) -> str:
    return "-" if v is None else f"{v:g}/h"


def terminal(d: Diff) -> str:
    out = [f"{d.bundle} against the baseline {d.baseline}", "",
           f"New findings ({len(d.new_findings)})"]
    out += [f"  {f['severity']:<8} {f['category']} ({f['rule']}){'  root cause' if f['root_cause'] else ''}: "
            f"{f['summary']}" for f in d.new_findings] or ["  none"]
    out += ["", f"New message templates ({d.new_templates.height} shown; {d.gone_templates} of the baseline's "
            "are not in the bundle)"]
    out += [f"  {r['count']:>6} {r['level']:<8} {r['template']}" for r in d.new_templates.iter_rows(named=True)] \
        or ["  none"]
    out += ["", f"Rates that moved ({d.moved.height}: by x{MOVED:g} or more)"]
    out += [f"  x{r['factor']:<8g} {r['level']:<8} {_rate(r['per_hour_baseline'])} → {_rate(r['per_hour'])}  "
            f"{r['template']}" for r in d.moved.iter_rows(named=True)] or ["  none"]
    return "\n".join(out) + "\n"


def as_json(d: Diff) -> str:
    return json.dumps(d.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _md(text: object) -> str:
    return str("" if text is None else text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(d: Diff) -> str:
    out = [f"# {_md(d.bundle)} against {_md(d.baseline)}", "", "## New findings", ""]
    if d.new_findings:
        out += ["| severity | category | rule | root cause | summary |", "| --- | --- | --- | --- | --- |"]
        out += [f"| {f['severity']} | {_md(f['category'])} | {_md(f['rule'])} | {'yes' if f['root_cause'] else ''} | "
                f"{_md(f['summary'])} |" for f in d.new_findings]
    else:
        out.append("None.")
    out += ["", "## New message templates", ""]
    if d.new_templates.height:
        out += ["| count | level | template |", "| ---: | --- | --- |"]
        out += [f"| {r['count']} | {r['level']} | `{_md(r['template']).replace('`', '')}` |"
                for r in d.new_templates.iter_rows(named=True)]
    else:
        out.append("None.")
    out += ["", "## Rates that moved", ""]
    if d.moved.height:
        out += ["| factor | level | baseline | bundle | template |", "| ---: | --- | ---: | ---: | --- |"]
        out += [f"| {r['factor']:g} | {r['level']} | {_rate(r['per_hour_baseline'])} | {_rate(r['per_hour'])} | "
                f"`{_md(r['template']).replace('`', '')}` |" for r in d.moved.iter_rows(named=True)]
    else:
        out.append("None.")
    return "\n".join(out) + "\n"


def registry() -> dict[str, Callable[[Diff], str]]:
    return {"terminal": terminal, "json": as_json, "markdown": markdown}
