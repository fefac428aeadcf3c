"""JSON-lines worker logs (python-json-logger and similar) → the `events` frame.

A real line (FORMATS.md A.5, python-json-logger 4.2 via Celery's `after_setup_logger`):
`{"asctime": "2026-11-28 18:00:16,244", "levelname": "INFO", "processName": "ForkPoolWorker-1",
  "name": "celery.app.trace", "message": "Task proj.add[05ed…] succeeded in 0.0013s: 5",
  "data": {"id": "05ed…", "name": "proj.add", "runtime": 0.0013, …}}`
The exception text is in `exc_info` (a string). Fields are pulled with `json_path_match`,
one vectorised pass per field; lines that are not JSON objects are continuation text of the
record before them (stderr interleaved) or, before the first record, unrecognised.

structlog's `dict_tracebacks` write the exception as a list of dicts (`"exception": [{"exc_type":
"WorkerLostError", "exc_value": …, "frames": […]}]`): the class is read from the first. A log pasted
pretty-printed (`json.dumps(indent=2)`, one object over many lines) is read by `pretty_lines`, which
gives each object back as one line, numbered by the line it starts on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from analyzer.schema import EVENTS, conform
from analyzer.sources.celery_log import Coverage, Parsed
from analyzer.sources.folding import EXC_LINE_RE
from analyzer.sources.lifecycle_messages import READY_RE, classify
from analyzer.sources.lines import Lines, read_lines

# First path that yields a value wins.
FIELDS: dict[str, tuple[str, ...]] = {
    "_time": ("$.asctime", "$.timestamp", "$.time", "$['@timestamp']"),
    "level": ("$.levelname", "$.level", "$.severity"),
    "process": ("$.processName", "$.process_name"),
    "logger": ("$.name", "$.logger", "$.logger_name"),
    "message": ("$.message", "$.msg", "$.event"),  # structlog's JSONRenderer writes `event`
    "_exc": ("$.exc_info", "$.exc_text", "$.exception"),
    "_exc_type": ("$.exception[0].exc_type",),  # structlog dict_tracebacks
    "task_id": ("$.data.id", "$.task_id"),
    "task_name": ("$.data.name", "$.task_name"),
    "_runtime": ("$.data.runtime", "$.runtime"),
    "_hostname": ("$.hostname", "$.data.hostname"),
}


def _field(paths: tuple[str, ...]) -> pl.Expr:
    return pl.coalesce(*(pl.col("text").str.json_path_match(p) for p in paths))


def _key(path: str) -> str:
    """The last key of a JSON path, as it appears quoted in the text: `$.data.id` -> `"id"`."""
    return '"' + path.removeprefix("$").replace("['", ".").replace("']", "").rsplit(".", 1)[-1] + '"'


def _fields(objs: pl.DataFrame) -> pl.DataFrame:
    """FIELDS of each JSON line. Every JSON-path match parses the line again, so paths whose key
    never occurs in the file are skipped (a substring scan decides), and a field with one path
    left needs no coalesce."""
    keys = sorted({_key(p) for paths in FIELDS.values() for p in paths})
    found = objs.select(**{k: pl.col("text").str.contains(k, literal=True).any() for k in keys}).row(0, named=True)
    exprs = {}
    for name, paths in FIELDS.items():
        used = [p for p in paths if found[_key(p)]]
        exprs[name] = _field(tuple(used)) if used else pl.lit(None, dtype=pl.String)
    return objs.with_columns(**exprs)


def _parse_time(raw: pl.Expr) -> pl.Expr:
    norm = raw.str.replace("T", " ", literal=True).str.replace(",", ".", literal=True)
    return pl.coalesce(
        norm.str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S%.f", strict=False),
        norm.str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S", strict=False),
        # ISO-8601 with a zone (python-json-logger `timestamp=True` writes UTC): keep wall time
        norm.str.slice(0, 23).str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S%.f", strict=False),
    )


def parse_lines(lines: Lines, *, source: str) -> Parsed:
    df = lines.frame
    is_obj = pl.col("text").str.starts_with("{") & pl.col("text").str.ends_with("}")
    df = df.with_columns(is_obj.alias("_start"))
    df = df.with_columns(pl.col("_start").cast(pl.Int64).cum_sum().alias("_rec"))
    objs = _fields(df.filter(pl.col("_start")))
    # a line that starts like JSON but has no message/level is not a log record
    objs = objs.with_columns(
        pl.col("message").fill_null(""),
        # structlog writes `"level": "error"`: levels are upper case, with logging's aliases
        pl.col("level").str.to_uppercase().replace({"WARN": "WARNING", "FATAL": "CRITICAL", "EXCEPTION": "ERROR"}),
        _parse_time(pl.col("_time")).alias("ts"),
        pl.col("_runtime").cast(pl.Float64, strict=False).alias("runtime_s"),
        pl.coalesce(pl.col("_exc_type"), pl.col("_exc").str.split("\n").list.eval(
            pl.element().filter(~pl.element().str.starts_with(" ") & (pl.element() != ""))
        ).list.last().str.extract(EXC_LINE_RE, 1)).alias("exc_type"),
    )
    cont = df.filter(~pl.col("_start") & (pl.col("_rec") > 0)).group_by("_rec").agg(
        pl.col("text").sort_by("line").str.join("\n").alias("_cont"), pl.col("line").max().alias("end_line"))
    objs = objs.join(cont, on="_rec", how="left").with_columns(
        pl.coalesce(pl.col("end_line"), pl.col("line")).alias("end_line"),
        pl.concat_str(
            pl.col("message"),
            pl.when(pl.col("_exc").is_not_null()).then(pl.lit("\n") + pl.col("_exc")).otherwise(pl.lit("")),
            pl.when(pl.col("_cont").is_not_null()).then(pl.lit("\n") + pl.col("_cont")).otherwise(pl.lit("")),
        ).alias("text"),
        pl.lit(None, dtype=pl.String).alias("kind"),
    )
    ev = classify(objs)
    ready = pl.when(pl.col("kind") == "ready").then(pl.col("message").str.extract(READY_RE, 1))
    ev = ev.with_columns(
        pl.coalesce(pl.col("_hostname"), ready.drop_nulls().first()).alias("host"),
        pl.lit(source).alias("source"),
    )
    events = conform(ev, EVENTS).select(EVENTS.keys())
    unrec = df.filter((pl.col("_rec") == 0) & (pl.col("text").str.strip_chars() != ""))
    return Parsed(events, Coverage.of(source, "json_log", df, unrec, lines.invalid_utf8))


# A pretty-printed log is read whole; bigger documents stay unread (no log is pasted that large)
PRETTY_MAX_BYTES = 16 << 20
_LEVEL_KEYS = ("levelname", "level", "levelno", "severity")
_MESSAGE_KEYS = ("message", "msg", "event")


def pretty_lines(data: bytes) -> Lines | None:
    """The JSON objects of a pretty-printed log, one compact line each (numbered by the line each
    starts on), when the whole text is a sequence of objects that all have a level and a message;
    else None (a document that is not a log)."""
    if len(data) > PRETTY_MAX_BYTES:
        return None
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    decoder = json.JSONDecoder()
    rows: list[tuple[int, str]] = []
    pos = 0
    ws = re.compile(r"\s*")
    while (pos := ws.match(text, pos).end()) < len(text):  # type: ignore[union-attr]
        try:
            obj, end = decoder.raw_decode(text, pos)
        except ValueError:
            return None
        if not isinstance(obj, dict) or not any(k in obj for k in _LEVEL_KEYS) or not any(
                k in obj for k in _MESSAGE_KEYS):
            return None
        rows.append((text.count("\n", 0, pos) + 1, json.dumps(obj, ensure_ascii=False)))
        pos = end
    if not rows:
        return None
    frame = pl.DataFrame(rows, schema={"line": pl.Int64, "text": pl.String}, orient="row").with_columns(
        pl.lit(None, dtype=pl.String).alias("stream"))
    return Lines(frame, 0, False, False)


def parse(data: bytes | Path, *, source: str) -> Parsed:
    return parse_lines(read_lines(data), source=source)
