"""Where a draft's search time goes at 100k synthetic articles, beside its floors, and what an exact
MaxScore-style pruning of the common terms could save.

    python benchmarks/bench_draft_kernel.py          # --n 100000 --drafts 200; about 2 minutes

Per 500-word draft (the drafts of ``bench_serve.py``), one core:
- ``search``: the kernel as lookups call it (accumulation, time prior, topic gate, heap of the pool);
- accumulation only: the same postings added into the score row, nothing else (a compiled loop);
- the same, blocked: one slice of documents at a time, so the slice of the score row stays in L1;
- streaming floor: the same postings read and summed, with no scatter into the score row;
- the postings a draft would not read without its terms in more than 20, 10 or 5% of the articles (an
  approximation, whose judged cost ``quality_experiments.py --drafts`` measures);
- MaxScore estimate: take the most common terms whose summed upper bounds (query weight × the term's
  largest document weight) stay under ``share`` × the draft's final pool threshold (known here, not to a
  real pass); the postings they would save, and the candidates that would still need an exact re-score
  (their partial score plus that bound reaches the threshold).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import generate

from recommender import Recommender
from recommender.features import project_topics
from recommender.lookups import search_index, vectorize
from recommender.neighbors import search
from recommender.ranking import pool_size


@numba.njit(nogil=True)
def accumulate(q_idx, q_val, t_indptr, t_indices, t_data, acc):  # type: ignore[no-untyped-def]
    for p in range(q_idx.shape[0]):
        t = q_idx[p]
        docs = t_indices[t_indptr[t] : t_indptr[t + 1]].view(np.uint32)
        w = t_data[t_indptr[t] : t_indptr[t + 1]]
        for j in range(docs.shape[0]):
            acc[docs[j]] += q_val[p] * w[j]


@numba.njit(nogil=True)
def accumulate_blocked(q_idx, q_val, t_indptr, t_indices, t_data, acc, block):  # type: ignore[no-untyped-def]
    # The same sums in the same order, one slice of documents at a time (the slice of the score row
    # stays in the L1 cache); each term's postings resume where the previous slice stopped.
    pos = np.empty(q_idx.shape[0], np.int64)
    for p in range(q_idx.shape[0]):
        pos[p] = t_indptr[q_idx[p]]
    n_docs = acc.shape[0]
    for lo in range(0, n_docs, block):
        hi = min(n_docs, lo + block)
        for p in range(q_idx.shape[0]):
            j, end = pos[p], t_indptr[q_idx[p] + 1]
            stop = j + np.searchsorted(t_indices[j:end], hi) if hi < n_docs else end
            docs = t_indices[j:stop].view(np.uint32)
            w = t_data[j:stop]
            for i in range(docs.shape[0]):
                acc[docs[i]] += q_val[p] * w[i]
            pos[p] = stop


@numba.njit(nogil=True)
def stream(q_idx, q_val, t_indptr, t_indices, t_data, acc):  # type: ignore[no-untyped-def]
    s = np.float32(0.0)
    for p in range(q_idx.shape[0]):
        t = q_idx[p]
        docs = t_indices[t_indptr[t] : t_indptr[t + 1]]
        w = t_data[t_indptr[t] : t_indptr[t + 1]]
        for j in range(docs.shape[0]):
            s += q_val[p] * w[j] + docs[j]
    acc[0] = s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--drafts", type=int, default=200)
    args = parser.parse_args()
    syn = generate(args.n, 0)
    model = Recommender().fit_counts(syn.counts, syn.articles)
    state = model.fitted_state()
    index = search_index(state)
    options = model.ranking_options()
    pool = pool_size(5, options)
    matrix, terms = syn.counts.matrix, syn.counts.terms
    queries = []
    for row in np.random.default_rng(1).choice(args.n, size=args.drafts, replace=False):
        words = [terms[t] for t in matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]]
        body = " ".join(words[i % len(words)] for i in range(500))
        query = vectorize(state, syn.articles[int(row)].title, body)
        topics = None if state.topic_terms is None else project_topics(query, state.topic_terms)
        queries.append((query, topics))

    def lookup(query: sp.csr_matrix, topics: np.ndarray | None) -> np.ndarray:
        hits = search(index, query, pool, query_ts=np.array([np.nan]), prior=options.prior(), query_topics=topics)
        return hits.scores[0]

    t_indptr, t_indices, t_data = index.terms
    acc = np.zeros(index.n_docs, np.float32)
    postings = np.array([index.df[q.indices].sum() for q, _ in queries])

    def timed(fn, label: str) -> None:  # type: ignore[no-untyped-def]
        fn(*queries[0])  # compiled before timing
        acc[:] = 0
        start = time.perf_counter()
        for _rep in range(3):
            for q, z in queries:
                fn(q, z)
        seconds = (time.perf_counter() - start) / (3 * len(queries))
        print(f"  {label:<34} {seconds * 1000:6.3f} ms a draft, {seconds / postings.mean() * 1e9:5.2f} ns a posting")

    print(f"machine: {platform.machine()}; {args.n:,} articles, {len(queries)} drafts of 500 words, pool {pool}")
    print(f"postings a draft: median {int(np.median(postings)):,}, max {int(postings.max()):,}")
    timed(lookup, "search (the kernel)")
    timed(lambda q, z: accumulate(q.indices, q.data, t_indptr, t_indices, t_data, acc), "accumulation only")
    for block in (8192, 32768):
        timed(
            lambda q, z, b=block: accumulate_blocked(q.indices, q.data, t_indptr, t_indices, t_data, acc, b),
            f"accumulation, {block:,} documents a slice",
        )
    timed(lambda q, z: stream(q.indices, q.data, t_indptr, t_indices, t_data, acc), "streaming floor (no scatter)")

    for cut in (0.2, 0.1, 0.05):  # the approximation of quality_experiments.py --drafts
        saved = [1 - index.df[q.indices][index.df[q.indices] <= cut * index.n_docs].sum() / n for q, n in zip(
            (q for q, _ in queries), postings, strict=True
        )]  # fmt: skip
        print(f"  without the terms in > {cut:.0%} of articles: postings saved, median {np.median(saved):.0%}")
    by_term = sp.csr_matrix((t_data, t_indices, t_indptr), shape=(index.n_terms, index.n_docs))
    starts = np.minimum(np.asarray(t_indptr[:-1]), len(t_data) - 1)
    largest = np.where(index.df > 0, np.maximum.reduceat(np.asarray(t_data), starts), 0)
    print("MaxScore estimate (exact threshold given; a real pass only has a lower bound):")
    for share in (0.3, 0.5, 0.7, 0.9):
        saved, rescored = [], []
        for q, z in queries:
            theta = lookup(q, z)[pool - 1]
            order = np.argsort(-index.df[q.indices])
            bound = np.cumsum((q.data * largest[q.indices])[order])
            n_common = int(np.searchsorted(bound, share * theta))
            common = np.zeros(q.nnz, bool)
            common[order[:n_common]] = True
            rare = sp.csr_matrix((q.data[~common], q.indices[~common], [0, int((~common).sum())]), shape=q.shape)
            partial = (rare @ by_term).toarray().ravel()
            reach = bound[n_common - 1] if n_common else 0.0
            saved.append(index.df[q.indices[common]].sum() / index.df[q.indices].sum())
            rescored.append(int(((partial > 0) & (partial + reach >= theta)).sum()))
        print(
            f"  bound under {share:.1f} x threshold: postings saved median {np.median(saved):.0%}, "
            f"candidates to re-score median {int(np.median(rescored)):,}, p90 {int(np.percentile(rescored, 90)):,}"
        )


if __name__ == "__main__":
    main()
