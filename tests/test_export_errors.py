"""Issue 16 item 12: `export` handles bad input as `analyze` does — one line on stderr and exit 2 for
a usage error (never a traceback), and what could not be read is said, as `analyze` says it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analyzer.cli import app

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
HEALTHY = SAMPLES / "healthy"


def _run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r.exit_code, r.stdout, r.stderr


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_an_unknown_time_zone_is_one_line_and_exit_two(tmp_path: Path) -> None:
    code, _, err = _run("export", str(HEALTHY), str(tmp_path / "out"), "--tz", "Nowhere/Atlantis")
    assert code == 2
    assert _one_line(err) == ("celery-postmortem: --tz: unknown time zone 'Nowhere/Atlantis'; "
                              "give an IANA name such as Europe/Berlin or UTC")
    assert not (tmp_path / "out").exists()  # refused before any work


def test_a_known_time_zone_still_exports(tmp_path: Path) -> None:
    code, out, err = _run("export", str(HEALTHY), str(tmp_path), "--tz", "Europe/Berlin", "--to", "csv")
    assert code == 0, err
    assert (tmp_path / "events.csv").exists() and "events.csv" in out


@pytest.mark.parametrize("args", [
    ["--log-format", "no placeholder at all"],  # a layout without a single %(field)s
    ["--rules", "/nonexistent/rules"],
], ids=["bad --log-format", "missing --rules"])
def test_option_errors_are_analyzes_line_and_exit_two(tmp_path: Path, args: list[str]) -> None:
    code, _, err = _run("export", str(HEALTHY), str(tmp_path / "out"), *args)
    a_code, _, a_err = _run("analyze", str(HEALTHY), *args)
    assert code == a_code == 2
    assert _one_line(err) == _one_line(a_err)
    assert not (tmp_path / "out").exists()


def test_a_missing_bundle_is_analyzes_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    code, _, err = _run("export", missing, str(tmp_path / "out"))
    assert code == 2 and _one_line(err) == _one_line(_run("analyze", missing)[2])


def test_a_target_that_is_a_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "frames"
    target.write_text("mine\n")
    code, _, err = _run("export", str(HEALTHY), str(target))
    assert code == 2
    assert _one_line(err) == f"celery-postmortem: {target}: not a directory"
    assert target.read_text() == "mine\n"


def test_a_target_below_a_file_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "frames"
    code, _, err = _run("export", str(HEALTHY), str(target))
    assert code == 2
    assert _one_line(err).startswith(f"celery-postmortem: {target}: cannot write: ")


def test_refused_members_are_printed_as_analyze_prints_them(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(HEALTHY / "worker.log", bundle / "worker.log")
    (bundle / "passwd").symlink_to("/etc/passwd")
    code, out, err = _run("export", str(bundle), str(tmp_path / "out"), "--to", "ndjson")
    # what was refused was not read, so nothing says the bundle is healthy: written, then exit 2
    assert code == 2, err
    assert "events.ndjson" in out and (tmp_path / "out" / "events.ndjson").stat().st_size > 0
    line = "problem: passwd: refused: symbolic link (not followed)"
    assert err.splitlines()[0] == line and "inconclusive" in err.splitlines()[1]
    assert line in _run("analyze", str(bundle), "--no-color")[1].splitlines()


def test_rule_errors_exit_two_with_analyzes_line_after_writing(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "CP-U010.toml").write_text('id = "CP-U010"\ntitle = "unterminated\n')
    code, out, err = _run("export", str(HEALTHY), str(tmp_path / "out"), "--rules", str(rules))
    assert code == 2
    assert (tmp_path / "out" / "findings.parquet").exists() and "findings.parquet" in out
    a_code, _, a_err = _run("analyze", str(HEALTHY), "--rules", str(rules), "-f", "json")
    assert a_code == 2
    last = err.strip().splitlines()[-1]
    assert last == _one_line(a_err) and "rule error" in last
    assert any(line.startswith(f"rule error: {rules / 'CP-U010.toml'}") for line in err.splitlines())


def test_an_inconclusive_bundle_is_exported_and_exits_two_like_analyze(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run("export", str(empty), str(tmp_path / "out"), "--to", "csv")
    a_code, _, a_err = _run("analyze", str(empty), "-f", "json")
    assert code == a_code == 2
    assert _one_line(err) == _one_line(a_err)
    assert (tmp_path / "out" / "coverage.csv").exists()
