"""The TF-IDF related-articles model: fit, look up, save and load (with a JSON manifest).

A model saved as ``models/model.joblib`` is two files: the manifest ``models/model.json`` (format and
library versions, parameters, corpus size and checksum, creation time, and the data file's name, size
and SHA-256) and the data file it names, ``models/model-<first 16 hex digits of its SHA-256>.joblib``
(numpy arrays, memory-mapped on load). The manifest is the single commit point: a save writes a new
data file beside the old one, then replaces the manifest, then deletes the data files no manifest names;
whenever a save dies, the manifest names a complete data file, the old one or the new one. Models
saved before content-addressed names (a manifest naming ``model.joblib``) keep their data at the model
path itself, and still load.

joblib files are pickles: loading one can execute code. Load only models you built yourself.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import json
import os
import platform
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import joblib
import numpy as np
import scipy
import scipy.sparse as sp

from . import __version__
from ._atomic import fsync_directory, fsync_file, locked_directory, sweep_leftovers, temporary_beside
from ._manifest import MANIFEST_SCHEMA, VERSION_SCHEMA, disagreement, schema_problem
from .corpus import Article, parse_published
from .errors import InvalidParameterError, ModelError, UnknownArticleError
from .features import Counts, count_terms, fit_topics, project_topics, tfidf
from .neighbors import (
    Approx,
    Block,
    Index,
    Plan,
    ProgressCallback,
    available_threads,
    plan,
    row_ranges,
    search,
    search_blocks,
    time_origin,
)
from .ranking import (
    MIN_RESULTS,
    MIN_SCORE,
    RankingOptions,
    TermWeight,
    check_days,
    check_k,
    choose,
    choose_rows,
    explain,
    pool_size,
    title_key,
)
from .text import Analyzer, stopword_list

if TYPE_CHECKING:
    from .updates import Changes

__all__ = [
    "FORMAT_VERSION",
    "Recommender",
    "Related",
    "StringColumn",
    "data_path",
    "load_with_manifest",
    "manifest_path",
    "read_manifest",
]

FORMAT_VERSION = 1
ARTICLES_PER_TOPIC = 100  # the topic gate's space has at most len(corpus) // 100 dimensions
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Related:
    """One related article.

    ``score`` (0 to 1) ranks the list: the cosine ``similarity`` to the query, weighted by the topic gate
    and the time prior when they are on. ``why`` holds the shared terms behind the similarity (with ``explain``).
    """

    id: str
    title: str
    url: str | None
    published: str | None
    section: str | None
    score: float
    similarity: float | None = None
    why: tuple[TermWeight, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.why:
            del data["why"]
        return data


class StringColumn:
    """Many strings as one UTF-8 byte array plus offsets: memory-mappable, unlike a list of str."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray, present: np.ndarray) -> None:
        # Plain views of memory-mapped arrays: np.memmap's own indexing costs microseconds per call.
        self.data, self.offsets, self.present = np.asarray(data), np.asarray(offsets), np.asarray(present)
        self._bytes = self.data.data  # a memoryview, decoded from directly: no array slice, no bytes copy

    @classmethod
    def from_values(cls, values: Sequence[str | None]) -> StringColumn:
        encoded = [(v or "").encode("utf-8") for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        present = np.array([v is not None for v in values], dtype=bool)
        return cls(data, offsets, present)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str | None:
        if not self.present.item(i):
            return None
        return str(self._bytes[self.offsets.item(i) : self.offsets.item(i + 1)], "utf-8")

    def to_list(self) -> list[str | None]:
        blob = bytes(self.data)
        offs = self.offsets.tolist()
        return [blob[offs[i] : offs[i + 1]].decode("utf-8") if p else None for i, p in enumerate(self.present.tolist())]

    def state(self) -> dict[str, np.ndarray]:
        return {"data": self.data, "offsets": self.offsets, "present": self.present}

    def __getstate__(self) -> dict[str, np.ndarray]:  # a memoryview cannot be pickled: the arrays can
        return self.state()

    def __setstate__(self, state: dict[str, np.ndarray]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def take(self, rows: np.ndarray) -> StringColumn:
        """The strings at ``rows``, in that order, without decoding them."""
        offsets, where = row_ranges(self.offsets, rows)
        return StringColumn(self.data[where], offsets, self.present[rows])

    def extend(self, other: StringColumn) -> StringColumn:
        """This column followed by ``other``."""
        offsets = np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]])
        return StringColumn(
            np.concatenate([self.data, other.data]), offsets, np.concatenate([self.present, other.present])
        )


def manifest_path(model_path: str | Path) -> Path:
    """Where the manifest of a model lives: ``models/model.joblib`` → ``models/model.json``."""
    return Path(model_path).with_suffix(".json")


_DATA_NAME = re.compile(r"-[0-9a-f]{16}\.joblib\Z")  # the tail of a content-addressed data file's name


def data_path(model_path: str | Path, manifest: dict[str, Any] | None = None) -> Path:
    """The file holding a model's arrays: the one its manifest (read now unless given) names beside it,
    ``model-<sha256[:16]>.joblib``; for a model saved before names were content-addressed, the model
    path itself."""
    model_path = Path(model_path)
    name = str((manifest if manifest is not None else read_manifest(model_path))["model_file"]["name"])
    return model_path.with_name(name) if _DATA_NAME.search(name) else model_path


