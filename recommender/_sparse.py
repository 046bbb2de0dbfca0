"""Helpers on sparse rows shared by several modules: compiled dot products (the search kernel and the
list selection), row gathering (string columns, folding, cost estimates) and a CSR matrix as plain arrays
(model files, overlays)."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

__all__ = ["compact_indptr", "csr_from_state", "csr_state", "dot_with_row", "row_dot", "row_ranges", "rows_from"]


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


def row_ranges(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For CSR-style ``indptr``, the offsets of ``rows`` packed one after another, and the positions of
    their entries in the original arrays (``data[where]`` is those rows' data, in order)."""
    rows = np.asarray(rows, dtype=np.int64)
    indptr = np.asarray(indptr, dtype=np.int64)
    lengths = indptr[rows + 1] - indptr[rows]
    offsets = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets, np.repeat(indptr[rows] - offsets[:-1], lengths) + np.arange(offsets[-1])


def csr_state(matrix: sp.csr_matrix) -> dict[str, Any]:
    """A CSR matrix as the plain arrays (and shape) it is saved as."""
    return {"data": matrix.data, "indices": matrix.indices, "indptr": matrix.indptr, "shape": matrix.shape}


def csr_from_state(state: dict[str, Any]) -> sp.csr_matrix:
    """The matrix :func:`csr_state` saved, built without copying: memory-mapped arrays stay memory-mapped."""
    matrix = sp.csr_matrix(state["shape"], dtype=np.float32)
    matrix.data, matrix.indices, matrix.indptr = state["data"], state["indices"], state["indptr"]
    return matrix


def rows_from(matrix: sp.csr_matrix, start: int) -> sp.csr_matrix:
    """Rows ``start..`` of ``matrix``, by slicing its arrays (scipy's slicing scans every row)."""
    indptr = np.asarray(matrix.indptr, dtype=np.int64)
    lo = int(indptr[start])
    out = sp.csr_matrix((matrix.shape[0] - start, matrix.shape[1]), dtype=np.float32)
    out.indptr, out.indices, out.data = indptr[start:] - lo, matrix.indices[lo:], matrix.data[lo:]
    return out


def compact_indptr(indptr: np.ndarray) -> np.ndarray:
    """``indptr`` as int32 when it fits, as a fitted or loaded matrix has it: scipy converts every index
    of a matrix whose indptr and indices differ in type on each row selection (0.1 s at 25k articles)."""
    return indptr.astype(np.int32) if indptr[-1] <= np.iinfo(np.int32).max else indptr
