"""The Recommender: lookups and filters, drafts, save/load with its manifest, load failures, threads."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recommender
import recommender.modelfile as modelfile_module
from recommender import (
    Article,
    InvalidParameterError,
    ModelError,
    Recommender,
    Related,
    UnknownArticleError,
    read_articles,
    read_manifest,
)
from recommender.corpus import parse_published
from recommender.model import FORMAT_VERSION, data_path, manifest_path
from recommender.text import default_stopwords, news_stopwords

SAMPLE = Path(__file__).parent / "data" / "sample.jsonl"
SNAKE_ID = "kompas-8f42b397"
SNAKE_OTHERS = {"kompas-defc2e02", "kompas-524086ea", "kompas-60ddcf82", "wowkeren-43b9afa3"}
SNAKE_STORY = SNAKE_OTHERS | {SNAKE_ID}
SNAKE_DRAFT = "Ular berkaki ditemukan mati di lokasi kebakaran hutan Riau"
DRAFTS: list[dict[str, Any]] = [
    {"title": SNAKE_DRAFT},
    {"title": "Timnas Indonesia kalah dari Malaysia", "body": "Pertandingan kualifikasi Piala Dunia di Jakarta."},
    {"body": "Harga saham dan nilai tukar rupiah melemah terhadap dolar AS."},
    {"title": "Revisi UU KPK disahkan DPR", "body": "Mahasiswa berdemo menolak revisi undang-undang."},
    {"title": "qwertyzzz plughxyz"},
]
SAMPLE_IDS = [a.id for a in read_articles(SAMPLE).articles]


def copy_model(model_path: Path, folder: Path) -> Path:
    """A private copy of the saved sample model (its manifest and data file) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / model_path.name
    shutil.copy2(data_path(model_path), data_path(target, read_manifest(model_path)))
    shutil.copy2(manifest_path(model_path), manifest_path(target))
    return target


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def tiny_corpus() -> list[Article]:
    return [
        Article("banjir-1", "Banjir besar melanda Jakarta Utara", ""),
        Article("banjir-2", "Warga mengungsi", "Banjir besar melanda kawasan Jakarta Utara sejak pagi tadi."),
        Article("bola-1", "Timnas menang", "Timnas sepak bola menang atas Malaysia di Stadion Gelora."),
        Article("saham-1", "Saham menguat", "Indeks harga saham gabungan menguat pada perdagangan sore."),
    ]


def when(r: Related) -> datetime:
    assert r.published is not None
    return parse_published(r.published)


# --- related -------------------------------------------------------------------------------------


def test_related_returns_the_other_reports_of_the_story_first(fitted: Recommender) -> None:
    results = fitted.related(SNAKE_ID, k=4)
    assert {r.id for r in results} == SNAKE_OTHERS
    assert [r.id for r in fitted.related(SNAKE_ID, k=10)][:4] == [r.id for r in results]


def test_related_results_are_typed(fitted: Recommender) -> None:
    results = fitted.related(SNAKE_ID, k=10)
    assert len(results) == 10
    assert [f.name for f in dataclasses.fields(Related)] == [
        "id",
        "title",
        "url",
        "published",
        "section",
        "score",
        "similarity",
        "why",
        "rule",
        "semantic",
        "image",
    ]
    by_id = {a.id: a for a in read_articles(SAMPLE).articles}
    for r in results:
        assert isinstance(r, Related)
        assert isinstance(r.score, float)
        article = by_id[r.id]
        assert (r.title, r.url, r.published, r.section) == (
            article.title,
            article.url,
            article.published,
            article.section,
        )
        assert r.to_dict()["id"] == r.id


def test_related_never_returns_the_article_itself(fitted: Recommender) -> None:
    for article_id in SAMPLE_IDS:
        assert article_id not in {r.id for r in fitted.related(article_id, k=len(fitted))}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(article_id=st.sampled_from(SAMPLE_IDS), k=st.integers(min_value=1, max_value=30))
def test_related_properties(fitted: Recommender, article_id: str, k: int) -> None:
    results = fitted.related(article_id, k=k)
    scores = [r.score for r in results]
    ids = [r.id for r in results]
    assert len(results) <= k
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert len(set(ids)) == len(ids)
    assert article_id not in ids


def test_unknown_article_id(fitted: Recommender) -> None:
    with pytest.raises(UnknownArticleError) as info:
        fitted.related("kompas-00000000")
    assert isinstance(info.value, KeyError)
    assert "kompas-00000000" in str(info.value)
    assert "kompas-00000000" not in fitted


