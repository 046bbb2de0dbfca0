"""How good are the related lists? Our engine against reference systems, on the same corpus, in one run.

First, against graded relevance judgments (``query_id<TAB>doc_id<TAB>grade``, grades 0/1/2), on each
system's top 5 (self excluded): nDCG@5 (gain 2^grade − 1; a query whose judged grades are all 0 has no
nDCG and is left out of its mean), P@5 (grade ≥ 1), P@5 (grade 2), and judged@5, the share of the shown
results that have a judgment (an unjudged result counts as grade 0, so below about 0.95 the figures are a
lower bound).

Then proxies (k = 5 and 10):
- editor-link recall@k: per source article of the editors' "Baca juga" links, the share of its linked
  targets in the top k; averaged over sources;
- same-section precision@k: over a seeded random sample of articles with a section, the share of the
  top k in the query's own section (missing results count as misses);
- near-duplicate lists: the share of top-5 lists holding two near-identical articles (cosine ≥ 0.9
  between them in the engine's TF-IDF space, or the same title);
- coverage: the share of articles that appear in at least one other article's top-k list;
- time per query (milliseconds, mean over the measured queries).

Reference systems: scikit-learn ``TfidfVectorizer()`` defaults on title + body with cosine, a
More-Like-This style baseline (Lucene's defaults: each query's 25 most distinctive terms, ranked with BM25),
and the plain recipe to beat: ``TfidfVectorizer(sublinear_tf=True, min_df=2, max_df=0.3)`` on the title
three times and the body, cosine.
"""

from __future__ import annotations

import csv
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from .corpus import Article
from .errors import CorpusError, InvalidParameterError
from .model import Recommender
from .neighbors import all_pairs_top_k, available_threads, query_scores, top_k_indices
from .ranking import title_key
from .text import clean_text
from .vectorfile import vectors_for

__all__ = [
    "JUDGED_ENOUGH",
    "JUDGED_K",
    "RUBRIC",
    "EvaluationReport",
    "JudgedScores",
    "Judgments",
    "Packet",
    "QueryJudged",
    "Ranker",
    "SystemScores",
    "editor_recall",
    "evaluate",
    "judge",
    "judged_measures",
    "load_judgments",
    "load_links",
    "near_duplicate_rate",
    "section_precision",
    "unjudged_pairs",
    "write_packet",
]

NEAR_DUPLICATE_COSINE = 0.9
JUDGED_K = 5
JUDGED_ENOUGH = 0.95  # below this judged@5, the unjudged results (counted as 0) make the figures a lower bound
GRADES = (0, 1, 2)
JUDGMENTS_HEADER = ["query_id", "doc_id", "grade"]
PACKET_TEXT_CHARS = 2000

# The grades and notes of data/judgments/JUDGING.md (a test keeps the two the same), for judging packets.
RUBRIC = """\
Grades:
- 2 = same specific story: the same event, incident, case, match, announcement or storyline (a direct follow-up, \
another outlet's report of the same thing, or an earlier/later development of the same story).
- 1 = related topic: not the same story, but clearly on the same specific subject that a reader of the query would \
plausibly want next (same issue or policy debate, same competition/team/athlete, same celebrity, same company or \
product line, same kind of incident in the same area).
- 0 = not related: different subject; sharing only the broad section (e.g. both "sport" or both "national \
politics"), a common word, or a place name is NOT enough.

Notes: the texts were scraped and some linked words were stripped (you will see ", ," holes); judge from what is \
there. Do not favour any candidate because of its position in the list (the order is random). Judge every \
candidate; do not skip any.
"""


class Ranker(Protocol):
    """Anything that ranks the corpus's rows for one of its rows (never the row itself)."""

    name: str

    def top(self, row: int, k: int) -> list[int]:
        """The top ``k`` rows for ``row``, one query as a site would send it."""
        ...

    def top_all(self, k: int) -> Iterator[list[int]]:
        """Every row's top ``k``, in row order (a batch job)."""
        ...


