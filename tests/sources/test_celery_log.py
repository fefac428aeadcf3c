"""The Celery log parser on real worker output (samples/), and on real output made hostile."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from analyzer import open_bundle
from analyzer.sniff import sniff
from analyzer.sources import celery_log, json_log
from analyzer.sources.log_format import compile_format
from tests.conftest import SAMPLES


def _events(path: Path) -> pl.DataFrame:
    return celery_log.parse(path, source=path.name).events


def _by_line(ev: pl.DataFrame, line: int) -> dict[str, object]:
    return ev.filter(pl.col("line") == line).row(0, named=True)


def test_default_format_5x_lifecycle_and_task_logger_lines() -> None:
    ev = _events(SAMPLES / "healthy" / "worker.log")
    first = _by_line(ev, 5)
    assert (first["level"], first["process"], first["kind"], first["task_name"]) == (
        "INFO", "MainProcess", "received", "proj.add")
    assert first["task_id"] == "0919968d-f28a-4b76-b2da-3fd2263290ed"
    logger_line = _by_line(ev, 7)  # `proj.add[0919…]: adding 0 + 0` from ForkPoolWorker-1
    assert (logger_line["process"], logger_line["task_id"], logger_line["kind"]) == (
        "ForkPoolWorker-1", first["task_id"], None)
    done = _by_line(ev, 11)
    assert done["kind"] == "succeeded" and abs(done["runtime_s"] - 0.020177551000017502) < 1e-12
    assert set(ev["host"]) == {"w1@sample"}
    assert str(ev["ts"][0]) == "2026-11-28 18:56:09.262000"


def test_traceback_is_folded_into_its_record_with_the_exception_type() -> None:
    ev = _events(SAMPLES / "app-exception" / "worker.log")
    rec = _by_line(ev, 11)
    assert (rec["kind"], rec["end_line"], rec["exc_type"]) == ("failed", 22, "ZeroDivisionError")
    assert rec["text"].splitlines()[-1] == "ZeroDivisionError: division by zero"
    assert rec["message"].startswith("Task proj.divide[")
    assert ev.height == 13  # 46 lines, 13 records


def test_billiard_exception_with_traceback_gives_the_inner_exception() -> None:
    ev = _events(SAMPLES / "worker-sigkill" / "worker.log")
    lost = ev.filter(pl.col("kind") == "worker_lost").row(0, named=True)
    assert lost["exc_type"] == "billiard.exceptions.WorkerLostError"
    exited = ev.filter(pl.col("kind") == "process_exited").row(0, named=True)
    assert "signal 9 (SIGKILL)" in exited["message"]


def test_celery_3_1_names_children_worker_n_and_logs_results_from_main_process() -> None:
    ev = _events(SAMPLES / "celery3-format" / "worker.log")
    kinds = ev.group_by("kind").len().filter(pl.col("kind").is_not_null())
    assert {k: n for k, n in kinds.rows() if k in ("received", "succeeded", "failed", "retried", "revoked")} == {
        "received": 7, "succeeded": 4, "failed": 1, "retried": 1, "revoked": 1}
    assert ev.filter(pl.col("kind") == "succeeded")["process"].unique().to_list() == ["MainProcess"]
    assert ev.filter(pl.col("process").str.starts_with("Worker-")).height > 0
    assert ev.filter(pl.col("kind") == "ready")["level"].to_list() == ["WARNING"]


def test_celery_4_received_task_form_with_trailing_spaces_and_eta() -> None:
    ev = _events(SAMPLES / "celery4-format" / "worker.log")
    received = ev.filter(pl.col("kind") == "received")
    assert received.height == 7
    assert received["task_id"].str.len_chars().unique().to_list() == [36]


def test_custom_log_format_given_as_the_users_format_strings() -> None:
    fmts = [compile_format("%(asctime)s %(levelname)s [%(processName)s] %(name)s: %(message)s"),
            compile_format("%(asctime)s %(levelname)s [%(processName)s] %(task_name)s[%(task_id)s] %(name)s: "
                           "%(message)s")]
    path = SAMPLES / "custom-log-format" / "worker.log"
    parsed = celery_log.parse(path, source="worker.log", log_formats=fmts)
    ev = parsed.events
    assert parsed.coverage.unrecognized == 0
    assert ev.filter(pl.col("kind") == "succeeded").height == 3
    assert ev["logger"].drop_nulls().to_list()[0] == "celery.worker.consumer.connection"
    failed = ev.filter(pl.col("kind") == "failed").row(0, named=True)
    assert failed["exc_type"] == "ZeroDivisionError" and failed["end_line"] > failed["line"]


def test_msecs_after_a_datefmt_without_them_are_the_timestamps_milliseconds(tmp_path: Path) -> None:
    """`%(asctime)s.%(msecs)03d` with `datefmt='%Y-%m-%d %H:%M:%S'`, the usual way to keep milliseconds
    with a custom date format: written here by Python's own logging, records a few ms apart."""
    import logging
    import time

    fmt = "%(asctime)s.%(msecs)03d %(levelname)s [%(processName)s] %(name)s: %(message)s"
    path = tmp_path / "worker.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(fmt, datefmt="%Y-%m-%d %H:%M:%S"))
    log = logging.getLogger("cpm.test.msecs")
    log.propagate = False
    log.addHandler(handler)
    try:
        created = []
        for i in range(3):
            record = log.makeRecord(log.name, logging.INFO, __file__, 1, "step %d", (i,), None)
            created.append(record.created)
            log.handle(record)
            time.sleep(0.003)
    finally:
        log.removeHandler(handler)
        handler.close()
    ev = celery_log.parse(path, source="worker.log", log_formats=[compile_format(fmt)]).events
    want = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c)) + f".{int(c % 1 * 1000):03d}" for c in created]
    assert [t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] for t in ev["ts"]] == want