def test_unfitted_recommender_raises_model_error() -> None:
    with pytest.raises(ModelError, match="not fitted"):
        Recommender().related(SNAKE_ID)
    with pytest.raises(ModelError, match="not fitted"):
        Recommender().related_to_text(title=SNAKE_DRAFT)
    with pytest.raises(ModelError, match="not fitted"):
        Recommender().save(Path("never-written.joblib"))


# --- filters -------------------------------------------------------------------------------------


def everything_related(model: Recommender, article_id: str) -> list[Related]:
    """The whole unfiltered list: every article with a positive score, best first (no floor)."""
    return model.related(article_id, k=len(model), min_score=0.0)


def test_section_filter(fitted: Recommender) -> None:
    # The snake article itself is in "tekno"; its other reports are all in "berita".
    results = fitted.related(SNAKE_ID, k=4, section="berita")
    assert {r.id for r in results} == SNAKE_OTHERS
    for section in ("berita", "tekno", "olahraga"):
        results = fitted.related(SNAKE_ID, k=8, section=section, min_score=0.0)  # weak matches too
        assert results
        assert all(r.section == section for r in results)
        expected = [r for r in everything_related(fitted, SNAKE_ID) if r.section == section][:8]
        assert results == expected
    assert fitted.related(SNAKE_ID, k=5, section="no-such-section") == []


def test_exclude_filter(fitted: Recommender) -> None:
    excluded = ["kompas-defc2e02", "kompas-524086ea", "not-in-the-model"]
    results = fitted.related(SNAKE_ID, k=6, exclude=excluded)
    assert not {r.id for r in results} & set(excluded)
    assert {"kompas-60ddcf82", "wowkeren-43b9afa3"} <= {r.id for r in results}
    assert results == [r for r in everything_related(fitted, SNAKE_ID) if r.id not in excluded][:6]


def test_after_before_window(fitted: Recommender) -> None:
    after, before = "2019-09-20T06:00:00+07:00", "2019-09-20T12:00:00+07:00"
    lo, hi = parse_published(after), parse_published(before)
    results = fitted.related(SNAKE_ID, k=10, after=after, before=before, min_score=0.0)  # weak matches too
    assert results
    assert all(lo <= when(r) <= hi for r in results)
    assert {"kompas-60ddcf82", "kompas-defc2e02"} <= {r.id for r in results}
    assert not {"kompas-524086ea", "wowkeren-43b9afa3"} & {r.id for r in results}
    assert results == [r for r in everything_related(fitted, SNAKE_ID) if lo <= when(r) <= hi][:10]
    # datetimes work as well as text, and one-sided windows too
    assert fitted.related(SNAKE_ID, k=10, after=lo, before=hi, min_score=0.0) == results
    only_after = fitted.related(SNAKE_ID, k=10, after="2019-09-21", min_score=0.0)
    assert only_after and all(when(r) >= datetime(2019, 9, 21, tzinfo=timezone.utc) for r in only_after)
    only_before = fitted.related(SNAKE_ID, k=10, before="2019-09-01", min_score=0.0)
    assert only_before and all(when(r) <= datetime(2019, 9, 2, tzinfo=timezone.utc) for r in only_before)


def test_window_applies_to_drafts(fitted: Recommender) -> None:
    results = fitted.related_to_text(title=SNAKE_DRAFT, k=10, after="2019-09-20T06:00:00+07:00")
    assert results
    assert all(when(r) >= parse_published("2019-09-20T06:00:00+07:00") for r in results)
    assert "kompas-524086ea" not in {r.id for r in results}  # published 05:06, before the window


def test_within_days(fitted: Recommender) -> None:
    own = parse_published("2019-09-20T10:34:00+07:00")
    for days in (0.5, 1, 3):
        window = timedelta(days=days)
        results = fitted.related(SNAKE_ID, k=10, within_days=days, min_score=0.0)
        assert results
        assert all(own - window <= when(r) <= own + window for r in results)
        expected = [r for r in everything_related(fitted, SNAKE_ID) if own - window <= when(r) <= own + window]
        assert results == expected[:10]
    # combined with a narrower explicit bound, the narrower one wins
    narrow = fitted.related(SNAKE_ID, k=10, within_days=3, after="2019-09-20T06:00:00+07:00")
    assert all(when(r) >= parse_published("2019-09-20T06:00:00+07:00") for r in narrow)


@pytest.mark.parametrize(
    "window",
    [
        {"after": "2019-09-21", "before": "2019-09-20"},
        {"after": "2019-09-20T12:00:00+07:00", "before": "2019-09-20T11:00:00+07:00"},
        {"within_days": 1, "before": "2019-01-01"},
        {"within_days": -1},
    ],
)
def test_bad_window(fitted: Recommender, window: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError):
        fitted.related(SNAKE_ID, **window)


