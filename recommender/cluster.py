"""The batch job on a Dask cluster: every article's list computed by Dask workers, written here.

The model is shipped to every worker once; each task computes one block of rows through the same
code as the local job (:func:`recommender.blocks.all_related`), so the lists are identical. Blocks come back
as they finish and are handed to the store in row order, each exactly once, even when a killed worker's
blocks are run again elsewhere.

Dask is an optional dependency (``pip install recommender[dask]``), imported only when a job asks for
a cluster.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ._progress import ProgressCallback
from ._version import __version__
from .blocks import all_related
from .errors import ClusterError, InvalidParameterError
from .lookups import search_index
from .neighbors import BLOCK_ROWS, Approx, Block, Plan, cost_per_row
from .ranking import RankingOptions
from .state import FittedState

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["BLOCKS_PER_THREAD", "check_cluster_options", "cluster_blocks", "compute_block", "connect"]

BLOCKS_PER_THREAD = 8  # at least this many blocks per worker thread, so a slow one cannot hold up the end

_INSTALL = "install recommender[dask] (pip install 'recommender[dask]')"


def check_cluster_options(scheduler: object, workers: int | None) -> None:
    """Fail early, before any slow step, on a cluster request that cannot work: both kinds at once, no
    workers, or Dask not installed."""
    if scheduler is not None and workers is not None:
        raise InvalidParameterError("choose one of --scheduler (an existing cluster) and --workers (a local one)")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InvalidParameterError(f"workers must be a whole number of 1 or more, got {workers!r}")
    _distributed()


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"running precompute on a Dask cluster needs Dask: {_INSTALL}") from None
    return distributed


@contextmanager
def connect(scheduler: str | Client | None = None, workers: int | None = None) -> Iterator[Client]:
    """A client of the cluster at ``scheduler`` (an address, or a :class:`distributed.Client` to reuse), or
    of a local cluster of ``workers`` processes (1 thread each, on 127.0.0.1), closed on exit."""
    check_cluster_options(scheduler, workers)
    distributed = _distributed()
    if isinstance(scheduler, distributed.Client):
        yield scheduler  # the caller's: left open
        return
    if scheduler is None:
        # One thread per process: the kernel runs one thread per task, so N workers use N cores.
        with (
            distributed.LocalCluster(
                n_workers=workers or 1,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                # Its HTTP server on any free port of this host: the default 8787 may be another cluster's.
                dashboard_address="127.0.0.1:0",
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = distributed.Client(str(scheduler))
    except (OSError, ValueError, TypeError) as exc:  # timeout, refused, or not an address at all
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    with client:
        yield client


def _worker_version() -> str:
    return __version__


def _check_workers(client: Client) -> int:
    """Wait for at least one worker; check every worker runs this version. Returns the worker threads."""
    timeout = _connect_timeout()
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        address = client.scheduler.address if client.scheduler else "the scheduler"
        raise ClusterError(
            f"no Dask workers joined {address} within {timeout:g} s: start some with `dask worker {address}`"
        ) from None
    versions = client.run(_worker_version, on_error="return")
    for worker, version in versions.items():
        if isinstance(version, BaseException):
            raise ClusterError(f"Dask worker {worker} cannot run recommender ({version!r}): install it on every worker")
        if version != __version__:
            raise ClusterError(
                f"Dask worker {worker} has recommender {version}, this process {__version__}: "
                "install the same version everywhere, so every list is computed alike"
            )
    return max(1, sum(client.nthreads().values()))


def _connect_timeout() -> float:
    import dask.config
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s"))


def split_rows(cumulative_cost: np.ndarray, block_rows: int, blocks: int) -> list[tuple[int, int]]:
    """Rows ``0..n`` as ``(start, stop)`` blocks of about equal cost (``cumulative_cost[i]``: of rows ``0..i``),
    at least ``blocks`` of them and none longer than ``block_rows``: every worker busy to the end."""
    n = cumulative_cost.shape[0]
    if n == 0:
        return []
    count = min(n, max(blocks, math.ceil(n / block_rows)))
    total = float(cumulative_cost[-1])
    cuts = np.searchsorted(cumulative_cost, total * np.arange(1, count) / count, side="right") if total > 0 else []
    edges = sorted({0, n, *(int(c) for c in cuts if 0 < c < n)})
    bounds: list[tuple[int, int]] = []
    for lo, hi in itertools.pairwise(edges):
        pieces = math.ceil((hi - lo) / block_rows)  # cheap rows: cut long runs to bound a block's memory
        step = math.ceil((hi - lo) / pieces)
        bounds.extend((start, min(hi, start + step)) for start in range(lo, hi, step))
    return bounds


def _plain(value: Any) -> Any:
    """``value`` with memory-mapped arrays as plain views of the same memory. A memmap is pickled in band (a
    copy into the message, another out of it on the worker); a plain array travels as its own buffer."""
    if isinstance(value, np.ndarray):
        return np.asarray(value)
    if isinstance(value, sp.csr_matrix):
        plain = sp.csr_matrix(value.shape, dtype=value.dtype)
        plain.data, plain.indices, plain.indptr = (
            np.asarray(value.data),
            np.asarray(value.indices),
            np.asarray(value.indptr),
        )
        return plain
    return value


def compute_block(
    state: FittedState, k: int, options: RankingOptions, approx: Approx | None, start: int, stop: int
) -> Block:
    """On a worker: rows ``start..stop`` through the same code the local job runs (one kernel thread per
    task: a worker runs as many tasks as it has threads)."""
    rows = np.arange(start, stop, dtype=np.int64)
    (block,) = all_related(state, k, options, approx=approx, rows=rows, block_rows=stop - start, threads=1)
    return Block(start, block.indices, block.scores)


def cluster_blocks(
    state: FittedState,
    k: int,
    plan: Plan,
    options: RankingOptions,
    *,
    scheduler: str | Client | None = None,
    workers: int | None = None,
    block_rows: int = BLOCK_ROWS,
    progress: ProgressCallback | None = None,
) -> Iterator[Block]:
    """Every article's top-``k`` list computed on a Dask cluster (see :func:`connect`), in blocks in row order,
    as :meth:`Recommender.all_related` yields them locally. Connects when first iterated, disconnects (and
    shuts a local cluster down) when exhausted or closed. ``progress(done, total)`` counts the multiply-adds
    of the blocks finished so far, in the local job's units."""
    with connect(scheduler, workers) as client:
        yield from _run(client, state, k, plan, options, block_rows, progress)


