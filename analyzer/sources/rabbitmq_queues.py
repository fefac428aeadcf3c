"""`rabbitmqctl list_queues` output → the `queues` frame: one row per queue per snapshot.

Observed on RabbitMQ 3.10.8 (samples/events-storm, samples/heartbeat-stall-hang)::

    2026-11-28T21:42:39+00:00                                    <- `date -Is`, when the operator ran it
    Timeout: 60.0 seconds ...
    Listing queues for vhost cpm-events-storm ...
    name	messages	consumers	memory                          <- the columns asked for, tab-separated
    celeryev.d4f49643-b80b-41f4-83a4-4559be0836cf	6041	1	6666136

Columns are taken from the header, so any `list_queues` column list works (unknown ones are
ignored); without a header (`--no-table-headers`) the command's default `name messages` is
assumed. `-q` drops the `Timeout:`/`Listing` lines. A file may hold several runs one after the
other (`for i in 1 2; do date -Is; rabbitmqctl list_queues …; sleep 10; done`): each run is a
snapshot, numbered in file order, and `messages_delta` says how much each queue grew since the
previous snapshot that listed it -- what turns two listings into "this queue keeps growing".
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import polars as pl

from analyzer import schema
from analyzer.sources.celery_log import Coverage
from analyzer.sources.checked import int64
from analyzer.sources.lines import Lines

SCHEMA = schema.QUEUES

TIMEOUT_RE = re.compile(r"^Timeout: \d+(?:\.\d+)? seconds \.\.\.$")
LISTING_RE = re.compile(r"^Listing queues(?: for vhost (.*?))? \.\.\.$")
DONE_RE = re.compile(r"^\.\.\.done\.$")  # RabbitMQ 3.6 and older end a listing with it
# `date -Is` / `date --iso-8601=ns` / `date '+%F %T'`; the zone is dropped (timestamps stay as written)
DATE_RE = re.compile(r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?$")
COLUMN_RE = re.compile(r"^[a-z][a-z0-9_.]*$")
INT_COLUMNS = ("messages", "messages_ready", "messages_unacknowledged", "consumers", "memory")
DEFAULT_COLUMNS = ("name", "messages")


def _header(text: str) -> list[str] | None:
    cols = text.split("\t")
    if "name" in cols and all(COLUMN_RE.match(c) for c in cols) and len(set(cols)) == len(cols):
        return cols
    return None


def _int(value: str) -> int | None:
    return int64(value) if value.isdigit() else None


def parse_lines(lines: Lines, *, source: str) -> tuple[pl.DataFrame, Coverage]:
    df = lines.frame
    rows: list[dict[str, Any]] = []
    unrecognized: list[int] = []
    snapshot = -1
    ts: datetime | None = None
    vhost: str | None = None
    cols: list[str] = list(DEFAULT_COLUMNS)
    last: str | None = None  # what the previous non-blank line was: date / timeout / listing / header / row

    for line, raw in df.select("line", "text").iter_rows():
        text = raw.rstrip("\r")
        if not text.strip():
            continue
        kind: str | None = None
        header: list[str] | None = None
        m: re.Match[str] | None = None
        if m := DATE_RE.match(text):
            kind = "date"
        elif TIMEOUT_RE.match(text):
            kind = "timeout"
        elif m := LISTING_RE.match(text):
            kind = "listing"
        elif (header := _header(text)) is not None:
            kind = "header"
        elif DONE_RE.match(text):
            last = "row"  # the listing is over
            continue
        if kind is not None:
            # a timestamp always opens a run; the other preamble lines do unless they continue one
            if kind == "date" or last in (None, "row", "header"):
                snapshot += 1
                ts, vhost, cols = None, None, list(DEFAULT_COLUMNS)
            if kind == "date" and m is not None:
                ts = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}")
            elif kind == "listing" and m is not None:
                vhost = m.group(1)
            elif header is not None:
                cols = header
            last = kind
            continue
        parts = text.split("\t")
        if len(parts) != len(cols) or not parts[cols.index("name")]:
            unrecognized.append(line)
            continue
        if snapshot < 0:  # rows with no preamble at all (`-q --no-table-headers`)
            snapshot = 0
        values = dict(zip(cols, parts, strict=True))
        row: dict[str, Any] = {"source": source, "line": line, "snapshot": snapshot, "ts": ts, "vhost": vhost,
                               "name": values["name"], "text": text}
        for c in INT_COLUMNS:
            row[c] = _int(values[c]) if c in values else None
        if row["messages"] is None and row["messages_ready"] is not None and row["messages_unacknowledged"] is not None:
            row["messages"] = row["messages_ready"] + row["messages_unacknowledged"]
        rows.append(row)
        last = "row"
    frame = pl.DataFrame(rows, schema={k: v for k, v in SCHEMA.items() if k not in DERIVED})
    frame = with_growth(frame)
    unrec = df.filter(pl.col("line").is_in(unrecognized))
    return schema.conform(frame, SCHEMA), Coverage.of(source, "rabbitmq_queues", df, unrec)


DERIVED = ("messages_delta", "interval_s")


def with_growth(frame: pl.DataFrame) -> pl.DataFrame:
    """`messages_delta` / `interval_s`: change since the previous snapshot listing the same queue."""
    key = ["source", "vhost", "name"]
    return frame.with_columns(
        (pl.col("messages") - pl.col("messages").shift(1).over(key, order_by="snapshot")).alias("messages_delta"),
        ((pl.col("ts") - pl.col("ts").shift(1).over(key, order_by="snapshot")).dt.total_milliseconds() / 1000.0)
        .alias("interval_s"),
    )