@pytest.mark.parametrize("field", ["after", "before"])
@pytest.mark.parametrize("value", ["kemarin", "20/09/2019", ""])
def test_unparseable_date(fitted: Recommender, field: str, value: str) -> None:
    window: dict[str, Any] = {field: value}
    with pytest.raises(InvalidParameterError) as info:
        fitted.related(SNAKE_ID, **window)
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidParameterError):
        fitted.related_to_text(title=SNAKE_DRAFT, **window)


@pytest.mark.parametrize("k", [0, -1, True, False, 2.5, "3", None])
def test_bad_k(fitted: Recommender, k: Any) -> None:
    with pytest.raises(InvalidParameterError, match="k must be"):
        fitted.related(SNAKE_ID, k=k)
    with pytest.raises(InvalidParameterError, match="k must be"):
        fitted.related_to_text(title=SNAKE_DRAFT, k=k)


def test_numpy_integer_k_is_accepted(fitted: Recommender) -> None:
    four: Any = np.int64(4)
    assert fitted.related(SNAKE_ID, k=four) == fitted.related(SNAKE_ID, k=4)


# --- drafts --------------------------------------------------------------------------------------


def test_related_to_text_finds_the_snake_reports(fitted: Recommender) -> None:
    results = fitted.related_to_text(title=SNAKE_DRAFT, k=5)
    assert {r.id for r in results[:4]} <= SNAKE_STORY
    assert len({r.id for r in results} & SNAKE_STORY) >= 4
    same_as_body = fitted.related_to_text(body=SNAKE_DRAFT, k=5)
    assert {r.id for r in same_as_body[:3]} <= SNAKE_STORY


@pytest.mark.parametrize(("title", "body"), [("", ""), ("   ", "\n\t ")])
def test_related_to_text_needs_some_text(fitted: Recommender, title: str, body: str) -> None:
    with pytest.raises(InvalidParameterError):
        fitted.related_to_text(title=title, body=body)


def test_related_to_text_of_unknown_words_is_empty(fitted: Recommender) -> None:
    assert fitted.related_to_text(title="qwertyzzz plughxyz", body="zzyzx frobnicatorium") == []
    # only stopwords: nothing left to match either
    assert fitted.related_to_text(title="yang dan di ke dari") == []


# --- empty bodies --------------------------------------------------------------------------------


def test_article_with_empty_body_gets_related_from_its_title(
    fitted: Recommender, sample_articles: list[Article]
) -> None:
    empty = [a for a in sample_articles if not a.body.strip()]
    assert empty, "the sample has articles without a body"
    for article in empty:
        assert fitted.related(article.id, k=5), article.id


def test_empty_body_in_a_small_corpus() -> None:
    model = Recommender.train(tiny_corpus(), n_jobs=1)
    results = model.related("banjir-1", k=3)
    assert results[0].id == "banjir-2"
    assert "banjir-1" in {r.id for r in model.related("banjir-2", k=3)}


# --- fitting -------------------------------------------------------------------------------------


def test_fit_empty_corpus() -> None:
    with pytest.raises(InvalidParameterError, match="empty"):
        Recommender.train([], n_jobs=1)


def test_fit_duplicate_ids() -> None:
    articles = [*tiny_corpus(), Article("bola-1", "Lagi", "Judul lain dengan id yang sama.")]
    with pytest.raises(InvalidParameterError, match="bola-1"):
        Recommender.train(articles, n_jobs=1)


@pytest.mark.parametrize(
    "params",
    [
        {"max_df": 0},
        {"max_df": 0.0},
        {"max_df": 1.5},
        {"min_df": 0},
        {"min_df": 1.5},
        {"ngram_range": (2, 1)},
        {"ngram_range": (0, 1)},
        {"title_weight": -1},
    ],
)
def test_fit_invalid_params(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameterError):
        Recommender.train(tiny_corpus(), n_jobs=1, **params)


def test_fit_with_stemming_on_a_small_corpus() -> None:
    articles = [
        Article("tani-1", "Petani menanam padi", "Para petani menanam padi di sawah desa."),
        Article("tani-2", "Musim tanam", "Penanaman padi dimulai bulan depan, kata dinas pertanian."),
        Article("bola-1", "Timnas menang", "Timnas sepak bola menang atas Malaysia."),
    ]
    stemmed = Recommender.train(articles, stem=True, n_jobs=1)
    assert stemmed.get_params()["stem"] is True
    assert stemmed.related("tani-1", k=2)[0].id == "tani-2"
    # "ditanam" only matches "menanam" / "penanaman" through its stem "tanam"
    assert {r.id for r in stemmed.related_to_text(title="ditanam", k=3)} >= {"tani-1"}
    assert Recommender.train(articles, stem=False, n_jobs=1).related_to_text(title="ditanam", k=3) == []


