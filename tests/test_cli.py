"""The CLI: formats, exit codes, determinism, and the rules sub-commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analyzer.cli import app
from tests.conftest import SAMPLES
from tests.renderers import BROKEN_RULES

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


# --- nothing analysed: INCONCLUSIVE, exit 2 -------------------------------------------------------

CUSTOM = SAMPLES / "custom-log-format"
CUSTOM_FORMATS: list[str] = json.loads((CUSTOM / "expected.json").read_text())["log_format"]


def _unreadable_inputs(tmp_path: Path) -> dict[str, Path]:
    """Inputs that yield nothing: each made here the way an operator's bundle arrives broken."""
    empty = tmp_path / "EMPTY.log"
    empty.write_bytes(b"")
    garbage = tmp_path / "core.bin"
    garbage.write_bytes(os.urandom(8192))
    empty_dir = tmp_path / "empty-dir"
    empty_dir.mkdir()
    archive = tmp_path / "full.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(SAMPLES / "broker-tls", arcname="broker-tls")
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:400])
    fake_zip = tmp_path / "bundle.zip"
    fake_zip.write_text("this is not a zip archive\n")
    blank_first = tmp_path / "blank-first.log"  # blank lines, then records of no known layout
    blank_first.write_bytes(b"\n\n" + _unknown_layout())
    return {"empty file": empty, "binary garbage": garbage, "empty directory": empty_dir,
            "truncated tar.gz": truncated, "fake zip": fake_zip, "blank lines then an unknown layout": blank_first}


def _unknown_layout() -> bytes:
    """The custom-log-format sample's INFO lines in a layout no detector reads (time without a date, the
    level in lower case): `19:05:09.375 info [MainProcess] celery.…: Connected to redis://…`."""
    out = []
    for line in (CUSTOM / "worker.log").read_bytes().splitlines(keepends=True):
        m = re.match(rb"\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d),(\d{3}) INFO ", line)
        if m:
            out.append(m[1] + b"." + m[2] + b" info " + line[m.end():])
    return b"".join(out)


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_nothing_analysed_is_inconclusive_with_its_reason_and_exit_two(tmp_path: Path) -> None:
    reasons = {"empty file": "EMPTY.log is empty", "binary garbage": "core.bin",
               "empty directory": "no input files", "truncated tar.gz": "truncated.tar.gz: unreadable archive",
               "fake zip": "bundle.zip",
               "blank lines then an unknown layout": "blank-first.log: text in no known layout, read as records"}
    for what, path in _unreadable_inputs(tmp_path).items():
        r = runner.invoke(app, ["analyze", str(path), "--no-color"])
        assert r.exit_code == 2, (what, r.output)
        assert r.stdout.startswith("INCONCLUSIVE: nothing in the input could be analysed"), what
        assert "HEALTHY" not in r.stdout, what
        assert reasons[what] in r.stdout, (what, r.stdout)
        line = _one_line(r.stderr)
        assert "inconclusive" in line and reasons[what] in line, (what, line)
        r = runner.invoke(app, ["analyze", str(path), "-f", "json"])
        assert r.exit_code == 2, what
        rep = json.loads(r.stdout)
        assert rep["verdict"] == "inconclusive" and rep["root_causes"] == [], what


