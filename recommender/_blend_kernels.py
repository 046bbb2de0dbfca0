"""The compiled meaning gate of :mod:`recommender.blend`: each list's pool under the score floor, gated by
the semantic cosine and re-ranked (:func:`gate_pools`).

numba keys its on-disk cache (``cache=True``) on the stamp of the file a kernel is in, so kernels kept
apart from the Python that calls them are not recompiled when that Python is edited
(``benchmarks/bench_kernel_cache.py``).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["gate_pools"]


@numba.njit(nogil=True, cache=True)
def gate_pools(
    rows, scores, queries, bits, present, half, min_score, min_results, start, span, out_rows, out_scores, out_cos
):
    n_queries, pool = rows.shape
    dim = queries.shape[1]
    for i in range(n_queries):
        has = False
        for t in range(dim):
            if queries[i, t] != 0:
                has = True
                break
        above = 0
        for j in range(pool):
            if rows[i, j] >= 0 and scores[i, j] > 0 and np.float64(scores[i, j]) >= min_score:
                above += 1
        fill = max(min_results - above, 0)
        keep = np.zeros(pool, np.bool_)
        for j in range(pool):
            if rows[i, j] < 0 or scores[i, j] <= 0:
                continue
            if np.float64(scores[i, j]) >= min_score:
                keep[j] = True
            elif fill > 0:
                keep[j] = True
                fill -= 1
        cos = np.full(pool, np.nan, np.float32)
        factor = np.ones(pool, np.float32)
        total = np.float32(0.0)
        count = 0
        if has:
            for j in range(pool):
                r = rows[i, j]
                if keep[j] and present[r]:
                    acc = np.float32(0.0)
                    for t in range(dim):
                        acc += half[bits[r, t]] * queries[i, t]
                    cos[j] = acc
                    g = min(max((acc - start) / span, np.float32(0.0)), np.float32(1.0))
                    factor[j] = g
                    total += g
                    count += 1
            mean = total / np.float32(count) if count > 0 else np.float32(1.0)
            for j in range(pool):
                if keep[j] and not present[rows[i, j]]:
                    factor[j] = mean
        weighed = np.full(pool, np.float32(-1.0), np.float32)
        for j in range(pool):
            if keep[j]:
                weighed[j] = scores[i, j] * factor[j]
        order = np.argsort(-weighed, kind="mergesort")
        for j in range(pool):
            o = order[j]
            if weighed[o] > 0:  # a gate of 0 (meanings far apart) drops the candidate, as a score of 0 does
                out_rows[i, j] = rows[i, o]
                out_scores[i, j] = weighed[o]
                out_cos[i, j] = cos[o]
