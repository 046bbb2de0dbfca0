"""Article records, and readers for the corpus files a CMS exports (JSON Lines, CSV or TSV, plain or gzip).

Every bad record is reported with its file, line and problem; with ``skip_invalid`` it is skipped and
listed instead, and every valid record is still read.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import time
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import CorpusError, InvalidParameterError

__all__ = [
    "FIELDS",
    "REQUIRED_FIELDS",
    "Article",
    "Corpus",
    "SkippedRecord",
    "article_from_record",
    "bundled_corpus_path",
    "bundled_judgments_path",
    "bundled_vectors_path",
    "check_id",
    "check_url",
    "corpus_written_at",
    "parse_published",
    "read_articles",
]

REQUIRED_FIELDS = ("id", "title", "body")
# The id rule (docs/operations.md, "Article ids"): what every entry point (corpus files, add, PUT, rules) accepts.
MAX_ID_LENGTH = 200
FIELDS = (*REQUIRED_FIELDS, "published", "section", "category", "tags", "url", "source", "image")
_OPTIONAL_TEXT = ("section", "category", "url", "source", "image")
# The fields that a page puts in a link or an image's address as they are: checked alike (check_url).
_ADDRESSES = ("url", "image")
# The column separators a CSV's header is sniffed for: spreadsheets in Indonesian locales write ';'.
_DELIMITERS = ",;\t|"


@dataclass(frozen=True, slots=True)
class Article:
    """One article. ``published`` is the ISO 8601 text as given (validated), or ``None``."""

    id: str
    title: str
    body: str = ""
    published: str | None = None
    section: str | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()
    url: str | None = None
    source: str | None = None
    image: str | None = None

    def __post_init__(self) -> None:
        try:
            if not isinstance(self.id, str) or check_id(self.id) != self.id:
                raise ValueError(f"field 'id' must be text without surrounding white space, got {self.id!r}")
        except ValueError as exc:
            raise CorpusError(f"article {self.id!r}: {exc}") from None
        for name in _ADDRESSES:
            value = getattr(self, name)
            if value is not None:
                try:
                    check_url(value, name)
                except ValueError as exc:
                    raise CorpusError(f"article {self.id!r}: {exc}") from None

    def published_at(self) -> datetime | None:
        """``published`` as an aware datetime (a date or naive time is taken as UTC)."""
        return parse_published(self.published) if self.published else None


def check_id(value: str) -> str:
    """``value`` without surrounding white space if it is a valid article id; otherwise ValueError naming
    the problem. One rule for every entry point, so that any stored id can be looked up, edited, removed,
    pinned or blocked, over HTTP as on the command line: 1 to 200 characters; no control, format or line
    separator character (NUL, CR, LF, tab, zero-width, a lone surrogate ...), which a URL, a log line or a
    page would mangle; not ending in ``.html``, which the server's ``/related/{id}.html`` route reads as
    the box of ``{id}``. A ``/`` is allowed (routes take it, percent-encoded or not)."""
    text = value.strip()
    if not text:
        raise ValueError("field 'id' is empty")
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"field 'id' has {len(text):,} characters; at most {MAX_ID_LENGTH}")
    bad = next((ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")), None)
    if bad is not None:
        raise ValueError(f"field 'id' has a control or invisible character (U+{ord(bad):04X}): {text!r}")
    if text.lower().endswith(".html"):
        raise ValueError(
            f"field 'id' may not end in .html ({text!r}): GET /related/{{id}}.html is the box of the id without it"
        )
    return text


def check_url(url: str, field: str = "url") -> str:
    """``url`` if a CMS can put it in a link (or an image, ``field`` "image") as it is: ``http(s)://host...``
    or a site-relative path (``/berita/1``); otherwise ValueError naming ``field``. ``javascript:``,
    ``data:`` and the like would run in a reader's browser wherever the list is shown, so they are refused
    when the corpus is read. So are ``//host/...`` and ``/\\host``: a browser reads both as another host (and
    any ``\\`` as ``/``)."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ValueError(f"field {field!r} has a control character: {url!r}")
    if url.startswith("/"):
        if url.startswith("//") or "\\" in url:
            raise ValueError(
                f"field {field!r} {url!r} may lead to another host (a browser reads // or \\ at its start as a "
                "host name): give the full https:// address, or a path on this site with one leading / and no "
                "backslash"
            )
        return url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"field {field!r} must be an http:// or https:// address or a site-relative path (/...), got {url!r}"
        )
    return url


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record left out by ``skip_invalid``: where it was and why."""

    line: int
    problem: str


@dataclass(slots=True)
class Corpus:
    """The valid articles of one file, and the records skipped (empty unless ``skip_invalid``)."""

    path: str
    articles: list[Article]
    skipped: list[SkippedRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.articles)


def parse_published(value: str) -> datetime:
    """Parse ISO 8601 (``2019-09-17`` or ``2019-09-17T21:12:00+07:00``); naive values are taken as UTC.

    Raises ``ValueError`` with the offending text when it is not ISO 8601, or when its UTC time is outside
    the years 1 to 9999 (``9999-12-31T23:59:59-01:00``), which no date window or timestamp could hold.
    """
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"unparseable date {value!r} in 'published' (expected ISO 8601, e.g. "
            "2019-09-17 or 2019-09-17T21:12:00+07:00)"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    try:
        parsed.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(
            f"date {value!r} in 'published' is out of range: its UTC time falls outside the years 1 to 9999"
        ) from None
    return parsed


def _optional_text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise ValueError(f"field {name!r} must be text, not {type(value).__name__}")
    text = str(value).strip()
    return text or None


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(f"field 'tags' must be a list or comma-separated text, not {type(value).__name__}")
    return tuple(t for t in (str(item).strip() for item in items) if t)


def article_from_record(record: Mapping[str, Any], fields: Mapping[str, str] | None = None) -> Article:
    """Validate one record (a dict of our field names, or of a CMS's names mapped by ``fields``).

    ``fields`` maps our name to the record's: ``{"id": "post_id", "title": "post_title"}``.
    Raises ``ValueError`` naming the problem.
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"expected a JSON object with fields id, title, body, got {type(record).__name__}")
    if fields:
        record = {ours: record[theirs] for ours, theirs in fields.items() if theirs in record} | {
            k: v for k, v in record.items() if k not in fields and k not in fields.values()
        }
    missing = [name for name in REQUIRED_FIELDS if name not in record]
    if missing:
        mapped = [f"{m} (column {fields[m]!r})" if fields and m in fields else m for m in missing]
        raise ValueError(f"missing required field {', '.join(mapped)}")
    for name in FIELDS:
        # a CSV is decoded with surrogateescape: a non-UTF-8 byte in any field we keep is an error
        value = record.get(name)
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and any("\udc80" <= ch <= "\udcff" for ch in text):
                raise ValueError(f"undecodable bytes in field {name!r} (the file is not UTF-8)")
    raw_id = record["id"]
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
        raise ValueError(f"field 'id' must be text or a whole number, not {type(raw_id).__name__}")
    article_id = check_id(str(raw_id))
    title, body = record["title"], record["body"]
    if not isinstance(title, str):
        raise ValueError(f"field 'title' must be text, not {type(title).__name__}")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise ValueError(f"field 'body' must be text, not {type(body).__name__}")
    if not title.strip() and not body.strip():
        raise ValueError("no text: 'title' and 'body' are both empty")
    published = _optional_text(record, "published")
    if published is not None:
        parse_published(published)
    optional = {name: _optional_text(record, name) for name in _OPTIONAL_TEXT}
    for name in _ADDRESSES:
        address = optional[name]
        if address is not None:
            check_url(address, name)
    return Article(
        id=article_id,
        title=title.strip(),
        body=body,
        published=published,
        tags=_tags(record.get("tags")),
        **optional,
    )


