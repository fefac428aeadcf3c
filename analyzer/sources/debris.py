"""What copying a log leaves on its lines, removed before the lines are read (issue 13).

People hand over logs the way they copied them: pasted into Markdown (a backtick or `**` glued
to the first and last line), exported from a log UI as CSV (each line a quoted field, inner
quotes doubled), or copied off a terminal UI (box-drawing borders around panes). Each shape is
recognised on the head of the lines only, so a log that has none pays one regex on 200 lines.

- Markdown: a line opening with `` ` `` (not a fence) or `**` glued to text (`**=ERROR REPORT…`),
  a line closing with one (`…timeout: 60s**`); a line of a lone backtick becomes blank.
- CSV export: most lines are one quoted field (`"[2025-01-20 …] Couldn't ack …"`); the quotes
  are removed and `""` becomes `"`.
- TUI borders: most lines hold box-drawing characters (`│`, `┌─…─┐`); each line keeps its
  widest pane (side-by-side panes are cut apart at the borders), without the borders.
"""

from __future__ import annotations

import polars as pl

HEAD = 200
# an opening backtick or bold marker glued to text, not a fence (```); `**` then text, not `***`
MD_OPEN_RE = r"^(?:`[^`\s]|\*\*[^*\s])"
MD_STRIP_OPEN = r"^(?:`|\*\*)([^`*\s])"
MD_STRIP_CLOSE = r"([^*\s`])(?:\*\*|`)\s*$"
# one CSV field per line: `"…"` with inner quotes doubled
CSV_LINE_RE = r'^"(?:[^"]|"")*"$'
# box drawing (U+2500-U+257F): the borders of a terminal UI's panes
BOX_RE = r"[\u2500-\u257F]"
BOX_SPLIT_RE = r"[\u2502\u2503\u2551\u250C-\u254B\u2554-\u256C]+"  # vertical borders and corners cut panes
SHARE = 0.6  # of the head's non-blank lines, the share that must show a shape


def clean(df: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """`df` (`text` column) with copy debris removed, and a note per shape found."""
    head = df.head(HEAD).filter(pl.col("text").str.strip_chars() != "")
    if not head.height:
        return df, []
    text = pl.col("text")
    md, csv, box = head.select(text.str.contains(MD_OPEN_RE).any().alias("md"),
                               text.str.contains(CSV_LINE_RE).mean().alias("csv"),
                               text.str.contains(BOX_RE).mean().alias("box")).row(0)
    notes = []
    if csv and csv >= SHARE:
        quoted = text.str.contains(CSV_LINE_RE)
        df = df.with_columns(pl.when(quoted).then(text.str.slice(1, text.str.len_chars() - 2)
                                                  .str.replace_all('""', '"', literal=True)).otherwise(text)
                             .alias("text"))
        notes.append("lines unquoted (a CSV export: one quoted field per line)")
    if box and box >= SHARE:
        panes = text.str.replace_all(BOX_SPLIT_RE, "\x00").str.split("\x00").list.eval(
            pl.element().str.replace_all(BOX_RE, " ").str.strip_chars())
        widest = panes.list.eval(pl.element().sort_by(pl.element().str.len_chars(), descending=True).first())
        df = df.with_columns(pl.when(text.str.contains(BOX_RE)).then(widest.list.first().fill_null(""))
                             .otherwise(text).alias("text"))
        notes.append("terminal UI borders removed (each line's widest pane kept)")
    if md:
        df = df.with_columns(text.str.replace(MD_STRIP_OPEN, "$1").str.replace(MD_STRIP_CLOSE, "$1")
                             .str.replace(r"^`\s*$", ""))
        notes.append("Markdown marks removed from the start and end of lines")
    return df, notes
