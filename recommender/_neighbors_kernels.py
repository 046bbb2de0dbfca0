"""The compiled top-k kernels of :mod:`recommender.neighbors`: each query's best candidates (:func:`search`,
exact or approximate) and the lists a row could enter (:func:`enters`), with the helpers they call.

numba keys its on-disk cache (``cache=True``) on the stamp of the file a kernel is in, so kernels kept
apart from the Python that calls them are not recompiled when that Python is edited
(``benchmarks/bench_kernel_cache.py``).
"""

from __future__ import annotations

import numba
import numpy as np

from ._sparse import dot_with_row

__all__ = [
    "CHUNK",
    "DENSE_SHARE",
    "accumulate",
    "agreement",
    "better",
    "consider",
    "enters",
    "heap_push",
    "max_of",
    "prior",
    "prior_terms",
    "search",
    "weighted",
]

# A query whose postings add up to a quarter of the candidate documents or more is accumulated without
# a list of the documents touched: scanning them all afterwards is cheaper (measured at 25k and 100k).
DENSE_SHARE = 4
CHUNK = 256  # documents the candidate scan of a dense query looks at together


@numba.njit(nogil=True, cache=True, inline="always")
def better(s: float, d: int, s2: float, d2: int) -> bool:
    """Is (score s, row d) ranked above (s2, d2)? Higher score first, then lower row."""
    return s > s2 or (s == s2 and d < d2)


@numba.njit(nogil=True, cache=True)
def heap_push(hs, hi, hc, size, s, d, c):
    """Keep the best ``len(hs)`` of (score, row, cosine) in a heap whose root is the worst kept."""
    cap = hs.shape[0]
    if size < cap:
        i = size
        size += 1
        while i > 0:
            p = (i - 1) // 2
            if better(hs[p], hi[p], s, d):
                hs[i], hi[i], hc[i] = hs[p], hi[p], hc[p]
                i = p
            else:
                break
        hs[i], hi[i], hc[i] = s, d, c
        return size
    if not better(s, d, hs[0], hi[0]):
        return size
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        right = left + 1
        if right < size and better(hs[left], hi[left], hs[right], hi[right]):
            child = right
        if better(s, d, hs[child], hi[child]):
            hs[i], hi[i], hc[i] = hs[child], hi[child], hc[child]
            i = child
        else:
            break
    hs[i], hi[i], hc[i] = s, d, c
    return size


@numba.njit(nogil=True, cache=True, fastmath=True)
def max_of(a, lo, hi):
    """The largest of ``a[lo:hi]`` (not empty; no NaN, so fastmath may vectorise it and stays exact)."""
    m = a[lo]
    for i in range(lo + 1, hi):
        m = max(m, a[i])
    return m


@numba.njit(nogil=True, cache=True, inline="always")
def prior(apart, h, keep, weight):
    """The time prior's factor for a candidate ``apart`` days from the query (NaN: undated, factor 1):
    ``keep + weight / (1 + |apart| / h)``, with ``keep = 1 - weight``; never above 1, never below ``keep``."""
    if apart != apart:
        return np.float32(1.0)
    return keep + weight * (np.float32(1.0) / (np.float32(1.0) + abs(apart) / h))


@numba.njit(nogil=True, cache=True, fastmath=True)
def agreement(qz, d_topics, d):
    """The topic gate's factor: the cosine of query and document in the topic space, 0 if negative.
    fastmath lets the sum vectorise; its order depends on the loop only, so the factor stays symmetric."""
    g = np.float32(0.0)
    for i in range(qz.shape[0]):
        g += qz[i] * d_topics[d, i]
    return max(g, np.float32(0.0))


@numba.njit(nogil=True, cache=True, inline="always")
def prior_terms(half_life, time_weight):
    """The time prior's constants: whether it is on (``half_life > 0``), its scale, and the share of a
    score it keeps (``keep``) and weighs by time (``weight``)."""
    use_prior = half_life > 0
    h = np.float32(half_life) if use_prior else np.float32(1.0)
    weight = np.float32(time_weight)
    return use_prior, h, np.float32(1.0) - weight, weight


