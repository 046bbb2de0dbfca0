"""Related articles for Indonesian news sites: train a TF-IDF model, serve and precompute related lists."""

from __future__ import annotations

__version__ = "0.1.0"

from .corpus import Article, Corpus, SkippedRecord, read_articles
from .errors import (
    CorpusError,
    InvalidParameterError,
    ModelError,
    RecommenderError,
    StoreError,
    UnknownArticleError,
)
from .model import Recommender, Related, read_manifest
from .text import Analyzer, clean_text

__all__ = [
    "Analyzer",
    "Article",
    "Corpus",
    "CorpusError",
    "InvalidParameterError",
    "ModelError",
    "PrecomputeResult",
    "Recommender",
    "RecommenderError",
    "Related",
    "RelatedStore",
    "SkippedRecord",
    "StoreError",
    "UnknownArticleError",
    "__version__",
    "clean_text",
    "precompute",
    "read_articles",
    "read_manifest",
    "render_related",
]
