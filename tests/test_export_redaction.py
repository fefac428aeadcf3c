"""Export redacts secrets like `analyze` does: same placeholders, every frame, every format."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from analyzer import open_bundle
from analyzer.cli import app
from analyzer.export import FRAMES, export
from tests.conftest import SAMPLES

READERS = {"parquet": pl.read_parquet, "csv": pl.read_csv, "ndjson": pl.read_ndjson}
SECRETS = ("RedisPw000", "S3cret")
PLACEHOLDER = re.compile(r"\*\*\*\d+\*\*\*")


@pytest.fixture
def leaky(tmp_path: Path) -> Path:
    """broker-refused with Celery's `**` mask replaced by a real password, plus two more leaks: a
    `password=` the rules never quote, and the Redis password again as bare text."""
    bundle = tmp_path / "bundle"
    shutil.copytree(SAMPLES / "broker-refused", bundle)
    log = bundle / "worker.log"
    text = log.read_text(encoding="utf-8")
    assert "redis://:**@" in text
    text = text.replace("redis://:**@", "redis://:RedisPw000@")
    text += ("[2026-11-28 19:21:27,000: WARNING/MainProcess] connecting with password=S3cret to db\n"
             "[2026-11-28 19:21:27,100: INFO/MainProcess] retrying as RedisPw000 later\n")
    log.write_text(text, encoding="utf-8")
    return bundle


def _strings(df: pl.DataFrame) -> list[str]:
    """Every string cell of `df`, list items included."""
    out: list[str] = []
    for name, dtype in df.schema.items():
        col = df.get_column(name)
        if isinstance(dtype, pl.List):
            col = col.explode()
        if col.dtype == pl.String:
            out.extend(v for v in col.to_list() if v is not None)
    return out


def _analyze_json(bundle: Path) -> dict[str, object]:
    result = CliRunner().invoke(app, ["analyze", str(bundle), "-f", "json"])
    assert result.exit_code in (0, 1), result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize("fmt", list(READERS))
def test_export_redacts_every_file_with_the_placeholders_of_analyze(leaky: Path, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["export", str(leaky), str(out), "--to", fmt])
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    assert {p.name for p in files} == {f"{name}.{fmt}" for name in FRAMES}
    for path in files:
        empty = fmt == "ndjson" and path.stat().st_size == 0  # an empty frame: polars cannot read it back
        cells = [] if empty else _strings(READERS[fmt](path))
        leaks = [c for c in cells if any(s in c for s in SECRETS)]
        assert not leaks, (path.name, leaks)
        if fmt != "parquet":  # text formats: not in the raw bytes either (headers, quoting)
            raw = path.read_text(encoding="utf-8")
            assert not any(s in raw for s in SECRETS), path.name

    report = _analyze_json(leaky)
    findings = report["findings"]
    assert isinstance(findings, list) and findings
    shown = {f["id"]: f["summary"] for f in findings}
    assert any("redis://:***" in s for s in shown.values())
    exported = READERS[fmt](out / f"findings.{fmt}")
    assert dict(zip(exported.get_column("id").to_list(), exported.get_column("summary").to_list(),
                    strict=True)) == shown

    redis = re.search(r"redis://:(\*\*\*\d+\*\*\*)@", json.dumps(report)).group(1)  # type: ignore[union-attr]
    messages = READERS[fmt](out / f"events.{fmt}").get_column("message").to_list()
    assert sum(f"redis://:{redis}@" in m for m in messages) == 3
    assert f"retrying as {redis} later" in messages  # bare occurrence: same placeholder
    password = next(m for m in messages if m.startswith("connecting with password="))
    mark = PLACEHOLDER.fullmatch(password.split("=")[1].split()[0])
    assert mark is not None and mark.group(0) != redis


@pytest.mark.parametrize("fmt", list(READERS))
def test_no_redact_keeps_the_secrets(leaky: Path, fmt: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", str(leaky), str(tmp_path), "--to", fmt, "--no-redact"])
    assert result.exit_code == 0, result.output
    events = _strings(READERS[fmt](tmp_path / f"events.{fmt}"))
    assert any("redis://:RedisPw000@" in c for c in events)
    assert any("password=S3cret" in c for c in events)
    assert any("RedisPw000" in c for c in _strings(READERS[fmt](tmp_path / f"findings.{fmt}")))


def test_bundle_export_redacts_by_default_like_the_cli(leaky: Path, tmp_path: Path) -> None:
    bundle = open_bundle(leaky)
    bundle.export(tmp_path / "api", to="ndjson")
    CliRunner().invoke(app, ["export", str(leaky), str(tmp_path / "cli"), "--to", "ndjson"])
    for name in FRAMES:
        api = (tmp_path / "api" / f"{name}.ndjson").read_text(encoding="utf-8")
        assert api == (tmp_path / "cli" / f"{name}.ndjson").read_text(encoding="utf-8"), name
    assert "***" in (tmp_path / "api" / "events.ndjson").read_text(encoding="utf-8")
    export(bundle, tmp_path / "raw", to="ndjson", redact=False)
    assert "password=S3cret" in (tmp_path / "raw" / "events.ndjson").read_text(encoding="utf-8")
    assert bundle.events.get_column("message").str.contains("RedisPw000").any()  # the frames stay as parsed


def test_bundle_export_takes_redact_like_the_cli(leaky: Path, tmp_path: Path) -> None:
    from analyzer import open_bundle

    b = open_bundle(leaky)
    kept = " ".join(p.read_text() for p in b.export(tmp_path / "kept", "ndjson", redact=False))
    cut = " ".join(p.read_text() for p in b.export(tmp_path / "cut", "ndjson"))
    assert all(s in kept for s in SECRETS) and not any(s in cut for s in SECRETS)
