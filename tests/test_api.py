"""The public API: every name in ``recommender.__all__`` imports from the package itself."""

from __future__ import annotations

import importlib

import recommender


def test_every_public_name_is_importable() -> None:
    package = importlib.reload(recommender)
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert missing == []


def test_readme_imports_work() -> None:
    from recommender import Recommender, RelatedStore, precompute, read_articles, render_related

    assert callable(precompute) and callable(read_articles) and callable(render_related)
    assert Recommender.load.__doc__ and RelatedStore.related.__doc__
