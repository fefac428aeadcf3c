"""Figures of an incident: matplotlib (Agg, no pyplot), deterministic, readable, empty-safe.

Each function takes a `Bundle` (anything with the frames as attributes) and returns a
`matplotlib.figure.Figure`:

- `timeline`: log records per host and kind (lifecycle kind, else log level) over time, with
  record counts per level above; findings' `first_seen` as vertical lines, the root cause in red
  with its first → last span shaded.  Records without a timestamp cannot be placed: the title
  says "30 timed records of 33" where the report's header says "33 records".
- `runtimes`: distribution of task runtimes per task name (box + points, log scale when wide).
- `gantt`: stuck and longest tasks, received → started (waiting), started → finished or the
  end of the evidence (hatched when the task never finished).
- `reconnects`: broker connection events (`Cannot connect to`, `Connection to broker lost`,
  `Connected to`) over time, and their running counts.
- `thread_states`: thread states (`threads.state`) counted per dump.

A figure's size does not grow with the log's: the timeline draws per-second counts
(`Bundle.activity`) re-binned to its width, never the records; runtimes draws boxes from
quantiles and at most `MAX_POINTS` points per name; bins, bars and spans are at least a pixel
wide or not drawn (`AXIS_PX`).  Only `reconnect_events` reads records (`Bundle.kept_events`).

`write_plots(bundle, directory, formats=("png", "svg"))` writes every figure with something to
show and says which it skipped and why; two runs give byte-identical files (fixed size and dpi,
`svg.hashsalt`, no dates in SVG/PDF metadata, none in PNG).  Called directly, a plot without data
says so ("no records") instead of raising.

Every label taken from the bundle (host, task, dump and finding names: a host is often a file's
stem) is redacted before it is drawn, since a PNG cannot be redacted afterwards: each plot takes
a `label` function (`labeller(report)`: the report's placeholders; `keep` with `redact=False`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec

import polars as pl

if TYPE_CHECKING:
    from matplotlib.figure import Figure

P = ParamSpec("P")
Labeller = Callable[[Sequence[str]], list[str]]  # texts from the bundle → what a figure may show

WIDTH = 11.0
DPI = 100
MAX_LANES = 24
MAX_LEGEND_FINDINGS = 8
# The narrowest a data axis gets, in pixels (labels and legends take the rest of WIDTH * DPI): one
# pixel in data units is at most span / AXIS_PX, so marks at least that wide always show.
AXIS_PX = 500
LANE_BINS = 250  # timeline lanes: bins across the axis, each two pixels wide or more
MAX_POINTS = 200  # runtimes: points drawn per task name
EDGE = 0.75  # bar edges, in points: one pixel at DPI
RC: Any = {
    "svg.hashsalt": "celery-postmortem",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "axes.titlesize": 10,
    "axes.titlelocation": "left",
    "timezone": "UTC",
}
METADATA: dict[str, dict[str, Any]] = {
    "svg": {"Date": None},
    "pdf": {"CreationDate": None, "ModDate": None},
    "png": {},
}
LEVEL_ORDER = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
LEVEL_COLOURS = {"CRITICAL": "#67001f", "ERROR": "#d6604d", "WARNING": "#f4a582", "INFO": "#92c5de",
                 "DEBUG": "#d1e5f0", "other": "#bababa"}
STATE_ORDER = ("lock_wait", "db_wait", "io_wait", "sleep", "running", "idle", "unknown")
STATE_COLOURS = {"lock_wait": "#d6604d", "db_wait": "#8073ac", "io_wait": "#f4a582", "sleep": "#92c5de",
                 "running": "#4dac26", "idle": "#bababa", "unknown": "#e0e0e0"}
TASK_COLOURS = {"SUCCESS": "#4dac26", "FAILURE": "#d6604d", "RETRY": "#f4a582", "REVOKED": "#8073ac",
                "REJECTED": "#8073ac", "LOST": "#67001f", "STARTED": "#b2182b", "RECEIVED": "#bababa"}
RECONNECT_PATTERNS = (
    ("cannot connect", "Cannot connect to", "#d6604d"),
    ("connection lost", "Connection to broker lost", "#f4a582"),
    ("connected", "Connected to", "#4dac26"),
)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")


def _styled(fn: Callable[P, Figure]) -> Callable[P, Figure]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        import matplotlib

        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper


def _figure(height: float, rows: int = 1, height_ratios: Sequence[float] | None = None,
            sharex: bool = True) -> tuple[Figure, list[Any]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False,
                        gridspec_kw={"height_ratios": list(height_ratios)} if height_ratios else None)
    return fig, [a for row in axes for a in row]


def _empty(title: str, message: str) -> Figure:
    fig, (ax,) = _figure(3.0)
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="#777777", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _dates(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _short(text: object, limit: int = 40) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def labeller(report: Any = None) -> Labeller:
    """Redacts labels with the placeholders `report` (when given) shows for the same secrets."""
    from analyzer.redact import Redactor, scan_report

    redactor = Redactor()
    if report is not None:
        scan_report(report, redactor)

    def label(texts: Sequence[str]) -> list[str]:
        redactor.learn(texts)
        return redactor.apply(texts)

    return label


def keep(texts: Sequence[str]) -> list[str]:
    """Labels as they are (`--no-redact`)."""
    return list(texts)


def _labels(label: Labeller | None, texts: Sequence[object], limit: int) -> list[str]:
    """`texts` redacted by `label` (a fresh `labeller()` when None), control characters shown as
    escapes (SVG is XML, which has no place for them), then cut to `limit`: cut after, a secret cut
    in half would no longer be recognised."""
    from analyzer.printable import printable

    strs = ["" if t is None else str(t) for t in texts]
    return [_short(printable(t), limit) for t in (label or labeller())(strs)]


def _pixel(lo: datetime, hi: datetime) -> timedelta:
    """The time one pixel spans, at most, on an axis from `lo` to `hi` (see `AXIS_PX`)."""
    return (hi - lo) / AXIS_PX


def _pad(lo: datetime, hi: datetime) -> tuple[datetime, datetime]:
    span = hi - lo
    pad = span * 0.03 if span > timedelta(0) else timedelta(seconds=1)
    return lo - pad, hi + pad


# -- timeline ----------------------------------------------------------------------------------


def _findings_frame(bundle: Any) -> pl.DataFrame:
    try:
        df: pl.DataFrame = bundle.findings
    except AttributeError:
        return pl.DataFrame()
    return df


def _mark_findings(axes: Sequence[Any], findings: pl.DataFrame, lo: datetime, hi: datetime,
                   label: Labeller | None = None) -> list[Any]:
    """Vertical lines at each finding's first_seen; the root cause red with its span shaded."""
    from matplotlib.lines import Line2D

    handles: list[Any] = []
    if findings.is_empty() or "first_seen" not in findings.columns:
        return handles
    rows = findings.filter(pl.col("first_seen").is_not_null()).to_dicts()
    roots = [r for r in rows if r.get("root_cause")]
    names = _labels(label, [f"{r['id']} {r['category']}" for r in rows[:MAX_LEGEND_FINDINGS]], 60)
    first_root = roots[0]["id"] if roots else None
    for n, row in enumerate(rows):
        start, end = row["first_seen"], row["last_seen"] or row["first_seen"]
        if end < lo or start > hi:
            continue
        is_root = row["id"] == first_root
        colour = "#b2182b" if is_root else ("#e08214" if row.get("root_cause") else "#555555")
        style: Any = "-" if row.get("root_cause") else ":"
        for ax in axes:
            ax.axvline(start, color=colour, linestyle=style, linewidth=2.0 if is_root else 1.0, zorder=1)
            if is_root and end - start >= _pixel(lo, hi):  # a thinner span would not show
                ax.axvspan(start, end, color=colour, alpha=0.10, zorder=0)
        if n < MAX_LEGEND_FINDINGS:
            text = names[n] + (" (root cause)" if row.get("root_cause") else "")
            handles.append(Line2D([], [], color=colour, linestyle=style, linewidth=2.0 if is_root else 1.0,
                                  label=_short(text, 72)))
    if len(rows) > MAX_LEGEND_FINDINGS:
        handles.append(Line2D([], [], color="none", label=f"+{len(rows) - MAX_LEGEND_FINDINGS} more findings"))
    return handles


