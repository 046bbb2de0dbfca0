"""Lookup options declared once (``recommender.LookupOptions``), and the filters added through them by
docs/architecture.md's "How to add a filter": ``category``, ``tag`` and ``source``, in Python, the CLI,
over HTTP, in a precompute job (and the updates that keep its store) and on the editors' page."""

from __future__ import annotations

import dataclasses
import gc
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SNAKE_ID
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape
from starlette.testclient import TestClient
from test_serve import TOKEN, request
from typer.testing import CliRunner

from recommender import (
    Article,
    Filters,
    InvalidParameterError,
    LookupOptions,
    Recommender,
    Rule,
    Rules,
    Updater,
    precompute,
)
from recommender.cli import app
from recommender.options import LABELS, OPTION_NAMES
from recommender.serve import ServeSettings, create_app

runner = CliRunner()


def label_of(article: Article, name: str) -> set[str]:
    """The values of ``name`` an article has, as the filters compare them."""
    values = article.tags if name == "tag" else (getattr(article, name),)
    return {v.strip().casefold() for v in values if v is not None}


@pytest.fixture(scope="module")
def labelled(sample_articles: list[Article]) -> list[Article]:
    """The sample with tags: every article its section's (in varied case), every third one "Pilihan" too."""
    return [
        dataclasses.replace(a, tags=(f" {(a.section or 'lain').upper()}", *(("Pilihan",) if i % 3 == 0 else ())))
        for i, a in enumerate(sample_articles)
    ]


@pytest.fixture(scope="module")
def model(labelled: list[Article]) -> Recommender:
    # No near-duplicate pass: a filtered list is then exactly the unfiltered ranking with the others left out.
    return Recommender.train(labelled, n_jobs=1, dedup=None)


@pytest.fixture(scope="module")
def saved(model: Recommender, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labelled") / "model.joblib"
    model.save(path)
    return path


FILTERS = [
    ("category", "nasional"),
    ("category", " NEWS "),
    ("source", "kompas.com"),
    ("tag", "pilihan"),
    ("tag", "berita"),
]


# --- the options type -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"secton": "berita"}, "unknown lookup option 'secton'"),
        ({"diversity": 2}, "diversity must be between 0 and 1"),
        ({"diversity": "0.3"}, "diversity must be between 0 and 1, got '0.3'"),
        ({"min_score": -0.1}, "min_score must be between 0 and 1"),
        ({"min_results": 1.5}, "min_results must be a whole number"),
        ({"within_days": -1}, "within_days must be from 0"),
        ({"after": "yesterday"}, "after: unparseable date 'yesterday'"),
        ({"before": 20190901}, "before must be an ISO 8601 date"),
        ({"tag": ""}, "tag must be 1 to 200 characters"),
        ({"category": 5}, "category must be text"),
        ({"exclude": [1, 2]}, "exclude must be a list of article ids"),
        ({"newer": "no"}, "newer must be True or False"),
    ],
)
def test_a_bad_option_is_refused_by_name(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match="^" + message.replace("(", r"\(")):
        LookupOptions.of(**changes)


def test_the_model_refuses_what_the_options_refuse(model: Recommender) -> None:
    with pytest.raises(InvalidParameterError, match="unknown lookup option 'secton'"):
        model.related(SNAKE_ID, secton="berita")
    with pytest.raises(InvalidParameterError, match="explain is for one article's list"):
        next(iter(model.all_related(5, explain=True)))


