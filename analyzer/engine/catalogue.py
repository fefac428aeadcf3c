"""Where rules come from: the shipped catalogue plus users' directories, filtered by id/category.

The catalogue is `rules/` of a source checkout, or `analyzer/_rules` inside an installed wheel
(pyproject force-includes it there). Examples are parsed by the real parsers: the example text is
sniffed and parsed exactly as a bundle member would be.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

from .errors import EngineError
from .rule import Rule, load_rules

PACKAGE = Path(__file__).resolve().parent.parent


def default_rule_dir() -> Path:
    shipped = PACKAGE / "_rules"
    return shipped if shipped.is_dir() else PACKAGE.parent / "rules"


def _hit(rule: Rule, pattern: str) -> bool:
    return pattern_hits(rule.id, rule.category, pattern)


def pattern_hits(rule_id: str, category: str, pattern: str) -> bool:
    """Whether a `--select` / `--ignore` pattern names this rule (or a finding of it): `CP-B001`
    (an id), `CP-B` (an id prefix), `broker.dns` (a category), `broker` (an area)."""
    area = pattern.rstrip(".") + "."
    return (rule_id == pattern or category == pattern or category.startswith(area)
            or (pattern.startswith("CP-") and rule_id.startswith(pattern)))


def _selected(rule: Rule, select: Sequence[str], ignore: Sequence[str]) -> bool:
    return (not select or any(_hit(rule, p) for p in select)) and not any(_hit(rule, p) for p in ignore)


def unmatched(patterns: Sequence[str], rules: Sequence[Rule]) -> list[str]:
    """The `--select` / `--ignore` patterns that name no rule of `rules`: a typo there would
    otherwise silently select nothing (or ignore nothing)."""
    return [p for p in patterns if not any(_hit(r, p) for r in rules)]


def shipped_rule_files() -> dict[str, Path]:
    """Id → file of each shipped rule, read from the files' `id` keys alone (no compiling), so
    a report can say cheaply which user rules replace a shipped one."""
    out: dict[str, Path] = {}
    for file in sorted(default_rule_dir().rglob("*.toml")):
        try:
            rid = tomllib.loads(file.read_text(encoding="utf-8")).get("id")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        if isinstance(rid, str):
            out.setdefault(rid, file)
    return out


def overrides(rules: Sequence[Rule]) -> list[tuple[Rule, Path]]:
    """The rules of `rules` that replace a shipped rule of the same id, each with the shipped file.

    Replacing is deliberate (`load_catalogue`): a team can retune a shipped rule by copying it
    into its `--rules` directory. It is reported so that it is never silent.
    """
    base = default_rule_dir().resolve()
    foreign = [r for r in rules if r.path is None or not Path(r.path).resolve().is_relative_to(base)]
    if not foreign:
        return []
    shipped = shipped_rule_files()
    return [(r, shipped[r.id]) for r in foreign if r.id in shipped]


def load_catalogue(extra_dirs: Sequence[str | Path] = (), *, select: Sequence[str] = (),
                   ignore: Sequence[str] = (), builtin: bool = True) -> tuple[list[Rule], list[EngineError]]:
    """The shipped rules (unless `builtin=False`) and the user's, after `--select` / `--ignore`.

    User rules need no examples (they are checked by `rules test`); a user rule with the id of a
    shipped rule replaces it.
    """
    rules: dict[str, Rule] = {}
    errors: list[EngineError] = []
    if builtin:
        shipped, errs = load_rules(default_rule_dir())
        rules.update((r.id, r) for r in shipped)
        errors.extend(errs)
    if extra_dirs:
        users, errs = load_rules(list(extra_dirs), require_examples=False)
        rules.update((r.id, r) for r in users)
        errors.extend(errs)
    chosen = [r for r in sorted(rules.values(), key=lambda r: r.id) if _selected(r, select, ignore)]
    return chosen, errors
