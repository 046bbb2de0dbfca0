"""From scores to the list a reader sees: time prior, no-newer, near-duplicates, MMR diversity, score threshold,
and the "why related" terms; hand-checked on tiny matrices, then on the model trained on the sample."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender import Article, InvalidParameterError, Recommender, read_articles
from recommender.lookups import search_index
from recommender.neighbors import search, top_k_indices
from recommender.ranking import RankingOptions, TermWeight, choose, explain, pool_size, title_key

SAMPLE = Path(__file__).parent / "data" / "sample.jsonl"
SNAKE_ID = "kompas-8f42b397"
DAY = 86400.0
OFF = RankingOptions(half_life_days=None, dedup=None)  # every option off: plain top-k


def time_weights(query_ts: np.ndarray, doc_ts: np.ndarray, options: RankingOptions) -> np.ndarray | None:
    """The time prior in plain NumPy, the reference the kernel is checked against: per-candidate weights
    (queries × documents) from publication times; ``None`` if nothing applies. Undated articles (NaN) are
    neither weighted nor filtered; a weight of 0 filters a newer article out."""
    use_prior = options.half_life_days is not None
    if not use_prior and options.newer:
        return None
    # Days from the corpus's first date fit float32 to within seconds, at half the memory traffic; the
    # origin depends on the documents only, so a lookup and the batch job compute identical weights.
    origin = 0.0 if np.isnan(doc_ts).all() else float(np.nanmin(doc_ts))
    apart = ((doc_ts - origin) / DAY).astype(np.float32)[None, :] - ((query_ts - origin) / DAY).astype(np.float32)[
        :, None
    ]
    unknown = np.isnan(apart)
    if unknown.any():
        apart[unknown] = 0.0  # undated: neither weighted nor filtered
    if use_prior:
        weights = np.abs(apart)
        weights /= np.float32(options.half_life_days)
        weights += np.float32(1.0)
        np.reciprocal(weights, out=weights)
        weights *= np.float32(options.time_weight)  # keep + weight / (1 + days / h)
        weights += np.float32(1.0) - np.float32(options.time_weight)
    else:
        weights = np.ones(apart.shape, dtype=np.float32)
    if not options.newer:
        # Exact seconds: a story one minute newer must not slip through a rounding.
        later = (doc_ts[None, :] - query_ts[:, None]) > 0  # NaN compares False: undated kept
        weights[later] = 0.0
    return weights


def topic_agreement(model: Recommender, row: int) -> np.ndarray:
    """The topic gate in plain NumPy: the row's cosine to every row in the topic space, 0 if negative."""
    return np.maximum(np.asarray(model.topics_) @ np.asarray(model.topics_)[row], np.float32(0.0))


def select(
    scores: np.ndarray,
    k: int,
    *,
    matrix: sp.csr_matrix,
    key_of: Callable[[int], str],
    options: RankingOptions,
) -> list[int]:
    """:func:`choose` on one query's dense ``scores`` (already weighted and masked): the rows of its list,
    best first. ``key_of(row)`` gives a row's :func:`title_key`, for the same-title test of ``dedup``."""
    pool = top_k_indices(scores, pool_size(k, options))
    keys: dict[str, int] = {}
    title_ids = np.zeros(matrix.shape[0], dtype=np.int64)
    if options.dedup is not None:
        for row in pool.tolist():
            title_ids[row] = keys.setdefault(key_of(row), len(keys))
    return choose(pool, scores[pool], k, matrix=matrix, title_ids=title_ids, options=options)


def rows(*vectors: Sequence[float] | np.ndarray) -> sp.csr_matrix:
    """A CSR matrix of the given rows, each L2-normalised (float64, so hand-computed cosines are exact)."""
    dense = np.array(vectors, dtype=np.float64)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    return sp.csr_matrix(dense)


def untitled(titles: Sequence[str | None] | None = None) -> Any:
    """A ``key_of`` callback (title keys): distinct titles by default."""
    return lambda row: title_key(titles[row] if titles is not None else f"judul nomor {row}")


def pick(
    scores: Sequence[float], k: int, matrix: sp.csr_matrix, options: RankingOptions, titles: Sequence[str] | None = None
) -> list[int]:
    return select(np.array(scores, dtype=np.float32), k, matrix=matrix, key_of=untitled(titles), options=options)


# --- time_weights ----------------------------------------------------------------------------------


def test_time_weights_hyperbolic_prior_by_hand() -> None:
    docs = np.array([0.0, 3 * DAY, 6 * DAY, -3 * DAY, 1.5 * DAY, 30 * DAY])
    weights = time_weights(np.array([0.0]), docs, RankingOptions(half_life_days=3.0, time_weight=1.0))
    assert weights is not None
    assert weights.shape == (1, 6)
    expected = [1.0, 0.5, 1 / 3, 0.5, 1 / 1.5, 1 / 11]  # 1 / (1 + days / 3), symmetric in time
    np.testing.assert_allclose(weights[0], expected, rtol=1e-6)


