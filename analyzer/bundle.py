"""Read a bundle (directories, files, gzip, tar, zip; several at once) into members.

This is the only module that reads the file system. Archives are never extracted to disk:
members are streamed into memory under size and ratio bounds, and anything that is not a
plain file with a safe relative name is refused with a message while the rest is kept.
Archive members are read in name order, the order a directory of the same files gives, so
the report does not depend on how the bundle was packed.
Plain files on disk stay on disk (`Member.path`), so parsers can memory-map big logs; the path
is pinned to the file that was checked (`PinnedPath`), so swapping it for a link later reads
nothing.

Every decompression is streamed (`_Decoded`): each call yields at most `CHUNK` bytes, and each
chunk is charged to the bundle's budget (`_Budget`) before more is inflated: a total across
inputs and nesting levels, and a ratio against the compressed bytes read from disk, not against
the layer below (a zip of zips of zips is measured against the file's size).

Names are shown as `display_name` gives them: bytes that are not UTF-8 and control characters
escaped (`caf\\xe9/worker.log`), so no report or terminal receives them raw.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import io
import os
import posixpath
import re
import stat
import struct
import tarfile
import weakref
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PosixPath
from typing import IO, Any, Protocol, cast

HEAD_BYTES = 4096
CHUNK = 1 << 20  # most bytes one decompression call may produce, and one read of a member
_INPUT_CHUNK = 64 << 10  # compressed bytes fed to a decoder at a time (keeps the ratio check tight)
_NOT_NUL = re.compile(rb"[^\0]")


@dataclass(frozen=True)
class Limits:
    """Bounds that stop archive bombs and runaway inputs."""

    max_member_bytes: int = 2 << 30  # one decompressed member
    max_total_bytes: int = 8 << 30  # everything decompressed in one bundle, at every nesting level
    # decompressed bytes kept from one input / its compressed bytes read from disk, checked once
    # past `ratio_floor`
    max_ratio: float = 1000.0
    ratio_floor: int = 16 << 20
    max_wasted_bytes: int = 64 << 20  # decompressed then refused in one input before the rest is given up
    max_members: int = 100_000
    max_depth: int = 3  # archives inside archives


# --- names ---------------------------------------------------------------------------------

def display_name(name: str) -> str:
    """`name` as reports show it: bytes that were not UTF-8 (surrogates, as `os.fsdecode` and
    tarfile give them) as `\\xNN`, control, format and other non-printable characters as
    `\\xNN` / `\\uNNNN`, so a name never carries an escape sequence, a newline or a surrogate."""
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else _escape(c) for c in name)


def _escape(c: str) -> str:
    n = ord(c)
    if 0xDC80 <= n <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{n - 0xDC00:02x}"
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def _zip_name(info: zipfile.ZipInfo) -> str:
    """A zip member's name as bytes decoded like a file name on disk: UTF-8, bytes that are not
    as surrogates. zipfile reads names without the UTF-8 flag as cp437, but Linux tools write
    them in the locale's encoding (UTF-8 or Latin-1): the original bytes tell."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    return raw.decode("utf-8", errors="surrogateescape")


@dataclass(frozen=True)
class Problem:
    """Something in the bundle that was refused or could not be read; the rest goes on."""

    source: str
    message: str
    unread: bool = True  # something was not read (False: an input given twice, read once)

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


def _problem(source: str, message: str, unread: bool = True) -> Problem:
    return Problem(display_name(source), display_name(message), unread)


# --- files on disk, pinned to what was checked ----------------------------------------------

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class _Pin:
    """The identity (device, inode) of a file as `read_bundle` checked it. A later read that
    reaches another file (the path swapped for a link, or replaced) reads nothing and adds a
    problem, once, to the bundle's problems."""

    def __init__(self, st: os.stat_result, name: str, problems: list[Problem]) -> None:
        self.ident = (st.st_dev, st.st_ino)
        self.name = name
        self.problems = problems
        self.lost = False
        self.held: int | None = None  # a descriptor kept open for a path polars cannot take (`PinnedPath`)

    def hold(self, path: str) -> str | None:
        """`/proc/self/fd/N` of a checked descriptor kept open while this pin lives, or None."""
        if self.held is None:
            self.held = self.open_fd(path)
            if self.held is None:
                return None
            weakref.finalize(self, os.close, self.held)
        return f"/proc/self/fd/{self.held}"

    def open_fd(self, path: str) -> int | None:
        """A descriptor of the checked file, opened without following a link, or None."""
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            self._lose("changed after it was checked (now a symbolic link): not read" if exc.errno == errno.ELOOP
                       else f"unreadable after it was checked: {exc.strerror}")
            return None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != self.ident or not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self._lose("changed after it was checked (replaced by another file): not read")
            return None
        return fd

    def _lose(self, message: str) -> None:
        if not self.lost:
            self.lost = True
            self.problems.append(_problem(self.name, message))