def test_inconclusive_report_is_still_written_to_the_output_file(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    empty = tmp_path / "EMPTY.log"
    empty.write_bytes(b"")
    r = runner.invoke(app, ["analyze", str(empty), "-f", "json", "-o", str(out), "--fail-on", "info"])
    assert r.exit_code == 2 and r.stdout == ""
    assert json.loads(out.read_text())["verdict"] == "inconclusive"


def test_custom_layout_is_learned_without_log_format_and_named_in_the_coverage() -> None:
    rep = json.loads(runner.invoke(app, ["analyze", str(CUSTOM), "-f", "json"]).stdout)
    assert rep["verdict"] == "unhealthy" and rep["root_causes"]
    log = next(i for i in rep["inputs"] if i["path"] == "worker.log")
    assert log["parsed"] == log["lines"]
    assert any(n.startswith("layout inferred: '%(asctime)s %(levelname)-8s [%(processName)s] %(name)s: "
                            "%(message)s'") for n in log["notes"]), log["notes"]
    args = [a for f in CUSTOM_FORMATS for a in ("--log-format", f)]  # the override still works
    r = runner.invoke(app, ["analyze", str(CUSTOM), "-f", "json", *args])
    assert r.exit_code == 0 and r.stderr == ""
    rep = json.loads(r.stdout)
    assert rep["verdict"] == "unhealthy" and rep["root_causes"]
    assert not any("--log-format" in n for i in rep["inputs"] for n in i.get("notes", []))


def test_unknown_layout_without_findings_is_inconclusive_with_the_hint(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_bytes(_unknown_layout())
    r = runner.invoke(app, ["analyze", str(log), "--no-color"])
    assert r.exit_code == 2
    assert r.stdout.startswith("INCONCLUSIVE")
    flat = " ".join(r.stdout.split())
    assert "worker.log: text in no known layout, read as records and nothing found in them" in flat
    assert "--log-format '<worker_log_format>'" in flat
    assert "--log-format" in _one_line(r.stderr)
    for fmt, marker in (("markdown", "**INCONCLUSIVE"), ("html", "INCONCLUSIVE"), ("github", "::error title=")):
        r = runner.invoke(app, ["analyze", str(log), "-f", fmt])
        assert r.exit_code == 2 and marker in r.stdout, fmt
        assert "no known layout" in r.stdout and "--log-format" in r.stdout, fmt


def test_a_log_mostly_in_an_unknown_layout_makes_the_bundle_inconclusive(tmp_path: Path) -> None:
    """A healthy worker's log behind more lines of a custom layout than it has lines itself: the unread
    part holds a task failure, so what was read cannot vouch for the bundle."""
    log = tmp_path / "worker.log"
    log.write_bytes(_unknown_layout() * 3 + (SAMPLES / "healthy" / "worker.log").read_bytes())
    r = runner.invoke(app, ["analyze", str(log), "-f", "json"])
    assert r.exit_code == 2 and "a worker log could not be read" in r.stderr
    rep = json.loads(r.stdout)
    assert rep["verdict"] == "inconclusive" and rep["root_causes"] == []
    (inp,) = rep["inputs"]
    assert inp["unrecognized"] > inp["parsed"] > 0
    assert any(n.startswith(f"only {inp['parsed']} of {inp['lines']} lines parsed") and "--log-format" in n
               for n in inp["notes"])
    r = runner.invoke(app, ["analyze", str(log), "--no-color"])
    assert r.stdout.startswith("INCONCLUSIVE: a worker log could not be read; nothing wrong in the rest")
    # the same with the other inputs of a bundle read fine: still not healthy
    r = runner.invoke(app, ["analyze", str(log), str(SAMPLES / "fd-exhaustion" / "ulimit.txt")])
    assert r.exit_code == 2 and r.stdout.startswith("INCONCLUSIVE: a worker log could not be read")


def test_healthy_samples_stay_healthy_and_exit_zero() -> None:
    for name in ("healthy", "retry-then-success"):
        r = runner.invoke(app, ["analyze", str(SAMPLES / name), "-f", "json", "--fail-on", "warning"])
        assert r.exit_code == 0 and r.stderr == "", name
        assert json.loads(r.stdout)["verdict"] == "healthy", name


# --- rule options -----------------------------------------------------------------------------------

def _bad_rules(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    for name, text in BROKEN_RULES.items():  # an invalid TOML file and a rule with a bad regex
        (d / name.replace("G-", "CP-")).write_text(text.replace('"G-', '"CP-'))
    return d


def test_select_or_ignore_naming_no_rule_exits_two_naming_it() -> None:
    for option in ("--select", "--ignore"):
        r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-tls"), option, "CP-NOPE"])
        assert r.exit_code == 2 and r.stdout == ""
        assert f"{option} CP-NOPE matches no rule" in _one_line(r.stderr)
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-tls"), "--select", "broker", "--ignore", "CP-B0",
                            "--select", "broker.tls", "-f", "json"])
    assert r.exit_code == 0, r.stderr


def test_missing_rules_directory_exits_two() -> None:
    for args in (["analyze", str(SAMPLES / "broker-tls")], ["rules", "list"], ["rules", "show", "CP-B001"]):
        r = runner.invoke(app, [*args, "--rules", "/nonexistent/rules"])
        assert r.exit_code == 2, args
        assert "--rules /nonexistent/rules: no such file or directory" in _one_line(r.stderr)


def test_rule_errors_reach_every_format_the_other_rules_run_and_exit_two(tmp_path: Path) -> None:
    d = _bad_rules(tmp_path)
    toml, regex = str(d / "CP-U010.toml"), str(d / "CP-U011.toml")
    base = ["analyze", str(SAMPLES / "broker-tls"), "--rules", str(d)]
    r = runner.invoke(app, [*base, "-f", "json"])
    assert r.exit_code == 2
    assert "2 rule errors" in _one_line(r.stderr)
    rep = json.loads(r.stdout)
    assert [f["rule"] for f in rep["findings"] if f["id"] in rep["root_causes"]] == ["CP-B011"]
    errors = {e["source"]: e for e in rep["rule_errors"]}
    assert set(errors) == {toml, regex}
    assert errors[toml]["message"].startswith("invalid TOML")
    assert errors[regex]["line"] == 8 and "invalid regex" in errors[regex]["message"]
    assert rep["problems"] == []

    r = runner.invoke(app, [*base, "-f", "junit"])
    assert r.exit_code == 2
    xml = tmp_path / "junit.xml"
    xml.write_text(r.stdout)
    from junitparser import Error, JUnitXml

    (suite,) = list(JUnitXml.fromfile(str(xml)))
    broken = {c.name: c for c in suite if c.classname == "rules"}
    assert set(broken) == {f"rule error {toml}", f"rule error {regex}:8"}
    assert all(isinstance(c.result[0], Error) for c in broken.values())
    assert suite.errors == 2 and suite.failures == 1

    r = runner.invoke(app, [*base, "-f", "github"])
    assert r.exit_code == 2
    lines = r.stdout.splitlines()
    assert f"::error file={toml},title=celery-postmortem rule error::invalid TOML" in "\n".join(lines)
    assert any(line.startswith(f"::error file={regex},line=8,") for line in lines)
    assert any("CP-B011" in line for line in lines)

    for fmt in ("terminal", "markdown", "html", "sarif"):
        r = runner.invoke(app, [*base, "-f", fmt, "--no-color"])
        assert r.exit_code == 2 and "CP-U011.toml" in r.stdout and "broker.tls" in r.stdout, fmt


def test_select_of_a_rule_that_failed_to_load_reports_the_load_error(tmp_path: Path) -> None:
    d = _bad_rules(tmp_path)
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-tls"), "--rules", str(d), "--select", "CP-U010"])
    assert r.exit_code == 2
    line = _one_line(r.stderr)
    assert "--select CP-U010 matches no rule" in line and "invalid TOML" in line
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-tls"), "--rules", str(d), "--select", "CP-U011",
                            "-f", "json"])
    assert r.exit_code == 2 and "rule error" in r.stderr
    assert {e["source"] for e in json.loads(r.stdout)["rule_errors"]} == {str(d / "CP-U010.toml"),
                                                                       str(d / "CP-U011.toml")}


