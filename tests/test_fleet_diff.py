"""diff BUNDLE --baseline HEALTHY (issue 18) on the samples: new findings, new message templates,
rates that moved; nothing when a bundle is compared with itself; the same bytes every run."""

from __future__ import annotations

import json

import polars as pl
from typer.testing import CliRunner

from analyzer.cli import app
from analyzer.fleet.diff import templates
from tests.conftest import SAMPLES

runner = CliRunner()


def _diff(bundle: str, baseline: str, *extra: str) -> tuple[int, str]:
    r = runner.invoke(app, ["diff", str(SAMPLES / bundle), "--baseline", str(SAMPLES / baseline), *extra])
    return r.exit_code, r.stdout


def test_broker_refused_against_healthy() -> None:
    code, out = _diff("broker-refused", "healthy", "-f", "json", "--fail-on", "critical")
    assert code == 1  # the new finding is critical
    d = json.loads(out)
    assert [(f["category"], f["root_cause"]) for f in d["new_findings"]] == [("broker.connection_refused", True)]
    new = {(t["level"], t["template"]) for t in d["new_templates"]}
    assert ("ERROR", "consumer: Cannot connect to redis://:**@<ip>/<n>: Error <n> connecting to <ip>. "
            "Connection refused..") in new
    assert d["templates_gone"] > 0  # the healthy run's task lines
    assert _diff("broker-refused", "healthy", "-f", "json")[1] == out  # same bytes


def test_fewer_tasks_per_hour_is_a_rate_that_moved() -> None:
    _, out = _diff("broker-blip-recovered", "healthy", "-f", "json")
    moved = {m["template"]: m for m in json.loads(out)["moved"]}
    received = moved["Task proj.add[<uuid>] received"]
    assert received["factor"] < 0.5 and received["count"] >= 3 and received["count_baseline"] >= 3


def test_a_bundle_against_itself_has_nothing_new() -> None:
    code, out = _diff("healthy", "healthy", "--fail-on", "info")
    assert code == 0
    assert out.count("none") == 3
    md = _diff("broker-refused", "healthy", "-f", "markdown")[1]
    assert "| critical | broker.connection_refused | CP-B001 | yes |" in md


def test_templates_mask_ids_and_numbers() -> None:
    events = pl.DataFrame({"source": ["a", "a"], "line": [1, 2], "ts": [None, None], "level": ["INFO", "INFO"],
                           "message": ["Task t[0f8e2c1a-1b2c-4d5e-8f90-123456789abc] succeeded in 0.5s: 3",
                                       "Task t[11111111-2222-4333-8444-555555555555] succeeded in 12s: 40"],
                           "text": ["", ""]},
                          schema_overrides={"ts": pl.Datetime("ms")})
    table, hours = templates(events)
    assert hours is None
    assert table.select("template", "count").rows() == [("Task t[<uuid>] succeeded in <n>s: <n>", 2)]
