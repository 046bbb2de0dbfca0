"""Exact vs approximate all-pairs, the plan that picks between them, and the recall estimate."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recommender import InvalidParameterError, Recommender, precompute
from recommender.blocks import all_related
from recommender.lookups import search_index
from recommender.neighbors import Approx, Index, TimePrior, plan, search, search_blocks

DAY = 86400.0


def lists(model: Recommender, **kwargs: object) -> np.ndarray:
    return np.vstack([b.indices for b in model.all_related(10, **kwargs)])  # type: ignore[arg-type]


def recall(got: np.ndarray, expected: np.ndarray) -> float:
    shares = [
        len(set(g[g >= 0].tolist()) & set(e[e >= 0].tolist())) / int((e >= 0).sum())
        for g, e in zip(got, expected, strict=True)
        if (e >= 0).any()
    ]
    return float(np.mean(shares))


def forced(index: Index, prune_df: int, window_days: float = 15.0, rescore: int = 50) -> Approx:
    assert 0 < prune_df < int(index.df.max()), "the cap must prune some terms, or nothing is approximate"
    return Approx(prune_df, rescore, window_days)


def test_auto_plan_is_exact_for_the_sample(fitted: Recommender) -> None:
    chosen = fitted.plan_all_related()
    assert chosen.mode == "exact" and chosen.approx is None
    assert (
        chosen.multiply_adds == chosen.exact_multiply_adds == int((search_index(fitted.fitted_state()).df ** 2).sum())
    )


def test_forced_approx_plan_prunes_the_most_common_terms(fitted: Recommender) -> None:
    chosen = fitted.plan_all_related("approx")
    assert chosen.mode == "approx" and chosen.approx is not None
    df = search_index(fitted.fitted_state()).df
    assert 1 <= chosen.approx.prune_df < df.max()
    kept = (df[df <= chosen.approx.prune_df] ** 2).sum()
    assert kept <= 0.03 * (df**2).sum() or chosen.approx.prune_df == 1
    next_df = df[df > chosen.approx.prune_df].min()
    assert (df[df <= next_df] ** 2).sum() > 0.03 * (df**2).sum()  # the largest such cap


def test_plan_rejects_an_unknown_mode(fitted: Recommender) -> None:
    with pytest.raises(InvalidParameterError, match="mode must be auto, exact or approx, got 'fast'"):
        fitted.plan_all_related("fast")


def test_auto_plan_turns_approximate_past_the_limit(fitted: Recommender, monkeypatch: pytest.MonkeyPatch) -> None:
    import recommender.neighbors as neighbors

    monkeypatch.setattr(neighbors, "EXACT_LIMIT", 1000)
    assert plan(search_index(fitted.fitted_state())).mode == "approx"


def test_approx_scores_are_exact_for_what_it_returns(fitted: Recommender) -> None:
    # Candidates come from rare terms and time windows, but every returned score is re-scored on all terms.
    index = search_index(fitted.fitted_state())
    prior = TimePrior(3.0)
    exact = dict(search_blocks(index, 10, prior=prior))[0]
    approx = dict(search_blocks(index, 10, prior=prior, approx=forced(index, 5)))[0]
    n = index.n_docs
    for r in range(n):
        ex = dict(zip(exact.rows[r].tolist(), exact.scores[r].tolist(), strict=True))
        for j, s in zip(approx.rows[r].tolist(), approx.scores[r].tolist(), strict=True):
            if j < 0:
                continue
            assert j != r
            if j in ex:
                assert s == pytest.approx(ex[j], abs=1e-6)
    assert (approx.rows >= -1).all() and (approx.rows < n).all()


def test_approx_recall_on_the_sample_is_high_and_estimated_truthfully(fitted: Recommender) -> None:
    index = search_index(fitted.fitted_state())
    exact = lists(fitted, mode="exact")
    chosen = fitted.plan_all_related("approx")
    got = lists(fitted, mode=chosen)
    measured = recall(got, exact)
    assert 0.8 <= measured <= 1.0
    estimated = fitted.estimate_recall(10, mode=chosen, sample=len(fitted))
    assert estimated == pytest.approx(measured, abs=1e-9)  # the whole corpus as the sample: the same figure
    assert 0.0 < fitted.estimate_recall(10, mode=chosen, sample=50, seed=3) <= 1.0
    assert fitted.estimate_recall(10, mode="exact") == 1.0
    # pruning everything common and no time window loses more than the default approximation
    crude = Approx(1, 10, 0.0)
    worse = np.vstack(
        [b.indices for b in all_related(fitted.fitted_state(), 10, fitted.ranking_options(), approx=crude)]
    )
    assert recall(worse, exact) < measured
    assert index.n_docs == len(exact)


def time_ordered_corpus(n: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Stories of 40 events, each told over a few days, shuffled out of time order."""
    rng = np.random.default_rng(seed)
    event = rng.integers(0, 40, size=n)
    day = event * 10.0 + rng.uniform(0, 3, size=n)
    common = rng.random((n, 30)) < 0.4  # words every story uses
    own = np.zeros((n, 400), dtype=bool)
    for i in range(n):
        own[i, event[i] * 10 + rng.choice(10, size=4, replace=False)] = True
    matrix = sp.csr_matrix(np.hstack([common, own]).astype(np.float32) * rng.uniform(0.5, 1.5, size=(n, 430)))
    matrix = sp.csr_matrix(normalize(matrix), dtype=np.float32)
    matrix.sort_indices()
    return matrix, day * DAY