def test_time_weights_gentle_prior_by_hand() -> None:
    docs = np.array([0.0, 7 * DAY, -21 * DAY, 700 * DAY])
    weights = time_weights(np.array([0.0]), docs, RankingOptions(half_life_days=7.0, time_weight=0.2))
    assert weights is not None
    # 0.8 + 0.2 / (1 + days / 7): never below 0.8, so time cannot overturn a clear difference in similarity
    np.testing.assert_allclose(weights[0], [1.0, 0.9, 0.85, 0.8 + 0.2 / 101], rtol=1e-6)


def test_time_weights_half_life_scales_the_prior() -> None:
    weights = time_weights(np.array([0.0]), np.array([10 * DAY]), RankingOptions(half_life_days=10.0, time_weight=1))
    assert weights is not None
    assert weights[0, 0] == pytest.approx(0.5)


def test_time_weights_one_row_per_query() -> None:
    queries = np.array([0.0, 6 * DAY])
    docs = np.array([0.0, 3 * DAY, 6 * DAY])
    weights = time_weights(queries, docs, RankingOptions(half_life_days=3.0, time_weight=1.0))
    assert weights is not None
    np.testing.assert_allclose(weights, [[1.0, 0.5, 1 / 3], [1 / 3, 0.5, 1.0]], rtol=1e-6)


def test_time_weights_undated_articles_weigh_one() -> None:
    nan = float("nan")
    full = RankingOptions(half_life_days=3.0, time_weight=1.0)
    weights = time_weights(np.array([0.0, nan]), np.array([nan, 3 * DAY, 0.0]), full)
    assert weights is not None
    assert not np.isnan(weights).any()
    np.testing.assert_allclose(weights, [[1.0, 0.5, 1.0], [1.0, 1.0, 1.0]], rtol=1e-6)


def test_time_weights_no_newer_without_prior() -> None:
    nan = float("nan")
    docs = np.array([-2 * DAY, 0.0, 1.0, 5 * DAY, nan])  # earlier, same moment, 1 s later, later, undated
    weights = time_weights(np.array([0.0]), docs, RankingOptions(half_life_days=None, newer=False))
    assert weights is not None
    np.testing.assert_array_equal(weights[0], [1.0, 1.0, 0.0, 0.0, 1.0])


def test_time_weights_no_newer_with_prior() -> None:
    nan = float("nan")
    docs = np.array([-3 * DAY, 0.0, 3 * DAY, nan])
    weights = time_weights(np.array([0.0]), docs, RankingOptions(half_life_days=3.0, time_weight=1.0, newer=False))
    assert weights is not None
    np.testing.assert_allclose(weights[0], [0.5, 1.0, 0.0, 1.0], rtol=1e-6)


def test_time_weights_undated_query_filters_nothing() -> None:
    weights = time_weights(np.array([float("nan")]), np.array([-DAY, DAY]), RankingOptions(newer=False))
    assert weights is not None
    np.testing.assert_array_equal(weights[0], [1.0, 1.0])


def test_time_weights_none_when_nothing_applies() -> None:
    assert time_weights(np.array([0.0]), np.array([0.0, DAY]), RankingOptions(half_life_days=None)) is None
    assert time_weights(np.array([0.0]), np.array([0.0, DAY]), RankingOptions(half_life_days=None, newer=True)) is None


@pytest.mark.parametrize(
    "options",
    [
        RankingOptions(),
        RankingOptions(half_life_days=1.0, time_weight=1.0, newer=False),
        RankingOptions(half_life_days=3.0, time_weight=0.5),
        RankingOptions(half_life_days=None, newer=False),
    ],
)
def test_kernel_scores_are_cosine_times_the_reference_weights(fitted: Recommender, options: RankingOptions) -> None:
    # Every candidate the kernel returns (pool = the whole corpus) scores exactly cosine × time_weights,
    # and none that the reference weighs to zero (newer articles) comes back.
    index = search_index(fitted.fitted_state())
    n = index.n_docs
    ts = np.asarray(index.timestamps)
    for row in (0, 57, 211, 379):
        hits = search(
            index, index.matrix[row], n, exclude=np.array([row]), query_ts=ts[[row]],
            prior=options.prior(), query_topics=fitted.topics_[[row]],
        )  # fmt: skip
        cosines = (index.matrix @ index.matrix[row].T).toarray().ravel().astype(np.float32)
        weights = time_weights(ts[[row]], ts, options)
        expected = cosines * topic_agreement(fitted, row) * (weights[0] if weights is not None else np.float32(1.0))
        expected[row] = 0.0
        got = {int(j): float(v) for j, v in zip(hits.rows[0], hits.scores[0], strict=True) if j >= 0}
        assert set(got) == set(np.flatnonzero(expected > 0).tolist())
        for j, v in got.items():
            assert v == pytest.approx(float(expected[j]), rel=1e-5, abs=1e-7)


