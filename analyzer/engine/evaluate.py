"""Run compiled rules over frames and turn their matches into `Finding`s.

`evaluate(rules, frames)` sorts each frame once (by `ts`, nulls last, ties by `source`, `line`;
frames without those columns keep their order), evaluates every rule on that frame in one
lazy `select` (polars runs the expressions in parallel and shares common subexpressions),
then groups each rule's matching rows by its `group_by` columns into findings.  Output order
is deterministic: by rule id, then by group key.

`check_examples(rule, parse_example)` runs a rule's `[[example]]`s through a parser hook and
says, for each, whether the rule behaved as the example says.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl

from analyzer.clip import clip
from analyzer.findings import MAX_TIMES, Evidence, Finding
from analyzer.order import timeline

from .compiler import Leaf, prefilter, prefilter_expr
from .errors import EngineError, EvaluationError
from .rule import Example, Rule
from .schemas import Schema, frame_schemas

ParseExample = Callable[[str, str], pl.DataFrame]
# the last line of a traceback: `ConnectionRefusedError: [Errno 111] Connection refused`, `KeyboardInterrupt`
EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(?::\s.*|:)?")

SORT_COLUMNS = ("ts", "source", "line")
# Column holding the source line of a row, when it is not `line` (in `frames`, `line` is the code line).
EVIDENCE_LINE = {"frames": "src_line"}
TEXT_COLUMNS = ("text", "message")
# Columns whose every value starts another column's value (`text` = `message` + continuation
# lines; tests/test_samples.py checks it on every sample): prefilters scan only the wider one.
WITHIN: dict[str, dict[str, str]] = {"events": {"message": "text"}}
MAX_EVIDENCE_CHARS = 2000
MAX_TASKS = 50


def sort_frame(df: pl.DataFrame) -> pl.DataFrame:
    """The frame in the order temporal conditions assume: `ts` (nulls last), then `source`, `line`."""
    if "ts" not in df.columns:
        return df
    return timeline(df, SORT_COLUMNS)


def _within(name: str, frame: pl.DataFrame) -> dict[str, str]:
    """The `WITHIN` pairs that hold on `frame`: a frame built without `text`, or with a null
    `text` where `message` has a value (an API user's own frame), keeps scanning `message`."""
    pairs: dict[str, str] = {}
    for narrow, wide in WITHIN.get(name, {}).items():
        if narrow not in frame.columns or wide not in frame.columns:
            continue
        lost = (pl.col(wide).is_null() & pl.col(narrow).is_not_null()).any()
        if not frame.select(lost).item():
            pairs[narrow] = wide
    return pairs


def _conform(df: pl.DataFrame, rules: Sequence[Rule], schema: Schema | None) -> pl.DataFrame:
    """Add the columns the rules need but the frame lacks, as typed nulls."""
    missing: dict[str, pl.DataType] = {}
    for rule in rules:
        for name in rule.columns:
            if name not in df.columns:
                missing[name] = schema[name] if schema and name in schema else pl.String()
    if schema and "ts" in schema and "ts" not in df.columns:
        missing["ts"] = schema["ts"]
    if not missing:
        return df
    return df.with_columns([pl.lit(None, dtype=dt).alias(name) for name, dt in missing.items()])


def _masks(df: pl.DataFrame, rules: Sequence[Rule], errors: list[EngineError] | None) -> dict[str, pl.Series]:
    """One boolean Series per rule id; a rule that fails is reported (or raised) and skipped."""
    try:
        out = df.lazy().select([r.expr.alias(r.id) for r in rules]).collect()
        return {r.id: out[r.id] for r in rules}
    except pl.exceptions.PolarsError:
        pass  # find the culprit(s): evaluate one by one
    masks: dict[str, pl.Series] = {}
    for rule in rules:
        try:
            masks[rule.id] = df.select(rule.expr.alias(rule.id)).to_series()
        except pl.exceptions.PolarsError as exc:
            error = EvaluationError(f"rule {rule.id} failed on frame {rule.on!r}: {exc}", path=rule.path,
                                    rule=rule.id)
            if errors is None:
                raise error from exc
            errors.append(error)
    return masks


def matches(rule: Rule, df: pl.DataFrame) -> pl.DataFrame:
    """The rows of `df` that `rule` matches, in evaluation order (sorted by `ts`)."""
    frame = sort_frame(_conform(df, [rule], frame_schemas().get(rule.on)))
    return frame.filter(_masks(frame, [rule], None)[rule.id])


def evaluate(
    rules: Iterable[Rule],
    frames: Mapping[str, pl.DataFrame],
    *,
    max_evidence: int = 10,
    max_tasks: int = MAX_TASKS,
    schemas: Mapping[str, Schema] | None = None,
    errors: list[EngineError] | None = None,
    claim_only: Sequence[Rule] = (),
) -> list[Finding]:
    """Findings of `rules` on `frames`, ordered by rule id then group key.

    Rules whose frame is absent or empty are skipped.  If `errors` is given, a rule that polars
    cannot evaluate is appended there as an `EvaluationError` and skipped; otherwise it raises.
    `claim_only` rules (those a user's `--ignore` or `--select` left out) report nothing, but what
    they match is still classified: `fallback` rules do not see it.
    """
    schemas = frame_schemas() if schemas is None else schemas
    by_frame: dict[str, list[Rule]] = {}
    for rule in rules:
        by_frame.setdefault(rule.on, []).append(rule)
    findings: list[Finding] = []
    for name in sorted(by_frame):
        df = frames.get(name)
        if df is None or df.height == 0:
            continue
        frame_rules = [r for r in by_frame[name] if not r.fallback]
        fallbacks = [r for r in by_frame[name] if r.fallback]
        silent = [r for r in claim_only if r.on == name and not r.fallback] if fallbacks else []
        frame = sort_frame(_conform(df, [*by_frame[name], *silent], schemas.get(name)))
        claimed: list[pl.DataFrame] = []
        findings.extend(_evaluate_frame(name, frame, frame_rules, errors, max_evidence, max_tasks,
                                        claimed if fallbacks else None))
        if silent:
            _evaluate_frame(name, frame, silent, errors, 1, 1, claimed)
        if fallbacks:
            rest = _unclaimed(frame, claimed, row_key(name))
            findings.extend(_evaluate_frame(name, rest, fallbacks, errors, max_evidence, max_tasks, None))
    findings.sort(key=lambda f: f.rule)  # stable: groups stay in key order within a rule
    return findings


def _unclaimed(frame: pl.DataFrame, claimed: list[pl.DataFrame], key: tuple[str, str]) -> pl.DataFrame:
    """Rows no claim names, nor written by the same source at the same instant as a claimed row: servers
    such as RabbitMQ write one record as several lines with a header each."""
    if not claimed:
        return frame
    rows = pl.concat(claimed).unique()
    rest = frame.join(rows.select(*key), on=list(key), how="anti", maintain_order="left", nulls_equal=True)
    if "ts" in frame.columns and "ts" in rows.columns:
        instants = rows.select("source", "ts").drop_nulls().unique()
        rest = rest.join(instants, on=["source", "ts"], how="anti", maintain_order="left")
    return rest


def row_key(frame: str) -> tuple[str, str]:
    """The columns naming a row of `frame` where it was read: what `fallback` rules tell apart."""
    return "source", EVIDENCE_LINE.get(frame, "line")


def _evaluate_frame(name: str, frame: pl.DataFrame, frame_rules: Sequence[Rule], errors: list[EngineError] | None,
                    max_evidence: int, max_tasks: int, claimed: list[pl.DataFrame] | None) -> list[Finding]:
    """Findings of `frame_rules` on one (sorted) frame; the rows they match go to `claimed`."""
    findings: list[Finding] = []
    if frame_rules and frame.height:
        # Rules with a cheap condition covering every row they can match and every row their
        # temporal forms read (`prefilter`) run on the (few) rows passing the OR of those
        # conditions; the filter keeps row order and times, so their hits are the same rows in
        # the same order.  The others see the whole frame.
        leaves: list[Leaf] = []
        local: list[Rule] = []
        whole: list[Rule] = []
        for rule in frame_rules:
            found = prefilter(rule.condition, frame.schema)
            if found is None:
                whole.append(rule)
            else:
                local.append(rule)
                leaves.extend(found)
        parts = [(frame, whole)] if whole else []
        if local:
            parts.append((frame.filter(prefilter_expr(leaves, _within(name, frame))), local))
        for part, part_rules in parts:
            masks = _masks(part, part_rules, errors)
            for rule in part_rules:
                if rule.id not in masks:
                    continue
                hits = part.filter(masks[rule.id])
                if hits.height:
                    findings.extend(_findings(rule, hits, max_evidence=max_evidence, max_tasks=max_tasks))
                    if claimed is not None:
                        claimed.append(hits.select(*row_key(name), *(["ts"] if "ts" in hits.columns else [])))
    return findings


# -- building findings --------------------------------------------------------------------------


def _sort_key(key: tuple[Any, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((v is None, str(v)) for v in key)


def _findings(rule: Rule, hits: pl.DataFrame, *, max_evidence: int, max_tasks: int) -> list[Finding]:
    if not rule.group_by:
        return [_finding(rule, hits, (), max_evidence, max_tasks)]
    parts = hits.partition_by(list(rule.group_by), as_dict=True, maintain_order=True)
    return [
        _finding(rule, parts[key], key, max_evidence, max_tasks)
        for key in sorted(parts, key=_sort_key)
    ]


def iso(value: object) -> str | None:
    """ISO-8601 without zone; seconds precision unless there are fractions (then milliseconds)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds" if value.microsecond == 0 else "milliseconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _unique_sorted(part: pl.DataFrame, column: str) -> list[str]:
    if column not in part.columns:
        return []
    return sorted(str(v) for v in part.get_column(column).drop_nulls().unique().to_list())


def _evidence_text(row: Mapping[str, Any]) -> str:
    for column in TEXT_COLUMNS:
        value = row.get(column)
        if isinstance(value, str) and value:
            break
    else:
        value = _thread_text(row) or ", ".join(
            f"{k}={v}" for k, v in row.items() if v is not None and k not in ("source", "line"))
    if len(value) > MAX_EVIDENCE_CHARS:
        value = _headline(value)
    return value


def _headline(text: str) -> str:
    """A long record cut to its first line, and, for a traceback, its exception line: `Traceback
    (most recent call last):` alone says nothing of what was raised."""
    lines = text.splitlines() if text.strip() else [text]
    head = clip(lines[0], MAX_EVIDENCE_CHARS)
    if "Traceback (most recent call last)" not in text:
        return head
    tail = next((ln for ln in reversed(lines[1:]) if EXCEPTION_LINE.fullmatch(ln)), None)
    return f"{head}\n{clip(tail, MAX_EVIDENCE_CHARS)}" if tail else head


def _thread_text(row: Mapping[str, Any]) -> str:
    """A thread of a dump (a `threads` row) in words: `thread "MainThread" (tid 9646, pid 9646 on
    w1@sample) io_wait in TCPTransport._read (amqp/transport.py:648)` — its innermost application
    frame (`code`), not the whole normalised stack."""
    if "signature" not in row or "tid" not in row or "state" not in row:
        return ""
    ids = ", ".join(f"{k} {row[k]}" for k in ("tid", "pid") if row.get(k) is not None)
    where = f"{ids} on {row['host']}" if row.get("host") else ids
    name = f'"{row["name"]}" ' if row.get("name") else ""
    frame = row.get("code") or row.get("top")
    return (f"thread {name}" + (f"({where.strip()}) " if where.strip() else "") + (row.get("state") or "unknown")
            + (f" in {frame}" if frame else ""))


def _evidence(rule: Rule, row: Mapping[str, Any]) -> Evidence:
    line = row.get(EVIDENCE_LINE.get(rule.on, "line"))
    source = row.get("source")
    return Evidence(
        source=str(source) if source is not None else "",
        line=int(line) if isinstance(line, int) else 0,
        text=_evidence_text(row),
    )


def _distinct(part: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """The first row of each occurrence: rows equal on every `keys` column (a thread seen in
    three dumps) are one; a row with a null key (a thread no tool gave an id) is its own."""
    if not keys:
        return part
    cols = [pl.col(k) for k in keys]
    return part.filter(pl.any_horizontal(c.is_null() for c in cols) | pl.struct(cols).is_first_distinct())


def _last(part: pl.DataFrame) -> Any:
    """The latest time of `part`: its `ts`, or a row's `ts_end` when the row covers a span (a
    container's run ends when the runtime killed it, after the run began)."""
    if "ts_end" not in part.columns:
        return part.get_column("ts").max()
    return part.select(pl.max_horizontal(pl.col("ts").max(), pl.col("ts_end").max())).item()


def _finding(
    rule: Rule, part: pl.DataFrame, key: tuple[Any, ...], max_evidence: int, max_tasks: int
) -> Finding:
    first_seen = last_seen = None
    if "ts" in part.columns:
        first_seen, last_seen = iso(part.get_column("ts").min()), iso(_last(part))
    hosts = _unique_sorted(part, "host")
    tasks = _unique_sorted(part, "task_id")[:max_tasks]
    counted = _distinct(part, rule.distinct)
    rows = counted.head(max(max_evidence, 1)).to_dicts()
    fields: dict[str, Any] = dict(rows[0])
    fields.update(
        count=counted.height,
        hosts=", ".join(hosts) or None,
        tasks=", ".join(tasks) or "none",  # `tasks: none`, not `tasks: ?`: the group has no task, none is unknown
        first_seen=first_seen,
        last_seen=last_seen,
        group=", ".join("?" if v is None else str(v) for v in key) or None,
        span=span(first_seen, last_seen),
    )
    return Finding(
        rule=rule.id,
        category=rule.category,
        severity=rule.severity,
        confidence=rule.confidence,
        title=rule.title,
        summary=render_message(rule.message, fields),
        count=counted.height,
        first_seen=first_seen,
        last_seen=last_seen,
        hosts=hosts,
        tasks=tasks,
        evidence=[_evidence(rule, row) for row in rows[:max_evidence]],
        evidence_total=counted.height,
        remediation=list(rule.remediation),
        references=list(rule.references),
        explains_categories=list(rule.explains),
        times=_times(part),
    )


def span(first: str | None, last: str | None) -> str | None:
    """`{span}`: `at A` when the occurrences share one time, `from A to B` otherwise, None (`?`)
    without a time."""
    if first is None and last is None:
        return None
    if first == last or first is None or last is None:
        return f"at {first or last}"
    return f"from {first} to {last}"


def _times(part: pl.DataFrame) -> tuple[datetime, ...]:
    """When each matched row happened, sorted and thinned (baselines in `diagnosis` read them)."""
    if "ts" not in part.columns or not isinstance(part.schema["ts"], pl.Datetime):
        return ()
    ts = part.get_column("ts").drop_nulls().sort()
    if ts.len() > MAX_TIMES:
        ts = ts.gather([i * ts.len() // MAX_TIMES for i in range(MAX_TIMES)])
    return tuple(ts.to_list())


class _Template(string.Formatter):
    def get_value(self, key: int | str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        return kwargs.get(str(key))

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return "?"
        if format_spec == "bytes":
            return human_bytes(value)
        if format_spec.startswith("plural:"):
            return plural(value, format_spec.removeprefix("plural:"))
        if isinstance(value, datetime | date):
            value = iso(value)
        try:
            return format(value, format_spec)
        except (TypeError, ValueError):
            return str(value)


def plural(value: object, nouns: str) -> str:
    """`{count:plural:attempt}` → `1 attempt` / `3 attempts`; `{count:plural:child, children}` for an
    irregular plural; `{count:plural:time}` → `once` / `3 times`."""
    singular, _, many = (n.strip() for n in nouns.partition(","))
    if not isinstance(value, int):
        return f"{value} {many or singular + 's'}"
    if value == 1:
        return "once" if singular == "time" else f"1 {singular}"
    return f"{value} {many or singular + 's'}"


def human_bytes(value: object) -> str:
    """`{used_memory:bytes}`: `16596240` → `15.8 MiB` (binary units, as Redis and `free -h` count);
    a value that is not a number is shown as it is."""
    try:
        n = float(str(value))
    except ValueError:
        return str(value)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(value)  # unreachable: the loop returns at TiB


MAX_SUMMARY_CHARS = 4000  # a field may be a whole log record (a 50 MB line is bundle input too)


def render_message(template: str, fields: Mapping[str, Any]) -> str:
    """Fill a rule's `message`; unknown or null fields render as `?`, never raise; clipped at a
    token's end (`analyzer.clip`) so that a secret is never cut in half before redaction."""
    try:
        return clip(_Template().vformat(template, (), fields), MAX_SUMMARY_CHARS)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return template


# -- examples -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExampleResult:
    rule: str
    index: int  # 0-based position among the rule's examples
    example: Example
    passed: bool  # the rule did what the example says
    reason: str  # why it failed, or a short description when it passed

    @property
    def ok(self) -> bool:
        """Passed, or a known gap (`xfail`) that still fails; an xfail that passes is not ok."""
        return self.passed if self.example.xfail is None else not self.passed


def check_examples(rule: Rule, parse_example: ParseExample, others: Sequence[Rule] = ()) -> list[ExampleResult]:
    """Feed each example through `parse_example(rule.on, text)` and check the rule fires or not.

    A `fallback` rule's examples are checked against `others` (the catalogue it ships in): it fires on
    what none of them claims."""
    results = []
    for index, example in enumerate(rule.examples):
        results.append(_check(rule, index, example, parse_example, others))
    return results


def fallback_matches(rule: Rule, others: Sequence[Rule], df: pl.DataFrame) -> pl.DataFrame:
    """The rows of `df` fallback `rule` matches once `others` (on its frame) have claimed theirs."""
    frame = sort_frame(_conform(df, [rule, *others], frame_schemas().get(rule.on)))
    claimed: list[pl.DataFrame] = []
    mine = [r for r in others if r.on == rule.on and not r.fallback and r.id != rule.id]
    _evaluate_frame(rule.on, frame, mine, None, 1, 1, claimed)
    return matches(rule, _unclaimed(frame, claimed, row_key(rule.on)))


def _check(rule: Rule, index: int, example: Example, parse_example: ParseExample,
           others: Sequence[Rule] = ()) -> ExampleResult:
    def result(passed: bool, reason: str) -> ExampleResult:
        return ExampleResult(rule.id, index, example, passed, reason)

    try:
        df = parse_example(rule.on, example.text)
    except Exception as exc:  # the parser is someone else's code: report, don't crash the run
        return result(False, f"parsing the example raised {type(exc).__name__}: {exc}")
    try:
        if not df.height:
            hits = df
        elif rule.fallback:
            hits = fallback_matches(rule, others, df)
        else:
            hits = matches(rule, df)
    except EngineError as exc:
        return result(False, str(exc))
    if example.expect == "match":
        if not df.height:
            return result(False, f"expected a match, but the parser made no {rule.on!r} rows of the example")
        if hits.height:
            return result(True, f"matched {hits.height} of {df.height} rows")
        return result(False, f"expected a match, but none of the {df.height} parsed rows matched")
    if not hits.height:
        return result(True, f"no match among {df.height} rows")
    ev = _evidence(rule, hits.row(0, named=True))
    return result(False, f"expected no match, but {hits.height} of {df.height} rows matched, first: "
                         f"line {ev.line}: {ev.text.splitlines()[0] if ev.text else ''}")
