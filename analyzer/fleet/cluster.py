"""`analyze-many --cluster`: the same `analyze_one` on Dask distributed workers, one task per bundle.

`local` starts a `LocalCluster` of worker processes on loopback (no dashboard) for this run; any
other value is the address of a running scheduler (`tcp://host:8786`), whose workers must see the
bundles' paths (or reach their URLs) and run the same version of celery-postmortem. Outcomes come
back pickled (their frames as Arrow) and are sorted by the caller, so the output is the local one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from analyzer.fleet.one import Outcome, Settings, analyze_one
from analyzer.fleet.sources import Target


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
        futures = client.map(analyze_one, list(targets), settings=settings, pure=False)
        for future in as_completed(futures):
            finished(future.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
