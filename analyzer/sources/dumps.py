"""Bundle-member adapters of the dump and inspect parsers (registered in `analyzer.sources.PARSERS`).

Each adapter reads one member, calls its pure parser, runs `analyses.threads.finish` and wraps
frames plus coverage into a `SourceResult`. Frames produced: ``threads``, ``frames`` (contract
columns plus `THREAD_EXTRA`/`FRAME_EXTRA`), ``gdb_values`` (gdb ``print`` output), ``inspect``
and ``workers`` (`analyzer.sources.inspect.INSPECT`/`WORKERS`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from analyzer.sources import core_sidecar, faulthandler, gdb, gdb_mi, inspect, pyspy
from analyzer.sources.celery_log import Coverage
from analyzer.sources.lines import read_lines
from analyzer.sources.stacks import DumpFrames, finish

if TYPE_CHECKING:
    from analyzer.bundle import Member
    from analyzer.sources import Options, SourceResult

FAULT_MARK = b"(most recent call first):"


def _data(member: Member) -> bytes | Path:
    if member.path is not None:
        return member.path
    assert member.data is not None
    return member.data


def _text(member: Member) -> str:
    return member.read().decode("utf-8", errors="replace")


def _result(raw: DumpFrames, source: str, kind: str) -> SourceResult:
    from analyzer.sources import SourceResult

    threads, frames = finish(raw)
    cov = Coverage(source=source, kind=kind, lines=raw.lines, parsed=raw.parsed, unrecognized=raw.unrecognized,
                   samples=list(raw.samples), notes=list(raw.notes))
    out: dict[str, pl.DataFrame] = {"threads": threads, "frames": frames}
    out.update(raw.extra)
    return SourceResult(out, [cov])


def pyspy_text(member: Member, opts: Options) -> SourceResult:
    raw = pyspy.parse_lines(read_lines(_data(member)), source=member.name)
    return _result(raw, member.name, "pyspy")


def pyspy_json(member: Member, opts: Options) -> SourceResult:
    raw = pyspy.parse_json(member.read(), source=member.name)
    return _result(raw, member.name, "pyspy_json")


def gdb_bt(member: Member, opts: Options) -> SourceResult:
    raw = gdb.parse(_text(member), source=member.name)
    return _result(raw, member.name, "gdb")


def gdb_records(member: Member, opts: Options) -> SourceResult:
    raw = gdb_mi.parse_records(_text(member), source=member.name)
    return _result(raw, member.name, "gdb_mi")


def faulthandler_dump(member: Member, opts: Options) -> SourceResult:
    raw = faulthandler.standalone(read_lines(_data(member)), source=member.name)
    return _result(raw, member.name, "faulthandler")


def _inspect_result(res: inspect.InspectResult, source: str, kind: str) -> SourceResult:
    from analyzer.sources import SourceResult

    cov = Coverage(source=source, kind=kind, lines=res.lines, parsed=res.parsed, unrecognized=res.unrecognized,
                   samples=res.samples, notes=res.notes)
    return SourceResult({"inspect": res.inspect, "workers": res.workers}, [cov])


def inspect_json(member: Member, opts: Options) -> SourceResult:
    return _inspect_result(inspect.parse_json(_text(member), source=member.name), member.name, "inspect_json")


def inspect_text(member: Member, opts: Options) -> SourceResult:
    return _inspect_result(inspect.parse_text(_text(member), source=member.name), member.name, "inspect_text")


def _contains(data: bytes | Path, needle: bytes) -> bool:
    if isinstance(data, bytes):
        return needle in data
    tail = b""
    with data.open("rb") as f:
        while chunk := f.read(1 << 24):
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle):]
    return False


def embedded_faulthandler(member: Member, result: SourceResult) -> SourceResult:
    """Add the threads/frames of faulthandler dumps inside a worker log/stdout to `result`.

    The log parser keeps those lines as records and already counts them in its coverage, so
    only a note is added there (no second coverage entry, no double counting).
    """
    data = _data(member)
    events = result.frames.get("events")
    if events is not None:  # the log parser made each dump's thread header a record of its own
        msg = pl.col("message")
        if not events.select((msg.str.starts_with("Thread 0x") | msg.str.starts_with("Current thread 0x"))
                             .any()).item():
            return result
    elif not _contains(data, FAULT_MARK):
        return result
    raw = faulthandler.parse_lines(read_lines(data), source=member.name)
    if raw.threads.is_empty():
        return result
    threads, frames = finish(raw)
    result.frames["threads"] = threads
    result.frames["frames"] = frames
    dumps = threads["dump"].n_unique()
    note = f"faulthandler: {threads.height} thread(s) in {dumps} dump(s) read into threads/frames"
    if result.coverage:
        result.coverage[0].notes.append(note)
        result.coverage[0].notes.extend(raw.notes)
    return result


def core_file(member: Member, opts: Options) -> SourceResult:
    """A core file: read through gdb (`gdb_mi.analyze_core`) when gdb is installed.

    The executable is the user's `--core-executable`, else the bundle member a `core.json`
    sidecar names (`analyzer.sources.core_sidecar`), else gdb is left to find it from the core.
    """
    from analyzer.sources import SourceResult

    cov = Coverage(source=member.name, kind="core")
    exe_member, side_notes = core_sidecar.find_executable(member.name, opts.siblings)
    cov.notes.extend(side_notes)
    with tempfile.TemporaryDirectory(prefix="cpm-core-") as tmp:
        path = _on_disk(member, Path(tmp) / "core")
        exe = opts.core_executable
        if exe is None and exe_member is not None:
            exe = _on_disk(exe_member, Path(tmp) / "exe")
        raw, notes = gdb_mi.analyze_core(path, exe, source=member.name)
    cov.notes.extend(notes)
    if raw.threads.is_empty():
        return SourceResult({}, [cov])
    threads, frames = finish(raw)
    named = (frames.get_column("function").drop_nulls() if "function" in frames.columns
             else pl.Series("function", [], dtype=pl.String))
    if named.filter(named != "??").is_empty():
        # threads of `??` frames say nothing of what they wait on: not a dump to judge the bundle by
        cov.notes.append(f"{member.name}: gdb resolved no function in the core file's {threads.height} "
                         "thread(s) (wrong or missing executable? put the one that dumped it in the bundle and "
                         "name it in a core.json sidecar: {\"executable\": \"bin/python3\"}, or pass "
                         "--core-executable)")
        return SourceResult({}, [cov])
    return SourceResult({"threads": threads, "frames": frames}, [cov])


def _on_disk(member: Member, spare: Path) -> Path:
    """The member as a file gdb can open: its own path, or its bytes written to `spare`."""
    if member.path is not None:
        return member.path
    spare.write_bytes(member.read())
    return spare


PARSERS = {
    "pyspy": pyspy_text,
    "pyspy_json": pyspy_json,
    "gdb": gdb_bt,
    "gdb_mi": gdb_records,
    "faulthandler": faulthandler_dump,
    "inspect_json": inspect_json,
    "inspect_text": inspect_text,
    "core": core_file,
}