def test_time_windows_find_what_rare_terms_alone_miss() -> None:
    matrix, ts = time_ordered_corpus(600, seed=4)
    index = Index(matrix, matrix.T.tocsr(), ts)
    assert not index.time_sorted
    ordered, order = index.in_time_order()
    assert order is not None and ordered.time_sorted
    assert index.in_time_order()[0] is ordered, "the copy is made once per index"
    assert np.array_equal(np.asarray(ordered.timestamps), np.sort(ts))

    def all_rows(approx: Approx | None) -> np.ndarray:
        return np.vstack([h.rows for _, h in search_blocks(index, 10, prior=TimePrior(3.0), approx=approx)])

    exact = all_rows(None)
    cap = int(np.sort(index.df)[-31])  # prune the 30 common words
    windowed = all_rows(Approx(cap, 50, 5.0))
    rare_only = all_rows(Approx(cap, 50, 0.0))
    assert recall(windowed, exact) >= 0.95
    assert recall(windowed, exact) > recall(rare_only, exact)
    assert not (windowed == np.arange(600)[:, None]).any()


def test_windows_are_row_slices_and_undated_queries_see_everything() -> None:
    matrix, ts = time_ordered_corpus(50, seed=1)
    index, _ = Index(matrix, matrix.T.tocsr(), ts).in_time_order()
    sorted_ts = np.asarray(index.timestamps)
    lo, hi = index.windows(np.array([sorted_ts[10], np.nan]), 2.0)
    inside = np.flatnonzero(np.abs(sorted_ts - sorted_ts[10]) <= 2 * DAY)
    assert (lo[0], hi[0]) == (inside.min(), inside.max() + 1)
    assert (lo[1], hi[1]) == (0, 50)
    none_lo, none_hi = Index(matrix, matrix.T.tocsr(), ts).windows(np.array([ts[0]]), 2.0)
    assert none_hi[0] <= none_lo[0], "unsorted corpus: no window"


def test_search_rejects_queries_of_another_vocabulary(fitted: Recommender) -> None:
    with pytest.raises(ValueError, match="queries have 3 terms"):
        search(search_index(fitted.fitted_state()), sp.csr_matrix((1, 3), dtype=np.float32), 5)


def test_precompute_approx_records_mode_and_recall(fitted: Recommender, tmp_path: Path) -> None:
    path = tmp_path / "related.sqlite"
    result = precompute(fitted, path, k=5, mode="approx", recall_sample=100)
    assert result.mode == "approx"
    assert result.recall is not None and 0.8 <= result.recall <= 1.0
    with sqlite3.connect(path) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    assert meta["mode"] == "approx"
    assert float(meta["recall_estimate"]) == pytest.approx(result.recall, abs=1e-4)
    # an exact run over the same store leaves no stale estimate behind
    again = precompute(fitted, path, k=5, mode="exact")
    assert again.mode == "exact" and again.recall is None
    with sqlite3.connect(path) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    assert meta["mode"] == "exact" and "recall_estimate" not in meta