def _activity(bundle: Any) -> pl.DataFrame:
    """Records counted per host, kind, level and second (`Bundle.activity`), never the records.

    `Bundle.activity` keeps seconds as the logs wrote them; with the bundle's `tz` they become
    UTC here, as its other frames (and the findings drawn over them) are."""
    df: pl.DataFrame = bundle.activity
    tz = getattr(bundle, "tz", None)
    dtype = df.schema["second"]
    if tz is None or not isinstance(dtype, pl.Datetime) or dtype.time_zone is not None:
        return df
    return df.with_columns(pl.col("second").dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
                           .dt.convert_time_zone("UTC"))


def _no_timeline(bundle: Any) -> str | None:
    act = _activity(bundle)
    total = int(act.get_column("records").sum())
    if act.filter(pl.col("second").is_not_null()).height:
        return None
    return f"no timed records ({total} without a timestamp)" if total else "no records"


def _counts(records: pl.DataFrame, timed: pl.DataFrame) -> str:
    """Records and hosts plotted, in the report header's terms (`Summary.events`, `.hosts`).

    Only records with a timestamp can be placed on a time axis (a worker's banner has none), so
    when some lack one the title says how many of the report's records are shown, and likewise
    for hosts, instead of a smaller count that reads as a contradiction.  Both frames are counts
    (`Bundle.activity`): records are the sum of `records`.
    """
    def hosts(df: pl.DataFrame) -> int:
        return df.get_column("host").drop_nulls().n_unique()

    n_records, n_timed = int(records.get_column("records").sum()), int(timed.get_column("records").sum())
    shown = f"{n_records} records" if n_timed == n_records else f"{n_timed} timed records of {n_records}"
    h_all, h_timed = hosts(records), hosts(timed)
    return f"{shown}, {h_timed} host(s)" if h_timed == h_all else f"{shown}, on {h_timed} of {h_all} hosts"


