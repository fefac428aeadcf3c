"""The notebook-facing API: open_bundle options, cached frames and report, findings, explain, reprs."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from analyzer import open_bundle, schema
from analyzer.api import Bundle
from analyzer.engine.rule import parse_rule
from analyzer.findings import Evidence, Finding
from analyzer.report import UnknownFinding

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
DOCS = ROOT / "docs"
SAMPLE_DIRS = sorted(d for d in SAMPLES.iterdir() if (d / "expected.json").is_file())
ATTRIBUTE_FRAMES = ("events", "tasks", "threads", "frames", "waits", "cycles", "stuck")

RULE = '''
id = "NB-001"
category = "broker.connection_refused"
severity = "error"
title = "Cannot connect to the broker"
what = "Connection attempts that failed."
why = "Tasks cannot be fetched."
on = "events"
when = 'message ~ "Cannot connect to"'
message = "{count} failed connection attempts"
remediation = ["Check the broker."]
'''


@pytest.fixture(scope="module")
def broker_lost() -> Bundle:
    return open_bundle(SAMPLES / "broker-lost")


@pytest.fixture(scope="module")
def empty_bundle() -> Bundle:
    return Bundle.from_text("nothing a parser knows\n", name="notes.txt")


def test_open_bundle_keeps_positional_path_and_log_formats_keyword() -> None:
    b = open_bundle([SAMPLES / "healthy" / "worker.log"], log_formats=())
    assert b.events.height > 0


def test_frames_are_built_once_and_cached(broker_lost: Bundle) -> None:
    assert broker_lost.events is broker_lost.events
    assert broker_lost.tasks is broker_lost.tasks


def test_report_without_arguments_is_cached(broker_lost: Bundle) -> None:
    assert broker_lost.report() is broker_lost.report()


def test_report_with_arguments_is_recomputed(broker_lost: Bundle) -> None:
    selected = broker_lost.report(select=["broker.connection_refused"])
    assert selected is not broker_lost.report()
    assert {f.category for f in selected.findings} == {"broker.connection_refused"}


def test_findings_frame_marks_the_root_cause(broker_lost: Bundle) -> None:
    df = broker_lost.findings
    assert df.schema["first_seen"] == pl.Datetime("ms")
    roots = df.filter(pl.col("root_cause")).get_column("category").to_list()
    assert roots[0] == "broker.connection_lost"


def test_explain_joins_evidence_back_to_events(broker_lost: Bundle) -> None:
    fid = broker_lost.findings.filter(pl.col("category") == "broker.connection_refused").item(0, "id")
    rows = broker_lost.explain(fid)
    assert rows.columns == ["source", "line", "ts", "level", "host", "task_id", "message", "text"]
    assert rows.height == min(10, broker_lost.report().finding(fid).evidence_total)
    assert set(rows.get_column("level").to_list()) == {"ERROR"}
    assert all("Cannot connect to" in m for m in rows.get_column("message").to_list())


def test_explain_full_returns_every_matching_row(broker_lost: Bundle) -> None:
    fid = broker_lost.findings.filter(pl.col("category") == "broker.connection_refused").item(0, "id")
    assert broker_lost.explain(fid, full=True).height >= broker_lost.explain(fid).height


def test_explain_unknown_finding_raises_key_error_naming_the_findings(broker_lost: Bundle) -> None:
    ids = broker_lost.findings.get_column("id").to_list()
    assert 1 < len(ids) <= 5  # few enough to be listed in full
    with pytest.raises(KeyError) as raised:
        broker_lost.explain("f999")
    assert str(raised.value) == "no finding 'f999' in this report; findings are " + ", ".join(ids)
    many = [f"f{i}" for i in range(1, 31)]
    assert str(UnknownFinding("f31", many)) == "no finding 'f31' in this report; findings are f1…f30"


def test_explain_on_a_bundle_without_findings_says_there_are_none() -> None:
    healthy = open_bundle(SAMPLES / "healthy")
    assert healthy.findings.is_empty()
    with pytest.raises(KeyError, match="no finding 'f1' in this report; it has no findings"):
        healthy.explain("f1")


def test_rules_given_to_open_bundle_are_used_by_the_report(tmp_path: Path) -> None:
    rule, errors = parse_rule(RULE, require_examples=False)
    assert rule is not None, errors
    b = open_bundle(SAMPLES / "broker-lost", rules=[rule])
    assert "NB-001" in b.findings.get_column("rule").to_list()
    (tmp_path / "NB-001.toml").write_text(RULE)
    by_dir = open_bundle(SAMPLES / "broker-lost", rules=[tmp_path])
    assert "NB-001" in by_dir.findings.get_column("rule").to_list()


def test_tz_turns_timestamps_into_utc(broker_lost: Bundle) -> None:
    berlin = open_bundle(SAMPLES / "broker-lost", tz="Europe/Berlin")
    assert berlin.events.schema["ts"] == pl.Datetime("ms", "UTC")
    assert berlin.tasks.schema["received_at"] == pl.Datetime("ms", "UTC")
    naive = broker_lost.events.get_column("ts").drop_nulls()[0]
    aware = berlin.events.get_column("ts").drop_nulls()[0]
    assert aware == naive.replace(tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    assert berlin.findings.schema["first_seen"] == pl.Datetime("ms", "UTC")
    assert berlin.report().findings[0].first_seen == broker_lost.report().findings[0].first_seen  # as written


def test_default_timestamps_are_naive_as_written(broker_lost: Bundle) -> None:
    assert broker_lost.events.schema["ts"] == pl.Datetime("ms")


def test_empty_bundle_has_typed_empty_frames_and_reprs(empty_bundle: Bundle) -> None:
    assert empty_bundle.threads.is_empty() and "state" in empty_bundle.threads.columns
    assert empty_bundle.findings.is_empty() and "root_cause" in empty_bundle.findings.columns
    assert isinstance(empty_bundle._repr_html_(), str)
    assert isinstance(empty_bundle._repr_markdown_(), str)
    # nothing in it was recognised: not "healthy", and the reprs say why
    md = empty_bundle.report()._repr_markdown_()
    assert "inconclusive: notes.txt: text in no known layout" in md and "healthy" not in md
    assert "inconclusive: notes.txt: text in no known layout" in empty_bundle._repr_markdown_()
    healthy = open_bundle(SAMPLES / "healthy")
    healthy.report()
    assert healthy.report()._repr_markdown_().startswith("**Report**: healthy")
    assert "healthy (0 informational findings)" in healthy._repr_markdown_()


def _public_frames(b: Bundle) -> dict[str, pl.DataFrame]:
    return {**b.frame_map(), **{name: getattr(b, name) for name in ATTRIBUTE_FRAMES}}


@pytest.mark.parametrize("sample", [*SAMPLE_DIRS, None], ids=[*(d.name for d in SAMPLE_DIRS), "empty"])
def test_every_public_frame_has_its_declared_schema_whatever_the_bundle_holds(sample: Path | None) -> None:
    b = open_bundle(sample) if sample else Bundle.from_text("nothing a parser knows\n", name="notes.txt")
    frames = _public_frames(b)
    assert set(frames) == set(schema.FRAME_SCHEMAS)
    for name, df in frames.items():
        assert list(df.schema.items()) == list(schema.FRAME_SCHEMAS[name].items()), name
        # conforming drops what the contract does not name: nothing an analysis makes may be lost that way
        undeclared = set(b._built(name).columns) - set(schema.FRAME_SCHEMAS[name])
        assert not undeclared, f"{name}: declare {sorted(undeclared)} in analyzer/schema.py"


def test_dump_columns_are_there_without_dumps() -> None:
    healthy, deadlock = open_bundle(SAMPLES / "healthy"), open_bundle(SAMPLES / "deadlock-lock")
    assert healthy.threads.is_empty() and deadlock.threads.height
    assert healthy.threads.columns == deadlock.threads.columns
    assert healthy.threads.filter(pl.col("status") == "active").is_empty()  # the notebook filter that crashed
    assert healthy.frames.columns == deadlock.frames.columns


def test_tz_makes_every_timestamp_of_every_attribute_frame_utc() -> None:
    sample = SAMPLES / "deadlock-postgres"
    naive, berlin = open_bundle(sample), open_bundle(sample, tz="Europe/Berlin")
    for name in ATTRIBUTE_FRAMES:
        declared = {col: pl.Datetime("ms", "UTC") if isinstance(dt, pl.Datetime) else dt
                    for col, dt in schema.FRAME_SCHEMAS[name].items()}
        assert dict(getattr(berlin, name).schema) == declared, name
    for name in ("waits", "cycles"):  # their times come from the PostgreSQL log, local time as written
        written = getattr(naive, name).get_column("ts").drop_nulls()[0]
        utc = getattr(berlin, name).get_column("ts").drop_nulls()[0]
        assert utc == written.replace(tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC), name


def test_short_repr_names_the_bundle(broker_lost: Bundle) -> None:
    text = repr(broker_lost)
    assert text.startswith("<Bundle ") and "broker-lost" in text and "\n" not in text


def test_bundle_html_lists_inputs_and_root_causes(broker_lost: Bundle) -> None:
    broker_lost.report()
    html = broker_lost._repr_html_()
    assert "worker.log" in html and "broker.connection_lost" in html
    markdown = broker_lost._repr_markdown_()
    for name in ATTRIBUTE_FRAMES:  # every attribute frame with its size, `stuck` too
        df = getattr(broker_lost, name)
        assert f"| {name} | {df.height} | {len(df.columns)} |" in markdown


def test_bundle_repr_does_not_run_the_rules() -> None:
    b = open_bundle(SAMPLES / "healthy")
    assert "not computed yet" in b._repr_markdown_()
    assert b._report is None


def test_report_and_finding_render_as_strings(broker_lost: Bundle) -> None:
    report = broker_lost.report()
    assert "f1" in report._repr_html_() and "f1" in report._repr_markdown_()  # type: ignore[attr-defined]
    finding = report.findings[0]
    assert finding.title in finding._repr_markdown_()  # type: ignore[attr-defined]
    assert "<table" in finding._repr_html_()  # type: ignore[attr-defined]


def _hostile_finding(n_evidence: int) -> Finding:
    return Finding(rule="X-1", category="task.exception", severity="error", confidence=0.5,
                   title="<script>alert(1)</script>", summary="a | b & <c>", count=n_evidence,
                   first_seen=None, last_seen=None, hosts=["<h>"], id="f1",
                   evidence=[Evidence("w.log", i, f"<img src=x onerror=alert({i})>") for i in range(n_evidence)],
                   evidence_total=n_evidence)


def test_finding_html_escapes_what_it_quotes() -> None:
    html = _hostile_finding(3)._repr_html_()  # type: ignore[attr-defined]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html


def test_finding_markdown_escapes_pipes_and_html() -> None:
    md = _hostile_finding(3)._repr_markdown_()  # type: ignore[attr-defined]
    assert "<script>" not in md and "<img" not in md
    assert "a \\| b" in md


def test_long_evidence_is_truncated_with_a_count() -> None:
    f = _hostile_finding(40)
    assert "35 more" in f._repr_html_()  # type: ignore[attr-defined]
    assert "35 more" in f._repr_markdown_()  # type: ignore[attr-defined]


def test_api_reference_page_is_up_to_date() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_api", DOCS / "gen_api.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (DOCS / "api.md").read_text() == gen.render(), "run: python docs/gen_api.py"


def test_report_header_keeps_the_logs_times_whatever_tz_says() -> None:
    """Findings' first_seen stay as the logs wrote them; so does the summary they are shown under."""
    plain = open_bundle(SAMPLES / "broker-lost").report()
    zoned = open_bundle(SAMPLES / "broker-lost", tz="Asia/Tokyo").report()
    assert zoned.summary.to_dict() == plain.summary.to_dict()
    assert zoned.findings[0].first_seen == plain.findings[0].first_seen


def test_report_finding_names_the_ids_it_has() -> None:
    report = open_bundle(SAMPLES / "broker-refused").report()
    with pytest.raises(KeyError, match=r"no finding 'f99' in this report; findings are f1"):
        report.finding("f99")