def test_options_are_frozen_and_exclude_becomes_a_tuple() -> None:
    options = LookupOptions(exclude=["a", "b"], tag=" X ")
    assert options.exclude == ("a", "b") and LookupOptions(exclude="a").exclude == ("a",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.tag = "y"  # type: ignore[misc]
    assert hash(options) == hash(LookupOptions(exclude=("a", "b"), tag="x"))
    assert options.filters() == Filters(exclude=("a", "b"), tag="x") and not Filters().active


labels = st.one_of(st.none(), st.text(min_size=1, max_size=20).filter(str.strip))
dates = st.one_of(st.none(), st.dates().map(lambda d: d.isoformat()))


@settings(max_examples=200, deadline=None)
@given(
    section=labels,
    category=labels,
    tag=labels,
    source=labels,
    exclude=st.lists(st.text(max_size=10), max_size=3),
    after=dates,
    before=dates,
    within_days=st.one_of(st.none(), st.floats(0, 1e6)),
    newer=st.booleans(),
    diversity=st.floats(0, 1),
    min_score=st.floats(0, 1),
    min_results=st.integers(0, 50),
    explain=st.booleans(),
)
def test_valid_options_are_kept_as_given_and_their_filters_round_trip(**values: Any) -> None:
    options = LookupOptions(**values)
    labels = {name: None if values[name] is None else values[name].strip().casefold() for name in LABELS}
    assert {name: getattr(options, name) for name in OPTION_NAMES} == values | labels | {
        "exclude": tuple(values["exclude"])
    }
    assert LookupOptions.of(options) is options and LookupOptions.of(options, newer=not values["newer"]) != options
    filters = options.filters()
    assert Filters.from_dict(json.loads(json.dumps(filters.to_dict()))) == filters
    assert filters.active == (filters != Filters()) == options.active


# --- Python -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), FILTERS)
def test_a_filtered_list_is_the_ranking_with_the_others_left_out(
    model: Recommender, labelled: list[Article], name: str, value: str
) -> None:
    by_id = {a.id: a for a in labelled}
    wanted = value.strip().casefold()
    checked = 0
    for article in labelled[::40]:
        everything = model.related(article.id, 1000, min_score=0)
        expected = [r for r in everything if wanted in label_of(by_id[r.id], name)][:5]
        found = model.related(article.id, 5, min_score=0, **{name: value})
        assert [r.id for r in found] == [r.id for r in expected]
        assert [r.score for r in found] == pytest.approx([r.score for r in expected], abs=1e-6)
        checked += len(found)
    assert checked > 0  # the value is common enough for lists to hold it


def test_filters_combine_and_an_unknown_label_gives_an_empty_list(model: Recommender, labelled: list[Article]) -> None:
    by_id = {a.id: a for a in labelled}
    found = model.related(SNAKE_ID, 10, min_score=0, tag="berita", source="KOMPAS.COM")
    assert found and all("berita" in label_of(by_id[r.id], "tag") and by_id[r.id].source == "Kompas.com" for r in found)
    assert model.related(SNAKE_ID, 5, category="no-such-category") == []


def test_one_options_object_or_keywords_give_the_same_list(model: Recommender) -> None:
    box = LookupOptions(tag="pilihan", min_score=0, exclude=("kompas-defc2e02",))
    assert model.related(SNAKE_ID, 5, box) == model.related(
        SNAKE_ID, 5, tag="pilihan", min_score=0, exclude=["kompas-defc2e02"]
    )
    # Keywords over the object: the object itself is not changed.
    assert model.related(SNAKE_ID, 5, box, tag=None) == model.related(
        SNAKE_ID, 5, min_score=0, exclude=["kompas-defc2e02"]
    )
    assert box.tag == "pilihan"


def test_a_draft_is_filtered_and_windowed_around_its_date(model: Recommender, labelled: list[Article]) -> None:
    by_id = {a.id: a for a in labelled}
    draft = {"title": "Ular berkaki tiga ditemukan", "body": "Petugas karhutla di Riau menemukan ular."}
    found = model.related_to_text(**draft, k=10, min_score=0, tag="pilihan")
    assert found and all("pilihan" in label_of(by_id[r.id], "tag") for r in found)
    dated = model.related_to_text(**draft, k=10, min_score=0, published="2019-09-20T12:00:00+07:00", within_days=2)
    assert dated and all("2019-09-18" <= r.published[:10] <= "2019-09-22" for r in dated if r.published)
    with pytest.raises(InvalidParameterError, match="within_days needs its published time"):
        model.related_to_text(**draft, within_days=2)


# --- precompute and the updates of its store --------------------------------------------------------


def test_a_filtered_store_is_kept_filtered_by_its_updates(labelled: list[Article], tmp_path: Path) -> None:
    model_path = tmp_path / "model" / "model.joblib"
    model_path.parent.mkdir()
    Recommender.train(labelled[:-20], n_jobs=1, dedup=None).save(model_path)
    store = tmp_path / "related.sqlite"
    result = runner.invoke(
        app,
        [
            "precompute",
            "--model",
            str(model_path),
            "--out",
            str(store),
            "-k",
            "5",
            "--source",
            "kompas.com",
            "--tag",
            "PILIHAN",
        ],
    )
    assert result.exit_code == 0, result.output
    by_id = {a.id: a for a in labelled}
    with sqlite3.connect(store) as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
        related = [row[0] for row in db.execute("SELECT related_id FROM related")]
    assert json.loads(meta["filters"]) == {"source": "kompas.com", "tag": "pilihan"}
    assert related and all(by_id[i].source == "Kompas.com" and "pilihan" in label_of(by_id[i], "tag") for i in related)

    updater = Updater(model_path, store=store)
    updater.add(labelled[-20:])
    updater.remove([labelled[0].id])
    fresh = tmp_path / "fresh.sqlite"
    precompute(Recommender.load(model_path), fresh, 5, source="kompas.com", tag="PILIHAN")

    def lists(path: Path) -> list[tuple[str, int, str, float]]:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT article_id, rank, related_id, score FROM related ORDER BY 1, 2").fetchall()

    repaired, expected = lists(store), lists(fresh)
    assert [r[:3] for r in repaired] == [r[:3] for r in expected]
    assert [r[3] for r in repaired] == pytest.approx([r[3] for r in expected], abs=1e-6)


# --- the CLI ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), FILTERS)
def test_the_cli_filters_as_python_does(saved: Path, model: Recommender, name: str, value: str) -> None:
    result = runner.invoke(
        app, ["related", SNAKE_ID, "--model", str(saved), "--json", f"--{name}", value, "--min-score", "0"]
    )
    assert result.exit_code == 0, result.output
    found = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    assert found == [r.id for r in model.related(SNAKE_ID, 5, min_score=0, **{name: value})]


# --- HTTP and the editors' page ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(saved: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The application in this process over the labelled model, with a store of the kompas.com boxes."""
    store = tmp_path_factory.mktemp("labelled-store") / "related.sqlite"
    precompute(Recommender.load(saved), store, 10, source="Kompas.com")
    with TestClient(create_app(ServeSettings(model=saved, store=store, token=TOKEN)), follow_redirects=False) as c:
        yield c
    gc.unfreeze()


@pytest.mark.parametrize(("name", "value"), FILTERS)
def test_the_api_filters_as_python_does(client: TestClient, model: Recommender, name: str, value: str) -> None:
    answer = request(client, f"/related/{SNAKE_ID}?k=5&min_score=0&{name}={value}")
    assert answer.status == 200, answer.body
    expected = [r.id for r in model.related(SNAKE_ID, 5, min_score=0, **{name: value})]
    assert [r["id"] for r in answer.json()["related"]] == expected
    draft = {"title": "Ular berkaki tiga", "text": "Petugas karhutla menemukan ular.", "min_score": 0, name: value}
    posted = request(client, "/related", method="POST", body=draft).json()["related"]
    assert [r["id"] for r in posted] == [
        r.id for r in model.related_to_text(title=draft["title"], body=draft["text"], min_score=0, **{name: value})
    ]


def test_the_store_answers_the_filters_it_was_computed_with(client: TestClient, model: Recommender) -> None:
    same = request(client, f"/related/{SNAKE_ID}?k=5&source=kompas.com")
    assert same.headers["x-recommender-source"] == "store"
    assert [r["id"] for r in same.json()["related"]] == [r.id for r in model.related(SNAKE_ID, 5, source="kompas.com")]
    for other in ("", "?tag=pilihan", "?source=kompas.com&tag=pilihan"):
        assert request(client, f"/related/{SNAKE_ID}{other}").headers["x-recommender-source"] == "model"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            f"/related/{SNAKE_ID}?sectoin=berita",
            "unknown parameter 'sectoin': the parameters are after, before, category,",
        ),
        (f"/related/{SNAKE_ID}.html?colour=red", "unknown parameter 'colour'"),
        (f"/related/{SNAKE_ID}?category=gosip", "unknown category 'gosip': the model's categories include"),
        (f"/related/{SNAKE_ID}?tag=nope", "unknown tag 'nope': the model's tags include"),
        (f"/related/{SNAKE_ID}?source=", "source must be 1 to 200 characters"),
    ],
)
def test_bad_parameters_are_refused_by_name(client: TestClient, path: str, message: str) -> None:
    answer = request(client, path)
    assert answer.status == 422 and answer.json()["error"]["message"].startswith(message), answer.body