def test_json_lines_log() -> None:
    parsed = json_log.parse(SAMPLES / "json-log" / "worker.log", source="worker.log")
    ev = parsed.events
    assert parsed.coverage.unrecognized == 0
    assert dict(ev.group_by("kind").len().drop_nulls().rows()) == {
        "connected": 1, "ready": 1, "received": 4, "succeeded": 3, "failed": 1}
    failed = ev.filter(pl.col("kind") == "failed").row(0, named=True)
    assert failed["exc_type"] == "ZeroDivisionError" and "Traceback" in failed["text"]
    assert set(ev["host"]) == {"w1@sample"}


def test_ansi_colour_and_crlf_console_capture() -> None:
    path = SAMPLES / "celery-colour" / "worker.console"
    raw = path.read_bytes()
    assert b"\x1b[" in raw and b"\r\n" in raw  # the real pty capture is coloured
    ev = _events(path)
    assert not ev["text"].str.contains("\x1b", literal=True).any()
    assert not ev["text"].str.contains("\r", literal=True).any()
    assert ev.filter(pl.col("kind") == "succeeded").height == 3
    assert ev.filter(pl.col("kind") == "banner")["host"].to_list() == ["w1@sample"]


def test_banner_warning_and_shutdown_lines_of_stdout_are_records() -> None:
    ev = _events(SAMPLES / "healthy" / "worker.stdout")
    assert ev["kind"].to_list() == [None, "banner", "shutdown"]
    assert ev["level"].to_list()[0] == "WARNING"  # the captured SecurityWarning
    assert ev["end_line"].to_list() == [9, 29, 30]


def test_container_prefixes_are_removed_and_streams_fold_separately(tmp_path: Path) -> None:
    """docker compose writes `service_1  | line`; docker is not on this machine, so the prefix is
    applied to two real worker logs and the lines interleaved, as `docker compose logs` does."""
    a = (SAMPLES / "app-exception" / "worker.log").read_text().splitlines()
    b = (SAMPLES / "healthy" / "worker.log").read_text().splitlines()
    merged = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            merged.append(f"worker_1  | {a[i]}")
        if i < len(b):
            merged.append(f"worker-2  | {b[i]}")
    p = tmp_path / "compose.log"
    p.write_text("\n".join(merged) + "\n")
    parsed = celery_log.parse(p, source="compose.log")
    ev = parsed.events
    assert parsed.coverage.unrecognized == 0
    assert "log prefixes removed (docker compose" in parsed.coverage.notes[0]
    failed = ev.filter(pl.col("kind") == "failed")
    assert failed.height == 3 and failed["exc_type"].to_list() == ["ZeroDivisionError"] * 3
    # the traceback lines of worker_1 were folded although worker-2's lines sit between them
    assert all(t.count("\n") == 11 for t in failed["text"])
    assert ev.filter(pl.col("kind") == "succeeded").height == 5 + 1


