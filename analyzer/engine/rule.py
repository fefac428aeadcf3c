"""Rule files: one TOML file per rule, validated into a frozen `Rule` with its compiled expression.

Fields (top level, in the order rule files should use):

| key           | type      | required  | meaning |
| ------------- | --------- | --------- | ------- |
| `id`          | str       | yes       | unique id, `CP-B001` in the catalogue (letters, digits, `-_.`) |
| `category`    | str       | yes       | one of `analyzer.categories.CATEGORIES` |
| `severity`    | str       | yes       | `info` / `warning` / `error` / `critical` |
| `confidence`  | float     | no (0.8)  | 0..1, how sure a match is of the category |
| `title`       | str       | yes       | one line, what is wrong |
| `what`        | str       | yes       | what the rule finds (documentation) |
| `why`         | str       | yes       | why it matters (documentation) |
| `on`          | str       | yes       | frame the condition runs on (`events`, `tasks`, `threads`, ...) |
| `when`        | str       | yes       | condition, see `grammar.py` |
| `group_by`    | list[str] | no ([])   | columns splitting matches into findings; default: one finding |
| `distinct`    | list[str] | no ([])   | columns naming one occurrence: rows equal on all (none null) count once |
| `message`     | str       | yes       | summary template, see below |
| `explains`    | list[str] | no ([])   | categories this one causes (causal precedence for ranking) |
| `fallback`    | bool      | no (false)| match only rows no other rule on the frame matched (what nothing classifies) |
| `remediation` | list[str] | yes (>=1) | what to do |
| `references`  | list[str] | no ([])   | URLs or sources |
| `status`      | str       | no        | `experimental` (default) or `stable` |
| `samples`     | list[str] | if stable | sample bundles the rule fires on |
| `[[example]]` | tables    | see below | one of `match` / `no_match` (log text), optional `xfail` |

Each `[[example]]` has exactly one of `match` / `no_match`: log text in the real format, fed
through the real parsers; `xfail = "reason"` marks a known gap (reported, never deleted).

A rule needs at least one `match` and one `no_match` example (loaders take
`require_examples=False` for ad-hoc user rules).  Examples are run by
`evaluate.check_examples` through the real parsers.

`message` is a `str.format` template.  Fields: `{count}` (matching rows; with `distinct`, the
distinct occurrences, e.g. threads rather than one row per dump of each), `{hosts}` (sorted
unique `host`, comma-separated), `{tasks}`, `{first_seen}`, `{last_seen}`, `{group}` (the
`group_by` values, comma-separated), `{span}` (`at T`, or `from A to B` when they differ), and
any column of the rule's frame, taken from the first matching row of the finding (e.g.
`{task_name}`).  Missing values render as `?`; the format
spec `bytes` humanises a size (`{used_memory:bytes}` → `15.8 MiB`) and `plural:NOUN[, NOUNS]` counts
(`{count:plural:attempt}` → `1 attempt`, `3 attempts`; `{count:plural:time}` → `once`, `3 times`).

Loading never raises for a bad rule: `load_rules` returns `(rules, errors)`, each error an
`EngineError` located at `path:line:col` in the rule file (`when` errors point inside the
TOML string).
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from analyzer.categories import CATEGORIES, SEVERITIES

from .compiler import compile_condition
from .errors import ConditionError, EngineError, RuleError
from .grammar import offset_to_line_col, parse_condition
from .nodes import Condition, columns
from .schemas import Schema, frame_schemas

STATUSES = ("experimental", "stable")
AGGREGATE_FIELDS = ("count", "hosts", "tasks", "first_seen", "last_seen", "group", "span")
DEFAULT_CONFIDENCE = 0.8

REQUIRED = ("id", "category", "severity", "title", "what", "why", "on", "when", "message", "remediation")
OPTIONAL = ("confidence", "group_by", "distinct", "explains", "fallback", "references", "status", "samples",
            "example")
EXAMPLE_KEYS = ("match", "no_match", "xfail")
ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Example:
    """One `[[example]]`: log text that the rule must (`match`) or must not (`no_match`) fire on."""

    expect: Literal["match", "no_match"]
    text: str
    xfail: str | None = None  # a known gap: the reason it fails today
    line: int | None = None  # line of the `[[example]]` header in the rule file


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    severity: str
    confidence: float
    title: str
    what: str
    why: str
    on: str
    when: str
    message: str
    condition: Condition
    expr: pl.Expr = field(compare=False, repr=False)
    group_by: tuple[str, ...] = ()
    distinct: tuple[str, ...] = ()  # one occurrence per distinct value: what `count` and evidence count
    explains: tuple[str, ...] = ()
    fallback: bool = False  # sees only the rows no other rule on its frame matched
    remediation: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    status: str = "experimental"
    samples: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()
    path: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Frame columns the condition, `group_by` and `distinct` use, deduplicated, in order of use."""
        names = [c.name for c in columns(self.condition)] + list(self.group_by) + list(self.distinct)
        return tuple(dict.fromkeys(names))


