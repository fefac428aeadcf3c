"""After the merge: which node each record belongs to, then the frames the analyses read.

A record's node is, first that exists: the node the record itself names (`_hostname`: JSON logs), the
node its stream of its input names in a `ready.` line (else its banner), its container stream, the
only node named in its input's folder (a worker's log file beside its stdout banner), the file's stem.
Only the merged `names` of every piece can say so, hence this step after the merge.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from analyzer.analyses import activity
from analyzer.pipeline.mapper import needed
from analyzer.pipeline.partial import NODE_KEY, Partial
from analyzer.schema import EVENTS, conform
from analyzer.sources.exceptions import classify

_KEY = "_node_key"


def _folder(source: str) -> str:
    name = source.rsplit(":", 1)[-1]
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _stem(source: str) -> str:
    return Path(source.rsplit(":", 1)[-1]).name.split(".")[0] or source


def fill_for(pairs: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """Per input, the node its records get when they name none: the only node named in the same
    folder, else the file's stem. `pairs`: (source, node named or None) of every record."""
    pairs = set(pairs)
    named: dict[str, set[str]] = {}
    for src, host in pairs:
        if host is not None:
            named.setdefault(_folder(src), set()).add(host)
    fill = {}
    for src in sorted({src for src, _ in pairs}):
        hosts = named.get(_folder(src), set())
        fill[src] = next(iter(hosts)) if len(hosts) == 1 else _stem(src)
    return fill


def settle_hosts(events: pl.DataFrame) -> pl.DataFrame:
    """Records (each input's own naming already applied, `host` null where none) with every host filled."""
    events = classify(events)
    if events.is_empty() or events.get_column("host").null_count() == 0:
        return events
    fill = fill_for(events.select("source", "host").unique().rows())
    return events.with_columns(pl.coalesce(
        "host", pl.col("source").replace_strict(fill, default=None, return_dtype=pl.String)).alias("host"))


class Nodes:
    """The node of every node key (`partial.NODE_KEY`) of a merged partial."""

    def __init__(self, merged: Partial) -> None:
        # per (source, stream): the first `ready.` line's node, else the first banner's
        names = merged.names.sort("source", "banner", "line").group_by(
            "source", pl.col("stream").fill_null(""), maintain_order=True).agg(pl.col("name").first())
        self._named = {(s, st): n for s, st, n in names.rows()}
        keys = merged.hosts.select(*NODE_KEY).unique().rows()
        own = {k: self._own(*k) for k in keys}
        self._fill = fill_for((k[0], h) for k, h in own.items())

    def _own(self, source: str, stream: str | None, hostname: str | None) -> str | None:
        return hostname or self._named.get((source, stream or "")) or stream

    def host(self, source: str, stream: str | None, hostname: str | None) -> str:
        return self._own(source, stream, hostname) or self._fill.get(source) or _stem(source)

    def settle(self, df: pl.DataFrame) -> pl.DataFrame:
        """`df` (with the node key columns) with `host` set and the key's own columns dropped."""
        if df.is_empty():
            return df.with_columns(pl.lit(None, dtype=pl.String).alias("host")).drop("stream", "_hostname")
        keys = df.select(*NODE_KEY).unique().rows()
        table = pl.DataFrame([(*k, self.host(*k)) for k in keys], schema={**dict.fromkeys(NODE_KEY, pl.String),
                                                                           "host": pl.String}, orient="row")
        out = df.drop("host", strict=False).join(table, on=list(NODE_KEY), how="left", nulls_equal=True,
                                                 maintain_order="left")
        return out.drop("stream", "_hostname")


def events(merged: Partial, nodes: Nodes) -> pl.DataFrame:
    """The kept records as `events` rows, hosts settled."""
    return classify(conform(nodes.settle(needed(merged)), EVENTS)).select(list(EVENTS))


def task_partial(merged: Partial, nodes: Nodes) -> pl.DataFrame:
    """The merged task partial with each task's node: the one its own records name, else its first
    record's node."""
    return task_hosts(merged.tasks, nodes)


def task_hosts(tp: pl.DataFrame, nodes: Nodes) -> pl.DataFrame:
    """Task partial rows with each task's node (`task_partial`), for rows kept apart from a merged
    partial (`spill`)."""
    if tp.is_empty():
        return tp
    firsts = tp.select("source", pl.col("_stream").replace("", None).alias("stream"),
                       pl.col("host").alias("_hostname")).unique().rows()
    table = pl.DataFrame([(s, st or "", h, nodes.host(s, st, h)) for s, st, h in firsts],
                         schema={"source": pl.String, "_stream": pl.String, "host": pl.String, "_settled": pl.String},
                         orient="row")
    joined = tp.join(table, on=["source", "_stream", "host"], how="left", nulls_equal=True, maintain_order="left")
    return joined.with_columns(pl.col("_settled").alias("host")).drop("_settled")


def host_spans(merged: Partial, nodes: Nodes) -> pl.DataFrame:
    """Per input and node: first and last time, records, and records by level."""
    settled = nodes.settle(merged.hosts)
    return settled.group_by("source", "host").agg(
        pl.col("first_ts").min(), pl.col("last_ts").max(), pl.col("records", "warnings", "errors", "criticals").sum(),
    ).sort("source", "host")


def activity_frame(merged: Partial, nodes: Nodes) -> pl.DataFrame:
    return activity.merge([conform(nodes.settle(merged.activity), activity.ACTIVITY)])


def marks(merged: Partial, nodes: Nodes) -> pl.DataFrame:
    """Records showing a worker at work again (the first and last of each node and second)."""
    return nodes.settle(merged.marks).sort("ts", "source", "line")
