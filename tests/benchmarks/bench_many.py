"""Benchmark of `analyze-many` (issue 18; not collected by pytest: run it as a script).

    .venv/bin/python tests/benchmarks/bench_many.py [--bundles 100] [--jobs 2] [--cluster]

Builds a directory of N bundles, copies of the sample bundles taken in turn (real artifacts, the
same bytes), then times `celery-postmortem analyze-many DIR --out-dir OUT -f json` serially
(`--jobs 1`), with `--jobs J` processes and, with `--cluster`, on a LocalCluster of J workers;
each run in a fresh process, wall time and bundles per second printed, and the per-bundle reports
of the runs compared byte for byte (they must be equal).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


def build(root: Path, n: int) -> int:
    """N bundle directories `b0000-NAME` copied from the samples in turn; their total bytes."""
    samples = sorted(p.parent for p in SAMPLES.glob("*/expected.json"))
    total = 0
    for i in range(n):
        src = samples[i % len(samples)]
        dst = root / f"b{i:04d}-{src.name}"
        shutil.copytree(src, dst)
        total += sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
    return total


def timed(bundles: Path, out: Path, *args: str) -> float:
    cmd = [sys.executable, "-m", "analyzer", "analyze-many", str(bundles), "--out-dir", str(out), "-f", "json",
           "--summary", "json", "-o", str(out.parent / f"{out.name}-summary.json"), *args]
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode not in (0, 2):  # 2: some samples are inconclusive on purpose
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-500:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundles", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cluster", action="store_true", help="also time a LocalCluster of --jobs workers")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cpm-bench-many-") as tmp:
        root = Path(tmp)
        (root / "bundles").mkdir()
        size = build(root / "bundles", args.bundles)
        print(f"{args.bundles} bundles, {size / 1e6:.1f} MB")
        runs = [("serial (--jobs 1)", "serial", ["--jobs", "1"]),
                (f"--jobs {args.jobs}", "jobs", ["--jobs", str(args.jobs)])]
        if args.cluster:
            runs.append((f"--cluster local ({args.jobs} workers)", "cluster", ["--cluster", "local", "--jobs",
                                                                                 str(args.jobs)]))
        base = None
        for label, name, extra in runs:
            took = timed(root / "bundles", root / name, *extra)
            rate = args.bundles / took
            speed = "" if base is None else f", x{base / took:.2f} of serial"
            print(f"{label:34} {took:7.1f} s  {rate:6.2f} bundles/s{speed}")
            base = base or took
        for _, name, _ in runs[1:]:
            same = filecmp.dircmp(root / "serial", root / name)
            equal = not (same.diff_files or same.left_only or same.right_only) and filecmp.cmp(
                root / "serial-summary.json", root / f"{name}-summary.json", shallow=False)
            print(f"reports and summary of {name} equal to serial: {equal}")


if __name__ == "__main__":
    main()
