"""Benchmark of `analyze-many` (issue 18; not collected by pytest: run it as a script).

    .venv/bin/python tests/benchmarks/bench_many.py [--bundles 100] [--jobs 2] [--cluster]
                                                    [--big-mb 0 --hosts 4]

Builds a directory of N bundles, copies of the sample bundles taken in turn (real artifacts, the
same bytes), then times `celery-postmortem analyze-many DIR --out-dir OUT -f json` serially
(`--jobs 1`), with `--jobs J` processes and, with `--cluster`, on a LocalCluster of J workers;
each run in a fresh process, wall time and bundles per second printed, and the per-bundle reports
of the runs compared byte for byte (they must be equal).

With `--big-mb M`, also one multi-host bundle of M MB: `--hosts` worker logs generated as
`bench_parse.generate` makes them (real lines of the samples, fresh times and ids; each file its
own host), analysed in one process and with `--cluster local`, its logs' pieces mapped on the
workers (`CPM_CLUSTER_CHUNKED_BYTES=1` makes it count as big).
"""

from __future__ import annotations

import argparse
import filecmp
import os
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


def build_big(root: Path, megabytes: int, hosts: int) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.benchmarks.bench_parse import generate

    bundle = root / "big-bundle"
    bundle.mkdir(parents=True)
    return sum(generate(bundle / f"w{i + 1}.log", max(1, megabytes // hosts), seed=i) for i in range(hosts))


def timed(bundles: Path, out: Path, *args: str, env: dict[str, str] | None = None) -> float:
    cmd = [sys.executable, "-m", "analyzer", "analyze-many", str(bundles), "--out-dir", str(out), "-f", "json",
           "--summary", "json", "-o", str(out.parent / f"{out.name}-summary.json"), *args]
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
                          env={**os.environ, **(env or {})})
    took = time.perf_counter() - start
    if done.returncode not in (0, 2):  # 2: some samples are inconclusive on purpose
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-500:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundles", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cluster", action="store_true", help="also time a LocalCluster of --jobs workers")
    ap.add_argument("--big-mb", type=int, default=0, help="also time one multi-host bundle of this many MB")
    ap.add_argument("--hosts", type=int, default=4, help="worker logs (hosts) of the big bundle")
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
        if args.big_mb:
            size = build_big(root / "big", args.big_mb, args.hosts)
            print(f"one bundle of {args.hosts} hosts, {size / 1e6:.0f} MB")
            one = timed(root / "big", root / "big-one", "--jobs", "1")
            print(f"{'one process':34} {one:7.1f} s  {size / 1e6 / one:6.1f} MB/s")
            on = timed(root / "big", root / "big-cluster", "--cluster", "local", "--jobs", str(args.jobs),
                       env={"CPM_CLUSTER_CHUNKED_BYTES": "1"})
            print(f"{f'pieces on a LocalCluster ({args.jobs})':34} {on:7.1f} s  {size / 1e6 / on:6.1f} MB/s")
            same = filecmp.dircmp(root / "big-one", root / "big-cluster")
            print(f"report of the cluster equal to one process: {not (same.diff_files or same.left_only)}")


if __name__ == "__main__":
    main()
