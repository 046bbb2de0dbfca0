"""The compiled choice of a list from its candidates, for :mod:`recommender.ranking`: near-duplicates
dropped (:func:`pick_in_order`) or maximal marginal relevance (:func:`pick_diverse`), one list
(:func:`greedy`) or many (:func:`greedy_rows`).

numba keys its on-disk cache (``cache=True``) on the stamp of the file a kernel is in, so kernels kept
apart from the Python that calls them are not recompiled when that Python is edited
(``benchmarks/bench_kernel_cache.py``).
"""

from __future__ import annotations

import numba
import numpy as np

from ._sparse import row_dot

__all__ = ["PREFIX_REST", "greedy", "greedy_rows", "pick_diverse", "pick_in_order", "title_groups"]


@numba.njit(nogil=True, cache=True)
def greedy_rows(rows, scores, k, x_indptr, x_indices, x_data, title_ids, dedup, diversity, out_rows, out_scores, slots):
    for r in range(rows.shape[0]):
        n_valid = 0
        while n_valid < rows.shape[1] and rows[r, n_valid] >= 0 and scores[r, n_valid] > 0:
            n_valid += 1
        cand = rows[r, :n_valid].copy()
        rel = scores[r, :n_valid].astype(np.float64)
        picked = greedy(cand, rel, k, x_indptr, x_indices, x_data, title_ids, dedup, diversity, slots)
        for j in range(picked.shape[0]):
            out_rows[r, j] = cand[picked[j]]
            out_scores[r, j] = scores[r, picked[j]]


@numba.njit(nogil=True, cache=True)
def greedy(rows, rel, k, x_indptr, x_indices, x_data, title_ids, dedup, diversity, slots):
    """Positions in ``rows`` of the chosen candidates, in the order chosen.

    ``slots`` is a zeroed int32 workspace with one entry per term (see :func:`recommender.ranking.term_slots`),
    left zeroed.
    """
    n = rows.shape[0]
    group = title_groups(rows, title_ids) if dedup > 0 else np.zeros(n, np.int64)
    ordered = True
    for i in range(1, n):
        if rel[i] > rel[i - 1]:
            ordered = False
            break
    if ordered and diversity <= 0:
        return pick_in_order(rows, k, x_indptr, x_indices, x_data, group, dedup, slots)
    return pick_diverse(rows, rel, k, x_indptr, x_indices, x_data, group, dedup, diversity, slots)


@numba.njit(nogil=True, cache=True)
def title_groups(rows, title_ids):
    """For each candidate, a group number shared by the candidates of the same title."""
    n = rows.shape[0]
    group = np.zeros(n, np.int64)
    keys = title_ids[rows]
    order = np.argsort(keys, kind="mergesort")
    g = 0
    for j in range(1, n):
        if keys[order[j]] != keys[order[j - 1]]:
            g += 1
        group[order[j]] = g
    return group


# A chosen row is indexed by its heaviest terms until the rest has at most this share of ``dedup`` as norm:
# a candidate is then merged with it only if what they share there, plus that rest, can reach ``dedup``.
# Halfway measured fastest on the bundled corpus (benchmarks/bench_selection.py): a shorter prefix lets
# more pairs through to the merge, a longer one costs more to index and probe.
PREFIX_REST = 0.5


