"""Plots: each returns a Figure, works on empty frames, and saves byte-identically twice."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from matplotlib.figure import Figure

from analyzer import open_bundle, plots
from analyzer.api import Bundle

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture(scope="module")
def broker_lost() -> Bundle:
    return open_bundle(SAMPLES / "broker-lost")


@pytest.fixture(scope="module")
def hang() -> Bundle:
    return open_bundle(SAMPLES / "hang-socket-read")


@pytest.fixture(scope="module")
def empty() -> Bundle:
    return Bundle.from_text("nothing a parser knows\n", name="notes.txt")


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(plots.PLOTS))
def test_every_plot_returns_a_figure_on_a_real_bundle(broker_lost: Bundle, name: str) -> None:
    assert isinstance(plots.PLOTS[name](broker_lost), Figure)


@pytest.mark.parametrize("name", list(plots.PLOTS))
def test_every_plot_says_so_when_there_is_no_data(empty: Bundle, name: str) -> None:
    fig = plots.PLOTS[name](empty)
    assert any(t.startswith("no ") for t in _texts(fig))


def test_bundle_methods_return_figures(hang: Bundle) -> None:
    for fig in (hang.plot_timeline(), hang.plot_runtimes(), hang.plot_gantt(), hang.plot_reconnects(),
                hang.plot_thread_states()):
        assert isinstance(fig, Figure)


def test_timeline_names_the_root_cause_in_its_legend(broker_lost: Bundle) -> None:
    assert any("broker.connection_lost (root cause)" in t for t in _texts(broker_lost.plot_timeline()))


def _timeline_title(b: Bundle) -> str:
    return next(t for t in _texts(b.plot_timeline()) if t.startswith("Incident timeline: "))


def test_timeline_counts_records_as_the_report_header_does(broker_lost: Bundle) -> None:
    header = broker_lost.report().summary
    timed = broker_lost.events.get_column("ts").drop_nulls().len()
    assert 0 < timed < header.events  # the banner lines of worker.stdout carry no timestamp
    assert _timeline_title(broker_lost) == f"Incident timeline: {timed} timed records of {header.events}, 1 host(s)"
    assert len(header.hosts) == 1


def test_timeline_says_records_when_every_record_is_timed() -> None:
    b = open_bundle(SAMPLES / "app-exception")
    assert b.events.get_column("ts").null_count() == 0
    assert _timeline_title(b).startswith(f"Incident timeline: {b.report().summary.events} records, ")


def test_timeline_says_how_many_of_the_reports_hosts_it_shows() -> None:
    b = open_bundle(SAMPLES / "events-storm")
    hosts = b.report().summary.hosts
    plotted = b.events.filter(pl.col("ts").is_not_null()).get_column("host").drop_nulls().n_unique()
    assert plotted < len(hosts)
    assert _timeline_title(b).endswith(f", on {plotted} of {len(hosts)} hosts")


def test_timeline_without_timestamps_says_how_many_records_it_cannot_place() -> None:
    b = open_bundle(SAMPLES / "broker-refused" / "worker.stdout")  # the worker's banner and shutdown line
    assert b.events.height and b.events.get_column("ts").null_count() == b.events.height
    assert f"no timed records ({b.events.height} without a timestamp)" in _texts(b.plot_timeline())


def test_reconnects_counts_each_kind_of_connection_event(broker_lost: Bundle) -> None:
    counts = dict(plots.reconnect_events(broker_lost).group_by("attempt").len().rows())
    assert set(counts) == {"cannot connect", "connection lost", "connected"}
    texts = _texts(broker_lost.plot_reconnects())
    for attempt, n in counts.items():
        assert f"{attempt} ({n})" in texts


def test_gantt_shows_the_stuck_task(hang: Bundle) -> None:
    texts = _texts(hang.plot_gantt())
    assert any("proj.fetch_rates" in t and "STARTED" in t for t in texts)


def test_thread_states_counts_states_per_dump(hang: Bundle) -> None:
    texts = _texts(hang.plot_thread_states())
    assert "io_wait" in texts


def test_plots_work_on_utc_aware_frames() -> None:
    b = open_bundle(SAMPLES / "broker-lost", tz="Europe/Berlin")
    for plot in plots.PLOTS.values():
        assert isinstance(plot(b), Figure)


def test_save_plots_is_byte_identical_across_runs(broker_lost: Bundle, tmp_path: Path) -> None:
    first = plots.save_plots(broker_lost, tmp_path / "a", formats=("png", "svg"))
    second = plots.save_plots(open_bundle(SAMPLES / "broker-lost"), tmp_path / "b", formats=("png", "svg"))
    assert [p.name for p in first] == [p.name for p in second]
    shown = set(plots.PLOTS) - {"thread_states"}  # the bundle holds no thread dump: that plot is skipped
    assert [p.name for p in first] == [f"{n}.{f}" for n in plots.PLOTS if n in shown for f in ("png", "svg")]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_svg_carries_no_date(broker_lost: Bundle, tmp_path: Path) -> None:
    path = plots.save_figure(broker_lost.plot_timeline(), tmp_path / "t.svg")
    assert b"<dc:date>" not in path.read_bytes()


def test_unknown_format_is_refused(broker_lost: Bundle, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported plot format"):
        plots.save_plots(broker_lost, tmp_path, formats=("gif",))