@dataclass(frozen=True, slots=True)
class Judgments:
    """Graded judgments as query id → {doc id: grade}, read from ``path``.

    ``dropped`` counts the pairs left out because their query or doc was not in the corpus.
    """

    path: str
    grades: dict[str, dict[str, int]]
    dropped: int = 0

    @property
    def pairs(self) -> int:
        return sum(len(docs) for docs in self.grades.values())

    def within(self, known: Mapping[str, Any]) -> Judgments:
        """Only the pairs whose query and doc are both ``known`` ids (the rest counted as dropped)."""
        grades: dict[str, dict[str, int]] = {}
        for query, docs in self.grades.items():
            if query in known:
                kept = {doc: grade for doc, grade in docs.items() if doc in known}
                if kept:
                    grades[query] = kept
        kept_pairs = sum(len(docs) for docs in grades.values())
        return Judgments(self.path, grades, self.dropped + self.pairs - kept_pairs)


@dataclass(frozen=True, slots=True)
class QueryJudged:
    """One query's judged figures on a system's top 5 (``top``, best first)."""

    query_id: str
    ndcg_at_5: float | None  # None: every judged grade of the query is 0
    precision_at_5: float
    same_story_precision_at_5: float
    judged_at_5: float | None  # None: the system returned nothing
    top: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JudgedScores:
    """A system's judged figures: means over queries, and each query's own."""

    ndcg_at_5: float | None
    ndcg_standard_error: float | None
    ndcg_queries: int
    precision_at_5: float
    same_story_precision_at_5: float
    judged_at_5: float  # over every shown result of every query
    queries: list[QueryJudged]


@dataclass(frozen=True, slots=True)
class SystemScores:
    """One system's figures (``None`` where a measure was not computed)."""

    system: str
    recall_at_5: float | None
    recall_at_10: float | None
    section_precision_at_10: float | None
    near_duplicate_lists: float
    coverage: float
    ms_per_query: float
    judged: JudgedScores | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class EvaluationReport:
    """Every system's scores, plus how they were measured."""

    articles: int
    link_sources: int
    links: int
    section_queries: int
    seed: int
    judgments: str | None = None
    judged_queries: int = 0
    judged_pairs: int = 0
    judged_pairs_dropped: int = 0
    systems: list[SystemScores] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "articles": self.articles,
            "link_sources": self.link_sources,
            "links": self.links,
            "section_queries": self.section_queries,
            "seed": self.seed,
            "judgments": self.judgments,
            "judged_queries": self.judged_queries,
            "judged_pairs": self.judged_pairs,
            "judged_pairs_dropped": self.judged_pairs_dropped,
            "systems": [s.to_dict() for s in self.systems],
        }


def load_judgments(path: str | Path, known: Mapping[str, Any] | None = None) -> Judgments:
    """Graded judgments ``query_id<TAB>doc_id<TAB>grade`` (grades 0, 1, 2; a header line is allowed).

    With ``known`` (ids of the corpus), pairs whose query or doc is not in it are dropped and counted.
    """
    path = Path(path)
    grades: dict[str, dict[str, int]] = {}
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            for number, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
                if not row or (number == 1 and [c.strip() for c in row] == JUDGMENTS_HEADER):
                    continue
                if len(row) != 3 or not row[0].strip() or not row[1].strip():
                    raise CorpusError("expected three tab-separated fields: query_id, doc_id, grade", str(path), number)
                query, doc, grade = (c.strip() for c in row)
                if grade not in {str(g) for g in GRADES}:
                    raise CorpusError(f"grade must be 0, 1 or 2, got {grade!r}", str(path), number)
                docs = grades.setdefault(query, {})
                if doc in docs:
                    raise CorpusError(f"duplicate pair {query} {doc}", str(path), number)
                docs[doc] = int(grade)
    except FileNotFoundError:
        raise CorpusError("no such file", str(path)) from None
    except UnicodeDecodeError:
        raise CorpusError("undecodable bytes (the file is not UTF-8)", str(path)) from None
    judgments = Judgments(str(path), grades)
    return judgments if known is None else judgments.within(known)


def _dcg(grades: Sequence[int]) -> float:
    return sum((2**g - 1) / math.log2(rank + 1) for rank, g in enumerate(grades, start=1))


