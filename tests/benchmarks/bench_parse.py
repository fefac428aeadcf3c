"""Parse throughput and peak memory of `analyze --format json` on a large generated log.

Not part of the test run. Usage:

    python tests/benchmarks/bench_parse.py [--mb 300] [--keep PATH]

The log is built (seeded) from real lines of the sample bundles — received / succeeded / task
logger lines, retry warnings, tracebacks and broker errors — with fresh timestamps and ids that
follow tasks through their lives (a task's received, logger and end lines share its id). The
baseline, measured in the same run on the same file, is a plain Python `re` loop over the lines
that parses the same header fields. Each measurement runs in a fresh subprocess so peak RSS is
its own.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): ([A-Z]+)/([^\]]+)\] (.*)$")


def _real_records() -> list[list[str]]:
    """Records (header + continuation lines) taken from real sample logs."""
    records: list[list[str]] = []
    for log in sorted(ROOT.glob("samples/*/worker.log")):
        current: list[str] | None = None
        for line in log.read_text(errors="replace").splitlines():
            if HEADER.match(line):
                current = [line]
                records.append(current)
            elif current is not None:
                current.append(line)
    return records


def generate(path: Path, megabytes: int, seed: int = 42) -> int:
    rnd = random.Random(seed)
    recs = _real_records()
    lifecycle = [r for r in recs if re.search(r"\] (Task \S+ (received|succeeded)|\S+\[[0-9a-f-]{36}\]: )", r[0])]
    rare = [r for r in recs if r not in lifecycle]
    uuid_re = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    t = datetime(2026, 5, 1, 3, 0, 0)
    target = megabytes << 20
    inflight: deque[str] = deque()  # ids received and not yet finished: a task's lines share its id
    written = 0
    with path.open("w") as f:
        while written < target:
            block = []
            for _ in range(2000):
                rec = rnd.choice(rare) if rnd.random() < 0.03 else rnd.choice(lifecycle)
                t += timedelta(milliseconds=rnd.randint(0, 9))
                stamp = t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d}"
                tid = str(uuid.UUID(int=rnd.getrandbits(128)))
                if "] received" in rec[0] or "Received task:" in rec[0]:
                    inflight.append(tid)
                elif inflight and re.search(r"\]: ", rec[0]):  # task logger line of a running task
                    tid = inflight[0]
                elif inflight:  # succeeded / failed / retried: the oldest running task ends
                    tid = inflight.popleft()
                first = uuid_re.sub(tid, "[" + stamp + rec[0][24:], count=1)
                block.append("\n".join([first, *rec[1:]]))
            chunk = "\n".join(block) + "\n"
            f.write(chunk)
            written += len(chunk)
    return written


ANALYZE = """
import sys, resource, time
t = time.perf_counter()
from analyzer import open_bundle
from analyzer.engine.catalogue import load_catalogue
from analyzer.engine.evaluate import evaluate
from analyzer.renderers import RenderOptions, registry
b = open_bundle(sys.argv[1])
n = b.events.height
t_events = time.perf_counter() - t
b.tasks
t_tasks = time.perf_counter() - t - t_events
t0 = time.perf_counter()
frames = b.frame_map()  # the derived frames: threads, waits, cycles, stuck, diagnostics
t_derived = time.perf_counter() - t0
rules, _ = load_catalogue()
t0 = time.perf_counter()
evaluate(rules, frames)
t_rules = time.perf_counter() - t0
rep = b.report()
out = registry()["json"](rep, RenderOptions())
total = time.perf_counter() - t - t_rules  # the report ran the rules again: count them once
print(total, t_events, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n, t_tasks, t_rules, len(rules),
      t_derived)
"""

RE_LOOP = """
import re, sys, resource, time
HEADER = re.compile(r"^\\[(\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d,\\d{3}): ([A-Z]+)/([^\\]]+)\\] (.*)$")
t = time.perf_counter()
n = 0
rows = []
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for line in f:
        m = HEADER.match(line)
        if m:
            rows.append(m.groups())
            n += 1
total = time.perf_counter() - t
print(total, total, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n, 0, 0, 0, 0)
"""

# The stage PERF-NOTES.md measures: lines read into a frame and header fields split by position
# (timestamp, level, process, message), piece by piece as `analyze` reads a big log; no folding,
# no lifecycle classification.
HEADERS = """
import sys, resource, time
t = time.perf_counter()
from pathlib import Path
import polars as pl
from analyzer.sources import celery_log as C
from analyzer.sources.lines import read_lines, record_spans
p = Path(sys.argv[1])
n = 0
for span in record_spans(p, C.PIECE_BYTES, C._header_start):
    df = read_lines(p, span=span).frame.with_columns(C._default_candidates().alias("_hdr"))
    n += C._default_fields(df.filter(pl.col("_hdr"))).height
total = time.perf_counter() - t
print(total, total, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n, 0, 0, 0, 0)
"""


def _run(code: str, path: Path) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True,
                         cwd=ROOT).stdout.split()
    return [float(x) for x in out]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=300)
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = args.keep or Path(d) / "big-worker.log"
        t = time.perf_counter()
        size = path.stat().st_size if args.keep and path.exists() else generate(path, args.mb)
        mb = size / (1 << 20)
        print(f"generated {mb:.0f} MB in {time.perf_counter() - t:.1f}s ({path})")
        results = {}
        runs = (("celery-postmortem analyze --format json", ANALYZE), ("python re loop (baseline)", RE_LOOP),
                ("read + header fields only (PERF-NOTES stage)", HEADERS))
        for name, code in runs:
            total, t_events, rss_kb, rows, t_tasks, t_rules, n_rules, t_derived = _run(code, path)
            results[name] = total
            print(f"{name:46} {total:6.2f}s  {mb / total:7.1f} MB/s  peak RSS {rss_kb / 1024:7.0f} MB "
                  f"({rss_kb * 1024 / size:.2f}x file)  rows {rows:.0f}")
            if n_rules:
                print(f"{'  of which: parse to events':46} {t_events:6.2f}s  {mb / t_events:7.1f} MB/s")
                print(f"{'            tasks frame':46} {t_tasks:6.2f}s")
                print(f"{'            other derived frames':46} {t_derived:6.2f}s")
                print(f"{'            rule evaluation':46} {t_rules:6.2f}s  ({n_rules:.0f} rules, "
                      f"{mb / t_rules:.1f} MB/s)")
        a, b, h = results.values()
        print(f"speed-up over the re loop: analyze {b / a:.1f}x, read + header fields {b / h:.1f}x")
        print(json.dumps({"mb": round(mb), "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