class PinnedPath(PosixPath):
    """A path that only ever reaches the file `read_bundle` checked (`_Pin`).

    Parsers read members by path (polars memory-maps big logs, gdb opens cores), so the check is
    in the two doors every access goes through: `open` reads through a descriptor opened with
    `O_NOFOLLOW` and compared (`fstat`) with the checked file; `__fspath__` (used by `os.stat`,
    `io.open`, polars and subprocess) makes the same check and gives `/dev/null` for a changed
    file. Paths derived from it (`parent`, `/`) are plain paths.
    """

    _pin: _Pin | None = None

    def __fspath__(self) -> str:
        path = super().__fspath__()
        if self._pin is None:
            return path
        if not _utf8(path) and os.path.isdir("/proc/self/fd"):
            # polars takes only UTF-8 paths (a Latin-1 name would be "not a file"): it gets the
            # descriptor's, which also reaches nothing but the checked file
            return self._pin.hold(path) or os.devnull
        fd = self._pin.open_fd(path)
        if fd is None:
            return os.devnull
        os.close(fd)
        return path

    def open(self, mode: str = "r", buffering: int = -1, encoding: str | None = None,  # type: ignore[override]
             errors: str | None = None, newline: str | None = None) -> IO[Any]:
        if self._pin is None or any(c in mode for c in "wax+"):
            return super().open(mode, buffering, encoding, errors, newline)
        fd = self._pin.open_fd(super().__fspath__())
        if fd is None:
            return open(os.devnull, mode, buffering, encoding, errors, newline)
        return open(fd, mode, buffering, encoding, errors, newline)


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _pinned(path: Path, pin: _Pin) -> PinnedPath:
    p = PinnedPath(path)
    p._pin = pin
    return p


@dataclass(frozen=True)
class Member:
    """One artifact of the bundle: either a file on disk or bytes read from an archive."""

    name: str  # display name (`display_name`), used as `source` in every frame
    path: Path | None = None
    data: bytes | None = None

    def open(self) -> IO[bytes]:
        """The member's bytes; a pinned file on disk through a checked descriptor."""
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        return self.path.open("rb")

    def head(self, n: int = HEAD_BYTES) -> bytes:
        """The first `n` bytes after any leading run of NUL bytes: `logrotate copytruncate` leaves
        one (as long as the old file) before a log whose writer kept its offset, and sniffing
        must see the log, not the run. The run is read 1 MB at a time, holes of a sparse file
        skipped, so a GB-long run costs neither memory nor much time."""
        if self.data is not None:
            start = 0
            if self.data[:1] == b"\0":
                found = _NOT_NUL.search(self.data)
                start = found.start() if found else len(self.data)
            return self.data[start:start + n]
        with self.open() as f:
            head = f.read(n)
            while head[:1] == b"\0":  # all NUL so far: strip, or read on in big steps
                head = head.lstrip(b"\0")
                if not head:
                    _skip_hole(f)
                    head = f.read(1 << 20)
                    if not head:
                        break
            return head[:n] if len(head) >= n else head + f.read(n - len(head))

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        with self.open() as f:
            return f.read()

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size