# --- RankingOptions --------------------------------------------------------------------------------


def test_ranking_options_defaults() -> None:
    options = RankingOptions()
    assert (options.half_life_days, options.time_weight, options.newer, options.dedup) == (7.0, 0.2, True, 0.8)
    assert (options.diversity, options.min_score, options.min_results) == (0.0, 0.05, 0)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"half_life_days": 0.0}, "half_life_days must be above 0"),
        ({"half_life_days": -1.0}, "half_life_days must be above 0"),
        ({"half_life_days": float("nan")}, "half_life_days must be above 0"),
        ({"dedup": 0.0}, "dedup must be a cosine in (0, 1]"),
        ({"dedup": -0.5}, "dedup must be a cosine in (0, 1]"),
        ({"dedup": 1.01}, "dedup must be a cosine in (0, 1]"),
        ({"diversity": -0.1}, "diversity must be between 0 and 1, got -0.1"),
        ({"diversity": 1.5}, "diversity must be between 0 and 1, got 1.5"),
        ({"diversity": float("nan")}, "diversity must be between 0 and 1"),
        ({"min_score": -0.01}, "min_score must be between 0 and 1"),
        ({"min_score": 1.01}, "min_score must be between 0 and 1"),
        ({"min_results": -1}, "min_results must be a whole number of 0 or more, got -1"),
        ({"min_results": True}, "min_results must be a whole number of 0 or more, got True"),
        ({"min_results": 2.0}, "min_results must be a whole number of 0 or more"),
    ],
)
def test_ranking_options_invalid(params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        RankingOptions(**params)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "params",
    [
        {"half_life_days": None},
        {"half_life_days": 0.01},
        {"dedup": None},
        {"dedup": 1.0},
        {"dedup": 0.01},
        {"diversity": 0.0},
        {"diversity": 1.0},
        {"min_score": 0.0},
        {"min_score": 1.0},
        {"min_results": 0},
        {"min_results": 50},
        {"within_days": 0.0},
        {"time_weight": 1.0},
    ],
)
def test_ranking_options_valid_edges(params: dict[str, Any]) -> None:
    options = RankingOptions(**params)
    # Accepted, and kept as given (not clamped or replaced); every other option at its default.
    defaults = RankingOptions()
    for name in ("half_life_days", "time_weight", "newer", "within_days", "dedup", "diversity", "min_score"):
        assert getattr(options, name) == params.get(name, getattr(defaults, name)), name
    assert options.min_results == params.get("min_results", defaults.min_results)
    # The search kernel receives the time options as given.
    prior = options.prior()
    assert (prior.half_life_days, prior.weight, prior.newer, prior.within_days) == (
        options.half_life_days,
        options.time_weight,
        options.newer,
        options.within_days,
    )


# --- title_key -------------------------------------------------------------------------------------


def test_title_key_ignores_case_punctuation_and_spacing() -> None:
    assert title_key("Banjir di Jakarta!") == "banjir di jakarta"
    assert title_key("  BANJIR, di   'Jakarta' ") == title_key("banjir di jakarta")
    assert title_key("Ular 'Berkaki' Tiga") == title_key("ular berkaki tiga")
    assert title_key("Banjir di Bandung") != title_key("Banjir di Jakarta")
    assert title_key(None) == "" == title_key("")


# --- select ----------------------------------------------------------------------------------------

FOUR_ORTHOGONAL = rows([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1])


def test_select_plain_is_top_k() -> None:
    scores = [0.1, 0.5, 0.3, 0.0]
    assert pick(scores, 2, FOUR_ORTHOGONAL, OFF) == [1, 2]
    assert pick(scores, 10, FOUR_ORTHOGONAL, OFF) == [1, 2, 0]  # never a zero score
    assert pick([0.0, 0.0, 0.0, 0.0], 3, FOUR_ORTHOGONAL, OFF) == []


def test_select_plain_matches_top_k_indices() -> None:
    scores = np.array([0.2, 0.7, 0.7, 0.1], dtype=np.float32)
    got = select(scores, 3, matrix=FOUR_ORTHOGONAL, key_of=untitled(), options=OFF)
    assert got == top_k_indices(scores, 3).tolist() == [1, 2, 0]


def test_select_options_on_but_idle_give_the_plain_list() -> None:
    # The non-plain path (dedup on) with nothing to drop must give the plain top-k.
    scores = [0.1, 0.5, 0.3, 0.0]
    options = RankingOptions(half_life_days=None, dedup=0.9)
    assert pick(scores, 2, FOUR_ORTHOGONAL, options) == [1, 2]
    assert pick(scores, 10, FOUR_ORTHOGONAL, options) == [1, 2, 0]


