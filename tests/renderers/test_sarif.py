"""SARIF 2.1.0: valid against the official schema for every sample, GitHub's limits, rules from
rule metadata, stable fingerprints."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from analyzer.findings import Evidence
from analyzer.renderers import RenderOptions
from analyzer.renderers.sarif import FINGERPRINT_KEY, MAX_RESULTS, fingerprint, render
from tests.conftest import sample_dirs
from tests.renderers import (
    broken_rules_report,
    catalogue_options,
    custom_layout_report,
    finding,
    frozen_options,
    make_report,
    sample_report,
)

SCHEMA = Path(__file__).resolve().parent.parent / "data" / "sarif-schema-2.1.0.json"


@cache
def validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def sarif_of(report, options=None) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(render(report, options or RenderOptions()))


def check_github_limits(log: dict) -> None:  # type: ignore[type-arg]
    run = log["runs"][0]
    assert len(run["results"]) <= MAX_RESULTS
    ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    for res in run["results"]:
        assert res["ruleId"] in ids
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] and loc["region"]["startLine"] >= 1


@pytest.mark.parametrize("sample", [p.name for p in sample_dirs()] + ["app-exception", "healthy"])
def test_every_sample_gives_valid_sarif(sample: str) -> None:
    for log in (sarif_of(sample_report(sample, frozen_rules=False), catalogue_options()),
                sarif_of(sample_report(sample), frozen_options())):
        errors = sorted(validator().iter_errors(log), key=lambda e: list(e.path))
        assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
        check_github_limits(log)


def test_driver_rules_come_from_rule_metadata() -> None:
    run = sarif_of(sample_report("worker-sigkill"), frozen_options())["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "celery-postmortem" and driver["informationUri"].startswith("https://")
    rule = next(r for r in driver["rules"] if r["id"] == "G-W001")
    assert rule["shortDescription"]["text"] == "A pool child was killed by a signal"
    assert rule["fullDescription"]["text"].startswith("The worker's main process reports")
    assert rule["help"]["text"].startswith("The task the child was running is lost")
    assert "task_reject_on_worker_lost" in rule["help"]["text"]
    assert rule["properties"]["category"] == "worker.lost"
    assert rule["defaultConfiguration"]["level"] == "error"
    assert {r["id"] for r in driver["rules"]} == {"G-A001", "G-B001", "G-T001", "G-W001"}


def test_results_carry_level_message_location_and_root_cause_mark() -> None:
    run = sarif_of(sample_report("worker-sigkill"), frozen_options())["runs"][0]
    first, second = run["results"]
    assert first["ruleId"] == "G-W001" and first["level"] == "error"
    assert first["message"]["text"].startswith("w1@sample: 1 pool child(ren) died")
    loc = first["locations"][0]["physicalLocation"]
    assert loc == {"artifactLocation": {"uri": "worker.log"}, "region": {"startLine": 10}}
    assert first["properties"]["rootCause"] is True and first["properties"]["rootCauseRank"] == 1
    assert first["properties"]["explains"] == ["f2"]
    assert second["level"] == "warning" and second["properties"]["rootCause"] is False
    assert run["properties"]["rootCauses"] == ["f1"]


@pytest.mark.parametrize(("severity", "level"), [("critical", "error"), ("error", "error"),
                                                 ("warning", "warning"), ("info", "note")])
def test_severity_maps_to_level(severity: str, level: str) -> None:
    log = sarif_of(make_report([finding(severity=severity)]))
    assert log["runs"][0]["results"][0]["level"] == level
    assert log["runs"][0]["tool"]["driver"]["rules"][0]["defaultConfiguration"]["level"] == level


def test_finding_without_evidence_points_at_line_1_of_the_first_input() -> None:
    log = sarif_of(make_report([finding(evidence=[])], sources=("a.log", "b.log")))
    assert not list(validator().iter_errors(log))
    loc = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc == {"artifactLocation": {"uri": "a.log"}, "region": {"startLine": 1}}


def test_archive_member_source_is_a_relative_uri() -> None:
    log = sarif_of(make_report([finding(evidence=[Evidence("incident.tar.gz:logs/w 1.log", 5, "x")])]))
    assert not list(validator().iter_errors(log))
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "incident.tar.gz%3Alogs/w%201.log"


def test_fingerprint_ignores_line_numbers_timestamps_and_ports() -> None:
    a = finding(evidence=[Evidence("worker.log", 1, "[2026-11-28 19:01:04,915: ERROR/MainProcess] consumer: "
                                   "Cannot connect to redis://:**@127.0.0.1:45891/0: Error 111")])
    b = finding(first_seen="2027-01-01T00:00:00.000",
                evidence=[Evidence("worker.log", 977, "[2027-01-01 00:00:00,001: ERROR/MainProcess] consumer: "
                                   "Cannot connect to redis://:**@127.0.0.1:51234/0: Error 111")])
    assert fingerprint(a) == fingerprint(b)


def test_fingerprint_differs_by_rule_category_and_host() -> None:
    base = finding()
    assert fingerprint(base) != fingerprint(finding(rule="CP-X002"))
    assert fingerprint(base) != fingerprint(finding(category="broker.dns"))
    assert fingerprint(base) != fingerprint(finding(hosts=["w2@sample"]))


def test_fingerprint_is_in_partial_fingerprints() -> None:
    res = sarif_of(make_report([finding()]))["runs"][0]["results"][0]
    assert res["partialFingerprints"] == {FINGERPRINT_KEY: fingerprint(finding())}


def test_inconclusive_run_says_so_and_stays_valid() -> None:
    log = sarif_of(custom_layout_report(), frozen_options())
    assert not list(validator().iter_errors(log))
    run = log["runs"][0]
    assert run["properties"]["verdict"] == "inconclusive" and run["properties"]["healthy"] is False
    notes = run["invocations"][0]["toolConfigurationNotifications"]
    assert [n["level"] for n in notes] == ["error", "error"]
    assert notes[0]["message"]["text"].startswith("INCONCLUSIVE: nothing in the input could be analysed: "
                                                  "worker.log: text in no known layout")
    assert run["invocations"][0]["executionSuccessful"] is False  # as the exit code 2 says
    assert sarif_of(sample_report("healthy"), frozen_options())["runs"][0]["invocations"][0]["executionSuccessful"]


def test_rule_errors_are_error_notifications(tmp_path: Path) -> None:
    log = sarif_of(broken_rules_report(tmp_path), frozen_options())
    assert not list(validator().iter_errors(log))
    assert log["runs"][0]["properties"]["rootCauses"]
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is False
    texts = [n["message"]["text"] for n in log["runs"][0]["invocations"][0]["toolConfigurationNotifications"]]
    assert [t.split(": ", 1)[0].rsplit("/", 1)[-1] for t in texts] == ["G-U010.toml", "G-U011.toml:8:9"]


# --- paths that resolve in the repository (--path-prefix, paths from the working directory) ------


def test_artifact_paths_and_prefix_name_the_file_as_the_repository_does() -> None:
    opts = replace(frozen_options(), artifact_paths=(("worker.log", "incidents/0412/worker.log"),),
                   path_prefix="app/")
    log = sarif_of(sample_report("worker-sigkill"), opts)
    assert not list(validator().iter_errors(log))
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for res in log["runs"][0]["results"] for loc in res["locations"] + res.get("relatedLocations", [])}
    assert uris == {"app/incidents/0412/worker.log"}


def test_a_prefix_alone_goes_before_the_bundle_relative_name_and_is_percent_encoded() -> None:
    rep = make_report([finding(evidence=[Evidence("a.tar.gz:worker.log", 3, "x")])])
    log = sarif_of(rep, RenderOptions(path_prefix="ci artifacts"))
    assert not list(validator().iter_errors(log))
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "ci%20artifacts/a.tar.gz%3Aworker.log"


def test_a_finding_without_evidence_is_located_at_the_prefixed_first_input() -> None:
    rep = make_report([finding(evidence=[])], sources=("worker.log",))
    log = sarif_of(rep, RenderOptions(path_prefix="repo", artifact_paths=(("worker.log", "b/worker.log"),)))
    loc = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "repo/b/worker.log"
