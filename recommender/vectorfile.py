"""Where semantic vectors are kept: a SQLite file beside the model, ``<model>.vectors.sqlite``.

Vectors are kept by the text they came from (:func:`~recommender.encoder.text_key`), so a text is encoded
once, whatever the id, model or fit that asks for it, and by article id the key of each article's text now.
Each batch of vectors is committed on its own, so a job killed at any point loses at most the batch it was
computing, and a rerun starts where it stopped. Every SQL statement on vectors lives in :class:`VectorFile`.
The file names the encoder and text recipe it was made with: vectors of another are never mixed in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._sqlite import transaction
from .corpus import Article
from .encoder import Encoder, TextRecipe, article_key, default_encoder, text_key
from .errors import ModelError, RecommenderError, StoreError
from .state import SemanticVectors

__all__ = [
    "VectorCounts",
    "VectorCoverage",
    "VectorFile",
    "encode_new",
    "open_vectors",
    "read_vectors",
    "vector_coverage",
    "vectors_for",
    "vectors_path",
]

FORMAT = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS articles (id TEXT PRIMARY KEY, key BLOB NOT NULL) WITHOUT ROWID;
"""


def vectors_path(model: str | Path) -> Path:
    """The vectors file of the model saved at ``model``: ``models/model.joblib`` → ``models/model.vectors.sqlite``."""
    model = Path(model)
    return model.with_name(f"{model.stem}.vectors.sqlite")


@dataclass(frozen=True, slots=True)
class VectorCounts:
    """How many texts have a vector, and how many articles are assigned one (with a vector, or still without)."""

    vectors: int
    articles: int
    articles_without: int


@dataclass(frozen=True, slots=True)
class VectorCoverage:
    """How many of a model's articles have a vector in the file beside it, and of which encoder (``None``:
    no vectors file)."""

    encoder: str | None
    recipe: str | None
    articles: int
    with_vector: int

    @property
    def without(self) -> int:
        return self.articles - self.with_vector

    def to_dict(self) -> dict[str, object]:
        return {
            "encoder": self.encoder,
            "recipe": self.recipe,
            "articles_with_vector": self.with_vector,
            "articles_without_vector": self.without,
        }


def _vectors_of(conn: sqlite3.Connection, columns: str, keys: Sequence[bytes]) -> list[tuple[Any, ...]]:
    """``columns`` of the vectors of ``keys`` (those there), asked in chunks under SQLite's parameter limit."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        marks = ",".join("?" * len(chunk))
        rows += conn.execute(f"SELECT {columns} FROM vectors WHERE key IN ({marks})", chunk).fetchall()
    return rows


def _rebuild(path: Path, problem: str) -> ModelError:
    return ModelError(
        f"{path}: {problem}; remove the file and rebuild it with `recommender embed` (the model and its store are "
        "unchanged)"
    )


def open_vectors(path: str | Path) -> VectorFile:
    """The vectors file at ``path`` as its meta describes it (read without the encoder); :class:`ModelError`
    naming it when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no vectors file at {path}: `recommender embed` makes one beside a model")
    try:
        with transaction(path, write=False) as conn:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        file = VectorFile(path, encoder=meta["encoder"], recipe=meta["recipe"], dim=int(meta["dim"]))
        TextRecipe.from_name(file.recipe)
    except (sqlite3.Error, KeyError, ValueError) as exc:
        raise _rebuild(path, f"not a vectors file ({exc})") from None
    return file


def vector_coverage(model: str | Path, ids: Sequence[str]) -> VectorCoverage:
    """Which of ``ids`` (a model's articles) have a vector in the vectors file beside the model at ``model``,
    read without the encoder (``info`` and ``/health`` tell it where the ``semantic`` extra is not installed)."""
    path = vectors_path(model)
    if not path.is_file():
        return VectorCoverage(None, None, len(ids), 0)
    file = open_vectors(path)
    _, present = file.for_articles(ids)
    return VectorCoverage(file.encoder, file.recipe, len(ids), int(present.sum()))


