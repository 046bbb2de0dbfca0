"""Single lookups and model loading at 100k synthetic articles, each beside its baseline.

    python benchmarks/bench_lookups.py            # --n 100000 --queries 500

- free text (a draft's title and body): ``related_to_text`` (analysis, then the inverted-index kernel)
  against ``NearestNeighbors(metric="cosine", algorithm="brute").kneighbors`` on the same matrix,
  given the same analysed query vector (analysis timed in both);
- by id: ``RelatedStore.related`` on the precomputed SQLite store, and ``Recommender.related``
  computing the list live;
- model load: ``Recommender.load`` (memory-mapped, manifest and SHA-256 checked) against a plain
  ``joblib.load`` of the same file; the model's size on disk.

p50/p99 over the queries, after 20 warm-up queries; load is the median of 7 fresh loads.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import generate

from recommender import Recommender, RelatedStore, precompute
from recommender.model import data_path


def percentiles(fn: Callable[[int], object], count: int) -> tuple[float, float]:
    for i in range(20):
        fn(i)
    times = []
    for i in range(count):
        started = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - started)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    syn = generate(args.n, args.seed)
    model = Recommender().fit_counts(syn.counts, syn.articles)
    rng = np.random.default_rng(1)
    picks = rng.choice(args.n, size=args.queries + 20, replace=False)
    matrix, terms = syn.counts.matrix, syn.counts.terms

    def draft(i: int) -> tuple[str, str]:
        row = int(picks[i])
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        body = ". ".join(terms[t] for t in matrix.indices[lo:hi])
        return syn.articles[row].title, body

    drafts = [draft(i) for i in range(len(picks))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        model.save(path)
        store_path = Path(tmp) / "related.sqlite"
        pre = precompute(model, store_path, 10)
        data = data_path(path)  # the file the manifest names
        size_mb = data.stat().st_size / 2**20

        def timed(fn: Callable[[], object]) -> float:
            started = time.perf_counter()
            fn()
            return time.perf_counter() - started

        load_ours = statistics.median(timed(lambda: Recommender.load(path)) for _ in range(7))
        load_base = statistics.median(timed(lambda: joblib.load(data)) for _ in range(7))

        served = Recommender.load(path)
        text_ours = percentiles(
            lambda i: served.related_to_text(title=drafts[i][0], body=drafts[i][1], k=10), args.queries
        )

        ids = [syn.articles[int(p)].id for p in picks]
        store = RelatedStore(store_path)
        id_store = percentiles(lambda i: store.related(ids[i]), args.queries)
        id_live = percentiles(lambda i: served.related(ids[i], k=10), args.queries)

        # The baseline last: its BLAS threads keep spinning after each call, and on two cores they took
        # the CPU from whatever was measured next (by-id p99 2.7 ms after it, 0.3 ms before it).
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=10, metric="cosine", algorithm="brute").fit(served.matrix_)
        text_base = percentiles(lambda i: nn.kneighbors(served.vectorize(*drafts[i])), args.queries)

    print(f"corpus: synthetic, {args.n:,} articles, {model.matrix_.shape[1]:,} terms; {args.queries} queries")
    print(f"store: precomputed in {pre.seconds:.1f}s ({pre.mode})\n")
    print(f"{'measure':38} {'ours p50':>9} {'p99':>8}   {'baseline p50':>12} {'p99':>8}  baseline is")
    ours = f"{text_ours[0]:9.2f} {text_ours[1]:8.2f}"
    base = f"{text_base[0]:12.2f} {text_base[1]:8.2f}"
    print(f"{'free-text lookup (ms)':38} {ours}   {base}  sklearn brute kneighbors, same vector")
    print(f"{'lookup by id, precomputed store (ms)':38} {id_store[0]:9.3f} {id_store[1]:8.3f}")
    print(f"{'lookup by id, computed live (ms)':38} {id_live[0]:9.2f} {id_live[1]:8.2f}")
    print(f"\n{'model load (s)':38} {load_ours:9.3f} {'':8}   {load_base:12.3f} {'':8}  plain joblib.load")
    print(f"{'model size on disk':38} {size_mb:8.0f}MB")


if __name__ == "__main__":
    main()
