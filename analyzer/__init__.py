"""celery-postmortem: offline root-cause analysis of Celery incidents.

`open_bundle(path)` gives the polars frames of DESIGN.md and `Bundle.report()` the Report the
CLI renders.
"""

import os

# polars' allocator (jemalloc) keeps freed pages for seconds by default: after each piece of a big log
# that is hundreds of MB nobody uses. Returned at once, the peak of a 200 MB log falls from 744 to
# 605 MB (same CPU time, within noise). Set before polars loads; a user's own setting wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

from analyzer.api import Bundle, open_bundle

__all__ = ["Bundle", "open_bundle"]
__version__ = "0.1.0"
