"""What `analyze-many SOURCE...` names, as a sorted list of bundles.

A SOURCE is a directory of bundles (each sub-directory or archive in it is one bundle), a manifest
(a text file, one bundle path or URL a line, `#` comments), a glob (quoted, so the shell leaves it),
a URL, or a bundle itself (a directory holding files, an archive, a log). Expansion only lists
names and sizes; nothing is parsed here.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz")
# files a directory of bundles may hold besides its bundles
NOTES = ("readme", "manifest", "license")


class SourceError(ValueError):
    """A SOURCE that names nothing (missing path, empty glob, empty manifest)."""


@dataclass(frozen=True, order=True)
class Target:
    """One bundle: the name its reports are written under, where it is, and its size in bytes."""

    name: str
    location: str
    size: int


def is_url(text: str) -> bool:
    """`s3://…`, `https://…`, `file://…`: anything fsspec names with a protocol."""
    head, sep, _ = text.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").isalnum() and len(head) > 1


def is_archive(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += (Path(root) / f).lstat().st_size
            except OSError:
                continue
    return total


def _visible(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def is_collection(path: Path) -> bool:
    """A directory holding only bundles (directories, archives) and notes (README …): a directory of
    bundles. A directory with a log or any other file in it is one bundle."""
    if not path.is_dir():
        return False
    entries = _visible(path)
    bundles = [p for p in entries if p.is_dir() or is_archive(p.name)]
    others = [p for p in entries if p not in bundles and not p.name.lower().startswith(NOTES)]
    return bool(bundles) and not others


def _manifest_lines(path: Path) -> list[str] | None:
    """The bundles a manifest names (relative paths from its directory), or None when `path` is not
    one: a manifest is a small text file whose every line names an existing path or a URL."""
    if is_archive(path.name) or path.stat().st_size > 1 << 20:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    out = []
    for ln in lines:
        if is_url(ln):
            out.append(ln)
            continue
        p = Path(ln) if os.path.isabs(ln) else path.parent / ln
        if not p.exists():
            return None
        out.append(str(p))
    return out or None


def _locations(source: str) -> list[str]:
    if is_url(source):
        from analyzer.fleet.remote import expand_url

        return expand_url(source)
    path = Path(source)
    if not path.exists():
        if glob.has_magic(source):
            found = sorted(glob.glob(source))
            if not found:
                raise SourceError(f"{source}: the glob matches nothing")
            return found
        raise SourceError(f"{source}: no such file or directory")
    if is_collection(path):
        return [str(p) for p in _visible(path) if p.is_dir() or is_archive(p.name)]
    if path.is_file():
        listed = _manifest_lines(path)
        if listed is not None:
            return [loc for item in listed for loc in _locations(item)]
    return [source]


def bundle_name(location: str) -> str:
    """The last component of a path or URL (an archive keeps its name: `run-17.tgz`)."""
    if is_url(location):
        from analyzer.fleet.remote import url_name

        return url_name(location)
    return Path(os.path.abspath(location)).name or "bundle"


def expand(sources: Sequence[str]) -> list[Target]:
    """Every bundle the sources name, each once, sorted by name; two bundles of the same name get
    `-2`, `-3` … in the order of their locations, so report files never overwrite each other."""
    seen: dict[str, str] = {}
    for source in sources:
        for loc in _locations(source):
            key = loc if is_url(loc) else os.path.abspath(loc)
            seen.setdefault(key, loc)
    pairs = sorted((bundle_name(loc), key) for key, loc in seen.items())
    out, used = [], set()
    for name, key in pairs:
        unique, n = name, 1
        while unique in used:
            n += 1
            unique = f"{name}-{n}"
        used.add(unique)
        loc = seen[key]
        out.append(Target(unique, loc, _remote_size(loc) if is_url(loc) else _size(Path(loc))))
    return out


def _remote_size(location: str) -> int:
    from analyzer.fleet.remote import url_size

    return url_size(location)
