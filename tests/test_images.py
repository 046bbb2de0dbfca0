"""Pictures in the box: an article's optional ``image``, checked like its ``url``, kept through the corpus
reader, model files, stores (older ones without the column included), JSON, the API and the editors' page,
and shown by the default box as a lazy thumbnail of a given size (or a default picture)."""

from __future__ import annotations

import dataclasses
import gc
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SNAKE_ID
from starlette.testclient import TestClient
from test_serve import TOKEN, request
from typer.testing import CliRunner

from recommender import Article, CorpusError, Recommender, RelatedStore, Updater, precompute, read_articles
from recommender.cli import app
from recommender.ranking import Related
from recommender.render import render_related
from recommender.serve import ServeSettings, create_app

runner = CliRunner()


def picture(article_id: str) -> str:
    return f"https://img.example.id/{article_id}.jpg"


@pytest.fixture(scope="module")
def pictured(sample_articles: list[Article]) -> list[Article]:
    """The sample, every other article with a picture."""
    return [dataclasses.replace(a, image=picture(a.id) if i % 2 else None) for i, a in enumerate(sample_articles)]


@pytest.fixture(scope="module")
def saved(pictured: list[Article], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pictured") / "model.joblib"
    Recommender.train(pictured, n_jobs=1).save(path)
    return path


# --- the field, checked like url --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("javascript:alert(1)", "field 'image' must be an http:// or https:// address"),
        ("data:image/png;base64,AAAA", "field 'image' must be an http:// or https:// address"),
        ("//evil.example/x.jpg", "field 'image' '//evil.example/x.jpg' may lead to another host"),
        ("/\\evil.example/x.jpg", "may lead to another host"),
        ("https://img.example.id/a\nb.jpg", "field 'image' has a control character"),
    ],
)
def test_a_bad_image_is_refused_like_a_bad_url(image: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=message.replace("\\", "\\\\").replace("(", r"\(")):
        Article(id="a", title="Judul", image=image)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "a", "title": "Judul", "body": "Isi", "image": image}) + "\n")
    with pytest.raises(CorpusError, match="line 1"):
        read_articles(corpus)


