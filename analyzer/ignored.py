"""What `--ignore` hid: without it a verdict of HEALTHY could sit above `tasks: LOST 1`.

The report is drawn once more without the ignore patterns (the bundle's frames are cached, so this
costs the rules' evaluation only) and each finding of it that a pattern names is counted against
the first such pattern.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.engine.catalogue import pattern_hits
from analyzer.report import Report


def hidden_counts(full: Report, ignore: Sequence[str]) -> dict[str, int]:
    """Pattern → findings of `full` it names (each finding counted once, for its first pattern),
    in the patterns' order; patterns that name none are left out."""
    counts = dict.fromkeys(ignore, 0)
    for f in full.findings:
        first = next((p for p in ignore if pattern_hits(f.rule, f.category, p)), None)
        if first is not None:
            counts[first] += 1
    return {p: n for p, n in counts.items() if n}
