"""Regenerate samples/deadlock-pipe with a real worker now and hold the fresh bundle to the committed
`expected.json`: the pipe cycle comes from what this kernel and py-spy print today, not from one
frozen run. Needs redis-server and py-spy; skips without them, fails under CPM_REQUIRE_LIVE=1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from analyzer import open_bundle
from tests.conftest import SAMPLES, require
from tests.test_live_samples import NEEDS, _generator
from tests.test_samples import check_ids, run_check

NAME = "deadlock-pipe"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenarios, produce = _generator()
    sc = scenarios[NAME]
    require(*(NEEDS[n] for n in sc.needs))
    out: Path = produce(sc, tmp_path_factory.mktemp("live-pipe"))
    shutil.copyfile(SAMPLES / NAME / "expected.json", out / "expected.json")
    return out


@pytest.mark.live
@pytest.mark.parametrize("check_id", check_ids(json.loads((SAMPLES / NAME / "expected.json").read_text())))
def test_fresh_run_meets_expectations(fresh: Path, check_id: str) -> None:
    run_check(fresh, check_id)


@pytest.mark.live
def test_fresh_run_proves_both_edges(fresh: Path) -> None:
    w = open_bundle(fresh).waits
    assert sorted(w.select("kind", "inferred", "confidence").rows()) == [("pipe", False, 1.0),
                                                                        ("process", False, 1.0)]
    assert w.filter(pl.col("kind") == "pipe")["resource"][0].startswith("pipe:[")
