"""Date windows include their bounds, as documented ("only published on or after / on or before"): an article
published exactly at ``after`` or ``before`` (or exactly ``within_days`` from the article) is kept, one a second
further out is not. For lookups by id, for drafts, for the batch job (which takes ``within_days``), and at the
command line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recommender import Article, Recommender, Related
from recommender.cli import app

WIB = timezone(timedelta(hours=7))
QUERY_TIME = datetime(2019, 9, 20, 10, 0, 0, tzinfo=WIB)
AFTER = "2019-09-19T10:00:00+07:00"  # one day before the query article
BEFORE = "2019-09-21T10:00:00+07:00"  # one day after it

# Every article is about the same flood, so each is related to the others; they differ in a few words (and
# in title) so none is a copy of another.
PUBLISHED = {
    "q": "2019-09-20T10:00:00+07:00",
    "early": "2019-09-19T09:59:59+07:00",  # one second before AFTER
    "edge-after": AFTER,
    "inside": "2019-09-20T12:00:00+07:00",
    "edge-before": BEFORE,
    "late": "2019-09-21T10:00:01+07:00",  # one second after BEFORE
    "day": "2019-09-18",  # a date only: midnight UTC
    "eve": "2019-09-17T23:59:59+00:00",  # one second before that midnight
}
WORDS = {
    "q": "pompa air dikerahkan",
    "early": "warga mengungsi malam",
    "edge-after": "sekolah diliburkan sementara",
    "inside": "jalan tol tergenang",
    "edge-before": "bantuan logistik datang",
    "late": "air mulai surut",
    "day": "peringatan cuaca ekstrem",
    "eve": "hujan turun sejak sore",
}
NEIGHBOURS = set(PUBLISHED) - {"q"}
WINDOW = {"edge-after", "inside", "edge-before"}  # the query article's neighbours within AFTER..BEFORE


@pytest.fixture(scope="module")
def model() -> Recommender:
    """Eight articles on one story at chosen times; no near-duplicate suppression, so only windows filter."""
    articles = [
        Article(
            id=article_id,
            title=f"Banjir Jakarta: {WORDS[article_id]}",
            body=f"Banjir melanda Jakarta Timur setelah hujan deras. {WORDS[article_id].capitalize()}.",
            published=published,
        )
        for article_id, published in PUBLISHED.items()
    ]
    return Recommender.train(articles, n_jobs=1, dedup=None)


def ids(results: Sequence[Related]) -> set[str]:
    return {r.id for r in results}


def test_without_a_window_every_article_is_related(model: Recommender) -> None:
    assert ids(model.related("q", k=10, min_score=0.0)) == NEIGHBOURS


# --- lookups by id ---------------------------------------------------------------------------------------


def test_both_bounds_are_inclusive(model: Recommender) -> None:
    assert ids(model.related("q", k=10, after=AFTER, before=BEFORE, min_score=0.0)) == WINDOW


def test_bounds_as_datetimes_are_inclusive(model: Recommender) -> None:
    after, before = QUERY_TIME - timedelta(days=1), QUERY_TIME + timedelta(days=1)
    assert ids(model.related("q", k=10, after=after, before=before, min_score=0.0)) == WINDOW
    # the same instants in UTC, naive (naive is taken as UTC)
    naive = (after.astimezone(timezone.utc).replace(tzinfo=None), before.astimezone(timezone.utc).replace(tzinfo=None))
    assert ids(model.related("q", k=10, after=naive[0], before=naive[1], min_score=0.0)) == WINDOW


def test_after_alone_keeps_an_article_published_at_it(model: Recommender) -> None:
    got = ids(model.related("q", k=10, after=AFTER, min_score=0.0))
    assert got == {"edge-after", "inside", "edge-before", "late"}
    # one second later, the article at the old bound is out
    assert "edge-after" not in ids(model.related("q", k=10, after="2019-09-19T10:00:01+07:00", min_score=0.0))


def test_before_alone_keeps_an_article_published_at_it(model: Recommender) -> None:
    got = ids(model.related("q", k=10, before=BEFORE, min_score=0.0))
    assert got == {"eve", "day", "early", "edge-after", "inside", "edge-before"}
    assert "edge-before" not in ids(model.related("q", k=10, before="2019-09-21T09:59:59+07:00", min_score=0.0))


def test_a_window_of_one_instant(model: Recommender) -> None:
    assert ids(model.related("q", k=10, after=AFTER, before=AFTER, min_score=0.0)) == {"edge-after"}


def test_a_date_means_its_midnight(model: Recommender) -> None:
    # after a date: the article published at that date's first instant is kept, one a second before is not
    got = ids(model.related("q", k=10, after="2019-09-18", min_score=0.0))
    assert got == NEIGHBOURS - {"eve"}
    assert ids(model.related("q", k=10, after="2019-09-18", before="2019-09-18", min_score=0.0)) == {"day"}


def test_within_days_is_inclusive(model: Recommender) -> None:
    # AFTER and BEFORE are exactly one day from the query article
    assert ids(model.related("q", k=10, within_days=1, min_score=0.0)) == WINDOW
    # "day" is 2 days 3 hours before the query (midnight UTC is 07:00 WIB)
    assert "day" in ids(model.related("q", k=10, within_days=2 + 3 / 24, min_score=0.0))
    assert "day" not in ids(model.related("q", k=10, within_days=2 + 3 / 24 - 1 / 86400, min_score=0.0))


# --- drafts ----------------------------------------------------------------------------------------------


def test_draft_window_bounds_are_inclusive(model: Recommender) -> None:
    draft = {"title": "Banjir Jakarta", "body": "Banjir melanda Jakarta Timur setelah hujan deras."}
    assert ids(model.related_to_text(**draft, k=10, min_score=0.0)) == set(PUBLISHED)
    got = ids(model.related_to_text(**draft, k=10, after=AFTER, before=BEFORE, min_score=0.0))
    assert got == WINDOW | {"q"}  # the draft is not "q": "q" is a candidate like the others
    assert ids(model.related_to_text(**draft, k=10, after=BEFORE, min_score=0.0)) == {"edge-before", "late"}
    up_to_after = {"eve", "day", "early", "edge-after"}
    assert ids(model.related_to_text(**draft, k=10, before=AFTER, min_score=0.0)) == up_to_after


# --- the batch job (it takes within_days, not after/before) ----------------------------------------------


def test_batch_within_days_is_inclusive(model: Recommender) -> None:
    row = model.row_of("q")
    lists = {}
    for block in model.all_related(10, within_days=1, min_score=0.0):
        for offset, indices in enumerate(block.indices.tolist()):
            lists[block.start + offset] = {model.ids_[j] for j in indices if j >= 0}
    assert lists[row] == WINDOW
    assert lists[model.row_of("edge-after")] == {"early", "q"}  # q exactly one day later, "inside" 26 hours


# --- the command line ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_file(model: Recommender, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("windows") / "model.joblib"
    model.save(path)
    return path


def test_cli_related_bounds_are_inclusive(model_file: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["related", "q", "-k", "10", "--min-score", "0", "--json", "--model", str(model_file),
         "--after", AFTER, "--before", BEFORE],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {row["id"] for row in rows} == WINDOW
    assert {row["published"] for row in rows} == {AFTER, "2019-09-20T12:00:00+07:00", BEFORE}


def test_cli_precompute_within_days_is_inclusive(model_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "related.jsonl"
    result = CliRunner().invoke(
        app,
        ["precompute", "--out", str(out), "-k", "10", "--min-score", "0", "--within-days", "1",
         "--model", str(model_file)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lists = {row["id"]: {r["id"] for r in row["related"]} for row in map(json.loads, out.read_text().splitlines())}
    assert lists["q"] == WINDOW
