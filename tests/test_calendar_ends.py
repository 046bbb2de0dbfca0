"""Dates at the ends of the calendar (issue 22): a window around them is clamped, never an overflow."""

from __future__ import annotations

import pytest

from recommender import Article, InvalidParameterError, Recommender

BODY = "Banjir besar melanda kawasan Jakarta Utara sejak pagi tadi, warga mengungsi."
DATES = {
    "last-days": "9999-12-29T12:00:00+00:00",
    "last-day": "9999-12-30T00:00:00+00:00",
    "last-moment": "9999-12-31T23:59:59.999999+00:00",  # as seconds since the epoch, a float, it rounds up
    "first-moment": "0001-01-01T00:00:00+00:00",
    "first-day": "0001-01-02T00:00:00+00:00",
}


@pytest.fixture(scope="module")
def model() -> Recommender:
    articles = [Article(id, f"Banjir Jakarta {n}", BODY, published=when) for n, (id, when) in enumerate(DATES.items())]
    return Recommender.train(articles, n_jobs=1, dedup=None)  # the articles are near-duplicates


def related(model: Recommender, article_id: str, **window: object) -> set[str]:
    return {r.id for r in model.related(article_id, k=5, min_score=0.0, **window)}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("article_id", "near"),
    [
        ("last-day", {"last-days", "last-moment"}),
        ("last-moment", {"last-days", "last-day"}),
        ("first-moment", {"first-day"}),
        ("first-day", {"first-moment"}),
    ],
)
def test_within_days_of_a_date_at_the_calendars_ends(model: Recommender, article_id: str, near: set[str]) -> None:
    assert related(model, article_id, within_days=3) == near


def test_within_days_with_bounds_at_the_calendars_ends(model: Recommender) -> None:
    window = {"after": DATES["first-moment"], "before": DATES["last-moment"]}
    assert related(model, "last-day", within_days=1, **window) == {"last-days"}
    assert related(model, "last-day", within_days=1, before="9999-12-29") == {"last-days"}  # that whole day
    with pytest.raises(InvalidParameterError, match="before it starts"):
        related(model, "first-day", within_days=3, after="9999-12-31")
