"""Indonesian text analysis, used identically at training and query time.

``clean_text`` repairs what scraping did to the text (mojibake, link holes, datelines, "Baca juga"
lead-ins, bylines); :class:`Analyzer` turns an article's title and body into weighted terms.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType
from typing import Any

import ftfy

__all__ = ["STOPWORD_LISTS", "Analyzer", "clean_text", "default_stopwords", "news_stopwords", "stopword_list"]

# Characters that mark UTF-8 read as Mac Roman or Latin-1 ("‚Äú", "¬†", "Ã©").
_MOJIBAKE_HINT = re.compile("[\u201a\u00c4\u00ac\u221a\u00c3\u00e2\u00c2\u00ef\u00b0\u00a9\u00ae\u00e6]")
# A word with a non-ASCII character, in squeezed text (its only whitespace is " " and "\n"). Matches
# start only where a word does and skip its ASCII characters without backtracking: the plain
# r"\S*[^\x00-\x7f]\S*" tried every position of every word, and took half of the repair's time.
_NON_ASCII_WORD = re.compile(r"(?<!\S)[^\s\x80-\U0010ffff]*+[^\x00-\x7f]\S*")
# Debris, each pattern with a cheap substring test first (scanning every body with each regex is slow).
_DEBRIS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    # "Baca juga: <another headline>" up to the paragraph break
    (
        ("baca juga", "simak juga", "lihat juga", "baca pula"),
        re.compile(r"\b(?:baca|simak|lihat) (?:juga|pula)\b\s*:?[^,\n]*", re.IGNORECASE),
    ),
    (("loading...",), re.compile(r"loading\.\.\.", re.IGNORECASE)),
    (("[gambas",), re.compile(r"\[gambas:[^\]]*\]", re.IGNORECASE)),
    (("#growfearless",), re.compile(r"#growfearless\s+with\s+fimela", re.IGNORECASE)),
    (
        ("penulis", "reporter", "editor", "pewarta", "sumber"),
        re.compile(r"\b(?:penulis|reporter|editor|pewarta|sumber)\s*:[^,\n]*", re.IGNORECASE),
    ),
    # editor initials, lowercase: "(rin/nds)" anywhere, "(mbz)" ending a paragraph; and "( ,)" or "(*)" left
    # where links were stripped. Not "(KPK)", "(BMKG)", "(Riau)", "(yoy) naik": those are words.
    (
        ("(",),
        re.compile(r"\(\s*[a-z]{2,4}(?:\s*/\s*[a-z]{2,4})+\s*\)|\(\s*[a-z]{2,4}\s*\)(?=\s*(?:,|$))|\(\s*[*,]?\s*\)"),
    ),
)
# A dateline opening the body: "PEKANBARU (INDOVIZKA) - ", "Jakarta - ", "KOMPAS.com - ", "TEMPO.CO, Jakarta - ",
# "JAKARTA, KOMPAS.com - ". A place or outlet is up to four ALL-CAPS words ("KOTA BANDUNG", "KAB. CIREBON") or
# one or two capitalised words ("Kuala Lumpur", "Liputan6.com"); longer capitalised runs are a sentence
# ("Wafatnya Presiden Indonesia Ke- 3", "PT Astra International Tbk - Peugeot ...").
_PLACE = r"(?:[A-Z][A-Z0-9.'&]*(?:\s+[A-Z][A-Z0-9.'&]*){0,3}|[A-Z][\w.']*(?:\s+[A-Z][\w.']*)?)"
_DATELINE = re.compile(rf"^(?:{_PLACE}(?:\s*,\s*{_PLACE})?\s*(?:\([^()]{{1,30}}\))?\s*)?[-\u2013\u2014]+\s+")
_HOLES = re.compile(r"[,;](?:\s*[,;])+")
_EDGE = " \n,;-\u2013\u2014"
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_LONE_HYPHEN = re.compile(r"-(?:(?<![a-z0-9]-)|(?![a-z0-9]))")  # not between two letters or digits
# Sentence-level breaks: bigrams never span them.
_BREAKS = '.,;:!?"()[]\n'
_CURLY_QUOTES = "\u201c\u201d\u2018\u2019"
# Lowercased text as bytes: token characters kept, breaks to "\n", everything else (UTF-8 bytes of
# non-ASCII characters included) to a space; then str.split does in C what a regex scan did slowly.
_BYTE_CLASSES = bytes(
    c if chr(c) in "abcdefghijklmnopqrstuvwxyz0123456789-" else 10 if chr(c) in _BREAKS else 32 for c in range(256)
)

# News boilerplate that Sastrawi's general-purpose list lacks: outlet names, days, months, web debris.
_NEWS_STOPWORDS = """
com co id www http https html foto video kompas okezone tempo sindonews wowkeren tribunnews
kapanlagi fimela liputan6 merdeka detik detikcom detiksport posmetro jpnn antara wib wita wit
senin selasa rabu kamis jumat sabtu januari februari maret april mei juni juli agustus september
oktober november desember jan feb mar apr jun jul agu agt sep okt nov des
kata ujar ujarnya katanya tuturnya jelasnya ungkapnya imbuhnya tambahnya pungkasnya
""".split()


@lru_cache(maxsize=1)
def default_stopwords() -> frozenset[str]:
    """Sastrawi's Indonesian stopwords plus news boilerplate (outlets, days, months, "katanya")."""
    from Sastrawi.StopWordRemover.StopWordRemoverFactory import StopWordRemoverFactory

    return frozenset(StopWordRemoverFactory().get_stop_words()) | news_stopwords()


