"""Causal ranking on real samples: one incident seen from two sides is one root cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import open_bundle
from analyzer.diagnosis import diagnose
from analyzer.findings import Finding
from tests.conftest import SAMPLES


@pytest.mark.parametrize(("sample", "cause", "effect"), [
    # RabbitMQ's log (19:30:03.637) and the worker's channel error (03.641): the broker's side came first
    ("rabbitmq-ack-timeout", "CP-B016", "CP-B015"),
    # PostgreSQL's `too many clients` (04.612) and the task's OperationalError (04.661)
    ("pg-too-many-clients", "CP-D002@postgres", "CP-D002@w1@sample"),
    # MemoryError in the pool, then the child recycled over worker_max_memory_per_child 5 s later
    ("worker-memory", "CP-W010", "CP-W011"),
])
def test_two_sides_of_one_incident_give_one_root_cause(sample: str, cause: str, effect: str) -> None:
    report = open_bundle(SAMPLES / sample).report()

    def pick(spec: str) -> str:
        rule, _, host = spec.partition("@")
        [f] = [f for f in report.findings if f.rule == rule and (not host or f.hosts == [host])]
        return f.id

    a, b = pick(cause), pick(effect)
    assert a in report.root_causes and b not in report.root_causes
    assert a in report.finding(b).explained_by
    assert len(report.root_causes) == 1


def test_same_category_on_other_hosts_stays_apart() -> None:
    """Redis refusing w1@sample's password and RabbitMQ refusing `worker`'s login, 9 s apart: two nodes,
    two incidents, two root causes."""
    report = open_bundle([SAMPLES / "redis-wrong-password", SAMPLES / "rabbitmq-access-refused"]).report()
    auth = [f for f in report.findings if f.category == "broker.auth"]
    assert sorted(h for f in auth for h in f.hosts) == ["rabbitmq", "w1@sample", "worker"]
    roots = [f for f in auth if f.id in report.root_causes]
    assert sorted(h for f in roots for h in f.hosts) == ["rabbitmq", "w1@sample"]  # RabbitMQ's log is no Redis
    [worker] = [f for f in auth if f.hosts == ["worker"]]  # RabbitMQ refusing `worker`: one event, two sides
    assert [report.finding(c).hosts for c in worker.explained_by] == [["rabbitmq"]]
    assert len({f.incident for f in roots}) == 2


def _finding(rule: str, first: str, last: str, hosts: list[str]) -> Finding:
    return Finding(rule=rule, category="broker.ack_timeout", severity="error", confidence=0.9, title="t",
                   summary="s", count=1, first_seen=first, last_seen=last, hosts=hosts)


def test_same_category_long_after_is_another_incident() -> None:
    early = _finding("CP-B016", "2026-11-28T19:30:03.637", "2026-11-28T19:30:03.700", ["rabbitmq"])
    late = _finding("CP-B015", "2026-11-28T19:45:00.000", "2026-11-28T19:45:00.000", ["w1@sample"])
    soon = _finding("CP-B015", "2026-11-28T19:34:00.000", "2026-11-28T19:34:00.000", ["w1@sample"])
    _, roots = diagnose([early, late])
    assert len(roots) == 2
    _, roots = diagnose([early, soon])
    assert roots == [early.id] and soon.explained_by == [early.id]


def test_clock_drift_between_two_nodes_is_one_finding() -> None:
    report = open_bundle(SAMPLES / "clock-drift").report()
    [f] = [f for f in report.findings if f.category == "events.clock_drift"]
    assert f.hosts == ["w1@sample", "w2@sample"] and f.count == 2 and report.root_causes == [f.id]


def test_one_rules_groups_on_one_side_are_separate_incidents() -> None:
    """Two exception types raised on one worker a minute apart: CP-A001 groups them apart, and neither
    explains the other."""
    first = Finding(rule="CP-A001", category="task.exception", severity="error", confidence=0.5, title="t",
                    summary="ZeroDivisionError", count=3, first_seen="2026-11-28T18:56:15.856",
                    last_seen="2026-11-28T18:56:17.000", hosts=["w1@sample"])
    second = Finding(rule="CP-A001", category="task.exception", severity="error", confidence=0.5, title="t",
                     summary="KeyError", count=1, first_seen="2026-11-28T18:58:00.120",
                     last_seen="2026-11-28T18:58:00.120", hosts=["w1@sample"])
    _, roots = diagnose([first, second])
    assert roots == [first.id, second.id] and not second.explained_by


def _cause(category: str, explains: list[str]) -> Finding:
    return Finding(rule=f"R-{category}", category=category, severity="error", confidence=0.9, title=category,
                   summary="s", count=1, first_seen="2026-11-28T19:22:28.237", last_seen="2026-11-28T19:22:28.237",
                   hosts=["w1@sample"], explains_categories=explains)


def test_findings_explaining_each_other_at_the_same_moment_leave_one_root() -> None:
    # broker-lost's refused connection and lost connection logged in the same millisecond: each rule says
    # its category can cause the other's, which made a cycle and no root cause ("HEALTHY", exit 1)
    refused = _cause("broker.connection_refused", ["broker.connection_lost"])
    lost = _cause("broker.connection_lost", ["broker.connection_refused"])
    ordered, roots = diagnose([lost, refused])
    assert len(roots) == 1 and all(f.id in roots or f.explained_by for f in ordered)
    # a longer cycle: each of three explains the next
    a = _cause("broker.connection_refused", ["broker.connection_lost"])
    b = _cause("broker.connection_lost", ["broker.heartbeat"])
    c = _cause("broker.heartbeat", ["broker.connection_refused"])
    ordered, roots = diagnose([c, b, a])
    assert len(roots) == 1
    chain = {f.id: f.explains for f in ordered}
    seen, todo = set(), list(roots)
    while todo:
        fid = todo.pop()
        seen.add(fid)
        todo += [e for e in chain[fid] if e not in seen]
    assert seen == set(chain)


def test_a_cut_log_where_refused_and_lost_share_a_millisecond_has_a_root_cause(tmp_path: Path) -> None:
    lines = (SAMPLES / "broker-lost" / "worker.log").read_text().splitlines()
    stamp = lines[13][:25]  # line 14's `[2026-… ,mmm:`
    lines[24] = stamp + lines[24][25:]
    (tmp_path / "worker.log").write_text("\n".join(lines) + "\n")
    report = open_bundle(tmp_path / "worker.log").report()
    assert report.verdict == "unhealthy" and report.root_causes


@pytest.mark.parametrize(("sample", "log_rule", "info_rule"), [
    ("redis-oom", "CP-B008", "CP-B019"), ("redis-maxclients", "CP-B009", "CP-B020")])
def test_a_redis_info_snapshot_alone_is_a_root_cause_and_beside_the_logs_their_evidence(
        sample: str, log_rule: str, info_rule: str) -> None:
    alone = open_bundle(SAMPLES / sample / "redis-info.txt").report()
    assert [alone.finding(r).rule for r in alone.root_causes] == [info_rule]
    full = open_bundle(SAMPLES / sample).report()
    [log] = [f for f in full.findings if f.rule == log_rule]
    [info] = [f for f in full.findings if f.rule == info_rule]
    assert full.root_causes[0] == log.id and info.explained_by == [log.id] and info.id not in full.root_causes
    # the snapshot's evidence is its values, not its first line (`# Server`)
    assert info.evidence[0].text.startswith("redis_version=7.0.15") and not info.evidence[0].detail


def test_an_error_no_rule_names_is_not_the_root_cause_beside_one_a_rule_names() -> None:
    # samples/broker-blip-recovered: Celery logs "Error on restarting Gossip: AttributeError(...)" as the
    # connection drops; no rule names it, and the outage explains it
    report = open_bundle(SAMPLES / "broker-blip-recovered").report()
    [unclassified] = [f for f in report.findings if f.category == "error.unclassified"]
    assert "Error on restarting Gossip" in unclassified.summary
    assert unclassified.id not in report.root_causes
    assert [report.finding(c).category for c in unclassified.explained_by] == ["broker.connection_lost"]
    assert report.finding(report.root_causes[0]).category == "broker.connection_lost"


def test_a_worker_an_hour_ahead_of_the_broker_is_named_and_its_incident_timed_on_one_clock() -> None:
    # samples/heartbeat-missed-clock-offset: the worker ran with TZ=Etc/GMT-1, RabbitMQ logs UTC
    report = open_bundle(SAMPLES / "heartbeat-missed-clock-offset").report()
    [clock] = report.clocks
    assert clock.startswith("w1@sample's clock is 1 h ahead of rabbitmq's (a zone difference")
    assert report.to_dict()["clocks"] == [clock]
    [incident] = report.incidents
    assert incident.state == "recovered" and incident.duration_s is not None and incident.duration_s < 10
    heartbeat = report.finding(report.root_causes[0])
    assert heartbeat.category == "broker.heartbeat" and heartbeat.first_seen is not None
    assert heartbeat.first_seen.startswith("2026-12-08T02:55")  # RabbitMQ wrote 01:55 UTC: shown on the worker's clock


def test_clocks_that_agree_raise_no_warning() -> None:
    report = open_bundle(SAMPLES / "heartbeat-missed").report()
    assert report.clocks == [] and "clocks" not in report.to_dict()
