"""Renderer tests. Shared helpers: reports of real samples under a frozen rule set, and small
hand-built reports for one behaviour at a time."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from functools import cache
from pathlib import Path

from analyzer.api import open_bundle
from analyzer.bundle import Problem
from analyzer.diagnosis import diagnose
from analyzer.engine.catalogue import load_catalogue
from analyzer.findings import Evidence, Finding
from analyzer.renderers import Renderer, RenderOptions, registry, rule_infos
from analyzer.report import Report, Summary
from analyzer.sources.celery_log import Coverage
from tests.conftest import SAMPLES

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
# Frozen fixture rules (copies / simplifications of catalogue rules) so golden files change only
# when a renderer changes, not when others add rules to the catalogue.
GOLDEN_RULES = GOLDEN / "rules"
FORMATS = ("markdown", "html", "json", "sarif", "junit", "github", "terminal")


@cache
def sample_report(name: str, frozen_rules: bool = True) -> Report:
    """The report of `samples/<name>`: with the frozen fixture rules, or the live catalogue."""
    bundle = open_bundle([SAMPLES / name])
    if frozen_rules:
        return bundle.report(rule_dirs=[GOLDEN_RULES], builtin_rules=False)
    return bundle.report()


@cache
def frozen_options() -> RenderOptions:
    rules, errors = load_catalogue([GOLDEN_RULES], builtin=False)
    assert not errors, errors
    return RenderOptions(rules=rule_infos(rules))


@cache
def catalogue_options() -> RenderOptions:
    rules, _ = load_catalogue()
    return RenderOptions(rules=rule_infos(rules))


def renderer(fmt: str) -> Renderer:
    return registry()[fmt]


def finding(**kw: object) -> Finding:
    base: dict[str, object] = dict(rule="CP-X001", category="broker.connection_refused", severity="critical",
                                   confidence=0.9, title="Broker refuses connections", summary="summary",
                                   count=1, first_seen="2026-11-28T19:01:04.915",
                                   last_seen="2026-11-28T19:01:10.931", hosts=["w1@sample"],
                                   evidence=[Evidence("worker.log", 1, "line one")], evidence_total=1,
                                   remediation=["do this"])
    base.update(kw)
    return Finding(**base)  # type: ignore[arg-type]


def make_report(findings: list[Finding], *, sources: tuple[str, ...] = ("worker.log",),
                samples: list[tuple[int, str]] | None = None, problems: list[Problem] | None = None) -> Report:
    """A report around hand-made findings, ranked by the real diagnosis."""
    ordered, roots = diagnose(findings)
    inputs = [Coverage(s, "celery_log", lines=10, parsed=10 - len(samples or []),
                       unrecognized=len(samples or []), samples=list(samples or [])) for s in sources]
    return Report(inputs=inputs, kinds={s: "celery_log" for s in sources}, problems=list(problems or []),
                  findings=ordered, root_causes=roots,
                  summary=Summary(hosts=["w1@sample"], first_ts="2026-11-28T19:01:04.915",
                                  last_ts="2026-11-28T19:01:10.931", events=10))


def custom_layout_report() -> Report:
    """`samples/custom-log-format` with its worker log's INFO lines rewritten into a layout no detector
    reads (a time without a date, the level in lower case): its lines are read as records of layout
    unknown, nothing is found, the verdict is inconclusive with the `--log-format` hint."""
    return _custom_layout_report()


UNKNOWN_LAYOUT_BUNDLE = Path(tempfile.gettempdir()) / f"cpm-renderers-unknown-layout-{os.getpid()}"


@cache
def _custom_layout_report() -> Report:
    shutil.rmtree(UNKNOWN_LAYOUT_BUNDLE, ignore_errors=True)
    shutil.copytree(SAMPLES / "custom-log-format", UNKNOWN_LAYOUT_BUNDLE)
    log = UNKNOWN_LAYOUT_BUNDLE / "worker.log"
    infos = [re.match(rb"\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d),(\d{3}) INFO (.*)", line, re.S)
             for line in log.read_bytes().splitlines(keepends=True)]
    log.write_bytes(b"".join(m[1] + b"." + m[2] + b" info " + m[3] for m in infos if m))
    try:
        return open_bundle([UNKNOWN_LAYOUT_BUNDLE]).report(rule_dirs=[GOLDEN_RULES], builtin_rules=False)
    finally:
        shutil.rmtree(UNKNOWN_LAYOUT_BUNDLE, ignore_errors=True)


BROKEN_RULES = {
    "G-U010.toml": 'id = "G-U010"\ncategory = [\n',
    "G-U011.toml": '''id = "G-U011"
category = "task.exception"
severity = "warning"
title = "A rule with a broken regex"
what = "x"
why = "y"
on = "events"
when = 'message ~ "(unclosed"'
message = "{count} x"
remediation = ["z"]
''',
}


def broken_rules_report(tmp: Path) -> Report:
    """`samples/broker-refused` under the frozen rules plus a directory holding an invalid TOML
    file and a rule with a bad regex (written into `tmp`)."""
    d = tmp / "broken-rules"
    d.mkdir()
    for name, text in BROKEN_RULES.items():
        (d / name).write_text(text)
    return open_bundle([SAMPLES / "broker-refused"]).report(rule_dirs=[GOLDEN_RULES, d], builtin_rules=False)
