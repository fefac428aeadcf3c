"""The Report: what renderers draw and what `--format json` writes (DESIGN.md contract)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import polars as pl

from analyzer.advice import Advice
from analyzer.bundle import Problem
from analyzer.categories import SEVERITY_RANK
from analyzer.findings import Finding, Incident
from analyzer.sources.celery_log import Coverage
from analyzer.sources.layouts import UNKNOWN as UNKNOWN_LAYOUT

if TYPE_CHECKING:
    from analyzer.engine.rule import Rule

SCHEMA = "celery-postmortem/report@1"
VERDICTS = ("healthy", "unhealthy", "inconclusive")  # `Report.verdict`, the JSON `verdict` enum
# Kinds the sniffer gives what it does not know: listed in the coverage, never parsed.
UNANALYSED_KINDS = ("text", "binary")
# Kinds whose only product is `events` records: they yielded something exactly when the bundle has
# events (their parsed lines alone may be blank lines before the first record).
RECORD_KINDS = frozenset({"celery_log", "json_log", "postgres_log", "rabbitmq_log", "redis_log"})
LOG_FORMAT_HINT = ("if it is a worker log in a custom layout, give that layout with "
                   "--log-format '<worker_log_format>'")
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


class UnknownFinding(KeyError):
    """A finding id the report does not have; the message names the ones it has."""

    def __init__(self, finding_id: str, ids: Sequence[str]) -> None:
        if not ids:
            known = "it has no findings"
        elif len(ids) > 5 and list(ids) == [f"f{i}" for i in range(1, len(ids) + 1)]:
            known = f"findings are f1…f{len(ids)}"
        else:
            known = "findings are " + ", ".join(ids)
        super().__init__(f"no finding {finding_id!r} in this report; {known}")

    def __str__(self) -> str:  # KeyError would show the message quoted, as if it were the key
        return str(self.args[0])


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
    incidents: list[Incident] = field(default_factory=list)  # findings grouped by cause, as intervals
    # `--ignore` pattern → findings it hid (`analyzer.ignored`): a verdict says what it was not shown
    ignored: dict[str, int] = field(default_factory=dict)
    # the zone the logs were written in (`in_zone`): every time then carries its UTC offset
    timezone: str | None = None
    # workers whose clock is off from a server's (`analyses.clocks`): why server times were moved
    clocks: list[str] = field(default_factory=list)

    def in_zone(self, tz: str) -> Report:
        """This report with the zone the logs were written in: each time keeps its wall-clock value
        as the logs wrote it (as finding summaries and evidence quote it) and gains that zone's UTC
        offset at that moment (`2026-11-28T19:21:20.000+01:00`), so it names one instant."""
        zone = ZoneInfo(tz)
        findings = [dataclasses.replace(f, first_seen=with_offset(f.first_seen, zone),
                                        last_seen=with_offset(f.last_seen, zone)) for f in self.findings]
        incidents = [dataclasses.replace(i, start=with_offset(i.start, zone), end=with_offset(i.end, zone),
                                         recovered_at=with_offset(i.recovered_at, zone)) for i in self.incidents]
        summary = dataclasses.replace(self.summary, first_ts=with_offset(self.summary.first_ts, zone),
                                      last_ts=with_offset(self.summary.last_ts, zone))
        return dataclasses.replace(self, findings=findings, incidents=incidents, summary=summary, timezone=tz)

    @property
    def healthy(self) -> bool:
        # No root cause. Also true of an inconclusive report (nothing analysed): `verdict` tells them apart.
        return not self.root_causes

    @property
    def analysed(self) -> bool:
        """Whether any input yielded something to judge: a finding, a log record, a thread, a task,
        or parsed lines of another known kind (inspect output, `redis-cli INFO`, …).

        Without that, "no root cause" would only mean "nothing was read": the empty file, the
        unreadable archive, the log in a layout the parser does not know.
        """
        s = self.summary
        if self.findings or s.threads or s.tasks_by_state:
            return True
        # records of text in no known layout are read (rules run on them) but vouch for nothing
        if s.events and any(c.kind in RECORD_KINDS or c.layout not in (None, UNKNOWN_LAYOUT) for c in self.inputs):
            return True
        return any(c.parsed > 0 and c.kind not in UNANALYSED_KINDS and c.kind not in RECORD_KINDS
                   for c in self.inputs)

    @property
    def verdict(self) -> str:
        """`unhealthy` (root causes found), `healthy` (inputs analysed, nothing wrong) or
        `inconclusive` (nothing could be analysed, or a worker log was mostly not understood: see
        `inconclusive_reasons`). A log in an unknown layout says nothing either way, so the other
        inputs being fine does not make the bundle healthy."""
        if self.root_causes:
            return "unhealthy"
        if self._unread_inputs():  # what was not read may hold the cause: never healthy
            return "inconclusive"
        if self.findings:  # something was read and judged: a finding is never inconclusive
            return "healthy"
        return "healthy" if self.analysed and not self._unread_logs() else "inconclusive"

    def _unread_logs(self) -> list[Coverage]:
        return [c for c in self.inputs if self.log_format_hint(c)]

    def _unread_inputs(self) -> list[Problem]:
        """Problems that left something unread (a refused member, a cut archive, an unreadable
        file): what was not read may hold the cause, so the rest being fine is not a verdict."""
        return [p for p in self.problems if p.unread]

    def log_format_hint(self, cov: Coverage) -> str | None:
        """For a worker log mostly unrecognised (more lines unrecognised than parsed; blank lines
        count as parsed), the hint that it may be a custom layout needing `--log-format`."""
        if cov.kind != "celery_log" or not cov.lines or cov.unrecognized <= cov.parsed:
            return None
        return f"{'only ' if cov.parsed else ''}{cov.parsed} of {cov.lines} lines parsed; {LOG_FORMAT_HINT}"

    def inconclusive_reasons(self) -> list[str]:
        """Why nothing could be analysed, one reason per problem or input (empty unless inconclusive)."""
        if self.verdict != "inconclusive":
            return []
        if self.analysed:  # the rest was read and shows nothing wrong; these inputs were not
            return [*(f"{p.source}: {p.message}" for p in self._unread_inputs()),
                    *(f"{c.source}: {c.kind}, {self.log_format_hint(c)}" for c in self._unread_logs())]
        reasons = [f"{p.source}: {p.message}" for p in self.problems]
        unknown = []
        for c in self.inputs:
            if c.lines == 0 and c.kind == "core" and c.notes:  # no lines: its notes say what became of it
                last = c.notes[-1]
                reasons.append(last if last.startswith(c.source) else f"{c.source}: {last}")
            elif c.kind in ("core", "binary"):
                reasons.append(f"{c.source}: binary, not analysed")
            elif c.lines == 0:
                reasons.append(f"{c.source} is empty")
            elif c.layout == UNKNOWN_LAYOUT:
                reasons.append(f"{c.source}: {c.kind} in no known layout, read as records and nothing found in them; "
                               f"{LOG_FORMAT_HINT}")
            elif c.kind in UNANALYSED_KINDS:
                unknown.append(c.source)
            else:
                hint = self.log_format_hint(c)
                if hint:
                    reasons.append(f"{c.source}: {c.kind}, {hint}")
                else:
                    extra = "".join(f"; {n}" for n in c.notes)
                    reasons.append(f"{c.source}: {c.kind}, no record in {c.lines} lines{extra}")
        if unknown:
            shown = ", ".join(unknown[:5]) + (f", … ({len(unknown) - 5} more)" if len(unknown) > 5 else "")
            reasons.append(f"{len(unknown)} file{'s' if len(unknown) != 1 else ''} of no known kind: {shown}")
        if not self.inputs and not self.problems:
            reasons.append("no input files (an empty directory or archive?)")
        return reasons

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
        raise UnknownFinding(fid, [f.id for f in self.findings])

    def incident_of(self, fid: str) -> Incident | None:
        """The incident finding `fid` belongs to (None: a standing error or a lone informational one)."""
        iid = self.finding(fid).incident
        return next((i for i in self.incidents if i.id == iid), None)

    def standing(self) -> list[Finding]:
        """Findings that recur at a steady rate all through the window: background, not causes."""
        return [f for f in self.findings if f.baseline is not None and f.baseline.kind == "standing"]

    def worst_severity(self) -> str | None:
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: SEVERITY_RANK.get(s, 0))

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "schema": SCHEMA,
            "inputs": [self._input(c) for c in self.inputs],
            "problems": [{"source": p.source, "message": p.message} for p in self.problems],
            "rule_errors": [e.to_dict() for e in self.rule_problems()],
            "rule_overrides": [o.to_dict() for o in self.rule_overrides()],
            "summary": self.summary.to_dict(),
            "verdict": self.verdict,
            "root_causes": list(self.root_causes),
            "incidents": [i.to_dict() for i in self.incidents],
            "findings": [f.to_dict() for f in self.findings],
            "advice": {fid: a.to_dict() for fid, a in self.advice.items()},
        }
        if self.timezone is not None:  # only with --tz: reports stay as they were otherwise
            out["timezone"] = self.timezone
        if self.clocks:  # only when some worker's clock is off: reports stay as they were otherwise
            out["clocks"] = list(self.clocks)
        if self.ignored:  # only when --ignore hid something: reports stay as they were otherwise
            out["ignored"] = [{"pattern": p, "findings": n} for p, n in self.ignored.items()]
        return out

    def _input(self, cov: Coverage) -> dict[str, object]:
        d = cov.to_dict()
        hint = self.log_format_hint(cov)
        if hint:
            d["notes"] = [*cov.notes, hint]
        return d

    def findings_frame(self) -> pl.DataFrame:
        rows = [{k: v for k, v in f.to_dict().items() if k not in ("evidence", "remediation", "references")}
                for f in self.findings]
        if not rows:
            return pl.DataFrame(schema={"id": pl.String, "rule": pl.String, "category": pl.String,
                                        "severity": pl.String, "confidence": pl.Float64, "title": pl.String,
                                        "count": pl.Int64})
        return pl.DataFrame(rows)


def with_offset(value: str | None, zone: ZoneInfo) -> str | None:
    """A naive ISO time as written, with `zone`'s UTC offset at that moment (the earlier one when a
    clock change makes it ambiguous); unchanged when it already has one or is no time."""
    if value is None:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return value
    if naive.tzinfo is not None:
        return value
    spec = "milliseconds" if "." in value else "seconds"
    return naive.replace(tzinfo=zone, fold=0).isoformat(timespec=spec)


def iso(value: object) -> str | None:
    """Timestamps as the report writes them: ISO-8601, milliseconds, no zone (logs carry none)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    return str(value).replace(" ", "T")


def summarize(spans: pl.DataFrame, tasks: pl.DataFrame, threads: pl.DataFrame,
              states: Mapping[str, int] | None = None) -> Summary:
    """The report's header from per-node spans (`pipeline.settle.host_spans`), tasks (or `states`: the
    count of every task by state, when `tasks` holds some tasks only) and threads, with times as the
    logs wrote them (like findings), whatever `tz` makes of the public frames."""
    hosts = sorted(h for h in spans.get_column("host").unique().to_list() if h) if spans.height else []
    first, last = (spans.select(pl.col("first_ts").min(), pl.col("last_ts").max()).row(0) if spans.height
                   else (None, None))
    counts = states
    rows = tasks.group_by("state").len().sort("state").rows() if tasks.height and counts is None else []
    return Summary(
        hosts=hosts,
        first_ts=iso(first),
        last_ts=iso(last),
        events=int(spans.get_column("records").sum()) if spans.height else 0,
        tasks_by_state=dict(sorted(counts.items())) if counts is not None else {str(s): int(n) for s, n in rows},
        threads=threads.height,
    )
