"""The JSON report of DESIGN.md: deterministic (same bundle, same bytes)."""

from __future__ import annotations

import json

from analyzer.renderers import RenderOptions
from analyzer.report import Report


def render(report: Report, options: RenderOptions) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
