"""`diff BUNDLE --baseline HEALTHY`: what is new in a failed bundle beside a healthy one, as
logreduce and LogJuicer do for CI logs: findings whose signature the baseline lacks, log message
templates it never wrote, and templates whose rate per hour moved by `MOVED` or more.

A template is a record's message with its variable parts masked (ids, hex, numbers: `TEMPLATE_MASKS`),
computed with polars over every record of both bundles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from analyzer.fleet.one import Settings, Signature

MOVED = 2.0  # a rate that grew or shrank by this factor moved
MIN_COUNT = 3  # … and was seen this often in one of the bundles
TOP = 50  # rows of each table kept
# (pattern, stand-in), applied in order: the most specific first
TEMPLATE_MASKS = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<uuid>"),
    (r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b", "<ip>"),
    (r"\b0x[0-9a-fA-F]+\b", "<hex>"),
    (r"\b[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b", "<hex>"),
    (r"\d+(\.\d+)?", "<n>"),
)
TEMPLATES = {"template": pl.String(), "level": pl.String(), "count": pl.Int64(), "per_hour": pl.Float64(),
             "example": pl.String()}


@dataclass
class Side:
    """One bundle's templates and findings, as the diff compares them."""

    name: str
    templates: pl.DataFrame  # TEMPLATES
    signatures: set[tuple[str, str, str]]
    hours: float | None


@dataclass
class Diff:
    bundle: str
    baseline: str
    new_findings: list[dict[str, object]] = field(default_factory=list)
    new_templates: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=TEMPLATES))
    moved: pl.DataFrame = field(default_factory=pl.DataFrame)
    gone_templates: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"schema": "celery-postmortem/diff@1", "bundle": self.bundle, "baseline": self.baseline,
                "new_findings": self.new_findings, "new_templates": self.new_templates.to_dicts(),
                "moved": self.moved.to_dicts(), "templates_gone": self.gone_templates}


def template_expr(col: str = "message") -> pl.Expr:
    expr = pl.col(col).fill_null("")
    for pattern, stand_in in TEMPLATE_MASKS:
        expr = expr.str.replace_all(pattern, stand_in)
    return expr.str.strip_chars()


def templates(events: pl.DataFrame) -> tuple[pl.DataFrame, float | None]:
    """Per (template, level): records, rate per hour of the logs' window, and the first example;
    and that window in hours (None without timestamps)."""
    if events.is_empty():
        return pl.DataFrame(schema=TEMPLATES), None
    ts = events["ts"].drop_nulls()
    hours = None
    if ts.len():
        span = (ts.max() - ts.min()).total_seconds()  # type: ignore[operator, union-attr]
        hours = max(span, 1.0) / 3600
    first_line = pl.col("text").fill_null("").str.split("\n").list.first()
    df = (events.sort(["source", "line"])
          .with_columns(pl.coalesce(pl.col("message"), first_line).alias("_m"))
          .with_columns(template_expr("_m").alias("template"), pl.col("level").fill_null("-"))
          .group_by(["template", "level"])
          .agg(pl.len().cast(pl.Int64).alias("count"), pl.col("_m").first().alias("example")))
    rate = pl.col("count") / hours if hours else pl.lit(None, dtype=pl.Float64)
    return df.with_columns(rate.cast(pl.Float64).alias("per_hour")).select(list(TEMPLATES)), hours


def compare(failed: Side, base: Side, findings: list[dict[str, object]]) -> Diff:
    """The diff of two sides; tables sorted (count, then template) so the output is stable."""
    keys = ["template", "level"]
    new = (failed.templates.join(base.templates, on=keys, how="anti")
           .sort(["count", "template", "level"], descending=[True, False, False]).head(TOP))
    gone = base.templates.join(failed.templates, on=keys, how="anti").height
    both = failed.templates.join(base.templates, on=keys, how="inner", suffix="_baseline")
    if failed.hours and base.hours:
        factor = pl.col("per_hour") / pl.col("per_hour_baseline")
    else:  # no times: compare the shares of all records
        factor = ((pl.col("count") / failed.templates["count"].sum())
                  / (pl.col("count_baseline") / base.templates["count"].sum()))
    moved = (both.with_columns(factor.alias("factor"))
             .filter(((pl.col("factor") >= MOVED) | (pl.col("factor") <= 1 / MOVED))
                     & (pl.max_horizontal("count", "count_baseline") >= MIN_COUNT))
             .with_columns(pl.col("factor").round(3), pl.col("per_hour").round(3),
                           pl.col("per_hour_baseline").round(3))
             .sort([pl.col("factor").log().abs(), "template", "level"], descending=[True, False, False])
             .select("template", "level", "count", "count_baseline", "per_hour", "per_hour_baseline", "factor",
                     "example")
             .head(TOP))
    return Diff(failed.name, base.name, findings, new.with_columns(pl.col("per_hour").round(3)), moved, gone)


def _side(name: str, path: str, settings: Settings) -> tuple[Side, list[Signature]]:
    from analyzer.api import open_bundle
    from analyzer.fleet.one import signatures

    bundle = open_bundle(path, rules=list(settings.rules) or None, log_formats=settings.log_formats)
    report = bundle.report(select=settings.select, ignore=settings.ignore)
    found = list(signatures(report))
    table, hours = templates(bundle.events)
    return Side(name, table, {(s.category, s.rule, s.template) for s in found}, hours), found


def diff_bundles(bundle: str, baseline: str, settings: Settings | None = None) -> Diff:
    """What `bundle` has that `baseline` (a healthy run of the same deployment) has not; secrets in
    summaries, templates and examples redacted unless `settings.redact` is off."""
    from analyzer.fleet.one import local_bundle
    from analyzer.fleet.remote import shown_location
    from analyzer.fleet.sources import bundle_name

    settings = settings or Settings()
    with local_bundle(bundle) as a, local_bundle(baseline) as b:
        failed, found = _side(bundle_name(bundle), a, settings)
        base, _ = _side(bundle_name(baseline), b, settings)
    new = [{"category": s.category, "rule": s.rule, "template": s.template, "severity": s.severity,
            "count": s.count, "root_cause": s.root_cause, "summary": s.summary}
           for s in found if (s.category, s.rule, s.template) not in base.signatures]
    out = compare(failed, base, new)
    out.bundle, out.baseline = shown_location(bundle), shown_location(baseline)
    return redacted(out) if settings.redact else out


def redacted(diff: Diff) -> Diff:
    """`diff` with secrets in its texts replaced by placeholders (`analyzer.redact.Redactor`), one
    numbering over the whole diff."""
    from analyzer.redact import Redactor

    r = Redactor()
    cols = ("template", "example")
    texts = [*(str(f["summary"]) for f in diff.new_findings),
             *(t for df in (diff.new_templates, diff.moved) for c in cols if c in df.columns
               for t in df[c].fill_null("").to_list())]
    r.learn(texts)

    def fix(df: pl.DataFrame) -> pl.DataFrame:
        if df.is_empty():
            return df
        return df.with_columns(pl.Series(c, r.apply(df[c].fill_null("").to_list()), dtype=pl.String)
                               for c in cols if c in df.columns)

    findings = [{**f, "summary": r.apply([str(f["summary"])])[0]} for f in diff.new_findings]
    return Diff(diff.bundle, diff.baseline, findings, fix(diff.new_templates), fix(diff.moved), diff.gone_templates)