def test_select_dedup_drops_near_duplicate_and_same_title_and_keeps_filling() -> None:
    matrix = rows(
        [1, 0, 0, 0, 0],  # 0
        [1, 0, 0, 0, 0],  # 1: the same vector as 0 (cosine 1)
        [0, 0, 1, 0, 0],  # 2
        [0, 0, 0, 1, 0],  # 3: another vector, but the same headline as 2
        [0, 0, 0, 0, 1],  # 4
    )
    titles = ["Satu", "Dua", "Banjir di Jakarta!", "banjir, DI jakarta", "Lima"]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    options = RankingOptions(half_life_days=None, dedup=0.9)
    assert pick(scores, 3, matrix, options, titles) == [0, 2, 4]
    assert pick(scores, 10, matrix, options, titles) == [0, 2, 4]
    assert pick(scores, 3, matrix, RankingOptions(half_life_days=None, dedup=None), titles) == [0, 1, 2]


def test_select_dedup_threshold_is_inclusive() -> None:
    matrix = rows([1.0, 0.0], [0.6, 0.8])  # cosine exactly 0.6
    assert pick([0.9, 0.8], 2, matrix, RankingOptions(half_life_days=None, dedup=0.6)) == [0]
    assert pick([0.9, 0.8], 2, matrix, RankingOptions(half_life_days=None, dedup=0.61)) == [0, 1]


def test_select_dedup_keeps_the_better_of_two_copies() -> None:
    matrix = rows([0, 1, 0], [1, 0, 0], [1, 0, 0])  # rows 1 and 2 are copies
    assert pick([0.3, 0.5, 0.8], 3, matrix, RankingOptions(half_life_days=None)) == [2, 0]


def test_select_diversity_reorders_by_mmr() -> None:
    # a = e1; b has cosine 0.8 with a; c is orthogonal to both.
    matrix = rows([1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0])
    scores = [0.9, 0.8, 0.5]
    relevance_only = RankingOptions(half_life_days=None, dedup=None, diversity=0.0, min_score=0.01)
    assert pick(scores, 3, matrix, relevance_only) == [0, 1, 2]
    # λ = 1: after a, b's value is -0.8 (its cosine to a), c's is 0: c comes before b.
    assert pick(scores, 3, matrix, RankingOptions(half_life_days=None, dedup=None, diversity=1.0)) == [0, 2, 1]
    # λ = 0.5: b = 0.5·0.8 - 0.5·0.8 = 0 < c = 0.5·0.5 - 0 = 0.25.
    assert pick(scores, 3, matrix, RankingOptions(half_life_days=None, dedup=None, diversity=0.5)) == [0, 2, 1]
    # λ = 0.2: b = 0.8·0.8 - 0.2·0.8 = 0.48 > c = 0.8·0.5 = 0.4: relevance still wins.
    assert pick(scores, 3, matrix, RankingOptions(half_life_days=None, dedup=None, diversity=0.2)) == [0, 1, 2]
    # k = 2: diversity changes which articles make the list, not just their order.
    assert pick(scores, 2, matrix, RankingOptions(half_life_days=None, dedup=None, diversity=1.0)) == [0, 2]


def test_select_min_score_drops_weak_results() -> None:
    scores = [0.9, 0.5, 0.2, 0.1]
    assert pick(scores, 4, FOUR_ORTHOGONAL, RankingOptions(half_life_days=None, dedup=None, min_score=0.3)) == [0, 1]
    assert pick(scores, 4, FOUR_ORTHOGONAL, RankingOptions(half_life_days=None, dedup=None, min_score=0.5)) == [0, 1]
    assert pick(scores, 4, FOUR_ORTHOGONAL, RankingOptions(half_life_days=None, dedup=None, min_score=0.95)) == []


def test_select_min_results_fills_back_the_best() -> None:
    scores = [0.9, 0.5, 0.2, 0.1]

    def opts(min_score: float, min_results: int) -> RankingOptions:
        return RankingOptions(half_life_days=None, dedup=None, min_score=min_score, min_results=min_results)

    assert pick(scores, 4, FOUR_ORTHOGONAL, opts(0.3, 3)) == [0, 1, 2]
    assert pick(scores, 4, FOUR_ORTHOGONAL, opts(0.3, 2)) == [0, 1]  # enough pass: nothing added
    assert pick(scores, 4, FOUR_ORTHOGONAL, opts(0.3, 1)) == [0, 1]  # min_results never cuts
    assert pick(scores, 4, FOUR_ORTHOGONAL, opts(1.0, 2)) == [0, 1]
    assert pick(scores, 4, FOUR_ORTHOGONAL, opts(1.0, 10)) == [0, 1, 2, 3]  # no more than there are
    assert pick(scores, 2, FOUR_ORTHOGONAL, opts(1.0, 10)) == [0, 1]  # nor more than k


