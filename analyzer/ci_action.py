"""The GitHub Action's one step (`action.yml`): analyse an artifact, leave SARIF for upload, the
Markdown report in the job summary, annotations in the log, and exit as `--fail-on` says.

Run as `python -m analyzer.ci_action` in the job's working directory (the repository checkout), so
SARIF and annotation paths resolve there. It reads the action's inputs from the environment
`action.yml` sets (never from `${{ }}` pasted into a shell line):

- `CPM_PATH`: the artifact paths, one per line (directories, archives, files);
- `CPM_FAIL_ON`: critical, error, warning or info (empty: never fail on findings);
- `CPM_SARIF_FILE`: where to write the SARIF file;
- `CPM_PATH_PREFIX`: `--path-prefix`, for a repository checked out below the working directory;
- `CPM_ARGS`: more `analyze` arguments, split as a POSIX shell would (`--log-format '...'`);

and GitHub's `GITHUB_STEP_SUMMARY` and `GITHUB_OUTPUT` files (appended to; skipped when unset).
Outputs: `sarif-file`, `verdict`, `root-cause` (the first root cause's title) and `exit-code`.
The exit code is `analyze`'s: 0, 1 (findings at or above `fail-on`), 2 (unusable input, rule
errors, an inconclusive verdict).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

# GitHub refuses a step summary over 1 MiB; a longer report is cut at a line and says so
SUMMARY_LIMIT = 1_000_000
CUT_NOTE = "\n\n*(report cut: the step summary is limited to 1 MiB; the SARIF file has every finding)*\n"


def analyze_args(env: Mapping[str, str], sarif: Path, work: Path) -> list[str]:
    """The `analyze` command line for the inputs in `env`; reports go to `sarif` and into `work`."""
    paths = [p.strip() for p in env.get("CPM_PATH", "").splitlines() if p.strip()]
    if not paths:
        raise SystemExit("celery-postmortem action: the 'path' input is empty")
    args = [*paths, "-o", f"sarif={sarif}", "-o", f"markdown={work / 'report.md'}",
            "-o", f"json={work / 'report.json'}", "-o", f"github={work / 'annotations.txt'}"]
    if env.get("CPM_FAIL_ON", "").strip():
        args += ["--fail-on", env["CPM_FAIL_ON"].strip()]
    if env.get("CPM_PATH_PREFIX", "").strip():
        args += ["--path-prefix", env["CPM_PATH_PREFIX"].strip()]
    return [*args, *shlex.split(env.get("CPM_ARGS", ""))]


def summary_text(markdown: str) -> str:
    """The report as the step summary takes it (cut at a line under `SUMMARY_LIMIT` bytes)."""
    data = markdown.encode("utf-8")
    if len(data) <= SUMMARY_LIMIT:
        return markdown
    head = data[:SUMMARY_LIMIT - len(CUT_NOTE.encode())].decode("utf-8", "ignore")
    return head[:head.rfind("\n") + 1] + CUT_NOTE


def write_outputs(path: str, values: Mapping[str, str]) -> None:
    """Append `values` to the `GITHUB_OUTPUT` file, each in the multi-line form with a fresh delimiter."""
    with open(path, "a", encoding="utf-8") as out:
        for name, value in values.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def run(env: Mapping[str, str]) -> int:
    sarif = Path(env.get("CPM_SARIF_FILE") or "celery-postmortem.sarif")
    if sarif.parent != Path("."):
        sarif.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cpm-action-") as tmp:
        work = Path(tmp)
        cmd = [sys.executable, "-m", "analyzer", "analyze", *analyze_args(env, sarif, work)]
        code = subprocess.run(cmd, check=False).returncode  # its stderr line goes to the job log
        annotations = work / "annotations.txt"
        if annotations.exists():
            sys.stdout.write(annotations.read_text(encoding="utf-8"))
        report = work / "report.md"
        if report.exists() and env.get("GITHUB_STEP_SUMMARY"):
            with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as summary:
                summary.write(summary_text(report.read_text(encoding="utf-8")))
        verdict, root = "", ""
        if (work / "report.json").exists():
            doc = json.loads((work / "report.json").read_text(encoding="utf-8"))
            verdict = doc.get("verdict", "")
            roots = doc.get("root_causes") or []
            root = next((f["title"] for f in doc["findings"] if roots and f["id"] == roots[0]), "")
    if env.get("GITHUB_OUTPUT"):
        write_outputs(env["GITHUB_OUTPUT"], {"sarif-file": str(sarif) if sarif.exists() else "",
                                             "verdict": verdict, "root-cause": root, "exit-code": str(code)})
    return code


def main() -> None:
    sys.exit(run(os.environ))


if __name__ == "__main__":
    main()