def _skip_hole(f: IO[bytes]) -> None:
    """Move past a hole of a sparse file (it reads as NUL bytes), if the system says where it ends."""
    try:
        pos = f.tell()
        try:
            data = os.lseek(f.fileno(), pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: a hole up to the end
                return
            data = f.seek(0, os.SEEK_END)
        if data > pos:
            f.seek(data)
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return


@dataclass
class Contents:
    members: list[Member] = field(default_factory=list)
    # what was refused or unreadable; a pinned file found changed when it is read adds its entry here then
    problems: list[Problem] = field(default_factory=list)


class BundleError(Exception):
    """An input path that cannot be used at all (missing, unreadable)."""


GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"


def _is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def _is_archive(head: bytes) -> bool:
    return head.startswith((GZIP_MAGIC, ZIP_MAGIC, EMPTY_ZIP_MAGIC)) or _is_tar(head)


# --- the budget -----------------------------------------------------------------------------

class _Refused(Exception):
    """A decompression refused; `stream` is the one whose output broke the bound (None: a
    member's own size)."""

    def __init__(self, message: str, stream: _Decoded | None = None) -> None:
        super().__init__(message)
        self.stream = stream


class _GiveUp(_Refused):
    """Nothing more is read from this input (or, past the total, from any input): every enclosing
    archive stops."""


class _Corrupt(Exception):
    """Compressed data that ends early or goes bad; what came before it stands."""

    def __init__(self, message: str, stream: _Decoded) -> None:
        super().__init__(message)
        self.stream = stream


class _Meter:
    """One input file: compressed bytes read from disk (the furthest offset read, so a zip whose
    entries overlap is not counted twice), and bytes decompressed from it still kept or wasted."""

    def __init__(self) -> None:
        self.disk = 0
        self.kept = 0
        self.wasted = 0


class _Budget:
    """Counts decompressed bytes across the bundle and refuses bombs as they inflate."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0
        self.members = 0

    def charge(self, n: int, stream: _Decoded) -> None:
        lim, meter = self.limits, stream.meter
        self.total += n
        meter.kept += n
        stream.produced += n
        if meter.wasted > lim.max_wasted_bytes:
            raise _GiveUp(f"more than {lim.max_wasted_bytes} bytes decompressed and refused in this input "
                          "(archive bomb?); the rest of it is not read", stream)
        if self.total > lim.max_total_bytes:
            raise _GiveUp(f"more than {lim.max_total_bytes} bytes decompressed in this bundle (archive bomb?); "
                          "the rest is not read", stream)
        if meter.kept > lim.ratio_floor and meter.kept > lim.max_ratio * max(meter.disk, 1):
            raise _Refused(f"{stream.name} expands more than {lim.max_ratio:.0f}x the {meter.disk} compressed bytes "
                           "read from disk (archive bomb?)", stream)

    def waste(self, stream: _Decoded) -> None:
        """`stream`'s output is thrown away: it no longer counts as kept, but as waste, and an
        input that wastes too much is given up at its next charge."""
        meter = stream.meter
        meter.kept -= stream.produced
        meter.wasted += stream.produced
        stream.produced = 0


# --- streams --------------------------------------------------------------------------------

class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _Disk(io.RawIOBase):
    """An input file read through its checked descriptor, counting how far it was read."""

    def __init__(self, raw: io.FileIO, meter: _Meter) -> None:
        self.raw, self.meter = raw, meter

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b) or 0
        self.meter.disk = max(self.meter.disk, self.raw.tell())
        return n

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def close(self) -> None:
        self.raw.close()
        super().close()

    def tell(self) -> int:
        return self.raw.tell()


class _Prefixed:
    """`head` (already read to sniff the content) then the rest of `rest`, or the break that
    ended the head."""

    def __init__(self, head: bytes, rest: _Readable, broken: _Corrupt | None = None) -> None:
        self.head, self.rest, self.broken = head, rest, broken

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out = self.head if n < 0 else self.head[:n]
            self.head = self.head[len(out):]
            return out
        if self.broken is not None:
            raise self.broken
        return self.rest.read(n)


class _Window:
    """`length` bytes of a seekable file from `start` (a zip member's compressed data)."""

    def __init__(self, f: IO[bytes], start: int, length: int) -> None:
        self.f, self.pos, self.left = f, start, length

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        if n <= 0:
            return b""
        self.f.seek(self.pos)
        out = self.f.read(n)
        self.pos += len(out)
        self.left = 0 if not out else self.left - len(out)
        return out


class _Decoder(Protocol):
    """zlib/bz2-style: `decompress(data, max_length)` never returns more than `max_length`."""

    def decompress(self, data: bytes, n: int) -> bytes: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def ended(self) -> bool: ...  # no more output, whatever follows

    @property
    def complete(self) -> bool: ...  # the input may end here

    def cut_message(self) -> str: ...


class _Gunzip:
    """gzip members one after another, as zcat reads them; zero padding after the last is allowed."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(31)
        self._tail = b""
        self._between = False  # a member has ended, no other begun
        self._need = True
        self.members = 0

    @property
    def needs_input(self) -> bool:
        return self._need

    @property
    def ended(self) -> bool:
        return False

    @property
    def complete(self) -> bool:
        return self._between and not self._tail

    def cut_message(self) -> str:
        if self._between:
            return "bytes after the end of the gzip data ignored"
        return "truncated: the gzip data ends early"

    def decompress(self, data: bytes, n: int) -> bytes:
        buf = self._tail + data if self._tail else data
        self._tail = b""
        if self._between:
            buf = buf.lstrip(b"\0")
            if len(buf) < 2 and GZIP_MAGIC.startswith(buf):  # maybe the start of another member
                self._tail, self._need = buf, True
                return b""
            if not buf.startswith(GZIP_MAGIC):
                raise ValueError(f"{len(buf)}+ bytes after the end of the gzip data ignored (not gzip)")
            self._d, self._between = zlib.decompressobj(31), False
        out = self._d.decompress(buf, n)
        if self._d.eof:
            self.members += 1
            self._between = True
            self._tail = self._d.unused_data
        else:
            self._tail = self._d.unconsumed_tail
        self._need = not self._tail
        return out


class _Single:
    """One zip member's stream: raw deflate, bzip2 or stored."""

    def __init__(self, method: int) -> None:
        self.method = method
        self._d: Any = (zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED
                        else bz2.BZ2Decompressor() if method == zipfile.ZIP_BZIP2 else None)
        self._tail = b""

    @property
    def needs_input(self) -> bool:
        if self.method == zipfile.ZIP_BZIP2:
            return bool(self._d.needs_input)
        return not self._tail

    @property
    def ended(self) -> bool:
        return self._d is not None and bool(self._d.eof)

    @property
    def complete(self) -> bool:
        return self._d is None or bool(self._d.eof)

    def cut_message(self) -> str:
        return "truncated: the compressed data ends early"

    def decompress(self, data: bytes, n: int) -> bytes:
        if self.method == zipfile.ZIP_BZIP2:
            return bytes(self._d.decompress(data, n))
        buf = self._tail + data if self._tail else data
        if self._d is None:
            out, self._tail = buf[:n], buf[n:]
            return out
        out = bytes(self._d.decompress(buf, n))
        self._tail = b"" if self._d.eof else self._d.unconsumed_tail
        return out


class _Decoded:
    """The output of a decoder over `src`, at most `CHUNK` bytes a call, each call charged to the
    budget before the next is inflated. Bad or missing input raises `_Corrupt` after every byte
    that could be decoded was given."""

    def __init__(self, src: _Readable, decoder: _Decoder, budget: _Budget, meter: _Meter, name: str,
                 crc: int | None = None) -> None:
        self.src, self.decoder, self.budget, self.meter, self.name = src, decoder, budget, meter, name
        self.produced = 0  # bytes charged and not yet written off as waste
        self._crc, self._want_crc, self._done = 0, crc, False

    def read(self, n: int = -1) -> bytes:
        if self._done:
            return b""
        n = CHUNK if n < 0 else min(n, CHUNK)
        try:
            out = self._produce(n)
        except ValueError as exc:  # the decoder's own word on bytes it will not read
            raise _Corrupt(str(exc), self) from None
        except (zlib.error, OSError, EOFError) as exc:
            raise _Corrupt(f"corrupt compressed data: {exc}", self) from None
        if not out:
            self._done = True
            if self._want_crc is not None and self._crc != self._want_crc:
                raise _Corrupt("corrupt: CRC-32 of the data does not match", self)
            return b""
        if self._want_crc is not None:
            self._crc = zlib.crc32(out, self._crc)
        self.budget.charge(len(out), self)
        return out

    def _produce(self, n: int) -> bytes:
        dec = self.decoder
        idle = 0
        while not dec.ended:
            data = b""
            if dec.needs_input:
                data = self.src.read(_INPUT_CHUNK)
                if not data:
                    out = dec.decompress(b"", n)
                    if out or dec.complete:
                        return out
                    raise _Corrupt(dec.cut_message(), self)
            out = dec.decompress(data, n)
            if out:
                return out
            idle = 0 if data else idle + 1
            if idle > 3:
                raise _Corrupt("corrupt compressed data: the decoder makes no progress", self)
        return b""


def _read_up_to(f: _Readable, n: int) -> tuple[bytes, _Corrupt | None]:
    """The first `n` bytes (fewer at the end), and the break that came before them, if any."""
    parts: list[bytes] = []
    got = 0
    try:
        while got < n:
            part = f.read(n - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
    except _Corrupt as exc:
        return b"".join(parts), exc
    return b"".join(parts), None


def _drain(f: _Readable, limit: int) -> tuple[bytes, _Corrupt | None]:
    """Everything `f` gives, up to `limit` bytes, read a chunk at a time; a stream that breaks
    gives what it gave before, with the break."""
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise _Refused(f"larger than {limit} bytes decompressed")
            chunks.append(chunk)
    except _Corrupt as exc:
        return b"".join(chunks), exc
    return b"".join(chunks), None


# --- archives -------------------------------------------------------------------------------

class _Ctx:
    """What every level of one input shares."""

    def __init__(self, budget: _Budget, meter: _Meter) -> None:
        self.budget, self.meter, self.limits = budget, meter, budget.limits


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


def _expand(name: str, stream: _Readable, ctx: _Ctx, depth: int, out: Contents, prefix: str,
            owner: _Decoded | None = None) -> None:
    """Turn a stream into members, looking inside gzip/tar/zip by content, not by name.

    `name` is how this blob is shown; `prefix` is put before the names of its members if it
    turns out to be an archive (empty for the archive the user named, so members keep their
    own names). `owner` is the decompression whose whole output this is (a `.gz`): when it
    breaks, what came before is kept, as zcat keeps it.
    """
    head, broken = _read_up_to(stream, HEAD_BYTES)
    if _is_archive(head) and depth >= ctx.limits.max_depth:
        _drop(owner, ctx)
        out.problems.append(_problem(name, f"refused: nested deeper than {ctx.limits.max_depth} archives, "
                                           "not opened"))
        return
    whole: _Readable = _Prefixed(head, stream, broken)
    if head.startswith(GZIP_MAGIC):
        _gunzip(name, whole, ctx, depth, out, prefix)
        return
    if _is_tar(head):
        _expand_tar(whole, ctx, depth, out, prefix, name, owner)
        return
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        if isinstance(stream, _Disk):
            stream.seek(0)
            _expand_zip(cast(IO[bytes], stream), ctx, depth, out, prefix, name)
            return
        data, broken = _drain(whole, ctx.limits.max_member_bytes)
        if broken is not None:
            raise broken
        _expand_zip(io.BytesIO(data), ctx, depth, out, prefix, name)
        return
    _plain(name, whole, ctx, out, owner)


def _gunzip(name: str, stream: _Readable, ctx: _Ctx, depth: int, out: Contents, prefix: str) -> None:
    """A `.gz`: its content, named without the suffix; a break or refusal of this layer is its problem."""
    dec = _Decoded(stream, _Gunzip(), ctx.budget, ctx.meter, name)
    try:
        _expand(_strip_gz(name), dec, ctx, depth + 1, out, prefix, owner=dec)
    except _GiveUp:
        raise
    except (_Refused, _Corrupt) as exc:
        if exc.stream is not dec:
            raise
        ctx.budget.waste(dec)
        out.problems.append(_problem(name, f"refused: {exc}" if isinstance(exc, _Refused) else str(exc)))


def _drop(owner: _Decoded | None, ctx: _Ctx) -> None:
    if owner is not None:
        ctx.budget.waste(owner)


def _spool(f: _Readable, limit: int) -> tuple[bytes | Path, _Corrupt | None]:
    """`_drain`, but what passes `SPOOL_BYTES` goes on to a temporary file, which stands for the member:
    a big decompressed log is then read piece by piece like a file, never held whole in memory."""
    chunks: list[bytes] = []
    size = 0
    sink: IO[bytes] | None = None
    try:
        while chunk := f.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise _Refused(f"larger than {limit} bytes decompressed")
            if sink is None and size > SPOOL_BYTES:
                sink = _spool_file()
                sink.writelines(chunks)
                chunks.clear()
            if sink is not None:
                sink.write(chunk)
            else:
                chunks.append(chunk)
        broken = None
    except _Corrupt as exc:
        broken = exc
    except BaseException:
        if sink is not None:
            sink.close()
            os.unlink(sink.name)
        raise
    if sink is None:
        return b"".join(chunks), broken
    sink.close()
    return Path(sink.name), broken


SPOOL_BYTES = 64 << 20  # a decompressed member larger than this is spooled to disk (`_spool`)
_SPOOLED: list[str] = []


def _spool_file() -> IO[bytes]:
    import atexit
    import tempfile

    if not _SPOOLED:
        atexit.register(_remove_spooled)
    f = tempfile.NamedTemporaryFile(prefix="cpm-member-", delete=False)  # noqa: SIM115 - closed by _spool
    _SPOOLED.append(f.name)
    return f


def _remove_spooled() -> None:
    for name in _SPOOLED:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _plain(name: str, stream: _Readable, ctx: _Ctx, out: Contents, owner: _Decoded | None) -> None:
    """A member read whole (into memory, or a temporary file when big: `_spool`). A `.gz` cut short
    keeps what came before the cut, with a problem; a break in an enclosing archive is that archive's
    to report."""
    try:
        data, broken = _spool(stream, ctx.limits.max_member_bytes)
    except _GiveUp:
        raise
    except _Refused as exc:
        if exc.stream not in (None, owner):
            raise
        _drop(owner, ctx)
        out.problems.append(_problem(owner.name if owner else name, f"refused: {exc}"))
        return
    except MemoryError:
        _drop(owner, ctx)
        out.problems.append(_problem(owner.name if owner else name,
                                     "refused: out of memory while decompressing it"))
        return
    size = len(data) if isinstance(data, bytes) else data.stat().st_size
    if broken is not None:
        if owner is None or broken.stream is not owner:
            raise broken
        kept = f"; the {size} bytes before it are kept" if size else ""
        out.problems.append(_problem(owner.name, f"{broken}{kept}"))
        if not size:
            return
    ctx.budget.members += 1
    if ctx.budget.members > ctx.limits.max_members:
        out.problems.append(_problem(name, f"refused: more than {ctx.limits.max_members} members"))
        return
    if isinstance(data, Path):
        out.members.append(Member(display_name(name), path=data))
    else:
        out.members.append(Member(display_name(name), data=data))


def _member_order(name: str) -> tuple[str, ...]:
    """Sort key of an archive member: the order `_walk` gives the same files in a directory.

    Members are read in this order, not the archive's, so that a bundle gives the same report
    however it was packed (and the same as its directory).
    """
    return tuple((safe_member_name(name) or name).split("/"))


class _Counted:
    """A tar's stream, noting how far it went and where its last byte other than NUL was: what
    follows the last member tarfile read tells a clean end from a cut or corrupt one."""

    def __init__(self, f: _Readable) -> None:
        self.f, self.pos, self.last_data = f, 0, 0

    def read(self, n: int = -1) -> bytes:
        out = self.f.read(n)
        if out:
            kept = len(out.rstrip(b"\0"))
            if kept:
                self.last_data = self.pos + kept
            self.pos += len(out)
        return out


def _expand_tar(stream: _Readable, ctx: _Ctx, depth: int, out: Contents, prefix: str, name: str,
                owner: _Decoded | None) -> None:
    """The members of a tar, read as they come (a `.tar.gz` is not decompressed twice) and
    listed in `_member_order`. A cut or corrupt tar keeps its whole members, with a problem
    naming the member cut and one saying where the archive broke."""
    counted = _Counted(stream)
    parts: list[tuple[tuple[str, ...], Contents]] = []
    tail: list[Problem] = []
    clean, end = False, 0
    try:
        with tarfile.open(fileobj=counted, mode="r|") as tar:  # type: ignore[call-overload]
            for info in tar:
                if len(parts) >= ctx.limits.max_members:
                    tail.append(_problem(name, f"refused: more than {ctx.limits.max_members} members; "
                                               "the rest is not read"))
                    return
                part = Contents()
                parts.append((_member_order(info.name), part))
                _tar_member(tar, info, ctx, depth, part, prefix)
            _drain_tail(counted)
            clean = True
            end = tar.offset
    except _GiveUp:
        raise
    except _Refused as exc:  # the tar's own stream refused: nothing after it can be read
        if exc.stream is not None:
            ctx.budget.waste(exc.stream)
        tail.append(_problem(exc.stream.name if exc.stream else name, f"refused: {exc}; the rest is not read"))
    except _Corrupt as exc:
        tail.append(_problem(exc.stream.name, f"unreadable archive: {exc}; the whole members before it are kept"))
    except (tarfile.TarError, OSError, EOFError) as exc:
        tail.append(_problem(name, f"unreadable archive: {exc}; the whole members before it are kept"))
    except MemoryError:
        tail.append(_problem(name, "refused: out of memory while reading it; the rest is not read"))
    finally:  # the archive's own problem first: it is the cause of a member's being cut
        out.problems.extend(tail)
        for _, part in sorted(parts, key=lambda p: p[0]):
            out.members.extend(part.members)
            out.problems.extend(part.problems)
    if clean and counted.last_data > end:
        out.problems.append(_problem(name, "unreadable archive: cut or corrupt after its last whole member "
                                           f"(byte {end}); the members before it are kept"))
    elif clean and end and counted.pos == end:
        out.problems.append(_problem(name, "the archive ends without its end marker (cut short?); "
                                           "the members before it are kept"))


def _drain_tail(counted: _Counted) -> None:
    """Read what follows the tar's end (zero blocks, normally): a `.tar.gz` cut there or with bad
    bytes after it is reported, and `counted` learns whether anything but NULs follows."""
    while counted.read(CHUNK):
        pass


def _tar_member(tar: tarfile.TarFile, info: tarfile.TarInfo, ctx: _Ctx, depth: int, out: Contents,
                prefix: str) -> None:
    shown = prefix + info.name
    if info.isdir():
        return
    safe = safe_member_name(info.name)
    if safe is None:
        out.problems.append(_problem(shown, "refused: absolute path or path traversal in archive"))
        return
    if info.issym() or info.islnk():
        out.problems.append(_problem(shown, f"refused: link to {info.linkname!r} in archive"))
        return
    if not info.isfile():
        out.problems.append(_problem(shown, "refused: device, fifo or other special file in archive"))
        return
    if info.size > ctx.limits.max_member_bytes:
        out.problems.append(_problem(shown, f"refused: larger than {ctx.limits.max_member_bytes} bytes"))
        return
    stream = tar.extractfile(info)
    if stream is None:
        out.problems.append(_problem(shown, "unreadable member"))
        return
    try:
        _expand(prefix + safe, stream, ctx, depth + 1, out, prefix + safe + ":")
    except (tarfile.TarError, _Corrupt) as exc:  # the tar's data ends or breaks inside this member
        out.problems.append(_problem(shown, f"unreadable member: {exc}"))
        raise


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (version … sizes), name length, extra length


def _zip_stream(f: IO[bytes], info: zipfile.ZipInfo, ctx: _Ctx, shown: str) -> _Decoded:
    """A zip member's bytes, decompressed here (zipfile inflates bzip2 and LZMA without a bound)."""
    f.seek(info.header_offset)
    sig, name_len, extra_len = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size).ljust(_LOCAL_HEADER.size, b"\0"))
    if sig != ZIP_MAGIC:
        raise zipfile.BadZipFile("bad local file header")
    start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    return _Decoded(_Window(f, start, info.compress_size), _Single(info.compress_type), ctx.budget, ctx.meter,
                    shown, crc=info.CRC)


def _expand_zip(f: IO[bytes], ctx: _Ctx, depth: int, out: Contents, prefix: str, name: str) -> None:
    try:
        with zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error) as exc:
        out.problems.append(_problem(name, f"unreadable archive: {exc}"))
        return
    if len(infos) > ctx.limits.max_members:
        out.problems.append(_problem(name, f"refused: more than {ctx.limits.max_members} members; "
                                           "the rest is not read"))
    for info in sorted(infos, key=lambda i: _member_order(_zip_name(i)))[:ctx.limits.max_members]:
        _zip_member(f, info, ctx, depth, out, prefix)


