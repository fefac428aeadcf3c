"""Typed findings: what a rule matched, with its evidence, before diagnosis ranks them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Evidence:
    source: str
    line: int
    text: str  # the line(s) at `source:line` as written
    detail: str = ""  # what the rule's row says of it, when that is not the line itself (`quotes`)

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"source": self.source, "line": self.line, "text": self.text}
        if self.detail:
            d["detail"] = self.detail
        return d


MAX_TIMES = 4096


def thin(times: list[datetime]) -> tuple[datetime, ...]:
    """`times` sorted, at most `MAX_TIMES` of them, evenly picked (the shape of the series stays)."""
    times = sorted(times)
    if len(times) <= MAX_TIMES:
        return tuple(times)
    step = len(times) / MAX_TIMES
    return tuple(times[int(i * step)] for i in range(MAX_TIMES))


@dataclass(frozen=True)
class Baseline:
    """How a finding's occurrences spread over its hosts' window.

    `standing`: a steady low rate across the whole window, background rather than a cause;
    `burst`: a steady baseline with a burst above it (`burst_*`), which is what happened.
    """

    kind: str  # standing | burst
    rate_per_hour: float  # outside the burst, for a burst
    window_start: str
    window_end: str
    burst_start: str | None = None
    burst_end: str | None = None
    burst_count: int = 0

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"kind": self.kind, "rate_per_hour": self.rate_per_hour,
                                "window_start": self.window_start, "window_end": self.window_end}
        if self.kind == "burst":
            d.update(burst_start=self.burst_start, burst_end=self.burst_end, burst_count=self.burst_count)
        return d

    def describe(self) -> str:
        r = self.rate_per_hour
        rate = f"{r:.0f}/h" if r >= 10 else f"{r:.2g}/h"
        if self.kind == "standing":
            return f"standing error: a steady {rate} over {self.window_start} → {self.window_end}, not a cause"
        return (f"burst of {self.burst_count} from {self.burst_start} to {self.burst_end} against its "
                f"baseline of {rate}")


STATES = ("recovered", "still_failing", "unknown")


@dataclass
class Incident:
    """Findings linked by cause and effect, as one interval: start, end, and the state at the logs' end."""

    id: str
    root: str | None  # the earliest root cause among its findings
    findings: list[str]
    start: str | None
    end: str | None
    duration_s: float | None
    state: str  # one of STATES
    state_reason: str
    recovered_at: str | None = None
    hosts: list[str] = field(default_factory=list)
    state_evidence: list[Evidence] = field(default_factory=list)

    def headline(self) -> str:
        """`recovered after 12 s`, `still failing at the end of the logs`, `state at the end unknown`."""
        if self.state == "recovered":
            after = recovered_after(self.start, self.recovered_at)
            return f"recovered after {after}" if after else "recovered"
        if self.state == "still_failing":
            return "still failing at the end of the logs"
        return "state at the end of the logs unknown"

    def interval(self) -> str:
        if self.start is None:
            return "time unknown"
        if self.end is None or self.end == self.start:
            return self.start
        dur = f" ({duration(self.duration_s)})" if self.duration_s is not None else ""
        return f"{self.start} → {self.end}{dur}"

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "root_cause": self.root, "findings": list(self.findings), "start": self.start,
                "end": self.end, "duration_s": self.duration_s, "state": self.state,
                "state_reason": self.state_reason, "recovered_at": self.recovered_at, "hosts": list(self.hosts),
                "headline": self.headline(), "state_evidence": [e.to_dict() for e in self.state_evidence]}


def duration(seconds: float | None) -> str:
    """`12 s`, `4 min 5 s`, `2 h 10 min`."""
    if seconds is None:
        return "?"
    s = round(seconds)
    if s < 60:
        return f"{seconds:.3g} s" if seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min" if s % 3600 // 60 else f"{s // 3600} h"


def recovered_after(start: str | None, at: str | None) -> str | None:
    try:
        a, b = datetime.fromisoformat(start or ""), datetime.fromisoformat(at or "")
    except ValueError:
        return None
    return duration((b - a).total_seconds())


@dataclass
class Finding:
    """One rule's matches, grouped. `id`, `explains` and `explained_by` are set by diagnosis."""

    rule: str
    category: str
    severity: str
    confidence: float
    title: str
    summary: str
    count: int
    first_seen: str | None  # ISO-8601 without zone, as the logs write it
    last_seen: str | None
    hosts: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    evidence_total: int = 0
    remediation: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    explains_categories: list[str] = field(default_factory=list)  # from the rule
    id: str = ""
    explains: list[str] = field(default_factory=list)
    explained_by: list[str] = field(default_factory=list)
    because: dict[str, str] = field(default_factory=dict)  # explaining finding id → why that link holds
    incident: str | None = None  # the `Incident` it belongs to (none: a standing error, lone info)
    baseline: Baseline | None = None  # its rate over the window, when it has one (diagnosis)
    # when each occurrence happened (sorted; evenly thinned past `MAX_TIMES`): baselines and bursts
    times: tuple[datetime, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "rule": self.rule,
            "category": self.category,
            "severity": self.severity,
            "confidence": self.confidence,
            "title": self.title,
            "summary": self.summary,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "hosts": list(self.hosts),
            "tasks": list(self.tasks),
            "evidence": [e.to_dict() for e in self.evidence],
            "evidence_total": self.evidence_total,
            "explained_by": list(self.explained_by),
            "explains": list(self.explains),
            "because": dict(self.because),
            "incident": self.incident,
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "remediation": list(self.remediation),
            "references": list(self.references),
        }
