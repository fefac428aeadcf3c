"""Layouts detected from a file's own lines, and records of lines no layout reads (issue 13, items 1-2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from analyzer import open_bundle
from analyzer.api import Bundle
from analyzer.sources import layouts
from analyzer.sources.lines import read_lines
from analyzer.sources.unknown import unknown_records
from tests.conftest import SAMPLES

CUSTOM = SAMPLES / "custom-log-format"


@pytest.mark.parametrize(("line", "shape"), [
    ("2026-11-28 19:05:09,375 INFO    [MainProcess] celery.worker.consumer.connection: Connected to redis://x",
     "%(asctime)s %(levelname)-8s [%(processName)s] %(name)s: %(message)s"),
    ("2026-11-28 19:05:11,535 INFO [ForkPoolWorker-1] proj.add[782236ed-8452-46bc-80b0-958f2fd2ea28] proj: adding",
     "%(asctime)s %(levelname)-8s [%(processName)s] %(task_name)s[%(task_id)s] %(name)s: %(message)s"),
    ("[2023-01-01T00:00:00.123+0000] {taskinstance.py:1234} ERROR - Task failed with exception",
     "[%(asctime)s] {%(filename)s:%(lineno)d} %(levelname)-8s - %(message)s"),
    ("2026-11-28 19:05:09,375 - celery.app.trace - ERROR - Task x raised",
     "%(asctime)s - %(name)s - %(levelname)-8s - %(message)s"),
    ("WARNING:root:hello", "%(levelname)s:%(name)s:%(message)s"),
    ("2026-11-28 19:05:09,375 [12345] [ERROR] boom", "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"),
    ("[2026-11-28 17:58:37,378: INFO/MainProcess] Task proj.add[1c3f] received",
     "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"),
    ("hello world", None),
    ("2026 was a year: nothing else", None),
])
def test_header_shape_writes_the_format_that_printed_the_line(line: str, shape: str | None) -> None:
    assert layouts.header_shape(line) == shape


def test_learned_formats_read_their_own_lines() -> None:
    lines = read_lines((CUSTOM / "worker.log").read_bytes())
    layout = layouts.detect(lines.frame)
    assert layout.name == "logging" and layout.share > 0.5
    assert layout.formats[0] == "%(asctime)s %(levelname)-8s [%(processName)s] %(name)s: %(message)s"


def test_default_celery_layout_wins_over_a_learned_twin() -> None:
    lines = read_lines((SAMPLES / "healthy" / "worker.log").read_bytes())
    assert layouts.detect(lines.frame).name == layouts.CELERY


def test_custom_worker_log_format_sample_needs_no_log_format() -> None:
    exp = json.loads((CUSTOM / "expected.json").read_text())
    b = open_bundle(CUSTOM)
    report = b.report()
    assert report.finding(report.root_causes[0]).category == exp["root_cause"]
    kinds = b.events.get_column("kind").value_counts()
    assert {k: n for k, n in kinds.rows() if k in exp["events"]} == exp["events"]
    assert set(exp["hosts"]) <= set(b.events.get_column("host").drop_nulls())
    (cov,) = [c for c in b.coverage if c.source == "worker.log"]
    assert cov.layout == "logging" and cov.parsed == cov.lines
    assert any(n.startswith("layout inferred: ") for n in cov.notes)


def test_padded_level_and_zoned_iso_time_are_learned(tmp_path: Path) -> None:
    levels = ["INFO", "WARNING", "ERROR", "INFO"]
    rows = [f"2026-11-28T19:05:0{i}.12{i}+01:00 {lv:<7} [MainProcess] celery.worker: message {i}"
            for i, lv in enumerate(levels)]
    log = tmp_path / "w.log"
    log.write_text("\n".join(rows) + "\n")
    ev = open_bundle(log).events
    assert ev.get_column("level").to_list() == levels
    assert ev.get_column("ts").dt.second().to_list() == [0, 1, 2, 3]  # wall time as written
    assert ev.get_column("message").to_list() == [f"message {i}" for i in range(4)]


# -- lines no layout reads ----------------------------------------------------------------------

def _records(text: str) -> pl.DataFrame:
    return Bundle.from_text(text, name="pasted.txt").events.sort("line")


def test_a_file_that_is_only_a_traceback_is_one_record_with_its_exception() -> None:
    ev = _records('Traceback (most recent call last):\n  File "/app/x.py", line 3, in f\n    r.ping()\n'
                  "redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379. Connection refused.\n")
    assert ev.height == 1
    assert ev.row(0, named=True)["exc_type"] == "redis.exceptions.ConnectionError"
    assert ev.row(0, named=True)["end_line"] == 4


def test_one_exception_line_is_a_record_and_rules_judge_it() -> None:
    b = Bundle.from_text("sqlalchemy.exc.TimeoutError: QueuePool limit of size 50 overflow 5 reached, connection "
                         "timed out, timeout 30.00\n", name="pasted.txt")
    assert b.events.get_column("exc_type").to_list() == ["sqlalchemy.exc.TimeoutError"]
    report = b.report()
    assert report.verdict == "unhealthy"
    assert report.finding(report.root_causes[0]).category == "db.pool_exhausted"
    (cov,) = report.inputs
    assert cov.layout == layouts.UNKNOWN and cov.parsed == cov.lines
    assert any(n.startswith("layout unknown") for n in cov.notes)


def test_tracebacks_fold_into_the_line_before_them_and_chains_stay_whole() -> None:
    text = ("worker said: Task proj.x raised unexpected: KeyError('a')\n"
            'Traceback (most recent call last):\n  File "a.py", line 1, in f\n    g()\nKeyError: \'a\'\n'
            "\nDuring handling of the above exception, another exception occurred:\n\n"
            'Traceback (most recent call last):\n  File "a.py", line 2, in f\n    h()\nValueError: b\n'
            'Traceback (most recent call last):\n  File "b.py", line 9, in k\n    z()\nOSError: c\n'
            "next line\n")
    ev = _records(text)
    assert ev.get_column("line").to_list() == [1, 13, 17]
    assert ev.get_column("exc_type").to_list() == ["ValueError", "OSError", None]


def test_time_and_level_near_the_start_are_read_when_no_layout_reads_the_line() -> None:
    ev = _records("myhost celery 2026-11-28T19:05:09.375Z ERROR boom\nplain words\n<12>[error] other\n")
    assert ev.get_column("level").to_list() == ["ERROR", None, "ERROR"]
    assert ev.get_column("ts").dt.millisecond().to_list()[0] == 375
    assert ev.get_column("ts").null_count() == 2


def test_markdown_and_json_documents_are_not_log_records() -> None:
    readme = (SAMPLES / "worker-sigkill" / "README.md").read_bytes()
    b = Bundle.from_text(readme.decode(), name="README.md")
    assert b.events.is_empty() and b.report().verdict == "inconclusive"
    b = Bundle.from_text(json.dumps({"a": [1, 2]}, indent=1), name="x.json")
    assert b.events.is_empty()


def test_unknown_layout_is_linear_in_its_lines() -> None:
    """A 10x bigger worst case (every line a traceback piece) takes at most ~25x the time."""
    import time

    unit = 'Traceback (most recent call last):\n  File "a.py", line 1, in f\nKeyError: 1\nx ' + "y" * 50 + "\n"

    def took(n: int) -> float:
        lines = read_lines((unit * n).encode())
        t = time.perf_counter()
        unknown_records(lines.frame)
        return time.perf_counter() - t

    took(200)
    assert took(20_000) <= 25 * max(took(2_000), 1e-3)


def test_lines_before_the_first_header_are_records_of_layout_unknown() -> None:
    raw = (SAMPLES / "healthy" / "worker.log").read_text()
    ev = _records("redis.exceptions.ConnectionError: Error 111 connecting\n" + raw)
    first = ev.row(0, named=True)
    assert first["line"] == 1 and first["ts"] is None and first["exc_type"] == "redis.exceptions.ConnectionError"
    assert re.match(r"\[\d{4}", ev.row(1, named=True)["text"]) is None  # header lines keep their own record


def test_a_dmesg_copy_is_read_and_the_oom_killer_is_worker_oom() -> None:
    dmesg = ("[ 1921.981230] celery invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n"
             "[ 1921.981234] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
             "task=celery,pid=4242,uid=0\n"
             "[ 1921.981301] Memory cgroup out of memory: Killed process 4242 (celery) total-vm:402112kB, "
             "anon-rss:260100kB, file-rss:9120kB, shmem-rss:0kB, UID:0 pgtables:660kB oom_score_adj:0\n")
    report = Bundle.from_text(dmesg, name="dmesg.txt").report()
    assert report.verdict == "unhealthy"
    assert report.finding(report.root_causes[0]).category == "worker.oom"


def test_structlog_json_lines_are_json_log_records() -> None:
    lines = ['{"event": "mingle: all alone", "timestamp": "2025-10-10T20:42:31.034605Z", "level": "info"}',
             '{"event": "consumer: Cannot connect", "timestamp": "2025-10-10T20:42:32.034605Z", "level": "error"}']
    b = Bundle.from_text("\n".join(lines) + "\n", name="w.log")
    assert [i.kind for i in b.inputs] == ["json_log"]
    assert b.events.get_column("level").to_list() == ["INFO", "ERROR"]
    assert b.events.get_column("message").to_list()[0] == "mingle: all alone"


def test_journald_prefix_is_removed_and_its_host_kept() -> None:
    text = ("Nov 28 19:05:09 app-3 celery[1234]: [2026-11-28 19:05:09,375: INFO/MainProcess] Connected to redis://x\n"
            "Nov 28 19:05:10 app-3 celery[1234]: [2026-11-28 19:05:10,375: ERROR/MainProcess] consumer: boom\n")
    b = Bundle.from_text(text, name="journal.txt")
    assert [i.kind for i in b.inputs] == ["celery_log"]
    assert b.events.get_column("level").to_list() == ["INFO", "ERROR"]
    assert b.events.get_column("message").to_list()[0] == "Connected to redis://x"


def test_records_joined_on_one_line_and_caret_colour_are_split_and_cleaned() -> None:
    one = ("^[[36mworker_1  |^[[0m [2026-11-28 19:05:09,375: INFO/MainProcess] Connected to redis://redis:6379/0 "
           "worker_1  | [2026-11-28 19:05:10,375: ERROR/MainProcess] consumer: Cannot connect to redis://redis:6379//:"
           " Error 111 connecting to redis:6379. Connection refused.. Trying again in 2.00 seconds... (1/100)\n")
    b = Bundle.from_text(one, name="compose.txt")
    assert b.events.get_column("level").to_list() == ["INFO", "ERROR"]
    assert b.events.get_column("line").to_list() == [1, 1]
    report = b.report()
    assert report.finding(report.root_causes[0]).category == "broker.connection_refused"
    assert report.inputs[0].lines == 1
