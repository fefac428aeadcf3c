"""`celery inspect active|reserved|scheduled|stats` (--json and text) → inspect / workers frames."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
import polars as pl
from click.testing import CliRunner

from analyzer.sources import PARSERS, dumps, inspect
from tests.sources.dump_samples import kind_of, sample

ACTIVE = "deadlock-lock/inspect-active.json"
STATS = "deadlock-lock/inspect-stats.json"


def _celery_text(reply: dict) -> str:
    """The non-JSON output, printed by Celery's own CLI code from a real reply."""
    from celery import Celery
    from celery.bin.base import CLIContext
    from celery.bin.control import _say_remote_command_reply

    @click.command()
    @click.pass_context
    def cmd(ctx):
        ctx.obj = CLIContext(app=Celery("x"), no_color=True, workdir=None)
        _say_remote_command_reply(ctx, reply, show_reply=True)

    return CliRunner().invoke(cmd).output


def test_sniffing_hands_inspect_json_to_the_inspect_parser():
    for pattern in (ACTIVE, STATS, "hang-socket-read/inspect-active-*.json"):
        path = sample(pattern)
        assert kind_of(path) == "inspect_json"
        assert inspect.sniff(path.read_text())
    assert PARSERS["inspect_json"] is dumps.inspect_json
    assert PARSERS["inspect_text"] is dumps.inspect_text


def test_active_reply_gives_one_row_per_task():
    path = sample(ACTIVE)
    reply = json.loads(path.read_text())
    (host, tasks), = reply.items()
    res = inspect.parse_json(path.read_text(), source=path.name)
    assert res.unrecognized == 0 and res.workers.is_empty()
    row = res.inspect.row(0, named=True)
    assert row["host"] == host and row["task_id"] == tasks[0]["id"] and row["task_name"] == tasks[0]["name"]
    assert row["state"] == "active" and row["worker_pid"] == tasks[0]["worker_pid"]
    assert isinstance(row["time_start"], datetime) and row["acknowledged"] is True
    assert abs(row["time_start"].replace(tzinfo=UTC).timestamp() - tasks[0]["time_start"]) < 0.001  # naive UTC
    assert row["source"] == path.name and row["line"] == 1 and row["captured_at"] is None


def test_stats_reply_gives_the_workers_frame():
    path = sample(STATS)
    (host, stats), = json.loads(path.read_text()).items()
    res = inspect.parse_json(path.read_text(), source=path.name)
    w = res.workers.row(0, named=True)
    assert w["host"] == host and w["pid"] == stats["pid"]
    assert w["processes"] == stats["pool"]["processes"]
    assert w["max_concurrency"] == stats["pool"]["max-concurrency"]
    assert w["prefetch_count"] == stats["prefetch_count"] and w["uptime"] == stats["uptime"]
    assert res.inspect.is_empty()


def test_reserved_and_scheduled_are_told_by_content():
    path = sample(ACTIVE)
    (host, tasks), = json.loads(path.read_text()).items()
    reserved = {**tasks[0], "time_start": None, "worker_pid": None}
    scheduled = [{"eta": "2026-11-28T19:10:00+00:00", "priority": 6, "request": reserved}]
    text = json.dumps({host: [reserved]}) + "\n" + json.dumps({host: scheduled}) + "\n"
    res = inspect.parse_json(text, source="mixed.json")
    assert res.inspect["state"].to_list() == ["reserved", "scheduled"]
    assert res.inspect["eta"][1] == "2026-11-28T19:10:00+00:00" and res.inspect["line"].to_list() == [1, 2]


def test_text_form_printed_by_celery_parses_like_the_json():
    for pattern in (ACTIVE, STATS):
        path = sample(pattern)
        text = _celery_text(json.loads(path.read_text()))
        assert text.startswith("->  ")
        assert kind_of_text(text) == "inspect_text"
        res_t = inspect.parse_text(text, source="t.txt")
        res_j = inspect.parse_json(path.read_text(), source="j.json")
        assert res_t.unrecognized == 0
        cols = ["host", "task_id", "task_name", "state", "time_start", "worker_pid"]
        assert res_t.inspect.select(cols).equals(res_j.inspect.select(cols))
        assert res_t.workers.drop("source", "line").equals(res_j.workers.drop("source", "line"))


def kind_of_text(text: str) -> str:
    from analyzer.sniff import sniff

    return sniff(text.encode())


def test_truncated_or_foreign_json_is_counted():
    path = sample(ACTIVE)
    text = path.read_text()
    res = inspect.parse_json(text[: len(text) // 2] + "\nError: No nodes replied within time constraint\n",
                             source="cut.json")
    assert res.inspect.is_empty() and res.unrecognized == 1
    assert any("No nodes replied" in n for n in res.notes)


def test_bundle_carries_inspect_and_workers_frames():
    import analyzer

    path = sample(ACTIVE)
    b = analyzer.open_bundle(path.parent)
    parts = [r.frames["inspect"] for r in b._parsed if "inspect" in r.frames]
    assert pl.concat(parts).filter(pl.col("state") == "active").height >= 1
