"""``recommender train --stem/--no-stem``, ``--half-life-days`` and ``--dedup`` at the command line, "0 turns it
off" included: each checked in the saved model (manifest and loaded parameters) and in what lookups then return.

Three models of the 380-article sample, trained once through the CLI (the topic gate off in all three, so a
score is the cosine times the time prior alone):

- ``plain``: ``--no-stem --half-life-days 3`` (dedup at its default 0.8);
- ``stemmed``: ``--stem --half-life-days 3``: differs from ``plain`` in stemming only;
- ``off``: ``--half-life-days 0 --dedup 0``: the time prior and near-duplicate suppression off.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from recommender import Recommender, read_manifest
from recommender.cli import app
from recommender.corpus import parse_published
from recommender.model import data_path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "sample.jsonl"
SNAKE_ID = "kompas-8f42b397"
# The same story in two Tempo reports (cosine 0.93, different headlines); both rank in the top 5 of this query.
TWINS = {"tempo-b27b3dd2", "tempo-a0a253eb"}
TWINS_QUERY = "kompas-7a1f9852"

runner = CliRunner()


def invoke(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def train(path: Path, *options: str) -> Path:
    """Train on the sample through the CLI; checks its exact output and exit code."""
    result = invoke("train", SAMPLE, "--model", path, "--topic-dims", "0", "--no-vectors", *options)
    assert result.exit_code == 0, result.output
    terms = read_manifest(path)["terms"]
    lines = result.stdout.splitlines()
    assert lines[0] == f"Read 380 articles from {SAMPLE}"
    assert re.fullmatch(rf"Trained on 380 articles, {terms:,} terms in \d+\.\d s", lines[1]), lines[1]
    data = data_path(path)
    assert lines[2:] == [
        f"Saved {path} ({data.stat().st_size / 1e6:.1f} MB): manifest {path.stem}.json, data file {data.name}"
    ]
    assert result.stderr == ""
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("train-options")
    return {
        "plain": train(folder / "plain.joblib", "--no-stem", "--half-life-days", "3"),
        "stemmed": train(folder / "stemmed.joblib", "--stem", "--half-life-days", "3"),
        "off": train(folder / "off.joblib", "--half-life-days", "0", "--dedup", "0"),
    }


def params(path: Path) -> dict[str, Any]:
    """The parameters in the manifest, checked against those the loaded model ranks with."""
    saved = read_manifest(path)["params"]
    loaded = Recommender.load(path)
    assert loaded.get_params() == saved
    return saved


def related(path: Path, article_id: str, *options: object) -> list[dict[str, Any]]:
    result = invoke("related", article_id, "--json", "--model", path, *options)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


# --- --stem / --no-stem ----------------------------------------------------------------------------------


def test_no_stem_saves_stem_false_and_keeps_words_whole(models: dict[str, Path]) -> None:
    assert params(models["plain"])["stem"] is False
    rows = related(models["plain"], SNAKE_ID, "-k", "3", "--explain")
    terms = {w["term"] for row in rows for w in row["why"]}
    assert "berkaki" in terms  # "ular berkaki": the snake with legs
    assert "kak" not in terms


def test_stem_saves_stem_true_and_matches_on_stems(models: dict[str, Path]) -> None:
    assert params(models["stemmed"])["stem"] is True
    assert {k: v for k, v in params(models["stemmed"]).items() if k != "stem"} == {
        k: v for k, v in params(models["plain"]).items() if k != "stem"
    }
    rows = related(models["stemmed"], SNAKE_ID, "-k", "3", "--explain")
    terms = {w["term"] for row in rows for w in row["why"]}
    assert "kak" in terms  # Sastrawi's stem of "berkaki"
    assert "berkaki" not in terms
    model = Recommender.load(models["stemmed"])
    assert "kak" in model.fitted_state().vocabulary() and "berkaki" not in model.fitted_state().vocabulary()


# --- --half-life-days ------------------------------------------------------------------------------------


def days_apart(row: dict[str, Any], query_published: str) -> float:
    return abs((parse_published(row["published"]) - parse_published(query_published)).total_seconds()) / 86400


def test_half_life_days_is_saved_and_scales_the_time_prior(models: dict[str, Path]) -> None:
    saved = params(models["plain"])
    assert (saved["half_life_days"], saved["time_weight"]) == (3.0, 0.2)
    model = Recommender.load(models["plain"])
    own = model.article(model.row_of(SNAKE_ID))["published"]
    assert own is not None
    rows = related(models["plain"], SNAKE_ID, "-k", "5")
    assert max(days_apart(row, own) for row in rows) > 6  # far enough apart for 3 days and 7 to differ
    for row in rows:
        days = days_apart(row, own)
        assert row["score"] == pytest.approx(row["similarity"] * (0.8 + 0.2 / (1 + days / 3)), abs=2e-6), row
        if days > 0.5:
            assert row["score"] != pytest.approx(row["similarity"] * (0.8 + 0.2 / (1 + days / 7)), abs=1e-4)


def test_half_life_days_zero_turns_the_time_prior_off(models: dict[str, Path]) -> None:
    assert params(models["off"])["half_life_days"] is None
    rows = related(models["off"], SNAKE_ID, "-k", "5")
    assert len(rows) == 5
    assert [row["score"] for row in rows] == [row["similarity"] for row in rows]  # the cosine alone
    # ranked by the cosine alone: the same order as by similarity
    assert [row["similarity"] for row in rows] == sorted((row["similarity"] for row in rows), reverse=True)
    with_prior = related(models["plain"], SNAKE_ID, "-k", "5")
    assert any(row["score"] < row["similarity"] for row in with_prior)


# --- --dedup ---------------------------------------------------------------------------------------------


def twins_cosine(path: Path) -> float:
    model = Recommender.load(path)
    a, b = (model.row_of(i) for i in sorted(TWINS))
    return float((model.matrix_[a] @ model.matrix_[b].T).toarray()[0, 0])


def test_dedup_default_keeps_one_of_a_near_duplicate_pair(models: dict[str, Path]) -> None:
    assert params(models["plain"])["dedup"] == 0.8
    assert twins_cosine(models["plain"]) >= 0.8
    ids = [row["id"] for row in related(models["plain"], TWINS_QUERY, "-k", "5", "--min-score", "0")]
    assert len(ids) == 5
    assert len(TWINS & set(ids)) == 1


def test_dedup_zero_turns_near_duplicate_suppression_off(models: dict[str, Path]) -> None:
    assert params(models["off"])["dedup"] is None
    ids = [row["id"] for row in related(models["off"], TWINS_QUERY, "-k", "5", "--min-score", "0")]
    assert TWINS <= set(ids)  # the pair side by side in one top 5


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--half-life-days", "-1", "half_life_days must be above 0 (or None for off), got -1.0"),
        ("--dedup", "-0.5", "dedup must be a cosine in (0, 1] (or None for off), got -0.5"),
        ("--dedup", "1.5", "dedup must be a cosine in (0, 1] (or None for off), got 1.5"),
    ],
)
def test_below_zero_is_an_error_not_off(tmp_path: Path, option: str, value: str, message: str) -> None:
    result = invoke("train", SAMPLE, "--model", tmp_path / "m.joblib", option, value)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""  # refused before the corpus is read
    assert result.stderr == f"Error: {message}\n"
    assert list(tmp_path.iterdir()) == []
