"""The fitted state: what a fit learns (and updates fold in), as one immutable unit.

Lookups, the batch job, Dask workers and updates all take a :class:`FittedState`; none changes one. An
update builds a new state, and a :class:`~recommender.Recommender` swaps its reference to it in one
assignment, so a lookup that read the reference once works on one consistent state to its end.

Tables derived from a state on first use (the id → row table, the vocabulary, the search index) live in
its :class:`Memo`: built once, even under threads, and never changed after.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import scipy.sparse as sp

from ._sparse import row_ranges
from .corpus import Article, parse_published
from .errors import InvalidParameterError, UnknownArticleError
from .rules import Rules
from .text import Analyzer

__all__ = [
    "TAG_SEPARATOR",
    "ArticleColumns",
    "FittedState",
    "Memo",
    "SemanticVectors",
    "StringColumn",
    "UpdateCounts",
    "VectorSource",
    "timestamp_of",
]

_T = TypeVar("_T")

# An article's tags in one string column.
TAG_SEPARATOR = "\x1f"


def timestamp_of(value: str | datetime | None) -> float:
    """Seconds since the epoch of a publication time (a naive one is UTC); NaN for ``None``."""
    if value is None:
        return float("nan")
    try:
        moment = parse_published(value) if isinstance(value, str) else value
    except ValueError as exc:
        raise InvalidParameterError(str(exc).replace("in 'published' ", "")) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


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


@dataclass(frozen=True, slots=True)
class ArticleColumns:
    """The stored fields of every article, one column each, row for row with the matrix: the one place
    that knows which fields a list shows (a store's ``articles`` table has the same, in this order) and
    which labels rules can match (source, category, tags)."""

    ids: StringColumn
    titles: StringColumn
    urls: StringColumn
    published: StringColumn
    sections: StringColumn
    images: StringColumn
    sources: StringColumn
    categories: StringColumn
    tags: StringColumn

    # Each column's name in a saved model, and the field of an article it holds: first those a list
    # shows, then the labels only rules read.
    FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ids", "id"),
        ("titles", "title"),
        ("urls", "url"),
        ("published", "published"),
        ("sections", "section"),
        ("images", "image"),
    )
    LABELS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("sources", "source"),
        ("categories", "category"),
        ("tags", "tags"),
    )

    @classmethod
    def from_articles(cls, articles: Sequence[Article]) -> ArticleColumns:
        def value(article: Article, attribute: str) -> str | None:
            found = getattr(article, attribute)
            if attribute == "tags":  # several values in one string
                return TAG_SEPARATOR.join(found) if found else None
            return str(found) if found is not None else None

        return cls(*(StringColumn.from_values([value(a, attr) for a in articles]) for _, attr in cls.stored()))

    @classmethod
    def stored(cls) -> tuple[tuple[str, str], ...]:
        return cls.FIELDS + cls.LABELS

    @classmethod
    def from_state(cls, columns: dict[str, dict[str, np.ndarray]]) -> ArticleColumns:
        """The columns saved as :meth:`state` (extra entries, such as a model's terms, ignored; labels
        missing from a model saved before they were kept read as absent)."""
        n = int(np.asarray(columns["ids"]["offsets"]).shape[0]) - 1
        absent = StringColumn(np.zeros(0, np.uint8), np.zeros(n + 1, np.int64), np.zeros(n, bool))
        return cls(*(StringColumn(**columns[name]) if name in columns else absent for name, _ in cls.stored()))

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        return {name: getattr(self, name).state() for name, _ in self.stored()}

    def columns(self) -> tuple[StringColumn, ...]:
        """The columns a list shows, in :attr:`FIELDS` order."""
        return tuple(getattr(self, name) for name, _ in self.FIELDS)

    def all_columns(self) -> tuple[StringColumn, ...]:
        return tuple(getattr(self, name) for name, _ in self.stored())

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray) -> ArticleColumns:
        return ArticleColumns(*(c.take(rows) for c in self.all_columns()))

    def extend(self, other: ArticleColumns) -> ArticleColumns:
        return ArticleColumns(*(c.extend(o) for c, o in zip(self.all_columns(), other.all_columns(), strict=True)))

    def article(self, row: int) -> dict[str, str | None]:
        """The stored fields of the article at ``row``, by field name (``id``, ``title``, ..., ``image``)."""
        return {attribute: getattr(self, name)[row] for name, attribute in self.FIELDS}

    def values(self, rows: np.ndarray | None = None) -> Iterator[tuple[str | None, ...]]:
        """Each row's fields as a tuple in :attr:`FIELDS` order (every row when ``rows`` is ``None``)."""
        if rows is None or rows.size == len(self):  # every row: decode each column in one go
            yield from zip(*(c.to_list() for c in self.columns()), strict=True)
        else:
            for r in rows.tolist():
                yield tuple(c[r] for c in self.columns())


@dataclass(frozen=True, slots=True)
class UpdateCounts:
    """What has been folded into a model since its fit: batches (``generation``), articles added, edited
    and removed, and the added articles' term occurrences inside and outside the fitted vocabulary."""

    generation: int = 0
    added: int = 0
    edited: int = 0
    removed: int = 0
    terms_known: int = 0
    terms_unknown: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, int]) -> UpdateCounts:
        return cls(**{f.name: int(values.get(f.name, 0)) for f in fields(cls)})

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def after(self, *, added: int, edited: int, removed: int, known: int, unknown: int) -> UpdateCounts:
        """The counts after one more batch."""
        return UpdateCounts(
            self.generation + 1,
            self.added + added,
            self.edited + edited,
            self.removed + removed,
            self.terms_known + known,
            self.terms_unknown + unknown,
        )


