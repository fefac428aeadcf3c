"""Throughput, peak memory and lnav ratio of `analyze --format json` on generated logs (issue #14).

Not part of the test run (pytest collects test_*.py only). Usage:

    .venv/bin/python tests/benchmarks/bench_stream.py --sizes 200M,2G [--variants plain,gzip] [--repeat 3]
    .venv/bin/python tests/benchmarks/bench_stream.py --sizes 200M --check-equal --mode-b "CPM_PIECE_BYTES=1048576"

Each size is generated (seeded, so the same bytes every time) by tests/benchmarks/bench_parse.py's
generator — real lines of the sample bundles with fresh timestamps and ids — into a temporary
directory that is deleted afterwards; `--variants gzip` also measures the same log gzip'd. On each
input, in fresh subprocesses taken in turn (analyze, lnav, analyze, lnav ...):

- `celery-postmortem analyze --format json -o REPORT FILE`: wall time and peak RSS (the child's own
  rusage from wait4). The report must name the file as a parsed `celery_log`, else the row is an error.
- lnav, the tool operators use today, with tests/benchmarks/lnav/celery_log.json, counting records by
  level. Its counts must add up to the log's header lines (counted by grep), else the row is an error:
  lnav silently falls back to another format, or to none, when a format does not match.

The table gives the targets of issue #14 as pass/fail columns: >= 150 MB/s, >= 1.5x faster than lnav
(ratio = lnav s / analyze s, the aim beyond the issue is 3x), peak RSS <= 1 GiB. MB are MiB (2^20
bytes) of the uncompressed log, as in bench_parse.py, also for the gzip'd input. `load` is the 1-minute
load average before the row's runs: the machine is shared, compare rows of one run, not runs, and
read the CPU seconds (user + system of the child) beside the wall seconds, which load inflates.

`--check-equal` runs analyze once more per input in mode B (environment assignments and extra CLI
arguments, e.g. "CPM_PIECE_BYTES=1048576"; `--chunk-env` names the variable when B is not given) and
diffs its JSON report, minus timing keys, against mode A's.

Before figures: main at 6e1af08 (before the streaming rewrite), 2026-12-07 22:23-23:19 UTC, on this
2-core machine shared with other sessions; the 1-minute load was 4.6 to 14 throughout, so the wall
seconds are inflated (the CPU seconds are not) and no target is near either way. lnav 0.11.1.

    size  input        analyze s  cpu s  MB/s  peak MiB  lnav s  cpu s  lnav MiB  ratio  (runs, load)
    200M  plain           113.78      -   1.8      1325    8.45      -       104   0.08  (median of 3, 4.6)
    200M  gzip (45M)      109.25      -   1.8      1507   12.02      -       107   0.08  (median of 3, 8.9)
    200M  plain            61.96   38.0   3.2      1318    3.98    2.0       104   0.06  (1 run, 11.8)
    2G    plain   killed by --timeout 300 (195 s cpu): peak RSS >= 12161 MiB; lnav 29.51 s wall,
                  19.9 s cpu, 899 MiB (1 run, load 7.2). An earlier 2G run, stopped after 24 min
                  (>= 11.6 GiB), spent its last 20 min in diagnosis.with_lost_tasks -> _last_line:
                  one filter of the whole events frame per lost task (py-spy dump).
    10G   not run: 2G already needs 12 GiB and does not finish.
    all targets (>= 150 MB/s, >= 1.5x lnav, <= 1 GiB) FAIL. An outside whole-process timer agreed on
    200M plain (1 pair): analyze 119.3 s wall, 40.1 s cpu, 1300 MiB; lnav 8.9 s wall, 2.0 s cpu,
    104 MiB; lnav is 13x faster by wall time, 20x by CPU time. --check-equal with
    CPM_CHUNK_BYTES=1048576: equal on both 200M inputs, as it must be while analyzer/ ignores it.

After the task store (analyzer/pipeline/spill.py), branch h-perf at 6a5e840, 2026-12-08 02:33 UTC, load
3.3 (another session's pip install held one core for part of it), medians of 3:

    size  input        analyze s  cpu s  MB/s  peak MiB  lnav s  cpu s  lnav MiB  ratio
    200M  plain            10.22   13.4  19.6       734    1.64    1.9       104   0.16
    200M  gzip (45M)       14.14   14.1  14.2       729    2.43    2.4       107   0.17
    2G    plain  /usr/bin/time, 1 run beside the test suite: 229 s wall, 170 s cpu, peak 1545 MiB
                 (before: 326 s, 15.4 GB). Left over 1 GiB: the merged partial's kept records (rule
                 matches, 240 MB at 2 GB) and marks (4.2 M rows, 94 MB), and their top-level merge.
    10G   not run.
    >= 150 MB/s and >= 1.5x lnav FAIL (every line is still parsed in full); <= 1 GiB passes at 200M only.
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_parse import generate  # the seeded generator, shared rather than copied

ROOT = Path(__file__).resolve().parents[2]
LNAV_FORMAT = Path(__file__).resolve().parent / "lnav" / "celery_log.json"
LNAV_QUERY = ";SELECT log_level, count(*) FROM celery_log GROUP BY log_level"
LNAV_HINT = ("lnav not found: install it with `sudo apt-get install -y lnav` (Debian/Ubuntu; 0.11 was measured) "
             "or from https://lnav.org/downloads; the lnav columns are skipped")
# The header of Celery's default layout, as grep -E: "[2026-11-28 18:56:14,045: INFO/MainProcess] ..."
HEADER_ERE = r"^\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}: [A-Z]+/[^]]+\] "
HEADER_RE = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: [A-Z]+/[^\]]+\] ", re.M)
LNAV_ROW = re.compile(r"^\s*([a-z]+)\s+(\d+)\s*$")
ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
TARGET_MBS, TARGET_RATIO, TARGET_RSS_MIB = 150.0, 1.5, 1024.0


@dataclass
class Run:
    """One finished child: wall and CPU (user + system) seconds, peak RSS in MiB (its own, from wait4),
    exit code, output. CPU seconds move less than wall seconds when other work shares the machine."""

    wall: float
    cpu: float
    peak_mib: float
    rc: int
    out: str
    err: str


@dataclass
class Row:
    size: str
    variant: str
    mib: float
    load: float
    analyze: list[Run] = field(default_factory=list)
    lnav: list[Run] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_size(text: str) -> int:
    """'200M', '2G', '10G' (or a bare number of MiB) -> MiB."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([MG]?)i?B?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 200M, 2G)")
    return round(float(m[1]) * (1024 if m[2].upper() == "G" else 1))


