"""The top-k kernels against brute force: single queries, and blocked all-pairs on real and random matrices."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recommender import Recommender
from recommender.lookups import search_index
from recommender.neighbors import Block, Index, TimePrior, all_pairs_top_k, lists_entered, query_scores, top_k_indices

DAY = 86400.0


def topic_rows(index: Index, rows: Iterable[int]) -> np.ndarray | None:
    """The query topic vectors a gated index needs for these of its own rows (None: no gate)."""
    return None if index.topics is None else index.topics[list(rows)]


def brute_top_k(matrix: sp.csr_matrix, k: int) -> list[list[tuple[int, float]]]:
    """Every row's top-k other rows by the dense product: positive scores only, by score then index."""
    dense = (matrix @ matrix.T).toarray().astype(np.float32)
    np.fill_diagonal(dense, 0.0)
    out = []
    for row in dense:
        positive = [j for j in range(len(row)) if row[j] > 0]
        best = sorted(positive, key=lambda j: (-row[j], j))[:k]
        out.append([(j, float(row[j])) for j in best])
    return out


def blocks_as_lists(blocks: list[Block], n: int, k: int) -> list[list[tuple[int, float]]]:
    """Blocks flattened to one list per row, checking their shape and padding on the way."""
    rows: list[list[tuple[int, float]]] = []
    for block in blocks:
        assert block.start == len(rows), "blocks come in row order without gaps"
        assert block.indices.shape == block.scores.shape == (block.indices.shape[0], k)
        for idx, scores in zip(block.indices.tolist(), block.scores.tolist(), strict=True):
            kept = [(j, s) for j, s in zip(idx, scores, strict=True) if j >= 0]
            # -1 padding only at the end, with score 0
            assert all(j >= 0 for j in idx[: len(kept)])
            assert all(s == 0.0 for j, s in zip(idx, scores, strict=True) if j < 0)
            rows.append(kept)
    assert len(rows) == n
    return rows


def assert_same_top_k(got: list[list[tuple[int, float]]], expected: list[list[tuple[int, float]]]) -> None:
    for row, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert [j for j, _ in g] == [j for j, _ in e], f"row {row}"
        assert [s for _, s in g] == pytest.approx([s for _, s in e], abs=1e-5), f"row {row}"


def random_normalised(n: int, d: int, density: float, seed: int) -> sp.csr_matrix:
    matrix = sp.random(n, d, density=density, format="csr", dtype=np.float32, rng=np.random.default_rng(seed))
    return sp.csr_matrix(normalize(matrix, norm="l2"), dtype=np.float32)


# --- top_k_indices ---------------------------------------------------------------------------------


def test_top_k_indices_orders_best_first() -> None:
    scores = np.array([0.1, 0.9, 0.0, 0.5, 0.7], dtype=np.float32)
    assert top_k_indices(scores, 3).tolist() == [1, 4, 3]
    assert top_k_indices(scores, 1).tolist() == [1]


def test_top_k_indices_breaks_ties_by_lower_index() -> None:
    scores = np.array([0.2, 0.5, 0.5, 0.9, 0.5], dtype=np.float32)
    assert top_k_indices(scores, 5).tolist() == [3, 1, 2, 4, 0]
    assert top_k_indices(scores, 3).tolist() == [3, 1, 2]


def test_top_k_indices_breaks_ties_at_the_cut_by_lower_index() -> None:
    # Many equal scores straddling the k-th place (copies of one syndicated story): the lowest indices win.
    scores = np.full(1000, 0.5, dtype=np.float32)
    scores[500] = 0.9
    assert top_k_indices(scores, 1).tolist() == [500]
    assert top_k_indices(scores, 4).tolist() == [500, 0, 1, 2]
    assert top_k_indices(np.full(1000, 0.5, dtype=np.float32), 3).tolist() == [0, 1, 2]


def test_top_k_indices_only_positive_scores() -> None:
    scores = np.array([0.0, -0.3, 0.4, 0.0, 0.2], dtype=np.float32)
    assert top_k_indices(scores, 10).tolist() == [2, 4]
    assert top_k_indices(np.zeros(5, dtype=np.float32), 3).tolist() == []
    assert top_k_indices(np.array([-1.0, -0.5], dtype=np.float32), 1).tolist() == []


def test_top_k_indices_k_larger_than_positives_returns_all_positives() -> None:
    scores = np.array([0.3, 0.0, 0.6], dtype=np.float32)
    assert top_k_indices(scores, 2).tolist() == [2, 0]
    assert top_k_indices(scores, 50).tolist() == [2, 0]


def test_top_k_indices_matches_sorting_on_random_scores() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        k = int(rng.integers(1, 70))
        # few distinct values, so ties (also at the cut) are common
        scores = rng.choice(np.array([-0.5, 0.0, 0.25, 0.5, 0.75, 1.0], dtype=np.float32), size=n)
        expected = sorted((i for i in range(n) if scores[i] > 0), key=lambda i: (-scores[i], i))[:k]
        assert top_k_indices(scores, k).tolist() == expected, (scores.tolist(), k)


