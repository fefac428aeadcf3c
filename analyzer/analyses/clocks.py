"""How far each worker's clock is from the broker's, from connections both sides logged.

Celery writes local time without a zone; RabbitMQ writes its own clock (with a zone since 3.9). A
worker in another zone, or with a drifting clock, makes one incident look like two an hour apart.
Each time a worker logs `Connected to amqp://USER:**@HOST/VHOST`, RabbitMQ has just logged `user
'USER' authenticated and granted access to vhost 'VHOST'` (rabbit_reader.erl): the gap between the
two, over every connection, is the offset between the two clocks.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import polars as pl

from analyzer.findings import Finding, duration

SERVER_GRANT_RE = r"user '([^']*)' authenticated and granted access to vhost '([^']*)'"
WORKER_CONNECT_RE = r"Connected to amqp://([^:@/]*)(?::[^@]*)?@[^/]*/?(\S*)"
# The worker logs `Connected to` after the server granted access: within this many seconds
PAIR_WINDOW_S = 2.0
SIGNIFICANT_S = 60.0  # smaller gaps are timing noise, not another clock
VOTERS = 64  # connections per node and vhost that vote on the offset
# Zones are whole multiples of 15 minutes apart: an offset this close to one is a zone difference
ZONE_STEP_S = 900.0
ZONE_SLACK_S = 5.0

OFFSETS: dict[str, pl.DataType] = {
    "host": pl.String(),  # the worker node whose clock is off
    "reference": pl.String(),  # the server whose clock it was compared with
    "offset_s": pl.Float64(),  # worker time minus server time for the same moment
    "zone_offset_s": pl.Float64(),  # the whole zone difference it is, when it is one (null: a clock drifted)
    "pairs": pl.Int64(),  # connections seen on both sides at that offset
    "worker_source": pl.String(),
    "worker_line": pl.Int64(),
    "server_source": pl.String(),
    "server_line": pl.Int64(),
}


def offsets(events: pl.DataFrame) -> pl.DataFrame:
    """Per worker node and server: the offset of the worker's clock (only those of `SIGNIFICANT_S` or more)."""
    empty = pl.DataFrame(schema=OFFSETS)
    if events.is_empty():
        return empty
    ts = pl.col("ts").is_not_null()
    grants = events.filter(ts & pl.col("message").str.contains("authenticated and granted access to vhost",
                                                               literal=True)).select(
        pl.col("host").alias("reference"), pl.col("ts").alias("server_ts"),
        pl.col("message").str.extract(SERVER_GRANT_RE, 1).alias("user"),
        pl.col("message").str.extract(SERVER_GRANT_RE, 2).alias("vhost"),
        pl.col("source").alias("server_source"), pl.col("line").alias("server_line"))
    connects = events.filter(ts & (pl.col("kind") == "connected")
                             & pl.col("message").str.contains("Connected to amqp://", literal=True)).select(
        "host", pl.col("ts").alias("worker_ts"),
        pl.col("message").str.extract(WORKER_CONNECT_RE, 1).alias("user"),
        pl.col("message").str.extract(WORKER_CONNECT_RE, 2).replace("", "/").alias("vhost"),
        pl.col("source").alias("worker_source"), pl.col("line").alias("worker_line"))
    if grants.is_empty() or connects.is_empty():
        return empty
    # a few connections per node agree on the offset: pairing every reconnect of a storm with every
    # grant of the broker would grow with the product of the two
    connects = connects.sort("worker_ts").group_by("host", "user", "vhost", maintain_order=True).head(VOTERS)
    pairs = connects.join(grants.drop_nulls(["user", "vhost"]), on=["user", "vhost"]).with_columns(
        ((pl.col("worker_ts") - pl.col("server_ts")).dt.total_microseconds() / 1e6).alias("gap"))
    # the offset most connections agree on: the whole second holding most gaps (per node and server)
    votes = (pairs.with_columns(pl.col("gap").floor().alias("second"))
             .group_by("host", "reference", "second").agg(pl.col("worker_line").n_unique().alias("votes"))
             .sort("votes", pl.col("second").abs(), descending=[True, False])
             .group_by("host", "reference", maintain_order=True).first())
    agreed = pairs.join(votes, on=["host", "reference"]).filter(
        (pl.col("gap") >= pl.col("second") - PAIR_WINDOW_S) & (pl.col("gap") < pl.col("second") + 1 + PAIR_WINDOW_S))
    # each worker connection pairs with the server grant nearest that offset
    best = (agreed.with_columns((pl.col("gap") - pl.col("second") - 0.5).abs().alias("_d"))
            .sort("_d", "server_line").group_by("host", "reference", "worker_source", "worker_line",
                                               maintain_order=True).first())
    out = best.group_by("host", "reference").agg(
        pl.col("gap").median().round(3).alias("offset_s"), pl.len().cast(pl.Int64).alias("pairs"),
        pl.col("worker_source").first(), pl.col("worker_line").min(),
        pl.col("server_source").first(), pl.col("server_line").min())
    zone = (pl.col("offset_s") / ZONE_STEP_S).round() * ZONE_STEP_S
    out = out.with_columns(pl.when((pl.col("offset_s") - zone).abs() <= ZONE_SLACK_S).then(zone)
                           .alias("zone_offset_s"))
    return out.filter(pl.col("offset_s").abs() >= SIGNIFICANT_S).select(list(OFFSETS)).sort("host", "reference")


def describe(row: dict[str, object]) -> str:
    """`w1@sample's clock is 1 h ahead of rabbitmq's (a zone difference; 2 connections seen on both sides)`."""
    zone, measured = row.get("zone_offset_s"), float(row["offset_s"])  # type: ignore[arg-type]
    off = float(zone) if isinstance(zone, float) else measured
    why = "a zone difference" if isinstance(zone, float) else "a clock that drifted or was set wrong"
    return (f"{row['host']}'s clock is {duration(abs(off))} {'ahead of' if off > 0 else 'behind'} "
            f"{row['reference']}'s ({why}; measured {measured:+.1f} s over {row['pairs']} connection(s) both logged)")


def one_offset_per_server(found: pl.DataFrame) -> dict[str, float]:
    """Server → the offset every worker that talks to it agrees on (a zone difference, or the
    measured offset); servers whose workers disagree are left out: no one shift fits them all."""
    out: dict[str, float] = {}
    for ref, part in found.group_by("reference", maintain_order=True):
        values = {float(z if z is not None else o) for z, o in part.select("zone_offset_s", "offset_s").rows()}
        if len(values) == 1:
            out[str(ref[0])] = values.pop()
    return out


def on_workers_clock(findings: list[Finding], shifts: dict[str, float]) -> list[Finding]:
    """Findings seen only in a server's log, with their times moved onto its workers' clock, so that
    causes and effects on both sides are compared at the same moments."""
    out = []
    for f in findings:
        if f.hosts and len(set(f.hosts)) == 1 and f.hosts[0] in shifts:
            by = timedelta(seconds=shifts[f.hosts[0]])
            f = replace(f, first_seen=_shift(f.first_seen, by), last_seen=_shift(f.last_seen, by),
                        times=tuple(t + by for t in f.times))
        out.append(f)
    return out


def _shift(value: str | None, by: timedelta) -> str | None:
    if value is None:
        return None
    try:
        moved = datetime.fromisoformat(value) + by
    except ValueError:
        return value
    return moved.isoformat(timespec="milliseconds" if moved.microsecond else "seconds")
