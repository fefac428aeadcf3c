"""Real dump samples for the parser tests, found by pattern (their pids are in their names and
change when the generator re-runs them); a missing sample skips the test that needs it."""

from __future__ import annotations

from pathlib import Path

from analyzer.sniff import sniff
from tests.conftest import SAMPLES


def sample(pattern: str) -> Path:
    found = sorted(p for p in SAMPLES.glob(pattern) if p.is_file())
    assert found, f"no sample matches samples/{pattern}: the committed samples are this test's fixtures"
    return found[0]


def kind_of(path: Path) -> str:
    with path.open("rb") as f:
        return sniff(f.read(4096))
