"""Kernel logs from real runs (tests/data/kernel, README there): `dmesg`, `dmesg -T`, `journalctl -k` in
short and short-iso output are sniffed as kernel logs by content and read into records and `kernel` rows
(pid, process name, anon-rss, constraint, memcg; segfaults with their library). Times become wall clock
only when the file writes one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from analyzer import sniff
from analyzer.sources import kernel_log

DATA = Path(__file__).parent.parent / "data" / "kernel"
SAMPLE_DMESG = Path(__file__).parent.parent.parent / "samples" / "worker-cgroup-oom" / "dmesg.txt"

# file → (pid, wall clock of the kill as the file writes it, or None for seconds since boot)
OOM_FILES = {
    SAMPLE_DMESG: (8572, None),
    DATA / "worker-cgroup-oom-dmesg-T.txt": (8572, datetime(2026, 12, 8, 1, 13, 52)),
    DATA / "oom2-dmesg.txt": (14981, None),
    DATA / "oom2-dmesg-T.txt": (14981, datetime(2026, 12, 8, 1, 18, 56)),  # dmesg -T and journald disagree by 1 s
    DATA / "oom2-journalctl-k-short-iso.txt": (14981, datetime(2026, 12, 8, 1, 18, 57)),
    DATA / "oom2-journalctl-k-short.txt": (14981, None),  # syslog time has no year: not made up
}


@pytest.mark.parametrize("path", [*OOM_FILES, DATA / "segfault-dmesg.txt", DATA / "segfault-dmesg-T.txt"],
                         ids=lambda p: p.name)
def test_kernel_logs_are_sniffed_by_content(path: Path) -> None:
    assert sniff.sniff(path.read_bytes()[:4096]) == "kernel_log"


@pytest.mark.parametrize("path", [DATA / "oom2-worker.log", SAMPLE_DMESG.parent / "worker.log"], ids=lambda p: p.name)
def test_a_worker_log_is_no_kernel_log(path: Path) -> None:
    assert sniff.sniff(path.read_bytes()[:4096]) == "celery_log"


@pytest.mark.parametrize("path", list(OOM_FILES), ids=lambda p: p.name)
def test_the_oom_kill_and_its_summary_become_kernel_rows(path: Path) -> None:
    pid, wall = OOM_FILES[path]
    frames, cov = kernel_log.parse(path.read_bytes(), source=path.name)
    kernel = frames["kernel"]
    assert kernel.get_column("event").to_list() == ["oom_summary", "oom_kill"]
    kill = kernel.row(1, named=True)
    assert (kill["pid"], kill["comm"], kill["constraint"]) == (pid, "celery", "CONSTRAINT_MEMCG")
    assert kill["memcg"].startswith("/cpm-oom-") and kill["anon_rss_kb"] > 200_000 and kill["line"] == 79
    assert kill["ts"] == wall
    # every line is a record, in order, and the coverage accounts for all of them
    assert frames["events"].height == cov.lines == cov.parsed == 79 and cov.unrecognized == 0
    assert frames["events"].get_column("line").to_list() == list(range(1, 80))
    relative = any("seconds since boot" in n for n in cov.notes)
    assert relative == (wall is None and "journalctl" not in path.name)


def test_plain_dmesg_keeps_seconds_since_boot_and_no_wall_clock() -> None:
    frames, _ = kernel_log.parse(SAMPLE_DMESG.read_bytes(), source="dmesg.txt")
    kill = frames["kernel"].filter(pl.col("event") == "oom_kill").row(0, named=True)
    assert kill["uptime_s"] == pytest.approx(327.364661) and kill["ts"] is None
    assert frames["events"].get_column("ts").null_count() == frames["events"].height


def test_journald_keeps_the_machine_as_host() -> None:
    path = DATA / "oom2-journalctl-k-short-iso.txt"
    frames, _ = kernel_log.parse(path.read_bytes(), source=path.name)
    assert frames["kernel"].get_column("host").unique().to_list() == ["vm"]
    # the prefix is gone from the message: rules read the kernel's own words
    assert frames["events"].filter(pl.col("line") == 79).get_column("message").item().startswith(
        "Memory cgroup out of memory: Killed process 14981 (celery)")


@pytest.mark.parametrize("name", ["segfault-dmesg.txt", "segfault-dmesg-T.txt"])
def test_a_segfault_names_pid_process_and_library(name: str) -> None:
    frames, _ = kernel_log.parse((DATA / name).read_bytes(), source=name)
    row = frames["kernel"].row(0, named=True)
    assert (row["event"], row["pid"], row["comm"], row["library"]) == ("segfault", 8741, "python3", "libc.so.6")
    assert (row["ts"] is None) == (name == "segfault-dmesg.txt")


def test_kernel_rows_of_a_bundle_and_the_shipped_rules_on_its_lines() -> None:
    from analyzer import open_bundle

    bundle = open_bundle([DATA / "oom2-journalctl-k-short.txt"])
    assert bundle.frame_map()["kernel"].height == 2
    assert "CP-W020" in {f.rule for f in bundle.report().findings}


def test_an_older_kernel_chooses_then_kills() -> None:
    """A 4.x kernel's lines as a user pasted them (tests/corpus/excerpts, its URL in the .toml beside it): the victim
    chosen (`Kill process … or sacrifice child`), killed, reaped; then a segfault."""
    path = Path(__file__).parent.parent / "corpus" / "excerpts" / "vgmdb-18-dmesg-segfault.log"
    frames, _ = kernel_log.parse(path.read_bytes(), source=path.name)
    rows = frames["kernel"].select("event", "pid", "comm").rows()
    assert rows == [("oom_select", 4958, "celery"), ("oom_kill", 4958, "celery"), ("oom_reaped", 4958, "celery"),
                    ("segfault", 4960, "celery")]