def news_stopwords() -> frozenset[str]:
    """News boilerplate only: outlet names, days, months, web debris and speech verbs ("katanya"). Common
    function words are left to ``max_df``, which drops them by document frequency."""
    return frozenset(_NEWS_STOPWORDS)


# The stopword lists a model can be trained with, by name.
STOPWORD_LISTS = ("news", "indonesian", "none")


def stopword_list(name: str) -> frozenset[str]:
    """The stopwords of ``name`` (see :data:`STOPWORD_LISTS`): "news" (boilerplate only), "indonesian"
    (Sastrawi's list plus the news boilerplate) or "none"."""
    if name == "news":
        return news_stopwords()
    if name == "indonesian":
        return default_stopwords()
    if name == "none":
        return frozenset()
    raise ValueError(f"stopwords must be one of {', '.join(STOPWORD_LISTS)}; got {name!r}")


_FIXED_WORDS: dict[str, str] = {}


def _fix_word(match: re.Match[str]) -> str:
    word = match.group()
    fixed = _FIXED_WORDS.get(word)
    if fixed is None:
        if len(_FIXED_WORDS) > 100_000:
            _FIXED_WORDS.clear()
        fixed = _FIXED_WORDS[word] = ftfy.fix_encoding(word)
        _FIXED_WORDS.setdefault(fixed, fixed)  # fix_encoding of its own output is that output
    return fixed


def _fix_mojibake(text: str) -> str:
    # ftfy over a whole body is slow; fixing only the words with non-ASCII characters is 8x faster,
    # and each distinct word is fixed once (clean_text runs to a fixpoint, so it sees its output again).
    # ``text`` is squeezed (see _NON_ASCII_WORD).
    return _NON_ASCII_WORD.sub(_fix_word, text)


def _squeeze(text: str) -> str:
    """Runs of whitespace become one space, or one line break where they held one: a paragraph break
    ends "Baca juga: <headline>" and bylines, and bigrams do not span it."""
    lines = text.splitlines()
    if len(lines) <= 1:
        return " ".join(text.split())  # one line: the common case, done in C
    return "\n".join(filter(None, (" ".join(line.split()) for line in lines)))


def clean_text(text: str, *, dateline: bool = True) -> str:
    """Repair and de-clutter scraped article text; idempotent (``clean_text`` of its output is itself).

    ``dateline=False`` keeps a leading "X - " (titles: "Indonesia - Polandia Tingkatkan Kerja Sama").
    """
    if not text:
        return ""
    # Removing one piece of debris can expose another (a dateline behind a hole, or a mojibake word that
    # only decodes once debris glued to it is gone), so repeat until a pass changes nothing but spacing.
    text = _squeeze(text)
    while True:
        changed = False
        if not text.isascii() and _MOJIBAKE_HINT.search(text):
            fixed = _fix_mojibake(text)
            if fixed != text:
                changed, text = True, _squeeze(fixed)
        lowered = text.lower()
        for needles, pattern in _DEBRIS:
            for needle in needles:
                if needle in lowered:
                    text, n = pattern.subn(" ", text)
                    changed |= n > 0
                    break
        text, n = _HOLES.subn(",", text)
        stripped = text.strip(_EDGE)
        changed |= n > 0 or stripped != text
        text = stripped
        if dateline:
            text, n = _DATELINE.subn("", text)
            changed |= n > 0
        if not changed:  # still squeezed and stripped as the pass found it: the tidying below is a no-op
            return text
        text = _squeeze(text).strip(_EDGE)


def _segments(lowered: str) -> list[list[str]]:
    """The tokens (``_TOKEN``) of lowercased text, one list per segment between sentence-level breaks."""
    if not lowered.isascii():
        for quote in _CURLY_QUOTES:
            lowered = lowered.replace(quote, "\n")
    flat = lowered.encode("utf-8").translate(_BYTE_CLASSES).decode("ascii")
    if "-" in flat:
        # Hyphens only join characters inside a token ("anak-anak"); the others separate ("-a", "a--b"),
        # as _TOKEN has it. One pass over the text, not a check per segment.
        flat = _LONE_HYPHEN.sub(" ", flat)
    return [segment.split() for segment in flat.split("\n")]