def read_vectors(model: str | Path, ids: Sequence[str]) -> SemanticVectors | None:
    """The vectors of ``ids`` (a model's articles, in row order) from the vectors file beside the model at
    ``model``, with that file as where updates find their new articles' vectors; ``None`` when there is no
    file. A file that is not a vectors file, or holds vectors of the wrong size, is a :class:`ModelError`
    naming it and the command that rebuilds it."""
    path = vectors_path(model)
    if not path.is_file():
        return None
    file = open_vectors(path)
    return file.semantic_vectors(*file.for_articles(ids))


def encode_new(source: object, articles: Sequence[Article], encoder: Encoder | None = None) -> int:
    """Encode, into the vectors file ``source`` (a state's :attr:`~recommender.state.SemanticVectors.source`),
    the texts of ``articles`` it has no vector for, so that a fold finds them; how many texts were encoded.
    0 and nothing encoded when ``source`` is no vectors file, or the encoder it was made with is not the one
    installed (the articles then go without a vector, and the lists say so)."""
    if not isinstance(source, VectorFile) or not articles:
        return 0
    if encoder is None:
        try:
            encoder = default_encoder()
        except RecommenderError:
            return 0
    if encoder.name != source.encoder:
        return 0
    recipe = TextRecipe.from_name(source.recipe)
    texts = {text_key(recipe, t): t for t in (recipe.text(a.title, a.body) for a in articles)}
    todo = source.missing(texts)
    if todo:
        source.put(todo, encoder.encode([texts[k] for k in todo]))
    return len(todo)


def vectors_for(path: str | Path, articles: Sequence[Article]) -> SemanticVectors:
    """The vectors of ``articles``' texts (in their order) found in the vectors file at ``path`` (a model's,
    or the bundled corpus's): for a model fitted in memory on those articles (:meth:`Recommender.with_vectors`)."""
    file = open_vectors(path)
    return file.semantic_vectors(*file.vectors_for(articles))