def test_a_draft_body_refuses_unknown_fields_and_strings_for_numbers(client: TestClient) -> None:
    for body, message in [
        ({"title": "Ular", "categry": "x"}, "unknown field 'categry'"),
        ({"title": "Ular", "within_days": "3"}, "within_days: Input should be a valid number"),
        ({"title": "Ular", "within_days": 3}, "the draft has no publication date"),
        ({"title": "Ular", "tag": ["a"]}, "tag: Input should be a valid string"),
    ]:
        answer = request(client, "/related", method="POST", body=body)
        assert answer.status == 422 and answer.json()["error"]["message"].startswith(message), (body, answer.body)


def test_the_editors_page_shows_a_box_under_the_filters(client: TestClient, model: Recommender) -> None:
    page = client.get("/", params={"id": SNAKE_ID, "tag": "Pilihan", "k": 4}).text
    expected = [str(escape(r.title)) for r in model.related(SNAKE_ID, 4, tag="pilihan")]
    assert expected and all(title in page for title in expected)
    unfiltered = [str(escape(r.title)) for r in model.related(SNAKE_ID, 4)]
    assert not any(title in page for title in unfiltered if title not in expected)
    assert 'name="tag" value="pilihan"' in page and 'name="view_tag" value="pilihan"' in page
    draft = client.post("/editor/draft", data={"title": "Ular berkaki tiga", "text": "karhutla", "view_tag": "pilihan"})
    drafted = [
        str(escape(r.title)) for r in model.related_to_text(title="Ular berkaki tiga", body="karhutla", tag="pilihan")
    ]
    assert draft.status_code == 200 and all(title in draft.text for title in drafted)
    bad = client.get("/", params={"id": SNAKE_ID, "tag": "x" * 300})
    assert bad.status_code == 422 and "tag must be 1 to 200 characters" in bad.text