def test_select_min_results_with_diversity_keeps_every_passing_result() -> None:
    # a = e1, c has cosine 0.95 with a, b and d are orthogonal to everything. With λ = 0.5 MMR picks
    # a (0.9), then b (0.05 > d 0.025 > c -0.225), then d, then c: chosen = [a, b, d, c].
    # min_score 0.4 passes a and c only; min_results 3 must add ONE more (b), not drop c.
    c2 = math.sqrt(1 - 0.95**2)
    matrix = rows([1, 0, 0, 0], [0, 0, 1, 0], [0.95, c2, 0, 0], [0, 0, 0, 1])
    scores = [0.9, 0.1, 0.5, 0.05]
    options = RankingOptions(half_life_days=None, dedup=None, diversity=0.5, min_score=0.4)
    assert pick(scores, 4, matrix, options) == [0, 2]
    options = RankingOptions(half_life_days=None, dedup=None, diversity=0.5, min_score=0.4, min_results=3)
    got = pick(scores, 4, matrix, options)
    assert len(got) == 3
    assert {0, 2} <= set(got), f"{got}: the result scoring 0.5 ≥ min_score 0.4 was dropped"


def test_select_dedup_diversity_and_threshold_together() -> None:
    matrix = rows([1, 0, 0], [1, 0, 0], [0.8, 0.6, 0], [0, 0, 1])
    scores = [0.9, 0.85, 0.8, 0.3]
    options = RankingOptions(half_life_days=None, dedup=0.9, diversity=1.0, min_score=0.25)
    assert pick(scores, 3, matrix, options) == [0, 3, 2]  # 1 is a copy of 0; 3 is the most different


# --- explain ---------------------------------------------------------------------------------------

TERMS = ["ular", "berkaki", "karhutla", "riau", "ahli", "banjir"]


def test_explain_contributions_by_hand() -> None:
    query = rows([3, 4, 0, 12, 0, 0])  # norm 13
    row = rows([1, 1, 1, 1, 0, 0])  # norm 2
    why = explain(query, row, TERMS.__getitem__)
    # shared: ular 3/26, berkaki 4/26, riau 12/26; karhutla is not in the query, banjir in neither.
    assert [w.term for w in why] == ["riau", "berkaki", "ular"]
    assert [w.weight for w in why] == pytest.approx([12 / 26, 4 / 26, 3 / 26], abs=5e-5)
    assert all(isinstance(w, TermWeight) for w in why)
    assert sum(w.weight for w in why) == pytest.approx((query @ row.T).toarray()[0, 0], abs=3 * 5e-5)


def test_explain_matches_the_product_and_is_capped() -> None:
    rng = np.random.default_rng(7)
    query = rows(rng.random(6) * (rng.random(6) > 0.2))
    row = rows(rng.random(6) + 0.01)
    product = query.multiply(row).tocoo()
    expected = sorted(((float(v), TERMS[int(c)]) for v, c in zip(product.data, product.col, strict=True)), reverse=True)
    cosine = float((query @ row.T).toarray()[0, 0])
    full = explain(query, row, TERMS.__getitem__, n=100)
    assert [w.term for w in full] == [t for _, t in expected]
    for w, (value, _) in zip(full, expected, strict=True):
        assert w.weight == pytest.approx(value, abs=5e-5)
    weights = [w.weight for w in full]
    assert weights == sorted(weights, reverse=True)
    assert sum(weights) == pytest.approx(cosine, abs=len(full) * 5e-5)
    for n in (1, 2, 3):
        assert explain(query, row, TERMS.__getitem__, n=n) == full[:n]


def test_explain_no_shared_terms() -> None:
    assert explain(rows([1, 1, 0, 0, 0, 0]), rows([0, 0, 1, 1, 0, 0]), TERMS.__getitem__) == ()


def test_explain_unknown_term_is_empty_string() -> None:
    why = explain(rows([1, 0]), rows([1, 0]), lambda col: None)
    assert why == (TermWeight("", 1.0),)


# --- the model -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def terms_of(fitted: Recommender, sample_articles: list[Article]) -> dict[str, set[str]]:
    """Every sample article's analysed terms."""
    return {a.id: set(fitted.analyzer_((a.title, a.body))) for a in sample_articles}


@pytest.fixture(scope="module")
def no_prior(sample_articles: list[Article]) -> Recommender:
    """Plain cosine: neither the time prior nor the topic gate."""
    return Recommender.train(sample_articles, n_jobs=1, half_life_days=None, topic_dims=None)


def some_ids(fitted: Recommender, step: int = 7) -> list[str]:
    ids = [str(i) for i in fitted.ids_.to_list()]
    return [SNAKE_ID, *ids[::step]]


def test_related_explain_terms_are_shared_terms(fitted: Recommender, terms_of: dict[str, set[str]]) -> None:
    for article_id in some_ids(fitted):
        results = fitted.related(article_id, 5, explain=True)
        for r in results:
            assert r.similarity is not None
            assert 1 <= len(r.why) <= 5
            for w in r.why:
                assert w.term in terms_of[article_id], (article_id, r.id, w.term)
                assert w.term in terms_of[r.id], (article_id, r.id, w.term)
                assert w.weight > 0
            weights = [w.weight for w in r.why]
            assert weights == sorted(weights, reverse=True)
            assert len({w.term for w in r.why}) == len(r.why)


