"""Broker and database server logs → `events` rows, so rules see the server's side of a failure.

RabbitMQ 3.9+ (observed, 3.10.8; deps/rabbit/src/rabbit_reader.erl):
`2026-11-28 19:01:04.607256+00:00 [error] <0.6755.0> PLAIN login refused: user 'guest' - invalid credentials`
PostgreSQL with the `%m [%p] %q%u@%d ` prefix (observed, PostgreSQL 15):
`2026-11-28 19:04:38.778 UTC [14477] postgres@test ERROR:  deadlock detected`, followed by
`… DETAIL:  Process 14477 waits for ShareLock on transaction 732; blocked by process 14476.` and
tab-indented continuation lines. DETAIL / HINT / CONTEXT / STATEMENT lines belong to the record
before them, so a record carries the whole report.

RabbitMQ <= 3.7 (Erlang/OTP error_logger reports, also lager's default): a header line
`=ERROR REPORT==== 15-Aug-2018::10:05:42 ===` then the report's lines, e.g.
`closing AMQP connection <0.28344.0> (172.18.0.5:46918 -> 172.18.0.3:5672):` /
`missed heartbeats from client, timeout: 60s`. A record is the header and its lines; its
message is the report's lines (joined by newlines), so rules read the same text as in 3.9+.
Redis (src/server.c serverLogRaw, `"%d:%c %s %c %s"`: pid, role X/C/S/M, `%d %b %Y %H:%M:%S.mmm`,
level `.-*#`): `1:S 05 Jan 2023 08:40:47.159 * Connecting to MASTER 185.246.90.205:8886`.

Lines before a server log's first record (a worker traceback pasted above it) are records of
layout unknown, with no host: every line is evidence.

Server records have no Celery node: `host` names the server (`rabbitmq`, `postgres`) and
`process` its process id (`<0.6755.0>`, `14477`); diagnosis treats such hosts as shared.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from analyzer.schema import EVENTS, conform
from analyzer.sources.celery_log import Coverage, Parsed
from analyzer.sources.folding import fold
from analyzer.sources.lifecycle_messages import classify
from analyzer.sources.lines import Lines, read_lines
from analyzer.sources.unknown import as_events, unknown_records

RABBITMQ_RE = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)(?:[+-]\d\d:\d\d|Z)? \[(\w+)\] (<[\d.]+>) (.*)$"
POSTGRES_RE = (r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)(?: [A-Z]{2,5})? \[(\d+)\] (?:\S+ )?"
               r"(LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG\d?|DETAIL|HINT|CONTEXT|STATEMENT|QUERY):  (.*)$")
# Erlang/OTP's report header (RabbitMQ <= 3.7): `=WARNING REPORT==== 6-May-2019::03:56:36 ===`
ERLANG_REPORT_RE = (r"^=(INFO|ERROR|WARNING|CRASH|SUPERVISOR|PROGRESS) REPORT==== "
                    r"(\d{1,2}-[A-Z][a-z]{2}-\d{4})::(\d\d:\d\d:\d\d(?:\.\d+)?) ===\s*$")
ERLANG_LEVEL = {"INFO": "INFO", "PROGRESS": "INFO", "WARNING": "WARNING", "ERROR": "ERROR", "CRASH": "ERROR",
                "SUPERVISOR": "ERROR"}
# Redis: `1:S 05 Jan 2023 08:40:47.159 * Connecting to MASTER 185.246.90.205:8886`
REDIS_RE = r"^(\d{1,10}):([XCSM]) (\d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d\.\d{3}) ([.*#-]) (.*)$"
REDIS_LEVEL = {".": "DEBUG", "-": "INFO", "*": "INFO", "#": "WARNING"}
PG_CONTINUATION = ("DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY")
PG_LEVEL = {"LOG": "INFO", "FATAL": "CRITICAL", "PANIC": "CRITICAL", "NOTICE": "INFO"}
RABBIT_LEVEL = {"info": "INFO", "error": "ERROR", "warning": "WARNING", "debug": "DEBUG", "notice": "INFO",
                "critical": "CRITICAL"}


def _timestamp(raw: pl.Expr) -> pl.Expr:
    return raw.str.slice(0, 23).str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S%.f", strict=False).fill_null(
        raw.str.slice(0, 19).str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S", strict=False))


# `host` of a server's own records: no Celery node, shared by every node (diagnosis)
RABBITMQ_HOST = "rabbitmq"
POSTGRES_HOST = "postgres"
REDIS_HOST = "redis"
SERVER_HOSTS = (RABBITMQ_HOST, POSTGRES_HOST, REDIS_HOST)


def _events(lines: Lines, heads: pl.DataFrame, *, source: str, kind: str, host: str) -> Parsed:
    df = lines.frame.join(heads.select("line", "_start"), on="line", how="left").with_columns(
        pl.col("_start").fill_null(False))
    df, starts = fold(df, heads.filter(pl.col("_start")))
    ev = starts.with_columns(pl.lit(source).alias("source"), pl.lit(host).alias("host"),
                             pl.lit(None, dtype=pl.String).alias("kind"))
    if "_body" in ev.columns:  # an Erlang report: its message is the report's lines
        ev = ev.with_columns(pl.when(pl.col("_body")).then(
            pl.col("text").str.splitn("\n", 2).struct.field("field_1").fill_null(pl.col("message")))
            .otherwise(pl.col("message")).alias("message"))
    pre = df.filter(pl.col("_rec").is_null())
    unrec = pre.filter(pl.col("text").str.strip_chars() != "")
    events = conform(ev, EVENTS).select(EVENTS.keys())
    if unrec.height:  # lines before the first record (a worker's traceback pasted above): records too
        keep = ["line", "text", "stream", *(c for c in ("_row",) if c in pre.columns)]
        events = pl.concat([events, as_events(classify(unknown_records(pre.select(keep))), source)]).sort(
            "line", maintain_order=True)
    return Parsed(events, Coverage.of(source, kind, df, unrec, lines.invalid_utf8))


def parse_rabbitmq(lines: Lines, *, source: str) -> Parsed:
    caps = pl.col("text").str.extract_groups(RABBITMQ_RE)
    heads = lines.frame.filter(pl.col("text").str.contains(RABBITMQ_RE)).with_columns(
        _timestamp(caps.struct.field("1")).alias("ts"),
        caps.struct.field("2").replace_strict(RABBIT_LEVEL, default="INFO").alias("level"),
        caps.struct.field("3").alias("process"),
        caps.struct.field("4").alias("message"),
        pl.lit("rabbitmq").alias("logger"),
        pl.lit(True).alias("_start"),
        pl.lit(False).alias("_body"),
    )
    report = pl.col("text").str.extract_groups(ERLANG_REPORT_RE)
    reports = lines.frame.filter(pl.col("text").str.contains(ERLANG_REPORT_RE)).with_columns(
        pl.concat_str(report.struct.field("2"), pl.lit(" "), report.struct.field("3")).str.strptime(
            pl.Datetime("ms"), "%d-%b-%Y %H:%M:%S%.f", strict=False).alias("ts"),
        report.struct.field("1").replace_strict(ERLANG_LEVEL, default="INFO").alias("level"),
        pl.lit(None, dtype=pl.String).alias("process"),
        pl.col("text").alias("message"),
        pl.lit("rabbitmq").alias("logger"),
        pl.lit(True).alias("_start"),
        pl.lit(True).alias("_body"),
    )
    if reports.height:
        heads = pl.concat([heads, reports], how="diagonal_relaxed").sort("line")
    return _events(lines, heads, source=source, kind="rabbitmq_log", host=RABBITMQ_HOST)


def parse_redis(lines: Lines, *, source: str) -> Parsed:
    caps = pl.col("text").str.extract_groups(REDIS_RE)
    heads = lines.frame.filter(pl.col("text").str.contains(REDIS_RE)).with_columns(
        caps.struct.field("3").str.strptime(pl.Datetime("ms"), "%d %b %Y %H:%M:%S%.f", strict=False).alias("ts"),
        caps.struct.field("4").replace_strict(REDIS_LEVEL, default="INFO").alias("level"),
        caps.struct.field("1").alias("process"),
        caps.struct.field("5").alias("message"),
        pl.lit("redis").alias("logger"),
        pl.lit(True).alias("_start"),
    )
    return _events(lines, heads, source=source, kind="redis_log", host=REDIS_HOST)


def parse_postgres(lines: Lines, *, source: str) -> Parsed:
    caps = pl.col("text").str.extract_groups(POSTGRES_RE)
    heads = lines.frame.filter(pl.col("text").str.contains(POSTGRES_RE)).with_columns(
        _timestamp(caps.struct.field("1")).alias("ts"),
        caps.struct.field("3").alias("_sev"),
        caps.struct.field("2").alias("process"),
        pl.concat_str(caps.struct.field("3"), pl.lit(":  "), caps.struct.field("4")).alias("_msg"),
        caps.struct.field("4").alias("_bare"),
    ).with_columns(
        (~pl.col("_sev").is_in(PG_CONTINUATION)).alias("_start"),
        pl.col("_sev").replace(PG_LEVEL).alias("level"),
        pl.lit("postgres").alias("logger"),
        # a continuation keeps its `DETAIL:` tag in the folded text; a record's message is bare
        pl.when(pl.col("_sev").is_in(PG_CONTINUATION)).then(pl.col("_msg")).otherwise(pl.col("_bare"))
        .alias("message"),
    )
    # continuation records (`DETAIL:  …`) become text lines of the record before them
    cont_text = heads.filter(~pl.col("_start")).select("line", pl.col("message").alias("_ct"))
    frame = lines.frame.join(cont_text, on="line", how="left").with_columns(
        pl.coalesce("_ct", "text").alias("text")).drop("_ct")
    lines = Lines(frame, lines.invalid_utf8, lines.had_ansi, lines.had_prefix)
    return _events(lines, heads, source=source, kind="postgres_log", host=POSTGRES_HOST)


def parse_rabbitmq_file(data: bytes | Path, *, source: str) -> Parsed:
    return parse_rabbitmq(read_lines(data), source=source)


def parse_redis_file(data: bytes | Path, *, source: str) -> Parsed:
    return parse_redis(read_lines(data), source=source)


def parse_postgres_file(data: bytes | Path, *, source: str) -> Parsed:
    return parse_postgres(read_lines(data), source=source)