class VectorFile:
    """The vectors of one encoder and text recipe: float16 rows of ``dim`` values, by text key and by article."""

    def __init__(self, path: str | Path, *, encoder: str, recipe: str, dim: int) -> None:
        self.path = Path(path)
        self.encoder, self.recipe, self.dim = encoder, recipe, dim

    def _rebuild(self, problem: str) -> ModelError:
        return _rebuild(self.path, problem)

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        try:
            with transaction(self.path, write=write) as conn:
                self._check(conn, write=write)
                yield conn
        except sqlite3.OperationalError as exc:  # locked, read-only, disk full: the file itself may be fine
            raise StoreError(f"cannot use the vectors file {self.path}: {exc}; nothing was changed") from None
        except sqlite3.DatabaseError as exc:
            raise self._rebuild(f"not a vectors file ({exc})") from None

    def _check(self, conn: sqlite3.Connection, *, write: bool) -> None:
        """The file is of this encoder, recipe and size (a new file is made so, when writing)."""
        if write:
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    conn.execute(statement)
        expected = {"format": FORMAT, "encoder": self.encoder, "recipe": self.recipe, "dim": str(self.dim)}
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
            raise self._rebuild("not a vectors file (no meta table)")
        found = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if not found and write:
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", expected.items())
            return
        for name, value in expected.items():
            if found.get(name) != value:
                raise self._rebuild(f"its vectors are of {name} {found.get(name)!r}, not {value!r}")

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Keep ``vectors`` (one row per key) in one transaction: all of them, or none."""
        vectors = np.asarray(vectors)
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"expected {len(keys)} vectors of {self.dim} values, got shape {vectors.shape}")
        rows = vectors.astype("<f2")
        with self._connect(write=True) as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
                ((key, row.tobytes()) for key, row in zip(keys, rows, strict=True)),
            )

    def assign_texts(self, articles: Sequence[Article], *, remove: Iterable[str] = ()) -> None:
        """:meth:`assign` each of ``articles`` its text's key (by this file's recipe), and forget ``remove``."""
        recipe = TextRecipe.from_name(self.recipe)
        self.assign(((a.id, article_key(recipe, a.title, a.body)) for a in articles), remove=remove)

    def assign(self, articles: Iterable[tuple[str, bytes]], *, remove: Iterable[str] = ()) -> None:
        """Record which text each article has now (``(id, key)``), and forget ``remove``: one transaction."""
        with self._connect(write=True) as conn:
            conn.executemany("DELETE FROM articles WHERE id = ?", ((i,) for i in remove))
            conn.executemany("INSERT OR REPLACE INTO articles (id, key) VALUES (?, ?)", articles)

    def copy_from(self, other: str | Path, keys: Sequence[bytes]) -> int:
        """Take from the vectors file ``other`` (of this encoder and recipe; otherwise nothing is taken) the
        vectors of those of ``keys`` it holds, in one transaction; how many it took. Keys name texts, so any
        file's vectors are right for any model: a shipped file seeds a new model's."""
        source = VectorFile(other, encoder=self.encoder, recipe=self.recipe, dim=self.dim)
        try:
            with source._connect(write=False) as conn:
                rows = _vectors_of(conn, "key, vector", keys)
        except (FileNotFoundError, ModelError):
            return 0
        if rows:
            with self._connect(write=True) as conn:
                conn.executemany("INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", rows)
        return len(rows)

    def missing(self, keys: Iterable[bytes]) -> list[bytes]:
        """Those of ``keys`` with no vector yet, in the order given, each once."""
        wanted = list(dict.fromkeys(keys))
        try:
            with self._connect(write=False) as conn:
                have = {k for (k,) in _vectors_of(conn, "key", wanted)}
        except FileNotFoundError:
            return wanted
        return [k for k in wanted if k not in have]

    def for_articles(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The vector of each of ``ids`` now, as float16 rows, and which of them have one (zeros where not)."""
        out = np.zeros((len(ids), self.dim), dtype=np.float16)
        present = np.zeros(len(ids), dtype=bool)
        try:
            with self._connect(write=False) as conn:
                found = conn.execute("SELECT articles.id, vectors.vector FROM articles JOIN vectors USING (key)")
                pairs = found.fetchall()
        except FileNotFoundError:
            return out, present
        row_of = {article_id: row for row, article_id in enumerate(ids)}
        rows, blobs = [], []
        for article_id, blob in pairs:
            row = row_of.get(article_id)
            if row is None:
                continue
            if len(blob) != 2 * self.dim:
                raise self._rebuild(f"the vector of {article_id!r} has {len(blob)} bytes, not {2 * self.dim}")
            rows.append(row)
            blobs.append(blob)
        if rows:  # one copy of every vector, not one array per article
            out[rows] = np.frombuffer(b"".join(blobs), dtype="<f2").reshape(len(rows), self.dim)
            present[rows] = True
        return out, present

    def semantic_vectors(self, matrix: np.ndarray, present: np.ndarray) -> SemanticVectors:
        """``matrix`` (float16 rows read from this file) and which rows have a vector, as a state holds them,
        with this file as where an update finds its new articles' vectors."""
        return SemanticVectors(matrix, present, self.encoder, TextRecipe.from_name(self.recipe).lead, source=self)

    def vectors_for(self, articles: Sequence[Article]) -> tuple[np.ndarray, np.ndarray]:
        """The vector of each article's text (by this file's recipe) as float16 rows, and which have one:
        how an update finds the vectors of the articles it adds (encoded before it folds them in)."""
        recipe = TextRecipe.from_name(self.recipe)
        keys = [article_key(recipe, a.title, a.body) for a in articles]
        out = np.zeros((len(keys), self.dim), dtype=np.float16)
        present = np.zeros(len(keys), dtype=bool)
        try:
            with self._connect(write=False) as conn:
                found = dict(_vectors_of(conn, "key, vector", list(dict.fromkeys(keys))))
        except FileNotFoundError:
            return out, present
        for row, key in enumerate(keys):
            blob = found.get(key)
            if blob is not None and len(blob) == 2 * self.dim:
                out[row] = np.frombuffer(blob, dtype="<f2")
                present[row] = True
        return out, present

    def counts(self) -> VectorCounts:
        try:
            with self._connect(write=False) as conn:
                vectors = conn.execute("SELECT count(*) FROM vectors").fetchone()[0]
                articles = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
                without = conn.execute(
                    "SELECT count(*) FROM articles WHERE key NOT IN (SELECT key FROM vectors)"
                ).fetchone()[0]
        except FileNotFoundError:
            return VectorCounts(0, 0, 0)
        return VectorCounts(int(vectors), int(articles), int(without))
