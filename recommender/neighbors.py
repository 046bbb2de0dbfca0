"""Top-k kernels over L2-normalised sparse rows: one query, and blocked all-pairs.

Scores are cosine similarities. The dense N×N product is never formed: all-pairs works block by block
with a fixed memory budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["Block", "all_pairs_top_k", "block_rows_for", "query_scores", "top_k_indices"]

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Block:
    """Top-k neighbours of rows ``start .. start + len(indices)``; ``-1`` pads rows with fewer than k."""

    start: int
    indices: np.ndarray  # (rows, k) int64
    scores: np.ndarray  # (rows, k) float32


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest positive scores, best first (ties: lower index first)."""
    positive = np.flatnonzero(scores > 0)
    if positive.size > k:
        # partition is O(n); keep every score tied with the k-th, so the sort below can prefer lower indices.
        values = scores[positive]
        kth = np.partition(values, values.size - k)[values.size - k]
        positive = positive[values >= kth]
    order = np.lexsort((positive, -scores[positive]))
    return positive[order][:k]


def _rows_top_k(dense: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a dense score block: best first, ties by lower index, non-positive as -1."""
    k_eff = min(k, dense.shape[1])
    if k_eff < dense.shape[1]:
        part = np.argpartition(-dense, k_eff - 1, axis=1)[:, :k_eff]
        # argpartition keeps an arbitrary few of the scores tied with the k-th: redo those rows exactly.
        kth = np.take_along_axis(dense, part, axis=1).min(axis=1)
        tied = np.flatnonzero((kth > 0) & ((dense >= kth[:, None]).sum(axis=1) > k_eff))
        for r in tied:
            part[r] = np.argsort(-dense[r], kind="stable")[:k_eff]
    else:
        part = np.broadcast_to(np.arange(dense.shape[1]), dense.shape).copy()
    vals = np.take_along_axis(dense, part, axis=1)
    order = np.lexsort((part, -vals), axis=-1)
    part = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    indices = np.full((dense.shape[0], k), -1, dtype=np.int64)
    scores = np.zeros((dense.shape[0], k), dtype=np.float32)
    keep = vals > 0
    indices[:, :k_eff] = np.where(keep, part, -1)
    scores[:, :k_eff] = np.where(keep, np.clip(vals, 0.0, 1.0), 0.0)
    return indices, scores


def query_scores(query: sp.csr_matrix, index_t: sp.csr_matrix) -> np.ndarray:
    """Cosine scores of one query row against every document.

    ``index_t`` is the term-major (transposed) matrix, so the cost follows the query's terms'
    posting lists, not the number of documents.
    """
    return np.asarray((query @ index_t).toarray(), dtype=np.float32).ravel()


def block_rows_for(n_docs: int, memory_mb: int = 256) -> int:
    """Rows per block so one dense block of scores (rows × n_docs float32) fits in ``memory_mb``."""
    return max(1, min(n_docs, (memory_mb * 2**20) // (4 * max(n_docs, 1))))


def score_blocks(
    matrix: sp.csr_matrix, index_t: sp.csr_matrix, *, memory_mb: int = 256
) -> Iterator[tuple[int, np.ndarray]]:
    """Dense cosine scores of consecutive row blocks against every row, each row's own score zeroed."""
    n = matrix.shape[0]
    step = block_rows_for(n, memory_mb)
    for start in range(0, n, step):
        stop = min(n, start + step)
        dense = np.asarray((matrix[start:stop] @ index_t).toarray(), dtype=np.float32)
        rows = np.arange(stop - start)
        dense[rows, rows + start] = 0.0  # never an article's own neighbour
        yield start, dense


def all_pairs_top_k(
    matrix: sp.csr_matrix,
    index_t: sp.csr_matrix,
    k: int,
    *,
    memory_mb: int = 256,
    progress: ProgressCallback | None = None,
) -> Iterator[Block]:
    """Every row's top-``k`` other rows (never itself), block by block, in row order."""
    n = matrix.shape[0]
    for start, dense in score_blocks(matrix, index_t, memory_mb=memory_mb):
        indices, scores = _rows_top_k(dense, k)
        yield Block(start, indices, scores)
        if progress is not None:
            progress(start + dense.shape[0], n)
