"""The GitHub Action's script (analyzer/ci_action.py) run as action.yml runs it, on shipped samples,
with the step summary and outputs files pointed at temporary files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from analyzer.ci_action import CUT_NOTE, SUMMARY_LIMIT, summary_text
from tests.conftest import SAMPLES
from tests.renderers.test_sarif import validator

ROOT = SAMPLES.parent


def run_action(tmp: Path, path: str, **inputs: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CPM_", "GITHUB_"))}
    env |= {"CPM_PATH": path, "CPM_SARIF_FILE": str(tmp / "out" / "report.sarif"),
            "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"), "GITHUB_OUTPUT": str(tmp / "outputs")}
    env |= {f"CPM_{k.upper()}": v for k, v in inputs.items()}
    (tmp / "summary.md").write_text("earlier step\n")
    proc = subprocess.run([sys.executable, "-m", "analyzer.ci_action"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    text = (tmp / "outputs").read_text()
    outputs = {n: v for n, _, v in re.findall(r"(?ms)^([\w-]+)<<(ghadelimiter_[\w-]+)\n(.*?)\n\2$", text)}
    return proc, outputs


def test_a_root_cause_at_fail_on_fails_the_step_with_summary_sarif_and_annotations(tmp_path: Path) -> None:
    proc, outputs = run_action(tmp_path, "samples/worker-sigkill", fail_on="error")
    assert proc.returncode == 1, proc.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("earlier step\n## celery-postmortem\n")  # appended, not overwritten
    assert "**ROOT CAUSE: Pool child killed or died unexpectedly" in summary
    sarif = json.loads((tmp_path / "out" / "report.sarif").read_text())
    assert not list(validator().iter_errors(sarif))
    uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "samples/worker-sigkill/worker.log"  # resolves in the repository the job runs in
    assert proc.stdout.startswith("::error file=samples/worker-sigkill/worker.log,line=10,")
    assert outputs == {"sarif-file": str(tmp_path / "out" / "report.sarif"), "verdict": "unhealthy",
                       "root-cause": "Pool child killed or died unexpectedly", "exit-code": "1"}


def test_findings_below_fail_on_pass_and_inputs_reach_analyze(tmp_path: Path) -> None:
    proc, outputs = run_action(tmp_path, "samples/worker-sigkill", fail_on="critical", path_prefix="svc",
                               args="--ignore 'worker.lost'")
    assert proc.returncode == 0, proc.stderr
    assert "HEALTHY: no root cause found (1 finding ignored: worker.lost)" in (tmp_path / "summary.md").read_text()
    assert outputs["verdict"] == "healthy" and outputs["root-cause"] == "" and outputs["exit-code"] == "0"
    sarif = json.loads((tmp_path / "out" / "report.sarif").read_text())
    assert sarif["runs"][0]["results"] == []
    proc, _ = run_action(tmp_path, "samples/worker-sigkill", fail_on="")
    assert proc.returncode == 0 and proc.stdout.startswith("::error file=samples/worker-sigkill/worker.log")


def test_an_unreadable_input_fails_with_exit_two_and_still_summarises(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc, outputs = run_action(tmp_path, str(empty), fail_on="error")
    assert proc.returncode == 2 and "inconclusive" in proc.stderr
    assert "INCONCLUSIVE" in (tmp_path / "summary.md").read_text()
    assert outputs["verdict"] == "inconclusive" and outputs["exit-code"] == "2"


def test_summary_is_cut_at_a_line_under_githubs_limit() -> None:
    text = "| row |\n" * (SUMMARY_LIMIT // 4)
    cut = summary_text(text)
    assert len(cut.encode()) <= SUMMARY_LIMIT and cut.endswith(CUT_NOTE)
    assert cut.removesuffix(CUT_NOTE).endswith("| row |\n")
    assert summary_text("short\n") == "short\n"


def test_action_yml_installs_from_its_own_path_and_runs_the_script() -> None:
    action = (ROOT / "action.yml").read_text()
    assert "using: composite" in action
    venv = '"$RUNNER_TEMP/celery-postmortem/bin/python"'
    assert '"$CPM_PYTHON" -m venv "$RUNNER_TEMP/celery-postmortem"' in action
    assert f'{venv} -m pip install --disable-pip-version-check --quiet "$GITHUB_ACTION_PATH"' in action
    assert f"run: '{venv} -m analyzer.ci_action'" in action
    steps = action.split("runs:", 1)[1]
    assert "${{" not in "".join(line for line in steps.splitlines(keepends=True)
                                if not re.match(r"\s+CPM_\w+: \$\{\{ inputs\.[\w-]+ \}\}$", line))
    inputs = re.findall(r"(?m)^  ([\w-]+):\n    description:", action.split("outputs:")[0])
    assert inputs == ["path", "fail-on", "sarif-file", "path-prefix", "args", "python"]
    for name in inputs:  # inputs reach the shell as environment, never pasted into its code
        assert f"CPM_{name.upper().replace('-', '_')}: ${{{{ inputs.{name} }}}}" in steps


def test_example_workflow_uploads_the_sarif_the_action_wrote() -> None:
    doc = (ROOT / "docs" / "github-action.md").read_text()
    assert "uses: github/codeql-action/upload-sarif@v3" in doc
    assert "sarif_file: ${{ steps.cpm.outputs.sarif-file }}" in doc and "if: always()" in doc
    assert "security-events: write" in doc
