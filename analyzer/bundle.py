"""Read a bundle (directories, files, gzip, tar, zip; several at once) into members.

This is the only module that reads the file system. Archives are never extracted to disk:
members are streamed into memory under size and ratio bounds, and anything that is not a
plain file with a safe relative name is refused with a message while the rest is kept.
Archive members are read in name order, the order a directory of the same files gives, so
the report does not depend on how the bundle was packed.
Plain files on disk stay on disk (`Member.path`), so parsers can memory-map big logs.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HEAD_BYTES = 4096
_NOT_NUL = re.compile(rb"[^\0]")


@dataclass(frozen=True)
class Limits:
    """Bounds that stop archive bombs and runaway inputs."""

    max_member_bytes: int = 2 << 30  # one decompressed member
    max_total_bytes: int = 8 << 30  # everything decompressed from one input
    max_ratio: float = 1000.0  # decompressed / compressed, checked once past `ratio_floor`
    ratio_floor: int = 16 << 20
    max_members: int = 100_000
    max_depth: int = 3  # archives inside archives


@dataclass(frozen=True)
class Member:
    """One artifact of the bundle: either a file on disk or bytes read from an archive."""

    name: str  # display name, used as `source` in every frame
    path: Path | None = None
    data: bytes | None = None

    def head(self, n: int = HEAD_BYTES) -> bytes:
        """The first `n` bytes after any leading run of NUL bytes: `logrotate copytruncate` leaves
        one (as long as the old file) before a log whose writer kept its offset, and sniffing
        must see the log, not the run."""
        if self.data is not None:
            start = 0
            if self.data[:1] == b"\0":
                found = _NOT_NUL.search(self.data)
                start = found.start() if found else len(self.data)
            return self.data[start:start + n]
        assert self.path is not None
        with self.path.open("rb") as f:
            head = f.read(n)
            while head[:1] == b"\0":  # all NUL so far: strip, or read on in big steps
                head = head.lstrip(b"\0") or f.read(1 << 20)
            return head[:n] if len(head) >= n else head + f.read(n - len(head))

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size


@dataclass(frozen=True)
class Problem:
    """Something in the bundle that was refused or could not be read; the rest goes on."""

    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclass
class Contents:
    members: list[Member] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class BundleError(Exception):
    """An input path that cannot be used at all (missing, unreadable)."""


GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"


def _is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


class _Budget:
    """Counts decompressed bytes for one input and refuses bombs."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0
        self.members = 0

    def read(self, stream: io.BufferedIOBase | io.RawIOBase | gzip.GzipFile, compressed: int | None,
             what: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            self.total += len(chunk)
            if size > self.limits.max_member_bytes:
                raise _Refused(f"{what} is larger than {self.limits.max_member_bytes} bytes decompressed")
            if self.total > self.limits.max_total_bytes:
                raise _Refused(f"more than {self.limits.max_total_bytes} bytes decompressed in this input")
            if compressed and size > self.limits.ratio_floor and size / compressed > self.limits.max_ratio:
                raise _Refused(f"{what} expands more than {self.limits.max_ratio:.0f}x (archive bomb?)")
            chunks.append(chunk)
        return b"".join(chunks)


class _Refused(Exception):
    pass


def safe_member_name(name: str) -> str | None:
    """A normalised relative name, or None for absolute names and traversal."""
    if not name or "\x00" in name:
        return None
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        return None
    norm = posixpath.normpath(n)
    if norm == ".." or norm.startswith("../") or norm == ".":
        return None
    return norm


def _strip_gz(name: str) -> str:
    if name.endswith(".tgz"):
        return name[:-4] + ".tar"
    return name[:-3] if name.endswith(".gz") else name


def _expand(name: str, data: bytes, budget: _Budget, depth: int, out: Contents, prefix: str) -> None:
    """Turn bytes into members, looking inside gzip/tar/zip by content, not by name.

    `name` is how this blob is shown; `prefix` is put before the names of its members if it
    turns out to be an archive (empty for the archive the user named, so members keep their
    own names).
    """
    head = data[:HEAD_BYTES]
    nested = depth < budget.limits.max_depth
    try:
        if nested and head.startswith(GZIP_MAGIC):
            inner = budget.read(gzip.GzipFile(fileobj=io.BytesIO(data)), len(data), name)
            _expand(_strip_gz(name), inner, budget, depth + 1, out, prefix)
            return
        if nested and _is_tar(head):
            _expand_tar(io.BytesIO(data), len(data), budget, depth, out, prefix, name)
            return
        if nested and head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
            _expand_zip(io.BytesIO(data), budget, depth, out, prefix)
            return
    except _Refused as exc:
        out.problems.append(Problem(name, f"refused: {exc}"))
        return
    except (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile) as exc:
        out.problems.append(Problem(name, f"unreadable archive: {exc}"))
        return
    budget.members += 1
    if budget.members > budget.limits.max_members:
        out.problems.append(Problem(name, f"refused: more than {budget.limits.max_members} members"))
        return
    out.members.append(Member(name, data=data))


def _member_order(name: str) -> tuple[str, ...]:
    """Sort key of an archive member: the order `_walk` gives the same files in a directory.

    Members are read in this order, not the archive's, so that a bundle gives the same report
    however it was packed (and the same as its directory).
    """
    return tuple((safe_member_name(name) or name).split("/"))


def _tar_headers(tar: tarfile.TarFile, limits: Limits, name: str,
                 out: Contents) -> tuple[list[tarfile.TarInfo], tarfile.TarError | None]:
    """The archive's member headers, up to `max_members`, and the error that ended the scan early.

    Only headers are read here (tarfile skips over the data), so sorting them before reading keeps
    the memory bound: member data is read one at a time afterwards, as before.
    """
    infos: list[tarfile.TarInfo] = []
    try:
        for info in tar:
            if len(infos) >= limits.max_members:
                out.problems.append(Problem(name, f"refused: more than {limits.max_members} members; "
                                                  "the rest is not read"))
                break
            infos.append(info)
    except tarfile.TarError as exc:
        return infos, exc
    return infos, None


def _expand_tar(fileobj: io.IOBase, compressed: int, budget: _Budget, depth: int, out: Contents,
                prefix: str, name: str) -> None:
    """The members of a tar in `_member_order`; a truncated tar keeps what it holds, then raises."""
    with tarfile.open(fileobj=fileobj, mode="r:") as tar:  # type: ignore[call-overload]
        infos, broken = _tar_headers(tar, budget.limits, name, out)
        for info in sorted(infos, key=lambda i: _member_order(i.name)):
            shown = prefix + info.name
            if info.isdir():
                continue
            safe = safe_member_name(info.name)
            if safe is None:
                out.problems.append(Problem(shown, "refused: absolute path or path traversal in archive"))
                continue
            if info.issym() or info.islnk():
                out.problems.append(Problem(shown, f"refused: link to {info.linkname!r} in archive"))
                continue
            if not info.isfile():
                out.problems.append(Problem(shown, "refused: device, fifo or other special file in archive"))
                continue
            try:
                stream = tar.extractfile(info)
                if stream is None:
                    out.problems.append(Problem(shown, "unreadable member"))
                    continue
                data = budget.read(stream, max(compressed, 1), shown)  # type: ignore[arg-type]
            except _Refused as exc:
                out.problems.append(Problem(shown, f"refused: {exc}"))
                if budget.total > budget.limits.max_total_bytes:
                    return
                continue
            except (tarfile.TarError, OSError, EOFError) as exc:
                out.problems.append(Problem(shown, f"unreadable member: {exc}"))
                continue
            _expand(prefix + safe, data, budget, depth + 1, out, prefix + safe + ":")
    if broken is not None:
        raise broken


def _expand_zip(fileobj: io.IOBase, budget: _Budget, depth: int, out: Contents, prefix: str) -> None:
    with zipfile.ZipFile(fileobj) as zf:  # type: ignore[arg-type]
        for info in sorted(zf.infolist(), key=lambda i: _member_order(i.filename)):
            shown = prefix + info.filename
            if info.is_dir():
                continue
            safe = safe_member_name(info.filename)
            if safe is None:
                out.problems.append(Problem(shown, "refused: absolute path or path traversal in archive"))
                continue
            mode = info.external_attr >> 16
            if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
                kind = "link" if stat.S_ISLNK(mode) else "special file"
                out.problems.append(Problem(shown, f"refused: {kind} in archive"))
                continue
            try:
                with zf.open(info) as stream:
                    data = budget.read(stream, max(info.compress_size, 1), shown)  # type: ignore[arg-type]
            except _Refused as exc:
                out.problems.append(Problem(shown, f"refused: {exc}"))
                continue
            except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as exc:
                out.problems.append(Problem(shown, f"unreadable member: {exc}"))
                continue
            _expand(prefix + safe, data, budget, depth + 1, out, prefix + safe + ":")


def _walk(root: Path) -> Iterator[Path]:
    """Files below root in a stable order; links are yielded (and refused later), not followed."""
    for p in sorted(root.iterdir(), key=lambda p: p.name):
        if p.is_dir() and not p.is_symlink():
            yield from _walk(p)
        else:
            yield p


def _read_file(path: Path, name: str, limits: Limits, out: Contents, prefix: str) -> None:
    """One file on disk: kept on disk if plain, expanded in memory if an archive."""
    try:
        st = path.lstat()
    except OSError as exc:
        out.problems.append(Problem(name, f"unreadable: {exc.strerror}"))
        return
    if stat.S_ISLNK(st.st_mode):
        out.problems.append(Problem(name, "refused: symbolic link (not followed)"))
        return
    if not stat.S_ISREG(st.st_mode):
        out.problems.append(Problem(name, "refused: not a regular file"))
        return
    try:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
            budget = _Budget(limits)
            if _is_tar(head):
                f.seek(0)
                _expand_tar(f, st.st_size, budget, 0, out, prefix, name)  # type: ignore[arg-type]
                return
            if head.startswith((GZIP_MAGIC, ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
                f.seek(0)
                _expand(name, f.read(), budget, 0, out, prefix)
                return
    except OSError as exc:
        out.problems.append(Problem(name, f"unreadable: {exc.strerror or exc}"))
        return
    except tarfile.TarError as exc:
        out.problems.append(Problem(name, f"unreadable archive: {exc}"))
        return
    out.members.append(Member(name, path=path))


def _distinct(roots: Sequence[Path]) -> tuple[list[int], list[Problem]]:
    """Indexes of the inputs to read: a path given twice, or one inside a directory also given,
    is read once (by real path), with a problem saying which input already covers it."""
    def real(p: Path) -> Path:  # a link is refused, not followed: it stands for itself
        return p.parent.resolve() / p.name if p.is_symlink() else p.resolve()

    reals = [real(r) for r in roots]
    dirs = [i for i, r in enumerate(roots) if r.is_dir() and not r.is_symlink()]
    keep: list[int] = []
    problems: list[Problem] = []
    for i, rp in enumerate(reals):
        same = next((j for j in keep if reals[j] == rp), None)
        inside = next((j for j in dirs if reals[j] in rp.parents), None)
        if same is not None:
            problems.append(Problem(roots[i].as_posix(), f"skipped: the same path as input {roots[same].as_posix()}"))
        elif inside is not None:
            problems.append(Problem(roots[i].as_posix(), f"skipped: read already as part of input "
                                                         f"{roots[inside].as_posix()}"))
        else:
            keep.append(i)
    return keep, problems


def _labels(roots: Sequence[Path]) -> list[str]:
    """For several inputs, how each one's members are named: a file or archive by the path it was
    given (`x/incident.tgz`), a directory by the shortest suffix of its absolute path that tells it
    from the others (`s`, or `a/s` and `b/s` for two directories named `s`).

    A label must differ from every other and must not start with another followed by `/` or `:`
    (a directory's members are `label/…`, an archive's `label:…`); a clashing directory label grows
    by one path component until it doesn't (or is the whole path). Given file paths cannot clash
    with each other: two equal ones are the same file, read once (`_distinct`).
    """
    parts = [Path(os.path.abspath(r)).parts for r in roots]
    grows = [r.is_dir() and not r.is_symlink() for r in roots]

    def label(i: int, k: int) -> str:
        if not grows[i]:
            return roots[i].as_posix()
        comps = parts[i][1:]  # without the root
        return "/".join(comps[-k:]) if k < len(comps) else Path(*parts[i]).as_posix()

    ks = [1] * len(roots)
    while True:
        labels = [label(i, k) for i, k in enumerate(ks)]
        owners: dict[str, list[int]] = {}
        for i, lab in enumerate(labels):
            owners.setdefault(lab, []).append(i)
        clash = {i for group in owners.values() if len(group) > 1 for i in group}
        for i, lab in enumerate(labels):
            for cut in (n for n, c in enumerate(lab) if c in "/:" and n):
                if lab[:cut] in owners:
                    clash.add(i)
                    clash.update(owners[lab[:cut]])
        grow = sorted(i for i in clash if grows[i] and ks[i] < len(parts[i]) - 1)
        if not grow:
            return labels
        for i in grow:
            ks[i] += 1


def read_bundle(paths: Sequence[str | Path], limits: Limits | None = None) -> Contents:
    """Every member of every input, with a problem entry for each thing refused.

    Names are relative to each input. With several inputs each one gets a label that tells it
    from the others (`_labels`): a directory's members are `label/worker.log` (its name, or as much
    of its path as needed: `a/s/worker.log`, `b/s/worker.log`), an archive's members
    `x/incident.tgz:worker.log`, and a file keeps the path it was given, so two `worker.log`
    stay apart. An input given twice, or a path inside a directory also given, is read once and
    noted as a problem (`_distinct`); if only one input is left, names are those of that input alone.
    """
    limits = limits or Limits()
    out = Contents()
    roots = [Path(raw) for raw in paths]
    for raw, root in zip(paths, roots, strict=True):
        if not root.exists() and not root.is_symlink():
            raise BundleError(f"{raw}: no such file or directory")
    keep, out.problems = _distinct(roots)
    many = len(keep) > 1
    labels = _labels([roots[i] for i in keep]) if many else [roots[i].name for i in keep]
    for i, label in zip(keep, labels, strict=True):
        root = roots[i]
        if root.is_dir() and not root.is_symlink():
            for p in _walk(root):
                rel = p.relative_to(root).as_posix()
                name = f"{label}/{rel}" if many else rel
                _read_file(p, name, limits, out, prefix=name + ":")
        else:
            _read_file(root, label, limits, out, prefix=f"{label}:" if many else "")
    return out
