"""celery-postmortem: offline root-cause analysis of Celery incidents.

`open_bundle(path)` gives the polars frames of DESIGN.md and `Bundle.report()` the Report the
CLI renders.
"""

from analyzer.api import Bundle, open_bundle

__all__ = ["Bundle", "open_bundle"]
__version__ = "0.1.0"
