"""The library entry point: `open_bundle(path)` → a `Bundle` of lazily built polars frames.

Everything the CLI prints comes from here, so a notebook can reach all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import polars as pl

from analyzer import schema
from analyzer.analyses import tasks as task_analysis
from analyzer.bundle import Contents, Limits, Member, Problem, read_bundle
from analyzer.diagnosis import diagnose
from analyzer.engine.errors import EngineError
from analyzer.report import Report, summarize
from analyzer.sniff import sniff
from analyzer.sources import Options, SourceResult, parse_member
from analyzer.sources.celery_log import Coverage
from analyzer.sources.log_format import compile_format


def _folder(source: str) -> str:
    name = source.rsplit(":", 1)[-1]
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _stem(source: str) -> str:
    return Path(source.rsplit(":", 1)[-1]).name.split(".")[0] or source


def settle_hosts(events: pl.DataFrame) -> pl.DataFrame:
    """Give records whose file never named its node one: the only node named in the same folder
    (a worker's log file beside its stdout banner), else the file's stem."""
    if events.is_empty() or events.get_column("host").null_count() == 0:
        return events
    named = (events.filter(pl.col("host").is_not_null())
             .select(pl.col("source").map_elements(_folder, return_dtype=pl.String).alias("_folder"), "host")
             .unique().group_by("_folder").agg(pl.col("host").sort()).filter(pl.col("host").list.len() == 1)
             .select("_folder", pl.col("host").list.first().alias("_folder_host")))
    sources = events.select("source").unique().with_columns(
        pl.col("source").map_elements(_folder, return_dtype=pl.String).alias("_folder"),
        pl.col("source").map_elements(_stem, return_dtype=pl.String).alias("_stem"),
    ).join(named, on="_folder", how="left")
    return (events.join(sources, on="source", how="left", maintain_order="left")
            .with_columns(pl.coalesce("host", "_folder_host", "_stem").alias("host"))
            .drop("_folder", "_stem", "_folder_host"))


@dataclass(frozen=True)
class Input:
    name: str
    kind: str
    size: int


class Bundle:
    """Parsed artifacts of one incident. Frames are built on first access and cached."""

    def __init__(self, paths: Sequence[str | Path], *, log_formats: Sequence[str] = (),
                 limits: Limits | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.options = Options(tuple(compile_format(f) for f in log_formats))
        self._limits = limits

    def __repr__(self) -> str:
        names = ", ".join(str(p) for p in self.paths)
        return f"<Bundle {names}: {len(self.inputs)} inputs>"

    # --- reading ---------------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, *, name: str = "input.log") -> Bundle:
        """A bundle of one in-memory artifact (rule examples, notebook experiments)."""
        b = cls([])
        b.__dict__["contents"] = Contents(members=[Member(name, data=text.encode())])
        return b

    @cached_property
    def contents(self) -> Contents:
        return read_bundle(self.paths, self._limits)

    @cached_property
    def inputs(self) -> list[Input]:
        return [Input(m.name, sniff(m.head()), m.size) for m in self.contents.members]

    @cached_property
    def _parsed(self) -> list[SourceResult]:
        return [parse_member(m, i.kind, self.options) for m, i in zip(self.contents.members, self.inputs,
                                                                           strict=True)]

    @property
    def problems(self) -> list[Problem]:
        return [*self.contents.problems, *(p for r in self._parsed for p in r.problems)]

    @property
    def coverage(self) -> list[Coverage]:
        return [c for r in self._parsed for c in r.coverage]

    def _frame(self, name: str) -> pl.DataFrame:
        parts = [r.frames[name] for r in self._parsed if name in r.frames and r.frames[name].height]
        if not parts:
            return schema.empty(schema.FRAME_SCHEMAS[name])
        return pl.concat(parts, how="vertical_relaxed")

    # --- frames ------------------------------------------------------------------------------
    @cached_property
    def events(self) -> pl.DataFrame:
        """Every log record of every input on one timeline (ts, then source and line)."""
        return settle_hosts(self._frame("events")).sort("ts", "source", "line", nulls_last=True)

    @cached_property
    def tasks(self) -> pl.DataFrame:
        return task_analysis.build(self.events)

    @cached_property
    def threads(self) -> pl.DataFrame:
        return self._frame("threads")

    @cached_property
    def frames(self) -> pl.DataFrame:
        return self._frame("frames")

    @cached_property
    def waits(self) -> pl.DataFrame:
        return self._frame("waits")

    @cached_property
    def cycles(self) -> pl.DataFrame:
        return self._frame("cycles")

    def report(self, *, rule_dirs: Sequence[str | Path] = (), select: Sequence[str] = (),
               ignore: Sequence[str] = (), builtin_rules: bool = True) -> Report:
        """Run the rules over the frames, rank the findings, and gather coverage."""
        from analyzer.engine.catalogue import load_catalogue
        from analyzer.engine.evaluate import evaluate

        rules, errors = load_catalogue(rule_dirs, select=select, ignore=ignore, builtin=builtin_rules)
        eval_errors: list[EngineError] = []
        findings = evaluate(rules, self.frame_map(), errors=eval_errors)
        ordered, roots = diagnose(findings)
        return Report(
            inputs=self.coverage,
            kinds={i.name: i.kind for i in self.inputs},
            problems=self.problems,
            findings=ordered,
            root_causes=roots,
            summary=summarize(self),
            rule_errors=[str(e) for e in (*errors, *eval_errors)],
        )

    def frame_map(self) -> dict[str, pl.DataFrame]:
        return {"events": self.events, "tasks": self.tasks, "threads": self.threads, "frames": self.frames,
                "waits": self.waits, "cycles": self.cycles}


def open_bundle(path: str | Path | Sequence[str | Path], *, log_formats: Sequence[str] = (),
                limits: Limits | None = None) -> Bundle:
    """Open a bundle: a directory, an archive, a log file, or several of them."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    return Bundle(paths, log_formats=log_formats, limits=limits)