def _runs(occupied: Any) -> list[tuple[int, int]]:
    """(first bin, bin count) of each run of consecutive occupied bins."""
    import numpy as np

    padded = np.concatenate(([False], occupied, [False])).astype(np.int8)
    change = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b - a)) for a, b in zip(change[::2], change[1::2], strict=True)]


def _covered(edges: Any, seconds: pl.Series) -> Any:
    """Which bins between `edges` (matplotlib dates) overlap one of the `seconds` [s, s + 1 s)."""
    import matplotlib.dates as mdates
    import numpy as np

    starts = mdates.date2num(seconds.to_list())
    first = np.searchsorted(edges, starts, side="right") - 1
    after = np.searchsorted(edges, starts + 1 / 86_400, side="left")
    delta = np.zeros(len(edges), dtype=np.int64)
    np.add.at(delta, np.clip(first, 0, len(edges) - 1), 1)
    np.add.at(delta, np.clip(after, 0, len(edges) - 1), -1)
    return np.cumsum(delta)[:-1] > 0


@_styled
def timeline(bundle: Any, *, label: Labeller | None = None) -> Figure:
    """Records per host and kind over time; findings marked, the root cause highlighted.

    Drawn from per-second counts (`Bundle.activity`) re-binned to the figure's resolution: each
    lane shows the stretches of `LANE_BINS` bins that hold records (one bar per stretch), so the
    figure's size does not grow with the log's.
    """
    import matplotlib.dates as mdates
    import numpy as np

    title = "Incident timeline"
    nothing = _no_timeline(bundle)
    if nothing:
        return _empty(title, nothing)
    records = _activity(bundle)
    ev = records.filter(pl.col("second").is_not_null()).with_columns(
        pl.coalesce(pl.col("host"), pl.lit("?")).alias("_host"),
        pl.coalesce(pl.col("kind"), pl.col("level").str.to_lowercase(), pl.lit("other")).alias("_class"),
        pl.when(pl.col("level").is_in(LEVEL_ORDER)).then(pl.col("level")).otherwise(pl.lit("other")).alias("_lvl"),
    )
    lanes_df = (ev.group_by("_host", "_class").agg(pl.col("records").sum().alias("n"),
                                                   pl.col("second").min().alias("first"))
                .sort("_host", "first", "_class"))
    if lanes_df.height > MAX_LANES:  # keep the busiest lanes, fold the rest into "other" per host
        kept = (lanes_df.sort(["n", "_host", "_class"], descending=[True, False, False]).head(MAX_LANES - 1)
                .select("_host", "_class", pl.lit(True).alias("_kept")))
        ev = (ev.join(kept, on=["_host", "_class"], how="left", nulls_equal=True)
              .with_columns(pl.when(pl.col("_kept")).then(pl.col("_class"))
                            .otherwise(pl.lit("(other kinds)")).alias("_class")).drop("_kept"))
        lanes_df = (ev.group_by("_host", "_class").agg(pl.col("second").min().alias("first"))
                    .sort("_host", "first", "_class"))
    lanes = [(str(h), str(c)) for h, c in lanes_df.select("_host", "_class").rows()]
    hosts = sorted({h for h, _ in lanes})
    height = min(10.0, 3.2 + 0.28 * len(lanes))
    fig, (top, ax) = _figure(height, rows=2, height_ratios=(1, max(1.5, len(lanes) * 0.3)))

    first: datetime = ev.get_column("second").min()  # type: ignore[assignment]
    last: datetime = ev.get_column("second").max()  # type: ignore[assignment]
    lo, hi = _pad(first, last + timedelta(seconds=1))
    ev = ev.with_columns((pl.col("second") + pl.duration(milliseconds=500)).alias("_mid"))  # for counts
    # counts per level over time, stacked (one `stairs` artist per level: cheap to draw)
    if hi - lo < timedelta(seconds=60):  # counts are per second: finer bins would only show spikes
        edges = mdates.date2num([first + timedelta(seconds=i) for i in range(int((last - first).total_seconds()) + 2)])
    else:
        edges = mdates.date2num([lo + (hi - lo) * i / 60 for i in range(61)])
    base = np.zeros(len(edges) - 1)
    for lvl in (*LEVEL_ORDER, "other"):
        part = ev.filter(pl.col("_lvl") == lvl)
        if part.is_empty():
            continue
        counts, _ = np.histogram(mdates.date2num(part.get_column("_mid").to_list()), bins=edges,
                                 weights=part.get_column("records").to_numpy())
        top.stairs(base + counts, edges, baseline=base.copy(), fill=True, color=LEVEL_COLOURS[lvl], label=lvl)
        base = base + counts
    top.set_ylim(0, max(1.0, float(base.max()) * 1.1))
    top.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    top.set_ylabel("records")
    top.set_title(f"{title}: {_counts(records, ev)}")
    top.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0, fontsize=7, frameon=False)

    # one lane per (host, kind): a bar over each stretch of bins holding records
    classes = sorted({c for _, c in lanes})
    colours = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(classes)}
    lane_edges = mdates.date2num([lo + (hi - lo) * i / LANE_BINS for i in range(LANE_BINS + 1)])
    width = float(lane_edges[1] - lane_edges[0])
    for y, (host, cls) in enumerate(lanes):
        part = ev.filter((pl.col("_host") == host) & (pl.col("_class") == cls))
        bars = [(float(lane_edges[a]), n * width) for a, n in _runs(_covered(lane_edges, part.get_column("second")))]
        ax.broken_barh(bars, (y - 0.3, 0.6), color=colours[cls], linewidth=0, zorder=3)
    ax.set_yticks(range(len(lanes)))
    label = label or labeller()
    host_names = dict(zip(hosts, _labels(label, hosts, 24), strict=True))
    class_names = dict(zip(classes, _labels(label, classes, 20 if len(hosts) > 1 else 28), strict=True))
    ax.set_yticklabels([f"{host_names[h]} · {class_names[c]}" if len(hosts) > 1 else class_names[c]
                        for h, c in lanes])
    ax.set_ylim(len(lanes) - 0.5, -0.5)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_xlim(lo, hi)
    if len(hosts) == 1:
        ax.set_ylabel(_labels(label, hosts, 30)[0])
    _dates(ax)
    handles = _mark_findings([top, ax], _findings_frame(bundle), lo, hi, label)
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(3, len(handles)), fontsize=8,
                   frameon=False)
    return fig