@numba.njit(nogil=True, cache=True, inline="always")
def weighted(cos, d, qd, d_days, use_prior, h, keep, weight, gate, qz, d_topics):
    """Document ``d``'s score for a query ``qd`` days from the origin: its cosine times the time prior and
    the topic gate, each when on (:func:`consider` applies the same two steps with a skip between)."""
    s = cos
    if use_prior:
        s = s * prior(d_days[d] - qd, h, keep, weight)
    if gate:
        s = s * agreement(qz, d_topics, d)
    return s


@numba.njit(nogil=True, cache=True, inline="always")
def accumulate(q_indptr, q_data, r, starts, stops, t_indices, t_data, acc, touched, dense):
    """Add query row ``r``'s products to ``acc``, term ``p`` over its postings ``starts[p]..stops[p]``;
    unless ``dense``, list each document it touches first in ``touched``. Returns how many it listed.

    Dense: no bookkeeping while accumulating, as its count made every step wait on the previous step's
    load from memory; the caller finds the documents touched by a scan afterwards."""
    n_touched = 0
    base = q_indptr[r]
    for p in range(base, q_indptr[r + 1]):
        v = q_data[p]
        # Slices walked from 0 compile to a tighter loop than indexing from start (-25%), and unsigned
        # rows need no check for negative indices (-5 to 10%).
        docs = t_indices[starts[p - base] : stops[p - base]].view(np.uint32)
        weights = t_data[starts[p - base] : stops[p - base]]
        if dense:
            for j in range(docs.shape[0]):
                acc[docs[j]] += v * weights[j]
        else:
            for j in range(docs.shape[0]):
                d = docs[j]
                old = acc[d]
                # Branch-free bookkeeping of the rows touched: the slot is overwritten unless new.
                touched[n_touched] = d
                n_touched += old == 0
                acc[d] = old + v * weights[j]
    return n_touched


@numba.njit(nogil=True, cache=True, inline="always")
def consider(
    touched, n, acc, size, cs, ci, cc, own, mask, newer, within, qt, d_ts, use_prior, qd, d_days, h, keep, weight,
    gate, qz, d_topics,
):  # fmt: skip
    """Offer documents ``touched[:n]`` with cosines ``acc`` (cleared on the way) to the heap of the best
    ``len(cs)`` (score, row, cosine), after the filters and the time prior; returns the heap's size."""
    n_keep = cs.shape[0]
    use_mask = mask.shape[0] > 0
    for j in range(n):
        d = touched[j]
        cos = acc[d]
        acc[d] = 0
        if d == own or cos <= 0:
            continue
        if size == n_keep and cos < cs[0]:  # the prior only lowers a score: it cannot get in
            continue
        if use_mask and not mask[d]:
            continue
        if not newer and d_ts[d] - qt > 0:  # NaN compares False: undated kept
            continue
        if within >= 0 and qt == qt and not abs(d_ts[d] - qt) <= within:  # an undated candidate falls out
            continue
        s = cos
        if use_prior:  # undated: neither weighted nor filtered
            s = s * prior(d_days[d] - qd, h, keep, weight)
        if gate:
            if size == n_keep and s < cs[0]:  # the gate is at most 1: skip its dot product
                continue
            s = s * agreement(qz, d_topics, d)
        if s <= 0 or (size == n_keep and not better(s, d, cs[0], ci[0])):
            continue
        size = heap_push(cs, ci, cc, size, s, d, cos)
    return size


