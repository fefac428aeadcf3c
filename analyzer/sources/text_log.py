"""Text the sniffer gives no kind: read as log records, in the layout its lines show or in none.

DESIGN "Every line is evidence": a worker log in a layout nobody told us about, a pasted excerpt,
a traceback or one exception line on its own are still read, so message rules run on their text.
A recognised layout (`layouts.detect`) adds time, level and process; otherwise each line with its
continuation is a record of layout `unknown` (time and level where written near its start).

Documents are not logs: a Markdown file (a bundle's README quoting log lines in prose) and a JSON
document stay unparsed text.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from analyzer.schema import EVENTS, conform
from analyzer.sources import layouts
from analyzer.sources.celery_log import Coverage, Parsed, _attribute_hosts, _coverage, parse_lines
from analyzer.sources.lifecycle_messages import classify
from analyzer.sources.lines import Lines, read_lines
from analyzer.sources.log_format import LogFormat
from analyzer.sources.unknown import unknown_records

# The coverage kind of text read in a worker log's layout: judged like a sniffed worker log (a log mostly
# unread asks for --log-format)
LAID_OUT = "celery_log"
# The layout of lines read behind a known prefix (journald, syslog, docker compose, kubectl) whose own text
# is in no known layout
PREFIXED = "prefixed"
# The layout of text in no known layout that holds Celery's start-up banner: the worker started
BANNER = "celery_banner"
# a config line of the banner behind its art (celery/apps/worker.py BANNER and ARTLINES):
# `- ** ---------- .> transport:   redis://:**@10.65.59.15:6379/4`
BANNER_CONFIG_RE = r"^[-*/\\ ]{4,}\.> (?:app|transport|results|concurrency):\s"
# A Markdown heading or fence on a line of its own (`# worker-sigkill`, ```` ``` ````)
_MARKDOWN = ("# ", "## ", "```")


def is_document(head: bytes) -> bool:
    """Whether the head is a document rather than log output: Markdown (first non-blank line a
    heading, or a fence anywhere in it) or JSON (opens with `{` or `[` and is not JSON lines)."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return True
    first = lines[0].lstrip()
    if first.startswith(_MARKDOWN[:2]) or any(ln.startswith("```") for ln in lines):
        return True
    # a JSON document opens with a bare `{` / `[` line or `{"` / `[{` / `["`; a log line may open with
    # `[` (`[ 1921.981234] …`, `[2026-…`) and a JSON-lines log has one object per line
    if first in ("{", "[") or first.startswith(('[{', '["', "[[")):
        return True
    return first.startswith('{"') and not first.endswith("}")


def parse_lines_any(lines: Lines, *, source: str, log_formats: list[LogFormat] | None = None,
                    kind: str = "text") -> Parsed:
    """Records of `lines` in the users' formats or the layout detected on its head, whichever reads
    most of them (more lines than it leaves), else of layout unknown."""
    if log_formats:
        parsed = parse_lines(lines, source=source, log_formats=log_formats, kind=LAID_OUT)
        if parsed.coverage.parsed >= parsed.coverage.unrecognized and parsed.events.height:
            parsed.coverage.layout = "logging"
            return parsed
    layout = layouts.detect(lines.frame.head(layouts.SAMPLE_LINES * 2))
    if layout.name != layouts.UNKNOWN:  # the lines it does not read are records of layout unknown
        parsed = parse_lines(lines, source=source, log_formats=layout.compiled or None, kind=LAID_OUT)
        parsed.coverage.layout = layout.name
        parsed.coverage.notes.append(layout.describe())
        return parsed
    return parse_unknown(lines, source=source, kind=kind)


def parse_unknown(lines: Lines, *, source: str, kind: str = "text") -> Parsed:
    """Every line a record or part of one (`unknown.unknown_records`); all lines count as read."""
    over = ["stream"] if lines.had_prefix else []
    records = unknown_records(lines.frame, over)
    if "prefix_ts" in records.columns:  # a time the prefix wrote (journald, kubectl --timestamps)
        records = records.with_columns(pl.coalesce(pl.col("ts"), pl.col("prefix_ts").str.replace(
            "T", " ", literal=True).str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S%.f", strict=False)).alias("ts"))
    records = classify(records)
    events = conform(_attribute_hosts(records).with_columns(pl.lit(source).alias("source")), EVENTS)
    cov = _coverage(lines, lines.frame.clear(), source=source, kind=kind)
    if lines.had_prefix:  # the shipper's layout is known (host, stream, often time): read, not unknown
        cov.layout = PREFIXED
        cov.notes.append(f"layout: log prefixes, the text behind them in no known layout ({events.height} records)")
    elif events.select(pl.col("text").str.contains(BANNER_CONFIG_RE).any()).item():
        # Celery's own start-up banner: what was read is a worker that started (it says nothing more)
        cov.layout = BANNER
        cov.notes.append(f"layout: Celery's start-up banner, the rest in no known layout ({events.height} records)")
    else:
        cov.layout = layouts.UNKNOWN
        cov.notes.append(f"{layouts.Layout(layouts.UNKNOWN).describe()} ({events.height} records)")
    return Parsed(events.select(EVENTS.keys()), cov)


def parse(data: bytes | Path, *, source: str, log_formats: list[LogFormat] | None = None) -> Parsed:
    return parse_lines_any(read_lines(data), source=source, log_formats=log_formats)


__all__ = ["Coverage", "is_document", "parse", "parse_lines_any", "parse_unknown"]