# -- task runtimes -------------------------------------------------------------------------------


def _no_runtimes(bundle: Any) -> str | None:
    has = bundle.tasks.select(pl.col("runtime_s").is_not_null().any()).item()
    return None if has else "no finished tasks with a runtime"


def _box_stats(df: pl.DataFrame) -> pl.DataFrame:
    """Per task name: count, quartiles and whiskers (the furthest runtimes within 1.5 IQR of the
    box, as `Axes.boxplot` draws them), computed by polars instead of handing every value over."""
    rt = pl.col("runtime_s")
    q = (df.group_by("task_name").agg(pl.len().alias("n"), rt.median().alias("med"),
                                      rt.quantile(0.25, "linear").alias("q1"), rt.quantile(0.75, "linear").alias("q3"))
         .with_columns((pl.col("q3") - pl.col("q1")).alias("iqr")))
    whiskers = (df.join(q.select("task_name", "q1", "q3", "iqr"), on="task_name", how="left", nulls_equal=True)
                .group_by("task_name").agg(
                    rt.filter(rt >= pl.col("q1") - 1.5 * pl.col("iqr")).min().alias("whislo"),
                    rt.filter(rt <= pl.col("q3") + 1.5 * pl.col("iqr")).max().alias("whishi")))
    return q.join(whiskers, on="task_name", how="left", nulls_equal=True)


