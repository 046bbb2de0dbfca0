"""One article's list, or a draft's, from a fitted state: filters, the search kernel, the final choice.

Every function takes the :class:`~recommender.state.FittedState` to work on and reads nothing else of
a model, so a lookup running while an update swaps a model's state finishes on the state it started
with. The lookup tables a state builds on first use for lookups (the search index, the numbered
headlines, the section array) are defined here.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from .blend import DEPTH, cosines, gate, gate_pools
from .encoder import TextRecipe, default_encoder
from .errors import InvalidParameterError, RecommenderError
from .features import project_topics
from .neighbors import Index, pair_scores, search
from .options import Filters
from .ranking import (
    RankingOptions,
    Related,
    check_days,
    check_k,
    choose,
    choose_rows,
    explain,
    pool_size,
    title_key,
)
from .ruleindex import rule_index
from .rules import place_pins
from .state import TAG_SEPARATOR, FittedState, StringColumn, timestamp_of

__all__ = [
    "LABEL_COLUMNS",
    "Ranked",
    "TitleNumbers",
    "both",
    "choose_lists",
    "draft_vector",
    "filter_mask",
    "find_articles",
    "label_values",
    "pool_for",
    "ranked",
    "related",
    "related_to_text",
    "search_index",
    "semantic_on",
    "term_counts",
    "title_ids",
    "title_numbers",
    "unfloored",
    "vectorize",
]

_PLAIN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Each label filter's column of ArticleColumns.
LABEL_COLUMNS = {"section": "sections", "category": "categories", "tag": "tags", "source": "sources"}


@dataclass(frozen=True, slots=True)
class TitleNumbers:
    """Each row's headline as a number (equal numbers: the same headline), and the numbering itself."""

    keys: dict[str, int]
    ids: np.ndarray  # int64, one per row


def search_index(state: FittedState) -> Index:
    """The state's search index (the kernels' view of its matrices), built on first use."""
    return state.memo.get(
        "index", lambda: Index(state.matrix, state.index_t, state.timestamps, state.time_origin, state.topics)
    )


def title_numbers(state: FittedState) -> TitleNumbers:
    """The state's headlines numbered as first seen, built on first use; an update numbers only its new
    headlines (see :mod:`recommender.folding`)."""

    def build() -> TitleNumbers:
        keys: dict[str, int] = {}
        ids = [keys.setdefault(title_key(t), len(keys)) for t in state.articles.titles.to_list()]
        return TitleNumbers(keys, np.array(ids, dtype=np.int64))

    return state.memo.get("titles", build)


def title_ids(state: FittedState) -> np.ndarray:
    return title_numbers(state).ids


def warm(state: FittedState) -> None:
    """Build the lookup tables of ``state`` that lookups by id, drafts and updates use (a third of a second
    at 25k articles), so that the first of them does not wait for them."""
    state.rows()
    state.vocabulary()
    title_ids(state)
    search_index(state)


def term_counts(state: FittedState, title: str, body: str) -> tuple[np.ndarray, np.ndarray, int]:
    """A text's known terms as sorted columns and their counts, and how many term occurrences the
    vocabulary lacks."""
    vocab = state.vocabulary()
    # Each distinct term is looked up once: a lookup in the large vocabulary misses the CPU caches.
    counts = Counter(state.analyzer((title, body)))
    ids = np.fromiter(map(vocab.get, counts, itertools.repeat(-1)), dtype=np.int64, count=len(counts))
    tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
    known = np.flatnonzero(ids >= 0)
    order = known[np.argsort(ids[known])]  # columns sorted, as the kernels need
    return ids[order], tf[order], int(tf.sum() - tf[known].sum())


