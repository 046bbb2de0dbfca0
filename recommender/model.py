"""The recommender: a facade over fitting, lookups, the all-pairs lists, updates and model files.

:class:`Recommender` holds the parameters (scikit-learn style) and one reference to its fitted state;
the work is done by the modules below it (:mod:`~recommender.lookups`, :mod:`~recommender.blocks`,
:mod:`~recommender.folding`, :mod:`~recommender.modelfile`), each taking that state.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import blocks, lookups, modelfile
from ._progress import ProgressCallback
from .corpus import Article
from .errors import InvalidParameterError, ModelError
from .features import Counts, count_terms, fit_topics, project_topics, tfidf
from .folding import Changes, fold
from .modelfile import FORMAT_VERSION, data_path, journal_path, manifest_path, overlay_path, read_manifest
from .neighbors import BLOCK_ROWS, Block, Plan, available_threads, time_origin
from .options import LookupOptions
from .ranking import RankingOptions, Related, check_k
from .rulebook import RuleBook, rules_path
from .ruleindex import rule_index
from .rules import Rules
from .state import ArticleColumns, FittedState, SemanticVectors, StringColumn, UpdateCounts, timestamp_of
from .text import Analyzer, stopword_list
from .vectorfile import read_vectors, vectors_path

__all__ = [
    "FORMAT_VERSION",
    "ModelFiles",
    "Recommender",
    "Related",
    "StringColumn",
    "data_path",
    "load_with_manifest",
    "manifest_path",
    "read_manifest",
]

ARTICLES_PER_TOPIC = 100  # the topic gate's space has at most len(corpus) // 100 dimensions


def _corpus_checksum(articles: Sequence[Article]) -> str:
    digest = hashlib.sha256()
    for a in articles:
        digest.update(f"{a.id}\x1f{a.title}\x1f{a.body}\x1e".encode())
    return digest.hexdigest()


def _fitted_attribute(name: str, doc: str) -> property:
    """A read-only view of one field of the fitted state, as ``<name>_`` (scikit-learn style)."""
    return property(lambda self: getattr(self.fitted_state(), name), doc=doc)


def _column_attribute(name: str) -> property:
    return property(lambda self: getattr(self.fitted_state().articles, name), doc=f"Every article's {name}.")


class Recommender:
    """Related articles by TF-IDF cosine similarity over Indonesian-analysed title and body.

    Parameters are stored as given (scikit-learn style); what ``fit`` learns is one immutable
    :class:`~recommender.state.FittedState`, ``state_``, which an update replaces in one assignment: a
    ``Recommender`` is safe to share between threads, lookups and updates alike (a lookup works on the
    state it started with). The fitted arrays are readable as attributes ending in ``_`` (``matrix_``, ...).

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
    semantic: gate each score by the semantic cosine of the two articles when the model has vectors
        (``recommender embed``; see :mod:`recommender.blend`); ``False``: words alone.
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
        semantic: bool = True,
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
        self.semantic = semantic
        self.n_jobs = n_jobs
        # Writers (add, remove, save) take turns, so none loses another's change; lookups never wait.
        self._writing = threading.Lock()

    # --- parameters ------------------------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters that shape the model (``n_jobs`` only affects speed), read from the
        constructor's signature as scikit-learn does: a new parameter is saved without being listed again."""
        params = {name: getattr(self, name) for name in _PARAMS}
        params["ngram_range"] = list(params["ngram_range"])  # as JSON keeps it
        return params

    def check_params(self) -> Recommender:
        """Check the parameters (as :meth:`fit` does first), so a bad one fails before a corpus is read;
        :class:`InvalidParameterError` naming it. Returns this recommender."""
        if isinstance(self.min_df, float) and not 0.0 < self.min_df < 1.0:
            raise InvalidParameterError(f"min_df as a fraction must be between 0 and 1, got {self.min_df}")
        if isinstance(self.min_df, int) and self.min_df < 1:
            raise InvalidParameterError(f"min_df as a count must be 1 or more, got {self.min_df}")
        if not 0.0 < self.max_df <= 1.0:
            raise InvalidParameterError(f"max_df must be a fraction in (0, 1], got {self.max_df}")
        if not isinstance(self.semantic, bool):
            raise InvalidParameterError(f"semantic must be True or False, got {self.semantic!r}")
        if self.topic_dims is not None and (
            isinstance(self.topic_dims, bool) or not isinstance(self.topic_dims, int) or self.topic_dims < 1
        ):
            raise InvalidParameterError(
                f"topic_dims must be a whole number of 1 or more (or None), got {self.topic_dims}"
            )
        self.ranking_options()
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
        self.state_ = self._fit_state(counts, docs, analyzer)
        return self

    def fit_counts(self, counts: Counts, articles: Iterable[Article]) -> Recommender:
        """Fit on terms counted elsewhere: ``counts.matrix[i]`` belongs to ``articles[i]``, whose title and
        body are not analysed again (a corpus in term space, as the benchmarks generate). Drafts given to
        :meth:`related_to_text` still go through this model's analyzer."""
        self.check_params()
        docs = self._check_articles(articles)
        if counts.matrix.shape[0] != len(docs):
            raise InvalidParameterError(f"counts have {counts.matrix.shape[0]} rows for {len(docs)} articles")
        self.state_ = self._fit_state(counts, docs, self._analyzer())
        return self

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

    def _fit_state(self, counts: Counts, docs: list[Article], analyzer: Analyzer) -> FittedState:
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
        # At most one topic dimension per 100 articles: a small corpus has few topics to tell apart, and a
        # fine-grained space would gate away most of its pairs.
        dims = None if self.topic_dims is None else min(self.topic_dims, len(docs) // ARTICLES_PER_TOPIC)
        topic_terms = fit_topics(matrix, dims) if dims and dims >= 2 else None
        timestamps = np.array([timestamp_of(a.published) for a in docs], dtype=np.float64)
        n = len(docs)
        return FittedState(
            analyzer=analyzer,
            terms=StringColumn.from_values(terms_by_col),
            idf=idf,
            sublinear_tf=self.sublinear_tf,
            matrix=matrix,  # columns sorted within rows: the kernels merge rows by column
            index_t=matrix.T.tocsr(),
            topic_terms=topic_terms,
            topics=None if topic_terms is None else project_topics(matrix, topic_terms),
            articles=ArticleColumns.from_articles(docs),
            timestamps=timestamps,
            time_origin=time_origin(timestamps),
            corpus={
                "articles": n,
                "checksum": _corpus_checksum(docs),
                "sections": dict(Counter(a.section or "(none)" for a in docs).most_common()),
                "sources": dict(Counter(a.source or "(none)" for a in docs).most_common()),
                "empty_bodies": sum(1 for a in docs if not a.body.strip()),
            },
            fitted_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            updates=UpdateCounts(),
            base_rows=np.arange(n, dtype=np.int64),
            base_size=n,
            base_sha256=None,
        )

    # --- the fitted state ------------------------------------------------------------------------

    def fitted_state(self) -> FittedState:
        """The fitted state (read once per operation: an update may replace it at any time);
        :class:`ModelError` if this recommender is not fitted."""
        state: FittedState | None = self.__dict__.get("state_")
        if state is None:
            raise ModelError("this Recommender is not fitted yet: call fit(articles) or Recommender.load(path)")
        return state

    analyzer_ = _fitted_attribute("analyzer", "The text analyzer the model was fitted with.")
    terms_ = _fitted_attribute("terms", "Each column's term.")
    idf_ = _fitted_attribute("idf", "Each term's IDF weight.")
    matrix_ = _fitted_attribute("matrix", "The articles' L2-normalised TF-IDF rows.")
    index_t_ = _fitted_attribute("index_t", "The same rows, term-major.")
    topic_terms_ = _fitted_attribute("topic_terms", "The topic gate's space (``None``: off).")
    topics_ = _fitted_attribute("topics", "Each article's place in the topic space (``None``: off).")
    timestamps_ = _fitted_attribute("timestamps", "Publication times in seconds (NaN: undated).")
    time_origin_ = _fitted_attribute("time_origin", "The time the kernels count days from.")
    corpus_ = _fitted_attribute("corpus", "Facts about the fitted corpus, as the manifest records them.")
    fitted_at_ = _fitted_attribute("fitted_at", "When the model was fitted (ISO 8601, UTC).")
    ids_ = _column_attribute("ids")
    titles_ = _column_attribute("titles")
    urls_ = _column_attribute("urls")
    published_ = _column_attribute("published")
    sections_ = _column_attribute("sections")

    @property
    def updates_(self) -> dict[str, int]:
        """What was folded in since the fit: ``generation`` (batches), ``added``, ``edited``, ``removed``, ..."""
        return self.fitted_state().updates.to_dict()

    def ranking_options(self, options: LookupOptions | None = None, /, **changes: Any) -> RankingOptions:
        """How a list is chosen: this model's time prior, near-duplicate threshold and meaning, with a
        lookup's ``options`` (or their ``changes`` to the defaults); :class:`InvalidParameterError` naming a
        bad one."""
        lookup = LookupOptions.of(options, **changes)
        return RankingOptions(
            half_life_days=self.half_life_days,
            time_weight=self.time_weight,
            dedup=self.dedup,
            semantic=self.semantic,
            newer=lookup.newer,
            within_days=lookup.within_days,
            diversity=lookup.diversity,
            min_score=lookup.min_score,
            min_results=lookup.min_results,
            only=lookup.filters(),
        )

    # --- incremental updates ---------------------------------------------------------------------

    def add(self, articles: Iterable[Article]) -> Changes:
        """Fold ``articles`` into this model with its vocabulary and IDF fixed (a new fit refits them). An
        id already in the model is an edit: its old version is replaced. Lists change in memory only: to
        update a saved model and its store together, use :class:`~recommender.Updater`."""
        with self._writing:
            new, delta = fold(self.fitted_state(), articles, ())
            self.state_ = new  # one reference: a lookup running now finishes on the state it started with
        return delta.changes

    def remove(self, ids: Iterable[str]) -> Changes:
        """Take the articles with these ``ids`` out of this model; :class:`UnknownArticleError` (and nothing
        removed) if any is not in it."""
        with self._writing:
            new, delta = fold(self.fitted_state(), (), ids)
            self.state_ = new
        return delta.changes

    # --- lookups ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.fitted_state())

    def __contains__(self, article_id: object) -> bool:
        return isinstance(article_id, str) and article_id in self.fitted_state().rows()

    def row_of(self, article_id: str) -> int:
        """The row of ``article_id``; :class:`UnknownArticleError` if the model lacks it."""
        return self.fitted_state().row_of(article_id)

    def article(self, row: int) -> dict[str, str | None]:
        """The stored fields of the article at ``row``."""
        return self.fitted_state().articles.article(row)

    def vectorize(self, title: str = "", body: str = "") -> sp.csr_matrix:
        """The L2-normalised TF-IDF row of a text that is not in the model (a draft)."""
        return lookups.vectorize(self.fitted_state(), title, body)

    def related(
        self, article_id: str, k: int = 5, options: LookupOptions | None = None, **changes: Any
    ) -> list[Related]:
        """The top-``k`` articles related to ``article_id`` (never itself), best first.

        ``options`` (a :class:`~recommender.LookupOptions`), or its fields as keywords (``section=``,
        ``tag=``, ``within_days=``, ``diversity=``, ``explain=``, ...; over ``options`` when both are given):
        the filters (only a section, category, tag or source; not the ids in ``exclude``; published
        between ``after`` and ``before``, or within ``within_days`` of the article; with ``newer=False``
        none published after it), how the list is chosen (``diversity``, ``min_score``, ``min_results``),
        and ``explain`` (each result's shared terms in ``why``).
        """
        lookup = LookupOptions.of(options, **changes)
        return lookups.related(
            self.fitted_state(),
            article_id,
            k,
            replace(self.ranking_options(lookup), within_days=None),  # a window of the article's date: a filter
            within_days=lookup.within_days,
            with_why=lookup.explain,
            threads=available_threads(self.n_jobs),
        )

    def blocked(
        self, article_id: str, k: int = 5, options: LookupOptions | None = None, **changes: Any
    ) -> list[tuple[Related, int]]:
        """The articles the editors' rules keep out of ``article_id``'s list: those its top ``k`` would
        hold with no rule (``options`` as :meth:`related` takes them), each with the rule that blocks it."""
        state = self.fitted_state()
        rules = rule_index(state)
        if not rules:
            return []
        lookup = replace(LookupOptions.of(options, **changes), explain=False)
        free = Recommender.from_state(state.with_rules(Rules()), self.get_params()).related(article_id, k, lookup)
        row, rows = state.row_of(article_id), state.rows()
        found = [(r, rules.blocking_rule(row, rows[r.id])) for r in free]
        return [(r, rule) for r, rule in found if rule is not None]

    def related_to_text(
        self,
        *,
        title: str = "",
        body: str = "",
        k: int = 5,
        published: str | datetime | None = None,
        options: LookupOptions | None = None,
        **changes: Any,
    ) -> list[Related]:
        """The top-``k`` articles related to a draft's ``title`` and ``body`` (not in the model).

        The time prior, and ``within_days``, apply only when the draft's ``published`` time is given.
        ``options`` as in :meth:`related`.
        """
        lookup = LookupOptions.of(options, **changes)
        return lookups.related_to_text(
            self.fitted_state(),
            title,
            body,
            k,
            replace(self.ranking_options(lookup), within_days=None),
            published=published,
            within_days=lookup.within_days,
            with_why=lookup.explain,
            threads=available_threads(self.n_jobs),
        )

    # --- every list at once ----------------------------------------------------------------------

    def plan_all_related(self, mode: str = "auto") -> Plan:
        """How :meth:`all_related` would run: exact, or approximate past a size (``mode`` "auto", "exact" or
        "approx"), with its estimated cost in multiply-adds."""
        return blocks.plan_lists(self.fitted_state(), mode)

    def all_related(
        self,
        k: int = 10,
        options: LookupOptions | None = None,
        *,
        progress: ProgressCallback | None = None,
        block_rows: int = BLOCK_ROWS,
        mode: str | Plan = "auto",
        **changes: Any,
    ) -> Iterator[Block]:
        """Every article's top-``k`` list, in blocks of ``block_rows`` rows; in exact mode the same lists as
        :meth:`related` gives with the same ``options`` (an undated article's list ignores ``within_days``;
        ``explain`` is for one list). ``mode``: see :meth:`plan_all_related`. ``progress(done, total)``
        counts multiply-adds, estimated up front."""
        state = self.fitted_state()
        check_k(k)
        ranking = self.batch_options(options, **changes)
        chosen = mode if isinstance(mode, Plan) else blocks.plan_lists(state, mode)
        return blocks.all_related(
            state,
            k,
            ranking,
            approx=chosen.approx,
            progress=progress,
            block_rows=block_rows,
            threads=available_threads(self.n_jobs),
        )

    def batch_options(self, options: LookupOptions | None = None, /, **changes: Any) -> RankingOptions:
        """:meth:`ranking_options` for every list at once: ``explain`` is refused (it is one list's)."""
        lookup = LookupOptions.of(options, **changes)
        if lookup.explain:
            raise InvalidParameterError("explain is for one article's list: every list at once has no 'why'")
        return self.ranking_options(lookup)

    def estimate_recall(
        self,
        k: int = 10,
        options: LookupOptions | None = None,
        *,
        mode: str | Plan = "auto",
        sample: int = 200,
        seed: int = 0,
        **changes: Any,
    ) -> float:
        """The share of exact top-``k`` lists that ``mode`` finds too, over ``sample`` random articles
        (1.0 in exact mode). ``options`` as in :meth:`all_related`."""
        state = self.fitted_state()
        chosen = mode if isinstance(mode, Plan) else blocks.plan_lists(state, mode)
        return blocks.estimate_recall(
            state,
            k,
            self.batch_options(options, **changes),
            chosen.approx,
            sample=sample,
            seed=seed,
            threads=available_threads(self.n_jobs),
        )

    # --- persistence -----------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """Everything about this model that fits in a small JSON file (no model file hash yet)."""
        return modelfile.manifest(self.fitted_state(), self.get_params())

    def save(self, path: str | Path, *, carry_since: float | None = None) -> dict[str, Any]:
        """Save as ``path``: a new data file beside it, then its manifest, which commits the save (see
        :mod:`recommender.modelfile`); returns the manifest. Whenever the process dies, ``path`` loads as
        the previous model or as this one.

        ``carry_since``: a ``time.time()`` taken before the corpus was read. Articles added, edited or
        removed at ``path`` since then (by ``recommender add`` or ``serve``, while this model was fitted)
        are folded into this one, so a retrain loses none of them."""
        with self._writing:
            state, saved = modelfile.save(self.fitted_state(), self.get_params(), path, carry_since=carry_since)
            self.state_ = state
        return saved

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = True, verify: bool = True) -> Recommender:
        """Load a model saved by :meth:`save`, checking its manifest (and SHA-256 when ``verify``).

        Only load files you built: joblib files can execute code when loaded.
        """
        return load_with_manifest(path, mmap=mmap, verify=verify)[0]

    @classmethod
    def from_state(cls, state: FittedState, params: dict[str, Any]) -> Recommender:
        """A recommender with ``params`` (as :meth:`get_params` gives them) over a fitted ``state``."""
        model = cls(**params)
        model.state_ = state
        return model

    def with_vectors(self, vectors: SemanticVectors | None) -> Recommender:
        """This model (the same parameters and fit) with ``vectors``, one per article in row order
        (:func:`~recommender.vectorfile.vectors_for` reads them; ``None``: words alone). A loaded model
        already holds those of the vectors file beside it."""
        return Recommender.from_state(self.fitted_state().with_vectors(vectors), self.get_params())

    @property
    def vectors_(self) -> SemanticVectors | None:
        """Each article's semantic vector and which have one (``None``: the model has none)."""
        return self.fitted_state().vectors

    def __getstate__(self) -> dict[str, Any]:
        # Picklable, so a job can ship a model to other processes: without its lock, which cannot be pickled.
        return {name: value for name, value in self.__dict__.items() if name != "_writing"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._writing = threading.Lock()

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        state = self.__dict__.get("state_")
        fitted = f", {len(state)} articles" if state is not None else ""
        return f"Recommender({params}{fitted})"


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """The files that make up the model saved at ``path``: the one place that names them all. The manifest
    (the commit point) names its data file; the overlay and journal hold the updates made since the fit;
    the rules and vectors files sit beside it. ``watched``: those whose change means the model a reader
    holds is out of date (the manifest, the overlay of updates, the rules), in that order."""

    path: Path
    manifest: Path
    overlay: Path
    journal: Path
    rules: Path
    vectors: Path

    @classmethod
    def of(cls, path: str | Path) -> ModelFiles:
        path = Path(path)
        return cls(
            path, manifest_path(path), overlay_path(path), journal_path(path), rules_path(path), vectors_path(path)
        )

    @property
    def watched(self) -> tuple[Path, Path, Path]:
        return (self.manifest, self.overlay, self.rules)

    def data(self) -> Path | None:
        """The data file the manifest names now (``None``: no model saved there)."""
        return data_path(self.path) if self.manifest.is_file() else None


# The parameters that shape a model: every keyword of the constructor but n_jobs, in its order.
_PARAMS = tuple(name for name in inspect.signature(Recommender.__init__).parameters if name not in ("self", "n_jobs"))


def load_with_manifest(
    path: str | Path, *, mmap: bool = True, verify: bool = True
) -> tuple[Recommender, dict[str, Any]]:
    """:meth:`Recommender.load`, and the manifest it checked the model against (the one it loaded). The
    model applies the editors' rules stored beside it (:class:`~recommender.rulebook.RuleBook`) and holds the
    semantic vectors of its articles from the vectors file beside it (:mod:`~recommender.vectorfile`)."""
    loaded = modelfile.load(path, mmap=mmap, verify=verify)
    state = loaded.state
    rules = RuleBook.of_model(path).rules()
    if rules:
        state = state.with_rules(rules)
    vectors = read_vectors(path, state.articles.ids.to_list())  # type: ignore[arg-type]
    if vectors is not None:
        state = state.with_vectors(vectors)
    return Recommender.from_state(state, loaded.params), loaded.manifest