def test_related_explain_weights_do_not_exceed_the_similarity(fitted: Recommender) -> None:
    for article_id in fitted.ids_.to_list():
        query = fitted.matrix_[fitted.row_of(str(article_id))]
        for r in fitted.related(str(article_id), 10, explain=True):
            assert r.similarity is not None
            shared = query.multiply(fitted.matrix_[fitted.row_of(r.id)])
            exact = np.sort(shared.data.astype(np.float64))[::-1]
            # Every shared term together makes up the cosine; the five listed can only be part of it. The
            # kernel sums in float32 (about 1e-6 over a long row) and the result is rounded to 6 decimals.
            assert exact.sum() == pytest.approx(r.similarity, abs=2e-6)
            assert exact[: len(r.why)].sum() <= r.similarity + 1e-6
            # The listed weights are the largest contributions, rounded to 4 decimals by explain():
            # their sum may pass the similarity by that rounding (5e-5 a term) and no more.
            assert [w.weight for w in r.why] == pytest.approx(exact[: len(r.why)].tolist(), abs=5e-5)
            total = sum(w.weight for w in r.why)
            assert total <= r.similarity + 1e-6 + 5e-5 * len(r.why), (article_id, r.id, total, r.similarity)


def test_related_explain_snake(fitted: Recommender) -> None:
    results = fitted.related(SNAKE_ID, 4, explain=True)
    assert [r.id for r in results] == ["kompas-defc2e02", "kompas-524086ea", "kompas-60ddcf82", "wowkeren-43b9afa3"]
    for r in results:
        assert {"ular", "berkaki"} <= {w.term for w in r.why}
    assert results[0].to_dict()["why"] == tuple({"term": w.term, "weight": w.weight} for w in results[0].why)


def test_related_without_explain_has_no_why(fitted: Recommender) -> None:
    for r in fitted.related(SNAKE_ID, 10):
        assert r.why == ()
        assert "why" not in r.to_dict()


