"""``recommender.serve``: the server's former module, kept so that imports of it go on working. The server is
the :mod:`recommender.server` package; import from there."""

from __future__ import annotations

from .server import *  # noqa: F403 (the package's public names, as this module had them)
from .server import __all__ as __all__
