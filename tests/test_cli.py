"""The CLI: formats, exit codes, determinism, and the rules sub-commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from analyzer.cli import app
from tests.conftest import SAMPLES

runner = CliRunner()


def test_json_report_follows_the_contract() -> None:
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-refused"), "--format", "json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["schema"] == "celery-postmortem/report@1"
    assert rep["root_causes"] and rep["root_causes"][0] == rep["findings"][0]["id"]
    f = rep["findings"][0]
    assert f["category"] == "broker.connection_refused" and f["hosts"] == ["w1@sample"]
    assert {"source", "line", "text"} <= set(f["evidence"][0])
    log = next(i for i in rep["inputs"] if i["path"] == "worker.log")
    assert log["kind"] == "celery_log" and log["lines"] == log["parsed"] + log["unrecognized"]


def test_same_bundle_gives_byte_identical_json(tmp_path: Path) -> None:
    outs = []
    for i in range(2):
        out = tmp_path / f"r{i}.json"
        r = runner.invoke(app, ["analyze", str(SAMPLES / "app-exception"), "-f", "json", "-o", str(out)])
        assert r.exit_code == 0, r.output
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_healthy_bundle_has_no_root_cause_and_exit_zero_with_fail_on() -> None:
    r = runner.invoke(app, ["analyze", str(SAMPLES / "healthy"), "-f", "json", "--fail-on", "warning"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["root_causes"] == []


def test_fail_on_sets_exit_code_one_when_findings_reach_it() -> None:
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-refused"), "-f", "json", "--fail-on", "error"])
    assert r.exit_code == 1


def test_missing_path_and_bad_option_exit_two_with_one_line() -> None:
    r = runner.invoke(app, ["analyze", "/nonexistent/bundle"])
    assert r.exit_code == 2
    assert "no such file or directory" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = runner.invoke(app, ["analyze", str(SAMPLES / "healthy"), "--format", "yaml"])
    assert r.exit_code == 2 and "unknown format" in r.stderr
    r = runner.invoke(app, ["analyze", str(SAMPLES / "healthy"), "--fail-on", "fatal"])
    assert r.exit_code == 2


def test_terminal_report_names_the_root_cause_and_its_evidence() -> None:
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-refused"), "--no-color"])
    assert r.exit_code == 0
    assert r.stdout.startswith("ROOT CAUSE: Broker refuses connections")
    assert "worker.log:1:" in r.stdout and "\x1b[" not in r.stdout


def test_select_and_ignore_filter_rules() -> None:
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-refused"), "-f", "json", "--ignore", "broker"])
    assert all(not f["category"].startswith("broker.") for f in json.loads(r.stdout)["findings"])
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-refused"), "-f", "json", "--select", "CP-B001"])
    assert {f["rule"] for f in json.loads(r.stdout)["findings"]} == {"CP-B001"}


def test_python_dash_m_runs_the_cli() -> None:
    r = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(SAMPLES / "healthy"), "-f", "json"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and json.loads(r.stdout)["root_causes"] == []


def test_rules_list_show_and_test() -> None:
    r = runner.invoke(app, ["rules", "list"])
    assert r.exit_code == 0 and "CP-B001" in r.stdout
    r = runner.invoke(app, ["rules", "show", "CP-B001"])
    assert r.exit_code == 0 and r.stdout.startswith("# CP-B001: Broker refuses connections")
    assert "## What to do" in r.stdout
    r = runner.invoke(app, ["rules", "show", "CP-NOPE"])
    assert r.exit_code == 2


def test_rules_new_writes_a_template_that_fails_its_own_test(tmp_path: Path) -> None:
    r = runner.invoke(app, ["rules", "new", "CP-U001", "--dir", str(tmp_path)])
    assert r.exit_code == 0 and (tmp_path / "CP-U001.toml").exists()
    r = runner.invoke(app, ["rules", "test", str(tmp_path)])
    assert r.exit_code == 1 and "FAIL" in r.stdout


def test_user_rules_directory_adds_findings(tmp_path: Path) -> None:
    (tmp_path / "CP-U002-divide.toml").write_text('''
id = "CP-U002"
category = "task.exception"
severity = "warning"
title = "Division tasks fail"
what = "proj.divide fails."
why = "Our billing depends on it."
on = "events"
when = 'kind == "failed" and task_name == "proj.divide"'
message = "{count} proj.divide failures"
remediation = ["Validate the divisor before enqueueing."]
''')
    r = runner.invoke(app, ["analyze", str(SAMPLES / "app-exception"), "-f", "json", "--rules", str(tmp_path),
                            "--select", "CP-U002"])
    rep = json.loads(r.stdout)
    assert [(f["rule"], f["count"]) for f in rep["findings"]] == [("CP-U002", 3)]


def test_format_list_in_help_is_the_renderer_registry() -> None:
    """`--help` names the formats without importing the renderers; the two lists must not drift."""
    from analyzer.cli import FORMATS
    from analyzer.renderers import registry

    assert tuple(registry()) == FORMATS


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- errors are one line and exit 2, never a traceback -------------------------------------------


def test_unwritable_output_is_one_line_and_exit_two(tmp_path: Path) -> None:
    for target in (tmp_path / "missing" / "x.json", tmp_path):
        r = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(SAMPLES / "broker-tls"),
                            "-f", "json", "-o", str(target)], capture_output=True, text=True, check=False)
        assert r.returncode == 2, r.stderr
        assert _one_line(r.stderr).startswith(f"celery-postmortem: -o {target}: cannot write")


def test_rules_new_with_a_bad_id_and_rules_test_of_a_missing_dir_exit_two(tmp_path: Path) -> None:
    r = runner.invoke(app, ["rules", "new", "bad/id", "--dir", str(tmp_path)])
    assert r.exit_code == 2 and "bad/id" in _one_line(r.stderr)
    assert list(tmp_path.iterdir()) == []
    r = runner.invoke(app, ["rules", "test", str(tmp_path / "nonexistent")])
    assert r.exit_code == 2 and "no such file or directory" in _one_line(r.stderr)


# --- --fail-on ---------------------------------------------------------------------------------------


def test_help_lists_every_severity_for_fail_on() -> None:
    from analyzer.categories import SEVERITIES

    r = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "200"})
    flat = " ".join(r.stdout.split())
    assert all(s in flat.split("--fail-on", 1)[1][:200] for s in SEVERITIES)
    readme = (SAMPLES.parent / "README.md").read_text()
    assert "--fail-on critical|error|warning|info" in readme


def test_junit_claims_fail_on_only_when_given() -> None:
    r = runner.invoke(app, ["analyze", str(SAMPLES / "retry-then-success"), "-f", "junit"])
    assert r.exit_code == 0 and 'name="fail_on"' not in r.stdout
    r = runner.invoke(app, ["analyze", str(SAMPLES / "retry-then-success"), "-f", "junit", "--fail-on", "info"])
    assert r.exit_code == 1 and '<property name="fail_on" value="info" />' in r.stdout