def parse_mode(text: str) -> tuple[dict[str, str], list[str]]:
    """'A=1 B=2 --select X' -> ({'A': '1', 'B': '2'}, ['--select', 'X'])."""
    env: dict[str, str] = {}
    args: list[str] = []
    for tok in shlex.split(text):
        if ENV_ASSIGN.match(tok):
            k, v = tok.split("=", 1)
            env[k] = v
        else:
            args.append(tok)
    return env, args


def measure(cmd: list[str], env: dict[str, str] | None = None, timeout: float | None = None) -> Run:
    """Run cmd in a fresh process; its peak RSS is the child's own (wait4), not the max of all children."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=ROOT,
                             env={**os.environ, **(env or {})})
        deadline = None if timeout is None else t + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG if deadline else 0)
            if pid:
                break
            if deadline and time.perf_counter() > deadline:
                p.kill()
            time.sleep(0.05)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, p.returncode, out.read(), err.read())


def count_headers(path: Path) -> int:
    """Record headers of the default layout in an uncompressed log (grep when present: it is fast)."""
    if shutil.which("grep"):
        r = subprocess.run(["grep", "-c", "-E", HEADER_ERE, str(path)], capture_output=True, text=True,
                           env={**os.environ, "LC_ALL": "C"})
        return int(r.stdout.strip() or 0)
    n = 0
    with path.open("rb") as f:
        while block := f.read(64 << 20):
            block += f.readline()
            n += len(HEADER_RE.findall(block))
    return n


def gzip_file(src: Path, dst: Path, level: int) -> None:
    with src.open("rb") as f, gzip.open(dst, "wb", compresslevel=level) as g:
        shutil.copyfileobj(f, g, 16 << 20)


def analyze_cmd(spec: str | None) -> list[str]:
    """The console script beside this interpreter, else `python -m analyzer`, unless --analyze-cmd says."""
    if spec:
        return shlex.split(spec)
    script = Path(sys.executable).with_name("celery-postmortem")
    return [str(script)] if script.exists() else [sys.executable, "-m", "analyzer"]


def run_analyze(base: list[str], path: Path, report: Path, mode: str, timeout: float | None) -> tuple[Run, str]:
    """One analyze run; returns it and an error ('' when the report shows the log parsed)."""
    env, extra = parse_mode(mode)
    run = measure([*base, "analyze", "--format", "json", "-o", str(report), *extra, str(path)], env, timeout)
    if run.rc < 0:  # a killed run's rusage still holds its peak: a lower bound worth printing
        why = "--timeout" if timeout and run.wall >= timeout else f"signal {-run.rc}"
        return run, f"analyze killed ({why}) after {run.wall:.0f}s wall, {run.cpu:.0f}s cpu, peak RSS so far " \
            f"{run.peak_mib:.0f} MiB"
    if run.rc not in (0, 1):  # 1 is --fail-on's exit, should a mode pass it
        return run, f"analyze exited {run.rc}: {run.err.strip()[-500:]}"
    try:
        rep = json.loads(report.read_text())
    except (OSError, ValueError) as e:
        return run, f"analyze wrote no JSON report ({e}): {run.err.strip()[-500:]}"
    parsed = sum(i.get("parsed", 0) for i in rep.get("inputs", []) if i.get("kind") == "celery_log")
    if not parsed:
        return run, f"analyze did not read {path.name} as a Celery log: inputs = {rep.get('inputs')}"
    return run, ""


def lnav_config(tmp: Path) -> tuple[Path, Path]:
    """A config dir holding the format (lnav -I wants DIR/formats/NAME/*.json) and an empty HOME."""
    fmt = tmp / "lnav-config" / "formats" / "celery"
    fmt.mkdir(parents=True, exist_ok=True)
    shutil.copy(LNAV_FORMAT, fmt / LNAV_FORMAT.name)
    home = tmp / "lnav-home"  # no user config or state of lnav's own can change the figures
    home.mkdir(exist_ok=True)
    return tmp / "lnav-config", home


def run_lnav(lnav: str, cfg: Path, home: Path, path: Path, headers: int, timeout: float | None) -> tuple[Run, str]:
    """lnav counting records by level; the error says when its counts do not add up to the headers."""
    run = measure([lnav, "-I", str(cfg), "-n", "-c", LNAV_QUERY, str(path)], {"HOME": str(home)}, timeout)
    counts = {m[1]: int(m[2]) for line in run.out.splitlines() if (m := LNAV_ROW.match(line))}
    total = sum(counts.values())
    if run.rc or not total or total != headers:
        return run, (f"lnav did not recognise the lines: counts {counts or 'none'} add up to {total}, "
                     f"the log has {headers} headers (rc {run.rc}; {run.err.strip()[-300:]!r})")
    return run, ""


def strip_keys(obj: object, keys: set[str]) -> object:
    if isinstance(obj, dict):
        return {k: strip_keys(v, keys) for k, v in obj.items() if k not in keys}
    if isinstance(obj, list):
        return [strip_keys(v, keys) for v in obj]
    return obj


def diff_reports(a: Path, b: Path, keys: set[str]) -> list[str]:
    """Unified diff of two JSON reports without the given keys; empty when they are equal."""
    texts = [json.dumps(strip_keys(json.loads(p.read_text()), keys), indent=1, sort_keys=True).splitlines()
             for p in (a, b)]
    return list(difflib.unified_diff(*texts, "mode A", "mode B", lineterm="", n=2))


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _ok(flag: bool | None) -> str:
    return "-" if flag is None else ("pass" if flag else "FAIL")


def table(rows: list[Row]) -> list[dict[str, object]]:
    """Print the table; return its rows as plain values for the JSON line."""
    head = ["size", "input", "load", "analyze s", "cpu s", "MB/s", "peak MiB", "lnav s", "cpu s", "lnav MiB", "ratio",
            f">={TARGET_MBS:.0f}MB/s", f">={TARGET_RATIO}x lnav", f"RSS<={TARGET_RSS_MIB / 1024:.0f}GiB"]
    widths = [6, 6, 5, 9, 6, 7, 8, 7, 6, 8, 6, 10, 11, 10]
    print("  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    out: list[dict[str, object]] = []
    for r in rows:
        a_ok = [] if any(e.startswith("analyze") for e in r.errors) else list(r.analyze)
        l_ok = [] if any(e.startswith("lnav") for e in r.errors) else list(r.lnav)
        a_s = statistics.median(x.wall for x in a_ok) if a_ok else None
        a_cpu = statistics.median(x.cpu for x in a_ok) if a_ok else None
        l_cpu = statistics.median(x.cpu for x in l_ok) if l_ok else None
        a_mib = max(x.peak_mib for x in a_ok) if a_ok else None
        l_s = statistics.median(x.wall for x in l_ok) if l_ok else None
        l_mib = max(x.peak_mib for x in l_ok) if l_ok else None
        mbs = r.mib / a_s if a_s else None
        killed = r.analyze[-1] if r.analyze and r.analyze[-1].rc < 0 else None  # its peak is a lower bound
        # pair by pair (A B A B ...), so a drift in the machine's speed moves both sides of one ratio
        ratio = statistics.median(lv.wall / av.wall for av, lv in zip(a_ok, l_ok, strict=False)) \
            if a_ok and l_ok else None
        cells = [r.size, r.variant, _fmt(r.load, ".1f"), _fmt(a_s, ".2f"), _fmt(a_cpu, ".1f"), _fmt(mbs, ".1f"),
                 f">={killed.peak_mib:.0f}" if killed else _fmt(a_mib, ".0f"),
                 _fmt(l_s, ".2f"), _fmt(l_cpu, ".1f"), _fmt(l_mib, ".0f"), _fmt(ratio, ".2f"),
                 _ok(None if mbs is None else mbs >= TARGET_MBS),
                 _ok(None if ratio is None else ratio >= TARGET_RATIO),
                 _ok(False if killed and killed.peak_mib > TARGET_RSS_MIB else
                     None if a_mib is None else a_mib <= TARGET_RSS_MIB)]
        print("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)))
        out.append({"size": r.size, "input": r.variant, "mib": round(r.mib, 1), "load": r.load, "analyze_s": a_s,
                    "analyze_cpu_s": a_cpu, "mb_s": mbs, "peak_mib": a_mib, "lnav_s": l_s, "lnav_cpu_s": l_cpu,
                    "lnav_mib": l_mib, "ratio": ratio,
                    "runs": len(r.analyze), "errors": r.errors})
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Targets and method: issue #14, section 'Targets'.")
    ap.add_argument("--sizes", default="200M", type=lambda s: [(t, parse_size(t)) for t in s.split(",")],
                    help="comma-separated log sizes to generate: 200M, 2G, 10G (default 200M)")
    ap.add_argument("--input", type=Path, action="append", default=[],
                    help="measure this existing uncompressed default-layout log instead of generating (repeatable)")
    ap.add_argument("--variants", default="plain", help="plain, gzip or plain,gzip (default plain)")
    ap.add_argument("--gzip-level", type=int, default=6, help="compression level of the gzip variant (default 6)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool per input; medians are printed")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--tmpdir", type=Path, help="where to generate (default: the system's temp dir)")
    ap.add_argument("--analyze-cmd", help="the analyzer command (default: celery-postmortem beside this python)")
    ap.add_argument("--no-lnav", action="store_true", help="skip the lnav baseline")
    ap.add_argument("--timeout", type=float, help="seconds after which one run is killed")
    ap.add_argument("--check-equal", action="store_true",
                    help="also run analyze in mode B and diff its JSON report against mode A's")
    ap.add_argument("--chunk-env", default="CPM_PIECE_BYTES",
                    help="the chunk-size environment variable of the default mode B (default CPM_PIECE_BYTES)")
    ap.add_argument("--mode-a", default="", help="env assignments and extra analyze args of mode A (default none); "
                    "the timed runs use it too")
    ap.add_argument("--mode-b", help="the same for mode B (default: CHUNK_ENV=1048576)")
    ap.add_argument("--ignore-key", action="append", default=["elapsed_s", "timings", "generated_at"],
                    help="report key left out of --check-equal's diff, at any depth (repeatable)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",")]
    if not set(args.variants) <= {"plain", "gzip"}:
        ap.error("--variants takes plain and/or gzip")
    if args.mode_b is None:
        args.mode_b = f"{args.chunk_env}=1048576"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = analyze_cmd(args.analyze_cmd)
    lnav = None if args.no_lnav else shutil.which("lnav")
    if not lnav and not args.no_lnav:
        print(LNAV_HINT)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    lnav_v = subprocess.run([lnav, "-V"], capture_output=True, text=True).stdout.strip() if lnav else "absent"
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  commit {head.stdout.strip() or '?'}  "
          f"cpus {os.cpu_count()}  load {os.getloadavg()[0]:.1f}  {lnav_v}  analyze: {shlex.join(base)}")
    if args.check_equal:
        env_b, _ = parse_mode(args.mode_b)
        src = "".join(p.read_text(errors="replace") for p in (ROOT / "analyzer").rglob("*.py"))
        for name in env_b:
            if name not in src:
                print(f"note: analyzer/ never names {name}: mode B may be the same run as mode A, "
                      "and equal reports then prove nothing")
    rows: list[Row] = []
    checks: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="cpm-bench-", dir=args.tmpdir) as d:
        tmp = Path(d)
        cfg, home = lnav_config(tmp) if lnav else (tmp, tmp)
        inputs: list[tuple[str, int | Path, bool]] = [(p.name, p, False) for p in args.input] or \
            [(label, mib, True) for label, mib in args.sizes]
        for label, what, generated in inputs:
            if generated:
                assert isinstance(what, int)
                need = (what << 20) * (1.5 if "gzip" in args.variants else 1.05)
                if shutil.disk_usage(tmp).free < need:
                    print(f"{label}: skipped, {tmp} has less than {need / 2**30:.1f} GiB free")
                    continue
                plain = tmp / f"worker-{label}.log"
                t = time.perf_counter()
                generate(plain, what, seed=args.seed)
                print(f"{label}: generated {plain.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - t:.0f}s")
            else:
                assert isinstance(what, Path)
                plain = what
            headers = count_headers(plain)
            mib = plain.stat().st_size / 2**20
            files = {}
            if "plain" in args.variants:
                files["plain"] = plain
            if "gzip" in args.variants:
                files["gzip"] = tmp / f"{plain.name}.gz"
                t = time.perf_counter()
                gzip_file(plain, files["gzip"], args.gzip_level)
                print(f"{label}: gzip'd to {files['gzip'].stat().st_size / 2**20:.0f} MiB in "
                      f"{time.perf_counter() - t:.0f}s")
            for variant, path in files.items():
                row = Row(label, variant, mib, round(os.getloadavg()[0], 1))
                report_a = tmp / f"report-{label}-{variant}-a.json"
                for _ in range(args.repeat):  # the baseline runs even when analyze failed
                    if not any(e.startswith("analyze") for e in row.errors):
                        run, err = run_analyze(base, path, report_a, args.mode_a, args.timeout)
                        row.analyze.append(run)
                        row.errors += [err] if err else []
                    if lnav and not any(e.startswith("lnav") for e in row.errors):
                        run, err = run_lnav(lnav, cfg, home, path, headers, args.timeout)
                        row.lnav.append(run)
                        if err:
                            row.errors.append(err)
                for e in row.errors:
                    print(f"ERROR {label} {variant}: {e}")
                rows.append(row)
                if args.check_equal and not row.errors:
                    report_b = tmp / f"report-{label}-{variant}-b.json"
                    run, err = run_analyze(base, path, report_b, args.mode_b, args.timeout)
                    diff = [] if err else diff_reports(report_a, report_b, set(args.ignore_key))
                    verdict = "error" if err else ("equal" if not diff else "DIFFERENT")
                    print(f"check-equal {label} {variant}: {verdict} (mode B {run.wall:.2f}s, {run.peak_mib:.0f} MiB)"
                          + (f": {err}" if err else ""))
                    print("\n".join(diff[:60]) + ("\n..." if len(diff) > 60 else "") if diff else "", end="")
                    checks.append({"size": label, "input": variant, "verdict": verdict, "mode_b_s": run.wall,
                                   "mode_b_mib": run.peak_mib})
            if generated:
                for path in files.values():
                    path.unlink(missing_ok=True)
                plain.unlink(missing_ok=True)
        print()
        print(f"MB = MiB of the uncompressed log; s = wall seconds, cpu s = user + system; ratio = lnav s / analyze "
              f"s (aim beyond #14: 3x); medians of {args.repeat}, peaks are the largest run's; load = 1-min load "
              f"average of {os.cpu_count()} cpus before the row")
        figures = table(rows)
    summary = {"cpus": os.cpu_count(), "commit": head.stdout.strip(), "lnav": lnav_v, "rows": figures,
               "check_equal": checks}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    failed = any(r.errors for r in rows) or any(c["verdict"] != "equal" for c in checks)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