# --- query_scores ----------------------------------------------------------------------------------


def test_query_scores_equals_dense_dot_product(fitted: Recommender) -> None:
    matrix = fitted.matrix_
    dense = matrix.toarray()
    for row in (0, 17, 200, matrix.shape[0] - 1):
        got = query_scores(matrix[row], fitted.index_t_)
        assert got.shape == (matrix.shape[0],)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, dense @ dense[row], atol=1e-5)
    draft = fitted.vectorize("Ular berkaki ditemukan mati", "kebakaran hutan Riau")
    np.testing.assert_allclose(query_scores(draft, fitted.index_t_), dense @ draft.toarray().ravel(), atol=1e-5)


def test_query_scores_of_random_matrix() -> None:
    matrix = random_normalised(120, 300, 0.05, seed=3)
    index_t = matrix.T.tocsr()
    dense = matrix.toarray()
    query = random_normalised(1, 300, 0.1, seed=4)
    np.testing.assert_allclose(query_scores(query, index_t), dense @ query.toarray().ravel(), atol=1e-5)


# --- block_rows_for / all_pairs_top_k ---------------------------------------------------------------


def test_all_pairs_matches_brute_force_on_sample_in_several_blocks(fitted: Recommender) -> None:
    matrix = fitted.matrix_
    n = matrix.shape[0]
    # one row per block: the most block boundaries there can be.
    calls: list[tuple[int, int]] = []
    blocks = list(
        all_pairs_top_k(matrix, fitted.index_t_, 10, block_rows=1, progress=lambda d, t: calls.append((d, t)))
    )
    assert len(blocks) > 1
    assert_same_top_k(blocks_as_lists(blocks, n, 10), brute_top_k(matrix, 10))
    done = [d for d, _ in calls]
    assert done == sorted(set(done)), "progress counts strictly increase"
    assert all(t == n for _, t in calls)
    assert calls[-1] == (n, n)
    assert len(calls) == len(blocks)


def test_all_pairs_matches_brute_force_on_random_matrix() -> None:
    n = 1500
    matrix = random_normalised(n, 800, 0.01, seed=11)
    index_t = matrix.T.tocsr()
    calls: list[tuple[int, int]] = []
    blocks = list(all_pairs_top_k(matrix, index_t, 7, block_rows=64, progress=lambda d, t: calls.append((d, t))))
    assert len(blocks) == -(-n // 64) > 1
    assert_same_top_k(blocks_as_lists(blocks, n, 7), brute_top_k(matrix, 7))
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})
    assert calls[-1] == (n, n)


def test_all_pairs_never_lists_a_row_as_its_own_neighbour() -> None:
    matrix = random_normalised(300, 50, 0.2, seed=5)
    for block in all_pairs_top_k(matrix, matrix.T.tocsr(), 20, block_rows=1):
        own = np.arange(block.start, block.start + block.indices.shape[0])[:, None]
        assert not (block.indices == own).any()
        assert ((block.scores >= 0) & (block.scores <= 1)).all()
        assert (np.diff(block.scores, axis=1) <= 0).all()


def test_all_pairs_k_larger_than_corpus_pads_with_minus_one() -> None:
    matrix = random_normalised(6, 8, 0.5, seed=2)
    (block,) = list(all_pairs_top_k(matrix, matrix.T.tocsr(), 10))
    rows = blocks_as_lists([block], 6, 10)
    assert_same_top_k(rows, brute_top_k(matrix, 10))
    assert all(len(r) <= 5 for r in rows)
    assert (block.indices[:, 5:] == -1).all()


def test_all_pairs_ties_between_identical_rows_go_to_lower_index() -> None:
    # 30 copies of one story (a wire report many sites ran) among other rows: each copy's neighbours
    # all score 1.0, so the k kept must be the lowest-indexed other copies, as brute force says.
    base = random_normalised(1, 40, 0.3, seed=8)
    others = random_normalised(70, 40, 0.1, seed=9)
    matrix = sp.csr_matrix(sp.vstack([others[:35], sp.vstack([base] * 30), others[35:]]), dtype=np.float32)
    blocks = list(all_pairs_top_k(matrix, matrix.T.tocsr(), 5, block_rows=1))
    assert_same_top_k(blocks_as_lists(blocks, matrix.shape[0], 5), brute_top_k(matrix, 5))


