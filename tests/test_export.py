"""Export: every frame to parquet / csv / ndjson, read back with polars; the typer command."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from analyzer import open_bundle
from analyzer.api import ATTRIBUTE_FRAMES, Bundle
from analyzer.cli import export_command
from analyzer.export import FRAMES, export, flatten_lists

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
READERS = {"parquet": pl.read_parquet, "csv": pl.read_csv, "ndjson": pl.read_ndjson}


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return open_bundle(SAMPLES / "hang-socket-read")


@pytest.mark.parametrize("fmt", list(READERS))
def test_export_writes_every_frame_and_reads_back(bundle: Bundle, fmt: str, tmp_path: Path) -> None:
    written = export(bundle, tmp_path, to=fmt)
    assert [p.name for p in written] == [f"{name}.{fmt}" for name in FRAMES]
    events = READERS[fmt](tmp_path / f"events.{fmt}")
    assert events.height == bundle.events.height
    assert events.columns == bundle.events.columns
    threads = READERS[fmt](tmp_path / f"threads.{fmt}")
    assert threads.get_column("state").to_list() == bundle.threads.get_column("state").to_list()
    findings = READERS[fmt](tmp_path / f"findings.{fmt}")
    assert findings.height == bundle.findings.height


@pytest.mark.parametrize("fmt", list(READERS))
def test_export_writes_one_file_per_public_frame_plus_findings_and_coverage(bundle: Bundle, fmt: str,
                                                                             tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["export", str(SAMPLES / "hang-socket-read"), str(tmp_path), "--to", fmt])
    assert result.exit_code == 0, result.output
    public = {*ATTRIBUTE_FRAMES, *bundle.frame_map()}
    assert {"stuck", "inspect", "workers"} <= public
    assert {p.name for p in tmp_path.iterdir()} == {f"{name}.{fmt}" for name in (*public, "findings", "coverage")}


def test_parquet_holds_each_public_frame_as_the_notebook_sees_it(tmp_path: Path) -> None:
    b = open_bundle(SAMPLES / "hang-socket-read", tz="Europe/Berlin")
    export(b, tmp_path, to="parquet")
    for name in ATTRIBUTE_FRAMES:
        assert pl.read_parquet(tmp_path / f"{name}.parquet").equals(getattr(b, name)), name
    stuck = pl.read_parquet(tmp_path / "stuck.parquet")
    assert stuck.height == 1 and stuck.schema["time_start"] == pl.Datetime("ms", "UTC")
    inspect = pl.read_parquet(tmp_path / "inspect.parquet")  # a diagnostic frame, localized like the others
    assert inspect.height == b.frame_map()["inspect"].height > 0
    assert inspect.schema["captured_at"] == pl.Datetime("ms", "UTC")


def test_parquet_keeps_types_and_lists(bundle: Bundle, tmp_path: Path) -> None:
    export(bundle, tmp_path, to="parquet")
    assert pl.read_parquet(tmp_path / "events.parquet").equals(bundle.events)
    findings = pl.read_parquet(tmp_path / "findings.parquet")
    assert findings.schema["hosts"] == pl.List(pl.String)


def test_csv_joins_list_columns_with_semicolons(tmp_path: Path) -> None:
    df = pl.DataFrame({"members": [["a", "b"], []], "n": [1, 2]})
    assert flatten_lists(df).get_column("members").to_list() == ["a;b", ""]
    b = open_bundle(SAMPLES / "broker-lost")
    export(b, tmp_path, to="csv", frames=["findings"])
    explains = pl.read_csv(tmp_path / "findings.csv").get_column("explained_by").to_list()
    assert "f2" in explains


def test_empty_frames_export_with_their_columns(tmp_path: Path) -> None:
    b = Bundle.from_text("nothing a parser knows\n", name="notes.txt")
    for fmt in ("parquet", "csv"):
        export(b, tmp_path / fmt, to=fmt)
    cycles = pl.read_parquet(tmp_path / "parquet" / "cycles.parquet")
    assert cycles.is_empty() and cycles.schema["members"] == pl.List(pl.String)
    assert "members" in pl.read_csv(tmp_path / "csv" / "cycles.csv").columns


def test_unknown_format_is_refused(bundle: Bundle, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export(bundle, tmp_path, to="xlsx")


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("export")(export_command)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer from collapsing the app into one command
        pass

    return app


def test_export_command_writes_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["export", str(SAMPLES / "broker-lost"), "--to", "ndjson", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "events.ndjson").exists() and "events.ndjson" in result.output


def test_export_command_rejects_unknown_format(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["export", str(SAMPLES / "broker-lost"), "--to", "xls", str(tmp_path)])
    assert result.exit_code == 2