def test_user_rule_replacing_a_built_in_one_is_said_in_the_report(tmp_path: Path) -> None:
    shipped = next((SAMPLES.parent / "rules").rglob("CP-B011*.toml"))
    d = tmp_path / "ours"
    d.mkdir()
    ours = d / "CP-B011.toml"
    ours.write_text(shipped.read_text().replace('title = "', 'title = "Ours: ', 1))
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-tls"), "--rules", str(d), "-f", "json"])
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["findings"][0]["rule"] == "CP-B011" and rep["findings"][0]["title"].startswith("Ours: ")
    assert rep["rule_overrides"] == [{"rule": "CP-B011", "source": str(ours),
                                      "replaces": shipped.relative_to(SAMPLES.parent).as_posix()}]
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-tls"), "--rules", str(d), "--no-color"])
    assert "rule override: CP-B011 from" in " ".join(r.stdout.split())
    r = runner.invoke(app, ["rules", "list", "--rules", str(d)])
    assert r.exit_code == 0 and "replaces the built-in rule CP-B011" in r.stderr
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-tls"), "-f", "json"])
    assert json.loads(r.stdout)["rule_overrides"] == []


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


def test_rules_new_refuses_a_shipped_id_unless_asked_to_replace_it(tmp_path: Path) -> None:
    # a TODO template under CP-B001 would stand in for "Broker refuses connections" when loaded
    r = runner.invoke(app, ["rules", "new", "CP-B001", "--dir", str(tmp_path)])
    assert r.exit_code == 2 and "CP-B001 is a shipped rule" in r.stderr and not list(tmp_path.iterdir())
    r = runner.invoke(app, ["rules", "new", "CP-B001", "--dir", str(tmp_path), "--replace"])
    assert r.exit_code == 0 and (tmp_path / "CP-B001.toml").exists()


