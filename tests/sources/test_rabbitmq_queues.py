"""`rabbitmqctl list_queues` output → the `queues` frame, on listings RabbitMQ printed for the samples
(and, live, on the `-q` / `--no-table-headers` variants)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from analyzer import open_bundle
from analyzer.sniff import sniff
from analyzer.sources.lines import Lines, read_lines
from analyzer.sources.rabbitmq_queues import parse_lines
from tests.conftest import REQUIRE_LIVE, SAMPLES, require

STORM = SAMPLES / "events-storm" / "rabbitmqctl-list_queues.txt"
STALL = SAMPLES / "heartbeat-stall-hang" / "rabbitmqctl-list_queues.txt"


def _parse(path: Path) -> pl.DataFrame:
    frame, cov = parse_lines(read_lines(path), source=path.name)
    assert cov.kind == "rabbitmq_queues" and cov.lines > 0 and cov.unrecognized == 0, cov
    return frame


def test_listings_are_sniffed_as_queues_other_rabbitmqctl_output_is_not() -> None:
    assert sniff(STORM.read_bytes()) == "rabbitmq_queues"
    assert sniff(STALL.read_bytes()) == "rabbitmq_queues"
    for other in ("heartbeat-missed/rabbitmqctl-list_connections-before.txt",
                  "rabbitmq-vhost/rabbitmqctl-list_vhosts.txt", "rabbitmq-permission/rabbitmqctl-list_permissions.txt"):
        assert sniff((SAMPLES / other).read_bytes()) == "rabbitmq_cli", other


def test_two_listings_are_two_snapshots_with_their_date_vhost_and_columns() -> None:
    frame = _parse(STORM)
    assert frame.height == 8
    assert frame.get_column("snapshot").to_list() == [0] * 4 + [1] * 4
    assert frame.get_column("ts").unique().sort().to_list() == [datetime(2026, 11, 28, 21, 42, 39),
                                                                 datetime(2026, 11, 28, 21, 42, 50)]
    assert frame.get_column("vhost").unique().to_list() == ["cpm-events-storm"]
    pidbox = frame.filter(pl.col("name") == "w1@sample.celery.pidbox").row(0, named=True)
    assert (pidbox["line"], pidbox["messages"], pidbox["consumers"], pidbox["memory"]) == (8, 0, 1, 35176)
    assert pidbox["messages_ready"] is None  # not asked for
    assert pidbox["text"] == "w1@sample.celery.pidbox\t0\t1\t35176"


def test_growth_is_measured_per_queue_across_snapshots() -> None:
    frame = _parse(STORM)
    # the listings order queues differently; growth pairs rows by queue name, not position
    storm = frame.filter(pl.col("name").str.starts_with("celeryev.") & (pl.col("messages") > 0)).sort("snapshot")
    assert storm.get_column("messages").to_list() == [6041, 14878]
    assert storm.get_column("messages_delta").to_list() == [None, 8837]
    assert storm.get_column("interval_s").to_list() == [None, 11.0]
    assert storm.get_column("line").to_list() == [5, 13]
    flat = frame.filter(pl.col("name") == "w1@sample.celery.pidbox").get_column("messages_delta").to_list()
    assert flat == [None, 0]


def test_columns_follow_the_header() -> None:
    [row] = _parse(STALL).to_dicts()
    assert row["name"] == "celery" and row["vhost"] == "cpm-sample-stall"
    assert (row["messages"], row["messages_ready"], row["messages_unacknowledged"], row["consumers"]) == (3, 3, 0, 0)
    assert row["memory"] is None and row["ts"] is None and row["snapshot"] == 0


def test_bundle_exposes_the_queues_frame_and_the_rule_fires_on_the_grown_queue() -> None:
    b = open_bundle(SAMPLES / "events-storm")
    queues = b.frame_map()["queues"]
    assert queues.height == 8 and set(queues.get_column("source")) == {"rabbitmqctl-list_queues.txt"}
    storms = [f for f in b.report().findings if f.category == "events.storm"]
    assert [(f.rule, f.evidence[0].line) for f in storms] == [("CP-E010", 13)]
    assert "+8837 since the listing 11.0 s earlier" in storms[0].summary


def test_text_that_is_not_a_listing_is_counted_unrecognised() -> None:
    lines = read_lines(SAMPLES / "events-storm" / "send.log")
    frame, cov = parse_lines(lines, source="send.log")
    assert frame.is_empty() and cov.unrecognized == 1


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, check=True, timeout=60).stdout


def _lines(text: str) -> Lines:
    return read_lines(text.encode())


def test_live_quiet_and_headerless_listings() -> None:
    require("rabbitmq")
    if shutil.which("rabbitmqctl") is None:
        if REQUIRE_LIVE:
            pytest.fail("CPM_REQUIRE_LIVE=1 but rabbitmqctl is absent")
        pytest.skip("needs rabbitmqctl (absent here)")
    from kombu import Connection, Exchange, Queue

    name = f"cpm-test-queues-{uuid.uuid4()}"
    queue = Queue(name, Exchange("", type="direct"), routing_key=name, durable=False,
                  queue_arguments={"x-expires": 120_000})  # gone by itself if the test dies
    with Connection("amqp://guest:guest@127.0.0.1:5672//") as conn:
        bound = queue(conn.default_channel)
        bound.declare()
        try:
            producer = conn.Producer()
            for i in range(3):
                producer.publish({"i": i}, routing_key=name, declare=[queue], retry=True)
            quiet = _rabbitmqctl("-q", "list_queues", "name", "messages", "consumers")
            bare = _rabbitmqctl("-q", "list_queues", "--no-table-headers")  # default columns: name, messages
        finally:
            bound.delete()
    assert sniff(quiet.encode()) == "rabbitmq_queues"
    for text in (quiet, bare):
        frame, cov = parse_lines(_lines(text), source="live")
        assert cov.unrecognized == 0, (text, cov)
        row = frame.filter(pl.col("name") == name).row(0, named=True)
        assert row["messages"] == 3 and row["vhost"] is None and row["snapshot"] == 0
    frame, _ = parse_lines(_lines(quiet), source="live")
    assert frame.filter(pl.col("name") == name).row(0, named=True)["consumers"] == 0


def test_advice_asks_for_two_listings_unless_the_bundle_has_one() -> None:
    from analyzer.advice import advise

    b = open_bundle(SAMPLES / "events-storm")
    rep = b.report()
    [storm] = [f for f in rep.findings if f.rule == "CP-E010"]
    assert rep.root_causes == [storm.id]
    asked = [a.command for a in advise(storm, ["celery_log"]).missing]
    assert asked[0].startswith("for i in 1 2; do date -Is; rabbitmqctl list_queues -p VHOST name messages")
    assert not any("list_queues" in a.command for a in advise(storm, ["celery_log", "rabbitmq_queues"]).missing)
