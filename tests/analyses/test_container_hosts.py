"""Container rows meet the worker that ran in the container: `host` from `celery@HOSTNAME`."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from analyzer import open_bundle
from analyzer.analyses import container_hosts
from analyzer.schema import CONTAINERS, conform

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "container-oom"


def _rows(**cols: list[str | None]) -> pl.DataFrame:
    return conform(pl.DataFrame({k: pl.Series(k, v, dtype=pl.String) for k, v in cols.items()}), CONTAINERS)


def _events(*hosts: str) -> pl.DataFrame:
    return pl.DataFrame({"host": list(hosts)})


def test_the_hostname_after_the_at_sign_is_the_container_or_pod() -> None:
    rows = _rows(node=["cpm-oom-worker", "k8s-node-1", None], pod=[None, "w-7d9f", None])
    out = container_hosts.attach(rows, _events("celery@cpm-oom-worker", "w1@w-7d9f", "w2@elsewhere"))
    assert out.get_column("host").to_list() == ["celery@cpm-oom-worker", "w1@w-7d9f", None]
    assert list(out.columns) == list(CONTAINERS)


def test_two_nodes_on_one_hostname_leave_the_host_unknown() -> None:
    rows = _rows(node=["box"], pod=[None])
    out = container_hosts.attach(rows, _events("w1@box", "w2@box"))
    assert out.get_column("host").to_list() == [None]


def test_no_records_no_host() -> None:
    rows = _rows(node=["box"], pod=[None])
    assert container_hosts.attach(rows, _events()).get_column("host").to_list() == [None]


def test_the_real_oom_killed_container_meets_its_worker() -> None:
    """docker inspect's Config.Hostname is the hostname of celery@…; the finding spans to FinishedAt."""
    report = open_bundle(SAMPLE).report()
    (w022,) = [f for f in report.findings if f.rule == "CP-W022"]
    assert w022.hosts == ["celery@cpm-oom-worker"]
    assert (w022.first_seen, w022.last_seen) == ("2026-12-08T02:46:13.334", "2026-12-08T02:46:16.795")


def test_a_pool_childs_kill_does_not_end_at_the_later_stop() -> None:
    """OOMKilled with exit 0 (a pool child was killed, pid 1 stopped later): FinishedAt is not the kill."""
    report = open_bundle(SAMPLE.parent / "container-oom-prefork").report()
    (w022,) = [f for f in report.findings if f.rule == "CP-W022"]
    assert w022.hosts == ["celery@cpm-oom-worker"]
    assert w022.last_seen == w022.first_seen == "2026-12-08T02:52:21.480"
