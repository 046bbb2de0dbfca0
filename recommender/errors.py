"""Named exceptions: every failure a user can cause, each with a message they can act on.

The CLI turns any :class:`RecommenderError` into one ``Error: ...`` line and a non-zero exit.
"""

from __future__ import annotations


class RecommenderError(Exception):
    """Base class of every error this package raises on purpose."""


class CorpusError(RecommenderError):
    """A corpus file cannot be read, or one of its records is invalid.

    ``path`` and ``line`` (1-based, or ``None`` for file-level problems) say where.
    """

    def __init__(self, problem: str, path: str | None = None, line: int | None = None) -> None:
        self.problem = problem
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}, line {line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{problem}")


class ModelError(RecommenderError):
    """A model file is missing, corrupt, tampered with, incompatible, or not fitted yet."""


class UnknownArticleError(RecommenderError, KeyError):
    """An article id that the model does not contain."""

    def __init__(self, article_id: str, message: str | None = None) -> None:
        self.article_id = article_id
        self.message = message
        super().__init__(article_id)

    def __str__(self) -> str:
        return self.message or (
            f"unknown article id {self.article_id!r}: it is not in the model; add it with `recommender add` "
            "(or PUT /articles/{id}), or for a draft's text use `recommender related --text` (or POST /related)"
        )


class StoreError(RecommenderError):
    """A related-lists store cannot be written or read (bad path, unknown format, locked file)."""


class InvalidParameterError(RecommenderError, ValueError):
    """A parameter value that cannot work (``k=0``, a window that ends before it starts, ...)."""


class ClusterError(RecommenderError):
    """A Dask cluster cannot run the batch job: Dask not installed, scheduler unreachable, no or lost workers."""
