"""Prefilters: running a rule on the rows its prefilter keeps gives exactly the findings of
running it on the whole frame, for row-local and temporal rules alike."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer import open_bundle
from analyzer.engine import evaluate as evaluate_module
from analyzer.engine.catalogue import load_catalogue
from analyzer.engine.compiler import prefilter
from analyzer.engine.evaluate import evaluate
from analyzer.engine.grammar import parse_condition
from analyzer.schema import EVENTS
from tests.conftest import SAMPLES
from tests.engine.test_evaluate import events, rule


def _whole_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate_module, "prefilter", lambda node, schema: None)


def _dicts(findings: list[object]) -> list[dict[str, object]]:
    return [f.to_dict() for f in findings]  # type: ignore[attr-defined]


@pytest.mark.parametrize("sample", ["broker-lost", "heartbeat-missed", "retry-then-success", "hard-time-limit",
                                    "deadlock-postgres", "rabbitmq-vhost", "clock-drift"])
def test_catalogue_findings_are_the_same_with_and_without_prefilters(
        sample: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rules, _ = load_catalogue()
    frames = open_bundle(SAMPLES / sample).frame_map()
    fast = evaluate(rules, frames)
    assert fast  # every one of these samples has findings
    _whole_frame(monkeypatch)
    assert _dicts(fast) == _dicts(evaluate(rules, frames))


def test_temporal_forms_add_the_rows_they_read() -> None:
    node = parse_condition('message contains "lost" and not (message contains "lost" followed by kind == "connected" '
                           'within 10m by source)')
    leaves = prefilter(node, EVENTS)
    assert leaves is not None
    assert ("message", "lost") in leaves
    assert any(not isinstance(leaf, tuple) and "connected" in str(leaf) for leaf in leaves)


def test_not_followed_by_keeps_the_last_rows_of_each_source() -> None:
    """Whether B had time to follow A depends on where the log ends, so those rows stay."""
    node = parse_condition('message contains "lost" not followed by kind == "connected" within 30s')
    leaves = prefilter(node, EVENTS)
    assert leaves is not None
    assert any(not isinstance(leaf, tuple) and "max" in str(leaf) for leaf in leaves)


def test_burst_and_unselective_conditions_see_the_whole_frame() -> None:
    assert prefilter(parse_condition('burst(message contains "x") >= 3x within 1m'), EVENTS) is None
    assert prefilter(parse_condition('count(level >= WARNING) >= 3 within 1m'), EVENTS) is None
    assert set(prefilter(parse_condition('count(message contains "x") >= 3 within 1m'), EVENTS) or ()) == {
        ("message", "x")}


CONDITIONS = [
    'message contains "lost" followed by kind == "connected" within 30s by source',
    'message contains "lost" not followed by kind == "connected" within 30s',
    'message contains "lost" and not (message contains "lost" followed by message ~ "back" within 20s by host)',
    'count(message contains "lost") >= 2 within 15s by host',
    'count(message ~ "lost|back") >= 3',
    'first(kind == "connected") by host',
    'last(message contains "back" or kind == "connected")',
    'message contains "back" and level >= WARNING',
]
ROW = st.tuples(st.integers(0, 120), st.sampled_from(["w1", "w2"]), st.sampled_from(["a.log", "b.log"]),
                st.sampled_from(["conn lost", "we are back", "noise", "lost and back"]),
                st.sampled_from([None, "connected", "received"]), st.sampled_from(["INFO", "WARNING"]))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=14), which=st.sampled_from(CONDITIONS))
def test_random_frames_give_the_same_findings(rows: list[tuple[int, str, str, str, str | None, str]],
                                              which: str) -> None:
    frame = events([{"t": t, "host": h, "source": s, "message": m, "text": m, "kind": k, "level": lv}
                    for t, h, s, m, k, lv in rows])
    r = rule(which, group_by='["host"]')
    fast = evaluate([r], {"events": frame})
    original = evaluate_module.prefilter
    evaluate_module.prefilter = lambda node, schema: None  # type: ignore[assignment]
    try:
        slow = evaluate([r], {"events": frame})
    finally:
        evaluate_module.prefilter = original
    assert _dicts(fast) == _dicts(slow)


def test_the_message_of_every_sample_record_starts_its_text() -> None:
    """What `evaluate.WITHIN` relies on: prefilter literals of `message` are looked for in `text`."""
    for expected in sorted(SAMPLES.glob("*/expected.json")):
        ev = open_bundle(expected.parent).events
        bad = ev.filter(pl.col("message").is_not_null() & ~pl.col("text").str.starts_with(pl.col("message")))
        assert bad.is_empty(), (expected.parent.name, bad.select("source", "line").rows()[:3])


@pytest.mark.parametrize("text", ["null", "absent"])
def test_message_literals_are_looked_for_in_message_when_the_frame_has_no_text(
        text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An API user's own events frame may lack `text` (or hold it null): `WITHIN` does not hold
    there, so a prefilter that scanned `text` would drop every row, or fail on the missing column."""
    rules, _ = load_catalogue()
    rules = [r for r in rules if r.on == "events" and "text" not in r.columns]
    ev = open_bundle(SAMPLES / "broker-lost").events
    ev = ev.with_columns(pl.lit(None, dtype=pl.String).alias("text")) if text == "null" else ev.drop("text")
    fast = evaluate(rules, {"events": ev})
    assert "CP-B007" in {f.rule for f in fast}  # lost, then recovered (CP-B001 reads `text`: not among them)
    _whole_frame(monkeypatch)
    assert _dicts(fast) == _dicts(evaluate(rules, {"events": ev}))