# --- command-line conventions (issue "A tool that fits the hand") ----------------------------------


def test_version_and_short_help() -> None:
    from analyzer import __version__

    assert runner.invoke(app, ["--version"]).stdout.strip() == f"celery-postmortem {__version__}"
    for args in (["-h"], ["analyze", "-h"], ["rules", "-h"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0 and "Usage:" in r.stdout


def test_format_names_any_case_and_a_near_miss_is_named() -> None:
    r = runner.invoke(app, ["analyze", str(SAMPLES / "healthy"), "--format", "JSON"])
    assert r.exit_code == 0 and json.loads(r.stdout)["verdict"] == "healthy"
    r = runner.invoke(app, ["analyze", str(SAMPLES / "healthy"), "--format", "sarf"])
    assert r.exit_code == 2 and "did you mean 'sarif'?" in r.stderr
    r = runner.invoke(app, ["analyze", str(SAMPLES / "healthy"), "--select", "CP-B0001"])
    assert r.exit_code == 2 and "did you mean CP-B001?" in r.stderr


def test_several_outputs_take_their_format_from_the_name(tmp_path: Path) -> None:
    sarif, page, md = tmp_path / "r.sarif", tmp_path / "r.html", tmp_path / "notes"
    r = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(SAMPLES / "broker-refused"), "-o", str(sarif),
                        "-o", str(page), "-o", f"markdown={md}"], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # every report went to its file
    assert json.loads(sarif.read_text())["version"] == "2.1.0"
    assert page.read_text().lstrip().lower().startswith("<!doctype html")
    assert md.read_text().startswith("#")
    r = runner.invoke(app, ["analyze", str(SAMPLES / "healthy"), "-o", str(tmp_path / "r.weird")])
    assert r.exit_code == 2 and "FORMAT=" in r.stderr and not (tmp_path / "r.weird").exists()


def test_outputs_are_checked_before_the_analysis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import analyzer.api

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("the bundle was opened before the outputs were checked")

    monkeypatch.setattr(analyzer.api, "open_bundle", boom)
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = runner.invoke(app, ["analyze", str(SAMPLES / "healthy"), "--plots", str(afile)])
    assert r.exit_code == 2 and "--plots" in r.stderr and "not a directory" in r.stderr
    r = runner.invoke(app, ["analyze", str(SAMPLES / "healthy"), "-o", str(tmp_path / "no" / "dir" / "r.json")])
    assert r.exit_code == 2 and "no such directory" in r.stderr


def test_standard_input_and_named_pipes_are_read(tmp_path: Path) -> None:
    log = (SAMPLES / "broker-refused" / "worker.log").read_bytes()
    r = subprocess.run([sys.executable, "-m", "analyzer", "analyze", "-", "-f", "json"], input=log,
                       capture_output=True, check=False)
    doc = json.loads(r.stdout)
    assert doc["inputs"][0]["path"] == "stdin" and doc["findings"][0]["category"] == "broker.connection_refused"
    fifo = tmp_path / "worker.log"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", "analyze", str(fifo), "-f", "json"],
                            stdout=subprocess.PIPE)
    with fifo.open("wb") as w:
        w.write(log)
    out, _ = proc.communicate(timeout=120)
    assert json.loads(out)["inputs"][0]["path"] == "worker.log"


