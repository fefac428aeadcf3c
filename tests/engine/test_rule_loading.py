"""Rule files load into `Rule`s, and every kind of mistake is collected with its file location."""

from __future__ import annotations

import textwrap
from pathlib import Path

import polars as pl
import pytest

from analyzer.engine.errors import ConditionError, EngineError, RuleError
from analyzer.engine.grammar import parse_condition
from analyzer.engine.rule import load_rule, load_rules, parse_rule
from analyzer.engine.schemas import frame_schemas, register_frame
from analyzer.schema import FRAME_SCHEMAS

DATA = Path(__file__).parent / "data"

GOOD = textwrap.dedent(
    """\
    id = "CP-X001"
    category = "broker.auth"
    severity = "error"
    title = "Broker rejects credentials"
    what = "The broker refused the login."
    why = "No worker can consume."
    on = "events"
    when = 'message ~ "ACCESS_REFUSED"'
    message = "{count} refusals on {hosts}"
    remediation = ["Check the user and password in broker_url."]

    [[example]]
    match = "x"

    [[example]]
    no_match = "y"
    """
)


def errors_of(text: str, **kwargs: object) -> list[EngineError]:
    rule, errors = parse_rule(text, path="r.toml", **kwargs)  # type: ignore[arg-type]
    assert (rule is None) == bool(errors)
    return errors


def test_good_rule_loads_with_defaults() -> None:
    rule, errors = parse_rule(GOOD, path="r.toml")
    assert errors == []
    assert rule is not None
    assert (rule.id, rule.on, rule.status, rule.confidence, rule.group_by) == (
        "CP-X001",
        "events",
        "experimental",
        0.8,
        (),
    )
    assert rule.condition == parse_condition('message ~ "ACCESS_REFUSED"')
    assert [e.expect for e in rule.examples] == ["match", "no_match"]
    assert rule.examples[0].line == 12
    assert rule.columns == ("message",)


def test_test_data_directory_loads_recursively_sorted_by_id() -> None:
    rules, errors = load_rules(DATA)
    assert errors == []
    assert [r.id for r in rules] == ["CP-T001", "CP-T002"]
    assert rules[0].group_by == ("host",)
    assert rules[0].path is not None and rules[0].path.endswith("CP-T001-cannot-connect.toml")


def test_when_parse_error_is_located_inside_the_toml_file() -> None:
    text = GOOD.replace(
        """when = 'message ~ "ACCESS_REFUSED"'""", "when = '''\nmessage ~ \"x\" and\n  level >> 3\n'''"
    )
    [error] = errors_of(text)
    assert isinstance(error, ConditionError)
    assert (error.path, error.line, error.column) == ("r.toml", 10, 10)
    assert str(error).startswith("r.toml:10:10: in 'when': ")


def test_unknown_column_is_located_in_a_basic_string_with_escapes() -> None:
    text = GOOD.replace(
        """when = 'message ~ "ACCESS_REFUSED"'""", r'''when = "message ~ \"A\" or colour == 1"'''
    )
    [error] = errors_of(text)
    assert isinstance(error, ConditionError)
    assert "unknown column 'colour'" in error.message
    assert (error.line, error.column) == (8, 28)


@pytest.mark.parametrize(
    ("change", "message", "line"),
    [
        (('severity = "error"', 'severity = "fatal"'), "severity 'fatal' must be one of", 3),
        (('category = "broker.auth"', 'category = "broker.nope"'), "unknown category 'broker.nope'", 2),
        (('title = "Broker rejects credentials"', 'title = "x"\ncolor = "red"'), "unknown key 'color'", 5),
        (('on = "events"', 'on = "rabbitmq_queues"'), "unknown frame 'rabbitmq_queues'", 7),
        (('message = "{count} refusals on {hosts}"', 'message = "{nosuch}"'), "unknown field {nosuch}", 9),
        (('what = "The broker refused the login."\n', ""), "missing required key 'what'", None),
        (('id = "CP-X001"', 'id = "CP X001"'), "must start with a letter", 1),
        (('on = "events"', 'on = "events"\nconfidence = 1.5'), "'confidence' must be a number", 8),
        (('on = "events"', 'on = "events"\ngroup_by = ["hostname"]'), "unknown column 'hostname'", 8),
        (('on = "events"', 'on = "events"\ndistinct = ["tid"]'), "'distinct' names unknown column 'tid'", 8),
        (('on = "events"', 'on = "events"\nexplains = ["nope"]'), "unknown category 'nope'", 8),
        (('on = "events"', 'on = "events"\nstatus = "stable"'), "must name the sample bundles", 8),
        (('match = "x"', 'match = "x"\nno_match = "z"'), "exactly one of 'match' or 'no_match'", 12),
        (('no_match = "y"', 'match = "y"'), "at least one [[example]] with 'no_match'", None),
        (
            ('remediation = ["Check the user and password in broker_url."]', "remediation = []"),
            "'remediation' needs at least one entry",
            10,
        ),
    ],
)
def test_validation_errors(change: tuple[str, str], message: str, line: int | None) -> None:
    assert change[0] in GOOD
    errors = errors_of(GOOD.replace(*change))
    assert any(message in e.message for e in errors), errors
    [error] = [e for e in errors if message in e.message]
    assert isinstance(error, RuleError)
    assert error.line == line