def judged_measures(ranked: Mapping[str, Sequence[str]], grades: Mapping[str, Mapping[str, int]]) -> JudgedScores:
    """nDCG@5, P@5 (grade ≥ 1), P@5 (grade 2) and judged@5 of the lists ``ranked[query]`` (best first).

    Every query of ``grades`` is scored. An unjudged result counts as grade 0; a list shorter than 5
    misses the rest (P@5 divides by 5). A query whose judged grades are all 0 has no ideal ranking,
    hence no nDCG: it is left out of the nDCG mean (and still counts in P@5).
    """
    if not grades:
        raise InvalidParameterError("no judged queries to evaluate")
    per_query = []
    shown = judged = 0
    for query, judged_docs in grades.items():
        top = tuple(ranked[query][:JUDGED_K])
        got = [judged_docs.get(doc, 0) for doc in top]
        ideal = _dcg(sorted(judged_docs.values(), reverse=True)[:JUDGED_K])
        hits = sum(1 for doc in top if doc in judged_docs)
        shown += len(top)
        judged += hits
        per_query.append(
            QueryJudged(
                query_id=query,
                ndcg_at_5=_dcg(got) / ideal if ideal > 0 else None,
                precision_at_5=sum(1 for g in got if g >= 1) / JUDGED_K,
                same_story_precision_at_5=sum(1 for g in got if g == 2) / JUDGED_K,
                judged_at_5=hits / len(top) if top else None,
                top=top,
            )
        )
    ndcgs = [q.ndcg_at_5 for q in per_query if q.ndcg_at_5 is not None]
    return JudgedScores(
        ndcg_at_5=float(np.mean(ndcgs)) if ndcgs else None,
        ndcg_standard_error=float(np.std(ndcgs, ddof=1) / math.sqrt(len(ndcgs))) if len(ndcgs) > 1 else None,
        ndcg_queries=len(ndcgs),
        precision_at_5=float(np.mean([q.precision_at_5 for q in per_query])),
        same_story_precision_at_5=float(np.mean([q.same_story_precision_at_5 for q in per_query])),
        judged_at_5=judged / shown if shown else 1.0,
        queries=per_query,
    )


def judge(ranker: Ranker, ids: Sequence[str], judgments: Judgments) -> JudgedScores:
    """``ranker``'s judged figures: its top 5 for each judged query (``ids[row]`` is row's article id)."""
    row_of = {article_id: i for i, article_id in enumerate(ids)}
    unknown = [query for query in judgments.grades if query not in row_of]
    if unknown:
        raise InvalidParameterError(f"{len(unknown)} judged queries are not in the corpus, e.g. {unknown[0]!r}")
    ranked = {query: [ids[r] for r in ranker.top(row_of[query], JUDGED_K)] for query in judgments.grades}
    return judged_measures(ranked, judgments.grades)


def load_links(path: str | Path, known: Mapping[str, int] | None = None) -> dict[str, set[str]]:
    """Editor links ``source_id<TAB>target_id`` (a header line is allowed) as source → targets.

    With ``known`` (id → row), links whose source or target is not in the corpus are dropped.
    """
    path = Path(path)
    links: dict[str, set[str]] = {}
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            for number, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
                if not row or (number == 1 and row[:2] == ["source_id", "target_id"]):
                    continue
                if len(row) != 2 or not row[0].strip() or not row[1].strip():
                    raise CorpusError("expected two tab-separated ids: source_id, target_id", str(path), number)
                source, target = row[0].strip(), row[1].strip()
                if known is None or (source in known and target in known):
                    links.setdefault(source, set()).add(target)
    except FileNotFoundError:
        raise CorpusError("no such file", str(path)) from None
    except UnicodeDecodeError:
        raise CorpusError("undecodable bytes (the file is not UTF-8)", str(path)) from None
    return links


def editor_recall(ranked: Mapping[Any, Sequence[Any]], links: Mapping[Any, set[Any]], k: int) -> float:
    """Mean over link sources of the share of their targets in the top ``k`` of ``ranked[source]``."""
    if not links:
        raise InvalidParameterError("no editor links to evaluate against")
    shares = [len(targets & set(ranked[source][:k])) / len(targets) for source, targets in links.items()]
    return float(np.mean(shares))


def section_precision(ranked: Sequence[Sequence[str | None]], own: Sequence[str | None], k: int) -> float:
    """Mean share of the top ``k`` sections (``ranked[i]``) equal to the query's section ``own[i]``."""
    if not ranked:
        raise InvalidParameterError("no queries with a section to evaluate")
    return float(
        np.mean([sum(1 for s in sections[:k] if s == mine) / k for sections, mine in zip(ranked, own, strict=True)])
    )


