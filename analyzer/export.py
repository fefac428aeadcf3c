"""Write a bundle's frames to files that DuckDB, pandas, Excel or polars open directly.

`export(bundle, directory, to="parquet")` writes one file per public frame — every frame of
`analyzer.schema.FRAME_SCHEMAS` (`events`, `tasks`, `threads`, `frames`, `waits`, `cycles`,
`stuck`, `fork_waits` and the diagnostic `inspect`, `workers`, `redis_info`, `limits`,
`queues`, `containers`, `kernel`, `oom_kills`) — plus `findings` and `coverage` (`<name>.parquet`,
`.csv` or `.ndjson`).  Parquet and NDJSON keep list columns and timestamps as they are; CSV cannot
hold lists, so their items are joined with `;`.

Secrets are redacted by default, in the API (`export(...)`, `Bundle.export`) as on the command
line: every string cell of every frame, with the placeholders `analyze` shows for the same bundle
(`analyzer.redact`: the report's secrets are learnt first, so `***1***` is the same secret in
both; secrets only the frames hold are numbered after).  `redact=False` / `--no-redact` keeps them.

On the command line: `celery-postmortem export PATH DIR --to csv` (`analyzer.cli.export_command`), with
`analyze`'s handling of bad input: a usage error is one line on stderr and exit 2, members that
could not be read are listed on stderr as the terminal report lists them, and rule errors or an
inconclusive bundle exit 2 once the files are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from analyzer.schema import FRAME_SCHEMAS

if TYPE_CHECKING:
    from analyzer.api import Bundle
    from analyzer.report import Report

FORMATS = ("parquet", "csv", "ndjson")
FRAMES = (*FRAME_SCHEMAS, "findings", "coverage")
LIST_SEPARATOR = ";"

FINDINGS_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "root_cause": pl.Boolean(),
    "rule": pl.String(),
    "category": pl.String(),
    "severity": pl.String(),
    "confidence": pl.Float64(),
    "title": pl.String(),
    "summary": pl.String(),
    "count": pl.Int64(),
    "first_seen": pl.Datetime("ms"),
    "last_seen": pl.Datetime("ms"),
    "hosts": pl.List(pl.String()),
    "tasks": pl.List(pl.String()),
    "evidence_total": pl.Int64(),
    "explains": pl.List(pl.String()),
    "explained_by": pl.List(pl.String()),
    "remediation": pl.List(pl.String()),
}

COVERAGE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "kind": pl.String(),
    "lines": pl.Int64(),
    "parsed": pl.Int64(),
    "unrecognized": pl.Int64(),
    "invalid_utf8": pl.Int64(),
}


def findings_frame(report: Report) -> pl.DataFrame:
    """One row per finding in report order; `first_seen`/`last_seen` as naive datetimes."""
    roots = set(report.root_causes)
    rows = [{
        "id": f.id, "root_cause": f.id in roots, "rule": f.rule, "category": f.category, "severity": f.severity,
        "confidence": float(f.confidence), "title": f.title, "summary": f.summary, "count": f.count,
        "first_seen": f.first_seen, "last_seen": f.last_seen, "hosts": list(f.hosts), "tasks": list(f.tasks),
        "evidence_total": f.evidence_total, "explains": list(f.explains), "explained_by": list(f.explained_by),
        "remediation": list(f.remediation),
    } for f in report.findings]
    strings = {**FINDINGS_SCHEMA, "first_seen": pl.String(), "last_seen": pl.String()}
    df = pl.DataFrame(rows, schema=strings)
    return df.with_columns(pl.col("first_seen", "last_seen").str.to_datetime(time_unit="ms", strict=False))


def coverage_frame(bundle: Bundle) -> pl.DataFrame:
    """One row per parsed input: lines read, parsed and unrecognised."""
    rows = [{"source": c.source, "kind": c.kind, "lines": c.lines, "parsed": c.parsed,
             "unrecognized": c.unrecognized, "invalid_utf8": c.invalid_utf8} for c in bundle.coverage]
    return pl.DataFrame(rows, schema=COVERAGE_SCHEMA)


def frames_of(bundle: Bundle) -> dict[str, pl.DataFrame]:
    """Every exportable frame of `bundle`, by name (the order of `FRAMES`)."""
    return {**bundle.public_frames(), "findings": bundle.findings, "coverage": coverage_frame(bundle)}


def flatten_lists(df: pl.DataFrame, separator: str = LIST_SEPARATOR) -> pl.DataFrame:
    """List columns → strings of their items joined with `separator` (for CSV)."""
    lists = [name for name, dtype in df.schema.items() if isinstance(dtype, pl.List)]
    if not lists:
        return df
    return df.with_columns(pl.col(c).list.eval(pl.element().cast(pl.String)).list.join(separator) for c in lists)


def _csv_ready(df: pl.DataFrame) -> pl.DataFrame:
    df = flatten_lists(df)
    nested = [name for name, dtype in df.schema.items() if dtype.is_nested() or dtype == pl.Null]
    return df.with_columns(pl.col(c).cast(pl.String) for c in nested) if nested else df


def redacted_frames(bundle: Bundle) -> dict[str, pl.DataFrame]:
    """`frames_of(bundle)` with secrets replaced by the placeholders of the redacted report."""
    from analyzer.redact import Redactor, redact_frames, scan_report

    redactor = Redactor()
    scan_report(bundle.report(), redactor)
    return redact_frames(frames_of(bundle), redactor)


def export(bundle: Bundle, directory: str | Path, to: str = "parquet",
           frames: Sequence[str] = FRAMES, *, redact: bool = True) -> list[Path]:
    """Write each of `frames` of `bundle` to `directory/<name>.<to>`; return the paths written.

    `redact` (the default, as for `analyze`) replaces secrets in every string cell of every frame
    written; a secret only an unwritten frame holds may still advance the placeholder numbering.
    """
    _check_request(to, frames)
    return write_frames(frames_to_write(bundle, redact), directory, to, frames)


def frames_to_write(bundle: Bundle, redact: bool) -> dict[str, pl.DataFrame]:
    return redacted_frames(bundle) if redact else frames_of(bundle)


def _check_request(to: str, frames: Sequence[str]) -> None:
    if to not in FORMATS:
        raise ValueError(f"unknown export format {to!r}; choose one of {', '.join(FORMATS)}")
    unknown = [f for f in frames if f not in FRAMES]
    if unknown:
        raise ValueError(f"unknown frame(s) {', '.join(unknown)}; choose from {', '.join(FRAMES)}")


def write_frames(data: dict[str, pl.DataFrame], directory: str | Path, to: str,
                 frames: Sequence[str] = FRAMES) -> list[Path]:
    """Write `data[name]` for each of `frames` to `directory/<name>.<to>` (created if needed): the
    only I/O of an export, apart from reading the bundle."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in frames:
        df, path = data[name], out / f"{name}.{to}"
        if to == "parquet":
            df.write_parquet(path)
        elif to == "csv":
            _csv_ready(df).write_csv(path)
        else:
            df.write_ndjson(path)
        written.append(path)
    return written


def check_zone(tz: str) -> None:
    """Refuse a zone polars does not know before any work (it would fail at the first timestamp
    column, after the bundle was read)."""
    from datetime import datetime

    try:
        pl.Series([datetime(2000, 1, 1)]).dt.replace_time_zone(tz)
    except pl.exceptions.PolarsError:
        raise ValueError(f"unknown time zone {tz!r}; give an IANA name such as Europe/Berlin or UTC") from None
