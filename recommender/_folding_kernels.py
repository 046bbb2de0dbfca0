"""The compiled merges of :mod:`recommender.folding`: a term-major index with the postings of added rows,
dropping the rows removed (:func:`merge`) or keeping every row (:func:`append`).

numba keys its on-disk cache (``cache=True``) on the stamp of the file a kernel is in, so kernels kept
apart from the Python that calls them are not recompiled when that Python is edited
(``benchmarks/bench_kernel_cache.py``).
"""

from __future__ import annotations

import numba

__all__ = ["append", "merge"]


@numba.njit(nogil=True, cache=True)
def merge(t_indptr, t_indices, t_data, new_of_old, a_indptr, a_indices, a_data, row_offset, indptr, indices, data):
    pos = 0
    for t in range(t_indptr.shape[0] - 1):
        indptr[t] = pos
        for p in range(t_indptr[t], t_indptr[t + 1]):
            d = new_of_old[t_indices[p]]
            if d >= 0:
                indices[pos] = d
                data[pos] = t_data[p]
                pos += 1
        for p in range(a_indptr[t], a_indptr[t + 1]):
            indices[pos] = a_indices[p] + row_offset
            data[pos] = a_data[p]
            pos += 1
    indptr[t_indptr.shape[0] - 1] = pos


@numba.njit(nogil=True, cache=True)
def append(t_indptr, t_indices, t_data, a_indptr, a_indices, a_data, row_offset, indptr, indices, data):
    for t in range(t_indptr.shape[0] - 1):
        lo, hi, pos = t_indptr[t], t_indptr[t + 1], indptr[t]
        indices[pos : pos + hi - lo] = t_indices[lo:hi]
        data[pos : pos + hi - lo] = t_data[lo:hi]
        pos += hi - lo
        for p in range(a_indptr[t], a_indptr[t + 1]):
            indices[pos] = a_indices[p] + row_offset
            data[pos] = a_data[p]
            pos += 1