def near_duplicate_rate(
    lists: Sequence[Sequence[int]], matrix: sp.csr_matrix, titles: Sequence[str], size: int = 5
) -> float:
    """Share of lists whose first ``size`` items hold a pair with cosine ≥ 0.9 or the same title."""
    if not lists:
        return 0.0
    bad = 0
    for rows in lists:
        rows = list(rows[:size])
        if len(rows) < 2:
            continue
        names = [title_key(titles[r]) for r in rows]
        if len(set(names)) < len(names):
            bad += 1
            continue
        sims = (matrix[rows] @ matrix[rows].T).toarray()
        np.fill_diagonal(sims, 0.0)
        if (sims >= NEAR_DUPLICATE_COSINE).any():
            bad += 1
    return bad / len(lists)


class _ProductRanker:
    """Scores are ``queries[row] · index_t``: cosine for TF-IDF, BM25 for More-Like-This queries."""

    def __init__(self, name: str, queries: sp.csr_matrix, index_t: sp.csr_matrix) -> None:
        self.name = name
        self.queries = queries.astype(np.float32).tocsr()
        self.index_t = index_t.astype(np.float32).tocsr()

    def top(self, row: int, k: int) -> list[int]:
        scores = query_scores(self.queries[row], self.index_t)
        scores[row] = 0.0
        return top_k_indices(scores, k).tolist()

    def top_all(self, k: int) -> Iterator[list[int]]:
        for block in all_pairs_top_k(self.queries, self.index_t, k, threads=available_threads()):
            for row in block.indices.tolist():
                yield [j for j in row if j >= 0]


def _sklearn_defaults(texts: Sequence[str]) -> _ProductRanker:
    from sklearn.feature_extraction.text import TfidfVectorizer  # here: importing scikit-learn takes a second

    matrix = TfidfVectorizer(dtype=np.float32).fit_transform(texts)
    return _ProductRanker("sklearn defaults", matrix, matrix.T)