class VectorSource(Protocol):
    """Where the semantic vectors of articles are found by their text (the vectors file beside a model)."""

    def vectors_for(self, articles: Sequence[Article]) -> tuple[np.ndarray, np.ndarray]:
        """The vector of each article's text as float16 rows (zeros where there is none), and which have one."""
        ...


@dataclass(frozen=True, eq=False)
class SemanticVectors:
    """Each row's semantic vector (``matrix``: float16, unit length, zeros where absent), which rows have
    one (``present``), the ``encoder`` and text recipe (``lead``: the body's characters after the title) they
    were made with, and the ``source`` an update finds its new articles' vectors in (``None``: nowhere, they
    go without)."""

    matrix: np.ndarray
    present: np.ndarray
    encoder: str
    lead: int
    source: VectorSource | None = None

    def __len__(self) -> int:
        return int(self.present.shape[0])

    @functools.cached_property
    def any_present(self) -> bool:
        """Whether any row has a vector (asked by every lookup: found once)."""
        return bool(np.any(self.present))

    @property
    def missing(self) -> int:
        """How many rows have no vector."""
        return int(self.present.size - np.count_nonzero(self.present))

    def take(self, rows: np.ndarray | None) -> SemanticVectors:
        """The vectors of ``rows`` (all when ``None``), in that order."""
        if rows is None:
            return self
        return replace(self, matrix=self.matrix[rows], present=self.present[rows])

    def extend(self, articles: Sequence[Article]) -> SemanticVectors:
        """These rows followed by ``articles``' (from :attr:`source`; without a vector where it has none)."""
        if self.source is not None and articles:
            matrix, present = self.source.vectors_for(articles)
        else:
            matrix = np.zeros((len(articles), self.matrix.shape[1]), dtype=np.float16)
            present = np.zeros(len(articles), dtype=bool)
        return replace(
            self,
            matrix=np.concatenate([np.asarray(self.matrix), np.asarray(matrix, dtype=np.float16)]),
            present=np.concatenate([np.asarray(self.present), np.asarray(present, dtype=bool)]),
        )


