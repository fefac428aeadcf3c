"""Container status (`kubectl describe pod`, `kubectl get pod -o json`, `docker inspect`) as users
pasted it in public threads (tests/data/containers, each file's thread in SOURCES.toml): sniffed by
content, read into the `containers` frame, cut copies and hostile input survived with every line
counted."""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from analyzer import open_bundle, sniff
from analyzer.api import Bundle
from analyzer.sources import container_json, kubectl_describe
from analyzer.sources.celery_log import Coverage
from analyzer.sources.container_rows import MAX_TEXT, quantity_bytes
from analyzer.sources.lines import read_lines

DATA = Path(__file__).parent.parent / "data" / "containers"
SOURCES = tomllib.loads((DATA / "SOURCES.toml").read_text())["files"]
KIND = {"describe": "kubectl_describe", "pod.json": "kubectl_json", "laststate.json": "kubectl_json",
        "inspect.json": "docker_inspect", "state.json": "docker_inspect", "worker.log": "celery_log"}
PARSE = {"kubectl_describe": kubectl_describe.parse_lines, "kubectl_json": container_json.parse_pods,
         "docker_inspect": container_json.parse_docker}


def _kind(name: str) -> str:
    return next(kind for tail, kind in KIND.items() if tail in name)


def _parse(name: str, data: bytes | None = None) -> tuple[pl.DataFrame, Coverage]:
    raw = (DATA / name).read_bytes() if data is None else data
    return PARSE[_kind(name)](read_lines(raw), source=name)


def test_every_file_has_its_thread() -> None:
    files = {p.name for p in DATA.iterdir() if p.name != "SOURCES.toml"}
    assert files == set(SOURCES)
    assert all(entry["url"].startswith("https://github.com/") for entry in SOURCES.values())


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_each_copy_is_sniffed_as_what_it_is(name: str) -> None:
    assert sniff.sniff((DATA / name).read_bytes()) == _kind(name)


@pytest.mark.parametrize("name", sorted(n for n in SOURCES if _kind(n) in PARSE))
def test_every_line_is_counted_and_reading_is_deterministic(name: str) -> None:
    df, cov = _parse(name)
    again, _ = _parse(name)
    lines = read_lines((DATA / name).read_bytes()).frame.height
    assert cov.lines == lines and cov.parsed + cov.unrecognized == lines
    assert df.equals(again)


def test_describe_of_a_crash_looping_celery_worker() -> None:
    df, cov = _parse("aperag-375-describe.txt")
    assert df.select("pod", "namespace", "node", "container").unique().rows() == [
        ("celeryworker-944bc665b-qjb9k", "kubechat", "gke-yjtest-default-pool-6d3fb2d6-1qvj", "kubechat-celeryworker")]
    assert df.select("line", "which", "state", "reason").rows() == [
        (34, "state", "waiting", "CrashLoopBackOff"), (36, "last_state", "terminated", "Error")]
    assert cov.samples == [(1, "➜  ~ k describe pod celeryworker-944bc665b-qjb9k -n kubechat")]


def test_an_oom_kill_with_its_limit_restarts_and_times_in_utc() -> None:
    df, cov = _parse("starburst-1-describe.txt")
    oom, running = df.to_dicts()
    assert (oom["line"], oom["state"], oom["reason"], oom["exit_code"], oom["signal"], oom["oom_killed"]) == (
        4, "terminated", "OOMKilled", 137, 9, True)
    assert (oom["restart_count"], oom["memory_limit_text"], oom["memory_limit"]) == (5, "300Mi", 300 * 2**20)
    assert oom["started_at"] == oom["ts"] == datetime(2021, 12, 14, 2, 2, 32)  # -0800 → UTC
    assert oom["finished_at"] == datetime(2021, 12, 14, 2, 2, 42)
    # the second fragment is another run of the container: its own restarts and limit
    assert (running["state"], running["restart_count"], running["memory_limit"]) == ("running", 0, 500 * 2**20)
    assert cov.unrecognized == 4  # the two headings and their underlines


def test_oomkilled_is_the_reason_whatever_the_exit_code() -> None:
    df, _ = _parse("kube-eventer-285-describe.txt")
    assert df.select("which", "reason", "exit_code", "oom_killed", "restart_count").rows() == [
        ("state", "CrashLoopBackOff", None, False, 3), ("last_state", "OOMKilled", 1, True, 3)]


