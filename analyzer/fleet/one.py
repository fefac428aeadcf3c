"""One bundle of many: open, report, render, and the facts the summary needs.

`analyze_one` is a pure function of a `Target` and `Settings` (both picklable), so a process pool
or a Dask worker runs it as is. Its reports are what `analyze BUNDLE -f FORMAT -o FILE` writes,
byte for byte: the same renderers and the same options.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from analyzer.fleet.sources import Target, is_url

if TYPE_CHECKING:
    from analyzer.pipeline.stream import Submit


@dataclass(frozen=True)
class Settings:
    """What `analyze` options say of every bundle (`formats`: the reports to render)."""

    formats: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    log_formats: tuple[str, ...] = ()
    tz: str | None = None
    redact: bool = True
    fail_on: str | None = None


@dataclass(frozen=True)
class Signature:
    """A finding as the summary counts it: category + rule + the rule's message template."""

    category: str
    rule: str
    template: str
    severity: str
    count: int
    first_seen: str | None
    last_seen: str | None
    root_cause: bool
    summary: str


@dataclass(frozen=True)
class Outcome:
    """One bundle's verdict and findings (redacted as its reports are), and its rendered reports."""

    name: str
    source: str
    size: int
    verdict: str  # healthy | unhealthy | inconclusive | error (it could not be read at all)
    worst: str | None = None
    findings: tuple[Signature, ...] = ()
    rule_errors: int = 0
    trouble: str = ""  # why `analyze` would exit 2 on this bundle
    reports: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # (format, text)

    @property
    def root(self) -> Signature | None:
        return next((s for s in self.findings if s.root_cause), None)


@contextmanager
def local_bundle(location: str) -> Iterator[str]:
    """A path the bundle reader can open: the location itself, or a private copy of a URL."""
    if not is_url(location):
        yield location
        return
    from analyzer.fleet.remote import fetched

    with fetched(location) as path:
        yield str(path)


def analyze_one(target: Target, settings: Settings, submit: Submit | None = None) -> Outcome:
    """`analyze` of one bundle; a bundle that cannot be read is an `error` outcome, not an exception
    (one bad bundle of hundreds stops nothing). `submit`: where the pieces of its big logs are
    mapped (`pipeline.stream.Submit`; default this process)."""
    from analyzer.bundle import BundleError
    from analyzer.fleet.remote import shown_location
    from analyzer.sources.log_format import LogFormatError

    source = shown_location(target.location)
    try:
        with local_bundle(target.location) as path:
            return _analyzed(target, source, path, settings, submit)
    except (BundleError, LogFormatError, OSError) as exc:
        return Outcome(target.name, source, target.size, "error", trouble=shown_location(str(exc)))


def _analyzed(target: Target, source: str, path: str, settings: Settings, submit: Submit | None) -> Outcome:
    from analyzer.api import open_bundle
    from analyzer.locations import artifact_paths
    from analyzer.redact import redact_report
    from analyzer.renderers import RenderOptions, registry, rule_infos

    bundle = open_bundle(path, rules=list(settings.rules) or None, log_formats=settings.log_formats, tz=settings.tz)
    if submit is not None:
        bundle.parse(submit=submit)
    report = bundle.report(select=settings.select, ignore=settings.ignore)
    if settings.tz is not None:
        report = report.in_zone(settings.tz)
    renderers = registry()
    figures: tuple[tuple[str, bytes], ...] = ()
    if "html" in settings.formats:
        from analyzer.plots import png_bytes

        figures = png_bytes(bundle, report, redact=settings.redact)
    options = RenderOptions(color=False, redact=settings.redact, rules=rule_infos(report.rules),
                            fail_on=settings.fail_on, plots=figures,
                            artifact_paths=artifact_paths(bundle.contents.members))
    reports = tuple((fmt, renderers[fmt](report, replace(options))) for fmt in settings.formats)
    shown = redact_report(report) if settings.redact else report
    return Outcome(target.name, source, target.size, shown.verdict, shown.worst_severity(),
                   signatures(shown), len(shown.rule_errors), trouble(shown), reports)


def signatures(report: object) -> tuple[Signature, ...]:
    """Each finding of `report` as a `Signature`, in the report's order (root causes first)."""
    from analyzer.report import Report

    assert isinstance(report, Report)
    templates = {r.id: r.message for r in report.rules}
    roots = set(report.root_causes)
    return tuple(Signature(f.category, f.rule, templates.get(f.rule, f.title), f.severity, f.count, f.first_seen,
                           f.last_seen, f.id in roots, f.summary) for f in report.findings)


def trouble(report: object) -> str:
    """Why `analyze` would exit 2 on this report (rule errors, inconclusive), or ""."""
    from analyzer.report import Report

    assert isinstance(report, Report)
    parts = []
    if report.rule_errors:
        parts.append(f"{len(report.rule_errors)} rule error(s)")
    reasons = report.inconclusive_reasons()
    if reasons:
        parts.append(f"inconclusive: {reasons[0]}")
    return "; ".join(parts)
