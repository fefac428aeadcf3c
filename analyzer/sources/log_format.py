"""A user's logging format string (`%(asctime)s %(levelname)s …`) turned into a line regex.

Users pass the same `worker_log_format` / `worker_task_log_format` they put in their Celery
config (`--log-format`, repeatable). Each `%(field)…s` becomes a named group; the last field
(normally `message`) takes the rest of the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

# `%(levelname)-8s`, `%(lineno)d`, `%(relativeCreated)6.0f`
FIELD_RE = re.compile(r"%\((\w+)\)([-#0 +]*\d*(?:\.\d+)?)([sdfrxXeEgGi])")

# What each field can look like. Unknown fields match a run of non-space characters.
FIELD_PATTERNS: dict[str, str] = {
    # logging's default `2026-11-28 19:05:09,375`; ISO 8601 with `T`, fraction and zone (a datefmt)
    "asctime": r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?(?:Z|[+-]\d\d:?\d\d)?",
    "levelname": r"DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL|NOTSET",
    "levelno": r"\d+",
    "processName": r"[\w.-]+",
    "process": r"\d+",
    "threadName": r"[\w.() -]+?",
    "thread": r"\d+",
    "name": r"[\w.-]+",
    "module": r"[\w.-]+",
    "funcName": r"[\w<>.-]+",
    "lineno": r"\d+",
    "filename": r"[\w.-]+",
    "pathname": r"\S+",
    "task_name": r"[\w.:<>-]+|\?\?\?",
    "task_id": r"[0-9a-fA-F-]{36}|\?\?\?|[\w-]+",
    "hostname": r"\S+",
    "message": r".*",
}

ALIASES = {"levelname": "levelname", "processName": "processName"}


class LogFormatError(ValueError):
    pass


@dataclass(frozen=True)
class LogFormat:
    """A compiled format: `regex` has one named group per field, in `groups`."""

    text: str
    regex: str
    groups: tuple[str, ...]
    # The regex up to the message, for formats that end with `%(message)s`: a trailing `(.*)$`
    # group costs more than the rest of the match (PERF-NOTES), and the message is then a slice.
    head: str | None = None

    def timestamp_expr(self, asctime: pl.Expr | None, msecs: pl.Expr | None = None) -> pl.Expr:
        """`asctime` as a datetime; with a `datefmt` that drops the milliseconds, formats put them back
        with `%(msecs)03d` (`%(asctime)s.%(msecs)03d`): they are added when `asctime` has none."""
        if asctime is None:
            return pl.lit(None, dtype=pl.Datetime("ms"))
        # a zone is dropped: times are kept as written (wall time), like Celery's own
        norm = (asctime.str.slice(0, 10) + asctime.str.slice(10).str.replace(r"(?:Z|[+-]\d\d:?\d\d)$", "")
                .str.replace("T", " ", literal=True).str.replace(",", ".", literal=True))
        ts = pl.coalesce(
            norm.str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S%.f", strict=False),
            norm.str.strptime(pl.Datetime("ms"), "%Y-%m-%d %H:%M:%S", strict=False),
        )
        if msecs is None:
            return ts
        ms = msecs.cast(pl.Float64, strict=False).cast(pl.Int64, strict=False).fill_null(0)
        return pl.when(ts.dt.millisecond() == 0).then(ts + pl.duration(milliseconds=ms)).otherwise(ts)


def compile_format(fmt: str, *, space_runs: bool = False) -> LogFormat:
    """Compile a `%`-style logging format into an anchored regex with named groups.

    `space_runs`: a space of the format matches a run of spaces (a format learned from lines whose
    fields were padded, `analyzer.sources.layouts`); a user's format is matched as written."""
    fields = list(FIELD_RE.finditer(fmt))
    if not fields:
        raise LogFormatError(f"no %(field)s placeholder in log format {fmt!r}")
    parts: list[str] = ["^"]
    groups: list[str] = []
    pos = 0
    def literal(text: str) -> str:
        text = text.replace("%%", "%")
        return re.escape(text).replace(r"\ ", " +") if space_runs else re.escape(text)

    for i, m in enumerate(fields):
        parts.append(literal(fmt[pos:m.start()]))
        name, spec = m.group(1), m.group(2)
        last = i == len(fields) - 1
        pat = FIELD_PATTERNS.get(name, r"\S+")
        if last and name != "message":
            pat = r".*"
        if name in groups:  # a field used twice: the second occurrence just has to match
            parts.append(f"(?:{pat})")
        else:
            pad = r"\s*" if spec.strip("-#0+. ") else ""
            parts.append(f"{pad}(?P<{name}>{pat}){pad}" if pad else f"(?P<{name}>{pat})")
            groups.append(name)
        pos = m.end()
    parts.append(literal(fmt[pos:]))
    regex = "".join(parts)
    head = None
    if "message" in groups and fields[-1].group(1) == "message":
        regex += "$"
        if not fmt[pos:] and parts[-2] == "(?P<message>.*)":  # the message ends the line
            head = "^(?P<_head>" + "".join(parts[1:-2]) + ")"
    try:
        re.compile(regex)
    except re.error as exc:  # pragma: no cover - escaping makes this unreachable in practice
        raise LogFormatError(f"log format {fmt!r} gives an invalid regex: {exc}") from exc
    return LogFormat(fmt, regex, tuple(groups), head)
