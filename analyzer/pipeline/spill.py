"""Per-task state kept out of the merged partial, so memory does not grow with the tasks of the logs.

Every piece leaves a row per task it saw (`Partial.tasks`) and the lines of the tasks it did not
settle (`FOR_TASK` records): both grow with the input (a 2 GB log holds millions of tasks). They
are taken out of each piece's partial as it is mapped (`TaskStore.take`) and stored hash-partitioned
by task id into buckets, in memory for a small bundle and on disk (parquet files in a temporary
directory, removed with the store) for a big one. After the merge, `resolve` merges one bucket at a
time (a task's rows are all in its bucket, and `tasks.merge` is associative, so the result is the
one of the whole) and keeps what the report reads:

- every task its records leave unsettled (no `_last_settling`): the marks of `finish_marked`
  (outside-body failures, lost tasks) need all of them at once;
- of the settled ones, the rows a rule on `tasks` can match (`keep`), LOST ones (`with_lost_tasks`)
  and those `celery inspect` names (`stuck_frame`);
- the count of every task by state (the report's summary);
- the spilled lines of the tasks left STARTED or LOST, or named by `celery inspect`: what
  `stuck_frame` and `with_lost_tasks` quote. A task left RECEIVED has no line anything reads.

Of a task's lines a piece spills two only (`last_lines`): its last record, which `stuck_frame`
quotes, and its last own line (no lifecycle kind), which `with_lost_tasks` quotes; the last of the
pieces' is the last of the whole. A bundle with `celery inspect` output spills every line: the
stuck rows of the tasks it lists count them (`all_lines`).

`CPM_SPILL` (`disk` or `memory`) and `CPM_TASK_BUCKETS` override the choice, so tests compare them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from analyzer.analyses import tasks as task_analysis
from analyzer.analyses import threads
from analyzer.order import timeline
from analyzer.pipeline.partial import FOR_TASK, RECORDS, Partial, drop_settled
from analyzer.schema import EVENTS, TASKS, empty

SPILL_ENV = "CPM_SPILL"
BUCKETS_ENV = "CPM_TASK_BUCKETS"
DISK_BYTES = 64 << 20  # bundles from this size on spill to disk
BUCKET_BYTES = 32 << 20  # input bytes per bucket: a bucket's tasks stay a small fraction of memory
MAX_BUCKETS = 1024
FLUSH_ROWS = 150_000  # task rows held before a spill (about 40 MB; 2 or 3 pieces of the benchmark log)
UNFINISHED_QUOTED = ("STARTED", "LOST")  # the states whose tasks' lines are read after the merge
HostFill = Callable[[pl.DataFrame], pl.DataFrame]  # task partial rows with their node (`settle.task_hosts`)


class TaskStore:
    """Spilled per-task rows (`t`) and records (`r`), by bucket, in memory or in parquet files."""

    def __init__(self, total_bytes: int, all_lines: bool = True) -> None:
        self.all_lines = all_lines
        raw = os.environ.get(BUCKETS_ENV, "")
        self.buckets = (int(raw) if raw.isdigit() and int(raw) > 0
                        else max(1, min(MAX_BUCKETS, total_bytes // BUCKET_BYTES)))
        mode = os.environ.get(SPILL_ENV, "")
        disk = mode == "disk" or (mode != "memory" and total_bytes >= DISK_BYTES)
        self._dir: Path | None = Path(tempfile.mkdtemp(prefix="cpm-spill-")) if disk else None
        if self._dir is not None:
            weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._mem: dict[tuple[str, int], list[pl.DataFrame]] = {}
        self._files: dict[tuple[str, int], list[Path]] = {}
        self._seq = 0
        self._log: list[tuple[str, int]] = []  # every put, in order: `rollback` undoes the last ones
        # pieces' rows held until FLUSH_ROWS, then merged and spilled as one: a task a few pieces hold
        # is one row, its lines dropped once settled, and a bucket is a few files, not one per piece
        self._tasks: list[pl.DataFrame] = []
        self._lines: list[pl.DataFrame] = []
        self._held = 0

    @property
    def on_disk(self) -> bool:
        return self._dir is not None

    def take(self, part: Partial) -> Partial:
        """`part` without its per-task rows and `FOR_TASK` records, which the store keeps."""
        records = part.records
        if FOR_TASK in records.columns and records.height:
            for_task = records.get_column(FOR_TASK)
            lines = records.filter(for_task)
            self._lines.append(compact(lines if self.all_lines else last_lines(lines)))
            records = records.filter(~for_task)
        self._tasks.append(part.tasks)
        self._held += part.tasks.height
        if self._held >= FLUSH_ROWS:
            self.flush()
        return replace(part, records=compact(records), tasks=part.tasks.clear(), names=compact(part.names),
                       marks=compact(part.marks))

    def _put(self, kind: str, df: pl.DataFrame) -> None:
        if df.is_empty():
            return
        if self.buckets == 1:
            parts = {0: df}
        else:
            split = df.with_columns((pl.col("task_id").hash() % self.buckets).cast(pl.Int64).alias("_bucket"))
            parts = {int(k[0]): v for k, v in split.partition_by("_bucket", as_dict=True, include_key=False).items()}
        for b, frame in parts.items():
            self._log.append((kind, b))
            if self._dir is None:
                self._mem.setdefault((kind, b), []).append(frame)
                continue
            path = self._dir / f"{kind}{b}-{self._seq}.parquet"
            self._seq += 1
            # parquet (zstd): a quarter of the size of lz4 IPC and faster both ways (measured on a piece)
            frame.write_parquet(path, statistics=False)
            self._files.setdefault((kind, b), []).append(path)

    def flush(self) -> None:
        """Spill the rows held (`resolve` flushes first)."""
        if not self._tasks:
            return
        merged = task_analysis.merge(self._tasks)
        lines = pl.concat(self._lines, how="vertical_relaxed") if self._lines else None
        self._tasks, self._lines, self._held = [], [], 0
        self._put("t", merged)
        if lines is not None:
            lines = drop_settled(lines, merged)
            self._put("r", lines if self.all_lines else last_lines(lines))

    def mark(self) -> int:
        self.flush()
        return len(self._log)

    def rollback(self, mark: int) -> None:
        """Forget what was taken since `mark` (a log whose pieces failed is parsed again whole)."""
        self._tasks, self._lines, self._held = [], [], 0
        while len(self._log) > mark:
            key = self._log.pop()
            if self._dir is None:
                self._mem[key].pop()
            else:
                self._files[key].pop().unlink(missing_ok=True)

    def _get(self, kind: str, b: int) -> list[pl.DataFrame]:
        if self._dir is None:
            return list(self._mem.get((kind, b), ()))
        return [pl.read_parquet(p) for p in self._files.get((kind, b), ())]

    def task_rows(self, b: int) -> pl.DataFrame:
        """The merged task partial of bucket `b` (`tasks.merge` of every piece's rows there)."""
        self.flush()
        return task_analysis.merge(self._get("t", b))

    def records(self, ids: pl.Series) -> pl.DataFrame:
        """The spilled records of the tasks `ids`, in file order (`source`, `line`)."""
        self.flush()
        ids = ids.unique()
        of = (ids.hash() % self.buckets).cast(pl.Int64) if self.buckets > 1 else pl.zeros(ids.len(), pl.Int64,
                                                                                          eager=True)
        found: list[pl.DataFrame] = []
        for b in range(self.buckets):
            mine = ids.filter(of == b)
            if mine.is_empty():
                continue
            wanted = pl.col("task_id").is_in(mine.implode())
            if self._dir is None:
                found.extend(df.filter(wanted) for df in self._get("r", b))
            else:  # a file at a time, filtered as it is read
                found.extend(compact(pl.scan_parquet(p).filter(wanted).collect())
                             for p in self._files.get(("r", b), ()))
        found = [df for df in found if df.height]
        if not found:
            return empty({**RECORDS, FOR_TASK: pl.Boolean()})
        lines = pl.concat(found)
        return (lines if self.all_lines else last_lines(lines)).sort("source", "line", "end_line", maintain_order=True)


@dataclass
class Resolved:
    tasks: pl.DataFrame  # `schema.TASKS` rows the report reads, in the frame's order
    states: dict[str, int] = field(default_factory=dict)  # every task, by state
    records: pl.DataFrame | None = None  # spilled records the report reads (`partial.RECORDS`)
    typical: pl.DataFrame | None = None  # `threads.typical_runtimes` of every task


def resolve(store: TaskStore, hosts: HostFill, events: pl.DataFrame, keep: pl.Expr | None,
            ids: Collection[str] = ()) -> Resolved:
    """The tasks of every bucket (`keep` None: every one), their counts by state, and the spilled
    lines of the tasks left STARTED or LOST or in `ids`.

    Marks (`tasks.finish_marked`) change STARTED tasks, and a RECEIVED one only when it is the one
    unfinished task of its host: so of the RECEIVED tasks (millions when a worker fell far behind)
    only those, the ones `keep` keeps and the ones in `ids` stay, beside the count per host."""
    named = pl.Series("task_id", sorted(ids), dtype=pl.String).implode()
    wanted = (pl.lit(True) if keep is None else keep.fill_null(False)) | pl.col("task_id").is_in(named)
    state = pl.col("state")
    none = empty(EVENTS)  # settled tasks read no records: their marks are row-local
    kept: list[pl.DataFrame] = []
    busy: list[pl.DataFrame] = []  # unfinished tasks the marks read: STARTED, and RECEIVED alone on a host
    alone: list[pl.DataFrame] = []  # the first RECEIVED task of each host, per bucket
    idle: list[pl.DataFrame] = []  # other unfinished tasks kept
    per_host: list[pl.DataFrame] = []
    runs: list[pl.DataFrame] = []  # successful runs' times, by name (a few bytes a task): the stuck baseline
    counts: dict[str, int] = {}
    def bucket(b: int) -> tuple[pl.DataFrame, ...] | None:
        rows = store.task_rows(b)
        if rows.is_empty():
            return None
        rows = hosts(rows)
        settled = pl.col("_last_settling").is_not_null()
        done = task_analysis.finish_marked(task_analysis.finish_rows(rows.filter(settled)), none)
        opened = task_analysis.finish_rows(rows.filter(~settled))
        del rows
        rest = opened.filter(state != "STARTED")
        return (done.group_by("state").len(), rest.group_by("state").len(),
                done.filter((state == "SUCCESS") & pl.col("runtime_s").is_not_null()).select(
                    pl.col("task_name").cast(pl.Categorical), "runtime_s"),
                compact(_kept(done, wanted | (state == "LOST"))),
                opened.filter(state.is_in(["STARTED", "RECEIVED"])).group_by("host").len(),
                compact(opened.filter(state == "STARTED")),
                compact(rest.filter(state == "RECEIVED").unique("host", keep="first", maintain_order=True)),
                compact(_kept(rest, wanted)))

    store.flush()
    # buckets two at a time (polars works outside the GIL), gathered in bucket order
    with ThreadPoolExecutor(max_workers=2) as pool:
        for got in pool.map(bucket, range(store.buckets)):
            if got is None:
                continue
            done_states, rest_states, run, keep_done, host_counts, started, first, rest_kept = got
            for frame in (done_states, rest_states):
                for name, n in frame.rows():
                    counts[str(name)] = counts.get(str(name), 0) + int(n)
            runs.append(run)
            kept.append(keep_done)
            per_host.append(host_counts)
            busy.append(started)
            alone.append(first)
            idle.append(rest_kept)
    unfinished = (pl.concat(per_host).group_by("host").agg(pl.col("len").sum()) if per_host
                  else pl.DataFrame(schema={"host": pl.String, "len": pl.UInt32}))
    lone = unfinished.filter((pl.col("len") == 1) & pl.col("host").is_not_null()).get_column("host").implode()
    lone_rows = pl.concat(alone, how="vertical_relaxed").filter(pl.col("host").is_in(lone)) if alone else None
    marked: pl.DataFrame = empty(TASKS)
    if busy or lone_rows is not None:
        inputs = [*busy, *([] if lone_rows is None else [lone_rows])]
        marked = task_analysis.finish_marked(pl.concat(inputs, how="vertical_relaxed"), events, unfinished)
    if lone_rows is not None and lone_rows.height:  # counted RECEIVED above, and again as marked
        counts["RECEIVED"] -= lone_rows.height
        gone = lone_rows.get_column("task_id").implode()
        idle = [df.filter(~pl.col("task_id").is_in(gone)) for df in idle]
    _count(counts, marked)
    success = [marked.filter((state == "SUCCESS") & pl.col("runtime_s").is_not_null()).select(
        pl.col("task_name").cast(pl.Categorical), "runtime_s")]  # outside-body warnings finish no task as SUCCESS
    typical = threads.typical_runtimes(pl.concat([*runs, *success]).with_columns(pl.col("task_name").cast(pl.String)))
    quoted = marked.filter(state.is_in(UNFINISHED_QUOTED) | pl.col("task_id").is_in(named))
    quoted = pl.concat([quoted.select("task_id"), *(df.filter(pl.col("task_id").is_in(named)).select("task_id")
                                                    for df in idle)])
    records = store.records(quoted.get_column("task_id")) if quoted.height else None
    frame = task_analysis.ordered(pl.concat([*kept, *idle, marked], how="diagonal_relaxed"))
    return Resolved(frame, {k: v for k, v in sorted(counts.items()) if v}, records, typical)


def _kept(done: pl.DataFrame, wanted: pl.Expr) -> pl.DataFrame:
    """The rows of `done` `wanted` keeps; all of them when some rule's condition cannot run on it (as
    `evaluate` would see them)."""
    try:
        return done.filter(wanted)
    except pl.exceptions.PolarsError:
        return done


def last_lines(records: pl.DataFrame) -> pl.DataFrame:
    """Of each task's records, its last one and its last own line (no lifecycle kind, a message), in
    timeline order (stable: of records at one place, the later in the input)."""
    if records.is_empty():
        return records
    ordered = timeline(records).with_row_index("_i")
    own = pl.col("kind").is_null() & pl.col("message").is_not_null()
    picks = pl.concat([ordered.group_by("task_id").agg(pl.col("_i").last()).get_column("_i"),
                       ordered.filter(own).group_by("task_id").agg(pl.col("_i").last()).get_column("_i")])
    return ordered.filter(pl.col("_i").is_in(picks.implode())).drop("_i")


def compact(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with its text in buffers of its own. A filter or gather of string columns shares the
    buffers of the frame it came from, so a few kept rows of a piece hold all its text in memory;
    a concatenation writes new ones (measured: 100k of 1M rows kept 200 MB, then 19 MB)."""
    text = [name for name, dtype in df.schema.items() if dtype == pl.String]
    if df.is_empty() or not text:
        return df
    return df.with_columns(pl.concat_str([pl.col(name), pl.lit("")]).alias(name) for name in text)


def _count(counts: dict[str, int], tasks: pl.DataFrame) -> None:
    if tasks.is_empty():
        return
    for state, n in tasks.group_by("state").len().rows():
        counts[str(state)] = counts.get(str(state), 0) + int(n)
