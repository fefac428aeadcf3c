"""The bundle reader on hostile bundles (issue 16, items 2, 5, 8, 9, 10): names that are not
UTF-8 or hold control characters, decompression bombs, a file swapped for a link after the
check, unreadable and deeply nested directories, cut and padded compressed files.

Every hostile input is built here; bombs are made from repeated compressed pieces so that
building one costs milliseconds while inflating it would cost gigabytes.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from analyzer.api import open_bundle
from analyzer.bundle import Contents, Limits, display_name, read_bundle
from analyzer.cli import app
from analyzer.renderers import RenderOptions, registry
from analyzer.sniff import sniff
from tests.conftest import SAMPLES

LOG = (SAMPLES / "app-exception" / "worker.log").read_bytes()
HEALTHY = (SAMPLES / "healthy" / "worker.log").read_bytes()
MIB = 1 << 20


# --- builders -------------------------------------------------------------------------------

def _deflate_zeros(mib: int) -> bytes:
    """Raw deflate of `mib` MiB of NUL bytes, made of one flushed piece repeated (each piece is
    a whole set of blocks that refers to nothing before it)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(b"\0" * MIB) + c.flush(zlib.Z_FULL_FLUSH)
    return piece * mib + b"\x03\x00"  # an empty final block


def _gzip_zeros(mib: int) -> bytes:
    """A gzip of `mib` MiB of NULs; the trailer's CRC is not computed (a bomb is refused before)."""
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + _deflate_zeros(mib) + struct.pack("<II", 0, (mib * MIB)
                                                                                             & 0xFFFFFFFF)


def _bz2_zeros(blocks: int) -> bytes:
    """One bzip2 stream of `blocks` copies of the block that holds 5,000,000 NULs: the block's
    bits spliced `blocks` times, with the stream CRC recomputed (~36 bytes per 5 MB)."""
    one = bz2.compress(b"\0" * 5_000_000, 9)
    bits = "".join(f"{b:08b}" for b in one)
    eos = format(0x177245385090, "048b")
    end = bits.rindex(eos)
    assert len(bits) - (end + 80) < 8
    block = bits[32:end]
    crc = int(block[48:80], 2)
    combined = 0
    for _ in range(blocks):
        combined = (((combined << 1) | (combined >> 31)) & 0xFFFFFFFF) ^ crc
    out = bits[:32] + block * blocks + eos + format(combined, "032b")
    out += "0" * (-len(out) % 8)
    return int(out, 2).to_bytes(len(out) // 8, "big")


def _zip(entries: list[tuple[bytes, int, bytes, int, int]]) -> bytes:
    """A zip written by hand: (raw name, method, compressed data, CRC, size) per member, so that
    any name bytes and precompressed data go in as they are."""
    body, central = io.BytesIO(), io.BytesIO()
    for name, method, data, crc, size in entries:
        offset = body.tell()
        body.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), size, len(name), 0))
        body.write(name + data)
        central.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, len(data), size,
                                  len(name), 0, 0, 0, 0, 0o100644 << 16, offset) + name)
    cd = central.getvalue()
    return body.getvalue() + cd + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(cd),
                                              body.tell(), 0)


def _zip_deflated(members: list[tuple[bytes, bytes]]) -> bytes:
    out = []
    for name, data in members:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        out.append((name, zipfile.ZIP_DEFLATED, c.compress(data) + c.flush(), zlib.crc32(data), len(data)))
    return _zip(out)