def test_all_errors_of_a_rule_are_collected() -> None:
    text = GOOD.replace('severity = "error"', 'severity = "loud"').replace('on = "events"', 'on = "nope"')
    assert len(errors_of(text)) == 2


def test_invalid_toml_is_located() -> None:
    [error] = errors_of(GOOD + "oops = \n")
    assert isinstance(error, RuleError)
    assert error.line == 17
    assert "invalid TOML" in error.message


def test_examples_can_be_optional_for_ad_hoc_rules() -> None:
    text = GOOD.split("[[example]]")[0]
    assert errors_of(text)
    rule, errors = parse_rule(text, require_examples=False)
    assert rule is not None and errors == []


def test_xfail_example_keeps_its_reason() -> None:
    rule, _ = parse_rule(GOOD.replace('match = "x"', 'match = "x"\nxfail = "parser drops it"'))
    assert rule is not None and rule.examples[0].xfail == "parser drops it"


def test_one_broken_rule_does_not_hide_the_others(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "CP-X001.toml").write_text(GOOD)
    (tmp_path / "a" / "CP-X002.toml").write_text(GOOD.replace("CP-X001", "CP-X002").replace("~", "~~"))
    (tmp_path / "b.toml").write_text(GOOD.replace("CP-X001", "CP-X003"))
    rules, errors = load_rules(tmp_path)
    assert [r.id for r in rules] == ["CP-X001", "CP-X003"]
    [error] = errors
    assert error.path == str(tmp_path / "a" / "CP-X002.toml")


def test_duplicate_ids_across_a_directory_are_errors(tmp_path: Path) -> None:
    (tmp_path / "one.toml").write_text(GOOD)
    (tmp_path / "two.toml").write_text(GOOD)
    rules, errors = load_rules(tmp_path)
    assert [r.id for r in rules] == ["CP-X001"]
    [error] = errors
    assert "duplicate rule id 'CP-X001'" in error.message
    assert error.path == str(tmp_path / "two.toml")
    assert error.line == 1


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    rule, [error] = load_rule(tmp_path / "missing.toml")
    assert rule is None and "cannot read" in error.message


def test_extra_frames_via_schemas_argument_and_registry() -> None:
    text = (
        GOOD.replace('on = "events"', 'on = "rabbitmq_queues"')
        .replace("""'message ~ "ACCESS_REFUSED"'""", "'used_memory >= maxmemory and maxmemory > 0'")
        .replace("{hosts}", "{used_memory}")
    )
    schema = {"source": pl.String(), "line": pl.Int64(), "used_memory": pl.Int64(), "maxmemory": pl.Int64()}
    rule, errors = parse_rule(text, schemas={**FRAME_SCHEMAS, "rabbitmq_queues": schema})
    assert errors == [] and rule is not None
    assert "rabbitmq_queues" not in frame_schemas()
    register_frame("rabbitmq_queues", schema)
    try:
        rule, errors = parse_rule(text)
        assert errors == []
    finally:
        from analyzer.engine import schemas

        schemas._EXTRA.pop("rabbitmq_queues", None)


def test_builtin_frames_cannot_be_replaced() -> None:
    with pytest.raises(ValueError):
        register_frame("events", {"x": pl.String()})
