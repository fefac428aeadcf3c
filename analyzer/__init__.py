"""celery-postmortem: offline root-cause analysis of Celery incidents.

`open_bundle(path)` gives the polars frames of DESIGN.md and `Bundle.report()` the Report the
CLI renders.
"""

import os
from typing import TYPE_CHECKING, Any

# polars' allocator (jemalloc) keeps freed pages for 10 s by default: after each piece of a big log that
# is hundreds of MB nobody uses. Returned after 1 s, the peak of `analyze` on the 200 MB benchmark log
# falls from 979 to 807-843 MB for 0.6 s more system time; at once (0 ms), to 727 MB, but for 5.8 s
# more (madvise on every free). Set before polars loads; a user's own setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:1000,muzzy_decay_ms:0")

from analyzer.api import Bundle, open_bundle

if TYPE_CHECKING:
    import polars as pl

__all__ = ["Bundle", "analyze_many", "open_bundle"]
__version__ = "0.1.0"


def analyze_many(sources: Any, **options: Any) -> "pl.DataFrame":
    """Many bundles at once, one summary row each (`analyzer.fleet.many.analyze_many`)."""
    from analyzer.fleet.many import analyze_many as run

    return run(sources, **options)
