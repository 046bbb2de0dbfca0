"""From analysed articles to a TF-IDF matrix: term counting in parallel worker processes, then weighting.

Each worker analyses a chunk of articles and counts its terms against a vocabulary of its own, so only
the chunk's distinct terms and small integer arrays travel back; the parent merges the vocabularies and
does the rest with whole-array operations. Weighting follows scikit-learn's ``TfidfVectorizer``
(smooth idf, optional sublinear tf, L2-normalised rows), in float32.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import joblib
import numpy as np
import scipy.sparse as sp

from ._progress import ProgressCallback
from .text import Analyzer

__all__ = ["Counts", "count_terms", "fit_topics", "project_topics", "tfidf", "weigh"]

_CHUNK = 1500  # articles per unit of parallel work


class Counts:
    """Raw term counts: ``matrix[i, j]`` is how often ``terms[j]`` occurs in article ``i``."""

    def __init__(self, matrix: sp.csr_matrix, terms: list[str]) -> None:
        self.matrix = matrix
        self.terms = terms


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _numbering() -> defaultdict[str, int]:
    """A vocabulary that numbers each new term as it is first looked up: the per-term work runs in C."""
    vocabulary: defaultdict[str, int] = defaultdict()
    vocabulary.default_factory = vocabulary.__len__
    return vocabulary


def _count_chunk(
    analyzer: Analyzer, docs: Sequence[tuple[str, str]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    vocabulary = _numbering()
    ids: list[int] = []
    lengths = np.zeros(len(docs), dtype=np.int64)
    with _no_gc():  # analysis makes millions of small lists and no cycles: the collector only costs time
        for i, doc in enumerate(docs):
            before = len(ids)
            ids.extend(map(vocabulary.__getitem__, analyzer(doc)))
            lengths[i] = len(ids) - before
    rows = np.repeat(np.arange(len(docs)), lengths)
    counts = sp.csr_matrix(
        (np.ones(len(ids), dtype=np.float32), (rows, np.array(ids, dtype=np.int32))),
        shape=(len(docs), len(vocabulary)),
    )
    counts.sum_duplicates()
    return counts.indptr.astype(np.int64), counts.indices.astype(np.int32), counts.data, list(vocabulary)


def count_terms(
    analyzer: Analyzer,
    docs: Sequence[tuple[str, str]],
    *,
    n_jobs: int = -1,
    progress: ProgressCallback | None = None,
) -> Counts:
    """Count every ``(title, body)``'s terms, chunks of articles on ``n_jobs`` processes."""
    chunks = [docs[i : i + _CHUNK] for i in range(0, len(docs), _CHUNK)]
    n_jobs = n_jobs if len(chunks) > 4 else 1
    results = joblib.Parallel(n_jobs=n_jobs, return_as="generator")(
        joblib.delayed(_count_chunk)(analyzer, chunk) for chunk in chunks
    )
    vocabulary = _numbering()
    parts_indptr: list[np.ndarray] = []
    parts_indices: list[np.ndarray] = []
    parts_values: list[np.ndarray] = []
    offset = 0
    done = 0
    for indptr, indices, values, local_terms in results:
        remap = np.fromiter(map(vocabulary.__getitem__, local_terms), dtype=np.int32, count=len(local_terms))
        parts_indptr.append(indptr[1:] + offset)
        parts_indices.append(remap[indices])
        parts_values.append(values)
        offset += int(indptr[-1])
        done += len(indptr) - 1
        if progress is not None:
            progress(done, len(docs))
    indptr = np.concatenate([np.zeros(1, dtype=np.int64), *parts_indptr])
    matrix = sp.csr_matrix(
        (
            np.concatenate(parts_values) if parts_values else np.zeros(0, np.float32),
            np.concatenate(parts_indices) if parts_indices else np.zeros(0, np.int32),
            indptr,
        ),
        shape=(len(docs), len(vocabulary)),
    )
    return Counts(matrix, list(vocabulary))


def tfidf(
    counts: Counts, *, min_df: int | float, max_df: float, sublinear_tf: bool
) -> tuple[sp.csr_matrix, list[str], np.ndarray]:
    """The L2-normalised TF-IDF matrix, its terms (sorted) and their idf, after document-frequency pruning.

    ``min_df``/``max_df`` as in scikit-learn: an int is a count of articles, a float a share of them.
    Raises ``ValueError`` when no term is left.
    """
    n_docs = counts.matrix.shape[0]
    df = np.bincount(counts.matrix.indices, minlength=len(counts.terms))
    low = min_df if isinstance(min_df, int) else min_df * n_docs
    high = max_df * n_docs
    keep = np.flatnonzero((df >= low) & (df <= high))
    if keep.size == 0:
        raise ValueError("after pruning, no terms remain; try a lower min_df or a higher max_df")
    # Columns in term order, as scikit-learn has them: the model does not depend on how work was chunked.
    order = sorted(keep.tolist(), key=counts.terms.__getitem__)
    columns = np.array(order, dtype=np.int64)
    matrix = counts.matrix[:, columns].tocsr()
    matrix.sort_indices()
    idf = (np.log((1.0 + n_docs) / (1.0 + df[columns])) + 1.0).astype(np.float32)
    return weigh(matrix, idf, sublinear_tf=sublinear_tf), [counts.terms[c] for c in order], idf


def weigh(matrix: sp.csr_matrix, idf: np.ndarray, *, sublinear_tf: bool) -> sp.csr_matrix:
    """Raw counts (columns sorted within rows) to L2-normalised TF-IDF rows, in float32."""
    n_docs = matrix.shape[0]
    data = matrix.data.astype(np.float32)
    if sublinear_tf:
        data = np.log(data, dtype=np.float32) + np.float32(1.0)
    data *= idf[matrix.indices]
    row_of = np.repeat(np.arange(n_docs), np.diff(matrix.indptr))
    norms = np.sqrt(np.bincount(row_of, weights=data.astype(np.float64) ** 2, minlength=n_docs))
    nonzero = norms > 0
    scale = np.ones(n_docs)
    scale[nonzero] = 1.0 / norms[nonzero]
    data = (data * scale[row_of]).astype(np.float32)
    return sp.csr_matrix((data, matrix.indices.astype(np.int32), matrix.indptr), shape=matrix.shape)


def fit_topics(matrix: sp.csr_matrix, dims: int, *, seed: int = 0) -> np.ndarray | None:
    """The term loadings (terms × ``dims``, float32) of a latent semantic space: a truncated SVD of the
    TF-IDF ``matrix``, seeded, so a refit on the same corpus gives the same space. ``None`` where the
    corpus is too small to have ``dims`` topics (fewer articles or terms than that)."""
    dims = min(dims, matrix.shape[0] - 1, matrix.shape[1] - 1)
    if dims < 1:
        return None
    from sklearn.utils.extmath import randomized_svd  # here: importing scikit-learn takes a second

    _, _, vt = randomized_svd(matrix, dims, n_iter=5, random_state=seed)
    return np.ascontiguousarray(vt.T, dtype=np.float32)


def project_topics(rows: sp.csr_matrix, loadings: np.ndarray) -> np.ndarray:
    """Each TF-IDF row's unit vector in the topic space (zeros for a row with no known term)."""
    z = np.asarray(rows @ loadings, dtype=np.float32)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return np.divide(z, norms, out=np.zeros_like(z), where=norms > 0)
