"""The bundle reader: every container form, and hostile archives refused member by member."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from analyzer.bundle import BundleError, Limits, read_bundle, safe_member_name
from analyzer.cli import app
from tests.conftest import SAMPLES

LOG = (SAMPLES / "app-exception" / "worker.log").read_bytes()
HEALTHY = (SAMPLES / "healthy" / "worker.log").read_bytes()


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    return path


def test_directory_is_read_recursively_in_stable_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "worker2.log").write_bytes(HEALTHY)
    (tmp_path / "a.log").write_bytes(LOG)
    got = read_bundle([tmp_path])
    assert [m.name for m in got.members] == ["a.log", "b/worker2.log"]
    assert got.members[0].path is not None  # plain files stay on disk
    assert not got.problems


def test_single_gzip_file_keeps_its_name_without_gz(tmp_path: Path) -> None:
    p = tmp_path / "worker.log.gz"
    p.write_bytes(gzip.compress(LOG))
    got = read_bundle([p])
    assert [(m.name, m.read()) for m in got.members] == [("worker.log", LOG)]


def test_tar_gz_and_zip_members_are_named_by_their_paths(tmp_path: Path) -> None:
    tgz = _tar(tmp_path / "incident.tgz", [("logs/worker.log", LOG), ("logs/w2.log.gz", gzip.compress(HEALTHY))])
    z = tmp_path / "more.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("w3.log", HEALTHY)
    one = read_bundle([tgz])
    assert [m.name for m in one.members] == ["logs/w2.log", "logs/worker.log"]  # by name, not archive order
    assert one.members[0].read() == HEALTHY
    both = read_bundle([tgz, z])
    assert [m.name for m in both.members] == [f"{tgz.as_posix()}:logs/w2.log", f"{tgz.as_posix()}:logs/worker.log",
                                              f"{z.as_posix()}:w3.log"]


def test_content_not_name_decides_archives(tmp_path: Path) -> None:
    p = tmp_path / "looks-like-text.log"  # really a gzip
    p.write_bytes(gzip.compress(LOG))
    got = read_bundle([p])
    assert got.members[0].read() == LOG


def test_traversal_absolute_link_and_device_members_are_refused_rest_kept(tmp_path: Path) -> None:
    link = tarfile.TarInfo("evil-link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    dev = tarfile.TarInfo("dev-null")
    dev.type = tarfile.CHRTYPE
    dev.devmajor, dev.devminor = 1, 3
    tgz = _tar(tmp_path / "hostile.tar.gz", [("../../escape.log", LOG), ("/abs/path.log", LOG), link, dev,
                                              ("ok/worker.log", LOG)])
    got = read_bundle([tgz])
    assert [m.name for m in got.members] == ["ok/worker.log"]
    reasons = {p.source: p.message for p in got.problems}
    assert "traversal" in reasons["../../escape.log"]
    assert "traversal" in reasons["/abs/path.log"]
    assert "link" in reasons["evil-link"]
    assert "special file" in reasons["dev-null"]
    assert not (tmp_path.parent / "escape.log").exists()


def test_zip_traversal_and_symlink_are_refused(tmp_path: Path) -> None:
    z = tmp_path / "hostile.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../up.log", LOG)
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
        zf.writestr("fine.log", LOG)
    got = read_bundle([z])
    assert [m.name for m in got.members] == ["fine.log"]
    assert {p.source for p in got.problems} == {"../up.log", "link"}


def test_decompression_bomb_is_refused_and_other_members_survive(tmp_path: Path) -> None:
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MiB of zeros in ~64 KiB
    tgz = _tar(tmp_path / "bomb.tar", [("bomb.log.gz", bomb), ("worker.log", LOG)], mode="w")
    got = read_bundle([tgz], Limits(ratio_floor=1 << 20, max_ratio=100))
    assert [m.name for m in got.members] == ["worker.log"]
    assert any("archive bomb" in p.message for p in got.problems)


def test_member_size_limit(tmp_path: Path) -> None:
    p = tmp_path / "big.gz"
    p.write_bytes(gzip.compress(LOG * 10))
    got = read_bundle([p], Limits(max_member_bytes=len(LOG)))
    assert not got.members and "larger than" in got.problems[0].message


def test_symlink_in_directory_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real.log").write_bytes(LOG)
    (tmp_path / "link.log").symlink_to("/etc/passwd")
    got = read_bundle([tmp_path])
    assert [m.name for m in got.members] == ["real.log"]
    assert got.problems[0].source == "link.log"


def test_truncated_gzip_keeps_what_zcat_recovers_and_reports_the_cut(tmp_path: Path) -> None:
    p = tmp_path / "cut.log.gz"
    p.write_bytes(gzip.compress(LOG)[:200])
    got = read_bundle([p])
    [member] = got.members
    assert member.name == "cut.log" and len(member.read()) > 100 and LOG.startswith(member.read())
    assert [(q.source, q.message.split(";")[0]) for q in got.problems] == [("cut.log.gz",
                                                                             "truncated: the gzip data ends early")]


def test_missing_path_is_a_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such file"):
        read_bundle([tmp_path / "nope"])


@pytest.mark.parametrize(("name", "safe"), [("a/b.log", "a/b.log"), ("./a.log", "a.log"), ("../a", None),
                                            ("a/../../b", None), ("/etc/x", None), ("C:/x", None), ("", None)])
def test_safe_member_name(name: str, safe: str | None) -> None:
    assert safe_member_name(name) == safe


def _json_report(*paths: Path) -> bytes:
    r = CliRunner().invoke(app, ["analyze", *map(str, paths), "-f", "json"])
    assert r.exit_code in (0, 1), r.output
    return r.stdout_bytes


def _pack(src: Path, dest: Path, names: list[str]) -> Path:
    """`dest` (.tar, .tar.gz or .zip) holding `names` of `src`, in that order."""
    if dest.suffix == ".zip":
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
            for n in names:
                zf.write(src / n, n)
        return dest
    with tarfile.open(dest, "w:gz" if dest.name.endswith(".gz") else "w") as tar:
        for n in names:
            tar.add(src / n, n)
    return dest


def test_archive_member_order_does_not_change_the_report(tmp_path: Path) -> None:
    """Same bundle, same bytes: a tar/zip packed in any order reads as its directory does."""
    src = SAMPLES / "deadlock-lock"
    names = sorted(p.name for p in src.iterdir())
    reference = _json_report(src)
    assert b"lock.wait" in reference  # the finding whose evidence order used to follow the archive
    for dest in ("fwd.tar", "rev.tar", "rev.tar.gz", "rev.zip", "shuffled.zip"):
        order = names if dest.startswith("fwd") else names[::-1]
        if dest.startswith("shuffled"):
            order = names[1::2] + names[::2]
        assert _json_report(_pack(src, tmp_path / dest, order)) == reference, dest


def test_member_order_is_the_directory_order_by_path_components(tmp_path: Path) -> None:
    """`a/b.log` before `a.log`, as a directory walk gives them ('a' < 'a.log'), not string order."""
    d = tmp_path / "d"
    (d / "a").mkdir(parents=True)
    (d / "a" / "b.log").write_bytes(HEALTHY)
    (d / "a.log").write_bytes(LOG)
    (d / "z.log.gz").write_bytes(gzip.compress(LOG))
    want = [m.name for m in read_bundle([d]).members]
    assert want == ["a/b.log", "a.log", "z.log"]
    for dest in ("x.tar", "x.zip"):
        packed = _pack(d, tmp_path / dest, ["z.log.gz", "a.log", "a/b.log"])
        assert [m.name for m in read_bundle([packed]).members] == want, dest


def test_truncated_tar_keeps_its_whole_members_whatever_their_order(tmp_path: Path) -> None:
    """The cut member is a problem of its own; members sorted after it are still read."""
    src = SAMPLES / "deadlock-lock"
    whole = _pack(src, tmp_path / "whole.tar", ["worker.log", "gdb-bt.txt"])  # gdb-bt.txt sorts first
    cut = tmp_path / "cut.tar"
    raw = whole.read_bytes()
    cut.write_bytes(raw[:raw.index(b"gdb-bt.txt") + 512 + 100])  # header of gdb-bt.txt and 100 bytes of it
    got = read_bundle([cut])
    assert [(m.name, m.read()) for m in got.members] == [("worker.log", (src / "worker.log").read_bytes())]
    assert any(p.source == "gdb-bt.txt" and "unreadable member" in p.message for p in got.problems)
    assert any(p.source == "cut.tar" and "unreadable archive" in p.message for p in got.problems)


def test_members_past_the_limit_are_refused_with_one_problem(tmp_path: Path) -> None:
    src = SAMPLES / "deadlock-lock"
    names = ["worker.log", "gdb-bt.txt", "pyspy.json"]
    got = read_bundle([_pack(src, tmp_path / "x.tar", names)], Limits(max_members=2))
    assert [m.name for m in got.members] == ["gdb-bt.txt", "worker.log"]
    assert [p.message for p in got.problems] == ["refused: more than 2 members; the rest is not read"]


def _refused(report: bytes) -> dict[str, Any]:
    rep = json.loads(report)
    f = next(f for f in rep["findings"] if f["category"] == "broker.connection_refused")
    return {"count": f["count"], "sources": sorted({e["source"] for e in f["evidence"]}),
            "inputs": [i["path"] for i in rep["inputs"]], "problems": rep["problems"]}


def test_two_directories_with_one_name_get_labels_that_tell_them_apart(tmp_path: Path) -> None:
    a, b = tmp_path / "x" / "a" / "s", tmp_path / "x" / "b" / "s"
    for d in (a, b):
        shutil.copytree(SAMPLES / "broker-refused", d)
    one = _refused(_json_report(a))
    both = _refused(_json_report(a, b))
    assert one["sources"] == ["worker.log"]  # one input: names as before, no label
    assert both["sources"] == ["a/s/worker.log", "b/s/worker.log"]
    assert both["count"] == 2 * one["count"]  # two bundles, each counted once
    assert both["inputs"] == [f"{d}/{name}" for d in ("a/s", "b/s") for name in one["inputs"]]


def test_a_path_given_twice_or_inside_another_is_read_once(tmp_path: Path) -> None:
    s = tmp_path / "s"
    shutil.copytree(SAMPLES / "broker-refused", s)
    alone = _refused(_json_report(s))
    assert alone["count"] == 3 and not alone["problems"]
    (tmp_path / "alias").symlink_to(tmp_path)  # the same directory through a linked parent
    for paths in ((s, s), (s, s / "worker.log"), (s / "worker.log", s), (s, s / ".." / "s"),
                  (s, tmp_path / "alias" / "s")):
        got = _refused(_json_report(*paths))
        assert {k: v for k, v in got.items() if k != "problems"} == \
            {k: v for k, v in alone.items() if k != "problems"}, paths
        assert len(got["problems"]) == 1 and "skipped" in got["problems"][0]["message"], paths


def test_a_directory_label_that_a_given_file_path_would_shadow_grows(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A file given as `s/worker.log` and another directory named `s`: its members would be named
    `s/worker.log` too, so the directory's label takes its parent's name as well."""
    for d in ("here/s", "there/s"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "worker.log").write_bytes(LOG)
    monkeypatch.chdir(tmp_path / "here")
    got = read_bundle([Path("s/worker.log"), tmp_path / "there" / "s"])
    assert [m.name for m in got.members] == ["s/worker.log", "there/s/worker.log"]
    assert not got.problems