def test_the_corpus_reader_takes_an_image_column(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("post_id,title,body,thumb\n1,Judul,Isi berita,/wp-content/a.jpg\n2,Judul dua,Isi,\n")
    result = runner.invoke(app, ["train", str(corpus), "--field", "id=post_id", "--field", "image=thumb", "--help"])
    assert result.exit_code == 0  # the option exists; reading goes through read_articles:
    articles = read_articles(corpus, fields={"id": "post_id", "image": "thumb"}).articles
    assert [a.image for a in articles] == ["/wp-content/a.jpg", None]


# --- kept in the model, its lists, stores and JSON ---------------------------------------------------


def test_lists_carry_the_pictures_through_a_saved_model(saved: Path, pictured: list[Article]) -> None:
    images = {a.id: a.image for a in pictured}
    results = Recommender.load(saved).related(SNAKE_ID, 10, min_score=0)
    assert [r.image for r in results] == [images[r.id] for r in results]
    assert any(r.image for r in results) and any(r.image is None for r in results)
    for r in results:  # JSON: the field only when the article has a picture, as semantic
        assert ("image" in r.to_dict()) == (r.image is not None)


def test_precomputed_outputs_keep_the_pictures(saved: Path, pictured: list[Article], tmp_path: Path) -> None:
    images = {a.id: a.image for a in pictured}
    model = Recommender.load(saved)
    precompute(model, tmp_path / "lists.jsonl", 5)
    for line in (tmp_path / "lists.jsonl").read_text().splitlines():
        for r in json.loads(line)["related"]:
            assert r.get("image") == images[r["id"]] and ("image" in r) == (images[r["id"]] is not None)
    precompute(model, tmp_path / "lists.sqlite", 5)
    stored = RelatedStore(tmp_path / "lists.sqlite").related(SNAKE_ID)
    assert [r.image for r in stored] == [images[r.id] for r in stored] and any(r.image for r in stored)


def test_a_store_written_before_pictures_is_read_and_then_updated(
    saved: Path, pictured: list[Article], tmp_path: Path
) -> None:
    model_path = tmp_path / "model.joblib"
    Recommender.train(pictured[:-10], n_jobs=1).save(model_path)
    store = tmp_path / "old.sqlite"
    precompute(Recommender.load(model_path), store, 5)
    with sqlite3.connect(store) as db:  # as an older version wrote it: no image column
        db.execute("ALTER TABLE articles DROP COLUMN image")
    before = RelatedStore(store).related(SNAKE_ID)
    assert before and all(r.image is None for r in before)
    Updater(model_path, store=store).add(pictured[-10:])
    with sqlite3.connect(store) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(articles)")]
        stored = dict(db.execute("SELECT id, image FROM articles").fetchall())
    assert columns[-1] == "image"
    assert {a.id: stored[a.id] for a in pictured[-10:]} == {a.id: a.image for a in pictured[-10:]}


# --- the API and the editors' page -------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(saved: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    directory = tmp_path_factory.mktemp("pictured-serve")
    model = directory / "model.joblib"
    Recommender.load(saved).save(model)
    store = directory / "related.sqlite"
    precompute(Recommender.load(model), store, 10)
    settings = ServeSettings(model=model, store=store, token=TOKEN, default_image="/logo.png")
    with TestClient(create_app(settings), follow_redirects=False) as c:
        yield c
    gc.unfreeze()


def test_put_keeps_a_picture_and_the_api_lists_it(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    article = {
        "title": "Ular berkaki tiga ditemukan lagi di lokasi karhutla Riau",
        "body": "Petugas pemadam kebakaran hutan dan lahan di Riau kembali menemukan ular berkaki tiga.",
        "published": "2019-09-21T10:00:00+07:00",
        "image": "/wp-content/uploads/ular.jpg",
    }
    assert request(client, "/articles/wp-77", method="PUT", body=article, headers=auth).status == 200
    listed = request(client, f"/related/{SNAKE_ID}?k=10&min_score=0").json()["related"]
    ours = [r for r in listed if r["id"] == "wp-77"]
    assert ours and ours[0]["image"] == "/wp-content/uploads/ular.jpg"
    assert all(("image" in r) == (r.get("image") is not None) for r in listed)
    bad = request(client, "/articles/wp-78", method="PUT", body={**article, "image": "javascript:x"}, headers=auth)
    assert bad.status == 422 and "field 'image'" in bad.json()["error"]["message"]
    html = request(client, f"/related/{SNAKE_ID}.html?k=10&min_score=0").body.decode()
    assert '<img src="/wp-content/uploads/ular.jpg" alt="" loading="lazy" width="120" height="80">' in html
    # Those without a picture show the server's default (serve --default-image), the draft's box too.
    without = sum(1 for r in listed if "image" not in r)
    assert without and html.count('<img src="/logo.png" alt="" loading="lazy"') == without
    draft = request(client, "/related.html", method="POST", body={"title": article["title"], "min_score": 0})
    assert '<img src="/logo.png"' in draft.body.decode()


def test_a_bad_default_image_is_refused_before_serving(saved: Path) -> None:
    result = runner.invoke(app, ["serve", "--model", str(saved), "--default-image", "javascript:alert(1)"])
    assert result.exit_code == 1 and "the default image: field 'image' must be an http://" in result.stderr


def test_the_editors_page_shows_the_pictures(client: TestClient, pictured: list[Article]) -> None:
    page = client.get("/", params={"id": SNAKE_ID, "k": 10}).text
    listed = [a for a in pictured if f'data-id="{a.id}"' in page]
    assert listed and any(a.image for a in listed)
    for a in listed:
        assert (f'<img class="thumb" src="{a.image}"' in page) == (a.image is not None), a.id


# --- the box ------------------------------------------------------------------------------------------


def result(image: str | None, title: str = "Judul") -> Related:
    return Related("a", title, "https://x.id/a", None, None, 0.5, image=image)


def test_the_default_box_shows_a_lazy_thumbnail_of_a_given_size() -> None:
    html = render_related([result("https://img.example.id/a.jpg?w=1&h=2"), result(None, "Tanpa")])
    assert '<img src="https://img.example.id/a.jpg?w=1&amp;h=2" alt="" loading="lazy" width="120" height="80">' in html
    assert '<li><a href="https://x.id/a">Tanpa</a></li>' in html  # no picture, no default: no img
    framed = render_related([result(None)], default_image="/logo.png", image_size=(64, 64))
    assert '<img src="/logo.png" alt="" loading="lazy" width="64" height="64">' in framed


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "//evil.example/x.jpg", 'x" onerror="alert(1)'])
def test_an_unsafe_picture_is_never_an_image_source(bad: str) -> None:
    html = render_related([result(bad)])
    assert "javascript:" not in html and "evil.example" not in html and 'onerror="' not in html


def test_a_site_template_takes_image() -> None:
    html = render_related(
        [result("https://img.example.id/a.jpg")], item_template='<li style="--bg:url($image)">$title</li>'
    )
    assert '<li style="--bg:url(https://img.example.id/a.jpg)">Judul</li>' in html


def test_the_default_image_reaches_every_worker(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ServeSettings(model=saved, default_image="https://cdn.example.id/kosong.png")
    for name, value in settings.to_env().items():  # as the CLI hands its settings to uvicorn's workers
        monkeypatch.setenv(name, value)
    assert ServeSettings.from_env().default_image == "https://cdn.example.id/kosong.png"
