"""The bundled corpus's semantic vectors (data/clickid.vectors.sqlite): the file data/README.md describes (by
its SHA-256), made by the project's own `recommender embed` with the shipped encoder and recipe, so that
`embed` on the bundled corpus, or any slice of it, takes its vectors instead of encoding for 45 minutes."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE, copy_model
from typer.testing import CliRunner

from recommender import read_articles
from recommender.cli import app
from recommender.encoder import TextRecipe, default_encoder, text_key
from recommender.vectorfile import VectorFile

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "data" / "clickid.vectors.sqlite"
TOLERANCE = 2e-3  # float16 storage, and the engine's own arithmetic on another CPU


def test_the_bundled_vectors_are_the_documented_file() -> None:
    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    documented = re.search(r"## clickid\.vectors\.sqlite.*?SHA-256 `([0-9a-f]{64})`", readme, re.S)
    assert documented, "data/README.md gives no SHA-256 for clickid.vectors.sqlite"
    assert hashlib.sha256(BUNDLED.read_bytes()).hexdigest() == documented.group(1)


def test_the_bundled_vectors_cover_the_corpus_with_the_shipped_encoder() -> None:
    encoder, recipe = default_encoder(), TextRecipe()
    articles = read_articles(ROOT / "data" / "clickid.jsonl.gz").articles
    keys = [text_key(recipe, recipe.text(a.title, a.body)) for a in articles]
    file = VectorFile(BUNDLED, encoder=encoder.name, recipe=recipe.name, dim=encoder.dim)
    assert file.missing(keys) == []  # every text of the corpus, under this encoder and recipe
    # A few re-encoded here: the same vectors, to float16's precision.
    picks = [articles[i] for i in np.random.default_rng(7).choice(len(articles), 4, replace=False)]
    texts = [recipe.text(a.title, a.body) for a in picks]
    with sqlite3.connect(f"file:{BUNDLED}?mode=ro", uri=True) as conn:
        stored = [
            np.frombuffer(
                conn.execute("SELECT vector FROM vectors WHERE key = ?", (text_key(recipe, t),)).fetchone()[0], "<f2"
            )
            for t in texts
        ]
    np.testing.assert_allclose(np.array(stored, dtype=np.float32), encoder.encode(texts), atol=TOLERANCE)


def test_embed_takes_the_bundled_vectors(model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = copy_model(model_path, tmp_path / "model")
    monkeypatch.chdir(ROOT)  # the bundled files are found from the working folder, as a user runs it
    result = CliRunner().invoke(app, ["embed", str(SAMPLE), "--model", str(model), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["encoded"], report["seeded"], report["articles_without_vector"]) == (0, 380, 0)