class _KeptWords(dict[str, bool]):
    """Whether a token is kept as a word (not a stopword, not one letter, and a digit string only with
    ``numbers``), decided once per distinct token: news reuses its words."""

    def __init__(self, stopwords: frozenset[str], numbers: bool = False) -> None:
        super().__init__()
        self.stopwords = stopwords
        self.numbers = numbers

    def __missing__(self, word: str) -> bool:
        if len(self) > 500_000:
            self.clear()
        kept = self[word] = len(word) > 1 and (self.numbers or not word.isdigit()) and word not in self.stopwords
        return kept


class Analyzer:
    """Turns ``(title, body)`` into terms: cleaned, lowercased, stopwords out, optionally stemmed.

    Title terms are repeated ``title_weight`` times so a headline outweighs a paragraph. Bigrams
    (``ngram_range=(1, 2)``) are formed within a sentence only. ``stopwords`` default to
    :func:`default_stopwords`; ``numbers`` keeps digit strings ("2022", "11") as words. Picklable: the
    stemmer and its per-word cache are rebuilt after loading.
    """

    def __init__(
        self,
        *,
        stem: bool = False,
        ngram_range: tuple[int, int] = (1, 2),
        title_weight: int = 3,
        stopwords: Iterable[str] | None = None,
        numbers: bool = False,
    ) -> None:
        if ngram_range[0] < 1 or ngram_range[1] < ngram_range[0] or ngram_range[1] > 3:
            raise ValueError(f"ngram_range must be (1, 1), (1, 2), (1, 3), (2, 2)...; got {ngram_range}")
        if title_weight < 0:
            raise ValueError(f"title_weight must be 0 or more, got {title_weight}")
        self.stem = stem
        self.ngram_range = tuple(ngram_range)
        self.title_weight = title_weight
        self.stopwords = frozenset(stopwords) if stopwords is not None else default_stopwords()
        self.numbers = numbers
        self._stems: dict[str, str] = {}
        self._stemmer: Any = None
        self._keep = _KeptWords(self.stopwords, numbers)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_stems"], state["_stemmer"], state["_keep"] = {}, None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("numbers", False)  # pickled before numbers could be kept
        self.__dict__.update(state)
        self._keep = _KeptWords(self.stopwords, self.numbers)

    @property
    def stem_cache(self) -> Mapping[str, str]:
        """The words stemmed so far, each with its stem (read-only): each distinct word is stemmed once."""
        return MappingProxyType(self._stems)

    @property
    def stemmer_loaded(self) -> bool:
        """Whether Sastrawi's stemmer has been built: on the first word to stem, never without ``stem``."""
        return self._stemmer is not None

    def _stem(self, word: str) -> str:
        # Sastrawi costs ~1 ms a word; news reuses words, so each distinct word is stemmed once.
        stem = self._stems.get(word)
        if stem is None:
            if self._stemmer is None:
                from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

                self._stemmer = StemmerFactory().create_stemmer()
            stem = self._stemmer.stem(word) or word
            self._stems[word] = stem
        return stem

    def words(self, text: str, *, dateline: bool = True) -> list[list[str]]:
        """The kept words of ``text``, one list per sentence-like segment (``dateline=False`` for titles)."""
        keep = self._keep.__getitem__
        kept = [list(filter(keep, tokens)) for tokens in _segments(clean_text(text, dateline=dateline).lower())]
        if self.stem:
            stop = self.stopwords
            kept = [[s for s in map(self._stem, words) if s not in stop] for words in kept]
        return [words for words in kept if words]

    def terms(self, text: str, *, dateline: bool = True) -> list[str]:
        """Unigrams and n-grams of ``text`` (each segment's n-grams stay inside it)."""
        low, high = self.ngram_range
        out: list[str] = []
        if (low, high) == (1, 2):  # the default, without the general loop's per-segment steps
            for words in self.words(text, dateline=dateline):
                out += words
                if len(words) > 1:
                    out += [a + " " + b for a, b in pairwise(words)]
            return out
        for words in self.words(text, dateline=dateline):
            if low == 1:
                out.extend(words)
            for n in range(max(low, 2), high + 1):
                if n == 2:
                    out.extend([a + " " + b for a, b in pairwise(words)])
                else:
                    out.extend(map(" ".join, zip(*(words[i:] for i in range(n)), strict=False)))
        return out

    def __call__(self, doc: str | Sequence[str]) -> list[str]:
        """Terms of a document: a ``(title, body)`` pair, or plain text taken as body."""
        if isinstance(doc, str):
            return self.terms(doc)
        title, body = doc
        # A title has no dateline: "Indonesia - Polandia Tingkatkan Kerja Sama" must keep "Indonesia".
        return self.terms(title, dateline=False) * self.title_weight + self.terms(body)

    def __repr__(self) -> str:
        return (
            f"Analyzer(stem={self.stem}, ngram_range={self.ngram_range}, title_weight={self.title_weight}, "
            f"stopwords=<{len(self.stopwords)} words>{', numbers=True' if self.numbers else ''})"
        )
