"""What `--plots` costs on a large generated log: time added to `analyze`, and each figure's size.

Not part of the test run. Usage:

    python tests/benchmarks/bench_plots.py [--mb 200] [--keep PATH]

The log is `bench_parse.generate`'s (seeded, real sample lines). The baseline, measured in the
same run on the same file, is `analyze --format json -o` without `--plots`; each run is a fresh
subprocess, timed by wall clock and by CPU (user + system: steadier when other work shares the
machine). Issue #14's targets: `--plots` adds at most 10%, and no figure is over 2 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_parse import ROOT, generate

MAX_BYTES = 2 << 20


def _analyze(path: Path, out: Path, plots: Path | None) -> tuple[float, float]:
    """(wall, CPU) seconds of one `analyze` run in a fresh process."""
    cmd = [sys.executable, "-m", "analyzer", "analyze", str(path), "--format", "json", "-o", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([*cmd, *(["--plots", str(plots)] if plots else [])], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = args.keep or Path(d) / "big-worker.log"
        size = path.stat().st_size if args.keep and path.exists() else generate(path, args.mb)
        print(f"log: {size / (1 << 20):.0f} MB ({path}); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        wall0, cpu0 = _analyze(path, Path(d) / "plain.json", None)
        wall1, cpu1 = _analyze(path, Path(d) / "plots.json", Path(d) / "plots")
        print(f"analyze            {wall0:7.1f}s wall {cpu0:7.1f}s CPU")
        print(f"analyze --plots    {wall1:7.1f}s wall {cpu1:7.1f}s CPU")
        print(f"--plots adds       {100 * (wall1 / wall0 - 1):+6.1f}% wall {100 * (cpu1 / cpu0 - 1):+6.1f}% CPU "
              "(target: at most +10%)")
        for p in sorted((Path(d) / "plots").iterdir()):
            n = p.stat().st_size
            print(f"  {p.name:20} {n:>12,} bytes{'  OVER 2 MB' if n > MAX_BYTES else ''}")


if __name__ == "__main__":
    main()
