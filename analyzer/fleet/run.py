"""Where the bundles are analysed: in this process (`jobs=1`), a local process pool, or a Dask
cluster. Whatever runs them, outcomes come back sorted by bundle name, so every output is the
same bytes whatever `jobs` or the cluster."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

from analyzer.fleet.one import Outcome, Settings, analyze_one
from analyzer.fleet.sources import Target

# done bundles, all bundles, done bytes, all bytes, the bundle just finished
Progress = Callable[[int, int, int, int, str], None]


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run(targets: Sequence[Target], settings: Settings, *, jobs: int | None = None, cluster: str | None = None,
        progress: Progress | None = None, on_outcome: Callable[[Outcome], Outcome] | None = None) -> list[Outcome]:
    """Every target analysed by `analyze_one`, sorted by name. `cluster`: a Dask scheduler address,
    or `local` for a `LocalCluster` of `jobs` workers; else `jobs` processes (1: this one).
    `on_outcome` sees each outcome as it arrives and returns what to keep of it (the CLI writes the
    reports and keeps the rest, so hundreds of HTML reports are never held at once)."""
    total_bytes = sum(t.size for t in targets)
    done: list[Outcome] = []

    def finished(outcome: Outcome) -> None:
        done.append(outcome if on_outcome is None else on_outcome(outcome))
        if progress is not None:
            progress(len(done), len(targets), sum(o.size for o in done), total_bytes, outcome.name)

    if cluster is not None:
        from analyzer.fleet.cluster import run_on_cluster

        run_on_cluster(targets, settings, cluster, jobs or default_jobs(), finished)
    elif (jobs or default_jobs()) <= 1 or len(targets) <= 1:
        for t in targets:
            finished(analyze_one(t, settings))
    else:
        import multiprocessing

        # spawn, not fork: polars' thread pool does not survive a fork
        ctx = multiprocessing.get_context("spawn")
        workers = min(jobs or default_jobs(), len(targets))
        # polars sizes its thread pool by the cores: N processes share them instead of each taking all
        # (os.putenv: the child's C environment, read when polars starts, before any task is unpickled)
        threads = str(max(1, default_jobs() // workers))
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=os.putenv,
                                 initargs=("POLARS_MAX_THREADS", threads)) as pool:
            futures = [pool.submit(analyze_one, t, settings) for t in targets]
            for f in as_completed(futures):
                finished(f.result())
    return sorted(done, key=lambda o: o.name)
