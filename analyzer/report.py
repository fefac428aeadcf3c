"""The Report: what renderers draw and what `--format json` writes (DESIGN.md contract)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import polars as pl

from analyzer.advice import Advice
from analyzer.bundle import Problem
from analyzer.categories import SEVERITY_RANK
from analyzer.findings import Finding
from analyzer.sources.celery_log import Coverage

if TYPE_CHECKING:
    from analyzer.api import Bundle
    from analyzer.engine.rule import Rule

SCHEMA = "celery-postmortem/report@1"
# `str(EngineError)`: `path[:line[:column]]: message` (`<rule>` for a rule without a file).
_LOCATED = re.compile(r"(?P<source>.+?)(?::(?P<line>\d+)(?::(?P<column>\d+))?)?: (?P<message>.*)", re.S)


@dataclass(frozen=True)
class RuleProblem:
    """A rule that could not be loaded or evaluated, located in its file (from `Report.rule_errors`)."""

    source: str
    message: str
    line: int | None = None
    column: int | None = None

    @classmethod
    def parse(cls, text: str) -> RuleProblem:
        m = _LOCATED.fullmatch(text)
        if m is None:
            return cls("<rule>", text)
        line, column = m.group("line"), m.group("column")
        return cls(m.group("source"), m.group("message"), int(line) if line else None,
                   int(column) if column else None)

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"source": self.source}
        if self.line is not None:
            d["line"] = self.line
        if self.column is not None:
            d["column"] = self.column
        d["message"] = self.message
        return d


@dataclass(frozen=True)
class RuleOverride:
    """A user's rule that replaced the shipped rule of the same id (deliberate, never silent)."""

    rule: str
    source: str
    replaces: str

    def __str__(self) -> str:
        return f"{self.rule} from {self.source} replaces the built-in rule {self.rule} ({self.replaces})"

    def to_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "source": self.source, "replaces": self.replaces}


@dataclass
class Summary:
    hosts: list[str] = field(default_factory=list)
    first_ts: str | None = None
    last_ts: str | None = None
    events: int = 0
    tasks_by_state: dict[str, int] = field(default_factory=dict)
    threads: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"hosts": self.hosts, "first_seen": self.first_ts, "last_seen": self.last_ts,
                "events": self.events, "tasks": self.tasks_by_state, "threads": self.threads}


@dataclass
class Report:
    inputs: list[Coverage]
    kinds: dict[str, str]  # member name → sniffed kind
    problems: list[Problem]
    findings: list[Finding]
    root_causes: list[str]
    summary: Summary
    rule_errors: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)  # the rules that ran (SARIF/JUnit list them all)
    advice: dict[str, Advice] = field(default_factory=dict)  # root-cause id → what to check and collect

    @property
    def healthy(self) -> bool:
        return not self.root_causes

    def rule_problems(self) -> list[RuleProblem]:
        """`rule_errors`, each split into its file, line and message."""
        return [RuleProblem.parse(e) for e in self.rule_errors]

    def rule_overrides(self) -> list[RuleOverride]:
        """The user rules among `rules` that replaced a shipped rule of the same id."""
        if not self.rules:
            return []
        from analyzer.engine.catalogue import default_rule_dir, overrides

        home = default_rule_dir().parent  # shipped files named as in a checkout or a wheel, not by machine
        return [RuleOverride(r.id, r.path or "<rule>", shipped.relative_to(home).as_posix())
                for r, shipped in overrides(self.rules)]

    def finding(self, fid: str) -> Finding:
        for f in self.findings:
            if f.id == fid:
                return f
        raise KeyError(fid)

    def worst_severity(self) -> str | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: SEVERITY_RANK.get(s, 0))

    def to_dict(self) -> dict[str, object]:
        return {
            "schema": SCHEMA,
            "inputs": [c.to_dict() for c in self.inputs],
            "problems": [{"source": p.source, "message": p.message} for p in self.problems],
            "rule_errors": [e.to_dict() for e in self.rule_problems()],
            "rule_overrides": [o.to_dict() for o in self.rule_overrides()],
            "summary": self.summary.to_dict(),
            "root_causes": list(self.root_causes),
            "findings": [f.to_dict() for f in self.findings],
            "advice": {fid: a.to_dict() for fid, a in self.advice.items()},
        }

    def findings_frame(self) -> pl.DataFrame:
        rows = [{k: v for k, v in f.to_dict().items() if k not in ("evidence", "remediation", "references")}
                for f in self.findings]
        if not rows:
            return pl.DataFrame(schema={"id": pl.String, "rule": pl.String, "category": pl.String,
                                        "severity": pl.String, "confidence": pl.Float64, "title": pl.String,
                                        "count": pl.Int64})
        return pl.DataFrame(rows)


def iso(value: object) -> str | None:
    """Timestamps as the report writes them: ISO-8601, milliseconds, no zone (logs carry none)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    return str(value).replace(" ", "T")


def summarize(bundle: Bundle) -> Summary:
    ev = bundle.events
    hosts = sorted(h for h in ev.get_column("host").unique().to_list() if h) if ev.height else []
    ts = ev.get_column("ts").drop_nulls() if ev.height else pl.Series([], dtype=pl.Datetime("ms"))
    states = bundle.tasks.group_by("state").len().sort("state").rows() if bundle.tasks.height else []
    return Summary(
        hosts=hosts,
        first_ts=iso(ts.min()) if ts.len() else None,
        last_ts=iso(ts.max()) if ts.len() else None,
        events=ev.height,
        tasks_by_state={str(s): int(n) for s, n in states},
        threads=bundle.threads.height,
    )
