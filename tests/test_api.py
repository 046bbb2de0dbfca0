"""The public API: every name in ``recommender.__all__`` imports from the package itself."""

from __future__ import annotations

import importlib
import subprocess
import sys

import recommender


def test_every_public_name_is_importable() -> None:
    package = importlib.reload(recommender)
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert missing == []


def test_readme_imports_work() -> None:
    from recommender import Recommender, RelatedStore, precompute, read_articles, render_related

    assert callable(precompute) and callable(read_articles) and callable(render_related)
    assert Recommender.load.__doc__ and RelatedStore.related.__doc__


def test_importing_the_package_leaves_scikit_learn_for_evaluate() -> None:
    """Every CLI command and every importing CMS pays the package's imports; scikit-learn takes a second of
    them, and only ``evaluate``'s reference systems use it."""
    code = "import sys, recommender, recommender.cli; print('sklearn' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