def _format_of(path: Path) -> tuple[str, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl", compressed
    if ext in (".csv", ".tsv"):
        return ext[1:], compressed
    raise CorpusError("unknown corpus format: use a .jsonl, .csv or .tsv file (optionally .gz compressed)", str(path))


def _from_utf16(raw: bytes, path: str) -> bytes:
    """A file that starts with a UTF-16 byte-order mark (a spreadsheet's "Unicode text") as UTF-8, any other
    as it is: the readers then see UTF-8 (with or without its own mark) whatever the export wrote."""
    if not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw
    try:
        return raw.decode("utf-16").encode("utf-8")  # the codec takes the byte order from the mark
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"cannot decode the file as UTF-16 (it starts with a UTF-16 byte-order mark): {exc.reason} "
            f"at byte {exc.start:,}",
            path,
        ) from None


def _column_name(name: str) -> str:
    # Header names and the columns --field names are matched without case or surrounding spaces.
    return name.strip().casefold()


def _sniff_delimiter(text: str) -> str:
    """The delimiter of a CSV's header line among ``,;\\t|`` (``,`` when it has a single column)."""
    try:
        return csv.Sniffer().sniff(text.partition("\n")[0], delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _missing_columns(header: list[str], delimiter: str, fields: Mapping[str, str] | None) -> str | None:
    """What a header lacks, named with the columns it has and the delimiter it seems to use; ``None`` if
    every required field has its column."""
    names = {_column_name(h) for h in header}
    fields = fields or {}
    missing = [m for m in REQUIRED_FIELDS if _column_name(fields.get(m, m)) not in names]
    if not missing:
        return None
    wanted = ", ".join(f"{m} (column {fields[m]!r})" if m in fields else m for m in missing)
    shown = ", ".join(repr(h) for h in header[:10]) + (f", ... ({len(header) - 10:,} more)" if len(header) > 10 else "")
    message = (
        f"missing required field {wanted}; the header has {len(header)} column{'' if len(header) == 1 else 's'}: "
        f"{shown}"
    )
    counts = {d: sum(h.count(d) for h in header) for d in _DELIMITERS if d != delimiter}
    likely = max(counts, key=counts.__getitem__)
    if counts[likely]:
        message += f" (is the delimiter {likely!r}? pass --delimiter {likely!r})"
    return message


def _jsonl_records(raw: bytes, path: str) -> Iterator[tuple[int, Mapping[str, Any] | ValueError]]:
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, ValueError(f"undecodable bytes at column {exc.start + 1} (the file is not UTF-8)")
            continue
        if number == 1:
            text = text.removeprefix("\ufeff")
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, ValueError(f"malformed JSON: {exc.msg} at column {exc.colno}")


def _csv_records(
    raw: bytes, path: str, delimiter: str | None, fields: Mapping[str, str] | None
) -> Iterator[tuple[int, Mapping[str, Any] | ValueError]]:
    """The rows as records keyed by their column's name, folded (:func:`_column_name`); the header is
    checked first, so that a wrong delimiter or a missing column is one error at line 1."""
    text = raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    delimiter = delimiter or _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        found = next(reader)
    except StopIteration:
        raise CorpusError("empty CSV file: expected a header row with id, title, body", path) from None
    except csv.Error as exc:
        raise CorpusError(f"malformed CSV header: {exc}", path, 1) from None
    header = [_column_name(h) for h in found]
    used = {_column_name(name) for name in (*FIELDS, *(fields or {}).values())}
    twice = next((name for name in header if name in used and header.count(name) > 1), None)
    if twice is not None:
        raise CorpusError(f"the header has column {twice!r} twice (names are matched without case)", path, 1)
    missing = _missing_columns(found, delimiter, fields)
    if missing is not None:
        raise CorpusError(missing, path, 1)
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CorpusError(f"malformed CSV: {exc}", path, reader.line_num) from None
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield line, ValueError(f"expected {len(header)} columns as in the header, found {len(row)}")
            continue
        yield line, dict(zip(header, row, strict=True))


def _read_bytes(path: Path, compressed: bool) -> bytes:
    try:
        if compressed:
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise CorpusError("no such file", str(path)) from None
    except IsADirectoryError:
        raise CorpusError("is a directory, not a corpus file", str(path)) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise CorpusError(f"cannot read file: {exc}", str(path)) from None


def read_articles(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
    delimiter: str | None = None,
) -> Corpus:
    """Read a corpus: JSON Lines, CSV or TSV, plain or ``.gz``, chosen by the file's suffix; UTF-8, or UTF-16
    by its byte-order mark.

    ``fields`` maps our field names to the file's (``{"id": "post_id"}``); a CSV's column names match
    without case or surrounding spaces. A CSV's delimiter is sniffed from its header (``,``, ``;``, tab or
    ``|``), a TSV's is tab; ``delimiter`` overrides both. The first invalid record raises
    :class:`CorpusError` naming file, line and problem; with ``skip_invalid`` such records (duplicate ids
    included: the first one is kept) are skipped and listed in ``Corpus.skipped``.
    """
    path = Path(path)
    kind, compressed = _format_of(path)
    if delimiter is not None:
        if kind == "jsonl":
            raise InvalidParameterError(f"delimiter applies to .csv and .tsv files, not to {path} (JSON Lines)")
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise InvalidParameterError(
                f"delimiter must be one character other than a quote or line break, e.g. ';' or '\\t', "
                f"got {delimiter!r}"
            )
    raw = _from_utf16(_read_bytes(path, compressed), str(path))
    records: Iterator[tuple[int, Mapping[str, Any] | ValueError]]
    if kind == "jsonl":
        records = _jsonl_records(raw, str(path))
    else:
        records = _csv_records(raw, str(path), delimiter or ("\t" if kind == "tsv" else None), fields)
        fields = {ours: _column_name(theirs) for ours, theirs in fields.items()} if fields else None
    articles: list[Article] = []
    skipped: list[SkippedRecord] = []
    first_line: dict[str, int] = {}
    for line, record in records:
        try:
            if isinstance(record, ValueError):
                raise record
            article = article_from_record(record, fields)
            if article.id in first_line:
                raise ValueError(f"duplicate id {article.id!r} (first seen on line {first_line[article.id]})")
        except ValueError as exc:
            if not skip_invalid:
                raise CorpusError(str(exc), str(path), line) from None
            skipped.append(SkippedRecord(line, str(exc)))
            continue
        first_line[article.id] = line
        articles.append(article)
    if not articles:
        raise CorpusError("no valid articles in the file", str(path))
    return Corpus(str(path), articles, skipped)


BUNDLED_CORPUS = Path("data") / "clickid.jsonl.gz"
BUNDLED_LINKS = Path("data") / "baca_juga.tsv"
BUNDLED_JUDGMENTS = Path("data") / "judgments" / "dev_qrels.tsv"
BUNDLED_VECTORS = Path("data") / "clickid.vectors.sqlite"


def _bundled(relative: Path) -> Path | None:
    # Relative to the working folder when found there, so messages show the short path a user typed.
    if relative.is_file():
        return relative
    beside = Path(__file__).resolve().parent.parent / relative
    return beside if beside.is_file() else None


def corpus_written_at(path: str | Path) -> float:
    """When the corpus file at ``path`` was last written (a ``time.time()``, and never later than now):
    updates a model received after that are not in it, so a retrain on it carries them over
    (:meth:`Recommender.save`'s ``carry_since``)."""
    try:
        return min(os.stat(path).st_mtime, time.time())
    except OSError:
        return time.time()


def bundled_corpus_path() -> Path:
    """The corpus shipped in the repository's ``data/`` (from the working folder, else beside the package)."""
    found = _bundled(BUNDLED_CORPUS)
    if found is None:
        raise CorpusError(
            f"no corpus given and no bundled corpus at {BUNDLED_CORPUS}: pass the corpus file, "
            "e.g. `recommender train articles.jsonl`"
        )
    return found


def bundled_links_path() -> Path:
    """The editor-chosen "Baca juga" links shipped in ``data/``, for evaluation."""
    found = _bundled(BUNDLED_LINKS)
    if found is None:
        raise CorpusError(f"no links given and no bundled links at {BUNDLED_LINKS}: pass --links FILE")
    return found


def bundled_judgments_path() -> Path:
    """The graded relevance judgments shipped in ``data/judgments/``, for evaluation."""
    found = _bundled(BUNDLED_JUDGMENTS)
    if found is None:
        raise CorpusError(f"no judgments given and none bundled at {BUNDLED_JUDGMENTS}: pass --judgments FILE")
    return found


def bundled_vectors_path() -> Path | None:
    """The semantic vectors of the bundled corpus shipped in ``data/`` (made by ``recommender embed``), if
    there: ``embed`` takes a text's vector from it rather than encoding the text again."""
    return _bundled(BUNDLED_VECTORS)
