"""Benchmark of the dump parsers (not collected by pytest: run it as a script).

    /work/main/.venv/bin/python tests/benchmarks/bench_dumps.py [--dumps 1000] [--threads 200]

Builds, from the structure of real samples (their thread blocks repeated with perturbed ids and
line numbers), N py-spy text dumps of T threads each and a gdb ``thread apply all bt`` of 500
threads, then times:

- py-spy, one file per dump (`pyspy.parse_lines` + `finish` per dump);
- py-spy, all dumps in one call (`pyspy.parse_many`: one lines frame, one pass);
- gdb text of 500 threads.

Target (issue "Thread dumps and live-state snapshots"): 1,000 dumps of 200 threads in ≤ 10 s on
2 cores.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pyspy_blocks(text: str) -> tuple[str, list[str]]:
    """Header and thread blocks of a real py-spy dump."""
    lines = text.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("Thread "))
    header = "\n".join(lines[:first])
    blocks: list[list[str]] = []
    for ln in lines[first:]:
        if ln.startswith("Thread "):
            blocks.append([ln])
        elif blocks:
            blocks[-1].append(ln)
    return header, ["\n".join(b) for b in blocks]


def _sample(pattern: str) -> str:
    found = sorted(ROOT.glob(pattern))
    if not found:
        raise SystemExit(f"no sample matches {pattern}")
    return found[0].read_text()


def make_pyspy(n_dumps: int, n_threads: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    sources = [_sample("samples/deadlock-lock/pyspy-[0-9]*.txt"), _sample("samples/lock-wait-many/pyspy-[0-9]*.txt"),
               _sample("samples/deadlock-pthread/pyspy-native.txt"), _sample("samples/hang-socket-read/pyspy-1.txt")]
    blocks: list[str] = []
    header = ""
    for s in sources:
        h, b = _pyspy_blocks(s)
        header = header or h
        blocks.extend(b)
    out = []
    for d in range(n_dumps):
        pid = 20000 + d
        parts = [re.sub(r"^Process \d+:", f"Process {pid}:", header, flags=re.M), ""]
        for t in range(n_threads):
            b = blocks[rnd.randrange(len(blocks))]
            b = re.sub(r"^Thread \d+", f"Thread {pid + t}", b, count=1)
            if rnd.random() < 0.3:  # perturb a line number: a thread that moved
                b = re.sub(r"\.py:(\d+)\)", lambda m: f".py:{int(m.group(1)) + rnd.randrange(3)})", b, count=1)
            parts.append(b)
        out.append("\n".join(parts) + "\n")
    return out


def make_gdb(n_threads: int) -> str:
    text = _sample("samples/deadlock-lock/gdb-bt.txt")
    blocks = re.split(r"\n(?=Thread \d+ \()", text)
    pre, threads = blocks[0], [b.strip("\n") for b in blocks[1:]]
    parts = [pre]
    for i in range(n_threads, 0, -1):
        b = threads[i % len(threads)]
        b = re.sub(r"^Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP \d+\)",
                   f"Thread {i} (Thread 0x7f{i:010x} (LWP {30000 + i})", b, count=1)
        parts.append(b)
    return "\n\n".join(parts) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dumps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=200)
    args = ap.parse_args()

    import polars as pl

    from analyzer.analyses.threads import finish
    from analyzer.sources import gdb, pyspy
    from analyzer.sources.lines import read_lines

    print(f"polars {pl.__version__}, {pl.thread_pool_size()} threads, {os.cpu_count()} cpus")
    t0 = time.perf_counter()
    dumps = make_pyspy(args.dumps, args.threads)
    size = sum(len(d) for d in dumps)
    print(f"built {len(dumps)} py-spy dumps x {args.threads} threads ({size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - t0:.1f}s")

    print(f"load average before: {os.getloadavg()[0]:.1f} (other processes share the cores)")
    t0, c0 = time.perf_counter(), time.process_time()
    threads, frames = pyspy.parse_many([(f"dump-{i}.txt", d.encode()) for i, d in enumerate(dumps)])
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"py-spy bulk  : {dt:6.2f}s wall, {cpu:6.2f}s CPU  {threads.height:,} threads, {frames.height:,} frames, "
          f"{threads.height / dt:,.0f} threads/s, {len(dumps) / dt:,.0f} dumps/s")
    print("  states:", dict(threads.group_by("state").len().sort("state").iter_rows()))

    n = min(len(dumps), 100)
    t0 = time.perf_counter()
    th = 0
    for i, d in enumerate(dumps[:n]):
        raw = pyspy.parse_lines(read_lines(d.encode()), source=f"dump-{i}.txt")
        t, _ = finish(raw)
        th += t.height
    dt = time.perf_counter() - t0
    print(f"py-spy 1/file: {dt:6.2f}s for {n} dumps ({th:,} threads, {th / dt:,.0f} threads/s; "
          f"{len(dumps) * dt / n:.1f}s projected for {len(dumps)})")

    text = make_gdb(500)
    t0 = time.perf_counter()
    t, f, raw = gdb.parse_text(text, source="gdb-500.txt")
    dt = time.perf_counter() - t0
    print(f"gdb 500 thr  : {dt:6.2f}s  {t.height} threads, {f.height:,} frames, {t.height / dt:,.0f} threads/s, "
          f"unrecognised {raw.unrecognized}")


if __name__ == "__main__":
    main()