def test_one_lookup_split_between_threads_equals_one_thread(
    fitted: Recommender, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recommender.neighbors as neighbors

    monkeypatch.setattr(neighbors, "_SPLIT_WORK", 0)  # the sample is small: split it anyway
    index = search_index(fitted.fitted_state())
    for row in (0, 17, 200):
        query = index.matrix[row]
        for prior in (neighbors.TimePrior(), neighbors.TimePrior(3.0, newer=False)):
            kwargs = {
                "exclude": np.array([row]),
                "query_ts": np.asarray(index.timestamps)[[row]],
                "prior": prior,
                "query_topics": topic_rows(index, [row]),
            }
            one = neighbors.search(index, query, 50, threads=1, **kwargs)  # type: ignore[arg-type]
            for threads in (2, 3):
                split = neighbors.search(index, query, 50, threads=threads, **kwargs)  # type: ignore[arg-type]
                assert np.array_equal(split.rows, one.rows)
                assert np.array_equal(split.scores, one.scores)
                assert np.array_equal(split.similarities, one.similarities)


def test_a_forked_worker_still_splits_lookups(fitted: Recommender, monkeypatch: pytest.MonkeyPatch) -> None:
    # A CMS that loads the model, serves a lookup, then forks workers (gunicorn --preload): the child has
    # none of the parent's pool threads and must not wait on them.
    import multiprocessing

    import recommender.neighbors as neighbors

    monkeypatch.setattr(neighbors, "_SPLIT_WORK", 0)
    index = search_index(fitted.fitted_state())
    expected = neighbors.search(
        index, index.matrix[3], 20, exclude=np.array([3]), query_topics=topic_rows(index, [3]), threads=2
    ).rows
    _FORKED["model"] = fitted  # inherited by the forked child, not pickled
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_lookup_in_child, (3,)).get(timeout=60)
    assert np.array_equal(got, expected)


_FORKED: dict[str, Recommender] = {}


def _lookup_in_child(row: int) -> np.ndarray:
    import recommender.neighbors as neighbors

    neighbors._SPLIT_WORK = 0  # make sure the split path runs in the child too
    index = search_index(_FORKED["model"].fitted_state())
    return neighbors.search(
        index, index.matrix[row], 20, exclude=np.array([row]), query_topics=topic_rows(index, [row]), threads=2
    ).rows


@pytest.mark.parametrize("density", [0.002, 0.05])  # queries reaching few documents, and most of them
@pytest.mark.parametrize("threads", [1, 2])
def test_lists_entered_matches_dense_scores(density: float, threads: int) -> None:
    """Every document whose threshold a query's time-weighted cosine reaches, and no other."""
    rng = np.random.default_rng(7)
    matrix = normalize(sp.random(400, 300, density=density, format="csr", random_state=rng, dtype=np.float32))
    matrix.sort_indices()
    ts = rng.uniform(0, 30 * DAY, 400)
    index = Index(matrix, matrix.T.tocsr(), ts)
    queries = matrix[:25]
    dense = (queries @ matrix.T).toarray().astype(np.float32)
    days = ((ts - ts.min()) / DAY).astype(np.float32)
    weighted = dense / (1 + np.abs(days[None, :] - days[:25, None]) / np.float32(3.0))
    threshold = rng.uniform(0, 0.3, 400).astype(np.float32)
    threshold[:25] = np.inf  # the queries' own lists
    expected = ((weighted > 0) & (weighted >= threshold[None, :] * np.float32(0.99999))).any(axis=0)
    found = lists_entered(index, queries, ts[:25], threshold, TimePrior(3.0), threads=threads)
    assert expected.sum() > 0 and (~expected).sum() > 0
    np.testing.assert_array_equal(found, expected)


def test_lookups_leave_the_scratch_accumulator_zeroed(fitted: Recommender) -> None:
    # The accumulator is kept from one lookup to the next: every path must clear what it added (dense
    # queries, sparse ones, filtered ones, approximate mode), or the next lookup's scores are wrong.
    import recommender.neighbors as neighbors

    index = search_index(fitted.fitted_state())
    rare = int(np.argmin(index.df))  # in a few documents: accumulated with the list of rows touched
    sparse_query = sp.csr_matrix(([1.0], ([0], [rare])), shape=(1, index.n_terms), dtype=np.float32)
    mask = np.arange(index.n_docs) % 2 == 0
    searches = [
        dict(queries=index.matrix[5], query_topics=topic_rows(index, [5])),
        dict(queries=sparse_query, query_topics=topic_rows(index, [0])),
        dict(
            queries=index.matrix[7],
            mask=mask,
            prior=neighbors.TimePrior(3.0, newer=False),
            query_topics=topic_rows(index, [7]),
        ),
        dict(queries=index.matrix[:20], approx=neighbors.Approx(prune_df=3), query_topics=topic_rows(index, range(20))),
    ]
    for kwargs in searches:
        neighbors.search(index, pool=10, **kwargs)  # type: ignore[arg-type]
        acc, _ = neighbors._scratch(index.n_docs)
        assert not acc.any()


def test_a_failed_lookup_does_not_keep_its_scratch(fitted: Recommender, monkeypatch: pytest.MonkeyPatch) -> None:
    import recommender._neighbors_kernels as kernels
    import recommender.neighbors as neighbors

    def fail(*args: object) -> None:
        args[-2][3] = 1.0  # type: ignore[index]  # the accumulator, left dirty
        raise RuntimeError("interrupted")

    index = search_index(fitted.fitted_state())
    with monkeypatch.context() as patched:
        patched.setattr(kernels, "search", fail)
        with pytest.raises(RuntimeError):
            neighbors.search(index, index.matrix[0], 5, query_topics=topic_rows(index, [0]))
    acc, _ = neighbors._scratch(index.n_docs)
    assert not acc.any()