def test_colour_follows_no_color_and_force_color(monkeypatch: pytest.MonkeyPatch) -> None:
    from analyzer import cli

    monkeypatch.setattr(cli.sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli._colour_wanted() is False
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert cli._colour_wanted() is True
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("NO_COLOR", "")  # set but empty: no opinion (no-color.org)
    assert cli._colour_wanted() is True


def test_terminal_width_follows_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from analyzer import cli

    monkeypatch.setenv("COLUMNS", "80")
    assert cli._terminal_width() == 80
    monkeypatch.setenv("COLUMNS", "20")
    assert cli._terminal_width() == 60


# --- CI: paths that resolve in the repository, honest verdicts under --ignore, plain help --------


def _sarif_uris(text: str) -> set[str]:
    run = json.loads(text)["runs"][0]
    return {loc["physicalLocation"]["artifactLocation"]["uri"] for res in run["results"] for loc in res["locations"]}


def test_sarif_and_github_paths_are_relative_to_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.renderers.test_sarif import validator

    monkeypatch.chdir(SAMPLES.parent)
    r = runner.invoke(app, ["analyze", "samples/worker-sigkill", "-f", "sarif"])
    assert r.exit_code == 0, r.output
    assert not list(validator().iter_errors(json.loads(r.stdout)))
    assert _sarif_uris(r.stdout) == {"samples/worker-sigkill/worker.log"}
    r = runner.invoke(app, ["analyze", str(SAMPLES / "worker-sigkill"), "-f", "github"])  # absolute, still under
    assert r.stdout.startswith("::error file=samples/worker-sigkill/worker.log,line=10,")


def test_a_bundle_outside_the_working_directory_keeps_bundle_relative_paths(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["analyze", str(SAMPLES / "worker-sigkill"), "-f", "sarif"])
    assert _sarif_uris(r.stdout) == {"worker.log"}


def test_path_prefix_goes_before_every_sarif_and_github_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.renderers.test_sarif import validator

    monkeypatch.chdir(SAMPLES.parent)
    r = runner.invoke(app, ["analyze", "samples/worker-sigkill", "-f", "sarif", "--path-prefix", "backend/"])
    assert not list(validator().iter_errors(json.loads(r.stdout)))
    assert _sarif_uris(r.stdout) == {"backend/samples/worker-sigkill/worker.log"}
    r = runner.invoke(app, ["analyze", "samples/worker-sigkill", "-f", "github", "--path-prefix", "backend"])
    assert r.stdout.startswith("::error file=backend/samples/worker-sigkill/worker.log,line=10,")


def test_verdict_says_when_ignore_hid_findings() -> None:
    args = ["analyze", str(SAMPLES / "worker-sigkill"), "--ignore", "worker.lost"]
    md = runner.invoke(app, [*args, "-f", "markdown"]).stdout
    assert "**HEALTHY: no root cause found (1 finding ignored: worker.lost)**" in md
    html = runner.invoke(app, [*args, "-f", "html"]).stdout
    assert "HEALTHY: no root cause found (1 finding ignored: worker.lost)</p>" in html
    rep = json.loads(runner.invoke(app, [*args, "-f", "json"]).stdout)
    assert rep["verdict"] == "healthy" and rep["ignored"] == [{"pattern": "worker.lost", "findings": 1}]
    assert "ignored" not in json.loads(runner.invoke(app, [*args[:2], "-f", "json"]).stdout)


def test_an_unhealthy_verdict_also_says_what_was_ignored() -> None:
    r = runner.invoke(app, ["analyze", str(SAMPLES / "hard-time-limit"), "--ignore", "CP-W", "-f", "markdown"])
    first = next(line for line in r.stdout.splitlines() if line.startswith("**ROOT CAUSE"))
    assert first.endswith("(1 finding ignored: CP-W)**")


def test_help_shows_names_a_user_types_not_python_types() -> None:
    for args in (["analyze"], ["export"], ["rules", "test"], ["rules", "new"], ["rules", "list"], ["rules"], []):
        r = runner.invoke(app, [*args, "-h"], env={"COLUMNS": "200"})
        assert r.exit_code == 0, r.output
        for label in ("<list[", "<bool>", "<str>", "<path>", "{", "}"):
            assert label not in r.stdout, (args, label, r.stdout)
    usage = runner.invoke(app, ["analyze", "-h"], env={"COLUMNS": "200"}).stdout
    assert "analyze [OPTIONS] PATH...\n" in "\n".join(x.strip() for x in usage.splitlines())
    flat = " ".join(usage.split())
    assert "--rules DIR " in flat and "--ignore RULE " in flat and "--fail-on SEVERITY " in flat
    assert "--path-prefix DIR " in flat
    assert "[DIR...]" in runner.invoke(app, ["rules", "test", "-h"], env={"COLUMNS": "200"}).stdout


def test_standard_input_is_named_stdin_even_when_the_working_directory_holds_its_copy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.chdir(tempfile.gettempdir())  # where the copy of standard input is made
    log = (SAMPLES / "worker-sigkill" / "worker.log").read_bytes()
    r = runner.invoke(app, ["analyze", "-", "-f", "sarif"], input=log)
    assert _sarif_uris(r.stdout) == {"stdin"}


def test_a_fresh_templates_examples_fail_until_filled_in(tmp_path: Path) -> None:
    runner.invoke(app, ["rules", "new", "CP-U001", "--dir", str(tmp_path)])
    r = runner.invoke(app, ["rules", "test", str(tmp_path)])
    path = tmp_path / "CP-U001.toml"
    assert r.exit_code == 1 and r.stdout.splitlines()[-1] == "1 rule, 2 failures"
    assert (f"FAIL {path}:22: CP-U001 example 2 no_match: still the template's placeholder; fill it in with a real "
            "log line the rule must not match") in " ".join(r.stdout.split())
    text = path.read_text().replace("TODO: paste a real log line the rule must match",
                                    "[2026-11-28 19:01:04,915: ERROR/MainProcess] proj.step failed")
    path.write_text(text.replace("TODO: paste a real log line the rule must not match",
                                 "[2026-11-28 19:01:04,915: INFO/MainProcess] proj.step ok")
                    .replace("TODO: a pattern from a real log line", "proj.step failed"))
    r = runner.invoke(app, ["rules", "test", str(tmp_path)])
    assert r.exit_code == 0 and r.stdout.splitlines()[-1] == "1 rule, 0 failures", r.stdout


def test_a_bad_regex_in_a_user_rule_is_its_error_at_its_file_and_line(tmp_path: Path) -> None:
    runner.invoke(app, ["rules", "new", "CP-U001", "--dir", str(tmp_path)])
    path = tmp_path / "CP-U001.toml"
    path.write_text(path.read_text().replace("TODO: a pattern from a real log line", "proj.(step"))
    r = runner.invoke(app, ["rules", "test", str(tmp_path)])
    assert r.exit_code == 1
    assert f"error {path}:9:9: in 'when': invalid regex 'proj.(step': unclosed group (at character 6)" in r.stdout
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-refused"), "--rules", str(tmp_path)])
    assert r.exit_code == 2
    report = " ".join(r.stdout.split())
    assert f"rule error: {path}:9:9: in 'when': invalid regex 'proj.(step': unclosed group" in report
    for internal in ("str.contains", "This error occurred", "regex parse error"):
        assert internal not in r.stdout + r.stderr


# --- analyze --tz: times keep their value as written and gain the zone's offset -----------------------


def _times(doc: dict) -> list[str | None]:
    return [doc["summary"]["first_seen"], doc["summary"]["last_seen"],
            *(t for f in doc["findings"] for t in (f["first_seen"], f["last_seen"])),
            *(t for i in doc["incidents"] for t in (i["start"], i["end"], i["recovered_at"]))]


@pytest.mark.parametrize(("zone", "offset"), [("Europe/Berlin", "+01:00"), ("America/New_York", "-05:00")])
def test_tz_gives_every_report_time_its_offset_and_keeps_its_value(zone: str, offset: str) -> None:
    from tests.renderers.test_json_schema import errors  # against the report's own schema

    plain = json.loads(runner.invoke(app, ["analyze", str(SAMPLES / "broker-blip-recovered"), "-f", "json"]).stdout)
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-blip-recovered"), "-f", "json", "--tz", zone])
    assert r.exit_code == 0, r.output
    zoned = json.loads(r.stdout)
    assert errors(zoned) == []
    assert zoned["timezone"] == zone and "timezone" not in plain
    before, after = _times(plain), _times(zoned)
    assert any(t is not None for t in before) and len(before) == len(after)
    for a, b in zip(before, after, strict=True):  # December: standard time in both zones
        assert (a is None and b is None) or b == a + offset
    assert zoned["findings"][0]["summary"] == plain["findings"][0]["summary"]  # quoted as the logs wrote it


def test_tz_in_summer_and_on_the_ambiguous_hour() -> None:
    from zoneinfo import ZoneInfo

    from analyzer.report import with_offset

    berlin = ZoneInfo("Europe/Berlin")
    assert with_offset("2026-07-01T12:00:00", berlin) == "2026-07-01T12:00:00+02:00"
    assert with_offset("2026-01-01T12:00:00.250", berlin) == "2026-01-01T12:00:00.250+01:00"
    assert with_offset("2026-10-25T02:30:00", berlin) == "2026-10-25T02:30:00+02:00"  # the earlier of the two
    assert with_offset("2026-01-01T12:00:00+00:00", berlin) == "2026-01-01T12:00:00+00:00"
    assert with_offset(None, berlin) is None


def test_tz_names_an_unknown_zone_before_any_work() -> None:
    r = runner.invoke(app, ["analyze", str(SAMPLES / "broker-refused"), "--tz", "Mars/Olympus"])
    assert r.exit_code == 2 and "--tz: unknown time zone 'Mars/Olympus'" in r.stderr
