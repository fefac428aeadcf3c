"""`--log-format` lets unsniffed text be read as a worker log, but only text that holds records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl

from analyzer import open_bundle
from analyzer.sniff import sniff
from tests.conftest import SAMPLES

CUSTOM = SAMPLES / "custom-log-format"
FORMATS = json.loads((CUSTOM / "expected.json").read_text())["log_format"]


def test_readme_and_json_stay_text_and_claim_no_parsed_lines(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(CUSTOM, bundle)
    # a worker's stdout that opens with more than a sniffed head of prose: only the formats find its records
    stdout = bundle / "stdout.txt"
    stdout.write_bytes((CUSTOM / "README.md").read_bytes() * 5 + (CUSTOM / "worker.log").read_bytes())
    assert sniff(stdout.read_bytes()[:4096]) == "text"

    b = open_bundle(bundle, log_formats=FORMATS)
    cov = {c.source: c for c in b.coverage}
    # records in the layout (the prose before them is read too, as records of layout unknown: no time)
    events = b.events.filter(pl.col("ts").is_not_null()).group_by("source").len()
    with_events = dict(zip(events["source"], events["len"], strict=True))

    for name in ("README.md", "expected.json", "produced.json"):
        c = cov[name]
        assert (c.kind, c.parsed, c.unrecognized) == ("text", 0, c.lines), name
        assert c.lines > 0 and "not read as log records; no line matches" in c.notes[0], name
    assert cov["stdout.txt"].kind == "celery_log"
    assert with_events == {"worker.log": with_events["worker.log"], "stdout.txt": with_events["worker.log"]}
    assert with_events["worker.log"] > 0
    # no input claims parsed lines that gave no record
    assert {c.source for c in b.coverage if c.parsed} == set(with_events)


def test_without_formats_the_same_text_is_not_a_log(tmp_path: Path) -> None:
    stdout = tmp_path / "stdout.txt"
    stdout.write_bytes((CUSTOM / "README.md").read_bytes() * 5 + (CUSTOM / "worker.log").read_bytes())
    b = open_bundle(stdout)
    assert b.events.is_empty()
    assert [(c.kind, c.parsed) for c in b.coverage] == [("text", 0)]
