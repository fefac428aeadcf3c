"""Layouts of text logs, detected from their own lines; lines no layout reads are records too.

DESIGN "Every line is evidence": a recognised layout adds time, level, process, host and task to a
record; an unrecognised line is still a record (layout `unknown`), so message rules run on it.

- `detect(head)` tries the known layouts on a sample of a file's first lines and keeps the one that
  reads most of them, as lnav does with its formats: Celery's default `worker_log_format`, or a
  `%`-style `logging` format learned from the lines themselves (`learn_formats`). The learned format
  is written like the user's `worker_log_format`, so the coverage can say which one was inferred
  and the user can pass it back with `--log-format`.
- Lines no layout reads become records of layout `unknown` (`analyzer.sources.unknown`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from analyzer.sources.log_format import LogFormat, compile_format

UNKNOWN = "unknown"  # the layout of lines no layout reads (`analyzer.pipeline.partial.UNKNOWN_LAYOUT`)
CELERY = "celery"  # Celery's default `[%(asctime)s: %(levelname)s/%(processName)s] %(message)s`
SAMPLE_LINES = 400  # lines of a file's head the layouts are tried on

# -- layout detection ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """What `detect` chose: `name` is `celery`, `unknown`, or `logging` with the learned `formats`."""

    name: str
    formats: tuple[str, ...] = ()
    share: float = 0.0  # of the sample's non-blank lines, the share that are headers in this layout

    @property
    def compiled(self) -> list[LogFormat]:
        return [compile_format(f, space_runs=True) for f in self.formats]

    def describe(self) -> str:
        """The coverage note naming the layout (the learned formats, ready for `--log-format`)."""
        if self.name == UNKNOWN:
            return "layout unknown: every line read as a record, time and level where written near its start"
        if self.formats:
            return "layout inferred: " + " | ".join(repr(f) for f in self.formats)
        return f"layout: {self.name}"


# Pieces of a `logging` header, tried in order at each position of a line (`learn_formats`): the regex
# matching the piece and the placeholder that writes it. Every regex is bounded.
_PIECES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), f) for p, f in (
    # `2026-11-28 19:05:09,375`, `2026-11-28T19:05:09.375+00:00`
    (r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?(?!\d)", "%(asctime)s"),
    (r"(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)(?!\w)", "%(levelname)s"),
    # billiard / multiprocessing process names
    (r"(?:MainProcess|(?:Fork|Spawn)?PoolWorker-\d{1,6}|Worker-\d{1,6}|Beat|Dummy-\d{1,6}|Process-\d{1,6}"
     r"(?::\d{1,6}){0,4}|MainThread)(?![\w-])", "%(processName)s"),
    # `proj.add[782236ed-8452-46bc-80b0-958f2fd2ea28]` (worker_task_log_format)
    (r"[\w.:<>-]{1,200}\[(?:[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|\?\?\?)\](?=[: ])", "%(task_name)s[%(task_id)s]"),
    # Airflow's `{taskinstance.py:1234}`, `[module.py:42]`
    (r"(?<=[{\[])[\w.-]{1,100}\.py:\d{1,6}(?=[}\]])", "%(filename)s:%(lineno)d"),
    # a dotted logger name before `: `, ` - `, ` | `, `]` (`celery.worker.strategy: `), or `root` /
    # `__main__`; before a bare `:` too (logging.basicConfig's `WARNING:root:message`)
    (r"(?:(?:[A-Za-z_]\w{0,60}\.){1,8}[A-Za-z_]\w{0,60}|root|__main__)(?=: | - | \| |\]|:[^\s/])", "%(name)s"),
    # a process id in brackets: `[12345]`
    (r"(?<=\[)\d{1,9}(?=\])", "%(process)d"),
))
# Separators between pieces: brackets, spaces, `-`, `|`, `:`, `/`, `,` (a run of at most 8)
_SEP = re.compile(r"[\s\[\]{}()<>|:/,-]{0,8}")
# a logger name is taken after a task, even without dots (`proj.add[…] proj: adding`)
_WORD_BEFORE_COLON = re.compile(r"[A-Za-z_][\w.]{0,120}(?=: )")


def header_shape(line: str) -> str | None:
    """The `%`-style format whose header this line has (`%(asctime)s %(levelname)s … %(message)s`), or
    None when its start holds no time and no level (not a header).

    Pieces are read left to right, each followed by separators; the first text that is no piece
    starts the message. Runs of spaces become one space (a learned format is compiled with
    `space_runs`) and the level is padded (`%(levelname)-8s`), so `%(levelname)-7s` lines of every
    level share one shape.
    """
    pos = 0
    parts: list[str] = []
    fields: list[str] = []
    while pos < len(line) and len(fields) < 8:
        sep = _SEP.match(line, pos)
        assert sep is not None
        at = sep.end()
        piece = None
        for regex, placeholder in _PIECES:
            m = regex.match(line, at)
            if m and m.end() > at:
                piece = (m, placeholder)
                break
        if piece is None and fields and fields[-1] == "%(task_name)s[%(task_id)s]":
            m = _WORD_BEFORE_COLON.match(line, at)
            piece = (m, "%(name)s") if m else None
        if piece is None:
            break
        m, placeholder = piece
        if placeholder in fields:
            break
        parts.append(_literal(line[pos:at]))
        parts.append(placeholder)
        fields.append(placeholder)
        pos = m.end()
    if not {"%(asctime)s", "%(levelname)s"} & set(fields):
        return None
    sep = _SEP.match(line, pos)
    assert sep is not None
    tail = line[pos:sep.end()]
    if not tail and pos < len(line):
        return None
    parts.append(_literal(tail))
    fmt = "".join(parts) + "%(message)s"
    # the level followed by spaces is padded: `%(levelname)s ` -> `%(levelname)-8s `
    return fmt.replace("%(levelname)s ", "%(levelname)-8s ")


def _literal(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("%", "%%")


def learn_formats(texts: Sequence[str], limit: int = 4) -> list[str]:
    """The header shapes of `texts`, most frequent first: those seen on at least two lines (or the one
    seen when the sample holds a single header), at most `limit`."""
    shapes = Counter(s for s in map(header_shape, texts) if s is not None)
    if not shapes:
        return []
    ranked = sorted(shapes.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = [s for s, n in ranked if n >= 2] or [ranked[0][0]]
    return kept[:limit]


def detect(lines: pl.DataFrame) -> Layout:
    """The layout that reads most of `lines` (a file's head, `text` column): Celery's default, a
    learned `logging` format, or unknown."""
    from analyzer.sources.celery_log import _custom_header, _default_candidates

    sample = lines.filter(pl.col("text").str.strip_chars() != "").head(SAMPLE_LINES)
    if not sample.height:
        return Layout(UNKNOWN)
    default = float(sample.select(_default_candidates().mean()).item() or 0.0)
    best = Layout(CELERY, share=default) if default else Layout(UNKNOWN)
    formats = learn_formats(sample.get_column("text").to_list())
    if formats:
        compiled = [compile_format(f, space_runs=True) for f in formats]
        share = float(_custom_header(sample.select("text"), compiled).select(pl.col("_hdr").mean()).item() or 0.0)
        if share > best.share:
            best = Layout("logging", tuple(formats), share)
    return best
