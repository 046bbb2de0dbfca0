"""precompute on a Dask LocalCluster of worker processes against the single-process job, at 100k synthetic articles.

    python benchmarks/bench_dask.py            # --n 100000 --workers 2 --repeats 3

The model is built and saved in a fresh process, then loaded (memory-mapped) by another, which runs both
jobs into SQLite, interleaved (local, cluster, local, cluster, ...) so the machine's load shifts hit both
alike; times are medians. The cluster is started once, as `dask scheduler` / `dask worker` would be, and
each cluster job ships the model to its workers again, as every `precompute --scheduler` run does. The
lists are compared row for row; peak memory is each process's own (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(n: int, seed: int, path: str) -> dict[str, Any]:
    from synthetic import generate

    from recommender import Recommender

    syn = generate(n, seed)
    model = Recommender().fit_counts(syn.counts, syn.articles)
    model.save(path)
    return {"terms": model.matrix_.shape[1], "nnz": model.matrix_.nnz}


def related_rows(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT article_id, rank, related_id, score FROM related ORDER BY rowid").fetchall()
    finally:
        conn.close()


def _cpu_seconds() -> float:
    """CPU time of this process, all its threads (user + system)."""
    times = os.times()
    return times.user + times.system


def _warm_up() -> None:
    from recommender import Article, Recommender
    from recommender.cluster import compute_block

    model = Recommender(n_jobs=1).fit([Article(id=str(i), title=f"kata{i} umum") for i in range(3)])
    compute_block(model.fitted_state(), 1, model.ranking_options(), None, 0, 3)


def run(model_path: str, tmp: str, workers: int, repeats: int) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    from recommender import Recommender, precompute

    model = Recommender.load(model_path)
    started = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    )
    client = Client(cluster)
    startup = time.perf_counter() - started
    started = time.perf_counter()
    client.run(_warm_up)  # what a fresh worker's first job pays once: imports, the compiled kernel's load
    warm_up = time.perf_counter() - started
    local_out, cluster_out = Path(tmp) / "local.sqlite", Path(tmp) / "cluster.sqlite"
    local_times, cluster_times, local_cpu, cluster_cpu, modes = [], [], [], [], set()
    for _ in range(repeats):
        before = _cpu_seconds()
        result = precompute(model, local_out, 10)
        local_cpu.append(_cpu_seconds() - before)
        local_times.append(result.seconds)
        modes.add(result.mode)
        before, workers_before = _cpu_seconds(), client.run(_cpu_seconds)
        result = precompute(model, cluster_out, 10, scheduler=client)
        workers_after = client.run(_cpu_seconds)
        spent = sum(workers_after[w] - workers_before[w] for w in workers_after)
        cluster_cpu.append(_cpu_seconds() - before + spent)
        cluster_times.append(result.seconds)
        modes.add(result.mode)
    worker_peaks = client.run(_peak_mb)
    started = time.perf_counter()
    client.close()
    cluster.close()
    shutdown = time.perf_counter() - started
    identical = related_rows(local_out) == related_rows(cluster_out)
    return {
        "local": local_times,
        "cluster": cluster_times,
        "local_cpu": local_cpu,
        "cluster_cpu": cluster_cpu,
        "startup": startup,
        "warm_up": warm_up,
        "shutdown": shutdown,
        "modes": sorted(modes),
        "pairs": result.pairs,
        "identical": identical,
        "worker_peaks": sorted(worker_peaks.values()),
        "client_peak": _peak_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", default=None, help="folder for the model and the stores (default: system temp)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = str(Path(tmp) / "model.joblib")
        with ctx.Pool(1) as pool:  # built in its own process: its peak memory is not the jobs'
            built = pool.apply(build, (args.n, args.seed, path))
        from recommender.model import data_path

        size_mb = os.path.getsize(data_path(path)) / 2**20  # the data file the manifest names
        r = run(path, tmp, args.workers, args.repeats)
    print(f"corpus: synthetic, {args.n:,} articles (seed {args.seed}), {built['terms']:,} terms, "
          f"{built['nnz']:,} nonzeros; model {size_mb:.0f}MB on disk")  # fmt: skip
    print(f"precompute into SQLite, k=10, mode {'/'.join(r['modes'])}, {r['pairs']:,} links; "
          f"median of {args.repeats}, interleaved\n")  # fmt: skip
    local, cluster = statistics.median(r["local"]), statistics.median(r["cluster"])
    print(f"{'job':48} {'median':>8}  {'runs':18} {'CPU (median)':>12}")
    for label, times, cpu in (
        ("single process, 2 kernel threads", r["local"], r["local_cpu"]),
        (f"LocalCluster, {args.workers} worker processes x 1 thread", r["cluster"], r["cluster_cpu"]),
    ):
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(f"{label:48} {statistics.median(times):7.1f}s  {runs:18} {statistics.median(cpu):11.1f}s")
    pairs = ", ".join(f"{100 * (c / s - 1):+.0f}%" for s, c in zip(r["local"], r["cluster"], strict=True))
    print(f"\noverhead of the cluster job: {100 * (cluster / local - 1):+.1f}% (per interleaved pair: {pairs})")
    once = r["startup"] + r["warm_up"] + r["shutdown"]
    print(f"once per cluster, not per job: start {r['startup']:.1f}s, first-job warm-up of the workers "
          f"{r['warm_up']:.1f}s, shutdown {r['shutdown']:.1f}s; a `--workers {args.workers}` run pays all three: "
          f"{100 * ((cluster + once) / local - 1):+.1f}%")  # fmt: skip
    cpu_ratio = statistics.median(r["cluster_cpu"]) / statistics.median(r["local_cpu"])
    print(f"CPU time, client and workers together: {100 * (cpu_ratio - 1):+.1f}% (steadier than wall time here)")
    print(f"lists identical to the single-process job: {'yes' if r['identical'] else 'NO'}")
    peaks = ", ".join(f"{p:.0f}MB" for p in r["worker_peaks"])
    print(f"peak RSS: each worker {peaks}; the client (both jobs, model memory-mapped) {r['client_peak']:.0f}MB")


if __name__ == "__main__":
    main()
