"""celery-postmortem: offline root-cause analysis of Celery incidents.

`open_bundle(path)` gives the polars frames of DESIGN.md and `Bundle.report()` the Report the
CLI renders.
"""

from typing import TYPE_CHECKING, Any

from analyzer.api import Bundle, open_bundle

if TYPE_CHECKING:
    import polars as pl

__all__ = ["Bundle", "analyze_many", "open_bundle"]
__version__ = "0.1.0"


def analyze_many(sources: Any, **options: Any) -> "pl.DataFrame":
    """Many bundles at once, one summary row each (`analyzer.fleet.many.analyze_many`)."""
    from analyzer.fleet.many import analyze_many as run

    return run(sources, **options)