# -- locating things in the TOML text -----------------------------------------------------------

_TABLE_RE = re.compile(r"^\s*\[")


def _key_position(text: str, key: str) -> tuple[int, int] | None:
    """(line, column) of the top-level `key = ...` in TOML `text` (before any table header)."""
    pattern = re.compile(rf"^(\s*)(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*=")
    for number, line in enumerate(text.splitlines(), 1):
        if _TABLE_RE.match(line):
            return None
        m = pattern.match(line)
        if m:
            return number, len(m.group(1)) + 1
    return None


def _value_offset(text: str, key: str, offset: int) -> tuple[int, int] | None:
    """(line, column) in the file of character `offset` of the string value of top-level `key`."""
    pos = _key_position(text, key)
    if pos is None:
        return None
    lines = text.splitlines(keepends=True)
    start = sum(len(x) for x in lines[: pos[0] - 1])
    m = re.compile(r"[^=]*=\s*").match(text, start)
    if m is None:
        return None
    i = m.end()
    for delim in ("'''", '"""', "'", '"'):
        if text.startswith(delim, i):
            break
    else:
        return None
    i += len(delim)
    if len(delim) == 3 and text.startswith("\n", i):
        i += 1
    elif len(delim) == 3 and text.startswith("\r\n", i):
        i += 2
    basic = delim[0] == '"'
    remaining = offset
    while remaining > 0 and i < len(text):
        if basic and text[i] == "\\":
            nxt = text[i + 1 : i + 2]
            i += {"u": 6, "U": 10}.get(nxt, 2)
        else:
            i += 1
        remaining -= 1
    return offset_to_line_col(text, i)


# -- validation ---------------------------------------------------------------------------------


class _Collector:
    def __init__(self, path: str | None, text: str, rule_id: str | None = None) -> None:
        self.path, self.text, self.rule_id = path, text, rule_id
        self.errors: list[EngineError] = []

    def add(self, message: str, key: str | None = None) -> None:
        pos = _key_position(self.text, key) if key else None
        line, column = pos if pos else (None, None)
        self.errors.append(RuleError(message, path=self.path, line=line, column=column, rule=self.rule_id))


def _str_list(
    data: Mapping[str, Any], key: str, errs: _Collector, *, required: bool = False
) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errs.add(f"{key!r} must be a list of strings", key)
        return ()
    if required and not value:
        errs.add(f"{key!r} needs at least one entry", key)
    return tuple(value)


def _examples(data: Mapping[str, Any], errs: _Collector, require: bool) -> tuple[Example, ...]:
    raw = data.get("example", [])
    if not isinstance(raw, list):
        errs.add("'example' must be an array of tables: [[example]]", "example")
        return ()
    headers = [n for n, line in enumerate(errs.text.splitlines(), 1) if line.strip() == "[[example]]"]
    out: list[Example] = []
    for index, ex in enumerate(raw):
        line = headers[index] if index < len(headers) else None
        where = f"example {index + 1}"

        def bad(message: str, line: int | None = line) -> None:
            errs.errors.append(RuleError(message, path=errs.path, line=line, column=1 if line else None,
                                         rule=errs.rule_id))

        if not isinstance(ex, dict):
            bad(f"{where} must be a table")
            continue
        unknown = sorted(set(ex) - set(EXAMPLE_KEYS))
        if unknown:
            bad(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(EXAMPLE_KEYS)})")
        kinds = [k for k in ("match", "no_match") if k in ex]
        if len(kinds) != 1:
            bad(f"{where} needs exactly one of 'match' or 'no_match'")
            continue
        kind: Literal["match", "no_match"] = "match" if kinds[0] == "match" else "no_match"
        text, xfail = ex[kind], ex.get("xfail")
        if not isinstance(text, str) or not text.strip():
            bad(f"{where}: {kind!r} must be non-empty text")
            continue
        if xfail is not None and not isinstance(xfail, str):
            bad(f"{where}: 'xfail' must be a reason (text)")
            xfail = None
        out.append(Example(kind, text, xfail, line))
    if require and not any(e.expect == "match" for e in out):
        errs.add("a rule needs at least one [[example]] with 'match'", None)
    if require and not any(e.expect == "no_match" for e in out):
        errs.add("a rule needs at least one [[example]] with 'no_match'", None)
    return tuple(out)


