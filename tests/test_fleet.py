"""analyze-many (issue 18): each bundle's report equals `analyze` of it alone, the summary counts
what the samples' expected.json say, and the output does not depend on --jobs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analyzer import analyze_many
from analyzer.cli import app
from analyzer.fleet.sources import expand
from analyzer.fleet.summary import signatures_frame
from tests.conftest import SAMPLES

runner = CliRunner()
CHOSEN = ("app-exception", "broker-refused", "deadlock-lock", "healthy", "json-log", "retry-then-success",
          "worker-sigkill")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of bundles: copies of some samples (with their README, as a fleet directory may)."""
    root = tmp_path_factory.mktemp("fleet")
    for name in CHOSEN:
        shutil.copytree(SAMPLES / name, root / name)
    (root / "README.md").write_text("bundles of the night\n")
    return root


def _expected(name: str) -> dict[str, object]:
    return json.loads((SAMPLES / name / "expected.json").read_text())


def _many(fleet: Path, out: Path, jobs: int, *extra: str) -> tuple[int, str]:
    r = runner.invoke(app, ["analyze-many", str(fleet), "--out-dir", str(out), "-f", "json", "-f", "markdown",
                            "-f", "sarif", "--jobs", str(jobs), "--summary", "json", *extra])
    return r.exit_code, r.stdout


