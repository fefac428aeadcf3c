"""Where each bundle file is, as a path from the working directory.

SARIF and GitHub annotations are resolved against the repository's root (the directory a CI job
runs in): `worker.log` names nothing there, `incidents/0412/worker.log` names the file. Only files
read from disk under the working directory get such a path; archive members and files elsewhere
keep their bundle-relative names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from analyzer.bundle import Member, display_name


def artifact_paths(members: Sequence[Member], cwd: str | Path | None = None) -> tuple[tuple[str, str], ...]:
    """(source, POSIX path relative to `cwd`) for each member on disk under `cwd` (default: the
    working directory), in member order. Paths are not resolved: a bundle reached through a link
    is named as it was given."""
    base = Path(os.path.abspath(cwd if cwd is not None else os.getcwd()))
    out = []
    for m in members:
        if m.path is None:
            continue
        where = Path(os.path.abspath(str(m.path)))  # str(), not fspath: naming the file reads nothing
        try:
            rel = where.relative_to(base)
        except ValueError:
            continue
        out.append((m.name, display_name(rel.as_posix())))
    return tuple(out)