def _sample(values: Any, limit: int) -> Any:
    """At most `limit` of sorted `values`, evenly spaced by rank: the extremes always, and the
    same points for the same values (no randomness)."""
    import numpy as np

    if len(values) <= limit:
        return values
    return values[np.unique(np.linspace(0, len(values) - 1, limit).round().astype(np.int64))]


@_styled
def runtimes(bundle: Any, *, max_names: int = 12, max_points: int = MAX_POINTS,
             label: Labeller | None = None) -> Figure:
    """Runtime distribution per task name: a box from quantiles, and at most `max_points` points
    per name (evenly spaced by rank, so the extremes are always shown); log scale when it spans
    decades."""
    import numpy as np

    title = "Task runtimes"
    nothing = _no_runtimes(bundle)
    if nothing:
        return _empty(title, nothing)
    df = bundle.tasks.filter(pl.col("runtime_s").is_not_null()).select("task_name", "runtime_s")
    stats = _box_stats(df).sort(["n", "task_name"], descending=[True, False], nulls_last=True)
    names = stats.head(max_names)
    order = names.get_column("task_name").to_list()
    sampled = (df.join(names.select("task_name"), on="task_name", how="semi", nulls_equal=True)
               .sort("task_name", "runtime_s", nulls_last=True)
               .group_by("task_name", maintain_order=True).agg(pl.col("runtime_s")))
    values = {name: np.asarray(v, dtype=float) for name, v in sampled.rows()}
    fig, (ax,) = _figure(min(9.0, 2.2 + 0.45 * len(order)))
    boxes = [{"med": r["med"], "q1": r["q1"], "q3": r["q3"], "whislo": r["whislo"], "whishi": r["whishi"],
              "fliers": []} for r in names.to_dicts()]
    ax.bxp(boxes, orientation="horizontal", widths=0.5, showfliers=False, medianprops={"color": "#b2182b"})
    rng = np.random.default_rng(0)
    for i, name in enumerate(order, 1):
        points = _sample(values[name], max_points)
        ax.scatter(points, i + rng.uniform(-0.15, 0.15, len(points)), s=8, alpha=0.5, color="#1f77b4", zorder=3)
    ax.set_yticks(range(1, len(order) + 1))
    shown = _labels(label, [n or "?" for n in order], 40)
    counts = names.get_column("n").to_list()
    ax.set_yticklabels([f"{n} (n={c})" for n, c in zip(shown, counts, strict=True)])
    ax.invert_yaxis()
    positive = df.get_column("runtime_s").filter(df.get_column("runtime_s") > 0)
    if positive.len() and float(positive.max()) / float(positive.min()) > 100:  # type: ignore[arg-type,operator]
        ax.set_xscale("log")
    ax.set_xlabel("runtime (s)")
    more = f", top {len(order)} task names" if names.height < stats.height else ""
    capped = f"; at most {max_points} points per name" if max(counts) > max_points else ""
    ax.set_title(f"{title}: {df.height} tasks{more}{capped}")
    ax.grid(axis="x", color="#eeeeee")
    return fig


# -- gantt of stuck / long tasks -----------------------------------------------------------------


def _end_of_evidence(bundle: Any) -> datetime | None:
    """The latest time anything was seen: the last second holding records (`Bundle.activity`),
    the tasks' own times, or a thread dump's capture."""
    candidates = [_activity(bundle).get_column("second").max()]
    tasks = bundle.tasks
    candidates += [tasks.get_column(c).max() for c in ("received_at", "started_at", "finished_at")
                   if c in tasks.columns]
    threads = bundle.threads
    if "captured_at" in threads.columns and threads.height:
        candidates.append(threads.get_column("captured_at").max())
    found = [c for c in candidates if isinstance(c, datetime)]
    return max(found) if found else None


def _no_gantt(bundle: Any) -> str | None:
    has = bundle.tasks.select((pl.col("received_at").is_not_null() | pl.col("started_at").is_not_null()).any()).item()
    return None if has else "no tasks with a received or started time"


