"""Related articles for Indonesian news sites: train a TF-IDF model, serve and precompute related lists."""

from __future__ import annotations

from . import _numba_cache  # noqa: F401  (first: where compiled kernels are cached, before any is defined)
from ._version import __version__
from .batch import PrecomputeResult, precompute
from .corpus import Article, Corpus, SkippedRecord, read_articles
from .embedding import EmbedResult, embed
from .errors import (
    ClusterError,
    CorpusError,
    InvalidParameterError,
    ModelError,
    RecommenderError,
    StoreError,
    UnknownArticleError,
)
from .evaluate import EvaluationReport, JudgedScores, Judgments, SystemScores, evaluate, load_judgments, load_links
from .model import Recommender, read_manifest
from .options import Filters, LookupOptions
from .ranking import Related, TermWeight
from .render import render_related
from .rules import Rule, Rules
from .store import RelatedStore
from .text import Analyzer, clean_text
from .updates import Changes, Freshness, RuleChange, Updater, UpdateResult, freshness
from .vectorfile import vectors_for

__all__ = [
    "Analyzer",
    "Article",
    "Changes",
    "ClusterError",
    "Corpus",
    "CorpusError",
    "EmbedResult",
    "EvaluationReport",
    "Filters",
    "Freshness",
    "InvalidParameterError",
    "JudgedScores",
    "Judgments",
    "LookupOptions",
    "ModelError",
    "PrecomputeResult",
    "Recommender",
    "RecommenderError",
    "Related",
    "RelatedStore",
    "Rule",
    "RuleChange",
    "Rules",
    "SkippedRecord",
    "StoreError",
    "SystemScores",
    "TermWeight",
    "UnknownArticleError",
    "UpdateResult",
    "Updater",
    "__version__",
    "clean_text",
    "embed",
    "evaluate",
    "freshness",
    "load_judgments",
    "load_links",
    "precompute",
    "read_articles",
    "read_manifest",
    "render_related",
    "vectors_for",
]