def test_fit_reports_progress(sample_articles: list[Article]) -> None:
    calls: list[tuple[int, int]] = []
    Recommender.train(sample_articles[:50], n_jobs=1, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (50, 50)


# --- save, load and the manifest -----------------------------------------------------------------


def test_every_constructor_parameter_but_n_jobs_is_saved_and_comes_back() -> None:
    changed = {"stem": True, "numbers": False, "title_weight": 2, "max_df": 0.5, "topic_dims": None, "semantic": False}
    params = Recommender(**changed, n_jobs=1).get_params()  # type: ignore[arg-type]
    expected = set(inspect.signature(Recommender.__init__).parameters) - {"self", "n_jobs"}
    assert set(params) == expected
    assert params.items() >= changed.items()
    assert Recommender(**params).get_params() == params  # JSON-shaped (ngram_range a list) and accepted back


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_contract(fitted: Recommender, model_path: Path, mmap: bool) -> None:
    loaded = Recommender.load(model_path, mmap=mmap)
    assert len(loaded) == len(fitted) == 380
    assert loaded.get_params() == fitted.get_params()
    for article_id in SAMPLE_IDS:
        assert loaded.related(article_id, k=10) == fitted.related(article_id, k=10), article_id
    for draft in DRAFTS:
        assert loaded.related_to_text(k=10, **draft) == fitted.related_to_text(k=10, **draft)
    assert loaded.related(SNAKE_ID, k=5, section="berita", within_days=2) == fitted.related(
        SNAKE_ID, k=5, section="berita", within_days=2
    )


def is_memory_mapped(array: np.ndarray) -> bool:
    return isinstance(array, np.memmap) or isinstance(getattr(array, "base", None), np.memmap)


def test_load_memory_maps_the_arrays(model_path: Path) -> None:
    mapped = Recommender.load(model_path, mmap=True)
    assert is_memory_mapped(mapped.matrix_.data)
    assert is_memory_mapped(mapped.index_t_.data)
    in_memory = Recommender.load(model_path, mmap=False)
    assert not is_memory_mapped(in_memory.matrix_.data)


def test_manifest_beside_the_model(fitted: Recommender, model_path: Path) -> None:
    mpath = model_path.with_name("model.json")
    assert manifest_path(model_path) == mpath
    assert mpath.is_file()
    manifest = json.loads(mpath.read_text(encoding="utf-8"))
    assert manifest == read_manifest(model_path)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["package_version"] == recommender.__version__
    assert manifest["versions"]["scikit-learn"] == sklearn.__version__
    assert {"python", "numpy", "scipy", "joblib"} <= set(manifest["versions"])
    assert manifest["params"] == fitted.get_params()
    assert manifest["corpus"]["articles"] == 380
    checksum = manifest["corpus"]["checksum"]
    assert len(checksum) == 64 and int(checksum, 16) >= 0
    created = datetime.fromisoformat(manifest["created_at"])
    assert created.tzinfo is not None
    assert abs(datetime.now(timezone.utc) - created) < timedelta(days=1)
    model_file = manifest["model_file"]
    data = model_path.parent / model_file["name"]  # content-addressed, beside the manifest
    assert data_path(model_path) == data
    assert model_file["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert model_file["name"] == f"model-{model_file['sha256'][:16]}.joblib"
    assert model_file["bytes"] == data.stat().st_size
    assert not model_path.exists()  # the model path names the pair; no file has that name


def test_save_returns_the_manifest_it_wrote(tmp_path: Path) -> None:
    model = Recommender.train(tiny_corpus(), n_jobs=1)
    path = tmp_path / "nested" / "tiny.joblib"
    manifest = model.save(path)
    assert json.loads((tmp_path / "nested" / "tiny.json").read_text(encoding="utf-8")) == manifest
    assert manifest["corpus"]["articles"] == 4
    data = data_path(path)
    assert manifest["model_file"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert data.name == f"tiny-{manifest['model_file']['sha256'][:16]}.joblib"
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([data.name, "tiny.json"])


def test_same_corpus_same_checksum(sample_articles: list[Article]) -> None:
    again = Recommender.train(sample_articles[:20], n_jobs=1)
    other = Recommender.train(sample_articles[1:21], n_jobs=1)
    assert again.manifest()["corpus"]["checksum"] != other.manifest()["corpus"]["checksum"]
    assert (
        again.manifest()["corpus"]["checksum"]
        == Recommender.train(sample_articles[:20]).manifest()["corpus"]["checksum"]
    )


# --- load failures -------------------------------------------------------------------------------


def load_error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(ModelError) as info:
        Recommender.load(path, **kwargs)
    return str(info.value)


def test_load_missing_model_and_manifest(tmp_path: Path) -> None:
    message = load_error(tmp_path / "model.joblib")
    assert "train" in message
    assert str(tmp_path / "model.joblib") in message


def test_load_missing_manifest(model_path: Path, tmp_path: Path) -> None:
    path = copy_model(model_path, tmp_path)
    manifest_path(path).unlink()
    message = load_error(path)
    assert "manifest" in message and "model.json" in message


def test_load_missing_model_file(model_path: Path, tmp_path: Path) -> None:
    path = copy_model(model_path, tmp_path)
    data = data_path(path)
    data.unlink()
    message = load_error(path)
    assert f"no model file {data} beside its manifest model.json" in message and "train" in message


@pytest.mark.parametrize("content", ["{not json", "", "[1, 2, 3]", "\udcff"])
def test_load_manifest_not_json(model_path: Path, tmp_path: Path, content: str) -> None:
    path = copy_model(model_path, tmp_path)
    manifest_path(path).write_bytes(content.encode("utf-8", errors="surrogateescape"))
    message = load_error(path)
    assert "manifest" in message and "retrain" in message


def test_load_truncated_model(model_path: Path, tmp_path: Path) -> None:
    path = copy_model(model_path, tmp_path)
    data = data_path(path).read_bytes()
    data_path(path).write_bytes(data[: len(data) // 2])
    for verify in (True, False):
        message = load_error(path, verify=verify)
        assert "does not match" in message and "retrain" in message


def test_load_tampered_model(model_path: Path, tmp_path: Path) -> None:
    path = copy_model(model_path, tmp_path)
    data = bytearray(data_path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte flipped: same size, different hash
    data_path(path).write_bytes(bytes(data))
    assert data_path(path).stat().st_size == data_path(model_path).stat().st_size
    message = load_error(path)
    assert "does not match" in message and "tampered" in message


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0])
def test_load_other_format_version(model_path: Path, tmp_path: Path, version: int) -> None:
    path = copy_model(model_path, tmp_path)
    manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    manifest["format_version"] = version
    manifest_path(path).write_text(json.dumps(manifest), encoding="utf-8")
    assert load_error(path) == (
        f"{path} has model format {version}, this version of recommender reads format {FORMAT_VERSION}: "
        "retrain it with `recommender train`"
    )


def edit_manifest(path: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    edit(manifest)
    manifest_path(path).write_text(json.dumps(manifest), encoding="utf-8")


# Hand edits of a manifest, and what is wrong with the field each breaks (the first four were reported:
# TypeError, AttributeError, KeyError and a format "'1'" that "reads format 1").
SCHEMA_BREAKS: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    ("corpus-not-object", lambda m: m.update(corpus="x"), "field 'corpus' must be an object, got \"x\""),
    (
        "sections-null",
        lambda m: m["corpus"].update(sections=None),
        "field 'corpus.sections' must be an object, got null",
    ),
    ("created-at-missing", lambda m: m.pop("created_at"), "field 'created_at' is missing"),
    (
        "format-as-string",
        lambda m: m.update(format_version="1"),
        "field 'format_version' must be an integer, got \"1\"",
    ),
    ("format-missing", lambda m: m.pop("format_version"), "field 'format_version' is missing"),
    (
        "half-life-as-string",
        lambda m: m["params"].update(half_life_days="3"),
        "field 'params.half_life_days' must be a number or null, got \"3\"",
    ),
    (
        "ngram-range-short",
        lambda m: m["params"].update(ngram_range=[1]),
        "field 'params.ngram_range' must be two whole numbers [shortest, longest], got [1]",
    ),
    (
        "unknown-param",
        lambda m: m["params"].update(colour="red"),
        "field 'params.colour' is not a field of this format",
    ),
    ("negative-count", lambda m: m["corpus"].update(articles=-5), "field 'corpus.articles' must be 0 or more, got -5"),
    (
        "bad-sha256",
        lambda m: m["model_file"].update(sha256="abc"),
        "field 'model_file.sha256' must be a SHA-256 digest (64 lowercase hexadecimal digits), got \"abc\"",
    ),
    (
        "data-file-in-a-folder",
        lambda m: m["model_file"].update(name="../model.joblib"),
        "field 'model_file.name' must be a file name beside the manifest (no folder), got \"../model.joblib\"",
    ),
    ("package", lambda m: m.update(package="other"), 'field \'package\' must be "recommender", got "other"'),
]


@pytest.mark.parametrize(("edit", "problem"), [b[1:] for b in SCHEMA_BREAKS], ids=[b[0] for b in SCHEMA_BREAKS])
def test_a_manifest_that_breaks_the_schema_is_a_model_error_naming_the_field(
    model_path: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], object], problem: str
) -> None:
    path = copy_model(model_path, tmp_path)
    edit_manifest(path, edit)
    expected = f"manifest {manifest_path(path)}: {problem}: retrain with `recommender train` or restore the file"
    for read in (read_manifest, Recommender.load):
        with pytest.raises(ModelError) as info:
            read(path)
        assert str(info.value) == expected


# Hand edits that the schema allows but that contradict the data file: what the manifest says about the
# model must be what the model is (reported: half_life_days edited to 300 showed in `info`, while
# lookups still used the model's own).
DISAGREEMENTS: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    ("half-life", lambda m: m["params"].update(half_life_days=300), "field 'params.half_life_days' is 300"),
    ("dedup-off", lambda m: m["params"].update(dedup=None), "field 'params.dedup' is null"),
    ("stem", lambda m: m["params"].update(stem=True), "field 'params.stem' is true"),
    ("articles", lambda m: m["corpus"].update(articles=999), "field 'corpus.articles' is 999"),
    ("sections", lambda m: m["corpus"]["sections"].update(olahraga=1), "field 'corpus.sections' is {"),
    ("created-at", lambda m: m.update(created_at="2020-01-01T00:00:00+00:00"), "field 'created_at' is \"2020-"),
    ("terms", lambda m: m.update(terms=1), "field 'terms' is 1"),
    ("nonzeros", lambda m: m.update(nonzeros=1), "field 'nonzeros' is 1"),
    ("updates", lambda m: m["updates"].update(generation=4), "field 'updates.generation' is 4"),
    ("extra-corpus-field", lambda m: m["corpus"].update(pages=3), "field 'corpus.pages' is 3"),
]


@pytest.mark.parametrize(("edit", "problem"), [d[1:] for d in DISAGREEMENTS], ids=[d[0] for d in DISAGREEMENTS])
def test_a_manifest_that_contradicts_its_data_file_is_a_model_error_naming_the_field(
    model_path: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], object], problem: str
) -> None:
    path = copy_model(model_path, tmp_path)
    edit_manifest(path, edit)
    message = load_error(path)
    assert message.startswith(f"manifest {manifest_path(path)}: {problem}"), message
    assert f"but the data file {data_path(path).name} has " in message
    assert message.endswith(": restore the manifest, or retrain with `recommender train` to change the model")
    assert load_error(path, verify=False) == message  # not a matter of the SHA-256 check