def test_a_sigkill_the_runtime_did_not_call_oom() -> None:
    df, _ = _parse("akash-246-describe.txt")
    last = df.filter(pl.col("which") == "last_state").to_dicts()[0]
    assert (last["reason"], last["exit_code"], last["signal"], last["oom_killed"]) == ("Error", 137, 9, False)


def test_kubernetes_1_0_describe_with_tabs() -> None:
    df, cov = _parse("kubernetes-10861-describe.txt")
    assert df.select("pod", "node", "container", "state", "restart_count", "memory_limit").rows() == [
        ("simmemleak-hra99", "kubernetes-minion-tf0f", "simmemleak", "running", 5, 50 * 2**20)]
    assert cov.unrecognized == 0


def test_an_evicted_pod_is_a_pod_row_with_the_kubelet_s_message() -> None:
    df, _ = _parse("k9s-174-describe-evicted.txt")
    row = df.to_dicts()[0]
    assert (row["which"], row["state"], row["reason"], row["line"]) == ("pod", "failed", "Evicted", 13)
    assert row["message"].startswith("The node was low on resource: memory. Container proprietary-crawler")


def test_pods_described_one_after_another_keep_their_own_names() -> None:
    # `kubectl describe pods` prints pod after pod: two real outputs in a row
    names = ("k9s-174-describe-evicted.txt", "aperag-375-describe.txt")
    data = b"\n".join((DATA / name).read_bytes() for name in names)
    df, _ = _parse("k9s-174-describe-evicted.txt", data)
    assert df.select("pod", "which", "reason").rows() == [
        ("proprietary-crawler-preemptive-79f7cbc6cf-rzck9", "pod", "Evicted"),
        ("celeryworker-944bc665b-qjb9k", "state", "CrashLoopBackOff"),
        ("celeryworker-944bc665b-qjb9k", "last_state", "Error")]


def test_a_last_state_pasted_alone() -> None:
    df, _ = _parse("kubernetes-53669-laststate.json")
    assert df.select("line", "which", "state", "reason", "exit_code", "finished_at").rows() == [
        (6, "last_state", "terminated", "Error", 137, datetime(2017, 10, 10, 17, 41, 58))]


def test_pod_json_cut_before_its_status_yields_nothing_and_says_so() -> None:
    df, cov = _parse("kubernetes-19825-pod.json")
    assert df.is_empty()
    assert cov.unrecognized == cov.lines == 10
    assert any("no container status" in n for n in cov.notes)


def test_docker_inspect_cut_after_its_state() -> None:
    df, cov = _parse("sd-webui-docker-457-inspect.json")
    row = df.to_dicts()[0]
    assert (row["container"], row["state"], row["exit_code"], row["signal"], row["oom_killed"]) == (
        "c35e838c9646", "terminated", 137, 9, False)
    assert row["started_at"] == datetime(2023, 5, 8, 8, 3, 5, 553000)  # nanoseconds cut to ms
    # the prompt before and the cut tail after the State are unread, and counted
    assert cov.unrecognized == 6
    assert any("cut or invalid after line 24" in n for n in cov.notes)


def test_docker_s_oom_flag_decides_the_reason() -> None:
    # the docker/cli #2665 State with its documented flag set, as docker writes it for an OOM kill
    data = (DATA / "docker-cli-2665-state.json").read_bytes().replace(b'"OOMKilled": false', b'"OOMKilled": true')
    df, _ = _parse("docker-cli-2665-state.json", data)
    assert df.select("reason", "oom_killed", "exit_code").rows() == [("OOMKilled", True, 137)]


def test_a_whole_kubectl_pod_list() -> None:
    df, cov = _parse("kuard-running-pod.json")
    assert df.select("line", "pod", "namespace", "node", "container", "which", "state", "restart_count",
                     "memory_limit", "started_at").rows() == [
        (151, "queue-l4dv8", "default", "minikube", "queue", "state", "running", 0, None,
         datetime(2022, 12, 23, 9, 36, 47))]
    assert cov.unrecognized == 0 and not cov.notes


# --- hostile input ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["starburst-1-describe.txt", "sd-webui-docker-457-inspect.json",
                                  "kuard-running-pod.json", "kubernetes-53669-laststate.json",
                                  "aperag-375-describe.txt"])
