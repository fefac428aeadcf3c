"""Streaming changes no finding: a log read in pieces gives the report of the log read as one piece.

Every sample is read cut into pieces of `PIECE` bytes and as a single piece; a generated log is cut
with the first piece ending at awkward places (inside a traceback, between a task's `received` and
its outcome, inside a multi-byte character, inside a line holding two records). And the records a
piece keeps serve every rule: the findings on them equal the findings on all records.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import polars as pl
import pytest

import analyzer
from analyzer.api import fixed
from analyzer.engine.evaluate import evaluate
from analyzer.pipeline.stream import PIECE_ENV
from analyzer.renderers import RenderOptions, registry, rule_infos
from tests.benchmarks.bench_parse import generate
from tests.conftest import sample_dirs

PIECE = 1500  # a few records a piece: every sample log is cut many times


def _report_json(path: Path | str, monkeypatch: pytest.MonkeyPatch, piece: int | None) -> tuple[str, int]:
    """The JSON report and the number of pieces the logs were read in."""
    if piece is None:
        monkeypatch.delenv(PIECE_ENV, raising=False)
    else:
        monkeypatch.setenv(PIECE_ENV, str(piece))
    bundle = analyzer.open_bundle(path)
    report = bundle.report()
    text = registry()["json"](report, RenderOptions(rules=rule_infos(report.rules)))
    return text, sum(len(p) for p in bundle._reduced.pieces.values())


@pytest.mark.parametrize("sample", sample_dirs(), ids=lambda p: p.name)
def test_report_of_pieces_equals_report_of_the_whole(sample, monkeypatch):
    whole, one = _report_json(sample, monkeypatch, None)
    cut, pieces = _report_json(sample, monkeypatch, PIECE)
    assert one == 0  # the samples are far smaller than a piece: read whole
    assert cut == whole
    CUT[sample.name] = pieces


CUT: dict[str, int] = {}  # sample → pieces its logs were read in, by the test above


def test_the_samples_were_really_cut(monkeypatch):
    """Many samples' worker logs hold several pieces of PIECE bytes (a long first record, the banner,
    keeps a small log whole; dumps and listings are read whole anyway): 26 of 66 on 2026-12-07."""
    for sample in sample_dirs():
        if sample.name not in CUT:  # this test run alone
            CUT[sample.name] = _report_json(sample, monkeypatch, PIECE)[1]
    assert sum(n > 1 for n in CUT.values()) >= 20 and sum(CUT.values()) >= 100
    assert CUT["backend-failure"] > 5  # a 26 KB worker log


@pytest.mark.parametrize("sample", sample_dirs(), ids=lambda p: p.name)
def test_kept_records_serve_every_rule(sample):
    """The rules' findings on the records the pipeline keeps equal those on every record."""
    bundle = analyzer.open_bundle(sample)
    rules, _ = bundle._load_rules((), (), (), True)
    frames = bundle.frame_map()
    every = {**frames, "events": fixed("events", bundle._all_events)}
    assert frames["events"].height <= every["events"].height
    got = [(f.to_dict(), f.times) for f in evaluate(rules, frames)]
    want = [(f.to_dict(), f.times) for f in evaluate(rules, every)]
    assert got == want


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """A 2 MB log of real sample records (fresh times and ids), with a non-ASCII task line and a line
    holding two records (a copy that lost a newline)."""
    path = tmp_path_factory.mktemp("gen") / "worker.log"
    generate(path, 2, seed=7)
    lines = path.read_text().splitlines()
    rng = random.Random(7)
    logger = [i for i, ln in enumerate(lines) if re.match(r"^\[[^]]+: \w+/ForkPoolWorker-\d+\] \S+\[", ln)]
    i = rng.choice(logger[len(logger) // 4:len(logger) // 3])  # the first piece ends inside: under 2/3
    lines[i] += " city=Zürich → München"
    heads = [i for i, ln in enumerate(lines[:-1]) if ln.startswith("[") and lines[i + 1].startswith("[")]
    j = rng.choice(heads[len(heads) // 5:len(heads) // 4])
    lines[j] = lines[j] + " " + lines[j + 1] + " " * 120  # long enough to be read as two records
    del lines[j + 1]
    path.write_text("\n".join(lines) + "\n")
    return path


def _offsets(path: Path) -> dict[str, int]:
    """Byte offsets of the awkward places: the first piece is made to end there."""
    data = path.read_bytes()
    inside_traceback = data.index(b"\n  File ", len(data) // 4) + 5
    received = data.index(b"] received", len(data) // 2)
    between = data.index(b"\n", received) + 3  # inside the next record, before the task's outcome
    multibyte = data.index("ü".encode()) + 1  # between the two bytes of ü
    joined = data.index(b"\n", data.index(b" " * 120) - 600) + 40
    return {"traceback": inside_traceback, "received": between, "multibyte": multibyte, "joined": joined}


def test_generated_log_cut_at_awkward_places(generated, monkeypatch):
    whole, _ = _report_json(generated, monkeypatch, None)
    assert '"root_causes"' in whole
    for where, offset in _offsets(generated).items():
        cut, pieces = _report_json(generated, monkeypatch, offset)
        assert pieces >= 2, where
        assert cut == whole, where


def test_generated_log_tasks_and_activity_equal_in_pieces(generated, monkeypatch):
    monkeypatch.delenv(PIECE_ENV, raising=False)
    whole = analyzer.open_bundle(generated)
    monkeypatch.setenv(PIECE_ENV, "65536")
    cut = analyzer.open_bundle(generated)
    assert cut.tasks.equals(whole.tasks)
    assert cut.activity.equals(whole.activity)
    assert cut._spans.equals(whole._spans)
    kept = cut._events.height
    assert kept < whole.events.height / 2  # most records are counted, not kept
    assert cut.events.equals(whole.events)  # the public frame still holds every record
    assert whole.activity.get_column("records").sum() == whole.events.height
    assert cut.tasks.filter(pl.col("state") == "SUCCESS").height > 1000


USER_RULE = '''
id = "CP-U777"
category = "task.exception"
severity = "warning"
confidence = 0.5
title = "proj.add ran"
what = "A worker logged a line of proj.add."
why = "To show a user's rule served by the records the pipeline keeps."
on = "events"
when = """
message contains "Task proj.add["
"""
message = "{count} proj.add lines"
remediation = ["none"]
'''


def test_the_users_rules_are_served_by_the_kept_records(tmp_path, monkeypatch):
    """A rule the shipped ones do not cover: given to the bundle, the pieces keep its records; given
    to one report only, that report reads every record again. Both find the same."""
    monkeypatch.setenv(PIECE_ENV, str(PIECE))
    (tmp_path / "CP-U777.toml").write_text(USER_RULE)
    sample = Path(__file__).resolve().parents[1] / "samples" / "retry-then-success"
    kept = analyzer.open_bundle(sample, rules=[tmp_path])
    [mine] = [f for f in kept.report().findings if f.rule == "CP-U777"]
    assert "_all_events" not in kept.__dict__  # no second reading of the logs
    late = analyzer.open_bundle(sample)
    [theirs] = [f for f in late.report(rule_dirs=[tmp_path]).findings if f.rule == "CP-U777"]
    assert "_all_events" in late.__dict__
    assert (mine.count, mine.first_seen, mine.evidence) == (theirs.count, theirs.first_seen, theirs.evidence)
    assert mine.count == analyzer.open_bundle(sample).events.filter(
        pl.col("message").str.contains("Task proj.add[", literal=True)).height


def test_tasks_spilled_to_disk_in_buckets_equal_those_kept_in_memory(generated, monkeypatch):
    """Per-task rows and lines go to a store (`pipeline.spill`): one bucket in memory, or several on
    disk, read in pieces or whole, give the same report, tasks and records; the report's `tasks` hold
    every STARTED and LOST task (not every RECEIVED one) and the store's files go with the bundle."""
    from analyzer.pipeline import spill
    from analyzer.pipeline.spill import BUCKETS_ENV, SPILL_ENV

    monkeypatch.setenv(SPILL_ENV, "memory")
    monkeypatch.setenv(BUCKETS_ENV, "1")
    whole, _ = _report_json(generated, monkeypatch, None)
    memory = analyzer.open_bundle(generated)
    memory.report()
    monkeypatch.setenv(SPILL_ENV, "disk")
    monkeypatch.setenv(BUCKETS_ENV, "5")
    monkeypatch.setattr(spill, "FLUSH_ROWS", 2000)  # several spills, each of several pieces
    cut, pieces = _report_json(generated, monkeypatch, 65536)
    assert pieces > 10
    assert cut == whole
    disk = analyzer.open_bundle(generated)
    disk.report()
    store = disk._reduced.store
    assert store.on_disk and store.buckets == 5
    assert disk.tasks.equals(memory.tasks) and disk._tasks.equals(memory._tasks)
    assert disk._events.equals(memory._events)
    assert disk._tasks.height < disk.tasks.height / 2  # settled tasks no rule reads are counted only
    marked = disk.tasks.filter(pl.col("state").is_in(["STARTED", "LOST"]))  # what stuck and lost tasks read
    assert marked.height and marked.join(disk._tasks, on="task_id", how="anti").is_empty()
    assert disk._tasks.filter(pl.col("state") == "RECEIVED").height < disk.tasks.filter(
        pl.col("state") == "RECEIVED").height
    counts = dict(disk.tasks.group_by("state").len().rows())
    assert disk.report().summary.tasks_by_state == dict(sorted(counts.items()))
    directory = store._dir
    assert directory is not None and any(directory.iterdir())
    del disk, store
    import gc
    gc.collect()
    assert not directory.exists()


def test_a_big_gzip_member_is_spooled_to_disk_and_read_in_pieces(generated, tmp_path, monkeypatch):
    """A `.gz` log larger than `SPOOL_BYTES` decompressed becomes a temporary file (never bytes held
    whole), read piece by piece like the plain log, with the same report; the file goes at exit."""
    import gzip

    from analyzer import bundle

    packed = tmp_path / "worker.log.gz"
    packed.write_bytes(gzip.compress(generated.read_bytes()))
    plain, _ = _report_json(generated, monkeypatch, 65536)
    monkeypatch.setattr(bundle, "SPOOL_BYTES", 100_000)
    gz = analyzer.open_bundle(packed)
    [member] = gz.contents.members
    assert member.data is None and member.path is not None and member.path.name.startswith("cpm-member-")
    assert str(member.path) in bundle._SPOOLED
    report = gz.report()
    assert sum(len(p) for p in gz._reduced.pieces.values()) > 10
    text = registry()["json"](report, RenderOptions(rules=rule_infos(report.rules)))
    assert text == plain