@_styled
def gantt(bundle: Any, *, limit: int = 30, label: Labeller | None = None) -> Figure:
    """Stuck tasks (no finish) and the longest ones: waiting (received→started), running (→finished or end)."""
    from matplotlib.patches import Patch

    title = "Stuck and long tasks"
    nothing = _no_gantt(bundle)
    if nothing:
        return _empty(title, nothing)
    tasks = bundle.tasks.filter(pl.col("received_at").is_not_null() | pl.col("started_at").is_not_null())
    now = _end_of_evidence(bundle)
    tasks = tasks.with_columns(
        pl.coalesce("received_at", "started_at").alias("_from"),
        pl.col("finished_at").is_null().alias("_open"),
        pl.coalesce("finished_at", pl.lit(now, dtype=tasks.schema["received_at"])).alias("_to"),
    ).with_columns((pl.col("_to") - pl.col("_from")).alias("_span"))
    picked = (tasks.sort(["_open", "_span", "task_id"], descending=[True, True, False], nulls_last=True)
              .head(limit).sort("_from", "task_id"))
    fig, (ax,) = _figure(min(10.0, 2.4 + 0.32 * picked.height))
    rows = picked.to_dicts()
    lo, hi = _pad(min(r["_from"] for r in rows), max((r["_to"] or r["_from"]) for r in rows))
    pixel = _pixel(lo, hi)
    for y, row in enumerate(rows):
        start, began, end = row["_from"], row["started_at"], row["_to"] or row["_from"]
        if began is not None and began - start >= pixel:  # a shorter wait would not show
            ax.barh(y, began - start, left=start, height=0.5, color="#d9d9d9", edgecolor="#969696",
                    linewidth=EDGE)
        run_from = began or start
        colour = TASK_COLOURS.get(row["state"] or "", "#1f77b4")
        ax.barh(y, max(end - run_from, pixel), left=run_from, height=0.5, color=colour,  # never thinner than a pixel
                hatch="//" if row["_open"] else None, edgecolor="#333333" if row["_open"] else colour,
                linewidth=EDGE)
    ax.set_yticks(range(len(rows)))
    label = label or labeller()
    names = _labels(label, [r["task_name"] or "?" for r in rows], 32)
    ids = [t[:8] for t in _labels(label, [r["task_id"] or "?" for r in rows], 64)]
    states = _labels(label, [r["state"] or "" for r in rows], 20)
    ax.set_yticklabels([f"{n} [{i}] {s}" for n, i, s in zip(names, ids, states, strict=True)])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(lo, hi)
    if now is not None:
        ax.axvline(now, color="#555555", linestyle=":", linewidth=1)
    _dates(ax)
    ax.grid(axis="x", color="#eeeeee")
    n_open = sum(1 for r in rows if r["_open"])
    ax.set_title(f"{title}: {n_open} never finished, {len(rows) - n_open} longest finished")
    handles = [Patch(facecolor="#d9d9d9", edgecolor="#969696", label="waiting (received → started)")]
    if n_open:
        handles.append(Patch(facecolor=TASK_COLOURS["STARTED"], hatch="//", edgecolor="#333333",
                             label="unfinished at end of evidence"))
    for state in sorted({r["state"] for r in rows if not r["_open"] and r["state"]}):
        handles.append(Patch(facecolor=TASK_COLOURS.get(state, "#1f77b4"), label=state.lower()))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(5, len(handles)), fontsize=8,
               frameon=False)
    return fig


# -- broker reconnects ---------------------------------------------------------------------------


def reconnect_events(bundle: Any) -> pl.DataFrame:
    """Records about the broker connection, with `attempt` = cannot connect / connection lost /
    connected.

    From the records the pipeline keeps while reading (`Bundle.kept_events`: connection lines are
    among them, `analyzer.pipeline.mapper.STRUCTURAL_TEXT`), never every record of a big log; an
    object with `events` alone (a notebook's own frames) is read whole.
    """
    expr = pl.lit(None, dtype=pl.String)
    for label, needle, _ in reversed(RECONNECT_PATTERNS):
        expr = pl.when(pl.col("message").str.contains(needle, literal=True)).then(pl.lit(label)).otherwise(expr)
    events: pl.DataFrame = bundle.kept_events if hasattr(bundle, "kept_events") else bundle.events
    return (events.filter(pl.col("ts").is_not_null()).with_columns(expr.alias("attempt"))
            .filter(pl.col("attempt").is_not_null()))


def _no_reconnects(bundle: Any) -> str | None:
    return None if reconnect_events(bundle).height else "no broker connection events"


