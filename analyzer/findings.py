"""Typed findings: what a rule matched, with its evidence, before diagnosis ranks them."""

from __future__ import annotations

from dataclasses import dataclass, field


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
            "remediation": list(self.remediation),
            "references": list(self.references),
        }
