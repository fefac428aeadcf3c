"""Causes from the causal model, incidents as intervals with their state at the logs' end, baselines.

Findings are built in the tests (a Redis blip, a standing ValueError on a 7-hour log); the
heartbeat case runs on the real `samples/heartbeat-stall-hang`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from analyzer import open_bundle
from analyzer.categories import CATEGORIES
from analyzer.causal import ModelError, links_between, model, parse_model
from analyzer.diagnosis import Context, Recovery, diagnose, incidents, merge_fingerprints, with_baselines
from analyzer.findings import Evidence, Finding
from tests.conftest import SAMPLES

T0 = datetime(2026, 12, 7, 3, 12, 7)
HOST = "w1@sample"


def _f(category: str, first: datetime | None, last: datetime | None = None, *, rule: str = "", count: int = 1,
       severity: str = "error", hosts: tuple[str, ...] = (HOST,), times: tuple[datetime, ...] = (),
       summary: str = "s") -> Finding:
    def iso(t: datetime | None) -> str | None:
        return t.isoformat(timespec="milliseconds") if t else None

    return Finding(rule=rule or f"R-{category}", category=category, severity=severity, confidence=0.9,
                   title=category, summary=summary, count=count, first_seen=iso(first),
                   last_seen=iso(last or first), hosts=list(hosts), times=times,
                   evidence=[Evidence("worker.log", 1, "x")], remediation=[f"fix {category}"])


def _ctx(*, recovered: datetime | None = None, first: datetime = T0 - timedelta(minutes=1),
         last: datetime | None = None) -> Context:
    recs = {HOST: [Recovery(recovered, Evidence("worker.log", 40, "Connected to redis://127.0.0.1:6390/0"))]} \
        if recovered else {}
    return Context(recoveries=recs, first_record={HOST: first}, last_record={HOST: last or recovered or T0})


def _run(findings: list[Finding], ctx: Context) -> tuple[list[Finding], list[str], list]:
    ordered, roots = diagnose(with_baselines(merge_fingerprints(findings), ctx), ctx)
    found, roots = incidents(ordered, roots, ctx)
    return ordered, roots, found


def _blip() -> list[Finding]:
    lost = _f("broker.connection_lost", T0, severity="warning")
    refused = _f("broker.connection_refused", T0 + timedelta(seconds=1), T0 + timedelta(seconds=3),
                 severity="critical", count=2)
    dns = _f("broker.dns", T0 + timedelta(seconds=6), severity="critical")
    return [lost, refused, dns]


def test_a_dns_failure_inside_a_refused_outage_is_its_symptom_and_the_outage_recovered() -> None:
    lost, refused, dns = _blip()
    _, roots, found = _run([dns, refused, lost], _ctx(recovered=T0 + timedelta(seconds=12),
                                                      last=T0 + timedelta(minutes=5)))
    assert roots == [lost.id]
    assert dns.explained_by and "outage" in next(iter(dns.because.values()))
    [inc] = found
    assert (inc.root, inc.state) == (lost.id, "recovered")
    # the outage ends when the worker is connected again, not at its last failed retry
    assert (datetime.fromisoformat(inc.start or ""), datetime.fromisoformat(inc.end or "")) == (
        T0, T0 + timedelta(seconds=12))
    assert inc.headline() == "recovered after 12 s"
    assert {lost.incident, refused.incident, dns.incident} == {inc.id}


def test_a_dns_failure_after_the_reconnect_is_not_explained_by_the_earlier_outage() -> None:
    lost, refused, dns = _blip()
    _, roots, _ = _run([lost, refused, dns], _ctx(recovered=T0 + timedelta(seconds=4),
                                                  last=T0 + timedelta(minutes=5)))
    assert not dns.explained_by and dns.id in roots


def test_failures_until_the_hosts_last_record_are_still_failing() -> None:
    lost, refused, dns = _blip()
    _, _, [inc] = _run([lost, refused, dns], _ctx(last=T0 + timedelta(seconds=20)))
    assert inc.state == "still_failing" and inc.headline() == "still failing at the end of the logs"


def test_failures_that_stop_long_before_the_end_without_a_recovery_record_are_unknown() -> None:
    lost, refused, dns = _blip()
    _, _, [inc] = _run([lost, refused, dns], _ctx(last=T0 + timedelta(hours=1)))
    assert inc.state == "unknown"


def test_the_blocked_consumer_thread_is_the_root_cause_of_missed_heartbeats() -> None:
    report = open_bundle(SAMPLES / "heartbeat-stall-hang").report()
    [root] = report.root_causes
    blocked = report.finding(root)
    assert blocked.category == "io.blocking"
    beats = [f for f in report.findings if f.category == "broker.heartbeat"]
    assert beats and all(f.explained_by for f in beats)
    assert any("consumer loop" in why for f in beats for why in f.because.values())
    [inc] = report.incidents
    assert inc.root == root and inc.state == "still_failing"
    assert "queue celery: 3 ready, 0 consumers" in inc.state_reason
    assert report.to_dict()["incidents"][0]["headline"] == "still failing at the end of the logs"


def test_a_blocked_thread_outside_the_consumer_loop_explains_no_heartbeat() -> None:
    blocked = _f("io.blocking", None)
    beat = _f("broker.heartbeat", T0)
    _, roots, _ = _run([beat, blocked], Context())  # no thread row runs the consumer loop
    assert not beat.explained_by and set(roots) == {beat.id, blocked.id}


def _steady(hours: int = 7, every: timedelta = timedelta(minutes=20)) -> tuple[datetime, ...]:
    n = int(timedelta(hours=hours) / every)
    return tuple(T0 + every * i for i in range(n))


def test_a_steady_low_rate_error_is_standing_not_the_root_cause_of_the_incident() -> None:
    times = _steady()
    noise = _f("task.exception", times[0], times[-1], count=len(times), times=times, summary="ValueError")
    outage = _f("broker.connection_refused", T0 + timedelta(hours=3), severity="critical")
    ctx = _ctx(first=T0, last=T0 + timedelta(hours=7))
    _, roots, found = _run([noise, outage], ctx)
    assert roots == [outage.id]
    assert noise.baseline is not None and noise.baseline.kind == "standing" and noise.incident is None
    assert noise.baseline.rate_per_hour == pytest.approx(len(times) / 7, rel=0.01)
    assert [i.root for i in found] == [outage.id]


def test_a_standing_error_alone_is_still_reported_as_the_root_cause() -> None:
    times = _steady()
    noise = _f("task.exception", times[0], times[-1], count=len(times), times=times)
    _, roots, _ = _run([noise], _ctx(first=T0, last=T0 + timedelta(hours=7)))
    assert roots == [noise.id]


def test_a_burst_against_its_own_baseline_is_the_root_cause_over_the_burst() -> None:
    burst_at = T0 + timedelta(hours=4)
    times = tuple(sorted(_steady() + tuple(burst_at + timedelta(seconds=s) for s in range(30))))
    f = _f("task.exception", times[0], times[-1], count=len(times), times=times)
    _, roots, [inc] = _run([f], _ctx(first=T0, last=T0 + timedelta(hours=7)))
    assert roots == [f.id] and f.baseline is not None and f.baseline.kind == "burst"
    assert f.baseline.burst_count >= 30
    assert inc.start is not None and inc.start >= (burst_at - timedelta(minutes=40)).isoformat()


def test_one_fingerprint_on_three_hosts_is_one_finding() -> None:
    parts = [_f("task.exception", T0 + timedelta(minutes=i), hosts=(f"w{i}@app",),
                summary=f"proj.parse raised ValueError 3 time(s) on w{i}@app: bad row {i * 17}") for i in range(3)]
    merged = merge_fingerprints(parts)
    assert len(merged) == 1 and merged[0].count == 3 and merged[0].hosts == ["w0@app", "w1@app", "w2@app"]


def test_the_causal_model_names_only_known_categories_with_a_mechanism() -> None:
    assert model()
    assert all(link.cause in CATEGORIES and link.effect in CATEGORIES and link.mechanism for link in model())
    assert links_between("io.blocking", "broker.heartbeat")
    assert not links_between("broker.heartbeat", "io.blocking")  # the direction the issue saw reversed
    with pytest.raises(ModelError, match="unknown category"):
        parse_model('[[link]]\ncause = "broker.nope"\neffect = "task.stuck"\nmechanism = "m"\n')
    with pytest.raises(ModelError, match="no mechanism"):
        parse_model('[[link]]\ncause = "broker.dns"\neffect = "task.stuck"\n')