class Memo:
    """Tables derived from one state, each built on first use and then never changed: a worker that only
    serves lookups by id never pays for the vocabulary, nor one serving drafts for the id table. Not
    pickled (a Dask worker rebuilds what it uses)."""

    def __init__(self, seed: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, Any] = dict(seed or {})

    def get(self, name: str, build: Callable[[], _T]) -> _T:
        """The table ``name``, built by ``build`` once even when threads ask at the same time."""
        value = self._values.get(name)
        if value is None:
            with self._lock:
                value = self._values.get(name)
                if value is None:
                    value = build()
                    self._values[name] = value
        return value

    def peek(self, name: str) -> Any:
        """The table ``name`` if it was built, else ``None``."""
        return self._values.get(name)

    def without(self, name: str) -> Memo:
        """A memo with this one's tables but ``name``, for a state that differs only in what it is built from."""
        return Memo({key: value for key, value in self._values.items() if key != name})

    def __reduce__(self) -> tuple[type[Memo], tuple[()]]:
        return (Memo, ())


@dataclass(frozen=True, eq=False)
class FittedState:
    """Everything a fitted model holds, changed only by building a new one.

    ``matrix``: the articles' L2-normalised TF-IDF rows (columns sorted within rows); ``index_t``: the same,
    term-major. ``topic_terms`` and ``topics``: the topic gate's space and each article's place in it
    (``None``: off). ``timestamps``: publication times (NaN: undated); ``time_origin`` the day the kernels
    count from. ``corpus``: facts about the fitted corpus, as the manifest records them. ``base_rows``: each
    row's row in the fitted (saved) file, ``-1`` for rows added since; ``base_size`` that file's rows and
    ``base_sha256`` its checksum (``None``: not saved yet). ``rules``: the editors' pins and blocks it
    applies (kept beside the model file, not in it: see :mod:`recommender.rulebook`). ``vectors``: each
    article's semantic vector (kept beside the model too: see :mod:`recommender.vectorfile`; ``None``: none).
    """

    analyzer: Analyzer
    terms: StringColumn
    idf: np.ndarray
    sublinear_tf: bool
    matrix: sp.csr_matrix
    index_t: sp.csr_matrix
    topic_terms: np.ndarray | None
    topics: np.ndarray | None
    articles: ArticleColumns
    timestamps: np.ndarray
    time_origin: float
    corpus: dict[str, Any]
    fitted_at: str
    updates: UpdateCounts
    base_rows: np.ndarray
    base_size: int
    base_sha256: str | None
    rules: Rules = field(default_factory=Rules)
    vectors: SemanticVectors | None = None
    memo: Memo = field(default_factory=Memo, repr=False)

    def __len__(self) -> int:
        return len(self.articles)

    def with_rules(self, rules: Rules) -> FittedState:
        """This state applying ``rules`` (its other lookup tables kept)."""
        return replace(self, rules=rules, memo=self.memo.without("rules"))

    def with_vectors(self, vectors: SemanticVectors | None) -> FittedState:
        """This state with ``vectors`` (one per row, or ``None``), its lookup tables kept."""
        if vectors is not None and len(vectors) != len(self):
            raise ValueError(f"{len(vectors)} vectors for {len(self)} articles")
        return replace(self, vectors=vectors)

    def rebased(self, sha256: str | None) -> FittedState:
        """This state as the base an overlay of updates refers to (after a fit, a load or a save)."""
        n = len(self)
        return replace(self, base_rows=np.arange(n, dtype=np.int64), base_size=n, base_sha256=sha256)

    def rows(self) -> dict[str, int]:
        """Each article id's row."""
        return self.memo.get("rows", lambda: {str(a): i for i, a in enumerate(self.articles.ids.to_list())})

    def vocabulary(self) -> dict[str, int]:
        """Each term's column."""
        return self.memo.get("vocabulary", lambda: {str(t): i for i, t in enumerate(self.terms.to_list())})

    def row_of(self, article_id: str) -> int:
        """The row of ``article_id``; :class:`UnknownArticleError` if the state lacks it."""
        rows = self.rows()
        try:
            return rows[article_id]
        except (KeyError, TypeError):
            # Ids are stripped when a corpus is read; so are the ids looked up (" a-1 " is a-1).
            found = rows.get(article_id.strip()) if isinstance(article_id, str) else None
            if found is None:
                raise UnknownArticleError(str(article_id)) from None
            return found
