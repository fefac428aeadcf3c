"""One module per output format, one signature (`render(report, options) -> str`), one registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analyzer.report import Report


@dataclass(frozen=True)
class RenderOptions:
    color: bool = False
    width: int = 100
    max_evidence: int = 5


Renderer = Callable[[Report, RenderOptions], str]


def registry() -> dict[str, Renderer]:
    """Format name → renderer; imported lazily so `--help` stays instant."""
    from analyzer.renderers import json_report, terminal

    return {"terminal": terminal.render, "json": json_report.render}
