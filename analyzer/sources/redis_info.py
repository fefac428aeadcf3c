"""`redis-cli INFO` output → the `redis_info` frame: one row per snapshot, typed key fields.

Format (FORMATS.md E.1; redis/redis-doc commands/info.md): sections headed `# Clients`, lines
`field:value` (CRLF from the server, LF from redis-cli). Observed on Redis 7.0.15:
`connected_clients:1`, `maxclients:3`, `rejected_connections:11`, `used_memory:1979152`,
`maxmemory:2097152`, `maxmemory_policy:noeviction`, `errorstat_OOM:count=1`.
One row per snapshot keeps broker-side facts next to each other, so a rule can say
`used_memory >= maxmemory and maxmemory > 0` or `rejected_connections > 0`.
"""

from __future__ import annotations

import polars as pl

from analyzer import schema
from analyzer.sources.celery_log import Coverage
from analyzer.sources.checked import int64
from analyzer.sources.lines import Lines

# `field:value`; `errorstat_OOM:count=1` keeps the count
FIELD_RE = r"^([a-z_][a-z0-9_]*|errorstat_[A-Z]+):(.*)$"
SECTION_RE = r"^# \w+"

INT_FIELDS = ("connected_clients", "maxclients", "blocked_clients", "rejected_connections",
              "total_connections_received", "used_memory", "maxmemory", "evicted_keys", "loading",
              "instantaneous_ops_per_sec")
STR_FIELDS = ("redis_version", "role", "maxmemory_policy", "master_link_status")
ERRORSTATS = ("OOM", "WRONGPASS", "NOAUTH", "READONLY", "LOADING", "MASTERDOWN", "NOPERM")

SCHEMA = schema.REDIS_INFO


def parse_lines(lines: Lines, *, source: str) -> tuple[pl.DataFrame, Coverage]:
    df = lines.frame
    caps = pl.col("text").str.extract_groups(FIELD_RE)
    kv = df.with_columns(caps.struct.field("1").alias("k"), caps.struct.field("2").alias("v"))
    fields = kv.filter(pl.col("k").is_not_null())
    known = dict(fields.select("k", "v").unique(subset="k", keep="first", maintain_order=True).rows())
    row: dict[str, object] = {"source": source, "line": 1}
    for f in STR_FIELDS:
        row[f] = known.get(f)
    for f in INT_FIELDS:
        v = known.get(f)
        row[f] = int64(v)
    for e in ERRORSTATS:
        v = known.get(f"errorstat_{e}")
        row[f"errorstat_{e.lower()}"] = int64(v.split("=", 1)[1].split(",", 1)[0]) if v and "=" in v else None
    used, cap = row["used_memory"], row["maxmemory"]
    row["memory_used_ratio"] = used / cap if isinstance(used, int) and isinstance(cap, int) and cap else None
    conn, maxc = row["connected_clients"], row["maxclients"]
    row["clients_used_ratio"] = conn / maxc if isinstance(conn, int) and isinstance(maxc, int) and maxc else None
    frame = pl.DataFrame([row], schema=dict(SCHEMA))
    blank = pl.col("text").str.strip_chars() == ""
    section = pl.col("text").str.contains(SECTION_RE)
    unrec = kv.filter(pl.col("k").is_null() & ~blank & ~section)
    return frame, Coverage.of(source, "redis_info", df, unrec)
