"""`analyze-many --cluster`: the same `analyze_one` on Dask distributed workers, one task per bundle.

A bundle of `chunked_bytes()` or more is read here instead, its big logs in pieces, each piece
mapped on a worker by the same `map_records` (`pipeline.stream.Submit`); the partials come back
pickled (polars frames travel as Arrow IPC) and merge here exactly as in one process.

`local` starts a `LocalCluster` of worker processes on loopback (no dashboard) for this run; any
other value is the address of a running scheduler (`tcp://host:8786`), whose workers must see the
bundles' paths (or reach their URLs) and run the same version of celery-postmortem. Outcomes come
back pickled (their frames as Arrow) and are sorted by the caller, so the output is the local one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial

from analyzer.fleet.one import Outcome, Settings, analyze_one
from analyzer.fleet.sources import Target

CHUNKED_BYTES = 256 << 20
CHUNKED_ENV = "CPM_CLUSTER_CHUNKED_BYTES"  # tests cut the samples


def chunked_bytes() -> int:
    """Bundles this big or bigger are mapped piece by piece on the cluster (`CPM_CLUSTER_CHUNKED_BYTES`)."""
    raw = os.environ.get(CHUNKED_ENV, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else CHUNKED_BYTES


class ClusterError(RuntimeError):
    """No Dask, or no scheduler at the address."""


def run_on_cluster(targets: Sequence[Target], settings: Settings, address: str, workers: int,
                   finished: Callable[[Outcome], None]) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - the [cluster] extra
        raise ClusterError("--cluster needs dask.distributed (pip install 'celery-postmortem[cluster]')") from exc
    cluster = None
    try:
        if address == "local":
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(address, timeout="20s")
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise ClusterError(f"--cluster {address}: cannot reach the scheduler: {exc}") from None
    try:
        big = [t for t in targets if t.size >= chunked_bytes()]
        futures = client.map(analyze_one, [t for t in targets if t not in big], settings=settings, pure=False)
        for t in big:  # while the small ones run on the workers
            finished(analyze_one(t, settings, submit=partial(client.submit, pure=False)))
        for future in as_completed(futures):
            finished(future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
