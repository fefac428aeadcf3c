"""Every sample bundle against its `expected.json` (format: samples/README.md).

One test per expectation, so a failure names the sample and the fact. Expectations listed in
`pending` run as strict expected failures: the day a capability lands they start passing, the
test fails, and the entry must move out of `pending` — nothing is dropped silently.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from analyzer import open_bundle
from analyzer.report import Report
from analyzer.sniff import sniff
from tests.conftest import SAMPLES, sample_dirs

Check = Callable[[], None]


@cache
def _load(sample: Path) -> tuple[Any, Report]:
    expected = json.loads((sample / "expected.json").read_text())
    formats = expected.get("log_format", [])
    bundle = open_bundle(sample, log_formats=formats)
    return bundle, bundle.report()


def _expected(sample: Path) -> dict[str, Any]:
    return json.loads((sample / "expected.json").read_text())


def check_ids(exp: dict[str, Any]) -> list[str]:
    """Every check an `expected.json` asks for, one id each."""
    ids = [key for key in ("healthy", "root_cause", "root_rule", "layout", "inputs", "hosts", "events", "tasks",
                           "threads", "cycles", "incidents", "standing")
           if key in exp]
    ids += [f"category:{cat}" for cat in exp.get("categories", [])]
    ids += [f"absent:{cat}" for cat in exp.get("absent", [])]
    return ids


def _cases() -> list[Any]:
    cases = []
    for sample in sample_dirs():
        exp = _expected(sample)
        pending: dict[str, str] = exp.get("pending", {})
        for check_id in check_ids(exp):
            reason = pending.get(check_id) or pending.get(check_id.split(":")[0])
            marks = [pytest.mark.xfail(strict=True, reason=f"pending: {reason}")] if reason else []
            cases.append(pytest.param(sample, check_id, id=f"{sample.name}:{check_id}", marks=marks))
    return cases


def live_cases(names: Sequence[str]) -> list[Any]:
    """(name, check id) params of the named samples' `expected.json` checks, for tests that regenerate
    them live; `pending` checks are left out (a capability not built yet: `_cases` holds them as
    strict xfails)."""
    cases = []
    for name in names:
        exp = _expected(SAMPLES / name)
        pending = exp.get("pending", {})
        for check_id in check_ids(exp):
            if check_id not in pending and check_id.split(":")[0] not in pending:
                cases.append(pytest.param(name, check_id, id=f"{name}:{check_id}"))
    return cases


def run_check(sample: Path, check_id: str) -> None:
    exp = _expected(sample)
    bundle, report = _load(sample)
    categories = {f.category for f in report.findings}
    if check_id == "healthy":
        causes = [report.finding(r).category for r in report.root_causes]
        assert report.healthy is exp["healthy"], f"root causes: {causes}"
    elif check_id == "root_cause":
        want = exp["root_cause"]
        got = report.finding(report.root_causes[0]).category if report.root_causes else None
        assert got == want, f"root causes: {[report.finding(r).category for r in report.root_causes]}"
    elif check_id == "root_rule":
        assert report.root_causes, "no root cause"
        root = report.finding(report.root_causes[0])
        cited = {f"{e.source}:{e.line}" for e in root.evidence}
        assert root.rule == exp["root_rule"]["rule"], root.rule
        assert set(exp["root_rule"]["evidence"]) <= cited, sorted(cited)
    elif check_id == "layout":
        covs = {c.source: c for c in bundle.coverage}
        for path, layout in exp["layout"].items():
            assert covs[path].layout == layout, (path, covs[path].layout)
            if layout == "logging" and not exp.get("log_format"):
                assert any(n.startswith("layout inferred: ") for n in covs[path].notes), covs[path].notes
    elif check_id == "inputs":
        for pattern, kind in exp["inputs"].items():  # a name, or a glob for names holding a pid
            paths = sorted(sample.glob(pattern))
            assert paths, f"no artifact {pattern}"
            for path in paths:
                assert sniff(path.read_bytes()[:4096]) == kind, path.name
    elif check_id == "hosts":
        hosts = set(bundle.events.get_column("host").drop_nulls().to_list())
        assert set(exp["hosts"]) <= hosts, hosts
    elif check_id == "events":
        got = Counter(bundle.events.get_column("kind").drop_nulls().to_list())
        assert {k: got.get(k, 0) for k in exp["events"]} == exp["events"]
    elif check_id == "tasks":
        got = Counter(bundle.tasks.get_column("state").to_list())
        assert {k: got.get(k, 0) for k in exp["tasks"]} == exp["tasks"]
    elif check_id == "threads":
        assert bundle.threads.height >= exp["threads"]["min"]
    elif check_id == "cycles":
        got = sorted((r["kind"], len(r["members"])) for r in bundle.cycles.iter_rows(named=True))
        want = sorted((c["kind"], c["members"]) for c in exp["cycles"])
        assert got == want
    elif check_id == "incidents":
        got = [{"root_cause": report.finding(i.root).category if i.root else None, "state": i.state,
                "start": i.start, "end": i.end} for i in report.incidents]
        assert got == exp["incidents"]
    elif check_id == "standing":
        assert sorted(f.category for f in report.standing()) == sorted(exp["standing"])
        assert not set(report.root_causes) & {f.id for f in report.standing()}
    elif check_id.startswith("category:"):
        assert check_id.split(":", 1)[1] in categories, sorted(categories)
    elif check_id.startswith("absent:"):
        assert check_id.split(":", 1)[1] not in categories, sorted(categories)
    else:  # pragma: no cover
        raise AssertionError(check_id)


@pytest.mark.parametrize(("sample", "check_id"), _cases())
def test_sample_expectation(sample: Path, check_id: str) -> None:
    run_check(sample, check_id)


def test_every_sample_has_expectations() -> None:
    produced = sorted(p.parent.name for p in Path(__file__).parent.parent.glob("samples/*/README.md"))
    with_expected = sorted(p.name for p in sample_dirs())
    assert produced == with_expected
