"""A rule's documentation, rendered from its file: what it finds, why, what to do, examples."""

from __future__ import annotations

from .rule import Rule


def rule_markdown(rule: Rule) -> str:
    lines = [f"# {rule.id}: {rule.title}", "",
             f"category `{rule.category}` · severity {rule.severity} · confidence {rule.confidence} · "
             f"{rule.status}", "",
             "## What it finds", "", rule.what, "", "## Why it matters", "", rule.why, "",
             "## Condition", "", f"on `{rule.on}`:", "", "```", rule.when.strip(), "```", ""]
    if rule.group_by or rule.distinct:
        lines += [f"One finding per {', '.join(f'`{c}`' for c in rule.group_by)}." if rule.group_by
                  else "One finding."]
        if rule.distinct:
            lines[-1] += f" Rows with the same {', '.join(f'`{c}`' for c in rule.distinct)} count once."
        lines += [""]
    if rule.explains:
        lines += ["## Explains", "", ", ".join(f"`{c}`" for c in rule.explains), ""]
    lines += ["## What to do", ""] + [f"- {r}" for r in rule.remediation] + [""]
    if rule.references:
        lines += ["## References", ""] + [f"- {r}" for r in rule.references] + [""]
    for ex in rule.examples:
        lines += [f"## Example ({'matches' if ex.expect == 'match' else 'does not match'})", "", "```",
                  ex.text.strip("\n"), "```", ""]
    if rule.samples:
        lines += ["## Fires on samples", ""] + [f"- `samples/{s}`" for s in rule.samples] + [""]
    return "\n".join(lines)
