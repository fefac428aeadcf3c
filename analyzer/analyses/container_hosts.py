"""Container rows given the Celery node that ran in the container, so a container finding meets the
worker's findings on that node (`diagnosis._hosts_meet`).

A worker names itself `NAME@HOSTNAME` (celery/utils/nodenames.py `default_nodename`: `celery@` plus
`socket.gethostname()`, or `-n w1@%h`). In a container that hostname is the container's own:
docker's `Config.Hostname` (the `hostname:` a compose file sets, else the Id's first 12 digits), which
`sources.container_json` keeps as `node`; in Kubernetes it is the pod's name (with `hostNetwork`, the
node's). A row whose `node` or `pod` is the part after `@` of exactly one worker node name in the
records gets that node name for `host`; none or several: no host (it meets every host, as before).
"""

from __future__ import annotations

import polars as pl

from analyzer.schema import CONTAINERS, conform


def attach(containers: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """`containers` with `host` filled from the worker node names of `events` where one matches."""
    if containers.height == 0 or events.height == 0 or "host" not in events.columns:
        return conform(containers, CONTAINERS)
    nodes = (events.select(pl.col("host").drop_nulls().unique())
             .filter(pl.col("host").str.contains("@"))
             .with_columns(pl.col("host").str.split("@").list.last().alias("_hostname")))
    unique = (nodes.group_by("_hostname").agg(pl.col("host").sort().alias("_hosts"))
              .filter(pl.col("_hosts").list.len() == 1)
              .select("_hostname", pl.col("_hosts").list.first().alias("_host")))
    rows = containers.with_row_index("_row")
    keys = pl.concat([rows.select("_row", pl.col(c).alias("_hostname")) for c in ("node", "pod")])
    matched = (keys.join(unique, on="_hostname", how="inner")
               .group_by("_row").agg(pl.col("_host").unique().sort())
               .filter(pl.col("_host").list.len() == 1)
               .select("_row", pl.col("_host").list.first()))
    out = rows.join(matched, on="_row", how="left").sort("_row")
    if "host" in out.columns:
        out = out.with_columns(pl.coalesce("host", "_host").alias("host"))
    else:
        out = out.rename({"_host": "host"})
    return conform(out.drop([c for c in ("_row", "_host") if c in out.columns]), CONTAINERS)