@pytest.fixture(scope="module")
def serial(fleet: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    out = tmp_path_factory.mktemp("serial")
    code, stdout = _many(fleet, out, 1)
    return out, code, stdout


def test_each_report_equals_analyze_of_the_bundle_alone(fleet: Path, serial: tuple[Path, int, str],
                                                         tmp_path: Path) -> None:
    out, code, _ = serial
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.{e}" for n in CHOSEN for e in ("json", "md", "sarif"))
    for name in CHOSEN:
        alone = tmp_path / name
        r = runner.invoke(app, ["analyze", str(fleet / name), "-o", f"json={alone}.json", "-o", f"markdown={alone}.md",
                                "-o", f"sarif={alone}.sarif"])
        assert r.exit_code == 0, r.output
        for ext in ("json", "md", "sarif"):
            assert (out / f"{name}.{ext}").read_bytes() == Path(f"{alone}.{ext}").read_bytes(), (name, ext)


def test_summary_counts_what_the_samples_expect(serial: tuple[Path, int, str]) -> None:
    summary = json.loads(serial[2])
    assert summary["schema"] == "celery-postmortem/summary@1"
    assert [b["bundle"] for b in summary["bundles"]] == sorted(CHOSEN)
    unhealthy = [n for n in CHOSEN if not _expected(n)["healthy"]]
    assert summary["verdicts"] == {"unhealthy": len(unhealthy), "healthy": len(CHOSEN) - len(unhealthy),
                                   "inconclusive": 0, "error": 0}
    for b in summary["bundles"]:
        root = _expected(b["bundle"])["root_cause"]
        assert (b["root_cause"] or {}).get("category") == root
    sigs = summary["signatures"]
    assert sum(s["root_cause_in"] for s in sigs) == len(unhealthy)
    by_cat: dict[str, list[str]] = {}
    for n in unhealthy:
        by_cat.setdefault(str(_expected(n)["root_cause"]), []).append(n)
    for s in sigs:
        if s["root_cause_in"]:
            assert s["bundles"] == sorted(s["bundles"])
            assert set(by_cat[s["category"]]) <= set(s["bundles"])
            assert s["first_seen"] is None or s["first_seen"] <= s["last_seen"]
    # two task.exception bundles (app-exception, json-log), one rule and template: one row counting both
    exc = [s for s in sigs if s["category"] == "task.exception" and s["root_cause_in"]]
    assert len(exc) == 1 and exc[0]["root_cause_in"] == 2 and exc[0]["bundles"] == ["app-exception", "json-log"]


def test_two_jobs_give_the_same_bytes_as_one(fleet: Path, serial: tuple[Path, int, str], tmp_path: Path) -> None:
    out, code, stdout = serial
    code2, stdout2 = _many(fleet, tmp_path, 2)
    assert (code2, stdout2) == (code, stdout)
    for p in out.iterdir():
        assert (tmp_path / p.name).read_bytes() == p.read_bytes(), p.name


def test_summary_formats_and_fail_on(fleet: Path, tmp_path: Path) -> None:
    outs = [f"{fmt}={tmp_path / ('s.' + fmt)}" for fmt in ("json", "markdown", "html", "terminal")]
    r = runner.invoke(app, ["analyze-many", str(fleet), "-j", "1", "--fail-on", "critical",
                            *(a for o in outs for a in ("-o", o))])
    assert r.exit_code == 1  # broker-refused is critical
    assert "broker.connection_refused" in r.stdout and "7 bundles" in r.stdout
    assert "<td>broker.connection_refused</td>" in (tmp_path / "s.html").read_text()
    assert "| broker-refused | unhealthy | critical |" in (tmp_path / "s.markdown").read_text()
    assert (tmp_path / "s.terminal").read_text() == r.stdout
    healthy = runner.invoke(app, ["analyze-many", str(fleet / "healthy"), str(fleet / "retry-then-success"),
                                  "-j", "1", "--fail-on", "warning"])
    assert healthy.exit_code == 0, healthy.output


def test_manifest_glob_and_same_names(fleet: Path, tmp_path: Path) -> None:
    other = tmp_path / "other" / "healthy"
    shutil.copytree(SAMPLES / "healthy", other)
    manifest = tmp_path / "night.txt"
    manifest.write_text(f"# failed runs\n{fleet / 'broker-refused'}\nother/healthy\n\n")
    targets = expand([str(manifest), str(fleet / "heal*")])
    assert [t.name for t in targets] == ["broker-refused", "healthy", "healthy-2"]
    assert all(t.size > 0 for t in targets)
    with pytest.raises(ValueError, match="matches nothing"):
        expand([str(tmp_path / "nothing-*")])


def test_an_unreadable_bundle_is_an_error_row_and_exit_two(fleet: Path, tmp_path: Path) -> None:
    coll = tmp_path / "coll"
    shutil.copytree(fleet / "healthy", coll / "healthy")
    (coll / "broken.tgz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)
    r = runner.invoke(app, ["analyze-many", str(coll), "-j", "1", "--summary", "json"])
    assert r.exit_code == 2
    assert "1 of 2 bundles could not be fully analysed, first: broken.tgz" in r.stderr
    rows = {b["bundle"]: b for b in json.loads(r.stdout)["bundles"]}
    assert rows["healthy"]["verdict"] == "healthy" and rows["broken.tgz"]["verdict"] in ("inconclusive", "error")


def test_python_api_returns_the_summary_frame(fleet: Path) -> None:
    df = analyze_many(fleet, jobs=1)
    assert df["bundle"].to_list() == sorted(CHOSEN)
    assert df.filter(df["bundle"] == "broker-refused")["root_category"].item() == "broker.connection_refused"
    sigs = signatures_frame(df)
    assert sigs["root_cause_in"].sum() == df.filter(df["verdict"] == "unhealthy").height


def test_usage_errors_exit_two_before_any_work(fleet: Path, tmp_path: Path) -> None:
    for args, said in ((["-f", "json"], "--out-dir"), (["--summary", "sarif"], "unknown format"),
                       (["--jobs", "0"], "at least 1"),
                       (["-o", str(tmp_path / "s.sarif")], "not sarif"), (["--fail-on", "fatal"], "unknown severity")):
        r = runner.invoke(app, ["analyze-many", str(fleet), *args])
        assert r.exit_code == 2 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    r = runner.invoke(app, ["analyze-many", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "no such file or directory" in r.stderr