def vectorize(state: FittedState, title: str = "", body: str = "") -> sp.csr_matrix:
    """The L2-normalised TF-IDF row of a text that is not in the state (a draft)."""
    cols, tf, _ = term_counts(state, title, body)
    if state.sublinear_tf:
        tf = (1.0 + np.log(tf)).astype(np.float32)
    values = tf * state.idf[cols]
    norm = float(np.linalg.norm(values))
    if norm > 0:
        values /= norm
    # Index arrays already int32 and values float32: scipy neither converts nor copies (half the time).
    indptr = np.array([0, len(cols)], dtype=np.int32)
    return sp.csr_matrix(
        (values.astype(np.float32, copy=False), cols.astype(np.int32), indptr), shape=(1, len(state.idf))
    )


@functools.lru_cache(maxsize=64)
def unfloored(options: RankingOptions) -> RankingOptions:
    """``options`` without the score floor: after :func:`~recommender.blend.gate_pools` has applied it."""
    return replace(options, min_score=0.0, min_results=0)


def semantic_on(state: FittedState, options: RankingOptions) -> bool:
    """Whether ``state``'s lists are gated by meaning under ``options``: it has vectors, and they are used."""
    return options.semantic and state.vectors is not None and state.vectors.any_present


def pool_for(state: FittedState, k: int, options: RankingOptions) -> int:
    """Candidates the search gathers per query: those the final choice needs; with meaning on, at least
    :data:`~recommender.blend.DEPTH`, all of them gated by meaning before the choice."""
    pool = pool_size(int(k), options)
    return max(pool, DEPTH) if semantic_on(state, options) else pool


def draft_vector(state: FittedState, title: str, body: str) -> np.ndarray | None:
    """A draft's semantic vector, encoded now by the encoder the state's vectors were made with (90 ms for
    300 characters on one thread); ``None`` when the state has no vectors or that encoder is not installed."""
    vectors = state.vectors
    if vectors is None:
        return None
    try:
        encoder = default_encoder()
    except RecommenderError:
        return None
    if encoder.name != vectors.encoder:
        return None
    text = TextRecipe(vectors.lead).text(title, body)
    return encoder.encode([text])[0] if text else None


