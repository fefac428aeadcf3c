"""ENETUNREACH (a `throw` route, errno 101) is the same diagnosis as EHOSTUNREACH: no route to the broker,
so the operator is sent to the routing table, not to the broker process or the connect timeout."""

from __future__ import annotations

import pytest

from analyzer import open_bundle
from tests.conftest import SAMPLES


@pytest.mark.parametrize("sample", ["broker-net-unreachable", "broker-net-unreachable-amqp"])
def test_network_unreachable_is_a_missing_route(sample: str) -> None:
    rep = open_bundle(SAMPLES / sample).report()
    first = next(f for f in rep.findings if f.id == rep.root_causes[0])
    assert (first.rule, first.category, first.count) == ("CP-B018", "broker.unreachable", 3)
    assert first.evidence and all("Network is unreachable" in e.text for e in first.evidence)
    advice = rep.advice[first.id]
    assert [(step, status) for step, _, status in advice.tree][:2] == [
        ("network", "failed here"), ("tls", "not reached")]
    assert advice.missing[0].command == "ip route get BROKER_IP; traceroute -T -p PORT BROKER_HOST"
