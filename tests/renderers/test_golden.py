"""Golden outputs: each renderer on a handful of real samples, compared byte for byte.

The reports use the frozen fixture rules in `golden/rules/` (not the growing catalogue), so these
files change only when a renderer (or the parsers / diagnosis feeding it) changes. Output is
deterministic; the one volatile field, the tool version in SARIF, is normalised. Regenerate
after an intended change with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/renderers/test_golden.py

and review the diff.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.renderers import GOLDEN, frozen_options, renderer, sample_report

SAMPLES = ("broker-refused", "worker-sigkill", "app-exception", "healthy")
EXTENSIONS = {"markdown": "md", "html": "html", "json": "json", "sarif": "sarif.json", "junit": "junit.xml",
              "github": "github.txt"}
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def normalise(fmt: str, text: str) -> str:
    if fmt == "sarif":
        text = re.sub(r'"(version|semanticVersion)": "(?!2\.1\.0")[^"]*"', r'"\1": "<version>"', text)
    return text


@pytest.mark.parametrize("fmt", sorted(EXTENSIONS))
@pytest.mark.parametrize("sample", SAMPLES)
def test_output_matches_golden_file(sample: str, fmt: str) -> None:
    text = normalise(fmt, renderer(fmt)(sample_report(sample), frozen_options()))
    path = GOLDEN / f"{sample}.{EXTENSIONS[fmt]}"
    if UPDATE or not path.exists():
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"wrote missing golden file {path.name}; check it and rerun")
        return
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} differs; if the change is intended: UPDATE_GOLDEN=1 pytest {__file__}")


def test_rendering_twice_gives_identical_output() -> None:
    for fmt in EXTENSIONS:
        a = renderer(fmt)(sample_report("worker-sigkill"), frozen_options())
        b = renderer(fmt)(sample_report("worker-sigkill"), frozen_options())
        assert a == b, fmt
