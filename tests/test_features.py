"""Term counting and TF-IDF weighting against scikit-learn, and fitting on counts made elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender import Article, InvalidParameterError, Recommender
from recommender.features import Counts, count_terms, tfidf
from recommender.text import Analyzer


def docs_of(articles: list[Article]) -> list[tuple[str, str]]:
    return [(a.title, a.body) for a in articles]


def as_dict(counts: Counts) -> list[dict[str, float]]:
    m = counts.matrix.tocsr()
    return [
        {
            counts.terms[j]: float(v)
            for j, v in zip(
                m.indices[m.indptr[i] : m.indptr[i + 1]], m.data[m.indptr[i] : m.indptr[i + 1]], strict=True
            )
        }
        for i in range(m.shape[0])
    ]


def test_counts_are_the_analyzer_terms(sample_articles: list[Article]) -> None:
    analyzer = Analyzer()
    docs = docs_of(sample_articles[:40])
    counts = count_terms(analyzer, docs, n_jobs=1)
    expected = []
    for doc in docs:
        row: dict[str, float] = {}
        for term in analyzer(doc):
            row[term] = row.get(term, 0.0) + 1.0
        expected.append(row)
    assert as_dict(counts) == expected


def test_parallel_counts_equal_serial_counts(sample_articles: list[Article]) -> None:
    docs = docs_of(sample_articles)  # 380 articles: several chunks only if chunks are small
    import recommender.features as features

    original = features._CHUNK
    features._CHUNK = 50
    try:
        parallel = count_terms(Analyzer(), docs, n_jobs=2)
    finally:
        features._CHUNK = original
    assert as_dict(parallel) == as_dict(count_terms(Analyzer(), docs, n_jobs=1))


@pytest.mark.parametrize("sublinear", [True, False])
@pytest.mark.parametrize(("min_df", "max_df"), [(1, 1.0), (2, 0.5), (0.01, 0.9)])
def test_tfidf_matches_scikit_learn(
    sample_articles: list[Article], sublinear: bool, min_df: float, max_df: float
) -> None:
    analyzer = Analyzer()
    docs = docs_of(sample_articles)
    matrix, terms, idf = tfidf(
        count_terms(analyzer, docs, n_jobs=1), min_df=min_df, max_df=max_df, sublinear_tf=sublinear
    )
    reference = TfidfVectorizer(
        analyzer=analyzer, min_df=min_df, max_df=max_df, sublinear_tf=sublinear, dtype=np.float64
    )
    expected = reference.fit_transform(docs)
    assert terms == list(reference.get_feature_names_out())
    assert np.allclose(idf, reference.idf_, atol=1e-5)
    assert matrix.dtype == np.float32 and matrix.has_sorted_indices
    assert abs(matrix - expected.astype(np.float32)).max() < 1e-5


def test_tfidf_with_nothing_left() -> None:
    counts = Counts(sp.csr_matrix(np.ones((3, 2), dtype=np.float32)), ["a", "b"])
    with pytest.raises(ValueError, match="no terms remain"):
        tfidf(counts, min_df=1, max_df=0.5, sublinear_tf=True)


def test_fit_counts_equals_fit_on_the_same_counts(sample_articles: list[Article]) -> None:
    from_text = Recommender(n_jobs=1).fit(sample_articles)
    counts = count_terms(from_text.analyzer_, docs_of(sample_articles), n_jobs=1)  # the model's own analysis
    from_counts = Recommender(n_jobs=1).fit_counts(counts, sample_articles)
    assert from_counts.terms_.to_list() == from_text.terms_.to_list()
    assert abs(from_counts.matrix_ - from_text.matrix_).max() == 0
    assert from_counts.related(sample_articles[0].id) == from_text.related(sample_articles[0].id)


def test_fit_counts_checks_rows_against_articles(sample_articles: list[Article]) -> None:
    counts = count_terms(Analyzer(), docs_of(sample_articles[:5]), n_jobs=1)
    with pytest.raises(InvalidParameterError, match="counts have 5 rows for 6 articles"):
        Recommender().fit_counts(counts, sample_articles[:6])