def test_invalid_utf8_is_replaced_counted_and_nothing_is_lost(tmp_path: Path) -> None:
    raw = (SAMPLES / "healthy" / "worker.log").read_bytes().replace(b"adding 0 + 0", b"adding \xff\xfe + 0", 1)
    p = tmp_path / "w.log"
    p.write_bytes(raw)
    parsed = celery_log.parse(p, source="w.log")
    assert parsed.coverage.invalid_utf8 == 1
    assert parsed.events.height == _events(SAMPLES / "healthy" / "worker.log").height
    assert parsed.events["text"].str.contains("\ufffd", literal=True).sum() == 1


def test_missing_trailing_newline_and_empty_file(tmp_path: Path) -> None:
    raw = (SAMPLES / "healthy" / "worker.log").read_bytes()
    p = tmp_path / "cut.log"
    p.write_bytes(raw.rstrip(b"\n"))
    assert _events(p).height == _events(SAMPLES / "healthy" / "worker.log").height
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    parsed = celery_log.parse(empty, source="empty.log")
    assert parsed.events.height == 0 and parsed.coverage.lines == 0


def test_huge_line_and_garbage_before_the_first_record(tmp_path: Path) -> None:
    raw = (SAMPLES / "healthy" / "worker.log").read_bytes()
    p = tmp_path / "odd.log"
    p.write_bytes(b"garbage line\n" + b"x" * 5_000_000 + b"\n" + raw)
    parsed = celery_log.parse(p, source="odd.log")
    assert parsed.coverage.unrecognized == 2
    assert [ln for ln, _ in parsed.coverage.samples] == [1, 2]
    # the layout does not read them, yet every line is evidence: two records with no time or level
    assert parsed.events.height == _events(SAMPLES / "healthy" / "worker.log").height + 2
    first = parsed.events.sort("line").head(2)
    assert first.get_column("line").to_list() == [1, 2]
    assert first.get_column("ts").null_count() == 2 and first.get_column("level").null_count() == 2


def test_binary_garbage_is_sniffed_as_binary_and_reported(tmp_path: Path) -> None:
    p = tmp_path / "blob.bin"
    p.write_bytes(bytes(range(256)) * 10)
    assert sniff(p.read_bytes()[:4096]) == "binary"
    b = open_bundle(p)
    assert b.events.height == 0
    assert b.coverage[0].kind == "binary" and b.coverage[0].notes


def test_several_files_share_one_timeline() -> None:
    b = open_bundle([SAMPLES / "healthy" / "worker.log", SAMPLES / "app-exception" / "worker.log"])
    ev = b.events
    assert ev["ts"].is_sorted()
    assert {Path(s).parent.name for s in ev["source"]} == {"healthy", "app-exception"}
    assert b.tasks.height == 5 + 4


def test_a_slashed_date_format_gives_the_same_records(tmp_path: Path) -> None:
    """A `datefmt` of `%Y/%m/%d` keeps the header's columns: the same timestamps, level and process."""
    raw = (SAMPLES / "app-exception" / "worker.log").read_text()
    p = tmp_path / "slashes.log"
    p.write_text("\n".join(line.replace("-", "/", 2) if line.startswith("[20") else line
                           for line in raw.splitlines()) + "\n")
    ev = _events(p)
    reference = _events(SAMPLES / "app-exception" / "worker.log")
    assert ev.select("ts", "level", "process", "message").equals(
        reference.select("ts", "level", "process", "message"))
    assert ev["ts"].null_count() == 0


@pytest.mark.parametrize("prefix", ["", "worker-1  | ", "[pod/w-1/celery] "])
def test_the_container_runtimes_timestamps_are_removed_like_its_prefixes(tmp_path: Path, prefix: str) -> None:
    """`kubectl logs --timestamps` and `docker compose logs -t` put the runtime's RFC 3339 time before
    each line, after the stream prefix when there is one; neither tool is usable on this machine, so
    the prefix is applied to a real worker log as they write it."""
    raw = (SAMPLES / "app-exception" / "worker.log").read_text().splitlines()
    p = tmp_path / "runtime-ts.log"
    p.write_text("".join(f"{prefix}2026-11-28T18:56:14.{i:09d}Z {line}\n" for i, line in enumerate(raw)))
    parsed = celery_log.parse(p, source="worker.log")
    reference = _events(SAMPLES / "app-exception" / "worker.log")
    assert parsed.coverage.unrecognized == 0
    assert parsed.events.select("line", "ts", "kind", "message", "exc_type").equals(
        reference.select("line", "ts", "kind", "message", "exc_type"))
    assert sniff(p.read_bytes()[:4096]) == "celery_log"