def _sklearn_tuned(titles: Sequence[str], bodies: Sequence[str]) -> _ProductRanker:
    """The plain recipe to beat (data/judgments/README.md): sublinear tf, ``max_df`` as the stopword list."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [(title + " ") * 3 + body for title, body in zip(titles, bodies, strict=True)]
    matrix = TfidfVectorizer(sublinear_tf=True, min_df=2, max_df=0.3, dtype=np.float32).fit_transform(texts)
    return _ProductRanker("sklearn tuned", matrix, matrix.T)


def _more_like_this(
    texts: Sequence[str], terms: int = 25, min_tf: int = 2, min_df: int = 5, k1: float = 1.2, b: float = 0.75
) -> _ProductRanker:
    """Lucene More-Like-This with its defaults: of the query's terms seen at least ``min_tf`` times and in at
    least ``min_df`` documents, the ``terms`` highest by tf × classic idf, as a query ranked by BM25."""
    from sklearn.feature_extraction.text import CountVectorizer

    counts = CountVectorizer(dtype=np.float32).fit_transform(texts).tocsr()
    n = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float32)
    bm25_idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
    classic_idf = 1.0 + np.log(n / (df + 1.0))
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    length_norm = k1 * (1.0 - b + b * lengths / max(float(lengths.mean()), 1.0))
    weights = counts.copy()
    weights.data = (
        weights.data * (k1 + 1.0) / (weights.data + np.repeat(length_norm, np.diff(weights.indptr)))
    ) * bm25_idf[weights.indices]
    rows, cols = [], []
    for row in range(n):
        start, stop = counts.indptr[row], counts.indptr[row + 1]
        terms_of_row, tf = counts.indices[start:stop], counts.data[start:stop]
        eligible = (tf >= min_tf) & (df[terms_of_row] >= min_df)
        terms_of_row, tf = terms_of_row[eligible], tf[eligible]
        chosen = terms_of_row[np.argsort(-(tf * classic_idf[terms_of_row]), kind="stable")[:terms]]
        rows.append(np.full(len(chosen), row))
        cols.append(chosen)
    row_idx, col_idx = np.concatenate(rows), np.concatenate(cols)
    queries = sp.csr_matrix((np.ones(len(row_idx), dtype=np.float32), (row_idx, col_idx)), shape=counts.shape)
    return _ProductRanker(f"MLT BM25 ({terms} terms)", queries, weights.T)


class _Ours:
    def __init__(self, model: Recommender, name: str = "recommender (ours)") -> None:
        self.name = name
        self.model = model
        self.ids = model.ids_.to_list()
        self.row_of = {str(article_id): i for i, article_id in enumerate(self.ids)}

    def top(self, row: int, k: int) -> list[int]:
        return [self.row_of[r.id] for r in self.model.related(str(self.ids[row]), k)]

    def top_all(self, k: int) -> Iterator[list[int]]:
        for block in self.model.all_related(k):
            for row in block.indices.tolist():
                yield [j for j in row if j >= 0]


def reference_rankers(articles: Sequence[Article]) -> list[Ranker]:
    """The reference systems, built on the same articles (rows in the same order)."""
    texts = [f"{a.title} {a.body}" for a in articles]
    return [
        _sklearn_defaults(texts),
        _more_like_this(texts),
        _sklearn_tuned([a.title for a in articles], [a.body for a in articles]),
    ]


def _score(
    ranker: Ranker,
    *,
    link_rows: dict[int, set[int]],
    section_rows: list[int],
    sections: list[str | None],
    titles: list[str],
    matrix: sp.csr_matrix,
    n: int,
    k: int,
) -> SystemScores:
    started = time.perf_counter()
    queries = 0
    link_lists = {}
    for row in link_rows:
        link_lists[row] = ranker.top(row, k)
        queries += 1
    section_lists = []
    for row in section_rows:
        section_lists.append(ranker.top(row, k))
        queries += 1
    elapsed = time.perf_counter() - started

    recall = {at: editor_recall(link_lists, link_rows, at) if link_rows else None for at in (5, 10)}
    precision = None
    if section_rows:
        precision = section_precision(
            [[sections[r] for r in lst] for lst in section_lists], [sections[q] for q in section_rows], k
        )
    covered: set[int] = set()
    for lst in ranker.top_all(k):
        covered.update(lst)
    all_lists = list(link_lists.values()) + section_lists
    return SystemScores(
        system=ranker.name,
        recall_at_5=recall[5],
        recall_at_10=recall[10],
        section_precision_at_10=precision,
        near_duplicate_lists=near_duplicate_rate(all_lists, matrix, titles),
        coverage=len(covered) / n,
        ms_per_query=1000.0 * elapsed / max(queries, 1),
    )


def evaluate(
    articles: Sequence[Article],
    links: Mapping[str, set[str]],
    judgments: Judgments | None = None,
    *,
    model: Recommender | None = None,
    baselines: bool = True,
    sample: int = 2000,
    seed: int = 1,
    k: int = 10,
    progress: Callable[[str], None] | None = None,
    vectors: str | Path | None = None,
    **params: Any,
) -> EvaluationReport:
    """Score our engine (``model``, or one trained here with ``params``) and the reference systems.

    ``articles`` must be the corpus the model was trained on (same ids, same order). Coverage is
    measured over every article's top-``k`` list (a full batch run) for every system. Judged pairs
    whose query or doc is not among ``articles`` are dropped (counted in the report); with no judged
    query left, the systems have no judged figures. ``vectors``: a vectors file the model trained here takes
    its articles' semantic vectors from (the bundled corpus's, say). A model with vectors is scored twice,
    with and without them.
    """
    if model is None:
        model = Recommender.train(articles, **params)
        if vectors is not None:
            model = model.with_vectors(vectors_for(vectors, articles))
    ids = [a.id for a in articles]
    if model.ids_.to_list() != ids:
        raise InvalidParameterError("the model was trained on other articles: evaluate it on its own corpus")
    row_of = {article_id: i for i, article_id in enumerate(ids)}
    link_rows = {row_of[s]: {row_of[t] for t in targets if t in row_of} for s, targets in links.items() if s in row_of}
    link_rows = {s: t for s, t in link_rows.items() if t}
    with_section = [i for i, a in enumerate(articles) if a.section]
    section_rows = random.Random(seed).sample(with_section, min(sample, len(with_section)))
    sections = [a.section for a in articles]
    titles = [a.title for a in articles]
    judged = judgments.within(row_of) if judgments is not None else None
    report = EvaluationReport(
        articles=len(articles),
        link_sources=len(link_rows),
        links=sum(len(t) for t in link_rows.values()),
        section_queries=len(section_rows),
        seed=seed,
        judgments=judged.path if judged is not None else None,
        judged_queries=len(judged.grades) if judged is not None else 0,
        judged_pairs=judged.pairs if judged is not None else 0,
        judged_pairs_dropped=judged.dropped if judged is not None else 0,
    )
    rankers: list[Ranker] = [_Ours(model)]
    if model.semantic and model.vectors_ is not None:  # side by side: the same model, words alone
        words = Recommender.from_state(model.fitted_state(), model.get_params() | {"semantic": False})
        rankers = [_Ours(model, "recommender (words + meaning)"), _Ours(words, "recommender (words alone)")]
    if baselines:
        if progress:
            progress("building reference systems")
        rankers += reference_rankers(articles)
    # Near-duplicates are judged for every system on the engine's own representation (stopwords out,
    # bigrams): plain TF-IDF keeps Indonesian function words, which lift different reports of one
    # event above 0.9 (e.g. two different Arsenal match stories at 0.96).
    yardstick = model.matrix_
    for ranker in rankers:
        if progress:
            progress(f"scoring {ranker.name}")
        scores = _score(
            ranker,
            link_rows=link_rows,
            section_rows=section_rows,
            sections=sections,
            titles=titles,
            matrix=yardstick,
            n=len(articles),
            k=k,
        )
        if judged is not None and judged.grades:
            scores = replace(scores, judged=judge(ranker, ids, judged))
        report.systems.append(scores)
    return report


def unjudged_pairs(report: EvaluationReport, judgments: Judgments) -> dict[str, list[str]]:
    """Every (query, candidate) of every system's judged top 5 that ``judgments`` does not grade.

    As query → candidates, each pair once, in order of first appearance.
    """
    pairs: dict[str, list[str]] = {}
    for system in report.systems:
        for query in system.judged.queries if system.judged is not None else []:
            graded = judgments.grades.get(query.query_id, {})
            todo = pairs.setdefault(query.query_id, [])
            todo += [doc for doc in query.top if doc not in graded and doc not in todo]
    return {query: docs for query, docs in pairs.items() if docs}


@dataclass(frozen=True, slots=True)
class Packet:
    """A judging packet: the Markdown to read, the TSV to fill in, and how many pairs they hold."""

    markdown: Path
    tsv: Path
    queries: int
    pairs: int


def _packet_text(text: str) -> str:
    text = clean_text(text)
    return text if len(text) <= PACKET_TEXT_CHARS else text[:PACKET_TEXT_CHARS].rstrip() + " […]"


def write_packet(
    path: str | Path, pairs: Mapping[str, Sequence[str]], articles: Sequence[Article], seed: int = 1
) -> Packet:
    """Write ``pairs`` (query → candidates) for human graders: ``path`` (Markdown) and a TSV beside it.

    The Markdown opens with the rubric, then each query's id, title and text and its candidates in a
    seeded random order, with nothing a grader could lean on (no scores, ranks or system names).
    The TSV (``path`` with suffix ``.tsv``) lists the pairs with an empty grade column, in
    ``load_judgments`` format.
    """
    markdown = Path(path)
    tsv = markdown.with_suffix(".tsv")
    if tsv == markdown:
        raise InvalidParameterError(f"the packet is Markdown (e.g. packet.md); {markdown} is where its TSV goes")
    by_id = {a.id: a for a in articles}
    lines = [
        "# Relevance judging packet",
        "",
        RUBRIC,
        f"Fill in the grade column of `{tsv.name}`, one line per pair.",
        "",
    ]
    rows = ["\t".join(JUDGMENTS_HEADER)]
    for query, candidates in pairs.items():
        shuffled = list(candidates)
        # Seeded per query: a query's order does not depend on which other queries are in the packet.
        random.Random(f"{seed}:{query}").shuffle(shuffled)
        article = by_id[query]
        lines += [f"## Query `{query}`: {article.title}", "", _packet_text(article.body), ""]
        for doc in shuffled:
            candidate = by_id[doc]
            lines += [f"### Candidate `{doc}`: {candidate.title}", "", _packet_text(candidate.body), ""]
            rows.append(f"{query}\t{doc}\t")
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text("\n".join(lines), encoding="utf-8")
    tsv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return Packet(markdown, tsv, len(pairs), len(rows) - 1)