def _zip_member(f: IO[bytes], info: zipfile.ZipInfo, ctx: _Ctx, depth: int, out: Contents, prefix: str) -> None:
    raw = _zip_name(info)
    shown = prefix + raw
    if info.is_dir():
        return
    safe = safe_member_name(raw)
    if safe is None:
        out.problems.append(_problem(shown, "refused: absolute path or path traversal in archive"))
        return
    mode = info.external_attr >> 16
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        kind = "link" if stat.S_ISLNK(mode) else "special file"
        out.problems.append(_problem(shown, f"refused: {kind} in archive"))
        return
    if info.flag_bits & 0x1:
        out.problems.append(_problem(shown, "refused: encrypted member"))
        return
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2):
        out.problems.append(_problem(shown, f"unreadable member: compression method {info.compress_type} "
                                            "is not supported"))
        return
    stream = None
    try:
        stream = _zip_stream(f, info, ctx, shown)
        _expand(prefix + safe, stream, ctx, depth + 1, out, prefix + safe + ":")
    except _GiveUp:
        raise
    except _Refused as exc:
        if stream is not None:
            ctx.budget.waste(stream)
        out.problems.append(_problem(shown, f"refused: {exc}"))
    except MemoryError:
        if stream is not None:
            ctx.budget.waste(stream)
        out.problems.append(_problem(shown, "refused: out of memory while decompressing it"))
    except (_Corrupt, zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as exc:
        if stream is not None:
            ctx.budget.waste(stream)
        out.problems.append(_problem(shown, f"unreadable member: {exc}"))


# --- files and directories ------------------------------------------------------------------

def _listing(d: Path) -> list[os.DirEntry[str]] | OSError:
    try:
        with os.scandir(d) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        return exc


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False  # read as a file: its own check says what it is


def _walk(root: Path) -> Iterator[tuple[Path, OSError | None]]:
    """Files below root in a stable order (depth first, by name), without recursion; links are
    yielded (and refused later), not followed. A directory that cannot be listed comes with its
    error, and the walk goes on."""
    top = _listing(root)
    if isinstance(top, OSError):
        yield root, top
        return
    stack = [iter(top)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        path = Path(entry.path)
        if not _is_dir(entry):
            yield path, None
            continue
        listing = _listing(path)
        if isinstance(listing, OSError):
            yield path, listing
        else:
            stack.append(iter(listing))


def _open_checked(path: Path, name: str, out: Contents) -> tuple[int, os.stat_result] | None:
    """A descriptor of a regular file, opened without following a link (`O_NOFOLLOW`) or blocking
    on a fifo, and checked with `fstat`: what is read later is the file checked here."""
    try:
        st = path.lstat()
    except OSError as exc:
        out.problems.append(_problem(name, f"unreadable: {exc.strerror}"))
        return None
    if stat.S_ISLNK(st.st_mode):
        out.problems.append(_problem(name, "refused: symbolic link (not followed)"))
        return None
    if not stat.S_ISREG(st.st_mode):  # not even opened: a device or fifo may act on open
        out.problems.append(_problem(name, "refused: not a regular file"))
        return None
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        why = "refused: symbolic link (not followed)" if exc.errno == errno.ELOOP else f"unreadable: {exc.strerror}"
        out.problems.append(_problem(name, why))
        return None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        out.problems.append(_problem(name, "refused: not a regular file"))
        return None
    return fd, st


def _read_file(path: Path, name: str, budget: _Budget, out: Contents, prefix: str) -> None:
    """One file on disk: kept on disk (pinned) if plain, streamed if an archive."""
    opened = _open_checked(path, name, out)
    if opened is None:
        return
    fd, st = opened
    meter = _Meter()
    ctx = _Ctx(budget, meter)
    try:
        with _Disk(io.FileIO(fd, "rb"), meter) as disk:
            head = disk.read(HEAD_BYTES) or b""
            if not _is_archive(head):
                out.members.append(Member(display_name(name), path=_pinned(path, _Pin(st, name, out.problems))))
                return
            disk.seek(0)
            _expand(name, disk, ctx, 0, out, prefix)
    except _Refused as exc:
        out.problems.append(_problem(name, f"refused: {exc}"))
    except _Corrupt as exc:
        out.problems.append(_problem(exc.stream.name, str(exc)))
    except MemoryError:
        out.problems.append(_problem(name, "refused: out of memory while decompressing it"))
    except OSError as exc:
        out.problems.append(_problem(name, f"unreadable: {exc.strerror or exc}"))
    except tarfile.TarError as exc:
        out.problems.append(_problem(name, f"unreadable archive: {exc}"))


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
            problems.append(_problem(roots[i].as_posix(), f"skipped: the same path as input {roots[same].as_posix()}",
                                     unread=False))
        elif inside is not None:
            problems.append(_problem(roots[i].as_posix(), f"skipped: read already as part of input "
                                                         f"{roots[inside].as_posix()}", unread=False))
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
    Names are shown escaped (`display_name`); paths keep the bytes they have on disk.

    Decompression has one budget for the whole call (`Limits`); a directory that cannot be listed
    is a problem like a file that cannot be read, and the rest is read.
    """
    limits = limits or Limits()
    out = Contents()
    roots = [Path(raw) for raw in paths]
    for raw, root in zip(paths, roots, strict=True):
        if not root.exists() and not root.is_symlink():
            raise BundleError(f"{display_name(os.fspath(raw))}: no such file or directory")
    keep, problems = _distinct(roots)
    out.problems.extend(problems)
    budget = _Budget(limits)
    many = len(keep) > 1
    labels = _labels([roots[i] for i in keep]) if many else [roots[i].name for i in keep]
    for i, label in zip(keep, labels, strict=True):
        root = roots[i]
        if root.is_dir() and not root.is_symlink():
            for p, error in _walk(root):
                rel = p.relative_to(root).as_posix()
                name = (f"{label}/{rel}" if rel != "." else label) if many else rel
                if error is not None:
                    shown = name if rel != "." else root.as_posix()
                    out.problems.append(_problem(shown, f"unreadable directory: {error.strerror or error}; "
                                                        "not read"))
                    continue
                _read_file(p, name, budget, out, prefix=name + ":")
        else:
            _read_file(root, label, budget, out, prefix=f"{label}:" if many else "")
    return out