# How often a job sends the model again after the cluster lost every copy of it.
MODEL_RESENDS = 3


def _run(
    client: Client,
    state: FittedState,
    k: int,
    plan: Plan,
    options: RankingOptions,
    block_rows: int,
    progress: ProgressCallback | None,
) -> Iterator[Block]:
    distributed = _distributed()
    threads = _check_workers(client)
    n = len(state)
    # Enough blocks to keep every worker thread busy to the end; never larger than asked.
    cost = np.cumsum(cost_per_row(search_index(state), plan.approx), dtype=np.float64)
    total = int(cost[-1]) if n else 0
    bounds = split_rows(cost, max(1, block_rows), threads * BLOCKS_PER_THREAD)
    starts = [start for start, _ in bounds]
    stops = dict(bounds)

    # Shares the arrays (as plain views); pickled without its lookup tables.
    shipped = dataclasses.replace(
        state, **{f.name: _plain(getattr(state, f.name)) for f in dataclasses.fields(state) if f.name != "memo"}
    )
    job = uuid.uuid4().hex[:8]

    def submit(sent: int, todo: list[tuple[int, int]]) -> tuple[Any, list[Any]]:
        """Send the model, then the blocks of ``todo`` that take it; ``sent`` numbers the sending."""
        model_future = client.scatter(shipped, broadcast=True, hash=False)
        futures = [
            client.submit(
                compute_block,
                model_future,
                k,
                options,
                plan.approx,
                start,
                stop,
                key=f"recommender-block-{job}-{sent}-{start}",
                priority=len(bounds) - i,  # earlier rows first: the writer takes blocks in row order
            )
            for i, (start, stop) in enumerate(todo)
        ]
        return model_future, futures

    sent = 0
    model_future, futures = submit(sent, bounds)
    pending: dict[int, Block] = {}
    written: set[int] = set()
    next_index = 0
    done = 0
    try:
        while True:
            try:
                for future in distributed.as_completed(futures):
                    block: Block = future.result()
                    future.release()  # the worker may drop the block now
                    # A block run twice (its worker died after finishing) is written once.
                    if block.start in written or block.start in pending:
                        continue
                    pending[block.start] = block
                    if progress is not None:
                        done += int(cost[stops[block.start] - 1] - (cost[block.start - 1] if block.start else 0))
                        progress(done, total)
                    while next_index < len(starts) and starts[next_index] in pending:
                        ready = pending.pop(starts[next_index])
                        written.add(ready.start)
                        next_index += 1
                        yield ready
                break
            except distributed.client.FutureCancelledError as exc:
                # The model's last copy went with a dying worker (Dask's memory manager keeps copies only
                # where blocks still need it): send it again, with the blocks not received yet.
                sent += 1
                if sent > MODEL_RESENDS:
                    raise ClusterError(f"the Dask cluster lost the job: {exc}") from None
                client.cancel([*futures, model_future])
                received = written | set(pending)
                model_future, futures = submit(sent, [(a, b) for a, b in bounds if a not in received])
    except distributed.KilledWorker as exc:  # the same block took down several workers: out of memory?
        raise ClusterError(f"Dask workers kept dying on one block ({exc}); give them more memory") from None
    finally:
        client.cancel([*futures, model_future])
    if next_index != len(starts):  # pragma: no cover - as_completed yields every future once
        raise ClusterError(f"the Dask cluster returned {next_index} of {len(starts)} blocks")