def test_every_list_at_once_applies_the_filters_as_each_lookup_does_under_rules(
    model: Recommender, labelled: list[Article]
) -> None:
    """Precompute's lists under a filter and editors' rules of every kind (rows with rules of their own are
    searched again, pinned rows one by one) are each article's lookup with the same filter."""
    tagged = [a.id for a in labelled if "pilihan" in label_of(a, "tag")]
    untagged = [a.id for a in labelled if "pilihan" not in label_of(a, "tag")]
    rules = (
        Rule("pin", article=SNAKE_ID, related=tagged[5], position=1, id=1),  # the filter lets it in
        Rule("pin", article=SNAKE_ID, related=untagged[5], position=2, id=2),  # the filter keeps it out
        Rule("block", article=tagged[0], related=tagged[1], id=3),  # a pair block
        Rule("block", field="source", value="tempo.co", under_field="section", under_value="olahraga", id=4),
    )
    ruled = Recommender.from_state(model.fitted_state().with_rules(Rules(rules)), model.get_params())
    options = LookupOptions(tag="pilihan", min_score=0)
    ids = ruled.ids_
    lists = {
        ids[block.start + i]: [ids[j] for j in row if j >= 0]
        for block in ruled.all_related(5, options, mode="exact")
        for i, row in enumerate(block.indices.tolist())
    }
    assert tagged[5] in lists[SNAKE_ID] and untagged[5] not in lists[SNAKE_ID]
    for article in labelled:
        assert lists[article.id] == [r.id for r in ruled.related(article.id, 5, options)], article.id
