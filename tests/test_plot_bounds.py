"""Plots of a big log stay small and show every mark they draw; empty plots are skipped, and said so.

The log is the benchmark's seeded generator (real sample lines, fresh times and ids), at a size
where every record drawn as its own mark (the old timeline) made a figure over the 2 MB bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from typer.testing import CliRunner

from analyzer import open_bundle, plots
from analyzer.api import Bundle
from analyzer.cli import app
from tests.benchmarks.bench_parse import generate
from tests.conftest import SAMPLES

MAX_BYTES = 2 << 20


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    path = tmp_path_factory.mktemp("big") / "worker.log"
    generate(path, 4)
    return open_bundle(path)


def test_every_figure_of_a_big_log_is_at_most_2_mb(big: Bundle, tmp_path: Path) -> None:
    assert int(big.activity.get_column("records").sum()) > 25_000  # enough records to overflow the bound one mark each
    written = plots.write_plots(big, tmp_path)
    assert {p.stem for p in written.paths} >= {"timeline", "runtimes", "gantt"}
    sizes = {p.name: p.stat().st_size for p in written.paths}
    assert max(sizes.values()) <= MAX_BYTES, sizes


def test_runtimes_draws_at_most_max_points_per_name_and_keeps_the_extremes(big: Bundle) -> None:
    fig = plots.runtimes(big, max_points=50)
    scatters = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]
    assert scatters and all(np.asarray(c.get_offsets()).shape[0] <= 50 for c in scatters)
    runtimes = big.tasks.get_column("runtime_s").drop_nulls()
    drawn = np.concatenate([np.asarray(c.get_offsets())[:, 0] for c in scatters])
    assert len(drawn) < runtimes.len()
    assert drawn.min() == runtimes.min() and drawn.max() == runtimes.max()


def test_runtimes_boxes_are_the_quantiles_boxplot_would_draw(big: Bundle) -> None:
    df = big.tasks.drop_nulls("runtime_s")
    name = df.get_column("task_name").mode().sort()[0]
    values = df.filter(df.get_column("task_name") == name).get_column("runtime_s").to_numpy()
    row = plots._box_stats(df).filter(plots.pl.col("task_name") == name).row(0, named=True)
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    iqr = q3 - q1
    assert (row["q1"], row["med"], row["q3"]) == pytest.approx((q1, med, q3))
    assert row["whislo"] == values[values >= q1 - 1.5 * iqr].min()
    assert row["whishi"] == values[values <= q3 + 1.5 * iqr].max()


def _too_thin(fig: Figure) -> Iterator[str]:
    """Every mark narrower than one pixel (rectangles, bars, lines, points) at the figure's dpi."""
    fig.canvas.draw()
    px_per_pt = fig.dpi / 72
    for ax in fig.axes:
        for patch in ax.patches:
            if isinstance(patch, Rectangle) and patch.get_visible():
                box = patch.get_window_extent()
                if box.width < 1 or box.height < 1:
                    yield f"{type(patch).__name__} {box.width:.2f}x{box.height:.2f} px"
        for coll in ax.collections:
            if isinstance(coll, PolyCollection):  # broken_barh
                to_px = coll.get_transform()
                for path in coll.get_paths():
                    box = path.transformed(to_px).get_extents()
                    if box.width < 1 or box.height < 1:
                        yield f"bar {box.width:.2f}x{box.height:.2f} px"
            if isinstance(coll, PathCollection):  # scatter: marker size in points²
                sizes = coll.get_sizes()
                if len(sizes) and math.sqrt(float(min(sizes))) * px_per_pt < 1:
                    yield f"marker of {min(sizes)} pt²"
        for line in ax.get_lines():
            if line.get_visible() and line.get_linestyle() not in ("None", "") and \
                    line.get_linewidth() * px_per_pt < 1:
                yield f"line {line.get_linewidth()} pt"
        for patch in ax.patches:
            edge = tuple(patch.get_edgecolor())
            if patch.get_visible() and edge[-1] and 0 < patch.get_linewidth() * px_per_pt < 1:
                yield f"edge {patch.get_linewidth()} pt"


# thread_states: a generated log holds no dump; the samples below cover it
@pytest.mark.parametrize("name", [n for n in plots.PLOTS if n != "thread_states"])
def test_no_plot_draws_invisible_marks(big: Bundle, name: str) -> None:
    assert plots.NOTHING[name](big) is None  # the figure has data: it is really drawn
    assert list(_too_thin(plots.PLOTS[name](big))) == []


@pytest.mark.parametrize("sample", ["hang-socket-read", "broker-lost", "task-never-finishes"])
def test_no_plot_of_a_sample_draws_invisible_marks(sample: str) -> None:
    b = open_bundle(SAMPLES / sample)
    for name, plot in plots.PLOTS.items():
        assert list(_too_thin(plot(b))) == [], name


def test_thin_marks_are_caught() -> None:
    """The check above can fail: a bar of 1 ms on an hour's axis, and a line of half a point, are found."""
    fig = Figure(dpi=plots.DPI)
    ax = fig.subplots()
    hour, ms = 1 / 24, 1 / 86_400_000  # matplotlib dates are days
    ax.barh(0, ms, left=0.0)
    ax.set_xlim(0.0, hour)
    ax.add_line(Line2D([0.0, hour], [0, 0], linewidth=0.5))
    found = list(_too_thin(fig))
    assert any(m.startswith("Rectangle") for m in found) and "line 0.5 pt" in found


def test_empty_plots_are_skipped_with_the_reason(tmp_path: Path) -> None:
    empty = Bundle.from_text("nothing a parser knows\n", name="notes.txt")
    written = plots.write_plots(empty, tmp_path)
    assert written.paths == () and written.pngs == ()
    assert [name for name, _ in written.skipped] == list(plots.PLOTS)
    assert dict(written.skipped)["thread_states"] == "no thread dumps"
    assert list(tmp_path.iterdir()) == []


def test_the_cli_says_which_plots_it_skipped(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["analyze", str(SAMPLES / "broker-lost"), "-f", "json",
                                 "--plots", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "note: --plots: no thread_states plot (no thread dumps)" in r.stderr
    assert not (tmp_path / "thread_states.svg").exists() and (tmp_path / "timeline.svg").exists()