def _tar(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    """`fn()` and the peak of Python allocations while it ran (every decompressed byte is one)."""
    tracemalloc.start()
    try:
        return fn(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _messages(got: Contents) -> dict[str, str]:
    return {p.source: p.message for p in got.problems}


# --- item 2: names ------------------------------------------------------------------------------

LATIN1_DIR = os.fsdecode(b"caf\xe9")  # a directory made under a Latin-1 locale: 'caf\udce9'
SHOWN = "caf\\xe9/worker.log"


def _latin1_bundle(root: Path) -> Path:
    (root / LATIN1_DIR).mkdir(parents=True)
    (root / LATIN1_DIR / "worker.log").write_bytes(LOG)
    return root


def test_display_name_escapes_what_is_not_utf8_or_printable() -> None:
    assert display_name("caf\udce9/w.log") == SHOWN.replace("worker", "w")
    assert display_name("a\x1b[31mred\nx\ty\x7f\u202e") == "a\\x1b[31mred\\x0ax\\x09y\\x7f\\u202e"
    assert display_name("café/日本.log") == "café/日本.log"  # valid UTF-8 stays as it is


def test_names_from_disk_tar_and_zip_are_escaped_and_files_still_read(tmp_path: Path) -> None:
    d = _latin1_bundle(tmp_path / "d")
    (d / "esc\x1b[2Jx.log").write_bytes(HEALTHY)
    (d / "new\nline.log").write_bytes(HEALTHY)
    got = read_bundle([d])
    assert [m.name for m in got.members] == [SHOWN, "esc\\x1b[2Jx.log", "new\\x0aline.log"]
    assert [m.read() for m in got.members] == [LOG, HEALTHY, HEALTHY]  # the real paths still work
    assert not got.problems

    tgz = tmp_path / "latin1.tgz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", encoding="latin-1", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("café/worker.log")
        info.size = len(LOG)
        tar.addfile(info, io.BytesIO(LOG))
    tgz.write_bytes(buf.getvalue())
    z = tmp_path / "latin1.zip"  # no UTF-8 flag: zipfile would read the name as cp437 ('caf\u0398')
    z.write_bytes(_zip([(b"caf\xe9/worker.log", zipfile.ZIP_STORED, LOG, zlib.crc32(LOG), len(LOG)),
                        (b"bad\x1b]52;c;x\x07.log", zipfile.ZIP_STORED, LOG, zlib.crc32(LOG), len(LOG))]))
    for archive, names in ((tgz, [SHOWN]), (z, ["bad\\x1b]52;c;x\\x07.log", SHOWN])):
        got = read_bundle([archive])
        assert [m.name for m in got.members] == names and got.members[-1].read() == LOG, archive.name
        assert not got.problems


def _check_output(text: str, where: str) -> None:
    assert text, f"{where}: empty output"
    assert "\udce9" not in text and "\x1b[2J" not in text, where
    assert any(shown in text for shown in ("caf\\xe9", "caf\\\\xe9", "caf%5Cxe9")), where  # as is, JSON, URI


@pytest.mark.parametrize("fmt", sorted(registry()))
def test_every_format_writes_a_non_utf8_and_control_name_escaped(tmp_path: Path, fmt: str) -> None:
    d = _latin1_bundle(tmp_path / "d")
    (d / "esc\x1b[2Jx.log").write_bytes(LOG)
    out = tmp_path / f"report.{fmt}"
    r = CliRunner().invoke(app, ["analyze", str(d), "--format", fmt, "--no-color", "-o", str(out)])
    assert r.exit_code in (0, 1), r.output
    raw = out.read_bytes()
    _check_output(raw.decode("utf-8"), fmt)  # strict: a surrogate would not have encoded at all


def test_a_file_in_a_non_utf8_directory_is_parsed(tmp_path: Path) -> None:
    """polars takes only UTF-8 paths: the file is still read, not 'could not be parsed'."""
    report = open_bundle([_latin1_bundle(tmp_path / "d")]).report()
    assert [(c.source, c.parsed) for c in report.inputs] == [(SHOWN, LOG.count(b"\n"))]
    assert not report.problems and report.verdict == "unhealthy"


def test_export_writes_a_non_utf8_name_escaped(tmp_path: Path) -> None:
    d = _latin1_bundle(tmp_path / "d")
    for to in ("csv", "ndjson", "parquet"):
        dest = tmp_path / to
        r = CliRunner().invoke(app, ["export", str(d), str(dest), "--to", to])
        assert r.exit_code == 0, r.output
        files = sorted(dest.iterdir())
        assert files
        if to == "parquet":
            sources = {s for f in files for col in ("source",) if col in pl.read_parquet(f).columns
                       for s in pl.read_parquet(f).get_column(col).drop_nulls().to_list()}
            assert SHOWN in sources
        else:
            _check_output("".join(f.read_bytes().decode("utf-8") for f in files), to)


# --- item 5: bombs ------------------------------------------------------------------------------

def test_bzip2_zip_member_is_refused_before_it_inflates_and_the_next_member_is_read(tmp_path: Path) -> None:
    bomb = _bz2_zeros(400)  # ~14 KB that would inflate to 2 GB
    assert len(bomb) < 16_000
    z = tmp_path / "bomb.zip"
    z.write_bytes(_zip([(b"a-bomb.log", zipfile.ZIP_BZIP2, bomb, 0, 2_000_000_000),
                        (b"worker.log", zipfile.ZIP_STORED, LOG, zlib.crc32(LOG), len(LOG))]))
    start = time.monotonic()
    got, peak = _peak(lambda: read_bundle([z]))
    assert time.monotonic() - start < 3
    assert [(m.name, m.read()) for m in got.members] == [("worker.log", LOG)]
    assert "archive bomb" in _messages(got)["a-bomb.log"]
    assert peak < 120 * MIB, peak  # refused at the 16 MiB floor, not after 2 GB


def test_gzip_of_gzip_is_measured_against_the_bytes_on_disk(tmp_path: Path) -> None:
    """Each layer alone expands ~1000x; together 10^6x the file, which is what counts."""
    inner = _gzip_zeros(1024)
    outer = gzip.compress(inner, 9)
    d = tmp_path / "d"
    d.mkdir()
    (d / "bomb.log.gz.gz").write_bytes(outer)
    (d / "worker.log").write_bytes(LOG)
    got, peak = _peak(lambda: read_bundle([d]))
    assert [m.name for m in got.members] == ["worker.log"]
    [(source, message)] = _messages(got).items()
    assert source == "bomb.log.gz.gz:bomb.log.gz" or source.startswith("bomb.log.gz"), source
    assert "archive bomb" in message
    assert peak < 120 * MIB, peak


def _nested_zip(levels: int, leaf_mib: int) -> bytes:
    """42.zip's shape: 16 zips of 16 zips … of 16 members of `leaf_mib` MiB of NULs each."""
    zeros = b"\0" * (leaf_mib * MIB)
    layer = _zip_deflated([(f"{i:02x}.log".encode(), zeros) for i in range(16)])
    for _ in range(levels - 1):
        layer = _zip_deflated([(f"{i:02x}.zip".encode(), layer) for i in range(16)])
    return layer


def test_nested_zip_bomb_is_stopped_by_the_total_budget(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "42.zip").write_bytes(_nested_zip(3, 1))  # 4 GiB in all
    (d / "worker.log").write_bytes(LOG)
    limits = Limits(max_total_bytes=64 * MIB, max_ratio=1e12, max_wasted_bytes=1 << 40)
    start = time.monotonic()
    got = read_bundle([d], limits)
    assert time.monotonic() - start < 3
    assert "worker.log" in [m.name for m in got.members]
    assert sum(m.size for m in got.members if m.data is not None) <= 64 * MIB
    given_up = [p for p in got.problems if "bytes decompressed in this bundle" in p.message]
    assert len(given_up) == 1 and given_up[0].source == "42.zip"


def test_nested_zip_bomb_is_refused_quickly_with_default_limits(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "42.zip").write_bytes(_nested_zip(3, 1))
    (d / "worker.log").write_bytes(LOG)
    start = time.monotonic()
    got, peak = _peak(lambda: read_bundle([d]))
    assert time.monotonic() - start < 3
    assert "worker.log" in [m.name for m in got.members]
    assert any("archive bomb" in p.message for p in got.problems)
    assert peak < 200 * MIB, peak


def test_sparse_log_with_a_2_gib_hole_is_read_and_sniffed_without_loading_it(tmp_path: Path) -> None:
    p = tmp_path / "worker.log"
    with p.open("wb") as f:
        f.truncate(2 << 30)  # a hole: NUL bytes that cost no disk
        f.seek(0, os.SEEK_END)
        f.write(LOG)
    start = time.monotonic()

    def read() -> str:
        [member] = read_bundle([p]).members
        return sniff(member.head())

    kind, peak = _peak(read)
    assert kind == "celery_log"
    assert peak < 16 * MIB, peak
    assert time.monotonic() - start < 3


_UNDER_LIMIT = """
import importlib.util, resource, sys, zlib
spec = importlib.util.spec_from_file_location("bundle", sys.argv[1])
bundle = importlib.util.module_from_spec(spec)
sys.modules["bundle"] = bundle
spec.loader.exec_module(bundle)
with open("/proc/self/statm") as f:
    vm = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (vm + (200 << 20), vm + (200 << 20)))
big = bundle.Limits(max_member_bytes=1 << 40, max_total_bytes=1 << 40, max_ratio=1e12)
got = bundle.read_bundle([sys.argv[2]], big)
print([m.name for m in got.members], [str(p) for p in got.problems])
"""


def test_under_a_memory_limit_a_bomb_is_spooled_to_disk_not_a_memory_error(tmp_path: Path) -> None:
    """With every size limit lifted, a 1 GiB bomb under a 200 MiB memory limit: past `SPOOL_BYTES`
    the member goes to a temporary file (`bundle._spool`), so memory never runs out; its bad CRC
    (not computed) is the only problem, and what came before it is kept, as zcat keeps it."""
    d = tmp_path / "d"
    d.mkdir()
    (d / "a-bomb.log.gz").write_bytes(_gzip_zeros(1024))  # 1 GiB; the process may hold 200 MiB more
    (d / "worker.log").write_bytes(LOG)
    module = Path(__file__).resolve().parents[1] / "analyzer" / "bundle.py"
    r = subprocess.run([sys.executable, "-c", _UNDER_LIMIT, str(module), str(d)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "['a-bomb.log', 'worker.log']" in r.stdout, r.stdout
    assert "a-bomb.log.gz: corrupt compressed data" in r.stdout and "bytes before it are kept" in r.stdout, r.stdout


# --- item 8: a file swapped for a link after the check -----------------------------------------

SECRET = "TOPSECRET-4f1d"


def _secret_log(path: Path) -> Path:
    """A worker log whose every line carries SECRET: read, it would be quoted somewhere."""
    path.write_text(LOG.decode().replace("ValueError", f"ValueError {SECRET}").replace("Task", f"Task {SECRET}"))
    return path


@pytest.mark.parametrize("swap", ["link", "replace"])
def test_a_file_swapped_after_the_check_is_not_read(tmp_path: Path, swap: str) -> None:
    secret = _secret_log(tmp_path / "secret.log")
    d = tmp_path / "d"
    d.mkdir()
    (d / "worker.log").write_bytes(HEALTHY)
    (d / "other.log").write_bytes(LOG)
    bundle = open_bundle([d])
    assert [m.name for m in bundle.contents.members] == ["other.log", "worker.log"]  # checked here
    (d / "worker.log").unlink()
    if swap == "link":
        (d / "worker.log").symlink_to(secret)
    else:
        os.link(secret, d / "worker.log")  # another regular file under the checked name
    report = bundle.report()
    outputs = [fn(report, RenderOptions()) for fn in registry().values()]
    written = bundle.export(tmp_path / "export", to="ndjson")
    outputs += [p.read_text() for p in written]
    for out in outputs:
        assert SECRET not in out
    assert any(p.source == "worker.log" and "changed after it was checked" in p.message for p in report.problems)
    assert report.verdict != "healthy"
    assert any(c.source == "other.log" and c.parsed for c in report.inputs)  # the rest was read


# --- item 9: directories ------------------------------------------------------------------------

def test_deeply_nested_directories_are_walked_without_recursion(tmp_path: Path) -> None:
    d = tmp_path / "d"
    deep = d
    d.mkdir()
    for _ in range(1100):  # not mkdir(parents=True): pathlib makes parents by recursion
        deep = deep / "n"
        deep.mkdir()
    (deep / "worker.log").write_bytes(LOG)
    (d / "top.log").write_bytes(HEALTHY)
    try:
        got = read_bundle([d])
        assert [m.name for m in got.members] == ["/".join(["n"] * 1100) + "/worker.log", "top.log"]
    finally:  # bottom up: shutil.rmtree recurses once per level, and pytest removes old temp dirs with it
        (deep / "worker.log").unlink()
        while deep != d:
            deep.rmdir()
            deep = deep.parent


def _unreadable(monkeypatch: pytest.MonkeyPatch, blocked: Path) -> None:
    """`os.scandir` fails on `blocked` as on a chmod 000 directory (root is not stopped by chmod)."""
    real = os.scandir

    def scandir(path: Any = ".") -> Iterator[os.DirEntry[str]]:
        if Path(path) == blocked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unreadable_directory_is_a_problem_and_the_rest_is_read(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    (d / "locked").mkdir(parents=True)
    (d / "locked" / "hidden.log").write_bytes(LOG)
    (d / "z").mkdir()
    (d / "z" / "worker.log").write_bytes(LOG)
    _unreadable(monkeypatch, d / "locked")
    got = read_bundle([d])
    assert [m.name for m in got.members] == ["z/worker.log"]
    assert [(p.source, p.message) for p in got.problems] == [
        ("locked", "unreadable directory: Permission denied; not read")]
    report = json.loads(CliRunner().invoke(app, ["analyze", str(d), "-f", "json"]).stdout)
    assert report["problems"] == [{"source": "locked", "message": "unreadable directory: Permission denied; not read"}]
    assert report["verdict"] != "healthy"
    r = CliRunner().invoke(app, ["export", str(d), str(tmp_path / "out"), "--to", "csv"])
    assert r.exit_code == 0, r.output


def test_an_unreadable_input_directory_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    d.mkdir()
    _unreadable(monkeypatch, d)
    got = read_bundle([d])
    assert not got.members
    assert [p.source for p in got.problems] == [d.as_posix()]


# --- item 10: cut and padded compressed files ----------------------------------------------------

def test_gzip_with_trailing_bytes_keeps_everything_and_says_so(tmp_path: Path) -> None:
    p = tmp_path / "worker.log.gz"
    p.write_bytes(gzip.compress(LOG) + b"\0\0\0" + b"junk after the end")
    got = read_bundle([p])
    assert [(m.name, m.read()) for m in got.members] == [("worker.log", LOG)]
    assert "after the end of the gzip data ignored" in _messages(got)["worker.log.gz"]


def test_concatenated_and_zero_padded_gzip_is_whole_without_a_problem(tmp_path: Path) -> None:
    p = tmp_path / "worker.log.gz"
    p.write_bytes(gzip.compress(LOG) + gzip.compress(HEALTHY) + b"\0" * 1000)
    got = read_bundle([p])
    assert [m.read() for m in got.members] == [LOG + HEALTHY] and not got.problems


def test_cut_tar_gz_keeps_its_whole_members(tmp_path: Path) -> None:
    noise = os.urandom(256 << 10)  # incompressible: the cut lands inside this member
    whole = _tar([("a.log", LOG), ("b.bin", noise), ("c.log", HEALTHY)], mode="w:gz")
    p = tmp_path / "bundle.tar.gz"
    p.write_bytes(whole[:len(whole) // 2])
    got = read_bundle([p])
    assert [(m.name, m.read()) for m in got.members] == [("a.log", LOG)]
    msgs = _messages(got)
    assert "unreadable member" in msgs["b.bin"]
    assert msgs["bundle.tar.gz"].startswith("unreadable archive: truncated: the gzip data ends early")


def test_tar_cut_inside_a_header_is_reported(tmp_path: Path) -> None:
    whole = _tar([("a.log", LOG), ("b.log", HEALTHY)])
    second = whole.index(b"b.log")
    p = tmp_path / "cut.tar"
    p.write_bytes(whole[:second + 100])  # half of b.log's header
    got = read_bundle([p])
    assert [m.name for m in got.members] == ["a.log"]
    assert "cut or corrupt after its last whole member" in _messages(got)["cut.tar"]


def test_archive_nested_past_the_depth_limit_is_reported_not_kept(tmp_path: Path) -> None:
    blob = _tar([("worker.log", LOG)])
    for level in range(4):
        blob = _tar([(f"level{level}.tar", blob)])
    p = tmp_path / "deep.tar"
    p.write_bytes(blob)
    got = read_bundle([p])
    assert not got.members
    [(source, message)] = _messages(got).items()
    assert source == "level3.tar:level2.tar:level1.tar"
    assert message == "refused: nested deeper than 3 archives, not opened"


def test_a_truncated_gzip_bundle_is_not_healthy(tmp_path: Path) -> None:
    p = tmp_path / "worker.log.gz"
    whole = gzip.compress(HEALTHY)
    p.write_bytes(whole[:len(whole) * 2 // 3])
    report = open_bundle([p]).report()
    assert any(c.source == "worker.log" and c.parsed for c in report.inputs)  # the prefix was read
    assert report.verdict in ("inconclusive", "unhealthy")
    assert any("worker.log.gz" in r for r in report.inconclusive_reasons()) or report.verdict == "unhealthy"
    r = CliRunner().invoke(app, ["analyze", str(p), "-f", "json"])
    assert json.loads(r.stdout)["verdict"] != "healthy"
