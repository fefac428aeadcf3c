"""Bundles behind fsspec URLs (`s3://`, `gs://`, `http(s)://`, `file://`): listed, sized and copied to
a private temporary directory, where the bundle reader opens them as it opens local ones (the same
member names, so the same report).

Credentials come only from where fsspec and its back ends look (environment variables such as
`AWS_ACCESS_KEY_ID`, `FSSPEC_S3_ENDPOINT_URL`, the usual config files); what is shown of a URL in
a report or a summary has its user, password and query (signed URLs) taken out (`shown_location`).
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from analyzer.fleet.sources import NOTES, is_archive


class RemoteError(OSError):
    """A URL that cannot be read (no such object, no fsspec back end for its protocol)."""


def shown_location(location: str) -> str:
    """A URL without user, password, query or fragment; any other text with every URL in it so cut."""
    import re

    def cut(url: str) -> str:
        try:
            parts = urlsplit(url)
        except ValueError:
            return url
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    def whole(m: re.Match[str]) -> str:
        url = m.group(0).rstrip(".,;:)")
        return cut(url) + m.group(0)[len(url):]

    return re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+", whole, location)


def _fs(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - the [remote] extra
        raise RemoteError(f"{shown_location(url)}: reading URLs needs fsspec (pip install "
                          "'celery-postmortem[remote]')") from exc
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise RemoteError(f"{shown_location(url)}: {exc}") from None
    return fs, path


def _isdir(fs: Any, path: str) -> bool:
    try:
        return bool(fs.isdir(path))
    except Exception:  # an HTTP server may answer a file's URL with anything
        return False


def url_name(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    return posixpath.basename(path) or (urlsplit(url).hostname or "bundle")


def _child_url(url: str, fs: Any, child: str) -> str:
    """The URL of `child` (a path `fs` listed under `url`), in `url`'s own spelling."""
    protocol = urlsplit(url).scheme
    if protocol in ("http", "https"):
        return child  # HTTP listings give full URLs
    return f"{protocol}://{child.lstrip('/')}" if protocol != "file" else f"file://{child}"


def _entries(fs: Any, path: str) -> list[tuple[str, bool]]:
    """(path, is a directory) of what `fs` lists directly under `path`, sorted."""
    out = []
    for info in fs.ls(path, detail=True):
        name = info["name"].rstrip("/")
        if name.rstrip("/") == path.rstrip("/"):
            continue
        out.append((name, info.get("type") == "directory"))
    return sorted(out)


def expand_url(url: str) -> list[str]:
    """The bundles a URL names: itself, or each directory and archive under it when it is a
    directory of bundles (the rule of `sources.is_collection`)."""
    fs, path = _fs(url)
    if not _isdir(fs, path):
        if not fs.exists(path):
            raise RemoteError(f"{shown_location(url)}: no such object")
        return [url]
    entries = [(p, d) for p, d in _entries(fs, path) if not posixpath.basename(p).startswith(".")]
    bundles = [p for p, d in entries if d or is_archive(p)]
    others = [p for p, d in entries if p not in bundles
              and not posixpath.basename(p).lower().startswith(NOTES)]
    if bundles and not others:
        return [_child_url(url, fs, p) + ("/" if d else "") for p, d in entries if p in bundles]
    return [url]


def url_size(url: str) -> int:
    """Bytes under `url` (0 when the server does not say: an HTTP listing gives no sizes, so each
    file is asked for its length)."""
    fs, path = _fs(url)

    def size(name: str, known: object) -> int:
        if known is not None:
            return int(known)  # type: ignore[call-overload]
        try:
            return int(fs.size(name) or 0)
        except Exception:
            return 0

    try:
        if _isdir(fs, path):
            return sum(size(name, info.get("size")) for name, info in sorted(fs.find(path, detail=True).items()))
        return size(path, None)
    except Exception:
        return 0


@contextmanager
def fetched(url: str) -> Iterator[Path]:
    """A private local copy of the bundle at `url`, removed afterwards: a directory keeps its name
    and layout, a file its name (so member names are those of a local copy)."""
    fs, path = _fs(url)
    with tempfile.TemporaryDirectory(prefix="cpm-url-") as tmp:
        local = Path(tmp) / url_name(url)
        try:
            if _isdir(fs, path):
                local.mkdir()
                base = path.rstrip("/")
                for child in sorted(fs.find(path)):
                    rel = posixpath.relpath(child.rstrip("/"), base) if not child.startswith("http") \
                        else child[len(url.rstrip("/")):].lstrip("/")
                    if rel.startswith("..") or rel.startswith("/"):
                        continue
                    dest = local / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    fs.get_file(child, str(dest))
            else:
                fs.get_file(path, str(local))
        except FileNotFoundError:
            raise RemoteError(f"{shown_location(url)}: no such object") from None
        except RemoteError:
            raise
        except Exception as exc:
            raise RemoteError(f"{shown_location(url)}: cannot read: {shown_location(str(exc))}") from None
        yield local

