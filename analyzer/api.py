"""The library entry point: `open_bundle(path)` → a `Bundle` of lazily built polars frames.

Everything the CLI prints comes from here, so a notebook can reach all of it: the frames of
DESIGN.md, `.findings` and `.report()`, `.explain(finding_id)` (a finding's evidence joined back
to its rows), plots (`.plot_timeline()` …) and `.export(directory)`.

Timestamps: Celery writes local time without a zone, so by default every timestamp column is a
naive `Datetime("ms")` exactly as written.  `open_bundle(path, tz="Europe/Berlin")` says which
zone the logs were written in; the public frames then carry UTC-aware datetimes
(`Datetime("ms", "UTC")`).  Rules and the `Report` always work on the naive times as written,
so findings' `first_seen` in `report()` stay as the logs wrote them, while `.findings` and
`.explain()` are converted like the frames.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from analyzer import schema
from analyzer.advice import LogFacts, advise
from analyzer.analyses import container_hosts, fork_locks, oom
from analyzer.analyses.clocks import describe as describe_clock
from analyzer.analyses.clocks import offsets as clock_offsets
from analyzer.analyses.clocks import on_workers_clock, one_offset_per_server
from analyzer.bundle import Contents, Limits, Member, Problem, read_bundle
from analyzer.diagnosis import (
    Context,
    diagnose,
    incidents,
    merge_fingerprints,
    node_schemes,
    with_baselines,
    with_cycles,
    with_lost_tasks,
)
from analyzer.engine.errors import EngineError
from analyzer.ignored import hidden_counts
from analyzer.order import timeline
from analyzer.pipeline import settle, spill
from analyzer.pipeline.partial import Partial
from analyzer.pipeline.settle import settle_hosts
from analyzer.pipeline.stream import Reduced, Submit, piece_of, records_at, reduce_members
from analyzer.printable import printable_report
from analyzer.quotes import JSON_DOCUMENTS, quote_evidence
from analyzer.report import Report, summarize
from analyzer.schema import ATTRIBUTE_FRAMES
from analyzer.sniff import sniff
from analyzer.sources import Options, SourceResult, parse_members
from analyzer.sources.celery_log import Coverage
from analyzer.sources.log_format import compile_format

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from analyzer.engine.rule import Rule



def fixed(name: str, df: pl.DataFrame) -> pl.DataFrame:
    """`df` as public frame `name`: the columns of `schema.FRAME_SCHEMAS[name]` in order, typed.

    Analyses add columns only when their input has them (a bundle without dumps has no
    `threads.status`), so a notebook filter on any contract column must not depend on the bundle.
    A column the contract does not name is dropped: the contract is the whole public shape.
    """
    declared = schema.FRAME_SCHEMAS[name]
    return schema.conform(df, declared).select(list(declared))


# Pieces of logs whose record texts a bundle keeps after reading them again (`_record_text`)
PIECES_CACHED = 2

# Kinds whose parsers give `events` records
LOG_KINDS = frozenset({"celery_log", "json_log", "rabbitmq_log", "postgres_log", "redis_log", "kernel_log", "text"})



@dataclass(frozen=True)
class Input:
    name: str
    kind: str
    size: int


class Bundle:
    """Parsed artifacts of one incident. Frames are built on first access and cached.

    Frames: `events`, `tasks`, `threads`, `frames`, `waits`, `cycles` (polars, columns per
    `analyzer.schema`); `coverage` and `problems` (lists); `findings` (polars, from the cached
    report).  In Jupyter a bundle, its report and its findings render themselves as HTML.
    """

    def __init__(self, paths: Sequence[str | Path], *, log_formats: Sequence[str] = (),
                 limits: Limits | None = None, rules: Sequence[str | Path | Rule] | None = None,
                 tz: str | None = None, core_executable: str | Path | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        exe = None if core_executable is None else Path(core_executable)
        self.options = Options(tuple(compile_format(f) for f in log_formats), core_executable=exe)
        self._limits = limits
        self.rules: list[str | Path | Rule] = list(rules or ())
        self.tz = tz
        self._report: Report | None = None
        self._rules_used: dict[str, Rule] = {}

    def __repr__(self) -> str:
        names = ", ".join(str(p) for p in self.paths)
        return f"<Bundle {names}: {len(self.inputs)} inputs>"

    def _repr_html_(self) -> str:
        from analyzer import notebook

        return notebook.bundle_html(self)

    def _repr_markdown_(self) -> str:
        from analyzer import notebook

        return notebook.bundle_markdown(self)

    # --- reading ---------------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, *, name: str = "input.log") -> Bundle:
        """A bundle of one in-memory artifact (rule examples, notebook experiments)."""
        return cls.from_texts([(name, text)])

    @classmethod
    def from_texts(cls, texts: Sequence[tuple[str, str]]) -> Bundle:
        """A bundle of in-memory artifacts, (name, text) each."""
        b = cls([])
        b.__dict__["contents"] = Contents(members=[Member(name, data=text.encode()) for name, text in texts])
        return b

    @cached_property
    def contents(self) -> Contents:
        return read_bundle(self.paths, self._limits)

    @cached_property
    def inputs(self) -> list[Input]:
        return [Input(m.name, sniff(m.head()), m.size) for m in self.contents.members]

    @cached_property
    def _keep(self) -> tuple[list[Any] | None, pl.Expr | None]:
        """The prefilter leaves of the bundle's rules and the records they keep (None: all)."""
        from analyzer.pipeline.keep import keep_expr, leaves

        rules, _ = self._load_rules((), (), (), True)
        return leaves(rules), keep_expr(rules)

    @cached_property
    def _task_keep(self) -> tuple[list[Any] | None, pl.Expr | None]:
        """The prefilter leaves of the bundle's rules on `tasks` and the settled tasks they keep."""
        from analyzer.pipeline.keep import keep_expr, leaves

        rules, _ = self._load_rules((), (), (), True)
        return leaves(rules, "tasks"), keep_expr(rules, "tasks")

    @cached_property
    def _reduced(self) -> Reduced:
        return self.parse()

    @property
    def _parsed(self) -> list[SourceResult]:
        return self._reduced.results

    def parse(self, on_bytes: Callable[[int, int, str], None] | None = None, *,
              submit: Submit | None = None) -> Reduced:
        """Read every member now (frames are otherwise built on first use); `on_bytes(done, total,
        member)` is called as input bytes are read, for a progress bar over a large bundle;
        `submit` maps the pieces of big logs elsewhere (a Dask client's, `pipeline.stream.Submit`)."""
        if "_reduced" in self.__dict__:
            return self.__dict__["_reduced"]  # type: ignore[no-any-return]
        inputs = self.inputs
        members = self.contents.members
        total = sum(m.size for m in members)
        step = None if on_bytes is None else (lambda done, name: on_bytes(done, total, name))
        opts = replace(self.options, siblings={m.name: m for m in members})
        reduced = reduce_members([(m, inp.kind) for m, inp in zip(members, inputs, strict=True)], opts,
                                 self._keep[1], progress=step, submit=submit)
        self.__dict__["_reduced"] = reduced
        return reduced

    @cached_property
    def _nodes(self) -> settle.Nodes:
        return settle.Nodes(self._reduced.partial)

    @cached_property
    def _spans(self) -> pl.DataFrame:
        """Per input and node: first and last record time, records, and records by level."""
        return settle.host_spans(self._reduced.partial, self._nodes)

    @cached_property
    def _marks(self) -> pl.DataFrame:
        return settle.marks(self._reduced.partial, self._nodes)

    def _record_lookup(self, kind: str) -> Callable[[Member, set[int]], dict[int, str]]:
        """Texts of a log member's records at some lines, read again (they were counted, not kept)."""
        opts = replace(self.options, siblings={m.name: m for m in self.contents.members})
        return lambda member, lines: records_at(member, kind, opts, self._reduced, lines)

    def _record_text(self, source: str, line: int) -> str:
        """The text of the record at `source:line`, read again ("" when there is none); the last
        few pieces read stay cached (recoveries of one incident sit close together)."""
        kinds = {i.name: i.kind for i in self.inputs}
        member = next((m for m in self.contents.members if m.name == source), None)
        if member is None:
            return ""
        cache: dict[tuple[str, int], dict[int, str]] = self.__dict__.setdefault("_piece_texts", {})
        key = (source, piece_of(self._reduced, source, line))
        if key not in cache:
            opts = replace(self.options, siblings={m.name: m for m in self.contents.members})
            if len(cache) >= PIECES_CACHED:
                del cache[next(iter(cache))]
            cache[key] = records_at(member, kinds[source], opts, self._reduced, None, piece=key[1])
        return cache[key].get(line, "")

    @cached_property
    def _all_events(self) -> pl.DataFrame:
        """Every record of every input (the public `events`): the logs parsed again, whole."""
        members = self.contents.members
        opts = replace(self.options, siblings={m.name: m for m in members})
        logs = [(m, i.kind) for m, i in zip(members, self.inputs, strict=True) if i.kind in LOG_KINDS]
        parts = [r.frames["events"] for r in parse_members(logs, opts)
                 if "events" in r.frames and r.frames["events"].height]
        if not parts:
            return schema.empty(schema.EVENTS)
        return timeline(settle_hosts(pl.concat(parts, how="vertical_relaxed")))

    @property
    def problems(self) -> list[Problem]:
        """What could not be read: refused archive members, undecodable or truncated inputs."""
        return [*self.contents.problems, *(p for r in self._parsed for p in r.problems)]

    @property
    def coverage(self) -> list[Coverage]:
        """Per input: lines read, parsed and unrecognised (with samples); `export.coverage_frame` tabulates it."""
        return [c for r in self._parsed for c in r.coverage]

    def _frame(self, name: str) -> pl.DataFrame:
        parts = [r.frames[name] for r in self._parsed if name in r.frames and r.frames[name].height]
        if not parts:
            return schema.empty(schema.FRAME_SCHEMAS[name])
        return pl.concat(parts, how="vertical_relaxed")

    def _localize(self, df: pl.DataFrame) -> pl.DataFrame:
        """Naive timestamp columns (as written in `self.tz`) → UTC-aware; unchanged without `tz`."""
        if self.tz is None:
            return df
        cols = [name for name, dtype in df.schema.items()
                if isinstance(dtype, pl.Datetime) and dtype.time_zone is None]
        if not cols:
            return df
        return df.with_columns(
            pl.col(c).dt.replace_time_zone(self.tz, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC") for c in cols)

    # --- frames (naive, as written: what rules and the report see) -------------------------
    @cached_property
    def _kept_records(self) -> pl.DataFrame:
        """The records rules and analyses read (`pipeline.keep`) but the lines of tasks, on one timeline."""
        return timeline(settle.events(self._reduced.partial, self._nodes))

    def _resolve(self, keep: pl.Expr | None) -> spill.Resolved:
        inspect = self._frame("inspect")
        ids = inspect.get_column("task_id").drop_nulls().unique().to_list() if "task_id" in inspect.columns else []
        nodes = self._nodes
        return spill.resolve(self._reduced.store, lambda rows: settle.task_hosts(rows, nodes), self._kept_records,
                             keep, ids)

    @cached_property
    def _resolved(self) -> spill.Resolved:
        """The tasks the report reads (`spill.resolve`), their counts by state, the lines it quotes."""
        return self._resolve(self._task_keep[1])

    @cached_property
    def _events(self) -> pl.DataFrame:
        """The records rules and analyses read (`pipeline.keep`), with the lines of the tasks left
        STARTED or LOST (or listed by `celery inspect`), on one timeline."""
        records = self._resolved.records
        if records is None or records.is_empty():
            return self._kept_records
        lines = settle.events(replace(Partial.empty(), records=records), self._nodes)
        return timeline(pl.concat([self._kept_records, lines], how="vertical_relaxed"))

    @cached_property
    def _tasks(self) -> pl.DataFrame:
        """The `tasks` rows the report reads: every unfinished task, and the settled ones a rule on
        `tasks` can match, LOST or named by `celery inspect` (`spill.resolve`)."""
        return self._resolved.tasks

    @cached_property
    def _all_tasks(self) -> pl.DataFrame:
        """Every task (the public `tasks`): the spilled rows resolved again, keeping all."""
        if self._task_keep[1] is None:
            return self._tasks
        return self._resolve(None).tasks

    @cached_property
    def activity(self) -> pl.DataFrame:
        """Records per host, lifecycle kind, level and second (`analyses.activity`): what the
        timeline draws, small whatever the size of the logs. Seconds as the logs wrote them."""
        return settle.activity_frame(self._reduced.partial, self._nodes)

    @cached_property
    def _threads(self) -> pl.DataFrame:
        """Threads of every dump, made comparable across inputs.

        Each parser numbers buckets within its own input; here faulthandler threads (pthread_t
        only) first get the pid/tid of the gdb/py-spy thread with the same ident
        (`threads.fill_native_ids`), threads of a dump that names no node get the host whose
        `inspect stats` / `inspect active` lists their pid (`threads.fill_hosts`), then buckets
        are renumbered over the whole bundle at level ``exact`` (same normalised signature:
        function names *and* file basenames), so bucket 1 is the largest group of identical
        stacks in the incident, whichever dump they came from. ``exact`` rather than
        ``functions``: the signature already reduces files to basenames (tools agree on
        those), and dropping them would merge e.g. ``run@threading.py`` with an application's
        ``run@job.py``; tools that name frames differently (gdb bt vs py-spy) stay apart at
        any level.
        """
        from analyzer.analyses import threads as thread_analysis

        threads = self._frame("threads")
        if threads.is_empty() or "thread_ident" not in threads.columns:
            return threads
        dtypes = threads.schema
        threads = thread_analysis.fill_native_ids(threads)
        threads = thread_analysis.fill_hosts(threads, self._frame("workers"), self._frame("inspect"))
        threads = thread_analysis.fill_code(threads)
        if "signature" in threads.columns:
            threads = thread_analysis.bucket_threads(threads, "exact")
        return threads.select(pl.col(name).cast(dtype) for name, dtype in dtypes.items())

    @cached_property
    def _stuck(self) -> pl.DataFrame:
        from analyzer.analyses import threads as thread_analysis

        return thread_analysis.stuck_frame(self._frame("inspect"), self._threads, self._frames, self._events,
                                           self._tasks, self._frame("workers"), self._spans, self._resolved.typical)

    @cached_property
    def _frames(self) -> pl.DataFrame:
        return self._frame("frames")

    @cached_property
    def _waits(self) -> pl.DataFrame:
        from analyzer.analyses import waits

        df = waits.build(self._wait_frames())
        extra = self._frame("waits")  # rows sources produced themselves
        if extra.height:
            df = pl.concat([df, schema.conform(extra, schema.WAITS)], how="diagonal_relaxed")
        return df

    def _wait_frames(self) -> dict[str, pl.DataFrame]:
        """The frames `waits.build` reads: the parsed members' (`waits.FRAME_NAMES`) and the records
        rules see."""
        from analyzer.analyses import waits

        out: dict[str, pl.DataFrame] = {"events": self._events}
        for name in waits.FRAME_NAMES:
            parts = [r.frames[name] for r in self._parsed if name in r.frames and r.frames[name].height]
            if parts:
                out[name] = pl.concat(parts, how="diagonal_relaxed")
        return out

    @cached_property
    def _cycles(self) -> pl.DataFrame:
        from analyzer.analyses import cycles

        return cycles.from_waits(self._waits, self._frame("cycles"))

    def _built(self, name: str) -> pl.DataFrame:
        """Frame `name` as the analyses made it: a bundle without dumps may lack columns of the contract."""
        derived: dict[str, Callable[[], pl.DataFrame]] = {
            "events": lambda: self._events, "tasks": lambda: self._tasks, "threads": lambda: self._threads,
            "frames": lambda: self._frames, "waits": lambda: self._waits, "cycles": lambda: self._cycles,
            "stuck": lambda: self._stuck,
            "fork_waits": lambda: fork_locks.build(self._threads, self._frames, self._frame("workers")),
            "oom_kills": lambda: oom.build(self._frame("kernel"), self._events, self._tasks),
            "containers": lambda: container_hosts.attach(self._frame("containers"), self._events),
        }
        return derived[name]() if name in derived else self._frame(name)

    def _fixed(self, name: str) -> pl.DataFrame:
        """Frame `name` with exactly its contract's columns, naive timestamps; cached per name."""
        cache: dict[str, pl.DataFrame] = self.__dict__.setdefault("_fixed_frames", {})
        if name not in cache:
            cache[name] = fixed(name, self._built(name))
        return cache[name]

    # --- frames (public: the columns of `schema.FRAME_SCHEMAS`, whatever the bundle holds) -------
    @cached_property
    def events(self) -> pl.DataFrame:
        """Every log record of every input on one timeline (ts, then source and line)."""
        return self._localize(fixed("events", self._all_events))

    @cached_property
    def kept_events(self) -> pl.DataFrame:
        """The records rules and analyses read (`pipeline.keep`: what some rule can match, broker
        connections, node names, the lines of tasks that never settled), small beside `events`."""
        return self._localize(fixed("events", self._events))

    @cached_property
    def tasks(self) -> pl.DataFrame:
        """One row per task id: lifecycle times, state, runtime, retries."""
        return self._localize(fixed("tasks", self._all_tasks))

    @cached_property
    def threads(self) -> pl.DataFrame:
        """One row per thread per dump: `state`, innermost frame `top`, stack `signature`, `bucket`."""
        return self._localize(self._fixed("threads"))

    @cached_property
    def frames(self) -> pl.DataFrame:
        """One row per stack frame of every dumped thread (`depth` 0 = innermost)."""
        return self._fixed("frames")

    @cached_property
    def stuck(self) -> pl.DataFrame:
        """One row per task seen running and never finished: where it is stuck, since when, on what.

        `celery inspect active` entries joined to the thread dumps of their `worker_pid` and to
        their log lines, plus tasks the logs leave STARTED; see `analyses.threads.stuck_frame`.
        """
        return self._localize(self._fixed("stuck"))

    @cached_property
    def waits(self) -> pl.DataFrame:
        """Wait-for edges (waiter → resource → holder) reconstructed from dumps and server logs."""
        return self._localize(self._fixed("waits"))

    @cached_property
    def cycles(self) -> pl.DataFrame:
        """Deadlock cycles in the wait-for graph."""
        return self._localize(self._fixed("cycles"))

    # --- rules and findings -------------------------------------------------------------------
    def _load_rules(self, rule_dirs: Sequence[str | Path], select: Sequence[str], ignore: Sequence[str],
                    builtin: bool) -> tuple[list[Rule], list[EngineError]]:
        from analyzer.engine.catalogue import _selected, load_catalogue
        from analyzer.engine.rule import Rule

        default = not rule_dirs and not select and not ignore and builtin
        if default and "_default_rules" in self.__dict__:
            return self.__dict__["_default_rules"]  # type: ignore[no-any-return]
        dirs = [*(r for r in self.rules if not isinstance(r, Rule)), *rule_dirs]
        rules, errors = load_catalogue(dirs, select=select, ignore=ignore, builtin=builtin)
        extra = {r.id: r for r in self.rules if isinstance(r, Rule) and _selected(r, select, ignore)}
        if extra:
            rules = sorted([*(r for r in rules if r.id not in extra), *extra.values()], key=lambda r: r.id)
        if default:
            self.__dict__["_default_rules"] = (rules, errors)
        return rules, errors

    def report(self, *, rule_dirs: Sequence[str | Path] = (), select: Sequence[str] = (),
               ignore: Sequence[str] = (), builtin_rules: bool = True) -> Report:
        """Run the rules over the frames, rank the findings, and gather coverage.

        Uses the shipped rules, the bundle's `rules` and `rule_dirs`; `select` / `ignore` take rule
        ids, id prefixes or categories.  Called without arguments, the report is computed once and
        cached (`.findings` and `.explain()` use that one).
        """
        from analyzer.engine.evaluate import evaluate
        from analyzer.pipeline.keep import covers

        default = not rule_dirs and not select and not ignore and builtin_rules
        if default and self._report is not None:
            return self._report
        rules, errors = self._load_rules(rule_dirs, select, ignore, builtin_rules)
        eval_errors: list[EngineError] = []
        frames = self.frame_map()
        if not covers(self._keep[0], rules):  # rules the kept records may not serve: all records
            frames["events"] = fixed("events", self._all_events)
        if not covers(self._task_keep[0], rules, "tasks"):  # likewise for tasks
            frames["tasks"] = fixed("tasks", self._all_tasks)
        chosen = {r.id for r in rules}
        unchosen = [] if default else [r for r in self._load_rules((), (), (), True)[0] if r.id not in chosen]
        findings = evaluate(rules, frames, errors=eval_errors, claim_only=unchosen)
        quote_evidence(findings, {r.id: r.on for r in rules}, self.contents.members, self._events,
                       documents=[i.name for i in self.inputs if i.kind in JSON_DOCUMENTS],
                       records={i.name: self._record_lookup(i.kind) for i in self.inputs if i.kind in LOG_KINDS})
        findings = with_lost_tasks(with_cycles(findings, self._cycles), self._tasks, self._events,
                                   self._frame("inspect"))
        context = Context.of(None, self._threads, self._frames, self._frame("queues"), spans=self._spans,
                             marks=self._marks, text_of=self._record_text)
        context.schemes = node_schemes(self._events)
        found_clocks = clock_offsets(self._events)
        shifts = one_offset_per_server(found_clocks)
        clocks = [describe_clock(r) + (f"; {r['reference']}'s findings are timed on the workers' clock"
                                       if r["reference"] in shifts else "; workers disagree, times left as written")
                  for r in found_clocks.to_dicts()]
        findings = with_baselines(merge_fingerprints(on_workers_clock(findings, shifts)), context)
        ordered, roots = diagnose(findings, context)
        found, roots = incidents(ordered, roots, context)
        facts = LogFacts.of(self._events) if roots else None  # once: every root cause asks the same of the logs
        kinds = {i.name: i.kind for i in self.inputs}
        report = printable_report(Report(  # control characters shown, never obeyed, in every output
            inputs=self.coverage,
            kinds=kinds,
            problems=self.problems,
            findings=ordered,
            root_causes=roots,
            summary=summarize(self._spans, self._tasks, self._threads, self._resolved.states),
            rule_errors=[str(e) for e in (*errors, *eval_errors)],
            rules=list(rules),
            advice={f.id: advise(f, kinds.values(), self._cycles, facts) for f in ordered if f.id in roots},
            incidents=found,
            clocks=clocks,
        ))
        if default:
            self._report = report
            self._rules_used = {r.id: r for r in rules}
        if ignore:  # a verdict says what `ignore` hid (the frames are cached: only the rules run again)
            full = self.report(rule_dirs=rule_dirs, select=select, builtin_rules=builtin_rules)
            report = replace(report, ignored=hidden_counts(full, ignore))
        return report

    @property
    def findings(self) -> pl.DataFrame:
        """Findings of the cached `report()` as a polars frame, root causes first (`root_cause`)."""
        from analyzer.export import findings_frame

        return self._localize(findings_frame(self.report()))

    def explain(self, finding_id: str, *, full: bool = False) -> pl.DataFrame:
        """The rows behind a finding of the cached report: its evidence joined back to its frame.

        For rules on `events` the columns are `source, line, ts, level, host, task_id, message,
        text`; for other frames, the whole row.  `full=True` returns every row the rule matched
        in the finding's group, not only the (bounded) evidence.  Unknown id → `KeyError`.
        """
        from analyzer.engine.evaluate import EVIDENCE_LINE, matches

        report = self.report()
        finding = report.finding(finding_id)
        rule = self._rules_used.get(finding.rule)
        on = rule.on if rule is not None else "events"
        frame = self.frame_map().get(on, self._events)
        line_col = EVIDENCE_LINE.get(on, "line")
        keys = pl.DataFrame({"source": [e.source for e in finding.evidence],
                             line_col: [e.line for e in finding.evidence]},
                            schema={"source": pl.String, line_col: pl.Int64})
        if "source" not in frame.columns or line_col not in frame.columns:
            return keys
        rows = keys.join(frame, on=["source", line_col], how="left", maintain_order="left")
        if full and rule is not None and frame.height:
            hits = matches(rule, frame)
            if rule.group_by and rows.height:
                first = rows.row(0, named=True)
                for col in rule.group_by:
                    value = first.get(col)
                    hits = hits.filter(pl.col(col).is_null() if value is None else pl.col(col) == value)
            rows = hits
        if on == "events":
            cols = ["source", "line", "ts", "level", "host", "task_id", "message", "text"]
            rows = rows.select([c for c in cols if c in rows.columns])
        return self._localize(rows)

    # --- plots and export --------------------------------------------------------------------
    def plot_timeline(self) -> Figure:
        """Events per host and kind over time, with findings and the root cause marked."""
        from analyzer import plots

        return plots.timeline(self)

    def plot_runtimes(self) -> Figure:
        """Distribution of task runtimes per task name."""
        from analyzer import plots

        return plots.runtimes(self)

    def plot_gantt(self, *, limit: int = 30) -> Figure:
        """Gantt of stuck and longest tasks: received → started → finished (or end of the logs)."""
        from analyzer import plots

        return plots.gantt(self, limit=limit)

    def plot_reconnects(self) -> Figure:
        """Broker connection attempts, losses and successes over time."""
        from analyzer import plots

        return plots.reconnects(self)

    def plot_thread_states(self) -> Figure:
        """Thread states per thread dump."""
        from analyzer import plots

        return plots.thread_states(self)

    def save_plots(self, directory: str | Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
        """Write every plot that has data to `directory` in each format, byte-identically across runs."""
        from analyzer import plots

        return plots.save_plots(self, directory, formats)

    def export(self, directory: str | Path, to: str = "parquet", *, redact: bool = True) -> list[Path]:
        """Write every frame (and findings, coverage) as parquet, csv or ndjson files, secrets
        redacted as in reports unless `redact=False`."""
        from analyzer import export

        return export.export(self, directory, to=to, redact=redact)

    def public_frames(self) -> dict[str, pl.DataFrame]:
        """Every frame of `schema.FRAME_SCHEMAS` as a notebook sees it (`tz` applied), in that order.

        The attribute frames (`events` … `stuck`) as their attributes give them (`events`: every
        record); the others (`fork_waits` and the diagnostic frames) from `frame_map()`, localized
        the same way.
        """
        return {name: getattr(self, name) if name in ATTRIBUTE_FRAMES else self._localize(frame)
                for name, frame in self.frame_map().items()}

    def frame_map(self) -> dict[str, pl.DataFrame]:
        """The frames rules run on, timestamps naive as written (whatever `tz` says).

        Besides the derived frames it holds the diagnostic ones as their sources made them:
        `inspect`, `workers` (`celery inspect`), `redis_info` (`redis-cli INFO`), `limits`
        (`ulimit -a`), `queues` (`rabbitmqctl list_queues`, a row per queue per listing with
        its growth since the previous listing, `messages_delta`) and `containers` (`kubectl
        describe pod`, `kubectl get pod -o json`, `docker inspect`: a row per container state,
        times in UTC) and `kernel` (the OOM kills and segfaults of kernel logs); `oom_kills` joins
        those kills with the pool children billiard saw die; `schema.FRAME_SCHEMAS` has their columns.
        """
        return {name: self._fixed(name) for name in schema.FRAME_SCHEMAS}


# `tail -n +1 worker.log dmesg.txt` heads each file with `==> NAME <==` (GNU coreutils tail.c / head.c
# write_header): an example holding such headers is that many files, e.g. a kernel log beside a worker log
FILE_HEADER = re.compile(r"^==> (.+) <==$", re.M)


def example_files(text: str) -> list[tuple[str, str]]:
    """The files of a rule example's text: one named `example`, or those its `==> NAME <==` headers open."""
    heads = list(FILE_HEADER.finditer(text))
    if not heads or text[:heads[0].start()].strip():
        return [("example", text.strip("\n") + "\n")]
    ends = [m.start() for m in heads[1:]] + [len(text)]
    return [(m.group(1), text[m.end():end].strip("\n") + "\n") for m, end in zip(heads, ends, strict=True)]


def parse_example(on: str, text: str) -> pl.DataFrame:
    """The frame `on` of a rule example's text, built by the same parsers a bundle goes through
    (`events`: every record, whatever the shipped rules keep)."""
    bundle = Bundle.from_texts(example_files(text))
    if on == "events":
        return bundle.events
    frames = bundle.frame_map()
    if on not in frames:
        raise KeyError(f"no frame {on!r} can be built from example text")
    return frames[on]


def open_bundle(path: str | Path | Sequence[str | Path], *, rules: Sequence[str | Path | Rule] | None = None,
                tz: str | None = None, log_formats: Sequence[str] = (), limits: Limits | None = None,
                core_executable: str | Path | None = None) -> Bundle:
    """Open a bundle: a directory, an archive, a log file, or several of them.

    `rules`: extra rule directories (or `Rule` objects) used by `.report()` and `.findings`.
    `tz`: the IANA zone the logs were written in (Celery logs local time without a zone); when
    given, timestamp columns of the frames become UTC-aware datetimes.  Default: naive, as written.
    `log_formats`: %-style logging formats of the workers, for custom log layouts.
    `core_executable`: the program that dumped the bundle's core files, when it is not in the bundle
    (a bundle's own `core.json` may only name a file inside the bundle).
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    return Bundle(paths, log_formats=log_formats, limits=limits, rules=rules, tz=tz,
                  core_executable=core_executable)


def _install_reprs() -> None:
    """Give `Report` and `Finding` their notebook reprs (defined in `analyzer.notebook`)."""
    from analyzer import notebook
    from analyzer.findings import Finding

    pairs: list[tuple[Any, Any, Any]] = [(Report, notebook.report_html, notebook.report_markdown),
                                         (Finding, notebook.finding_html, notebook.finding_markdown)]
    for cls, html, md in pairs:
        if "_repr_html_" not in vars(cls):  # the class may define its own one day
            cls._repr_html_ = html
            cls._repr_markdown_ = md


_install_reprs()
