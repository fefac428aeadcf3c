"""The decision tree and the evidence advisor, on real samples."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from analyzer import open_bundle
from analyzer.advice import Advice, advise
from analyzer.api import Bundle
from analyzer.findings import Finding
from tests.conftest import SAMPLES


def _advice(sample: str) -> dict[str, object]:
    rep = open_bundle(SAMPLES / sample).report()
    return rep.to_dict()["advice"][rep.root_causes[0]]  # type: ignore[index,no-any-return]


def _tree(advice: Advice) -> list[tuple[str, str]]:
    return [(step, status) for step, _, status in advice.tree]


def test_auth_failure_passes_network_and_tls_and_fails_at_credentials() -> None:
    # ACCESS_REFUSED is the broker's answer over an open (TLS) session: network and TLS are proven
    tree = _advice("rabbitmq-access-refused")["decision_tree"]
    assert [(s["step"], s["status"]) for s in tree] == [  # type: ignore[attr-defined,index]
        ("network", "passed"), ("tls", "passed"), ("credentials", "failed here"),
        ("resources", "not reached"), ("connection", "not reached")]


def test_tls_failure_comes_right_after_network_and_credentials_were_never_sent() -> None:
    advice = _advice("broker-tls")
    assert [(s["step"], s["status"]) for s in advice["decision_tree"]] == [  # type: ignore[attr-defined,index]
        ("network", "passed"), ("tls", "failed here"), ("credentials", "not reached"),
        ("resources", "not reached"), ("connection", "not reached")]
    assert [c.split()[0] for c in advice["checks"]] == ["openssl"]  # type: ignore[attr-defined]


def test_fd_exhaustion_at_startup_passes_steps_only_on_the_connected_line(tmp_path: Path) -> None:
    # the worker logged `Connected to redis://…` a second before `Too many open files. Aborting...`
    sample = SAMPLES / "fd-exhaustion-startup"
    b = open_bundle(sample)
    root, kinds = _root(b), b.report().kinds.values()
    assert root.category == "broker.fd_exhaustion"
    assert _tree(advise(root, kinds, b.cycles, b.events)) == [
        ("network", "passed"), ("tls", "passed"), ("credentials", "passed"),
        ("resources", "failed here"), ("connection", "not reached")]
    # running out of descriptors proves nothing about the broker by itself
    assert [st for _, st in _tree(advise(root, kinds))] == [
        "not reached", "not reached", "not reached", "failed here", "not reached"]
    # the same log without its first line (rotated away): nothing shows the worker ever connected
    lines = (sample / "worker.log").read_text().splitlines(keepends=True)
    assert lines[0].split("] ", 1)[1].startswith("Connected to redis://")
    (tmp_path / "worker.log").write_text("".join(lines[1:]))
    cut = open_bundle(tmp_path / "worker.log")
    assert _tree(advise(_root(cut), ["celery_log"], cut.cycles, cut.events))[:4] == [
        ("network", "not reached"), ("tls", "not reached"), ("credentials", "not reached"),
        ("resources", "failed here")]


def test_heartbeat_loss_after_connected_proves_every_step_before_it() -> None:
    b = open_bundle(SAMPLES / "heartbeat-stall-hang")
    rep = b.report()
    # the broker's `missed heartbeats` and the worker's ConnectionForced (explained by the blocked thread)
    beats = [f for f in rep.findings if f.category == "broker.heartbeat"]
    assert beats
    for root in beats:
        assert _tree(advise(root, rep.kinds.values(), b.cycles, b.events)) == [
            ("network", "passed"), ("tls", "passed"), ("credentials", "passed"), ("resources", "passed"),
            ("connection", "failed here")]
        # without the log's `Connected to`, the open connection still proves the login, not the limits
        assert _tree(advise(root, []))[2:4] == [("credentials", "passed"), ("resources", "not reached")]


def test_refused_broker_fails_at_network_with_reachability_checks() -> None:
    advice = _advice("broker-refused")
    assert advice["decision_tree"][0]["status"] == "failed here"  # type: ignore[index]
    assert any("PING" in c for c in advice["checks"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("sample", ["broker-unreachable", "broker-unreachable-amqp"])
def test_no_route_fails_at_network_and_asks_for_the_route(sample: str) -> None:
    advice = _advice(sample)
    assert [(s["step"], s["status"]) for s in advice["decision_tree"]][:2] == [  # type: ignore[index]
        ("network", "failed here"), ("tls", "not reached")]
    commands = [c["command"] for c in advice["collect"]]  # type: ignore[index]
    assert commands[0] == "ip route get BROKER_IP; traceroute -T -p PORT BROKER_HOST"


def test_refused_broker_is_not_asked_for_routes() -> None:
    # the host answered (RST): routes are not the question
    collect = _advice("broker-refused").get("collect", [])
    assert not any("ip route" in c["command"] for c in collect)  # type: ignore[attr-defined,index]


def test_sigkill_asks_for_the_kernel_log_the_bundle_lacks() -> None:
    commands = [c["command"] for c in _advice("worker-sigkill")["collect"]]  # type: ignore[index]
    assert any(c.startswith("dmesg -T") for c in commands)


def test_artifacts_already_in_the_bundle_are_not_asked_for() -> None:
    # redis-maxclients ships `redis-cli INFO` output: the advisor must not ask for it again
    advice = _advice("redis-maxclients")
    assert "collect" not in advice


def test_healthy_bundle_has_no_advice() -> None:
    assert open_bundle(SAMPLES / "healthy").report().to_dict()["advice"] == {}


def _root(bundle: Bundle) -> Finding:
    rep = bundle.report()
    return next(f for f in rep.findings if f.id == rep.root_causes[0])


def test_pipe_cycle_asks_for_proc_ps_and_pyspy_not_gdb() -> None:
    pipe = SAMPLES / "deadlock-pipe"
    # the whole bundle holds /proc, ps and py-spy captures already: nothing to ask, and never gdb
    assert "collect" not in _advice("deadlock-pipe")
    # only the --subprocesses dump: the /proc and ps captures are what would prove the cycle
    b = open_bundle([pipe / f for f in ("worker.log", "inspect-active.json", "pyspy-subprocesses.txt")])
    rep = b.report()
    commands = [c["command"] for c in rep.to_dict()["advice"][rep.root_causes[0]]["collect"]]  # type: ignore[index]
    assert commands == ["ls -l /proc/PID/fd /proc/CHILD/fd",
                        "grep -H . /proc/PID/{stat,wchan,syscall,stack} /proc/CHILD/{stat,wchan,syscall,stack}",
                        "ps -eo pid,ppid,stat,wchan:32,cmd"]
    # with none of them, py-spy of the process tree too
    advice = advise(_root(b), ["celery_log"], b.cycles)
    assert [a.command for a in advice.missing][-1] == "py-spy dump --subprocesses --locals --pid PID"
    assert not any("gdb" in a.command for a in advice.missing)


def test_lock_cycle_still_asks_for_gdb() -> None:
    b = open_bundle(SAMPLES / "deadlock-lock")
    assert b.cycles["kind"].to_list() == ["lock"]
    advice = advise(_root(b), ["celery_log", "pyspy"], b.cycles)
    assert [a.command for a in advice.missing] == ["gdb -p PID -batch -ex 'thread apply all bt' -ex 'info threads'"]


def _commands(advice: Advice) -> list[str]:
    return [*advice.checks, *(a.command for a in advice.missing)]


def test_amqp_bundle_is_not_sent_to_redis() -> None:
    # heartbeat-stall-hang: `Connected to amqp://…`, a RabbitMQ server log, py-amqp's ConnectionForced
    b = open_bundle(SAMPLES / "heartbeat-stall-hang")
    rep = b.report()
    beats = [f for f in rep.findings if f.category == "broker.heartbeat"]
    assert beats
    for root in beats:
        for advice in (advise(root, rep.kinds.values(), b.cycles, b.events), advise(root, rep.kinds.values())):
            commands = _commands(advice)
            assert any(c.startswith("rabbitmqctl list_connections") for c in commands)
            assert not any("redis" in c for c in commands)


def test_redis_bundle_is_not_sent_to_rabbitmq() -> None:
    # broker-lost: a Redis broker killed and restarted (`Connected to redis://…`, `redis-cli INFO`)
    b = open_bundle(SAMPLES / "broker-lost")
    rep = b.report()
    root = _root(b)
    for advice in (rep.advice[root.id], advise(root, rep.kinds.values(), b.cycles, b.events)):
        commands = _commands(advice)
        assert "redis-cli -h BROKER_HOST -p PORT INFO server  # uptime_in_seconds: did it restart?" in commands
        assert not any("rabbitmq" in c for c in commands)


def test_redis_auth_failure_asks_for_the_acl_log_not_the_rabbitmq_log() -> None:
    advice = _advice("redis-wrong-password")
    assert advice["checks"] == ["redis-cli -h BROKER_HOST -p PORT --user USER --pass '***' PING"]
    assert [c["command"] for c in advice["collect"]] == [  # type: ignore[index]
        "redis-cli -h BROKER_HOST -p PORT --user ADMIN --pass '***' ACL LOG 10"]


@pytest.mark.parametrize(("sample", "ours", "theirs"), [
    ("broker-refused", "redis-cli -h BROKER_HOST -p PORT PING", "rabbitmq"),
    ("broker-refused-amqp", "rabbitmq-diagnostics check_port_connectivity  # on the RabbitMQ node", "redis")])
def test_network_checks_follow_the_broker_url(sample: str, ours: str, theirs: str) -> None:
    # only the worker's `Cannot connect to redis://…` / `amqp://…` names the broker here
    checks: list[str] = _advice(sample)["checks"]  # type: ignore[assignment]
    assert checks == ["getent hosts BROKER_HOST  # does the name resolve?",
                      "nc -vz BROKER_HOST PORT  # does anything accept connections?", ours]
    assert not any(theirs in c for c in checks)


def test_both_brokers_are_offered_only_when_the_transport_is_unknown() -> None:
    # the log line alone quotes `AccessRefused(403, …)` without naming a URL or module: unknown
    log = SAMPLES / "rabbitmq-access-refused" / "worker.log"
    b = open_bundle(log)
    root = _root(b)
    first_lines = dataclasses.replace(root, evidence=[dataclasses.replace(e, text=e.text.split("\n")[0])
                                                      for e in root.evidence])
    both = advise(first_lines, ["celery_log"]).checks
    assert any(c.startswith("rabbitmqctl") for c in both) and any(c.startswith("redis-cli") for c in both)
    # the evidence as the report shows it ends with the traceback's exception line, which names py-amqp
    assert all(c.startswith("rabbitmqctl") for c in advise(root, ["celery_log"]).checks)
    # its traceback's exception type (amqp.exceptions.AccessRefused) names py-amqp
    assert b.events.filter(b.events["exc_type"] == "amqp.exceptions.AccessRefused").height == 1
    amqp = advise(root, ["celery_log"], b.cycles, b.events).checks
    assert amqp and all(c.startswith("rabbitmqctl") for c in amqp)


def test_the_report_gives_the_advisor_the_logs() -> None:
    """`report()` passes the events: fd-exhaustion-startup's `Connected to redis://…` proves the steps
    before the failure, and names the transport, so no RabbitMQ command is offered."""
    advice = _advice("fd-exhaustion-startup")
    assert [(s["step"], s["status"]) for s in advice["decision_tree"]][:4] == [  # type: ignore[attr-defined,index]
        ("network", "passed"), ("tls", "passed"), ("credentials", "passed"), ("resources", "failed here")]
    commands = " ".join(str(c) for c in advice["checks"])  # type: ignore[attr-defined]
    assert "rabbitmq" not in commands
