"""`/proc` fd listings, `/proc/PID/{stat,wchan,syscall,stack}` and `ps` output, on the real
samples and on what this machine's kernel prints right now for a writer blocked on a full pipe."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from analyzer.sniff import sniff
from analyzer.sources import procfs, ps
from analyzer.sources.lines import read_lines
from tests.conftest import REQUIRE_LIVE, SAMPLES

PIPE = SAMPLES / "deadlock-pipe"
POOL, CHILD, INODE = 14700, 14714, 26446  # the task's pool child, the process it joins, the pipe between them
WORKER = 14698  # the worker (MainProcess), parent of POOL


def _procfs(path: Path) -> tuple[dict[str, pl.DataFrame], int]:
    assert sniff(path.read_bytes()[:4096]) == "procfs"
    frames, cov = procfs.parse_lines(read_lines(path), source=path.name)
    assert cov.parsed == cov.lines
    return frames, cov.unrecognized


def test_fd_listing_gives_each_pipe_end_per_process() -> None:
    frames, unrecognized = _procfs(PIPE / "proc-fd.txt")
    assert unrecognized == 0
    fds = frames["proc_fds"]
    assert set(fds["pid"]) == {POOL, CHILD} and fds["tid"].null_count() == fds.height
    pipe = fds.filter(pl.col("inode") == INODE).sort("pid", "fd")
    assert pipe.select("pid", "fd", "mode", "target").rows() == [
        (POOL, 10, "r", f"pipe:[{INODE}]"), (POOL, 11, "w", f"pipe:[{INODE}]"),
        (CHILD, 10, "r", f"pipe:[{INODE}]"), (CHILD, 11, "w", f"pipe:[{INODE}]"),
    ]
    assert pipe["line"].to_list() == [5, 6, 30, 31]
    objects = dict(fds.group_by("object").len().rows())
    assert objects["anon_inode"] == 6 and objects["file"] == 18 and objects["pipe"] == 20
    rw = fds.filter(pl.col("mode") == "rw")
    assert set(rw["object"]) == {"anon_inode", "file"}  # eventpoll and the deleted pymp file: `lrwx`
    assert frames["processes"].is_empty()


def test_kernel_state_gives_ppid_wait_channel_syscall_and_stack() -> None:
    frames, unrecognized = _procfs(PIPE / "proc-state.txt")
    assert unrecognized == 0 and frames["proc_fds"].is_empty()
    rows = {r["pid"]: r for r in frames["processes"].iter_rows(named=True)}
    parent, child = rows[POOL], rows[CHILD]
    assert (parent["ppid"], parent["comm"], parent["state"]) == (WORKER, "celery", "S")
    assert parent["wchan"] == "do_wait" and parent["syscall"] == 61  # wait4 on x86_64
    assert int(parent["syscall_args"][0], 16) == CHILD
    assert parent["kstack"] == ["do_wait", "kernel_wait4", "do_syscall_64", "entry_SYSCALL_64_after_hwframe"]
    assert child["ppid"] == POOL and child["wchan"] == "anon_pipe_write" and child["syscall"] == 1
    assert child["syscall_args"][0] == "0xb" and len(child["syscall_args"]) == 6  # write(11, …)
    assert child["kstack"][0] == "anon_pipe_write"
    assert (child["line"], child["wchan_line"], child["syscall_line"]) == (8, 9, 10)


@pytest.mark.parametrize(("sample", "pids"), [
    ("deadlock-pipe", {WORKER: "do_epoll_wait", POOL: "do_wait", CHILD: "anon_pipe_write"}),
    ("fork-lock", {1262: None, 1266: None}),
])
def test_ps_columns_by_header(sample: str, pids: dict[int, str | None]) -> None:
    path = SAMPLES / sample / "ps.txt"
    assert sniff(path.read_bytes()[:4096]) == "ps"
    frame, cov = ps.parse_lines(read_lines(path), source="ps.txt")
    assert cov.unrecognized == 0 and cov.lines == len(pids) + 1
    got = {r["pid"]: r for r in frame.iter_rows(named=True)}
    assert {p: r["wchan"] for p, r in got.items()} == pids
    assert all(r["cmd"].endswith("-n w1@sample -f worker.log") for r in got.values())
    if sample == "fork-lock":  # `ps -o pid,ppid,comm,args`: COMMAND twice, the first is comm
        assert got[1266]["ppid"] == 1262 and got[1266]["comm"] == "celery" and got[1266]["state"] is None
    else:
        assert got[CHILD]["ppid"] == POOL and got[POOL]["state"] == "S" and got[WORKER]["state"] == "Ss"


def test_other_samples_are_not_taken_for_proc_or_ps_output() -> None:
    for path in SAMPLES.glob("*/*"):
        if path.is_file() and path.parent.name not in ("deadlock-pipe", "deadlock-queue", "fork-lock"):
            assert sniff(path.read_bytes()[:4096]) not in ("procfs", "ps"), path


# --- live: what this kernel prints for a process blocked writing a full pipe --------------------------
@pytest.fixture()
def blocked_writer() -> Iterator[tuple[int, int, int]]:
    """A child writing 1 MiB to a pipe nobody reads: (its pid, our read fd, the pipe inode)."""
    if not Path("/proc/self/syscall").exists():
        reason = "needs Linux /proc/PID/syscall (absent here)"
        if REQUIRE_LIVE:
            pytest.fail(f"CPM_REQUIRE_LIVE=1 but this test {reason}")
        pytest.skip(reason)
    r, w = os.pipe()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'x' * (1 << 20))"],
                             stdout=w)
    os.close(w)
    try:
        for _ in range(100):
            if "pipe_write" in Path(f"/proc/{child.pid}/wchan").read_text():
                break
            time.sleep(0.05)
        yield child.pid, r, os.fstat(r).st_ino
    finally:
        child.kill()
        child.wait()
        os.close(r)


def _run(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True).stdout


def test_live_blocked_writer(blocked_writer: tuple[int, int, int]) -> None:
    pid, r, inode = blocked_writer
    state = _run("grep", "-H", ".", *(f"/proc/{pid}/{n}" for n in ("stat", "wchan", "syscall", "stack")))
    # the full-path form of fd links (`ls -l /proc/PID/fd/N`): each line names its pid
    links = _run("ls", "-l", f"/proc/{pid}/fd/1", f"/proc/{os.getpid()}/fd/{r}")
    for text in (state, links):
        assert sniff(text.encode()) == "procfs"
    frames, cov = procfs.parse_text(state, source="state")
    assert cov.unrecognized == 0
    row = frames["processes"].row(0, named=True)
    assert row["pid"] == pid and row["ppid"] == os.getpid() and row["wchan"].endswith("pipe_write")
    assert row["kstack"][0].endswith("pipe_write")
    if os.uname().machine == "x86_64":
        assert row["syscall"] == 1 and int(row["syscall_args"][0], 16) == 1  # write(1, …)
    fds = procfs.parse_text(links, source="links")[0]["proc_fds"]
    assert sorted(fds.select("pid", "fd", "mode", "inode").rows()) == sorted(
        [(pid, 1, "w", inode), (os.getpid(), r, "r", inode)])


def test_live_blocked_writer_waits_for_the_reader(blocked_writer: tuple[int, int, int]) -> None:
    """The kernel's own words make a proven pipe edge: the writer waits for us, the only reader
    (x86_64 and aarch64 syscall numbers are known; the architecture is read off the kernel stack)."""
    from analyzer.analyses import waits

    pid, _, inode = blocked_writer
    state = _run("grep", "-H", ".", *(f"/proc/{pid}/{n}" for n in ("stat", "wchan", "syscall", "stack")))
    links = _run("ls", "-l", f"/proc/{pid}/fd", f"/proc/{os.getpid()}/fd")
    frames = {**procfs.parse_text(links, source="fd")[0]}
    frames["processes"] = procfs.parse_text(state, source="state")[0]["processes"]
    w = waits.build(frames)
    assert w.select("waiter", "resource", "holder", "kind", "inferred").rows() == [
        (f"?/{pid}/{pid}", f"pipe:[{inode}]", f"?/{os.getpid()}/{os.getpid()}", "pipe", False)]
