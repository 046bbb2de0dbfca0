"""Long lists: a lookup's time as k grows, our near-duplicate selection beside the one it replaced.

    python benchmarks/bench_selection.py            # bundled corpus, 20 queries, k = 10 .. 1000

Both run inside the same ``Recommender.related`` call (no floor, so every list is k long): ours
(``greedy`` in ``recommender/_selection_kernels.py``, which ``ranking.choose`` calls: each candidate
compared with the chosen ones through their own inverted index) against the previous selection, which
merged the candidate's row with every chosen row in turn (quadratic in k), swapped in for the baseline
(as ``ranking.greedy``). The lists are checked identical. Medians over the queries.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

import recommender.ranking as ranking
from recommender import Recommender
from recommender._sparse import row_dot  # the merge both selections use
from recommender.corpus import bundled_corpus_path, read_articles


@numba.njit(nogil=True, cache=True)
def previous_greedy(rows, rel, k, x_indptr, x_indices, x_data, title_ids, dedup, diversity, slots):
    """The selection before issue 12, verbatim but for the unused ``slots``."""
    n = rows.shape[0]
    chosen = np.empty(min(k, n), np.int64)
    n_chosen = 0
    alive = np.ones(n, np.bool_)
    penalty = np.zeros(n, np.float64)
    while n_chosen < k:
        best = -1
        best_value = -np.inf
        for i in range(n):
            if not alive[i]:
                continue
            value = rel[i]
            if diversity > 0 and n_chosen > 0:
                value = (1 - diversity) * rel[i] - diversity * penalty[i]
            if value > best_value:
                best = i
                best_value = value
        if best < 0:
            break
        alive[best] = False
        b = rows[best]
        b_idx = x_indices[x_indptr[b] : x_indptr[b + 1]]
        b_val = x_data[x_indptr[b] : x_indptr[b + 1]]
        if dedup > 0:
            duplicate = False
            for j in range(n_chosen):
                c = rows[chosen[j]]
                if title_ids[c] == title_ids[b]:
                    duplicate = True
                    break
                sim = row_dot(
                    b_idx, b_val, x_indices[x_indptr[c] : x_indptr[c + 1]], x_data[x_indptr[c] : x_indptr[c + 1]]
                )
                if sim >= dedup:
                    duplicate = True
                    break
            if duplicate:
                continue
        chosen[n_chosen] = best
        n_chosen += 1
        if diversity > 0:
            for i in range(n):
                if alive[i]:
                    r = rows[i]
                    sim = row_dot(
                        b_idx, b_val, x_indices[x_indptr[r] : x_indptr[r + 1]], x_data[x_indptr[r] : x_indptr[r + 1]]
                    )
                    if sim > penalty[i]:
                        penalty[i] = sim
    return chosen[:n_chosen]


def timed(model: Recommender, ids: list[str], k: int) -> tuple[float, list[list[str]]]:
    seconds, lists = [], []
    for article_id in ids:
        started = time.perf_counter()
        results = model.related(article_id, k, min_score=0)
        seconds.append(time.perf_counter() - started)
        lists.append([r.id for r in results])
    return statistics.median(seconds), lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--model", type=Path, default=None, help="a saved model (default: train on the bundled corpus)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores")
    if args.model is not None:
        model = Recommender.load(args.model)
    else:
        with tempfile.TemporaryDirectory():
            model = Recommender.train(read_articles(bundled_corpus_path()).articles)
    rng = np.random.default_rng(0)
    ids = [model.ids_[int(i)] for i in rng.choice(len(model), size=args.queries, replace=False)]
    ours = ranking.greedy
    print(f"corpus: {len(model):,} articles; {args.queries} queries; median time of one related() call\n")
    print(f"{'k':>6} {'previous selection':>20} {'ours':>10} {'speed-up':>9}  lists")
    for k in (10, 100, 300, 1000):
        timed(model, ids[:2], k)  # compiled, warm
        new_time, new_lists = timed(model, ids, k)
        ranking.greedy = previous_greedy
        try:
            timed(model, ids[:2], k)
            old_time, old_lists = timed(model, ids, k)
        finally:
            ranking.greedy = ours
        same = "identical" if new_lists == old_lists else "DIFFER"
        print(f"{k:>6} {old_time * 1000:>18.1f}ms {new_time * 1000:>8.1f}ms {old_time / new_time:>8.1f}x  {same}")


if __name__ == "__main__":
    main()