@numba.njit(nogil=True, cache=True)
def search(
    q_indptr,
    q_indices,
    q_data,
    q_self,
    q_ts,
    q_days,
    t_indptr,
    t_indices,
    t_data,
    x_indptr,
    x_indices,
    x_data,
    d_ts,
    d_days,
    half_life,
    time_weight,
    newer,
    within,
    q_topics,
    d_topics,
    mask,
    prune_df,
    rescore,
    w_lo,
    w_hi,
    d_lo,
    d_hi,
    lo,
    hi,
    out_rows,
    out_scores,
    out_sims,
    acc,
    touched,
):
    """Fill rows ``lo..hi`` of the outputs with each query's best candidates, best first.

    Only documents ``d_lo..d_hi`` are candidates. ``half_life <= 0``: no time prior; else a candidate's
    cosine is weighted by :func:`prior` with ``time_weight`` (1: the full hyperbolic decay). ``within`` ≥ 0:
    only candidates published within that many seconds of a dated query. ``d_topics`` with rows (one per
    document, unit vectors): the topic gate, each cosine times the query's (``q_topics``) agreement with the
    document in the topic space, if positive. ``mask`` of
    length 0: no mask. ``prune_df <= 0``: exact. Else approximate: a term in more than ``prune_df``
    documents is read only for the documents in rows ``w_lo[r]..w_hi[r]`` (the query's time window,
    on a corpus in time order), then the best ``rescore`` candidates are scored again on every term.
    ``acc`` (``n_docs`` zeros, left zeros) and ``touched`` (``n_docs + 1``) are scratch space.
    """
    n_docs = d_ts.shape[0]
    pool = out_rows.shape[1]
    hs = np.empty(pool, np.float32)
    hi_ = np.empty(pool, np.int64)
    hc = np.empty(pool, np.float32)
    use_prior, h, keep, weight = prior_terms(half_life, time_weight)
    gate = d_topics.shape[0] > 0
    pruned = prune_df > 0
    n_keep = rescore if pruned else pool
    cs = np.empty(max(n_keep, 1), np.float32)
    ci = np.empty(max(n_keep, 1), np.int64)
    cc = np.empty(max(n_keep, 1), np.float32)
    split = d_lo > 0 or d_hi < n_docs
    width = 1
    for r in range(lo, hi):
        width = max(width, q_indptr[r + 1] - q_indptr[r])
    starts = np.empty(width, np.int64)
    stops = np.empty(width, np.int64)
    for r in range(lo, hi):
        # The slice of each term's postings to read, and what reading them all costs.
        work = 0
        for p in range(q_indptr[r], q_indptr[r + 1]):
            t = q_indices[p]
            start = t_indptr[t]
            stop = t_indptr[t + 1]
            if pruned and stop - start > prune_df:
                if w_hi[r] <= w_lo[r]:
                    start = stop
                else:
                    # Postings are in row order: the window is one slice of them.
                    posting = t_indices[start:stop]
                    start, stop = (
                        start + np.searchsorted(posting, w_lo[r]),
                        start + np.searchsorted(posting, w_hi[r]),
                    )
            if split:  # only documents d_lo..d_hi: a share of one query's work for one thread
                posting = t_indices[start:stop]
                if d_hi < n_docs:
                    stop = start + np.searchsorted(posting, d_hi)
                if d_lo > 0:
                    start += np.searchsorted(posting, d_lo)
            starts[p - q_indptr[r]] = start
            stops[p - q_indptr[r]] = stop
            work += stop - start
        dense = work * DENSE_SHARE >= d_hi - d_lo
        n_touched = accumulate(q_indptr, q_data, r, starts, stops, t_indices, t_data, acc, touched, dense)
        size = 0
        qd = q_days[r]
        qt = q_ts[r]
        own = q_self[r]
        if not dense:
            size = consider(
                touched, n_touched, acc, size, cs, ci, cc, own, mask, newer, within, qt, d_ts, use_prior, qd, d_days,
                h, keep, weight, gate, q_topics[r] if gate else q_topics[0], d_topics,
            )  # fmt: skip
        else:
            # Chunks with the best cosines first: the heap fills with good candidates at once, and then
            # most chunks hold nothing above its worst. Those are cleared without a look at each document
            # (the check in consider would skip every one of them anyway).
            n_chunks = (d_hi - d_lo + CHUNK - 1) // CHUNK
            best_in = np.empty(n_chunks, np.float32)
            for c in range(n_chunks):
                best_in[c] = max_of(acc, d_lo + c * CHUNK, min(d_hi, d_lo + (c + 1) * CHUNK))
            for c in np.argsort(-best_in):
                c_lo = d_lo + c * CHUNK
                c_hi = min(d_hi, c_lo + CHUNK)
                if size == n_keep and best_in[c] < cs[0]:
                    acc[c_lo:c_hi] = 0
                    continue
                n_touched = 0
                for d in range(c_lo, c_hi):
                    touched[n_touched] = d
                    n_touched += acc[d] != 0
                size = consider(
                    touched, n_touched, acc, size, cs, ci, cc, own, mask, newer, within, qt, d_ts, use_prior, qd,
                    d_days, h, keep, weight, gate, q_topics[r] if gate else q_topics[0], d_topics,
                )  # fmt: skip
        if pruned:
            # Candidates came from the rarer terms only: score them again on every term.
            q_idx = q_indices[q_indptr[r] : q_indptr[r + 1]]
            q_val = q_data[q_indptr[r] : q_indptr[r + 1]]
            n_cand = size
            size = 0
            for j in range(n_cand):
                d = ci[j]
                cos = dot_with_row(q_idx, q_val, x_indptr, x_indices, x_data, d)
                qz = q_topics[r] if gate else q_topics[0]
                s = weighted(cos, d, qd, d_days, use_prior, h, keep, weight, gate, qz, d_topics)
                size = heap_push(hs, hi_, hc, size, s, d, cos)
        else:
            hs[:size] = cs[:size]
            hi_[:size] = ci[:size]
            hc[:size] = cc[:size]
        # Heap to best-first order: repeatedly take the best remaining (pool is small).
        for slot in range(pool):
            if slot >= size:
                out_rows[r, slot] = -1
                out_scores[r, slot] = 0
                out_sims[r, slot] = 0
                continue
            best = slot
            for j in range(slot + 1, size):
                if better(hs[j], hi_[j], hs[best], hi_[best]):
                    best = j
            hs[slot], hs[best] = hs[best], hs[slot]
            hi_[slot], hi_[best] = hi_[best], hi_[slot]
            hc[slot], hc[best] = hc[best], hc[slot]
            out_rows[r, slot] = hi_[slot]
            out_scores[r, slot] = hs[slot]
            out_sims[r, slot] = hc[slot]


