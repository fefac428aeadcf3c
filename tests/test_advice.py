"""The decision tree and the evidence advisor, on real samples."""

from __future__ import annotations

from analyzer import open_bundle
from tests.conftest import SAMPLES


def _advice(sample: str) -> dict[str, object]:
    rep = open_bundle(SAMPLES / sample).report()
    return rep.to_dict()["advice"][rep.root_causes[0]]  # type: ignore[index,no-any-return]


def test_auth_failure_passes_network_and_fails_at_credentials() -> None:
    tree = _advice("rabbitmq-access-refused")["decision_tree"]
    assert [(s["step"], s["status"]) for s in tree][:3] == [  # type: ignore[index]
        ("network", "passed"), ("credentials", "failed here"), ("resources", "not reached")]


def test_refused_broker_fails_at_network_with_reachability_checks() -> None:
    advice = _advice("broker-refused")
    assert advice["decision_tree"][0]["status"] == "failed here"  # type: ignore[index]
    assert any("PING" in c for c in advice["checks"])  # type: ignore[attr-defined]


def test_sigkill_asks_for_the_kernel_log_the_bundle_lacks() -> None:
    commands = [c["command"] for c in _advice("worker-sigkill")["collect"]]  # type: ignore[index]
    assert any(c.startswith("dmesg -T") for c in commands)


def test_artifacts_already_in_the_bundle_are_not_asked_for() -> None:
    # redis-maxclients ships `redis-cli INFO` output: the advisor must not ask for it again
    advice = _advice("redis-maxclients")
    assert "collect" not in advice


def test_healthy_bundle_has_no_advice() -> None:
    assert open_bundle(SAMPLES / "healthy").report().to_dict()["advice"] == {}
