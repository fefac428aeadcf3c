"""Logs as people copy them (issue 13): each reader asked directly, on real excerpts of the corpus.

The corpus test (tests/corpus) checks the answer on each whole excerpt; these check the reading
itself: what the lines become, so a regression names the mechanism.
"""

from __future__ import annotations

import polars as pl

from analyzer.sniff import sniff
from analyzer.sources import gdb, json_log, server_logs, text_log
from analyzer.sources.lines import read_lines
from tests.corpus.corpus import EXCERPTS


def _raw(name: str) -> bytes:
    return (EXCERPTS / f"{name}.log").read_bytes()


def test_markdown_marks_are_removed_before_the_compose_prefix_is_read() -> None:
    lines = read_lines(_raw("celery-7007-sigsegv-compose"))
    assert lines.had_prefix
    first = lines.frame.row(0, named=True)
    assert first["stream"] == "bdpmgr-celery_worker-1"
    assert first["text"].startswith("[2021-10-26 06:30:56,829: ERROR/MainProcess] Process 'ForkPoolWorker-6'")
    assert any("Markdown" in n for n in lines.debris)


def test_a_csv_export_is_unquoted() -> None:
    lines = read_lines(_raw("packit-2697-csv-couldnt-ack"))
    texts = lines.frame.get_column("text").to_list()
    assert texts[0].startswith("[2025-01-20 11:31:08,202: CRITICAL/MainProcess] Couldn't ack '47024a1a")
    assert texts[1] == '  File "/usr/lib/python3.13/site-packages/kombu/message.py", line 126, in ack'


def test_terminal_ui_borders_leave_the_widest_pane() -> None:
    texts = read_lines(_raw("paperless-6272-healthy-tui")).frame.get_column("text").to_list()
    assert texts[1].startswith("[2024-04-04 14:50:00,002] [INFO] [celery.beat] Scheduler: Sending due task")
    assert "│" not in "".join(texts)


def test_a_log_without_debris_is_left_alone() -> None:
    raw = _raw("celery-5047-reset-by-peer")
    lines = read_lines(raw)
    assert lines.debris == ()
    assert lines.frame.get_column("text").to_list() == raw.decode().splitlines()


def test_erlang_reports_are_records_whose_message_is_the_report() -> None:
    raw = _raw("celery-4980-compose-rabbitmq-heartbeat")
    assert sniff(raw) == "rabbitmq_log"
    ev = server_logs.parse_rabbitmq_file(raw, source="rabbit.log").events
    assert ev.height == 1
    row = ev.row(0, named=True)
    assert row["host"] == "rabbitmq" and row["level"] == "ERROR"
    assert str(row["ts"]) == "2018-08-15 10:05:42"
    assert row["message"].endswith("missed heartbeats from client, timeout: 60s")


def test_lines_before_a_server_logs_first_record_are_records_too() -> None:
    ev = server_logs.parse_rabbitmq_file(_raw("airflow-15799-ack-timeout-rabbitmq"), source="x.log").events
    assert "amqp.exceptions.PreconditionFailed" in ev.get_column("exc_type").to_list()


def test_redis_server_log_is_read() -> None:
    raw = _raw("safe-tx-1252-redis-replicaof")
    assert sniff(raw) == "redis_log"
    ev = server_logs.parse_redis_file(raw, source="redis.log").events
    assert ev.height == 3
    assert ev.get_column("host").unique().to_list() == ["redis"]
    assert ev.row(1, named=True)["message"] == "Connecting to MASTER 185.246.90.205:8886"


def test_a_pretty_printed_structlog_event_is_one_record() -> None:
    lines = json_log.pretty_lines(_raw("django-structlog-1043-json-workerlost"))
    assert lines is not None and lines.frame.height == 1
    ev = json_log.parse_lines(lines, source="x.log").events
    assert ev.row(0, named=True)["exc_type"] == "WorkerLostError"
    assert ev.row(0, named=True)["level"] == "ERROR"


def test_a_json_document_that_is_no_log_is_not_read_as_one() -> None:
    assert json_log.pretty_lines(b'{\n  "name": "celery",\n  "version": "5.4.0"\n}\n') is None


def test_a_plain_gdb_bt_is_one_thread() -> None:
    dump = gdb.parse(_raw("celery-2917-gdb-semlock").decode(), source="bt.txt")
    assert dump.threads.height == 1
    assert dump.frames.height == 6
    assert dump.frames.row(0, named=True)["function"] == "sem_wait"


def test_a_traceback_after_an_info_record_is_a_record_of_its_own() -> None:
    parsed = text_log.parse(_raw("airflow-19957-deadlock"), source="x.log")
    ev = parsed.events
    assert parsed.coverage.layout == "logging"
    deadlock = ev.filter(pl.col("text").str.contains("DeadlockDetected", literal=True))
    assert deadlock.height >= 1 and deadlock.get_column("level").is_null().all()


def test_a_banner_alone_is_celerys_banner_layout() -> None:
    parsed = text_log.parse(_raw("superset-23701-banner-healthy"), source="x.log")
    assert parsed.coverage.layout == text_log.BANNER
