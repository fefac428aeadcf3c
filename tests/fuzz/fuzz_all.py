"""Fuzz the bundle reader, every parser, the sniffer and every renderer (issue 16, "How it is checked").

Not collected by pytest (its name does not start with ``test_``); run it as a script:

    .venv/bin/python tests/fuzz/fuzz_all.py [--minutes 10] [--only parser:gdb] [--crashes DIR]

Hypothesis generates inputs from the real samples, mutated (`tests.mutations`), in batches of
fresh examples until each target's share of the time is used up. A crash is any exception
escaping a parser called directly (`analyzer.sources.PARSERS[kind]`: parsers must never raise,
even though `parse_member` would catch it), the sniffer, `read_bundle` (anything but
`BundleError`), the analysis of a fuzzed bundle or a renderer, or a call still running after
HANG_S seconds (stopped by SIGALRM, recorded as `Hang`); coverage that does not add up
(parsed + unrecognised != lines) and a single call slower than `--slow` seconds are reported too.
Each distinct crash (target, exception type, innermost frame) is printed once with the input
saved under `--crashes`. At the end: executions and crashes per target.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tarfile
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from analyzer.bundle import BundleError, Member, read_bundle  # noqa: E402
from analyzer.sniff import KINDS, sniff  # noqa: E402
from analyzer.sources import PARSERS, Options  # noqa: E402
from tests.mutations import mutated  # noqa: E402
from tests.timing import Hang, watchdog  # noqa: E402

SKIPPED_KINDS = {"core": "runs gdb on the file (a process per example); item 1's tests cover it"}
BATCH = 25
HANG_S = 30  # a call running this long is stopped and recorded as a hang


@dataclass
class Tally:
    runs: Counter[str] = field(default_factory=Counter)
    crashes: Counter[str] = field(default_factory=Counter)
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    slow: Counter[str] = field(default_factory=Counter)
    crash_dir: Path = Path(tempfile.gettempdir()) / "cpm-fuzz-crashes"
    slow_s: float = 5.0

    def crash(self, target: str, exc: BaseException, data: bytes) -> None:
        self.crashes[target] += 1
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        key = (target, type(exc).__name__, where)
        if key in self.seen:
            return
        self.seen.add(key)
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        path = self.crash_dir / f"{target.replace(':', '-')}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
        path.write_bytes(data)
        print(f"CRASH {target}: {type(exc).__name__}: {str(exc)[:200]} at {where}; input {path}", flush=True)
        print("".join(traceback.format_exception(exc)[-6:]), flush=True)

    def timed(self, target: str, seconds: float, data: bytes) -> None:
        if seconds > self.slow_s:
            self.slow[target] += 1
            self.crash_dir.mkdir(parents=True, exist_ok=True)
            path = self.crash_dir / f"slow-{target.replace(':', '-')}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
            path.write_bytes(data)
            print(f"SLOW {target}: {seconds:.1f}s on {len(data)} bytes; input {path}", flush=True)


TALLY = Tally()


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck))


def parser_target(kind: str) -> Callable[[int], None]:
    parser = PARSERS[kind]
    target = f"parser:{kind}"

    @_settings(BATCH)
    @given(data=mutated(kind))
    def run(data: bytes) -> None:
        TALLY.runs[target] += 1
        t0 = time.perf_counter()
        try:
            with watchdog(HANG_S):
                result = parser(Member(name="fuzz/artifact.txt", data=data), Options())
        except (Exception, Hang) as exc:  # a parser must never raise: record it
            TALLY.crash(target, exc, data)
            return
        TALLY.timed(target, time.perf_counter() - t0, data)
        for cov in result.coverage:
            if cov.parsed + cov.unrecognized != cov.lines or min(cov.parsed, cov.unrecognized, cov.lines) < 0:
                TALLY.crash(target, AssertionError(f"coverage {cov.lines} lines != {cov.parsed} parsed + "
                                                   f"{cov.unrecognized} unrecognised"), data)

    return lambda _n: run()


def sniff_target() -> Callable[[int], None]:
    @_settings(BATCH * 4)
    @given(data=mutated("any"))
    def run(data: bytes) -> None:
        TALLY.runs["sniff"] += 1
        try:
            with watchdog(HANG_S):
                kind = sniff(data[:4096])
            assert kind in KINDS, kind
        except (Exception, Hang) as exc:
            TALLY.crash("sniff", exc, data)

    return lambda _n: run()


NAMES = st.sampled_from(["worker.log", "a/b/worker.stdout", "gdb-bt.txt", "inspect.json", "caf\udce9/w.log",
                         "pyspy.json", "deep/" * 30 + "x.log", "..x", "name with spaces.log", ".hidden"])


@st.composite
def bundle_files(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    return draw(st.lists(st.tuples(NAMES, mutated("any", max_ops=3)), min_size=1, max_size=4,
                         unique_by=lambda f: f[0]))


def _write_dir(root: Path, files: list[tuple[str, bytes]]) -> None:
    for name, data in files:
        path = root / name  # a lone surrogate becomes the non-UTF-8 byte it stands for (surrogateescape)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_dir():
            path.write_bytes(data)


def _archive(files: list[tuple[str, bytes]], form: str) -> bytes:
    buf = io.BytesIO()
    if form == "zip":
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files:
                z.writestr(name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), data)
    else:
        with tarfile.open(fileobj=buf, mode="w:gz" if form == "tgz" else "w") as t:
            for name, data in files:
                info = tarfile.TarInfo(name)  # tarfile writes a lone surrogate as its byte
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def bundle_target() -> Callable[[int], None]:
    @_settings(BATCH)
    @given(files=bundle_files(), form=st.sampled_from(["dir", "tar", "tgz", "zip"]),
           cut=st.one_of(st.none(), st.integers(0, 1 << 20)), flip=st.one_of(st.none(), st.integers(0, 1 << 20)))
    def run(files: list[tuple[str, bytes]], form: str, cut: int | None, flip: int | None) -> None:
        TALLY.runs["read_bundle"] += 1
        with tempfile.TemporaryDirectory(prefix="cpm-fuzz-") as tmp:
            root = Path(tmp) / "bundle"
            data = b""
            if form == "dir":
                root.mkdir()
                _write_dir(root, files)
            else:
                data = _archive(files, form)
                if flip is not None and data:
                    i = flip % len(data)
                    data = data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]
                if cut is not None:
                    data = data[: cut % (len(data) + 1)]
                root = Path(tmp) / f"bundle.{form}"
                root.write_bytes(data)
            t0 = time.perf_counter()
            try:
                with watchdog(HANG_S):
                    read_bundle([root])
            except BundleError:
                pass
            except (Exception, Hang) as exc:
                TALLY.crash("read_bundle", exc, data or repr(files).encode())
            TALLY.timed("read_bundle", time.perf_counter() - t0, data or repr(files).encode())

    return lambda _n: run()


def renderer_target() -> Callable[[int], None]:
    import analyzer
    from analyzer.renderers import RenderOptions, registry

    renderers = registry()

    @_settings(max(2, BATCH // 5))
    @given(files=bundle_files())
    def run(files: list[tuple[str, bytes]]) -> None:
        TALLY.runs["analyze"] += 1
        with tempfile.TemporaryDirectory(prefix="cpm-fuzz-") as tmp:
            root = Path(tmp) / "bundle"
            root.mkdir()
            _write_dir(root, files)
            try:
                with watchdog(HANG_S):
                    report = analyzer.open_bundle(root).report()
            except (Exception, Hang) as exc:
                TALLY.crash("analyze", exc, repr(files).encode())
                return
            for name, render in renderers.items():
                TALLY.runs[f"render:{name}"] += 1
                try:
                    with watchdog(HANG_S):
                        out = render(report, RenderOptions())
                    out.encode("utf-8")  # what `-o` writes: it must be encodable
                except (Exception, Hang) as exc:
                    TALLY.crash(f"render:{name}", exc, repr(files).encode())

    return lambda _n: run()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="total time, shared by the targets")
    ap.add_argument("--only", default="", help="run the targets whose name contains this")
    ap.add_argument("--crashes", type=Path, default=TALLY.crash_dir, help="where crashing inputs are saved")
    ap.add_argument("--slow", type=float, default=5.0, help="report a single call slower than this (s)")
    args = ap.parse_args()
    TALLY.crash_dir, TALLY.slow_s = args.crashes, args.slow
    targets: dict[str, tuple[Callable[[int], None], float]] = {}
    for kind in sorted(PARSERS):
        if kind in SKIPPED_KINDS:
            print(f"skip parser:{kind}: {SKIPPED_KINDS[kind]}")
            continue
        targets[f"parser:{kind}"] = (parser_target(kind), 1.0)
    targets["sniff"] = (sniff_target(), 0.5)
    targets["read_bundle"] = (bundle_target(), 3.0)
    targets["analyze+render"] = (renderer_target(), 6.0)
    targets = {k: v for k, v in targets.items() if args.only in k}
    weight = sum(w for _, w in targets.values())
    budget = args.minutes * 60
    for name, (run, w) in targets.items():
        share = budget * w / weight
        end = time.monotonic() + share
        before = sum(TALLY.runs.values())
        while time.monotonic() < end:
            run(BATCH)
        print(f"{name}: {sum(TALLY.runs.values()) - before} executions in {share:.0f}s", flush=True)
    print("\nexecutions / crashes per target:")
    for target in sorted(TALLY.runs):
        print(f"  {target:28} {TALLY.runs[target]:>7} {TALLY.crashes[target]:>4}"
              + (f"  ({TALLY.slow[target]} slow)" if TALLY.slow[target] else ""))
    print(f"total: {sum(TALLY.runs.values())} executions, {sum(TALLY.crashes.values())} crashes, "
          f"{len(TALLY.seen)} distinct, {sum(TALLY.slow.values())} slow")
    return 1 if TALLY.crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