@numba.njit(nogil=True, cache=True)
def enters(
    q_indptr, q_indices, q_data, q_days, t_indptr, t_indices, t_data, d_days, half_life, time_weight, q_topics,
    d_topics, threshold, out,
):  # fmt: skip
    """Set ``out[d]`` for every document whose list a query row could enter: its weighted score
    reaches ``threshold[d]`` (``inf``: never). The same accumulation and weights as :func:`search`."""
    n_docs = d_days.shape[0]
    acc = np.zeros(n_docs, np.float32)
    touched = np.empty(n_docs + 1, np.int32)
    use_prior, h, keep, weight = prior_terms(half_life, time_weight)
    gate = d_topics.shape[0] > 0
    width = 1
    for r in range(q_indptr.shape[0] - 1):
        width = max(width, q_indptr[r + 1] - q_indptr[r])
    starts = np.empty(width, np.int64)
    stops = np.empty(width, np.int64)
    for r in range(q_indptr.shape[0] - 1):
        work = 0
        for p in range(q_indptr[r], q_indptr[r + 1]):
            starts[p - q_indptr[r]] = t_indptr[q_indices[p]]
            stops[p - q_indptr[r]] = t_indptr[q_indices[p] + 1]
            work += stops[p - q_indptr[r]] - starts[p - q_indptr[r]]
        # A query reaching a good share of the corpus is cheaper without bookkeeping, then a scan of it.
        dense = work * DENSE_SHARE >= n_docs
        n_touched = accumulate(q_indptr, q_data, r, starts, stops, t_indices, t_data, acc, touched, dense)
        if dense:
            for d in range(n_docs):
                touched[n_touched] = d
                n_touched += acc[d] != 0
        qd = q_days[r]
        for j in range(n_touched):
            d = touched[j]
            s = acc[d]
            acc[d] = 0
            if s <= 0:
                continue
            qz = q_topics[r] if gate else q_topics[0]  # no gate: a dummy row, never read
            s = weighted(s, d, qd, d_days, use_prior, h, keep, weight, gate, qz, d_topics)
            # Summed from the other side, a score can differ from the kernel's in its last bits.
            if s >= threshold[d] * np.float32(0.99999):
                out[d] = True
