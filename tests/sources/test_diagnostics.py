"""Broker-side and host diagnostics saved by the broker scenarios: `redis-cli INFO`, `ulimit -a`."""

from __future__ import annotations

from analyzer.sniff import sniff
from analyzer.sources.lines import read_lines
from analyzer.sources.redis_info import parse_lines
from tests.conftest import SAMPLES


def _info(sample: str) -> dict[str, object]:
    path = SAMPLES / sample / "redis-info.txt"
    assert sniff(path.read_bytes()[:4096]) == "redis_info"
    frame, cov = parse_lines(read_lines(path), source="redis-info.txt")
    assert cov.unrecognized == 0 and cov.lines > 50
    return frame.row(0, named=True)


def test_maxmemory_snapshot_shows_memory_at_the_limit_with_noeviction() -> None:
    row = _info("redis-oom")
    assert row["maxmemory_policy"] == "noeviction"
    assert row["maxmemory"] == 2 * 1024 * 1024
    assert row["memory_used_ratio"] is not None and row["memory_used_ratio"] > 0.9
    assert row["errorstat_oom"] and row["errorstat_oom"] >= 1


def test_maxclients_snapshot_counts_rejected_connections() -> None:
    row = _info("redis-maxclients")
    assert row["maxclients"] == 3
    assert row["rejected_connections"] and row["rejected_connections"] > 0
    assert row["redis_version"] == "7.0.15"


def test_ulimit_snapshot_gives_the_open_files_limit() -> None:
    from analyzer.sources.ulimit import parse_lines as parse_ulimit

    path = SAMPLES / "fd-exhaustion" / "ulimit.txt"
    assert sniff(path.read_bytes()[:4096]) == "ulimit"
    frame, cov = parse_ulimit(read_lines(path), source="ulimit.txt")
    assert cov.unrecognized == 0
    limits = dict(frame.select("flag", "value").rows())
    assert limits["n"] == 64 and limits["c"] == 0 and limits["v"] is None


def test_a_ulimit_snapshot_in_a_bundle_fills_the_limits_frame() -> None:
    """`ulimit -a` output was sniffed but had no registered parser: counted unrecognised, `limits` empty."""
    from analyzer import open_bundle

    b = open_bundle(SAMPLES / "fd-exhaustion")
    cov = next(c for c in b.coverage if c.source == "ulimit.txt")
    assert cov.kind == "ulimit" and cov.unrecognized == 0 and cov.parsed > 0
    limits = b.frame_map()["limits"]
    assert limits.filter(limits["flag"] == "n").select("name", "value").rows() == [("open files", 64)]
