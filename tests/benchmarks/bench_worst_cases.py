"""Time every parser on crafted worst cases at N and 10N (not collected by pytest: run it as a script).

    .venv/bin/python tests/benchmarks/bench_worst_cases.py [--scale 1.0] [--only gdb]

The cases are `tests.worst_cases.CASES` (gdb frames whose `(` never closes, inspect files of
unclosed `{`, long lines made for backtracking regexes, ...). For each: the input's bytes at N,
the best of three parse times (CPU time of this process, so other load on the machine does not
count; polars' threads add theirs) at N and at 10N, and their ratio. A linear parser gives about 10
(less when fixed costs dominate at N); a quadratic one about 100. Rows with a ratio over 25 are
marked.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.worst_cases import CASES, Case, member, parse  # noqa: E402

SUSPECT = 25.0


def best_time(case: Case, n: int, repeat: int = 3) -> float:
    best = float("inf")
    m = member(case, n)
    gc.collect()
    gc.disable()  # the cyclic GC's full passes grow with what a run allocates: not the parser's complexity
    try:
        for _ in range(repeat):
            t0 = time.process_time()
            parse(case, m)
            best = min(best, time.process_time() - t0)
    finally:
        gc.enable()
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every case's N")
    ap.add_argument("--only", default="", help="run the cases whose name contains this")
    args = ap.parse_args()
    print(f"{'case':28} {'parser':20} {'bytes N':>10} {'t(N) s':>9} {'t(10N) s':>9} {'ratio':>6}")
    worst = 0.0
    for case in CASES:
        if args.only not in case.name:
            continue
        n = max(1, int(case.n * args.scale))
        parse(case, member(case, n))  # warm-up: imports, polars' first-call costs
        t1, t10 = best_time(case, n), best_time(case, 10 * n)
        ratio = t10 / t1 if t1 > 0 else float("inf")
        worst = max(worst, ratio)
        mark = "  <-- super-linear?" if ratio > SUSPECT else ""
        print(f"{case.name:28} {case.kind:20} {len(case.build(n)):>10} {t1:>9.4f} {t10:>9.4f} {ratio:>6.1f}{mark}",
              flush=True)
    print(f"worst ratio: {worst:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