def choose_lists(
    state: FittedState,
    queries: np.ndarray | None,
    rows: np.ndarray,
    scores: np.ndarray,
    k: int,
    options: RankingOptions,
    ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The final lists of many queries from their candidates (``rows`` best first by words ``scores``,
    ``(q, pool)``): ``(indices, scores)``, each ``(q, k)``. With ``queries`` (their semantic
    vectors, ``(q, dim)``; a row of zeros: that query has none) the candidates above the score floor are
    gated by meaning and re-ranked, then chosen in that order (near-duplicates, diversity; see
    :mod:`recommender.blend`); otherwise the words decide alone."""
    matrix = search_index(state).matrix
    if queries is None or state.vectors is None:
        return choose_rows(rows, scores, k, matrix=matrix, title_ids=ids, options=options)
    has = np.any(queries != 0, axis=1)
    indices = np.full((rows.shape[0], k), -1, dtype=np.int64)
    chosen = np.zeros((rows.shape[0], k), dtype=np.float32)
    if not has.all():  # queries without a vector: the words alone, as a state without vectors ranks them
        indices[~has], chosen[~has] = choose_rows(
            rows[~has], scores[~has], k, matrix=matrix, title_ids=ids, options=options
        )
    if has.any():
        # The score floor applies to the words scores, where it was chosen (docs/quality.md): the gate
        # re-orders what the words found, it does not shorten the lists.
        pool, weighed, _ = gate_pools(
            state.vectors, queries[has], rows[has], scores[has], options.min_score, options.min_results
        )
        indices[has], chosen[has] = choose_rows(
            pool, weighed, k, matrix=matrix, title_ids=ids, options=unfloored(options)
        )
    return indices, chosen


def label_values(state: FittedState, name: str) -> dict[str, np.ndarray]:
    """The rows of each value of the label ``name`` (section, category, tag or source), by the value
    casefolded and stripped, as the filters and the editors' rules compare them; built on first use."""

    def build() -> dict[str, np.ndarray]:
        column: StringColumn = getattr(state.articles, LABEL_COLUMNS[name])
        found: dict[str, list[int]] = {}
        for row, value in enumerate(column.to_list()):
            if value is None:
                continue
            for one in value.split(TAG_SEPARATOR) if name == "tag" else (value,):
                key = one.strip().casefold()
                rows = found.setdefault(key, [])
                if not rows or rows[-1] != row:  # a tag given twice holds its row once
                    rows.append(row)
        return {key: np.array(rows, dtype=np.int64) for key, rows in found.items()}

    return state.memo.get(f"label:{name}", build)


def both(first: np.ndarray | None, second: np.ndarray | None) -> np.ndarray | None:
    """The rows two row masks both let through (``None``: every row)."""
    if first is None:
        return second
    return first if second is None else first & second


def filter_mask(state: FittedState, filters: Filters, within: tuple[float, float] | None = None) -> np.ndarray | None:
    """The rows ``filters`` let through (``None``: every row); ``within``: (a time, days) narrows the
    dates to that many days either side of the time."""
    mask: np.ndarray | None = None
    for name, value in filters.labels().items():
        # One lookup in a table built once per state: decoding every label per lookup would cost O(N).
        having = np.zeros(len(state), dtype=bool)
        having[label_values(state, name).get(value, _NO_ROWS)] = True  # value: casefolded by Filters
        mask = both(mask, having)
    rows = state.rows()
    excluded = [rows[i] for i in filters.exclude if i in rows]
    if excluded:
        mask = np.ones(len(state), dtype=bool) if mask is None else mask
        mask[excluded] = False
    after, before = filters.after, filters.before
    if after is not None or before is not None or within is not None:
        lo = timestamp_of(after) if after is not None else -np.inf
        hi = timestamp_of(before) if before is not None else np.inf
        if isinstance(before, str) and _PLAIN_DATE.fullmatch(before.strip()):
            hi += 86_400 - 1e-3  # "on or before 2019-09-30" includes that whole day
        starts, ends = after, before
        if within is not None:
            # In seconds, not datetimes: a window reaching past the calendar's ends (years 1 and 9999)
            # cannot overflow, it is open there.
            at, days = within
            if at - days * 86_400 > lo:
                lo, starts = at - days * 86_400, f"{days:g} days before the article"
            if at + days * 86_400 < hi:
                hi, ends = at + days * 86_400, f"{days:g} days after the article"
        if lo > hi:
            raise InvalidParameterError(f"the date window ends ({ends}) before it starts ({starts})")
        window = (state.timestamps >= lo) & (state.timestamps <= hi)  # unknown dates (NaN) fall out
        mask = both(mask, window)
    return mask


_NO_ROWS = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Ranked:
    """One list as rows of the state: ``rows`` best first (pins in place), their weighted ``scores``, words
    cosines ``similarities`` and semantic cosines ``semantic`` (``None``: not used), and the rule that
    pinned each pinned row."""

    rows: list[int]
    scores: list[float]
    similarities: list[float]
    pinned: dict[int, int]
    semantic: list[float | None]


def ranked(
    state: FittedState,
    query: sp.csr_matrix,
    k: int,
    options: RankingOptions,
    *,
    mask: np.ndarray | None = None,
    skip: int | None = None,
    query_ts: float = float("nan"),
    title: str | None = None,
    threads: int = 1,
    meaning: np.ndarray | None = None,
) -> Ranked:
    """The list of ``query`` (row ``skip`` of the state, or a draft titled ``title`` whose semantic vector is
    ``meaning``): the search under the editors' blocks and the filters' ``mask``, the final choice (gated by
    meaning when the state has vectors), then the pins the filters allow. The batch job computes the lists
    of rows with rules of their own through this too."""
    check_k(k)
    index = search_index(state)
    rules = rule_index(state)
    allowed = rules.allowed(skip, title)
    topics = None
    if state.topics is not None and state.topic_terms is not None:  # an article's own; a draft's from its terms
        topics = state.topics[[skip]] if skip is not None else project_topics(query, state.topic_terms)
    semantic = semantic_on(state, options)
    hits = search(
        index,
        query,
        pool_for(state, int(k), options),
        exclude=np.array([-1 if skip is None else skip]),
        query_ts=np.array([query_ts]),
        prior=options.prior(),
        mask=both(mask, allowed),
        query_topics=topics,
        threads=threads,
    )
    rows, scores, sims = hits.rows[0], hits.scores[0], hits.similarities[0]
    vector = None
    vectors = state.vectors
    if semantic and vectors is not None:
        if skip is None:
            vector = meaning
        elif vectors.present[skip]:
            vector = np.asarray(vectors.matrix[skip], dtype=np.float32)
    cos: dict[int, float | None] = {}
    if vector is not None and vectors is not None and np.any(vector != 0):
        pool, weighed, pool_cos = gate_pools(
            vectors, vector[None, :], hits.rows, hits.scores, options.min_score, options.min_results
        )
        chosen = choose(
            pool[0], weighed[0], int(k), matrix=index.matrix, title_ids=title_ids(state), options=unfloored(options)
        )
        sim_of = dict(zip(rows.tolist(), sims.tolist(), strict=True))
        gated_of = dict(zip(pool[0].tolist(), zip(weighed[0].tolist(), pool_cos[0].tolist(), strict=True), strict=True))
        values = {r: (gated_of[r][0], sim_of[r]) for r in chosen}
        cos = {r: (None if gated_of[r][1] != gated_of[r][1] else gated_of[r][1]) for r in chosen}
    else:
        vector = None
        chosen = choose(rows, scores, int(k), matrix=index.matrix, title_ids=title_ids(state), options=options)
        values = {int(r): (float(s), float(c)) for r, s, c in zip(rows.tolist(), scores, sims, strict=True) if r >= 0}
    pins = [
        p for p in rules.pins_of(skip) if (mask is None or mask[p[0]]) and _in_window(state, p[0], query_ts, options)
    ]
    if pins:
        chosen = place_pins(chosen, pins, int(k))
        pin_rows = np.array([p[0] for p in pins], dtype=np.int64)
        pin_scores, pin_sims = pair_scores(index, query, pin_rows, query_ts, options.prior(), topics)
        if vector is not None and state.vectors is not None:
            pin_cos = cosines(state.vectors, vector[None, :], pin_rows[None, :])[0]
            pin_scores = pin_scores * np.where(np.isnan(pin_cos), np.float32(1.0), gate(pin_cos))
            cos.update((int(r), None if c != c else float(c)) for r, c in zip(pin_rows, pin_cos.tolist(), strict=True))
        values.update((int(r), (float(s), float(c))) for r, s, c in zip(pin_rows, pin_scores, pin_sims, strict=True))
    pinned = {row: rule_id for row, _, rule_id in pins if row in chosen}
    return Ranked(
        chosen,
        [values[r][0] for r in chosen],
        [values[r][1] for r in chosen],
        pinned,
        [cos.get(r) for r in chosen],
    )


def _in_window(state: FittedState, row: int, query_ts: float, options: RankingOptions) -> bool:
    """Whether ``row`` passes the list's own time filters, as the kernel applies them to candidates: not newer
    than the query with ``newer`` off (undated passes), within ``within_days`` of a dated query (undated
    does not)."""
    ts = float(state.timestamps[row])
    if not options.newer and ts > query_ts:
        return False
    if options.within_days is not None and query_ts == query_ts:
        return abs(ts - query_ts) <= options.within_days * 86_400
    return True


def _top(
    state: FittedState,
    query: sp.csr_matrix,
    k: int,
    mask: np.ndarray | None,
    skip: int | None,
    query_ts: float,
    options: RankingOptions,
    with_why: bool,
    threads: int,
    title: str | None = None,
    meaning: np.ndarray | None = None,
) -> list[Related]:
    found = ranked(
        state, query, k, options, mask=mask, skip=skip, query_ts=query_ts, title=title, threads=threads, meaning=meaning
    )
    results = []
    for row, score, similarity, semantic in zip(
        found.rows, found.scores, found.similarities, found.semantic, strict=True
    ):
        why = explain(query, state.matrix[row], state.terms.__getitem__) if with_why else ()
        rule = found.pinned.get(row)
        results.append(
            Related(
                score=round(min(1.0, score), 6),
                similarity=round(min(1.0, similarity), 6),
                why=why,
                rule=None if rule is None or not with_why else f"pinned by rule {rule}",
                semantic=None if semantic is None else round(min(1.0, semantic), 6),
                **state.articles.article(int(row)),  # type: ignore[arg-type]
            )
        )
    return results


def related(
    state: FittedState,
    article_id: str,
    k: int,
    options: RankingOptions,
    *,
    within_days: float | None = None,
    with_why: bool = False,
    threads: int = 1,
) -> list[Related]:
    """The top-``k`` articles related to ``article_id`` (never itself), best first, among those
    ``options.only`` lets through; ``within_days`` of it when given (see
    :meth:`recommender.Recommender.related`)."""
    row = state.row_of(article_id)
    own = float(state.timestamps[row])
    mask = filter_mask(
        state,
        options.only,
        _window(own, within_days, f"article {article_id!r} has no publication date: within_days needs one"),
    )
    query = search_index(state).matrix[row]
    return _top(state, query, k, mask, row, own, options, with_why, threads)


def related_to_text(
    state: FittedState,
    title: str,
    body: str,
    k: int,
    options: RankingOptions,
    *,
    published: str | datetime | None = None,
    within_days: float | None = None,
    with_why: bool = False,
    threads: int = 1,
) -> list[Related]:
    """The top-``k`` articles related to a draft (see :meth:`recommender.Recommender.related_to_text`);
    ``within_days`` of its ``published`` time when given."""
    if not (title.strip() or body.strip()):
        raise InvalidParameterError("give a title or a body to find related articles for")
    own = timestamp_of(published)
    mask = filter_mask(
        state,
        options.only,
        _window(own, within_days, "the draft has no publication date: within_days needs its published time"),
    )
    query = vectorize(state, title, body)
    meaning = draft_vector(state, title, body) if semantic_on(state, options) else None
    return _top(state, query, k, mask, None, own, options, with_why, threads, title, meaning)


def _window(own: float, within_days: float | None, undated: str) -> tuple[float, float] | None:
    """(the list's own time, ``within_days``) for :func:`filter_mask`, or ``None`` without ``within_days``;
    ``undated``: the error when the list has no time of its own."""
    if within_days is None:
        return None
    days = check_days(within_days)
    if np.isnan(own):
        raise InvalidParameterError(undated)
    return own, days


def find_articles(state: FittedState, text: str, limit: int = 20) -> list[dict[str, str | None]]:
    """Articles to pick from by ``text``: the one with that id, then those whose headline holds every
    word of it (case-insensitive), newest first; at most ``limit``."""
    text = text.strip()
    if not text:
        return []
    found: list[int] = []
    row = state.rows().get(text)
    if row is not None:
        found.append(row)
    words = title_key(text).split()
    if words:
        keys = state.memo.get("title_keys", lambda: [title_key(t) for t in state.articles.titles.to_list()])
        matches = [i for i, key in enumerate(keys) if all(w in key for w in words) and i != row]
        stamps = np.nan_to_num(np.asarray(state.timestamps)[matches], nan=-np.inf)
        found += [matches[i] for i in np.argsort(-stamps, kind="stable")]
    return [state.articles.article(r) for r in found[: max(0, limit)]]
