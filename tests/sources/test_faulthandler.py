"""CPython faulthandler dumps: standalone and embedded in a worker's stdout/log."""

from __future__ import annotations

import polars as pl

import analyzer
from analyzer.analyses.threads import fill_native_ids
from analyzer.sources import PARSERS, dumps, faulthandler, gdb
from analyzer.sources.lines import read_lines
from tests.sources.dump_samples import kind_of, sample

SEGV = "worker-segfault/worker.stdout"
USR2 = "deadlock-lock/worker.stdout"


def _dump_lines(path):
    """The faulthandler lines of a real worker stdout, cut out of it (a standalone dump)."""
    lines = path.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(("Fatal Python error", "Thread 0x",
                                                                   "Current thread 0x")))
    end = max(i for i, ln in enumerate(lines) if ln.startswith('  File "')) + 1
    return lines[start:end]


def test_worker_output_with_a_dump_stays_a_celery_log_and_gains_threads():
    path = sample(SEGV)
    assert kind_of(path) == "celery_log"
    assert PARSERS["celery_log"].__name__ == "_celery_log_and_dumps"
    assert faulthandler.sniff(path.read_text())


def test_a_bare_dump_is_sniffed_as_faulthandler(tmp_path):
    path = sample(USR2)
    bare = tmp_path / "faulthandler.txt"
    bare.write_text("\n".join(_dump_lines(path)) + "\n")
    assert kind_of(bare) == "faulthandler"
    assert PARSERS["faulthandler"] is dumps.faulthandler_dump


def test_segfault_dump_gives_the_crashing_thread_and_its_frames():
    path = sample(SEGV)
    threads, frames, _raw = faulthandler.parse_text(path.read_bytes(), source=path.name)
    assert threads.height == 1
    t = threads.row(0, named=True)
    assert t["name"] == "current" and t["fatal"] == "Segmentation fault"
    assert t["thread_ident"].startswith("0x7f") and t["pid"] is None and t["tool"] == "faulthandler"
    fatal_line = next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.startswith("Fatal"))
    assert t["dump"] == f"{path.name}#L{fatal_line}"
    top = frames.filter(pl.col("depth") == 0).row(0, named=True)
    assert top["function"] == "string_at" and top["role"] == "stdlib"
    app = frames.filter(pl.col("role") == "app").sort("depth").row(0, named=True)
    assert app["function"] == "parse" and app["file"].endswith("proj.py") and app["line"] == 20
    text = path.read_text().splitlines()
    assert text[app["src_line"] - 1].endswith("in parse")


def test_sigusr2_dump_has_every_thread_and_joins_gdb_by_pthread_id():
    path, bt = sample(USR2), sample("deadlock-lock/gdb-bt.txt")
    threads, _, _ = faulthandler.parse_text(path.read_bytes(), source=path.name)
    assert threads.height == 3 and threads["dump"].n_unique() == 1
    g, _, _ = gdb.parse_text(bt.read_bytes(), source=bt.name)
    assert set(threads["thread_ident"]) == set(g["thread_ident"])
    filled = fill_native_ids(pl.concat([threads, g], how="vertical_relaxed"))
    fh = filled.filter(pl.col("tool") == "faulthandler")
    assert fh["pid"].is_not_null().all() and set(fh["tid"]) == set(g["tid"])


def test_log_records_keep_the_dump_lines_and_the_bundle_gets_its_threads():
    path = sample(SEGV)
    b = analyzer.open_bundle(path)
    assert b.threads.height == 1 and b.frames.height > 10
    assert b.events.filter(pl.col("message").str.starts_with("Fatal Python error")).height == 1
    cov = next(c for c in b.coverage if c.source == path.name)
    assert cov.unrecognized == 0 and any("faulthandler" in n for n in cov.notes)


def test_truncated_and_interrupted_dumps_keep_what_parsed():
    path = sample(USR2)
    lines = _dump_lines(path)
    cut = [*lines[:len(lines) // 2], "  ...", "worker: Warm shutdown (MainProcess)", '  File "/x.py", line 1 in f']
    raw = faulthandler.standalone(read_lines(("\n".join(cut) + "\n").encode()), source="cut.txt")
    assert raw.threads.height >= 1
    assert raw.unrecognized == 1  # the shutdown line; the stray `File` line after it is not a frame
    assert any("truncated" in n for n in raw.notes)
