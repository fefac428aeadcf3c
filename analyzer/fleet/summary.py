"""The view across bundles, as polars frames: one row per bundle (`bundles_frame`, what
`analyzer.analyze_many` returns) and one row per finding signature (`signatures_frame`: category +
rule + message template, with counts, first and last seen, and the bundles it occurs in)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analyzer.categories import SEVERITY_RANK
from analyzer.fleet.one import Outcome

FINDING = pl.Struct({"category": pl.String(), "rule": pl.String(), "template": pl.String(),
                     "severity": pl.String(), "count": pl.Int64(), "first_seen": pl.String(),
                     "last_seen": pl.String(), "root_cause": pl.Boolean(), "summary": pl.String()})
S, N = pl.String(), pl.Int64()
BUNDLES: dict[str, pl.DataType] = {
    "bundle": S, "source": S, "bytes": N, "verdict": S, "worst_severity": S, "root_category": S, "root_rule": S,
    "root_template": S, "root_summary": S, "n_findings": N, "rule_errors": N, "trouble": S,
    "findings": pl.List(FINDING)}
SIGNATURES: dict[str, pl.DataType] = {
    "category": S, "rule": S, "template": S, "severity": S, "root_cause_in": N, "found_in": N, "occurrences": N,
    "first_seen": S, "last_seen": S, "bundles": pl.List(S)}


def bundles_frame(outcomes: Sequence[Outcome]) -> pl.DataFrame:
    """One row per bundle, sorted by name: verdict, root cause and every finding's signature."""
    rows = []
    for o in sorted(outcomes, key=lambda o: o.name):
        root = o.root
        rows.append({
            "bundle": o.name, "source": o.source, "bytes": o.size, "verdict": o.verdict, "worst_severity": o.worst,
            "root_category": root.category if root else None, "root_rule": root.rule if root else None,
            "root_template": root.template if root else None, "root_summary": root.summary if root else None,
            "n_findings": len(o.findings), "rule_errors": o.rule_errors, "trouble": o.trouble,
            "findings": [vars(s) for s in o.findings],
        })
    return pl.DataFrame(rows, schema=BUNDLES, orient="row") if rows else pl.DataFrame(schema=BUNDLES)


def signatures_frame(bundles: pl.DataFrame) -> pl.DataFrame:
    """One row per (category, rule, template) over all bundles: in how many bundles it was the root
    cause and was found, its occurrences, first and last seen (as the logs wrote them), and the
    bundles. Most frequent root causes first, then by name."""
    found = (bundles.select("bundle", "findings").explode("findings").drop_nulls("findings")
             .unnest("findings"))
    if found.is_empty():
        return pl.DataFrame(schema=SIGNATURES)
    rank = pl.col("severity").replace_strict(SEVERITY_RANK, default=0, return_dtype=pl.Int64)
    keys = ["category", "rule", "template"]
    out = (found.with_columns(rank.alias("_rank"))
           .group_by(keys)
           .agg(pl.col("severity").sort_by("_rank", descending=True).first(),
                pl.col("bundle").filter(pl.col("root_cause")).n_unique().alias("root_cause_in"),
                pl.col("bundle").n_unique().alias("found_in"),
                pl.col("count").sum().alias("occurrences"),
                pl.col("first_seen").min(), pl.col("last_seen").max(),
                pl.col("bundle").unique().sort().alias("bundles")))
    return (out.sort(["root_cause_in", "found_in", *keys], descending=[True, True, False, False, False])
            .select([pl.col(c).cast(t) for c, t in SIGNATURES.items()]))


def verdict_counts(bundles: pl.DataFrame) -> dict[str, int]:
    """Bundles per verdict, in a fixed order."""
    counts = dict(bundles.group_by("verdict").len().iter_rows())
    return {v: int(counts.get(v, 0)) for v in ("unhealthy", "healthy", "inconclusive", "error")}