@_styled
def reconnects(bundle: Any, *, label: Labeller | None = None) -> Figure:
    """Broker connection attempts, losses and successes over time, with running counts.

    At most one marker per series in each of `LANE_BINS` bins (the first event in it), and the
    running counts taken at the bins' edges once a series has more events than bins: the same
    picture at the figure's resolution, whatever the number of events.
    """
    import matplotlib.dates as mdates
    import numpy as np

    title = "Broker connection"
    ev = reconnect_events(bundle)
    if ev.is_empty():
        return _empty(title, "no broker connection events")
    ev = ev.sort("ts", maintain_order=True)
    fig, (ax, cum) = _figure(4.8, rows=2, height_ratios=(1, 1.2))
    lo, hi = _pad(ev.get_column("ts").min(), ev.get_column("ts").max())  # type: ignore[arg-type]
    edges = [lo + (hi - lo) * i / LANE_BINS for i in range(LANE_BINS + 1)]
    ev = ev.with_columns(((pl.col("ts") - lo) / ((hi - lo) / LANE_BINS)).floor().cast(pl.Int64).alias("_bin"))
    labels = [attempt for attempt, _, _ in RECONNECT_PATTERNS]
    hosts = sorted({h or "?" for h in ev.get_column("host").to_list()})
    host_names = dict(zip(hosts, _labels(label, hosts, 30), strict=True))
    markers = ("o", "s", "^", "D", "v", "P")
    for i, (attempt, _, colour) in enumerate(RECONNECT_PATTERNS):
        part = ev.filter(pl.col("attempt") == attempt)
        for j, host in enumerate(hosts):
            hp = part.filter(pl.col("host").fill_null("?") == host).unique("_bin", keep="first", maintain_order=True)
            if hp.height:
                ax.scatter(hp.get_column("ts").to_list(), [i] * hp.height, color=colour, s=24,
                           marker=markers[j % len(markers)], zorder=3,
                           label=host_names[host] if i == 0 or len(hosts) > 1 else None)
        if part.height > LANE_BINS:
            at = np.searchsorted(mdates.date2num(part.get_column("ts").to_list()), mdates.date2num(edges), side="right")
            cum.step(edges, at, where="post", color=colour, label=f"{attempt} ({part.height})")
        elif part.height:
            times = part.get_column("ts").to_list()
            cum.step([lo, *times, hi], [0, *range(1, len(times) + 1), len(times)], where="post", color=colour,
                     label=f"{attempt} ({len(times)})")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.set_title(f"{title}: {ev.height} events" + (f" on {len(hosts)} hosts" if len(hosts) > 1 else ""))
    ax.grid(axis="x", color="#eeeeee")
    cum.set_ylabel("running count")
    cum.legend(loc="upper left", fontsize=8, frameon=False)
    cum.grid(color="#eeeeee")
    ax.set_xlim(lo, hi)
    cum.set_ylim(bottom=0)
    cum.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    _dates(cum)
    return fig


# -- thread states -------------------------------------------------------------------------------


def _no_threads(bundle: Any) -> str | None:
    return None if bundle.threads.height else "no thread dumps"


@_styled
def thread_states(bundle: Any, *, label: Labeller | None = None) -> Figure:
    """Counts of thread states (`threads.state`) per dump, one stacked bar per dump."""
    title = "Thread states per dump"
    nothing = _no_threads(bundle)
    if nothing:
        return _empty(title, nothing)
    th = bundle.threads
    th = th.with_columns(pl.col("state").fill_null("unknown"))
    dumps = (th.group_by("dump").agg(pl.col("captured_at").min().alias("at"), pl.len().alias("n"))
             .sort("at", "dump", nulls_last=True).get_column("dump").to_list())
    counts = th.group_by("dump", "state").len()
    states = [s for s in STATE_ORDER if s in set(counts.get_column("state").to_list())]
    states += sorted(set(counts.get_column("state").to_list()) - set(states))
    fig, (ax,) = _figure(min(10.0, 2.4 + 0.3 * len(dumps)))
    left = [0] * len(dumps)
    lookup = {(d, s): n for d, s, n in counts.rows()}
    for i, state in enumerate(states):
        widths = [lookup.get((d, state), 0) for d in dumps]
        drawn = [y for y, w in enumerate(widths) if w]  # a dump without this state gets no empty bar
        ax.barh(drawn, [widths[y] for y in drawn], left=[left[y] for y in drawn], height=0.6, label=state,
                color=STATE_COLOURS.get(state, PALETTE[i % len(PALETTE)]))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(range(len(dumps)))
    ax.set_yticklabels(_labels(label, dumps, 45))
    ax.set_ylim(len(dumps) - 0.5, -0.5)
    ax.set_xlabel("threads")
    ax.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    ax.set_title(f"{title}: {th.height} threads in {len(dumps)} dumps")
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), borderaxespad=0, fontsize=8, frameon=False)
    ax.grid(axis="x", color="#eeeeee")
    return fig