def _data_name(model_path: Path, sha256: str) -> str:
    return f"{model_path.stem}-{sha256[:16]}.joblib"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _corpus_checksum(articles: Sequence[Article]) -> str:
    digest = hashlib.sha256()
    for a in articles:
        digest.update(f"{a.id}\x1f{a.title}\x1f{a.body}\x1e".encode())
    return digest.hexdigest()


def timestamp_of(value: str | datetime | None) -> float:
    if value is None:
        return float("nan")
    try:
        moment = parse_published(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise InvalidParameterError(str(exc).replace("in 'published' ", "")) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


class Recommender:
    """Related articles by TF-IDF cosine similarity over Indonesian-analysed title and body.

    Parameters are stored as given (scikit-learn style); what ``fit`` learns ends in ``_``.

    Parameters
    ----------
    stem: stem words with Sastrawi (each distinct word once).
    stopwords: "news" (outlet names, days, months, speech verbs: words that must not link stories; common
        function words are left to ``max_df``), "indonesian" (Sastrawi's list too) or "none".
    numbers: keep digit strings ("2022", "11") as words.
    ngram_range: word n-grams, within a sentence; ``(1, 2)`` adds bigrams.
    title_weight: how many times the title's terms count.
    min_df, max_df: drop terms in fewer than ``min_df`` articles or more than ``max_df`` of them.
    sublinear_tf: use ``1 + log(tf)`` so one repeated word does not dominate.
    half_life_days: time prior: the scale in days of its decay (``None``: off). News about one event
        clusters in time.
    time_weight: the share of a score that decays with time: the cosine is multiplied by
        ``1 - time_weight + time_weight / (1 + days_apart / half_life_days)``. The default 0.2 lets time
        order stories of similar relatedness; 1 halves the score at ``half_life_days`` (recency first,
        at a cost in relatedness: docs/quality.md).
    topic_dims: the topic gate: each cosine is multiplied by the two articles' (non-negative) cosine in a
        latent semantic space of this many dimensions (a truncated SVD of the TF-IDF matrix), so articles
        that share words but not a topic lose score; at most one dimension per 100 articles, and none below
        2 (``None``: off).
    dedup: cosine at or above which two results are the same story republished; only the best is
        kept (``None``: off).
    n_jobs: processes for text analysis (``-1``: all cores).
    """

    def __init__(
        self,
        *,
        stem: bool = False,
        stopwords: str = "news",
        numbers: bool = True,
        ngram_range: tuple[int, int] = (1, 1),
        title_weight: int = 3,
        min_df: int | float = 2,
        max_df: float = 0.2,
        sublinear_tf: bool = True,
        half_life_days: float | None = 7.0,
        time_weight: float = 0.2,
        topic_dims: int | None = 64,
        dedup: float | None = 0.8,
        n_jobs: int = -1,
    ) -> None:
        self.stem = stem
        self.stopwords = stopwords
        self.numbers = numbers
        self.ngram_range = ngram_range
        self.title_weight = title_weight
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.half_life_days = half_life_days
        self.time_weight = time_weight
        self.topic_dims = topic_dims
        self.dedup = dedup
        self.n_jobs = n_jobs
        self._lock = threading.Lock()

    # --- parameters ------------------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters that shape the model (``n_jobs`` only affects speed)."""
        return {
            "stem": self.stem,
            "stopwords": self.stopwords,
            "numbers": self.numbers,
            "ngram_range": list(self.ngram_range),
            "title_weight": self.title_weight,
            "min_df": self.min_df,
            "max_df": self.max_df,
            "sublinear_tf": self.sublinear_tf,
            "half_life_days": self.half_life_days,
            "time_weight": self.time_weight,
            "topic_dims": self.topic_dims,
            "dedup": self.dedup,
        }

    def check_params(self) -> Recommender:
        """Check the parameters (as :meth:`fit` does first), so a bad one fails before a corpus is read;
        :class:`InvalidParameterError` naming it. Returns this recommender."""
        if isinstance(self.min_df, float) and not 0.0 < self.min_df < 1.0:
            raise InvalidParameterError(f"min_df as a fraction must be between 0 and 1, got {self.min_df}")
        if isinstance(self.min_df, int) and self.min_df < 1:
            raise InvalidParameterError(f"min_df as a count must be 1 or more, got {self.min_df}")
        if not 0.0 < self.max_df <= 1.0:
            raise InvalidParameterError(f"max_df must be a fraction in (0, 1], got {self.max_df}")
        if self.topic_dims is not None and (
            isinstance(self.topic_dims, bool) or not isinstance(self.topic_dims, int) or self.topic_dims < 1
        ):
            raise InvalidParameterError(
                f"topic_dims must be a whole number of 1 or more (or None), got {self.topic_dims}"
            )
        self._options()
        try:
            self._analyzer()
        except ValueError as exc:
            raise InvalidParameterError(str(exc)) from None
        return self

    # --- fitting ---------------------------------------------------------------------------------

    @classmethod
    def train(
        cls, articles: Iterable[Article], *, progress: ProgressCallback | None = None, **params: Any
    ) -> Recommender:
        """Build and fit a recommender in one call: ``Recommender.train(articles, stem=True)``."""
        return cls(**params).fit(articles, progress=progress)

    def fit(self, articles: Iterable[Article], *, progress: ProgressCallback | None = None) -> Recommender:
        """Learn the vocabulary, IDF weights and article vectors from ``articles``."""
        self.check_params()
        docs = self._check_articles(articles)
        analyzer = self._analyzer()
        counts = count_terms(analyzer, [(a.title, a.body) for a in docs], n_jobs=self.n_jobs, progress=progress)
        return self._fit_counts(counts, docs, analyzer)

    def fit_counts(self, counts: Counts, articles: Iterable[Article]) -> Recommender:
        """Fit on terms counted elsewhere: ``counts.matrix[i]`` belongs to ``articles[i]``, whose title and
        body are not analysed again (a corpus in term space, as the benchmarks generate). Drafts given to
        :meth:`related_to_text` still go through this model's analyzer."""
        self.check_params()
        docs = self._check_articles(articles)
        if counts.matrix.shape[0] != len(docs):
            raise InvalidParameterError(f"counts have {counts.matrix.shape[0]} rows for {len(docs)} articles")
        return self._fit_counts(counts, docs, self._analyzer())

    def _analyzer(self) -> Analyzer:
        return Analyzer(
            stem=self.stem,
            ngram_range=tuple(self.ngram_range),  # type: ignore[arg-type]
            title_weight=self.title_weight,
            stopwords=stopword_list(self.stopwords),
            numbers=self.numbers,
        )

    @staticmethod
    def _check_articles(articles: Iterable[Article]) -> list[Article]:
        docs = list(articles)
        if not docs:
            raise InvalidParameterError("cannot fit on an empty corpus: give at least one article")
        seen: set[str] = set()
        for a in docs:
            if a.id in seen:
                raise InvalidParameterError(f"duplicate article id {a.id!r}: ids must be unique")
            seen.add(a.id)
        return docs

    def _fit_counts(self, counts: Counts, docs: list[Article], analyzer: Analyzer) -> Recommender:
        small = len(docs) < 10  # tiny corpora (tests, demos) keep every term
        try:
            matrix, terms_by_col, idf = tfidf(
                counts,
                min_df=1 if small else self.min_df,
                max_df=1.0 if small else self.max_df,
                sublinear_tf=self.sublinear_tf,
            )
        except ValueError as exc:  # every term pruned: the corpus has no usable words
            raise InvalidParameterError(f"no terms left to index: {exc}") from None
        self.analyzer_ = analyzer
        self.terms_ = StringColumn.from_values(terms_by_col)
        self.idf_ = idf
        self.matrix_ = matrix  # columns sorted within rows: the kernels merge rows by column
        self.index_t_ = self.matrix_.T.tocsr()
        # At most one topic dimension per 100 articles: a small corpus has few topics to tell apart, and a
        # fine-grained space would gate away most of its pairs.
        dims = None if self.topic_dims is None else min(self.topic_dims, len(docs) // ARTICLES_PER_TOPIC)
        self.topic_terms_ = fit_topics(self.matrix_, dims) if dims and dims >= 2 else None
        self.topics_ = None if self.topic_terms_ is None else project_topics(self.matrix_, self.topic_terms_)
        self.ids_ = StringColumn.from_values([a.id for a in docs])
        self.titles_ = StringColumn.from_values([a.title for a in docs])
        self.urls_ = StringColumn.from_values([a.url for a in docs])
        self.published_ = StringColumn.from_values([a.published for a in docs])
        self.sections_ = StringColumn.from_values([a.section for a in docs])
        self.timestamps_ = np.array([timestamp_of(a.published) for a in docs], dtype=np.float64)
        self.time_origin_ = time_origin(self.timestamps_)
        self.corpus_: dict[str, Any] = {
            "articles": len(docs),
            "checksum": _corpus_checksum(docs),
            "sections": dict(Counter(a.section or "(none)" for a in docs).most_common()),
            "sources": dict(Counter(a.source or "(none)" for a in docs).most_common()),
            "empty_bodies": sum(1 for a in docs if not a.body.strip()),
        }
        self.fitted_at_ = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.updates_ = _no_updates()
        self._set_base(None)
        self._reset_lookups()
        return self

    def _reset_lookups(self) -> None:
        """Forget the lookup tables built on first use (after a fit or a load)."""
        self._vocabulary: dict[str, int] | None = None
        self._row_of: dict[str, int] | None = None
        self._title_id_array: np.ndarray | None = None
        self._sections: np.ndarray | None = None
        self._search_index: Index | None = None
        self._title_keys: dict[str, int] | None = None

    def _set_base(self, sha256: str | None) -> None:
        """Make the current rows the base that an overlay of updates refers to (a fit, a load or a save)."""
        self.base_rows_ = np.arange(len(self.ids_), dtype=np.int64)
        self.base_size_ = len(self.ids_)
        self._base_sha256 = sha256

    def _copy(self) -> Recommender:
        """A new model sharing this one's parameters and fitted arrays (to replace some of them)."""
        new = type(self)(**self._init_params())
        for name, value in vars(self).items():
            if name.endswith("_") and not name.startswith("_"):
                setattr(new, name, value)
        new._base_sha256 = self._base_sha256
        new._reset_lookups()
        return new

    def _init_params(self) -> dict[str, Any]:
        return self.get_params() | {"ngram_range": tuple(self.ngram_range), "n_jobs": self.n_jobs}

    def _carry_lookups(
        self, old: Recommender, kept: np.ndarray | None, ids: Sequence[str], titles: Sequence[str | None]
    ) -> None:
        """Extend ``old``'s lookup tables to this model, ``old``'s rows ``kept`` plus new ``ids``: an update
        then costs what it adds, not a rebuild of tables over the whole corpus."""
        self._vocabulary = old._vocabulary  # the vocabulary is fixed after the fit
        if old._row_of is not None and kept is None:
            rows = dict(old._row_of)
            rows.update((i, len(rows)) for i in ids)
            self._row_of = rows
        if old._title_id_array is not None and old._title_keys is not None:
            keys = dict(old._title_keys)
            extra = [keys.setdefault(title_key(t), len(keys)) for t in titles]
            own = old._title_id_array if kept is None else old._title_id_array[kept]
            self._title_keys = keys
            self._title_id_array = np.concatenate([own, np.array(extra, dtype=np.int64)])

    # --- incremental updates ---------------------------------------------------------------------

    def add(self, articles: Iterable[Article]) -> Changes:
        """Fold ``articles`` into this model with its vocabulary and IDF fixed (a new fit refits them). An
        id already in the model is an edit: its old version is replaced. Lists change in memory only: to
        update a saved model and its store together, use :class:`~recommender.Updater`."""
        from .updates import fold

        new, delta = fold(self, articles, ())
        self._become(new)
        return delta.changes

    def remove(self, ids: Iterable[str]) -> Changes:
        """Take the articles with these ``ids`` out of this model; :class:`UnknownArticleError` (and nothing
        removed) if any is not in it."""
        from .updates import fold

        new, delta = fold(self, (), ids)
        self._become(new)
        return delta.changes

    def _become(self, other: Recommender) -> None:
        lock = self._lock
        self.__dict__.update(vars(other))
        self._lock = lock

    # --- lookups ---------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "matrix_"):
            raise ModelError("this Recommender is not fitted yet: call fit(articles) or Recommender.load(path)")

    def __len__(self) -> int:
        self._check_fitted()
        return len(self.ids_)

    def _cached(self, name: str, build: Callable[[], _T]) -> _T:
        # Lookup tables are built on first use, once even under threads: a worker that only serves
        # lookups by id never pays for the vocabulary, nor one serving drafts for the id table.
        value = getattr(self, name)
        if value is None:
            with self._lock:
                value = getattr(self, name)
                if value is None:
                    value = build()
                    setattr(self, name, value)
        return value

    def _rows(self) -> dict[str, int]:
        return self._cached("_row_of", lambda: {str(a): i for i, a in enumerate(self.ids_.to_list())})

    def _vocab(self) -> dict[str, int]:
        return self._cached("_vocabulary", lambda: {str(t): i for i, t in enumerate(self.terms_.to_list())})

    def __contains__(self, article_id: object) -> bool:
        self._check_fitted()
        return isinstance(article_id, str) and article_id in self._rows()

    def row_of(self, article_id: str) -> int:
        """The row of ``article_id``; :class:`UnknownArticleError` if the model lacks it."""
        self._check_fitted()
        rows = self._rows()
        try:
            return rows[article_id]
        except (KeyError, TypeError):
            # Ids are stripped when a corpus is read; so are the ids looked up (" a-1 " is a-1).
            found = rows.get(article_id.strip()) if isinstance(article_id, str) else None
            if found is None:
                raise UnknownArticleError(str(article_id)) from None
            return found

    def article(self, row: int) -> dict[str, str | None]:
        """The stored fields of the article at ``row``."""
        return {
            "id": self.ids_[row],
            "title": self.titles_[row],
            "url": self.urls_[row],
            "published": self.published_[row],
            "section": self.sections_[row],
        }

    def vectorize(self, title: str = "", body: str = "") -> sp.csr_matrix:
        """The L2-normalised TF-IDF row of a text that is not in the model (a draft)."""
        self._check_fitted()
        cols, tf, _ = self._term_counts(title, body)
        if self.sublinear_tf:
            tf = (1.0 + np.log(tf)).astype(np.float32)
        values = tf * self.idf_[cols]
        norm = float(np.linalg.norm(values))
        if norm > 0:
            values /= norm
        # Index arrays already int32 and values float32: scipy neither converts nor copies (half the time).
        indptr = np.array([0, len(cols)], dtype=np.int32)
        return sp.csr_matrix(
            (values.astype(np.float32, copy=False), cols.astype(np.int32), indptr), shape=(1, len(self.idf_))
        )

    def _term_counts(self, title: str, body: str) -> tuple[np.ndarray, np.ndarray, int]:
        """A text's known terms as sorted columns and their counts, and how many term occurrences the
        vocabulary lacks."""
        vocab = self._vocab()
        # Each distinct term is looked up once: a lookup in the large vocabulary misses the CPU caches.
        counts = Counter(self.analyzer_((title, body)))
        ids = np.fromiter(map(vocab.get, counts, itertools.repeat(-1)), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        known = np.flatnonzero(ids >= 0)
        order = known[np.argsort(ids[known])]  # columns sorted, as the kernels need
        return ids[order], tf[order], int(tf.sum() - tf[known].sum())

    def _mask(
        self,
        section: str | None,
        exclude: Iterable[str],
        after: str | datetime | None,
        before: str | datetime | None,
    ) -> np.ndarray | None:
        n = len(self.ids_)
        mask: np.ndarray | None = None
        if section is not None:
            # Decoding every section per lookup would cost O(N) string work; the array is built once.
            sections = self._cached("_sections", lambda: np.array(self.sections_.to_list(), dtype=object))
            mask = sections == section
        excluded = [self._rows()[i] for i in exclude if i in self._rows()]
        if excluded:
            mask = np.ones(n, dtype=bool) if mask is None else mask
            mask[excluded] = False
        if after is not None or before is not None:
            lo = timestamp_of(after) if after is not None else -np.inf
            hi = timestamp_of(before) if before is not None else np.inf
            if isinstance(before, str) and _PLAIN_DATE.fullmatch(before.strip()):
                hi += 86_400 - 1e-3  # "on or before 2019-09-30" includes that whole day
            if lo > hi:
                raise InvalidParameterError(f"the date window ends ({before}) before it starts ({after})")
            window = (self.timestamps_ >= lo) & (self.timestamps_ <= hi)  # unknown dates (NaN) fall out
            mask = window if mask is None else mask & window
        return mask

    def _options(self, **overrides: Any) -> RankingOptions:
        return RankingOptions(
            half_life_days=self.half_life_days, time_weight=self.time_weight, dedup=self.dedup, **overrides
        )

    def _term(self, col: int) -> str | None:
        return self.terms_[col]

    def _index(self) -> Index:
        return self._cached(
            "_search_index",
            lambda: Index(self.matrix_, self.index_t_, self.timestamps_, self.time_origin_, self.topics_),
        )

    def _title_ids(self) -> np.ndarray:
        def build() -> np.ndarray:
            # Numbered as first seen, and the numbering kept: an update numbers only its new headlines.
            keys: dict[str, int] = {}
            ids = [keys.setdefault(title_key(t), len(keys)) for t in self.titles_.to_list()]
            self._title_keys = keys
            return np.array(ids, dtype=np.int64)

        return self._cached("_title_id_array", build)

    def _top(
        self,
        query: sp.csr_matrix,
        k: int,
        mask: np.ndarray | None,
        skip: int | None,
        query_ts: float,
        options: RankingOptions,
        with_why: bool,
    ) -> list[Related]:
        check_k(k)
        index = self._index()
        topics = None
        if self.topics_ is not None and self.topic_terms_ is not None:  # an article's own; a draft's from its terms
            topics = self.topics_[[skip]] if skip is not None else project_topics(query, self.topic_terms_)
        hits = search(
            index,
            query,
            pool_size(int(k), options),
            exclude=np.array([-1 if skip is None else skip]),
            query_ts=np.array([query_ts]),
            prior=options.prior(),
            mask=mask,
            query_topics=topics,
            threads=available_threads(self.n_jobs),
        )
        rows, scores, sims = hits.rows[0], hits.scores[0], hits.similarities[0]
        chosen = choose(rows, scores, int(k), matrix=index.matrix, title_ids=self._title_ids(), options=options)
        position = {int(r): i for i, r in enumerate(rows.tolist())}
        results = []
        for row in chosen:
            why = explain(query, self.matrix_[row], self._term) if with_why else ()
            results.append(
                Related(
                    score=round(min(1.0, float(scores[position[row]])), 6),
                    similarity=round(min(1.0, float(sims[position[row]])), 6),
                    why=why,
                    **self.article(int(row)),  # type: ignore[arg-type]
                )
            )
        return results

    def related(
        self,
        article_id: str,
        k: int = 5,
        *,
        section: str | None = None,
        exclude: Iterable[str] = (),
        after: str | datetime | None = None,
        before: str | datetime | None = None,
        within_days: float | None = None,
        newer: bool = True,
        diversity: float = 0.0,
        min_score: float = MIN_SCORE,
        min_results: int = MIN_RESULTS,
        explain: bool = False,
    ) -> list[Related]:
        """The top-``k`` articles related to ``article_id`` (never itself), best first.

        Filters: only ``section``; not the ids in ``exclude`` (already on the page); published between
        ``after`` and ``before``, or within ``within_days`` of the article itself; with ``newer=False``
        none published after it (a stable archive list). ``diversity`` (0 to 1) trades relevance for
        variety; ``min_score`` drops weak results unless fewer than ``min_results`` would remain.
        ``explain`` fills each result's ``why`` with the shared terms behind it.
        """
        options = self._options(newer=newer, diversity=diversity, min_score=min_score, min_results=min_results)
        row = self.row_of(article_id)
        if within_days is not None:
            check_days(within_days)
            own = self.timestamps_[row]
            if np.isnan(own):
                raise InvalidParameterError(f"article {article_id!r} has no publication date: within_days needs one")
            at = datetime.fromtimestamp(own, timezone.utc)
            span = timedelta(days=within_days)
            # A window reaching past the calendar's ends (year 1, 9999) is open on that side.
            lo = at - span if at - datetime.min.replace(tzinfo=timezone.utc) > span else None
            hi = at + span if datetime.max.replace(tzinfo=timezone.utc) - at > span else None
            if lo is not None:
                after = max(lo, _as_datetime(after)) if after is not None else lo
            if hi is not None:
                before = min(hi, _as_datetime(before)) if before is not None else hi
        mask = self._mask(section, exclude, after, before)
        return self._top(self._index().matrix[row], k, mask, row, float(self.timestamps_[row]), options, explain)

    def related_to_text(
        self,
        *,
        title: str = "",
        body: str = "",
        k: int = 5,
        published: str | datetime | None = None,
        section: str | None = None,
        exclude: Iterable[str] = (),
        after: str | datetime | None = None,
        before: str | datetime | None = None,
        newer: bool = True,
        diversity: float = 0.0,
        min_score: float = MIN_SCORE,
        min_results: int = MIN_RESULTS,
        explain: bool = False,
    ) -> list[Related]:
        """The top-``k`` articles related to a draft's ``title`` and ``body`` (not in the model).

        The time prior applies only when the draft's ``published`` time is given. Other options as
        in :meth:`related`.
        """
        options = self._options(newer=newer, diversity=diversity, min_score=min_score, min_results=min_results)
        if not (title.strip() or body.strip()):
            raise InvalidParameterError("give a title or a body to find related articles for")
        query = self.vectorize(title, body)
        mask = self._mask(section, exclude, after, before)
        return self._top(query, k, mask, None, timestamp_of(published), options, explain)

    def plan_all_related(self, mode: str = "auto") -> Plan:
        """How :meth:`all_related` would run: exact, or approximate past a size (``mode`` "auto", "exact" or
        "approx"), with its estimated cost in multiply-adds."""
        self._check_fitted()
        try:
            return plan(self._index(), mode)
        except ValueError as exc:
            raise InvalidParameterError(str(exc)) from None

    def all_related(
        self,
        k: int = 10,
        *,
        progress: ProgressCallback | None = None,
        block_rows: int = 4096,
        mode: str | Plan = "auto",
        newer: bool = True,
        within_days: float | None = None,
        diversity: float = 0.0,
        min_score: float = MIN_SCORE,
        min_results: int = MIN_RESULTS,
    ) -> Iterator[Block]:
        """Every article's top-``k`` list, in blocks of ``block_rows`` rows; in exact mode the same lists as
        :meth:`related` gives with the same options (an undated article's list ignores ``within_days``).
        ``mode``: see :meth:`plan_all_related`. ``progress(done, total)`` counts multiply-adds, estimated up
        front."""
        self._check_fitted()
        check_k(k)
        options = self._options(
            newer=newer, within_days=within_days, diversity=diversity, min_score=min_score, min_results=min_results
        )
        chosen = mode if isinstance(mode, Plan) else self.plan_all_related(mode)
        return self._all_related(k, options, chosen.approx, None, progress, block_rows)

    def estimate_recall(
        self, k: int = 10, *, mode: str | Plan = "auto", sample: int = 200, seed: int = 0, **options: Any
    ) -> float:
        """The share of exact top-``k`` lists that ``mode`` finds too, over ``sample`` random articles
        (1.0 in exact mode). ``options`` as in :meth:`all_related`."""
        self._check_fitted()
        chosen = mode if isinstance(mode, Plan) else self.plan_all_related(mode)
        if chosen.approx is None:
            return 1.0
        ranking = self._options(**options)
        rows = np.sort(np.random.default_rng(seed).choice(len(self), size=min(sample, len(self)), replace=False))
        exact = np.vstack([b.indices for b in self._all_related(k, ranking, None, rows, None, 4096)])
        approx = np.vstack([b.indices for b in self._all_related(k, ranking, chosen.approx, rows, None, 4096)])
        found = [
            len(set(e[e >= 0].tolist()) & set(a[a >= 0].tolist())) / max(1, int((e >= 0).sum()))
            for e, a in zip(exact, approx, strict=True)
            if (e >= 0).any()
        ]
        return float(np.mean(found)) if found else 1.0

    def _all_related(
        self,
        k: int,
        options: RankingOptions,
        approx: Approx | None,
        rows: np.ndarray | None,
        progress: ProgressCallback | None,
        block_rows: int,
    ) -> Iterator[Block]:
        title_ids = self._title_ids() if options.dedup is not None else np.zeros(len(self.ids_), dtype=np.int64)
        index = self._index()
        blocks = search_blocks(
            index,
            pool_size(k, options),
            prior=options.prior(),
            approx=approx,
            rows=rows,
            block_rows=block_rows,
            threads=available_threads(self.n_jobs),
            progress=progress,
        )
        for start, hits in blocks:
            indices, scores = choose_rows(
                hits.rows, hits.scores, k, matrix=index.matrix, title_ids=title_ids, options=options
            )
            yield Block(start, indices, scores)

    # --- persistence -----------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """Everything about this model that fits in a small JSON file (no model file hash yet)."""
        self._check_fitted()
        return {
            "format_version": FORMAT_VERSION,
            "package": "recommender",
            "package_version": __version__,
            "versions": {
                "python": platform.python_version(),
                "scikit-learn": importlib.metadata.version("scikit-learn"),  # not imported: a second
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "joblib": joblib.__version__,
            },
            "params": self.get_params(),
            "corpus": self.corpus_,
            "terms": int(self.idf_.shape[0]),
            "nonzeros": int(self.matrix_.nnz),
            "created_at": self.fitted_at_,
            "updates": dict(self.updates_),
        }

    def save(self, path: str | Path) -> dict[str, Any]:
        """Save as ``path``: a new data file beside it, then its manifest, which commits the save (see the
        module's notes); returns the manifest. Whenever the process dies, ``path`` loads as the previous
        model or as this one."""
        self._check_fitted()
        path = Path(path)
        state = {
            "format_version": FORMAT_VERSION,
            "params": self.get_params() | {"ngram_range": tuple(self.ngram_range)},
            "analyzer": self.analyzer_,
            "idf": self.idf_,
            "matrix": csr_state(self.matrix_),
            "index_t": csr_state(self.index_t_),
            "columns": {
                name: getattr(self, f"{name}_").state()
                for name in ("terms", "ids", "titles", "urls", "published", "sections")
            },
            "timestamps": self.timestamps_,
            "time_origin": self.time_origin_,
            "topic_terms": self.topic_terms_,
            "topics": self.topics_,
            "corpus": self.corpus_,
            "fitted_at": self.fitted_at_,
            "updates": self.updates_,
        }
        manifest = self.manifest()
        mpath = manifest_path(path)
        data_tmp = temporary_beside(path)
        manifest_tmp: Path | None = None
        try:
            joblib.dump(state, data_tmp)  # uncompressed, so arrays can be memory-mapped on load
            fsync_file(data_tmp)
            sha256 = _sha256(data_tmp)
            data = path.with_name(_data_name(path, sha256))
            manifest["model_file"] = {"name": data.name, "bytes": data_tmp.stat().st_size, "sha256": sha256}
            # Written in full before anything is renamed: a manifest that cannot be written changes nothing.
            manifest_tmp = temporary_beside(mpath)
            manifest_tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            fsync_file(manifest_tmp)
            # Writers of models in this folder take turns from here: the deletions below must not take a
            # data file that another writer has renamed into place but not named in its manifest yet.
            with locked_directory(path.parent):
                previous = _named_data(path)
                os.replace(data_tmp, data)
                try:
                    fsync_directory(path.parent)  # the data file's name is on disk before a manifest names it
                    os.replace(manifest_tmp, mpath)  # the commit point
                except BaseException:
                    if data != previous:  # ours, and named by no manifest
                        data.unlink(missing_ok=True)
                    raise
                fsync_directory(path.parent)
                _delete_unnamed(path, data)
        except BaseException:
            data_tmp.unlink(missing_ok=True)
            if manifest_tmp is not None:
                manifest_tmp.unlink(missing_ok=True)
            raise
        # The data file now holds every update: an overlay of earlier updates beside it is obsolete (and
        # ignored until deleted: it names the previous data file's SHA-256).
        from .updates import overlay_path

        overlay_path(path).unlink(missing_ok=True)
        sweep_leftovers(overlay_path(path))  # and what killed updaters left of theirs
        self._set_base(sha256)
        return manifest

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = True, verify: bool = True) -> Recommender:
        """Load a model saved by :meth:`save`, checking its manifest (and SHA-256 when ``verify``).

        Only load files you built: joblib files can execute code when loaded.
        """
        return load_with_manifest(path, mmap=mmap, verify=verify)[0]

    @classmethod
    def _from_data(cls, path: Path, manifest: dict[str, Any], *, mmap: bool, verify: bool) -> Recommender:
        """The model in the data file that ``manifest`` (read and checked by :func:`read_manifest`) names;
        :class:`FileNotFoundError` if that file is gone."""
        expected = manifest["model_file"]
        data = data_path(path, manifest)
        if data.stat().st_size != expected["bytes"] or (verify and _sha256(data) != expected["sha256"]):
            raise ModelError(
                f"{data} does not match its manifest {manifest_path(path).name} (corrupt, truncated or "
                "tampered with): retrain it with `recommender train`"
            )
        try:
            state = joblib.load(data, mmap_mode="r" if mmap else None)
        except FileNotFoundError:
            raise
        except Exception as exc:  # a pickle can fail in many ways; all mean the file is unusable
            raise ModelError(f"cannot read model file {data}: {exc}") from None
        if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{data} is not a recommender model file of format {FORMAT_VERSION}")
        params = dict(state["params"])
        # Saved before these parameters existed: what the model was built and ranked with then.
        params.setdefault("time_weight", 1.0)
        params.setdefault("stopwords", "indonesian")
        params.setdefault("numbers", False)
        params.setdefault("topic_dims", None)
        model = cls(**params)
        model.analyzer_ = state["analyzer"]
        model.idf_ = state["idf"]
        model.matrix_ = csr_from_state(state["matrix"])
        model.index_t_ = csr_from_state(state["index_t"])
        for name, column in state["columns"].items():
            setattr(model, f"{name}_", StringColumn(**column))
        model.timestamps_ = state["timestamps"]
        model.time_origin_ = state.get("time_origin", time_origin(np.asarray(model.timestamps_)))
        model.topic_terms_ = state.get("topic_terms")
        model.topics_ = state.get("topics")
        model.corpus_ = state["corpus"]
        model.fitted_at_ = state["fitted_at"]
        model.updates_ = dict(state.get("updates", _no_updates()))
        # What lookups use comes from the data file; the manifest must say the same, or `info` (which shows
        # it) and hand edits would silently disagree with the model.
        facts = {
            "params": model.get_params(),
            "corpus": model.corpus_,
            "created_at": model.fitted_at_,
            "terms": int(model.idf_.shape[0]),
            "nonzeros": int(model.matrix_.nnz),
            "updates": model.updates_,
        }
        problem = disagreement(manifest, facts, data.name)
        if problem is not None:
            raise ModelError(
                f"manifest {manifest_path(path)}: {problem}: restore the manifest, or retrain with "
                "`recommender train` to change the model"
            )
        model._set_base(expected["sha256"])
        model._reset_lookups()
        from .updates import apply_overlay, read_overlay

        overlay = read_overlay(path, expected["sha256"])
        return model if overlay is None else apply_overlay(model, overlay)

    def __getstate__(self) -> dict[str, Any]:
        # Picklable, so a Dask job can ship the model to its workers: without the lock (it cannot be
        # pickled) and without the lookup tables (rebuilt on first use, so not worth the bytes).
        transient = ("_lock", "_vocabulary", "_row_of", "_title_id_array", "_title_keys", "_sections", "_search_index")
        return {name: value for name, value in self.__dict__.items() if name not in transient}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._reset_lookups()

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        fitted = f", {len(self.ids_)} articles" if hasattr(self, "matrix_") else ""
        return f"Recommender({params}{fitted})"


def read_manifest(model_path: str | Path) -> dict[str, Any]:
    """The manifest beside ``model_path``, checked against the manifest's JSON Schema; :class:`ModelError`
    saying what is wrong with it (the field, what it must be, what it is)."""
    return _read_manifest(Path(model_path))[0]


_Stamp = tuple[int, int, int, int]  # which file a manifest was: device, inode, modification time, size


def _stamp(stat: os.stat_result) -> _Stamp:
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _manifest_stamp(model_path: Path) -> _Stamp | None:
    """Which file the manifest beside ``model_path`` is now (``None``: none). A save commits by renaming a
    new manifest into place, so a save that commits changes it."""
    try:
        return _stamp(os.stat(manifest_path(model_path)))
    except OSError:
        return None


def _read_manifest(model_path: Path) -> tuple[dict[str, Any], _Stamp]:
    """:func:`read_manifest`, and which file it read."""
    mpath = manifest_path(model_path)
    if not mpath.is_file():
        if not model_path.exists() and not _data_files(model_path):
            raise ModelError(f"no model at {model_path}: train one first with `recommender train`")
        raise ModelError(f"no manifest {mpath.name} beside {model_path}: was it saved by recommender?")
    try:
        with open(mpath, "rb") as fh:
            stamp = _stamp(os.fstat(fh.fileno()))
            manifest = json.loads(fh.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"manifest {mpath} is unreadable ({exc}): retrain with `recommender train`") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"manifest {mpath} is not a JSON object: retrain with `recommender train`")
    # The version first: a manifest of another format is not expected to meet this format's schema.
    problem = schema_problem(manifest, VERSION_SCHEMA)
    if problem is None and manifest["format_version"] != FORMAT_VERSION:
        raise ModelError(
            f"{model_path} has model format {manifest['format_version']}, this version of recommender reads "
            f"format {FORMAT_VERSION}: retrain it with `recommender train`"
        )
    problem = problem or schema_problem(manifest, MANIFEST_SCHEMA)
    if problem is not None:
        raise ModelError(
            f"manifest {mpath}: field '{problem.field}' {problem.text}: retrain with `recommender train` or "
            "restore the file"
        )
    return manifest, stamp


def load_with_manifest(
    path: str | Path, *, mmap: bool = True, verify: bool = True
) -> tuple[Recommender, dict[str, Any]]:
    """:meth:`Recommender.load`, and the manifest it checked the model against (the one it loaded)."""
    path = Path(path)
    for _ in range(3):
        manifest, stamp = _read_manifest(path)
        try:
            model = Recommender._from_data(path, manifest, mmap=mmap, verify=verify)
        except FileNotFoundError:
            if _manifest_stamp(path) == stamp:  # still the manifest we read: its data file is really gone
                raise ModelError(
                    f"no model file {data_path(path, manifest)} beside its manifest {manifest_path(path).name}: "
                    "retrain with `recommender train`"
                ) from None
            continue
        # A save that committed meanwhile may have deleted the data file or the updates this manifest
        # names, before or while they were read: then start again from the new manifest. A save that
        # commits after this check leaves a model that was whole when loaded.
        if _manifest_stamp(path) == stamp:
            return model, manifest
    raise ModelError(f"{path} changed three times while it was being loaded (saves in quick succession): load it again")


def _named_data(path: Path) -> Path | None:
    """The data file the manifest beside ``path`` names now, or ``None`` if there is no usable manifest."""
    try:
        return data_path(path)
    except ModelError:
        return None


def _data_files(path: Path) -> list[Path]:
    """The files beside ``path`` named as its data files are (``model-<16 hex digits>.joblib``)."""
    own = re.compile(re.escape(path.stem) + _DATA_NAME.pattern)
    try:
        # A file so named may be another model's own path (model-0123456789abcdef.joblib with its
        # manifest beside it): not ours.
        return [p for p in path.parent.iterdir() if own.fullmatch(p.name) and not manifest_path(p).exists()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _delete_unnamed(path: Path, keep: Path) -> None:
    """Delete the data files of the model ``path`` other than ``keep``: those of earlier saves, and those
    of saves killed before their manifest named them; and the data file of an older layout (``path``)."""
    for entry in _data_files(path):
        if entry != keep:
            entry.unlink(missing_ok=True)
    if path != keep and path.is_file():
        path.unlink(missing_ok=True)


def _no_updates() -> dict[str, int]:
    return {"generation": 0, "added": 0, "edited": 0, "removed": 0, "terms_known": 0, "terms_unknown": 0}


_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _as_datetime(value: str | datetime) -> datetime:
    return datetime.fromtimestamp(timestamp_of(value), timezone.utc)


def csr_state(matrix: sp.csr_matrix) -> dict[str, Any]:
    return {"data": matrix.data, "indices": matrix.indices, "indptr": matrix.indptr, "shape": matrix.shape}


def csr_from_state(state: dict[str, Any]) -> sp.csr_matrix:
    # Built without copying, so memory-mapped arrays stay memory-mapped.
    matrix = sp.csr_matrix(state["shape"], dtype=np.float32)
    matrix.data, matrix.indices, matrix.indptr = state["data"], state["indices"], state["indptr"]
    return matrix
