"""Folding a log's lines into records: a record is its first line and the lines that continue it.

Shared by every reader of text logs (Celery's layouts, users' formats, lines in no layout, server logs),
so a traceback is one record with its exception type, whichever layout its first line is in.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analyzer.order import timeline

# The first unindented line after a traceback's last frame: `billiard.exceptions.WorkerLostError: …`
EXC_LINE_RE = r"^((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)(?::|$)"


def fold(df: pl.DataFrame, starts: pl.DataFrame, *, over: Sequence[str] = ()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Fold continuation lines into the record before them.

    `df` is every line (`line`, `text`, `stream`, `_start`, and `_row` when it holds several
    files); `starts` holds the record-starting rows with their parsed fields and a `message`.
    A record never reaches across the groups of `over` (a container stream, a file). Returns
    `df` with `_rec` (the row of each line's record, null before the first) and `starts` with
    `text` (message plus continuation lines), `end_line` and `exc_type` (the line after a
    traceback's last frame).
    """
    row = "_row" if "_row" in df.columns else "line"  # unique per line: a record's id
    rec = pl.when(pl.col("_start")).then(pl.col(row)).forward_fill()
    keys = [pl.col(k).fill_null("") if df.schema[k] == pl.String else pl.col(k) for k in over]
    df = df.with_columns((rec.over(keys) if keys else rec).alias("_rec"))
    cont = df.filter(~pl.col("_start") & pl.col("_rec").is_not_null())
    # a start row's record is its own row: no join needed
    starts = timeline(starts.with_columns(pl.col(row).alias("_rec")), (row,))
    if not cont.height:
        return df, starts.with_columns(pl.col("line").alias("end_line"), pl.col("message").alias("text"),
                                       pl.lit(None, dtype=pl.String).alias("exc_type"))
    last_frame = pl.when(pl.col("text").str.starts_with('  File "')).then(pl.col("line")).max().over("_rec")
    cont = cont.with_columns(last_frame.alias("_lf"))
    exc = (
        cont.filter(
            pl.col("_lf").is_not_null() & (pl.col("line") > pl.col("_lf"))
            & ~pl.col("text").str.starts_with(" ") & (pl.col("text") != "")
            & ~pl.col("text").str.starts_with('"""') & ~pl.col("text").str.starts_with("\t")
        )
        .group_by("_rec").agg(pl.col("text").sort_by("line").first().alias("_excl"))
        .with_columns(pl.col("_excl").str.extract(EXC_LINE_RE, 1).alias("exc_type"))
        .drop("_excl")
    )
    folded = cont.group_by("_rec").agg(
        pl.col("text").sort_by("line").str.join("\n").alias("_cont"),
        pl.col("line").max().alias("end_line"),
    ).join(exc, on="_rec", how="left")
    # the folded text is built for the records that have continuation lines only and scattered
    # into a copy of `message`: a scatter shares the strings it keeps, where a when/then or a
    # coalesce of two string columns copies every one of them
    multi = (starts.with_row_index("_i").select("_i", "_rec", "message").join(folded, on="_rec", how="inner")
             .select("_i", "end_line", "exc_type",
                     pl.concat_str(pl.col("message"), pl.lit("\n"), pl.col("_cont")).alias("_text")))
    at = multi.get_column("_i")
    text = starts.get_column("message").clone().scatter(at, multi.get_column("_text")).alias("text")
    end_line = starts.get_column("line").clone().scatter(at, multi.get_column("end_line")).alias("end_line")
    exc_type = (pl.repeat(None, starts.height, dtype=pl.String, eager=True).alias("exc_type")
                .scatter(at, multi.get_column("exc_type")))
    starts = starts.with_columns(text, end_line, exc_type)
    return df, starts