def _template_fields(template: str) -> list[str]:
    names = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None:
            names.append(name)
    return names


def rule_from_dict(
    data: Mapping[str, Any],
    *,
    path: str | None = None,
    text: str = "",
    schemas: Mapping[str, Schema] | None = None,
    require_examples: bool = True,
) -> tuple[Rule | None, list[EngineError]]:
    """Validate a decoded rule table; `text` is the TOML source, used only to locate errors."""
    schemas = frame_schemas() if schemas is None else schemas
    rule_id = data.get("id") if isinstance(data.get("id"), str) else None
    errs = _Collector(path, text, rule_id)

    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    for key in unknown:
        errs.add(f"unknown key {key!r} (allowed: {', '.join(REQUIRED + OPTIONAL)})", key)
    for key in REQUIRED:
        if key not in data:
            errs.add(f"missing required key {key!r}")
    for key in ("id", "category", "severity", "title", "what", "why", "on", "when", "message", "status"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            errs.add(f"{key!r} must be non-empty text", key)

    def text_field(key: str, default: str = "") -> str:
        value = data.get(key, default)
        return value if isinstance(value, str) else default

    rid = text_field("id")
    if rid and not ID_RE.match(rid):
        errs.add(f"id {rid!r} must start with a letter and hold only letters, digits, '-', '_', '.'", "id")
    category = text_field("category")
    if category and category not in CATEGORIES:
        errs.add(f"unknown category {category!r} (see analyzer.categories)", "category")
    severity = text_field("severity")
    if severity and severity not in SEVERITIES:
        errs.add(f"severity {severity!r} must be one of {', '.join(SEVERITIES)}", "severity")
    status = text_field("status", "experimental")
    if status not in STATUSES:
        errs.add(f"status {status!r} must be one of {', '.join(STATUSES)}", "status")
    confidence = data.get("confidence", DEFAULT_CONFIDENCE)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        errs.add("'confidence' must be a number from 0 to 1", "confidence")
        confidence = DEFAULT_CONFIDENCE

    group_by = _str_list(data, "group_by", errs)
    distinct = _str_list(data, "distinct", errs)
    explains = _str_list(data, "explains", errs)
    for cat in explains:
        if cat not in CATEGORIES:
            errs.add(f"'explains' names unknown category {cat!r}", "explains")
    fallback = data.get("fallback", False)
    if not isinstance(fallback, bool):
        errs.add("'fallback' must be true or false", "fallback")
        fallback = False
    remediation = _str_list(data, "remediation", errs, required="remediation" in data)
    references = _str_list(data, "references", errs)
    samples = _str_list(data, "samples", errs)
    if status == "stable" and not samples:
        errs.add("a stable rule must name the sample bundles it fires on in 'samples'", "status")
    examples = _examples(data, errs, require_examples)

    on = text_field("on")
    schema = schemas.get(on) if on else None
    if on and schema is None:
        errs.add(f"unknown frame {on!r} (frames: {', '.join(schemas)})", "on")
    if fallback and schema is not None and "source" not in schema:
        errs.add(f"'fallback' needs a frame whose rows say where they were read (source, line); {on!r} has none",
                 "fallback")
    for key, cols in (("group_by", group_by), ("distinct", distinct)):
        for col in cols:
            if schema is not None and col not in schema:
                errs.add(f"'{key}' names unknown column {col!r} of frame {on!r}", key)

    message = text_field("message")
    try:
        names = _template_fields(message)
    except ValueError as exc:
        errs.add(f"'message' is not a valid template: {exc}", "message")
        names = []
    for name in names:
        base = re.split(r"[.\[]", name, maxsplit=1)[0]
        if not base or (base not in AGGREGATE_FIELDS and (schema is None or base not in schema)):
            errs.add(f"'message' uses unknown field {{{name}}} (aggregates: {', '.join(AGGREGATE_FIELDS)}, "
                     f"or a column of {on!r})", "message")

    when = text_field("when")
    condition: Condition | None = None
    expr: pl.Expr | None = None
    if when:
        try:
            condition = parse_condition(when)
            if schema is not None:
                expr = compile_condition(condition, schema)
        except ConditionError as exc:
            errs.errors.append(_relocate(exc, path, text, rule_id, when))

    if errs.errors or condition is None or expr is None:
        return None, errs.errors
    rule = Rule(
        id=rid, category=category, severity=severity, confidence=float(confidence),
        title=text_field("title"), what=text_field("what"), why=text_field("why"), on=on, when=when,
        message=message, condition=condition, expr=expr, group_by=group_by, distinct=distinct,
        explains=explains, fallback=fallback,
        remediation=remediation, references=references, status=status, samples=samples,
        examples=examples, path=path,
    )
    return rule, []


def _relocate(
    exc: ConditionError, path: str | None, text: str, rule_id: str | None, when: str
) -> ConditionError:
    """Move a `when`-relative error to its line:column in the rule file."""
    pos = _value_offset(text, "when", exc.offset) if text else None
    if pos is not None:
        message = f"in 'when': {exc.message}"
    else:  # not found in the text (built from a dict): say where inside `when`, point at the key
        wline, wcol = offset_to_line_col(when, exc.offset)
        message = f"in 'when' at {wline}:{wcol}: {exc.message}"
        pos = _key_position(text, "when") if text else None
    line, column = pos if pos else (None, None)
    return ConditionError(message, offset=exc.offset, path=path, line=line, column=column, rule=rule_id)


def parse_rule(
    text: str,
    *,
    path: str | None = None,
    schemas: Mapping[str, Schema] | None = None,
    require_examples: bool = True,
) -> tuple[Rule | None, list[EngineError]]:
    """Parse and validate one rule from TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line, column = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        return None, [RuleError(f"invalid TOML: {message}", path=path, line=line, column=column)]
    return rule_from_dict(data, path=path, text=text, schemas=schemas, require_examples=require_examples)


# (path, text, require_examples) → what parse_rule made of it: a process analysing many bundles
# (analyze-many) parses the catalogue once, not once per bundle; keyed on the text, so an edit counts
_PARSED: dict[tuple[str, str, bool], tuple[Rule | None, tuple[EngineError, ...]]] = {}


def load_rule(
    path: str | Path, *, schemas: Mapping[str, Schema] | None = None, require_examples: bool = True
) -> tuple[Rule | None, list[EngineError]]:
    """Read, parse and validate one rule file (parsed once per text and process: `_PARSED`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [RuleError(f"cannot read rule file: {exc}", path=str(p))]
    if schemas is not None:
        return parse_rule(text, path=str(p), schemas=schemas, require_examples=require_examples)
    key = (str(p), text, require_examples)
    if key not in _PARSED:
        parsed, found = parse_rule(text, path=str(p), require_examples=require_examples)
        _PARSED[key] = (parsed, tuple(found))
    rule, errors = _PARSED[key]
    return rule, list(errors)


def rule_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Rule files under `paths` (directories searched recursively for `*.toml`), sorted."""
    if isinstance(paths, str | Path):
        paths = [paths]
    found: list[Path] = []
    for p in map(Path, paths):
        found.extend(sorted(p.rglob("*.toml")) if p.is_dir() else [p])
    return found


def load_rules(
    paths: str | Path | Iterable[str | Path],
    *,
    schemas: Mapping[str, Schema] | None = None,
    require_examples: bool = True,
) -> tuple[list[Rule], list[EngineError]]:
    """Load every rule under `paths`; returns the valid rules (sorted by id) and all errors.

    A duplicate id is an error on every file after the first that uses it (the first loads).
    """
    rules: dict[str, Rule] = {}
    errors: list[EngineError] = []
    for file in rule_files(paths):
        rule, errs = load_rule(file, schemas=schemas, require_examples=require_examples)
        errors.extend(errs)
        if rule is None:
            continue
        if rule.id in rules:
            pos = _key_position(file.read_text(encoding="utf-8"), "id")
            line, column = pos if pos else (None, None)
            errors.append(RuleError(f"duplicate rule id {rule.id!r} (first in {rules[rule.id].path})",
                                    path=str(file), line=line, column=column, rule=rule.id))
            continue
        rules[rule.id] = rule
    return [rules[k] for k in sorted(rules)], errors
