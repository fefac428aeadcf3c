"""The package's layers stay in data-flow order (`[tool.importlinter]` in pyproject.toml): bundle,
sources, analyses, pipeline, API, front ends; the rule engine never reaches up to the pipeline."""

from __future__ import annotations

import os
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0
