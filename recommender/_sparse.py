"""Compiled helpers on sparse rows, shared by the search kernel (:mod:`recommender.neighbors`) and the
list selection (:mod:`recommender.ranking`)."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["dot_with_row", "row_dot"]


@numba.njit(nogil=True, cache=True)
def row_dot(a_idx, a_val, b_idx, b_val):
    """Dot product of two sparse rows with sorted column indices, summed in column order (float32)."""
    i = 0
    j = 0
    total = np.float32(0.0)
    while i < a_idx.shape[0] and j < b_idx.shape[0]:
        if a_idx[i] == b_idx[j]:
            total += a_val[i] * b_val[j]
            i += 1
            j += 1
        elif a_idx[i] < b_idx[j]:
            i += 1
        else:
            j += 1
    return total


@numba.njit(nogil=True, cache=True)
def dot_with_row(a_idx, a_val, x_indptr, x_indices, x_data, row):
    """Dot product of a sparse row with row ``row`` of a CSR matrix (sorted columns)."""
    lo = x_indptr[row]
    hi = x_indptr[row + 1]
    return row_dot(a_idx, a_val, x_indices[lo:hi], x_data[lo:hi])