# -- saving --------------------------------------------------------------------------------------

PLOTS: dict[str, Callable[..., Figure]] = {
    "timeline": timeline,
    "runtimes": runtimes,
    "gantt": gantt,
    "reconnects": reconnects,
    "thread_states": thread_states,
}


def save_figure(fig: Figure, path: str | Path, fmt: str | None = None) -> Path:
    """Save `fig` reproducibly: same figure, same bytes (no dates in metadata, fixed hash salt)."""
    import matplotlib

    out = Path(path)
    fmt = fmt or out.suffix.lstrip(".")
    if fmt not in METADATA:
        raise ValueError(f"unsupported plot format {fmt!r}; choose one of {', '.join(METADATA)}")
    with matplotlib.rc_context(RC):
        fig.savefig(out, format=fmt, metadata=METADATA[fmt])
    return out


NOTHING: dict[str, Callable[[Any], str | None]] = {
    "timeline": _no_timeline,
    "runtimes": _no_runtimes,
    "gantt": _no_gantt,
    "reconnects": _no_reconnects,
    "thread_states": _no_threads,
}  # why a plot has nothing to show (the text its empty figure says), or None

TITLES = {"timeline": "Incident timeline", "runtimes": "Task runtimes", "gantt": "Stuck and long tasks",
          "reconnects": "Broker reconnects", "thread_states": "Thread states per dump"}


@dataclass(frozen=True)
class Written:
    """What `write_plots` did: the files, each figure as PNG (title, bytes) for reports that embed
    them, and the figures left out for having nothing to show (name, why), for the user to hear."""

    paths: tuple[Path, ...]
    pngs: tuple[tuple[str, bytes], ...]
    skipped: tuple[tuple[str, str], ...]


def _render(bundle: Any, directory: Path | None, formats: Sequence[str], label: Labeller) -> Written:
    """Draw each plot with something to show once: PNG in memory (written as is when asked for),
    the other formats to `directory`."""
    import io

    import matplotlib

    unknown = [f for f in formats if f not in METADATA]
    if unknown:
        raise ValueError(f"unsupported plot format(s) {', '.join(unknown)}; choose from {', '.join(METADATA)}")
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    pngs: list[tuple[str, bytes]] = []
    skipped: list[tuple[str, str]] = []
    for name, plot in PLOTS.items():
        nothing = NOTHING[name](bundle)
        if nothing:
            skipped.append((name, nothing))
            continue
        fig = plot(bundle, label=label)
        buf = io.BytesIO()
        with matplotlib.rc_context(RC):
            fig.savefig(buf, format="png", metadata=METADATA["png"])
        pngs.append((TITLES.get(name, name), buf.getvalue()))
        fig.set_layout_engine("none")  # laid out once, for the PNG: other formats keep that layout
        if directory is None:
            continue
        for fmt in formats:
            path = directory / f"{name}.{fmt}"
            if fmt == "png":
                path.write_bytes(buf.getvalue())
                paths.append(path)
            else:
                paths.append(save_figure(fig, path, fmt))
    return Written(tuple(paths), tuple(pngs), tuple(skipped))


def write_plots(bundle: Any, directory: str | Path, formats: Sequence[str] = ("png", "svg"), *,
                report: Any = None, redact: bool = True) -> Written:
    """Write every plot with something to show as `directory/<name>.<format>`, in `PLOTS` order;
    the others are skipped, and `Written.skipped` says which and why.

    Labels are redacted (with `report`'s placeholders when given) unless `redact=False`."""
    return _render(bundle, Path(directory), formats, labeller(report) if redact else keep)


def save_plots(bundle: Any, directory: str | Path, formats: Sequence[str] = ("png", "svg"), *,
               report: Any = None, redact: bool = True) -> list[Path]:
    """The paths `write_plots` wrote (figures with nothing to show are skipped)."""
    return list(write_plots(bundle, directory, formats, report=report, redact=redact).paths)


def png_bytes(bundle: Any, report: Any = None, *, redact: bool = True) -> tuple[tuple[str, bytes], ...]:
    """Every plot as (title, PNG bytes), for reports that embed them (HTML); labels redacted with
    `report`'s placeholders unless `redact=False`.

    Plots with nothing to show are left out, so a log-only bundle does not embed an empty
    thread-state chart.
    """
    return _render(bundle, None, ("png",), labeller(report) if redact else keep).pngs
