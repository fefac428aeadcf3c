"""`evaluate` turns matches into deterministic findings; `check_examples` runs a rule's examples."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from analyzer.engine.errors import EngineError, EvaluationError
from analyzer.engine.evaluate import check_examples, evaluate, matches, render_message, sort_frame
from analyzer.engine.rule import Rule, load_rules, parse_rule
from analyzer.findings import Evidence
from analyzer.schema import EVENTS, THREADS, conform

DATA = Path(__file__).parent / "data"
T0 = datetime(2024, 5, 1, 10, 0, 0)

# A stand-in for the real log parser (written elsewhere): default Celery format, header lines only,
# continuation lines folded into `text`.  Enough to exercise the example hook.
HEADER = re.compile(
    r"^\[(?P<ts>[\d-]+ [\d:]+),(?P<ms>\d{3}): (?P<level>[A-Z]+)/(?P<process>[^\]]+)\] (?P<msg>.*)$"
)
TASK = re.compile(r"^Task (?P<name>[\w.]+)\[(?P<id>[\w-]+)\] (?P<kind>received|succeeded|failed|retry)")


def toy_parse(frame: str, text: str) -> pl.DataFrame:
    assert frame == "events"
    rows: list[dict[str, object]] = []
    for number, line in enumerate(text.splitlines(), 1):
        m = HEADER.match(line)
        if not m:
            if rows:
                rows[-1]["text"] = f"{rows[-1]['text']}\n{line}"
            continue
        task = TASK.match(m["msg"])
        ts = datetime.fromisoformat(m["ts"]) + timedelta(milliseconds=int(m["ms"]))
        rows.append(
            {
                "source": "example.log",
                "line": number,
                "ts": ts,
                "level": m["level"],
                "process": m["process"],
                "host": "example",
                "message": m["msg"],
                "text": m["msg"],
                "task_name": task["name"] if task else None,
                "task_id": task["id"] if task else None,
                "kind": task["kind"] if task else None,
            }
        )
    return conform(pl.DataFrame(rows, schema_overrides={"ts": pl.Datetime("ms")}), EVENTS)


def rule(
    when: str, *, on: str = "events", group_by: str = "[]", message: str = "{count} hits", rid: str = "R1",
    distinct: str = "[]",
) -> Rule:
    text = f'''
id = "{rid}"
category = "task.exception"
severity = "error"
title = "t"
what = "w"
why = "y"
on = "{on}"
when = {when!r}
group_by = {group_by}
distinct = {distinct}
message = "{message}"
remediation = ["fix it"]
explains = ["task.stuck"]
references = ["https://example.org/doc"]
'''
    r, errors = parse_rule(text, require_examples=False)
    assert r is not None, errors
    return r


def events(rows: list[dict[str, object]]) -> pl.DataFrame:
    full = [
        {"source": r.pop("source", "w1.log"), "line": i, "ts": T0 + timedelta(seconds=float(r.pop("t"))), **r}  # type: ignore[arg-type]
        for i, r in enumerate((dict(r) for r in rows), 1)
    ]
    return conform(pl.DataFrame(full, infer_schema_length=None), EVENTS)


FRAME = events(
    [
        {
            "t": 30,
            "host": "w2",
            "level": "ERROR",
            "message": "boom",
            "text": "boom\nTraceback ...",
            "task_id": "b",
        },
        {"t": 0, "host": "w1", "level": "ERROR", "message": "boom", "task_id": "a", "task_name": "proj.add"},
        {"t": 10, "host": "w1", "level": "INFO", "message": "fine"},
        {"t": 20.5, "host": "w1", "level": "ERROR", "message": "boom", "task_id": "c"},
    ]
)


def test_one_finding_per_rule_by_default_with_aggregates() -> None:
    [f] = evaluate(
        [rule('message == "boom"', message="{count} on {hosts} from {first_seen}: {task_name}")],
        {"events": FRAME},
    )
    assert (f.rule, f.category, f.severity, f.title) == ("R1", "task.exception", "error", "t")
    assert f.count == 3 and f.evidence_total == 3
    assert (f.first_seen, f.last_seen) == ("2024-05-01T10:00:00", "2024-05-01T10:00:30")
    assert f.hosts == ["w1", "w2"]
    assert f.tasks == ["a", "b", "c"]
    assert [e.line for e in f.evidence] == [2, 4, 1]  # sorted by ts
    assert f.summary == "3 on w1, w2 from 2024-05-01T10:00:00: proj.add"
    assert (f.remediation, f.references, f.explains_categories) == (
        ["fix it"],
        ["https://example.org/doc"],
        ["task.stuck"],
    )


def test_evidence_uses_text_then_message() -> None:
    [f] = evaluate([rule('message == "boom"')], {"events": FRAME})
    assert f.evidence[0] == Evidence("w1.log", 2, "boom")
    assert f.evidence[2] == Evidence("w1.log", 1, "boom\nTraceback ...")


def test_group_by_gives_one_finding_per_key_in_key_order() -> None:
    found = evaluate(
        [rule('message == "boom"', group_by='["host"]', message="{group}: {count}")], {"events": FRAME}
    )
    assert [(f.hosts, f.count, f.summary) for f in found] == [(["w1"], 2, "w1: 2"), (["w2"], 1, "w2: 1")]


def test_distinct_rows_count_once_and_null_keys_stay_apart() -> None:
    # the same task twice, another task, and two rows whose key is null
    frame = events([{"t": 0, "message": "boom", "task_id": "a"}, {"t": 5, "message": "boom", "task_id": "b"},
                    {"t": 9, "message": "boom", "task_id": "a"}, {"t": 12, "message": "boom"},
                    {"t": 15, "message": "boom"}])
    [f] = evaluate([rule('message == "boom"', distinct='["task_id"]')], {"events": frame})
    assert (f.count, f.evidence_total, f.summary) == (4, 4, "4 hits")
    assert [e.line for e in f.evidence] == [1, 2, 4, 5]  # each occurrence's first row
    assert (f.first_seen, f.last_seen) == ("2024-05-01T10:00:00", "2024-05-01T10:00:15")  # every row's time


def test_milliseconds_appear_only_when_present() -> None:
    [f] = evaluate([rule('task_id == "c"')], {"events": FRAME})
    assert f.first_seen == "2024-05-01T10:00:20.500"


def test_evidence_and_tasks_are_bounded() -> None:
    [f] = evaluate([rule("true")], {"events": FRAME}, max_evidence=2, max_tasks=1)
    assert len(f.evidence) == 2 and f.evidence_total == 4
    assert f.tasks == ["a"]


def test_findings_are_ordered_by_rule_id_and_deterministic() -> None:
    rules = [rule("true", rid="R2"), rule('message == "boom"', rid="R1"), rule('message == "none"', rid="R0")]
    first = [f.to_dict() for f in evaluate(rules, {"events": FRAME})]
    assert [f["rule"] for f in first] == ["R1", "R2"]
    assert first == [f.to_dict() for f in evaluate(rules, {"events": FRAME.reverse()})]


def test_missing_or_empty_frames_are_skipped() -> None:
    assert evaluate([rule("true")], {}) == []
    assert evaluate([rule("true")], {"events": FRAME.clear()}) == []


def test_missing_columns_are_added_as_nulls() -> None:
    df = pl.DataFrame({"source": ["x"], "line": [1], "message": ["boom"]})
    [f] = evaluate(
        [rule('message == "boom" and task_id is null', message="{task_name}/{hosts}")], {"events": df}
    )
    assert f.summary == "?/?" and f.first_seen is None


def test_frames_without_ts_work() -> None:
    threads = conform(
        pl.DataFrame(
            {
                "source": ["d.txt", "d.txt"],
                "line": [5, 9],
                "name": ["MainThread", "w"],
                "state": ["lock_wait", "running"],
            }
        ),
        THREADS,
    )
    [f] = evaluate([rule('state == "lock_wait"', on="threads", message="{name} waits")], {"threads": threads})
    assert f.summary == "MainThread waits" and f.first_seen is None
    assert f.evidence[0].source == "d.txt" and f.evidence[0].line == 5
    assert f.evidence[0].text == 'thread "MainThread" lock_wait'


def test_temporal_rule_runs_on_the_sorted_frame() -> None:
    r = rule('first(level == "ERROR") by host', group_by='["host"]', message="{host} first failed {task_id}")
    assert [f.summary for f in evaluate([r], {"events": FRAME})] == ["w1 first failed a", "w2 first failed b"]


def test_sort_frame_orders_by_ts_then_source_then_line() -> None:
    df = events([{"t": 1, "source": "b"}, {"t": 1, "source": "a"}, {"t": 0, "source": "c"}])
    assert sort_frame(df).get_column("source").to_list() == ["c", "a", "b"]


def test_render_message_never_raises() -> None:
    assert render_message("{count:>3} {x} {y.z} {", {"count": 7, "x": None}) == "{count:>3} {x} {y.z} {"
    assert render_message("{count:>3} {x}", {"count": 7, "x": None}) == "  7 ?"


def test_evaluation_failure_is_collected_or_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    good = rule("true", rid="R1")
    bad = rule("true", rid="R2")
    object.__setattr__(bad, "expr", pl.col("message").cast(pl.Int64, strict=True) > 1)
    errors: list[EngineError] = []
    found = evaluate([good, bad], {"events": FRAME}, errors=errors)
    assert [f.rule for f in found] == ["R1"]
    assert len(errors) == 1 and isinstance(errors[0], EvaluationError) and errors[0].rule == "R2"
    with pytest.raises(EvaluationError):
        evaluate([bad], {"events": FRAME})


def test_matches_returns_the_matching_rows() -> None:
    assert matches(rule('message == "boom"'), FRAME).get_column("line").to_list() == [2, 4, 1]


# -- examples --------------------------------------------------------------------------------------


def test_examples_of_the_test_rules_pass_through_the_parser_hook() -> None:
    rules, errors = load_rules(DATA)
    assert errors == []
    results = [res for r in rules for res in check_examples(r, toy_parse)]
    assert len(results) == 5
    assert all(res.ok and res.passed for res in results), [res.reason for res in results if not res.ok]


def test_failing_examples_say_why() -> None:
    [r], _ = load_rules(DATA / "broker")
    swapped = [type(e)("no_match" if e.expect == "match" else "match", e.text) for e in r.examples]
    object.__setattr__(r, "examples", tuple(swapped))
    bad_no_match, bad_match = check_examples(r, toy_parse)
    assert not bad_match.passed and "expected a match" in bad_match.reason
    assert not bad_no_match.passed and "expected no match, but 1 of 1 rows matched" in bad_no_match.reason
    assert "line 1: consumer: Cannot connect" in bad_no_match.reason


def test_parser_exceptions_and_xfail() -> None:
    [r], _ = load_rules(DATA / "broker")

    def broken(frame: str, text: str) -> pl.DataFrame:
        raise RuntimeError("parser bug")

    [res, _] = check_examples(r, broken)
    assert not res.passed and "RuntimeError: parser bug" in res.reason
    xfailed = type(r.examples[0])("match", "garbage", xfail="known gap")
    object.__setattr__(r, "examples", (xfailed,))
    [res] = check_examples(r, toy_parse)
    assert not res.passed and res.ok


def test_a_group_without_tasks_says_none_not_unknown() -> None:
    [f] = evaluate([rule('message == "fine"', message="tasks: {tasks}.")], {"events": FRAME})
    assert f.summary == "tasks: none."


def test_a_huge_field_is_clipped_in_the_summary_at_a_tokens_end():
    from analyzer.engine.evaluate import MAX_SUMMARY_CHARS, render_message

    text = render_message("{host}: {message}", {"host": "w1", "message": "word " * 100_000})
    assert len(text) <= MAX_SUMMARY_CHARS + 1 and text.endswith("word…")


def test_message_counts_say_once_and_plurals_without_parenthesised_s() -> None:
    fields = {"count": 1, "span": "at 10:00:00"}
    assert render_message("failed {count:plural:time} {span}", fields) == "failed once at 10:00:00"
    assert render_message("{count:plural:attempt}", {"count": 3}) == "3 attempts"
    assert render_message("{count:plural:child, children}", {"count": 2}) == "2 children"
    assert render_message("{count:plural:child, children}", {"count": 1}) == "1 child"


def test_message_span_is_one_time_when_first_and_last_agree() -> None:
    from analyzer.engine.evaluate import span

    assert span("10:00", "10:00") == "at 10:00"
    assert span("10:00", "10:05") == "from 10:00 to 10:05"
    assert span(None, None) is None


def test_message_bytes_are_humanised() -> None:
    assert render_message("{n:bytes}", {"n": 16596240}) == "15.8 MiB"
    assert render_message("{n:bytes}", {"n": "2097152"}) == "2.0 MiB"
    assert render_message("{n:bytes}", {"n": 512}) == "512 bytes"
    assert render_message("{n:bytes}", {"n": "unlimited"}) == "unlimited"


def test_a_long_traceback_evidence_keeps_its_exception_line() -> None:
    from analyzer.engine.evaluate import MAX_EVIDENCE_CHARS, _evidence_text

    frames = "".join(f'  File "/app/m{i}.py", line {i}, in f{i}\n    call()\n' for i in range(200))
    text = f"Traceback (most recent call last):\n{frames}ConnectionRefusedError: [Errno 111] Connection refused"
    assert len(text) > MAX_EVIDENCE_CHARS
    assert _evidence_text({"text": text}) == ("Traceback (most recent call last):\n"
                                              "ConnectionRefusedError: [Errno 111] Connection refused")


def test_thread_evidence_names_the_thread_and_its_application_frame_not_its_columns() -> None:
    from analyzer.engine.evaluate import _evidence_text

    row = {"dump": "d#1", "tool": "py-spy", "host": "w1", "pid": 9, "tid": 9, "name": "MainThread",
           "state": "io_wait", "top": "recv (socket.py:1)", "code": "fetch (proj.py:12)",
           "signature": "recv@socket.py < " * 26}
    assert _evidence_text(row) == 'thread "MainThread" (tid 9, pid 9 on w1) io_wait in fetch (proj.py:12)'


# -- fallback rules: what no other rule matched ------------------------------------------------------


def fallback(when: str, rid: str = "F1") -> Rule:
    text = f'''
id = "{rid}"
category = "error.unclassified"
severity = "error"
title = "t"
what = "w"
why = "y"
on = "events"
fallback = true
when = {when!r}
message = "{{count}} unclaimed"
remediation = ["fix it"]
references = ["https://example.org/doc"]
'''
    r, errors = parse_rule(text, require_examples=False)
    assert r is not None, errors
    return r


def test_a_fallback_rule_sees_only_what_no_other_rule_matched() -> None:
    errors_at_w1 = rule('message == "boom" and host == "w1"')
    any_error = fallback('level ~ "^ERROR$"')
    by_rule = {f.rule: f for f in evaluate([errors_at_w1, any_error], {"events": FRAME})}
    assert by_rule["R1"].count == 2
    assert by_rule["F1"].count == 1 and by_rule["F1"].hosts == ["w2"]  # only w2's error was left
    [alone] = evaluate([any_error], {"events": FRAME})  # no other rule ran: every error is unclaimed
    assert alone.count == 3


def test_rules_left_out_by_the_user_still_claim_what_they_match() -> None:
    errors_at_w1 = rule('message == "boom" and host == "w1"')
    [f] = evaluate([fallback('level ~ "^ERROR$"')], {"events": FRAME}, claim_only=[errors_at_w1])
    assert f.rule == "F1" and f.count == 1  # the ignored rule reports nothing, yet its rows are not unclassified


def test_a_record_written_at_the_same_instant_as_a_claimed_one_is_claimed_with_it() -> None:
    frame = events([
        {"t": 5, "source": "rabbit.log", "level": "ERROR", "message": "closing AMQP connection <0.1.0>:"},
        {"t": 5, "source": "rabbit.log", "level": "ERROR", "message": "missed heartbeats from client"},
        {"t": 6, "source": "rabbit.log", "level": "ERROR", "message": "something else"},
    ])
    found = evaluate([rule('message contains "missed heartbeats"'), fallback('level ~ "^ERROR$"')], {"events": frame})
    [left] = [f for f in found if f.rule == "F1"]
    assert left.count == 1 and left.evidence[0].line == 3


def test_fallback_needs_a_frame_whose_rows_say_where_they_were_read() -> None:
    text = '''
id = "F2"
category = "error.unclassified"
severity = "error"
title = "t"
what = "w"
why = "y"
on = "gauges"
fallback = true
when = 'value > 3'
message = "m"
remediation = ["r"]
'''
    r, errs = parse_rule(text, require_examples=False, schemas={"gauges": {"value": pl.Int64}})
    assert r is None and any("'fallback' needs a frame whose rows say where they were read" in str(e) for e in errs)
    bad, errs = parse_rule(text.replace("fallback = true", 'fallback = "yes"').replace("gauges", "events")
                           .replace("value > 3", "line > 3"), require_examples=False)
    assert bad is None and any("'fallback' must be true or false" in str(e) for e in errs)
