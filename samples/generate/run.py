"""Produce sample bundles: `python samples/generate/run.py NAME... | all | --list`.

Each scenario lives in `scenarios/<group>.py` as an entry of that module's `SCENARIOS` list.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import SAMPLES, Scenario, produce  # noqa: E402


def scenarios() -> dict[str, Scenario]:
    found: dict[str, Scenario] = {}
    for mod_path in sorted((HERE / "scenarios").glob("*.py")):
        if mod_path.name.startswith("_"):
            continue
        mod = importlib.import_module(f"scenarios.{mod_path.stem}")
        for sc in getattr(mod, "SCENARIOS", []):
            if sc.name in found:
                raise SystemExit(f"duplicate scenario name {sc.name} in {mod_path.name}")
            found[sc.name] = sc
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="*", help="scenario names, or 'all'")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--out", type=Path, default=SAMPLES, help="where bundles go (default: samples/)")
    ap.add_argument("--keep-scratch", action="store_true", help="also copy the scratch dir for debugging")
    args = ap.parse_args(argv)
    known = scenarios()
    if args.list or not args.names:
        for name, sc in known.items():
            print(f"{name:32} {sc.description.strip().splitlines()[0]}")
        return 0
    names = list(known) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        t = time.monotonic()
        try:
            out = produce(known[name], args.out, keep_scratch=args.keep_scratch)
        except Exception as exc:  # report and go on with the other scenarios
            failed += 1
            print(f"FAIL {name}: {exc}", file=sys.stderr)
            continue
        print(f"ok   {name} -> {out} ({time.monotonic() - t:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