def test_lookups_use_the_parameters_the_manifest_shows(fitted: Recommender, model_path: Path) -> None:
    loaded = Recommender.load(model_path)
    assert read_manifest(model_path)["params"] == loaded.get_params() == fitted.get_params()
    assert loaded.ranking_options() == fitted.ranking_options()


def test_the_manifest_schema_lets_older_manifests_through(model_path: Path, tmp_path: Path) -> None:
    # Manifests of format 1 written before the updates and the newer parameters existed, or with fields
    # added by a later version, still read.
    path = copy_model(model_path, tmp_path)

    def older(manifest: dict[str, Any]) -> None:
        del manifest["updates"]
        manifest["a_later_field"] = {"anything": [1, 2]}

    edit_manifest(path, older)
    assert "updates" not in read_manifest(path)
    assert len(Recommender.load(path)) == 380


def write_with_matching_manifest(path: Path, model_path: Path) -> None:
    """Give ``path`` a manifest like the sample model's, but with ``path``'s own size and hash (the layout
    of models saved before data files were content-addressed: the data at the model path itself)."""
    manifest = json.loads(manifest_path(model_path).read_text(encoding="utf-8"))
    manifest["model_file"] = {
        "name": path.name,
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    manifest_path(path).write_text(json.dumps(manifest), encoding="utf-8")


def test_load_file_that_is_not_joblib(model_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"this is a plain text file, not a joblib pickle\n" * 20)
    write_with_matching_manifest(path, model_path)
    assert "cannot read model file" in load_error(path)
    assert "cannot read model file" in load_error(path, mmap=False)


def test_load_joblib_of_something_else(model_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump({"format_version": 99, "weights": np.arange(5)}, path)
    write_with_matching_manifest(path, model_path)
    assert "not a recommender model file" in load_error(path)
    joblib.dump([1, 2, 3], path)
    write_with_matching_manifest(path, model_path)
    assert "not a recommender model file" in load_error(path)


# --- atomic save ---------------------------------------------------------------------------------


def test_save_crash_while_writing_model_keeps_previous_files(
    model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = copy_model(model_path, tmp_path / "models")
    before = snapshot(path.parent)

    def crashing_dump(value: Any, filename: Any, *args: Any, **kwargs: Any) -> None:
        Path(filename).write_bytes(b"\x80\x04partial joblib bytes")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(modelfile_module.joblib, "dump", crashing_dump)
    with pytest.raises(OSError, match="No space left"):
        Recommender.train(tiny_corpus(), n_jobs=1).save(path)
    monkeypatch.undo()
    assert snapshot(path.parent) == before  # same files, same bytes, no temporary files
    assert Recommender.load(path).related(SNAKE_ID, k=4)


def crash_writing_manifest_to_disk(monkeypatch: pytest.MonkeyPatch) -> type[BaseException]:
    """The disk fills up as the manifest is flushed (the data file is written, not renamed yet)."""
    real_fsync_file = modelfile_module.fsync_file

    def fsync_file(path: Path) -> None:
        if path.name.startswith(".model.json."):
            raise OSError(28, "No space left on device")
        real_fsync_file(path)

    monkeypatch.setattr(modelfile_module, "fsync_file", fsync_file)
    return OSError


def crash_committing_the_manifest(monkeypatch: pytest.MonkeyPatch) -> type[BaseException]:
    """The manifest cannot be renamed into place, after the new data file was (the last step before the
    commit point)."""
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(dst).name == "model.json":
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(modelfile_module.os, "replace", replace)
    return OSError


def crash_serialising_manifest(monkeypatch: pytest.MonkeyPatch) -> type[BaseException]:
    """The manifest cannot be turned into JSON (say a numpy number slipped into it)."""

    def dumps(*args: Any, **kwargs: Any) -> str:
        raise TypeError("Object of type int64 is not JSON serializable")

    def dump(*args: Any, **kwargs: Any) -> None:
        raise TypeError("Object of type int64 is not JSON serializable")

    fake_json = SimpleNamespace(dumps=dumps, dump=dump, loads=json.loads, load=json.load)
    monkeypatch.setattr(modelfile_module, "json", fake_json)
    return TypeError


@pytest.mark.parametrize(
    "crash", [crash_writing_manifest_to_disk, crash_committing_the_manifest, crash_serialising_manifest]
)
def test_save_crash_while_writing_manifest_keeps_a_loadable_model(
    model_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    crash: Callable[[pytest.MonkeyPatch], type[BaseException]],
) -> None:
    # A crash after the new model file is written but before its manifest is must not leave the new
    # model beside the old manifest (which no longer matches it): the previous model must still load.
    path = copy_model(model_path, tmp_path / "models")
    before = snapshot(path.parent)
    expected = crash(monkeypatch)
    with pytest.raises(expected):
        Recommender.train(tiny_corpus(), n_jobs=1).save(path)
    monkeypatch.undo()
    assert snapshot(path.parent) == before
    assert len(Recommender.load(path)) == 380


def test_save_over_a_model_replaces_both_files(model_path: Path, tmp_path: Path) -> None:
    path = copy_model(model_path, tmp_path)
    Recommender.train(tiny_corpus(), n_jobs=1).save(path)
    assert len(Recommender.load(path)) == 4
    # The previous data file is deleted once the new manifest names the new one.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([data_path(path).name, "model.json"])
    assert data_path(path) != data_path(model_path)


def test_saved_model_files_respect_umask(tmp_path: Path) -> None:
    # A model is usually trained by one user and served by another (the web server): the files must
    # get the same permissions as any other new file, not the 0600 of a private temporary file.
    umask = os.umask(0o022)
    try:
        Recommender.train(tiny_corpus(), n_jobs=1).save(tmp_path / "model.joblib")
    finally:
        os.umask(umask)
    assert data_path(tmp_path / "model.joblib").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "model.json").stat().st_mode & 0o777 == 0o644


# --- threads -------------------------------------------------------------------------------------


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    """Switch threads every microsecond instead of every 5 ms, so races show up in a short test."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.mark.usefixtures("eager_thread_switching")
def test_concurrent_lookups_on_a_freshly_loaded_model(fitted: Recommender, model_path: Path) -> None:
    ids = SAMPLE_IDS[::4]
    expected_related = {i: fitted.related(i, k=5) for i in ids}
    expected_text = [fitted.related_to_text(k=5, **d) for d in DRAFTS]
    n_threads = 8
    errors: list[BaseException] = []
    mismatches: list[str] = []

    def work(model: Recommender, barrier: threading.Barrier, t: int) -> None:
        try:
            barrier.wait()
            # half the threads start with drafts (vocabulary first), half with ids (rows first)
            if t % 2:
                for d, want in zip(DRAFTS, expected_text, strict=True):
                    if model.related_to_text(k=5, **d) != want:
                        mismatches.append(f"draft {d}")
            for i in ids[t:] + ids[:t]:
                if model.related(i, k=5) != expected_related[i]:
                    mismatches.append(i)
            for d, want in zip(DRAFTS, expected_text, strict=True):
                if model.related_to_text(k=5, **d) != want:
                    mismatches.append(f"draft {d}")
        except BaseException as exc:
            errors.append(exc)

    for _ in range(4):  # several fresh models: several chances for the lazy dicts to be built at once
        model = Recommender.load(model_path)
        assert model.fitted_state().memo.peek("rows") is None
        assert model.fitted_state().memo.peek("vocabulary") is None  # not built yet
        barrier = threading.Barrier(n_threads)
        threads = [threading.Thread(target=work, args=(model, barrier, t)) for t in range(n_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert mismatches == []


# --- parameters chosen on the graded judgments ----------------------------------------------------


def test_a_model_saved_before_the_judged_defaults_loads_as_it_was_built(
    sample_articles: list[Article], tmp_path: Path
) -> None:
    # A model file written before stopwords, numbers and time_weight existed has none of them in its
    # parameters: it must load with what it was built and ranked with then, not today's defaults.
    old = Recommender(stopwords="indonesian", numbers=False, ngram_range=(1, 2), half_life_days=3.0, time_weight=1.0)
    old.fit(sample_articles)
    path = tmp_path / "model.joblib"
    old.save(path)
    data = data_path(path)
    state = joblib.load(data)
    for name in ("stopwords", "numbers", "time_weight"):
        del state["params"][name]
    joblib.dump(state, data)
    manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    manifest["model_file"] |= {"bytes": data.stat().st_size, "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}
    manifest_path(path).write_text(json.dumps(manifest), encoding="utf-8")
    loaded = Recommender.load(path)
    assert (loaded.stopwords, loaded.numbers, loaded.time_weight) == ("indonesian", False, 1.0)
    assert loaded.related(SNAKE_ID, 5) == old.related(SNAKE_ID, 5)
    assert loaded.related_to_text(title="Ular berkaki di Riau 2019", k=3) == old.related_to_text(
        title="Ular berkaki di Riau 2019", k=3
    )


def test_analysis_parameters_shape_the_terms(sample_articles: list[Article]) -> None:
    default = Recommender(n_jobs=1).fit(sample_articles)
    terms = set(map(str, default.terms_.to_list()))
    assert any(t.isdigit() for t in terms)  # numbers kept
    assert not any(" " in t for t in terms)  # single words
    # Common words are left to max_df, not a list: "yang" (in most articles) goes, rarer listed words stay
    assert "yang" not in terms
    assert terms & (default_stopwords() - news_stopwords())
    assert not {"kompas", "senin", "september", "katanya"} & terms  # news boilerplate never links stories
    old_style = Recommender(n_jobs=1, stopwords="indonesian", numbers=False, ngram_range=(1, 2)).fit(sample_articles)
    old_terms = set(map(str, old_style.terms_.to_list()))
    assert not any(t.isdigit() for t in old_terms)
    assert any(" " in t for t in old_terms)
    assert not {"yang", "dan", "kompas"} & old_terms


def test_bad_stopword_list_is_a_parameter_error(sample_articles: list[Article]) -> None:
    with pytest.raises(InvalidParameterError, match="stopwords must be one of news, indonesian, none; got 'all'"):
        Recommender(stopwords="all").fit(sample_articles)


@pytest.mark.parametrize("weight", [0.0, -0.1, 1.5, float("nan")])
def test_time_weight_out_of_range(sample_articles: list[Article], weight: float) -> None:
    with pytest.raises(InvalidParameterError, match="time_weight must be in \\(0, 1\\]"):
        Recommender(time_weight=weight).fit(sample_articles)


def test_full_time_weight_halves_a_score_at_the_half_life(sample_articles: list[Article]) -> None:
    recency = Recommender(n_jobs=1, half_life_days=3.0, time_weight=1.0, topic_dims=None).fit(sample_articles)
    own = recency.timestamps_[recency.row_of(SNAKE_ID)]
    for r in recency.related(SNAKE_ID, 10):
        days = abs(recency.timestamps_[recency.row_of(r.id)] - own) / 86400
        assert r.similarity is not None
        assert r.score == pytest.approx(r.similarity / (1 + days / 3.0), abs=5e-6)
