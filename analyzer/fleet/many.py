"""`analyze_many`: the library call behind `celery-postmortem analyze-many`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from analyzer.fleet.one import Outcome, Settings
from analyzer.fleet.run import Progress, run
from analyzer.fleet.sources import expand
from analyzer.fleet.summary import bundles_frame


def outcomes(sources: Sequence[str | Path], settings: Settings, *, jobs: int | None = None,
             cluster: str | None = None, progress: Progress | None = None,
             on_outcome: Callable[[Outcome], Outcome] | None = None) -> list[Outcome]:
    """Every bundle the sources name, analysed (sorted by bundle name; `run` for the options)."""
    return run(expand([str(s) for s in sources]), settings, jobs=jobs, cluster=cluster, progress=progress,
               on_outcome=on_outcome)


def analyze_many(sources: str | Path | Sequence[str | Path], *, jobs: int | None = None, cluster: str | None = None,
                 rules: Sequence[str | Path] = (), select: Sequence[str] = (), ignore: Sequence[str] = (),
                 log_formats: Sequence[str] = (), tz: str | None = None, redact: bool = True) -> pl.DataFrame:
    """One row per bundle (`fleet.summary.BUNDLES`): verdict, root cause and a `findings` list of
    every finding's signature; `fleet.summary.signatures_frame(df)` tabulates the signatures.

    `sources`: directories of bundles, manifests, globs, URLs or bundles (`fleet.sources`);
    `jobs`: processes (default: the cores); `cluster`: a Dask scheduler address or `"local"`.
    """
    given = [sources] if isinstance(sources, (str, Path)) else list(sources)
    settings = Settings(rules=tuple(str(r) for r in rules), select=tuple(select), ignore=tuple(ignore),
                        log_formats=tuple(log_formats), tz=tz, redact=redact)
    return bundles_frame(outcomes(given, settings, jobs=jobs, cluster=cluster))