def test_cut_anywhere_it_never_raises_and_counts_every_line(name: str) -> None:
    data = (DATA / name).read_bytes()
    for cut in range(0, len(data), 7):
        df, cov = _parse(name, data[:cut])
        assert cov.parsed + cov.unrecognized == cov.lines
        assert df.height <= 2


def test_huge_values_are_clipped_not_fatal() -> None:
    huge = "x" * 5_000_000
    describe = (DATA / "k9s-174-describe-evicted.txt").read_text().replace(
        "The node was low on resource: memory.", "The node was low on resource: memory. " + huge)
    df, _ = _parse("k9s-174-describe-evicted.txt", describe.encode())
    assert len(df.get_column("message")[0]) <= MAX_TEXT
    inspect = (DATA / "docker-cli-2665-state.json").read_text().replace('"Error": ""', f'"Error": "{huge}"')
    df, _ = _parse("docker-cli-2665-state.json", inspect.encode())
    assert len(df.get_column("message")[0]) <= MAX_TEXT
    big = (DATA / "kubernetes-53669-laststate.json").read_text().replace('"exitCode": 137', '"exitCode": 1' + "0" * 40)
    df, _ = _parse("kubernetes-53669-laststate.json", big.encode())
    assert df.get_column("exit_code").to_list() == [None]


def test_deep_nesting_and_garbage_are_unread_lines() -> None:
    data = b'"lastState": ' + b"[" * 200_000 + b"\n\xff\xfe garbage\n"
    df, cov = _parse("kubernetes-53669-laststate.json", data)
    assert df.is_empty() and cov.unrecognized == cov.lines == 2
    df, cov = _parse("sd-webui-docker-457-inspect.json", b'[{"Id": "' + b"a" * 64 + b'", "State": ' + b"{" * 100_000)
    assert df.is_empty() and cov.unrecognized == 1


@pytest.mark.parametrize(("text", "value"), [("50Mi", 50 * 2**20), ("10G", 10**10), ("6656M", 6656 * 10**6),
                                             ("1e3", 1000), ("1e9999", None), ("lots", None), ("", None)])
def test_memory_quantities(text: str, value: int | None) -> None:
    assert quantity_bytes(text) == value


# --- diagnosis ---------------------------------------------------------------------------------


def test_an_oom_killed_container_is_the_root_cause_of_the_lost_task(tmp_path: Path) -> None:
    """A real worker log with a lost task (Rodan #670) beside a real describe output that says
    OOMKilled (starburst-terraform #1). No public thread holds both, so they come from two threads:
    the link rests on the causal model (worker.oom explains worker.lost), a describe that names no
    Celery node (it meets any), and the killed run starting before the task was lost."""
    (tmp_path / "worker.log").write_bytes((DATA / "rodan-670-worker.log").read_bytes())
    (tmp_path / "describe.txt").write_bytes((DATA / "starburst-1-describe.txt").read_bytes())
    report = open_bundle(tmp_path).report()
    root = next(f for f in report.findings if f.id == report.root_causes[0])
    assert (root.rule, root.category) == ("CP-W022", "worker.oom")
    assert [(e.source, e.line) for e in root.evidence] == [("describe.txt", 4)]
    lost = next(f for f in report.findings if f.category == "worker.lost")
    assert lost.explained_by == [root.id]
    assert lost.tasks == ["50a09898-c8d4-49d1-89c5-4d6397af7c41"]


def test_without_the_describe_output_the_lost_task_stands_alone(tmp_path: Path) -> None:
    (tmp_path / "worker.log").write_bytes((DATA / "rodan-670-worker.log").read_bytes())
    report = open_bundle(tmp_path).report()
    assert not any(f.category == "worker.oom" for f in report.findings)
    root = next(f for f in report.findings if f.id == report.root_causes[0])
    assert root.category == "worker.lost"


@pytest.mark.parametrize(("code", "rules"), [("137", ["CP-W023"]), ("143", [])])
def test_a_container_asked_to_stop_is_no_crash(code: str, rules: list[str]) -> None:
    # the akash-network #246 fragment as is (SIGKILL) and with the exit code of SIGTERM (a rollout)
    text = (DATA / "akash-246-describe.txt").read_text().replace("Exit Code:    137", f"Exit Code:    {code}")
    report = Bundle.from_text(text, name="describe.txt").report()
    assert [f.rule for f in report.findings] == rules