def test_related_to_text_explain(fitted: Recommender, sample_articles: list[Article]) -> None:
    snake = next(a for a in sample_articles if a.id == SNAKE_ID)
    results = fitted.related_to_text(title=snake.title, body=snake.body, k=3, explain=True)
    assert results[0].id == SNAKE_ID
    assert results[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert "ular" in {w.term for w in results[0].why}


def test_no_newer_never_returns_a_later_article(fitted: Recommender) -> None:
    stamps = fitted.timestamps_
    later_somewhere = 0
    for article_id in fitted.ids_.to_list():
        own = stamps[fitted.row_of(str(article_id))]
        default = fitted.related(str(article_id), 10)
        later_somewhere += any(stamps[fitted.row_of(r.id)] > own for r in default)
        for r in fitted.related(str(article_id), 10, newer=False):
            assert stamps[fitted.row_of(r.id)] <= own, (article_id, r.id)
    assert later_somewhere > 0  # the filter had something to do


def test_no_newer_snake(fitted: Recommender) -> None:
    ids = [r.id for r in fitted.related(SNAKE_ID, 10, newer=False)]
    # 524086ea (05:06) and 60ddcf82 (06:01) came before the snake story (10:34); defc2e02 (11:19) and the
    # wowkeren one (next day) after it.
    assert ids[:2] == ["kompas-524086ea", "kompas-60ddcf82"]
    assert not {"kompas-defc2e02", "wowkeren-43b9afa3"} & set(ids)


def test_no_newer_draft(fitted: Recommender, sample_articles: list[Article]) -> None:
    snake = next(a for a in sample_articles if a.id == SNAKE_ID)
    assert snake.published is not None
    results = fitted.related_to_text(title=snake.title, body=snake.body, k=10, published=snake.published, newer=False)
    own = fitted.timestamps_[fitted.row_of(SNAKE_ID)]
    assert results and all(fitted.timestamps_[fitted.row_of(r.id)] <= own for r in results)
    assert SNAKE_ID in [r.id for r in results]  # published at the very same time: not newer


def test_time_prior_score_at_most_similarity(fitted: Recommender) -> None:
    stamps = fitted.timestamps_
    for article_id in some_ids(fitted, 3):
        own = stamps[fitted.row_of(article_id)]
        for r in fitted.related(article_id, 10):
            assert r.similarity is not None
            assert 0 < r.score <= r.similarity <= 1.0
            days = abs(stamps[fitted.row_of(r.id)] - own) / DAY
            gate = topic_agreement(fitted, fitted.row_of(article_id))[fitted.row_of(r.id)]
            assert r.score == pytest.approx(
                r.similarity * gate * (0.8 + 0.2 / (1 + days / 7.0)), abs=5e-6
            )  # both rounded to 6 decimals, weights in float32


def test_time_prior_can_be_turned_off(no_prior: Recommender) -> None:
    for article_id in some_ids(no_prior, 3):
        for r in no_prior.related(article_id, 10):
            assert r.score == r.similarity


def test_topic_gate_alone_weighs_each_cosine_by_topic_agreement(sample_articles: list[Article]) -> None:
    gated = Recommender.train(sample_articles, n_jobs=1, half_life_days=None)
    assert gated.topics_ is not None and gated.topics_.shape == (380, 3)  # one dimension per 100 articles
    np.testing.assert_allclose(np.linalg.norm(gated.topics_, axis=1), 1.0, rtol=1e-5)
    seen = 0
    for article_id in some_ids(gated, 3):
        agreement = topic_agreement(gated, gated.row_of(article_id))
        for r in gated.related(article_id, 10):
            assert r.similarity is not None
            assert r.score == pytest.approx(r.similarity * agreement[gated.row_of(r.id)], abs=5e-6)
            seen += r.score < r.similarity - 1e-4
    assert seen  # the gate lowers some scores


def test_time_prior_reorders(fitted: Recommender, no_prior: Recommender) -> None:
    # Without the prior, the list is by cosine; with it, near-in-time articles move up.
    changed = 0
    for article_id in some_ids(fitted, 5):
        with_prior = [r.id for r in fitted.related(article_id, 10)]
        without = no_prior.related(article_id, 10)
        sims = [r.score for r in without]
        assert sims == sorted(sims, reverse=True)
        changed += with_prior != [r.id for r in without]
    assert changed > 0


def story(article_id: str, title: str, body: str, published: str = "2024-03-01T10:00:00+07:00") -> Article:
    return Article(id=article_id, title=title, body=body, published=published, section="berita")


@pytest.fixture(scope="module")
def copies_corpus() -> list[Article]:
    flood = (
        "Banjir merendam ratusan rumah warga di Kampung Melayu, Jakarta Timur, setelah hujan deras mengguyur "
        "sejak sore. Petugas pemadam kebakaran mengerahkan perahu karet untuk mengevakuasi warga lansia."
    )
    return [
        story("a-flood", "Banjir Rendam Ratusan Rumah di Kampung Melayu", flood),
        story("b-copy", "Banjir Rendam Ratusan Rumah di Kampung Melayu", flood),
        story("c-copy", "Banjir Rendam Ratusan Rumah di Kampung Melayu", flood),
        story(
            "d-query",
            "Warga Kampung Melayu Mengungsi karena Banjir",
            "Ratusan warga Kampung Melayu mengungsi ke masjid setelah banjir merendam rumah mereka. Perahu karet "
            "dikerahkan petugas untuk mengevakuasi warga lansia dan anak-anak.",
            "2024-03-01T12:00:00+07:00",
        ),
        story(
            "e-other",
            "Harga Cabai Naik Jelang Ramadan",
            "Harga cabai rawit di pasar induk naik dua kali lipat menjelang Ramadan, kata pedagang.",
        ),
        story(
            "f-other",
            "Timnas Menang Telak atas Brunei",
            "Tim nasional sepak bola menang telak lima gol tanpa balas dalam laga persahabatan.",
        ),
    ]


def test_dedup_lists_one_copy_of_a_republished_story(copies_corpus: list[Article]) -> None:
    copies = {"a-flood", "b-copy", "c-copy"}
    model = Recommender.train(copies_corpus, n_jobs=1)
    ids = [r.id for r in model.related("d-query", 5)]
    assert len(copies & set(ids)) == 1, ids
    assert ids[0] == "a-flood"  # ties keep the lowest row
    drafted = [r.id for r in model.related_to_text(title="Banjir di Kampung Melayu", body="Warga mengungsi.", k=5)]
    assert len(copies & set(drafted)) == 1, drafted

    off = Recommender.train(copies_corpus, n_jobs=1, dedup=None)
    ids = [r.id for r in off.related("d-query", 5)]
    assert copies <= set(ids), ids
    assert ids[:3] == ["a-flood", "b-copy", "c-copy"]


def test_dedup_same_title_different_body(copies_corpus: list[Article]) -> None:
    # Same headline (other case and punctuation) over a rewritten body: still the same story.
    retitled = [
        *copies_corpus[:1],
        story(
            "g-rewrite",
            "BANJIR rendam ratusan rumah di Kampung Melayu!",
            "Hujan deras sejak sore membuat banjir merendam rumah warga; perahu karet dikerahkan petugas.",
        ),
        *copies_corpus[3:],
    ]
    model = Recommender.train(retitled, n_jobs=1)
    similarity = (model.matrix_[0] @ model.matrix_[1].T).toarray()[0, 0]
    assert similarity < 0.9  # not caught by the cosine
    ids = [r.id for r in model.related("d-query", 5)]
    assert len({"a-flood", "g-rewrite"} & set(ids)) == 1, ids
    ids = [r.id for r in Recommender.train(retitled, n_jobs=1, dedup=None).related("d-query", 5)]
    assert {"a-flood", "g-rewrite"} <= set(ids), ids


def test_dedup_in_all_related(copies_corpus: list[Article]) -> None:
    model = Recommender.train(copies_corpus, n_jobs=1)
    ids = model.ids_.to_list()
    query = ids.index("d-query")
    block = next(iter(model.all_related(5)))
    listed = {ids[j] for j in block.indices[query] if j >= 0}
    assert len({"a-flood", "b-copy", "c-copy"} & listed) == 1


def lists_from_blocks(model: Recommender, k: int, **options: Any) -> dict[str, list[tuple[str, float]]]:
    ids = [str(i) for i in model.ids_.to_list()]
    out = {}
    for block in model.all_related(k, block_rows=64, **options):
        for offset, (indices, scores) in enumerate(zip(block.indices, block.scores, strict=True)):
            out[ids[block.start + offset]] = [
                (ids[j], float(s)) for j, s in zip(indices.tolist(), scores.tolist(), strict=True) if j >= 0
            ]
    return out


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"newer": False},
        {"min_score": 0.2},
        {"newer": False, "min_score": 0.3, "min_results": 2},
        {"diversity": 0.3},
    ],
    ids=["default", "no-newer", "min-score", "no-newer-min-score-min-results", "diversity"],
)
def test_all_related_matches_related(fitted: Recommender, options: dict[str, Any]) -> None:
    k = 8
    batch = lists_from_blocks(fitted, k, **options)
    assert len(batch) == len(fitted)
    for article_id, listed in batch.items():
        single = fitted.related(article_id, k, **options)
        assert [i for i, _ in listed] == [r.id for r in single], article_id
        for (_, score), r in zip(listed, single, strict=True):
            assert score == pytest.approx(r.score, abs=1e-6)