@numba.njit(nogil=True, cache=True)
def pick_in_order(rows, k, x_indptr, x_indices, x_data, group, dedup, slots):
    """Candidates best first, skipping near-duplicates of those chosen.

    Prefix filtering, as in all-pairs similarity search: a chosen row is indexed by its heaviest terms
    only (see :data:`PREFIX_REST`); a candidate sharing none of them has a cosine below ``dedup`` with it,
    and one whose shared weight there plus the rest's norm stays below ``dedup`` too. Only the remaining
    pairs are compared, each by the same merge of the two rows as before: the same cosines, the same
    decisions, with work that follows the heavy terms two stories share instead of k times the candidates.
    """
    n = rows.shape[0]
    chosen = np.empty(min(k, n), np.int64)
    n_chosen = 0
    if dedup <= 0:
        for i in range(min(k, n)):
            chosen[i] = i
        return chosen
    size = 0
    for i in range(n):
        size += x_indptr[rows[i] + 1] - x_indptr[rows[i]]
    terms = np.empty(size, np.int64)  # local term id - 1 -> term
    head = np.empty(size, np.int64)  # local term -> its last posting among the chosen (-1: none)
    post_next = np.empty(size, np.int64)
    post_who = np.empty(size, np.int64)
    post_w = np.empty(size, np.float64)
    n_terms = 0
    n_post = 0
    margin = dedup - 1e-4  # float32 rows: a norm of 1 within about 1e-7, so this margin is ample
    limit = margin * PREFIX_REST
    bound = limit * limit if limit > 0 else -1.0
    rest_norm = np.zeros(min(k, n), np.float64)
    taken = np.zeros(n, np.bool_)
    acc = np.zeros(min(k, n), np.float64)
    seen = np.zeros(min(k, n), np.bool_)
    touched = np.empty(min(k, n), np.int64)
    for b in range(n):
        if n_chosen == k:
            break
        if taken[group[b]]:
            continue
        lo = x_indptr[rows[b]]
        hi = x_indptr[rows[b] + 1]
        n_touched = 0
        for p in range(lo, hi):
            local = slots[x_indices[p]]
            if local == 0:
                continue
            w = np.float64(x_data[p])
            q = head[local - 1]
            while q >= 0:
                j = post_who[q]
                if not seen[j]:
                    seen[j] = True
                    touched[n_touched] = j
                    n_touched += 1
                acc[j] += w * post_w[q]
                q = post_next[q]
        duplicate = False
        for m in range(n_touched):
            j = touched[m]
            seen[j] = False
            # The terms outside j's prefix add at most the norm of the rest (Cauchy-Schwarz).
            possible = acc[j] + rest_norm[j] + 1e-4 >= dedup
            acc[j] = 0.0
            if possible and not duplicate:
                c = rows[chosen[j]]
                lo_c = x_indptr[c]
                hi_c = x_indptr[c + 1]
                sim = row_dot(x_indices[lo:hi], x_data[lo:hi], x_indices[lo_c:hi_c], x_data[lo_c:hi_c])
                duplicate = sim >= dedup
        if duplicate:
            continue
        taken[group[b]] = True
        values = x_data[lo:hi]
        rest = 0.0
        for v in values:
            rest += np.float64(v) * np.float64(v)
        for o in np.argsort(-values, kind="mergesort"):
            if rest < bound:
                break
            t = x_indices[lo + o]
            if slots[t] == 0:
                terms[n_terms] = t
                head[n_terms] = -1
                n_terms += 1
                slots[t] = n_terms
            post_who[n_post] = n_chosen
            post_w[n_post] = values[o]
            post_next[n_post] = head[slots[t] - 1]
            head[slots[t] - 1] = n_post
            n_post += 1
            rest -= np.float64(values[o]) * np.float64(values[o])
        rest_norm[n_chosen] = np.sqrt(max(rest, 0.0))
        chosen[n_chosen] = b
        n_chosen += 1
    for j in range(n_terms):
        slots[terms[j]] = 0
    return chosen[:n_chosen]


@numba.njit(nogil=True, cache=True)
def pick_diverse(rows, rel, k, x_indptr, x_indices, x_data, group, dedup, diversity, slots):
    """Maximal marginal relevance (or candidates not in score order): when a candidate is chosen, its
    cosines to those still in the running come from the candidates' inverted index, raising their
    penalties and dropping its near-duplicates."""
    n = rows.shape[0]
    chosen = np.empty(min(k, n), np.int64)
    n_chosen = 0
    alive = np.ones(n, np.bool_)
    penalty = np.zeros(n, np.float64)  # highest cosine to anything chosen so far
    size = 0
    for i in range(n):
        size += x_indptr[rows[i] + 1] - x_indptr[rows[i]]
    terms = np.empty(size, np.int64)
    counts = np.zeros(size + 1, np.int64)
    n_terms = 0
    for i in range(n):
        for p in range(x_indptr[rows[i]], x_indptr[rows[i] + 1]):
            t = x_indices[p]
            if slots[t] == 0:
                terms[n_terms] = t
                n_terms += 1
                slots[t] = n_terms
            counts[slots[t]] += 1
    post_ptr = np.cumsum(counts[: n_terms + 1])
    fill = post_ptr[:n_terms].copy()
    post_cand = np.empty(size, np.int64)
    post_w = np.empty(size, np.float32)
    for i in range(n):  # candidates in order, so each posting list is in candidate order
        for p in range(x_indptr[rows[i]], x_indptr[rows[i] + 1]):
            local = slots[x_indices[p]] - 1
            post_cand[fill[local]] = i
            post_w[fill[local]] = x_data[p]
            fill[local] += 1
    taken = np.zeros(n, np.bool_)
    acc = np.zeros(n, np.float32)
    seen = np.zeros(n, np.bool_)
    touched = np.empty(n, np.int64)
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
        if dedup > 0:
            if taken[group[best]]:
                continue
            taken[group[best]] = True
        chosen[n_chosen] = best
        n_chosen += 1
        if dedup <= 0 and diversity <= 0:
            continue
        n_touched = 0
        b = rows[best]
        for p in range(x_indptr[b], x_indptr[b + 1]):
            local = slots[x_indices[p]] - 1
            w = x_data[p]
            for q in range(post_ptr[local], post_ptr[local + 1]):
                i = post_cand[q]
                if alive[i]:
                    if not seen[i]:
                        seen[i] = True
                        touched[n_touched] = i
                        n_touched += 1
                    acc[i] += w * post_w[q]
        for m in range(n_touched):
            i = touched[m]
            sim = acc[i]
            acc[i] = 0
            seen[i] = False
            if dedup > 0 and sim >= dedup:
                alive[i] = False  # a near-duplicate of one chosen: never chosen itself
            elif diversity > 0 and sim > penalty[i]:
                penalty[i] = sim
    for j in range(n_terms):
        slots[terms[j]] = 0
    return chosen[:n_chosen]