def test_min_score_and_min_results_on_the_model(fitted: Recommender) -> None:
    everything = fitted.related(SNAKE_ID, 10)
    strong = fitted.related(SNAKE_ID, 10, min_score=0.3)
    assert [r.id for r in strong] == [r.id for r in everything if r.score >= 0.3]
    assert 3 <= len(strong) < len(everything)
    assert [r.id for r in strong][:3] == ["kompas-defc2e02", "kompas-524086ea", "kompas-60ddcf82"]
    filled = fitted.related(SNAKE_ID, 10, min_score=0.3, min_results=5)
    assert [r.id for r in filled] == [r.id for r in everything[:5]]
    assert fitted.related(SNAKE_ID, 10, min_score=1.0) == []


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"diversity": 2.0}, "diversity must be between 0 and 1, got 2.0"),
        ({"min_score": -1.0}, "min_score must be between 0 and 1"),
        ({"min_results": -2}, "min_results must be a whole number"),
    ],
)
def test_model_rejects_bad_ranking_options(fitted: Recommender, params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidParameterError, match=fragment):
        fitted.related(SNAKE_ID, 5, **params)
    with pytest.raises(InvalidParameterError, match=fragment):
        fitted.related_to_text(title="ular berkaki", **params)
    with pytest.raises(InvalidParameterError, match=fragment):
        fitted.all_related(5, **params)


def test_bad_half_life_at_fit(sample_articles: list[Article]) -> None:
    with pytest.raises(InvalidParameterError, match="half_life_days"):
        Recommender.train(sample_articles[:5], n_jobs=1, half_life_days=0)
    with pytest.raises(InvalidParameterError, match="dedup"):
        Recommender.train(sample_articles[:5], n_jobs=1, dedup=1.5)


# --- hypothesis ------------------------------------------------------------------------------------

_SAMPLE_IDS = [a.id for a in read_articles(SAMPLE).articles]
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(article_id=st.sampled_from(_SAMPLE_IDS), k=st.integers(1, 20), newer=st.booleans())
def test_scores_never_increase(fitted: Recommender, article_id: str, k: int, newer: bool) -> None:
    results = fitted.related(article_id, k, newer=newer, diversity=0.0)
    assert len(results) <= k
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    assert article_id not in {r.id for r in results}
    assert len({r.id for r in results}) == len(results)


@PROPERTY
@given(
    article_id=st.sampled_from(_SAMPLE_IDS),
    k=st.integers(1, 20),
    min_score=st.floats(0.0, 1.0),
    diversity=st.sampled_from([0.0, 0.5]),
)
def test_min_score_is_a_floor(fitted: Recommender, article_id: str, k: int, min_score: float, diversity: float) -> None:
    results = fitted.related(article_id, k, min_score=min_score, min_results=0, diversity=diversity)
    assert all(r.score >= min_score - 1e-6 for r in results), [r.score for r in results]
    unfiltered = fitted.related(article_id, k, diversity=diversity, min_score=0.0)
    # The threshold filters the list it would otherwise give, keeping its order.
    assert [r.id for r in results] == [r.id for r in unfiltered if r.score >= min_score]
