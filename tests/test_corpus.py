"""read_articles: JSON Lines and CSV (plain and gzip), field mapping, and every bad input named by file and line."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import recommender.corpus as corpus_module
from recommender import Article, read_articles
from recommender.corpus import (
    Corpus,
    SkippedRecord,
    article_from_record,
    bundled_corpus_path,
    check_url,
    parse_published,
)
from recommender.errors import CorpusError, RecommenderError

SAMPLE = Path(__file__).parent / "data" / "sample.jsonl"
SNAKE_ID = "kompas-8f42b397"

FULL: dict[str, Any] = {
    "id": "kompas-1",
    "title": "Ular Berkaki Ditemukan di Kalimantan",
    "body": "Warga menemukan ular dengan sepasang kaki kecil.",
    "published": "2019-09-17T21:12:00+07:00",
    "section": "sains",
    "category": "fauna",
    "tags": ["ular", " reptil ", ""],
    "url": "https://kompas.com/sains/ular",
    "source": "kompas",
}
FULL_ARTICLE = Article(
    id="kompas-1",
    title="Ular Berkaki Ditemukan di Kalimantan",
    body="Warga menemukan ular dengan sepasang kaki kecil.",
    published="2019-09-17T21:12:00+07:00",
    section="sains",
    category="fauna",
    tags=("ular", "reptil"),
    url="https://kompas.com/sains/ular",
    source="kompas",
)
MINIMAL = {"id": "detik-2", "title": "Persija Menang", "body": "Persija menang 2-0 atas PSM."}
MINIMAL_ARTICLE = Article(id="detik-2", title="Persija Menang", body="Persija menang 2-0 atas PSM.")
CSV_HEADER = ["id", "title", "body", "published", "section", "category", "tags", "url", "source"]


def _jsonl_bytes(lines: list[Any]) -> bytes:
    """Records (dicts, lists, ...) become JSON; ``str`` and ``bytes`` items are written as raw lines."""
    out = []
    for item in lines:
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, str):
            out.append(item.encode("utf-8"))
        else:
            out.append(json.dumps(item, ensure_ascii=False).encode("utf-8"))
    return b"\n".join(out) + b"\n"


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    data = _jsonl_bytes(lines)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def _csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    data = _csv_bytes(rows)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def corpus_error(path: Path, **kwargs: Any) -> CorpusError:
    with pytest.raises(CorpusError) as info:
        read_articles(path, **kwargs)
    return info.value


# --- reading good files --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["articles.jsonl", "articles.jsonl.gz", "articles.ndjson", "articles.json"])
def test_jsonl_plain_and_gzip_with_all_fields(tmp_path: Path, name: str) -> None:
    path = write_jsonl(tmp_path / name, [FULL, MINIMAL])
    corpus = read_articles(path)
    assert isinstance(corpus, Corpus)
    assert corpus.path == str(path)
    assert corpus.articles == [FULL_ARTICLE, MINIMAL_ARTICLE]
    assert corpus.skipped == []
    assert len(corpus) == 2


@pytest.mark.parametrize("name", ["articles.csv", "articles.csv.gz", "ARTICLES.CSV"])
def test_csv_plain_and_gzip_with_all_fields(tmp_path: Path, name: str) -> None:
    rows = [
        CSV_HEADER,
        [*(FULL[k] for k in CSV_HEADER[:6]), "ular, reptil ,", *(FULL[k] for k in CSV_HEADER[7:])],
        ["detik-2", "Persija Menang", "Persija menang 2-0 atas PSM.", "", "", "", "", "", ""],
    ]
    path = write_csv(tmp_path / name, rows)
    corpus = read_articles(path)
    assert corpus.articles == [FULL_ARTICLE, MINIMAL_ARTICLE]
    assert corpus.skipped == []


def test_csv_with_only_required_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [["id", "title", "body"], ["detik-2", "Persija Menang", MINIMAL["body"]]])
    assert read_articles(path).articles == [MINIMAL_ARTICLE]


def test_tags_as_comma_separated_text_in_jsonl(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{**MINIMAL, "tags": " sepak bola, liga 1 ,, persija "}])
    assert read_articles(path).articles[0].tags == ("sepak bola", "liga 1", "persija")


def test_tags_list_items_are_stringified_and_stripped(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{**MINIMAL, "tags": [2019, " pemilu ", "  "]}])
    assert read_articles(path).articles[0].tags == ("2019", "pemilu")


def test_optional_fields_null_or_blank_become_none(tmp_path: Path) -> None:
    record = {**MINIMAL, "published": None, "section": "  ", "category": None, "tags": None, "url": "", "source": None}
    path = write_jsonl(tmp_path / "a.jsonl", [record])
    assert read_articles(path).articles == [MINIMAL_ARTICLE]


def test_integer_id_title_stripped_null_body(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"id": 42, "title": "  Judul Saja  ", "body": None}])
    assert read_articles(path).articles == [Article(id="42", title="Judul Saja", body="")]


def test_body_only_article_is_valid(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"id": "x", "title": "", "body": "Isi tanpa judul."}])
    assert read_articles(path).articles == [Article(id="x", title="", body="Isi tanpa judul.")]


def test_unknown_extra_fields_are_ignored(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{**MINIMAL, "views": 1000, "author": {"name": "Ani"}}])
    assert read_articles(path).articles == [MINIMAL_ARTICLE]


def test_jsonl_blank_lines_ignored_and_line_numbers_count_them(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", ["", MINIMAL, "   ", "\t", {**MINIMAL, "id": "detik-3"}, "", "{oops"])
    error = corpus_error(path)
    assert error.line == 7
    path = write_jsonl(tmp_path / "b.jsonl", ["", MINIMAL, "   ", "\t", {**MINIMAL, "id": "detik-3"}, ""])
    assert [a.id for a in read_articles(path).articles] == ["detik-2", "detik-3"]


def test_jsonl_crlf_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(json.dumps(FULL).encode() + b"\r\n" + json.dumps(MINIMAL).encode() + b"\r\n")
    assert read_articles(path).articles == [FULL_ARTICLE, MINIMAL_ARTICLE]


def test_jsonl_without_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(json.dumps(MINIMAL).encode())
    assert read_articles(path).articles == [MINIMAL_ARTICLE]


def test_jsonl_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + _jsonl_bytes([FULL, MINIMAL]))
    assert read_articles(path).articles == [FULL_ARTICLE, MINIMAL_ARTICLE]


def test_jsonl_gzip_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + _jsonl_bytes([MINIMAL])))
    assert read_articles(path).articles == [MINIMAL_ARTICLE]


def test_csv_utf8_bom_does_not_corrupt_first_column_name(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(
        b"\xef\xbb\xbf" + _csv_bytes([["id", "title", "body"], ["detik-2", "Persija Menang", MINIMAL["body"]]])
    )
    assert read_articles(path).articles == [MINIMAL_ARTICLE]


def test_csv_blank_rows_skipped_and_header_padded(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b" id , title ,body\n\ndetik-2,Persija Menang,Persija menang 2-0 atas PSM.\n,,\n\n")
    assert read_articles(path).articles == [MINIMAL_ARTICLE]


def test_csv_quoted_multiline_body_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b'id,title,body\r\n1,"Judul, dengan koma","Baris satu\r\nbaris ""dua"""\r\n2,Dua,Isi\r\n')
    articles = read_articles(path).articles
    assert [a.id for a in articles] == ["1", "2"]
    assert articles[0].title == "Judul, dengan koma"
    assert articles[0].body == 'Baris satu\r\nbaris "dua"'


def test_unicode_text_preserved(tmp_path: Path) -> None:
    record = {"id": "u", "title": "Café “Kopi” — Jakarta", "body": "Harga naik 10 % · ✓"}
    path = write_jsonl(tmp_path / "a.jsonl", [record])
    article = read_articles(path).articles[0]
    assert (article.title, article.body) == (record["title"], record["body"])


def test_path_given_as_str(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL])
    assert read_articles(str(path)).articles == [MINIMAL_ARTICLE]


# --- field mapping -------------------------------------------------------------------------------

MAPPING = {"id": "post_id", "title": "post_title", "body": "content"}


def test_field_mapping_jsonl(tmp_path: Path) -> None:
    record = {"post_id": 7, "post_title": "Judul", "content": "Isi berita.", "section": "bola", "id": "ignored"}
    path = write_jsonl(tmp_path / "a.jsonl", [record])
    assert read_articles(path, fields=MAPPING).articles == [
        Article(id="7", title="Judul", body="Isi berita.", section="bola")
    ]


def test_field_mapping_csv(tmp_path: Path) -> None:
    rows = [["post_id", "post_title", "content", "tags"], ["p1", "Judul", "Isi berita.", "a,b"]]
    path = write_csv(tmp_path / "a.csv", rows)
    assert read_articles(path, fields=MAPPING).articles == [
        Article(id="p1", title="Judul", body="Isi berita.", tags=("a", "b"))
    ]


def test_field_mapping_of_optional_field(tmp_path: Path) -> None:
    rows = [["id", "title", "body", "rubrik"], ["1", "Judul", "Isi", "olahraga"]]
    path = write_csv(tmp_path / "a.csv", rows)
    assert read_articles(path, fields={"section": "rubrik"}).articles[0].section == "olahraga"


def test_field_mapping_missing_column_named_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [["post_id", "headline", "content"], ["p1", "Judul", "Isi"]])
    error = corpus_error(path, fields=MAPPING)
    assert str(error) == (
        f"{path}, line 1: missing required field title (column 'post_title'); "
        "the header has 3 columns: 'post_id', 'headline', 'content'"
    )
    assert (error.path, error.line) == (str(path), 1)


def test_field_mapping_missing_columns_named_jsonl(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"post_id": "p1"}])
    error = corpus_error(path, fields=MAPPING)
    assert str(error) == (
        f"{path}, line 1: missing required field title (column 'post_title'), body (column 'content')"
    )


def test_partial_mapping_names_only_mapped_columns(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"post_id": "p1", "title": "Judul"}])
    error = corpus_error(path, fields={"id": "post_id"})
    assert error.problem == "missing required field body"


# --- bad records ---------------------------------------------------------------------------------


def test_malformed_json(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL, {**MINIMAL, "id": "b"}, '{"id": 1,'])
    error = corpus_error(path)
    assert (
        str(error) == f"{path}, line 3: malformed JSON: Expecting property name enclosed in double quotes at column 10"
    )
    assert (error.path, error.line) == (str(path), 3)
    assert error.problem == "malformed JSON: Expecting property name enclosed in double quotes at column 10"


def test_malformed_json_extra_data(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", ['{"id":"a"}}'])
    assert str(corpus_error(path)) == f"{path}, line 1: malformed JSON: Extra data at column 11"


@pytest.mark.parametrize(
    ("value", "kind"), [("[1, 2]", "list"), ('"text"', "str"), ("3", "int"), ("null", "NoneType"), ("true", "bool")]
)
def test_json_value_not_an_object(tmp_path: Path, value: str, kind: str) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL, value])
    error = corpus_error(path)
    assert str(error) == f"{path}, line 2: expected a JSON object with fields id, title, body, got {kind}"
    assert error.line == 2


@pytest.mark.parametrize(
    ("record", "missing"),
    [
        ({"title": "T", "body": "B"}, "id"),
        ({"id": "a", "body": "B"}, "title"),
        ({"id": "a", "title": "T"}, "body"),
        ({"body": "B"}, "id, title"),
        ({}, "id, title, body"),
    ],
)
def test_missing_required_field(tmp_path: Path, record: dict[str, str], missing: str) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL, record])
    error = corpus_error(path)
    assert str(error) == f"{path}, line 2: missing required field {missing}"


def test_missing_required_column_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [["id", "title"], ["1", "Judul"]])
    assert (
        str(corpus_error(path))
        == f"{path}, line 1: missing required field body; the header has 2 columns: 'id', 'title'"
    )


def test_duplicate_id_mentions_first_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL, "", {**MINIMAL, "id": "b"}, {**MINIMAL, "title": "Lain"}])
    error = corpus_error(path)
    assert str(error) == f"{path}, line 4: duplicate id 'detik-2' (first seen on line 1)"
    assert error.line == 4


def test_duplicate_id_after_normalisation(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{**MINIMAL, "id": 5}, {**MINIMAL, "id": " 5 "}])
    assert str(corpus_error(path)) == f"{path}, line 2: duplicate id '5' (first seen on line 1)"


def test_duplicate_id_csv(tmp_path: Path) -> None:
    rows = [["id", "title", "body"], ["a", "T1", "B1"], ["b", "T2", "B2"], ["a", "T3", "B3"]]
    path = write_csv(tmp_path / "a.csv", rows)
    assert str(corpus_error(path)) == f"{path}, line 4: duplicate id 'a' (first seen on line 2)"


def test_undecodable_bytes_jsonl(tmp_path: Path) -> None:
    latin1 = b'{"id": "x", "title": "Caf\xe9", "body": "b"}'
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL, latin1])
    error = corpus_error(path)
    assert str(error) == f"{path}, line 2: undecodable bytes at column 26 (the file is not UTF-8)"
    assert error.line == 2


def test_undecodable_bytes_jsonl_gzip(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl.gz", [b'{"id": "\xff"}'])
    assert str(corpus_error(path)) == f"{path}, line 1: undecodable bytes at column 9 (the file is not UTF-8)"


@pytest.mark.parametrize("column", ["title", "body"])
def test_undecodable_bytes_csv_text(tmp_path: Path, column: str) -> None:
    path = tmp_path / "a.csv"
    row = b"1,Caf\xe9,Isi" if column == "title" else b"1,Judul,Isi \x93kutip\x94"
    path.write_bytes(b"id,title,body\n2,Judul,Isi\n" + row + b"\n")
    error = corpus_error(path)
    assert str(error) == f"{path}, line 3: undecodable bytes in field {column!r} (the file is not UTF-8)"


@pytest.mark.parametrize("column", ["id", "section", "tags", "url"])
def test_undecodable_bytes_csv_other_columns(tmp_path: Path, column: str) -> None:
    """A Latin-1 byte anywhere in a CSV row is an error, as it is in JSON Lines; it must not be read as a
    string with lone surrogates (which fails later, far from the file, when written as UTF-8)."""
    header = ["id", "title", "body", "section", "tags", "url"]
    cells = [b"a1", b"Judul", b"Isi", b"bola", b"liga", b"https://x.id/a"]
    cells[header.index(column)] += b"\xe9"
    path = tmp_path / "a.csv"
    path.write_bytes(",".join(header).encode() + b"\n" + b",".join(cells) + b"\n")
    error = corpus_error(path)
    assert error.line == 2
    assert error.problem == f"undecodable bytes in field {column!r} (the file is not UTF-8)"


def test_unparseable_date(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL, {**MINIMAL, "id": "b", "published": "17/09/2019"}])
    error = corpus_error(path)
    assert str(error) == (
        f"{path}, line 2: unparseable date '17/09/2019' in 'published' "
        "(expected ISO 8601, e.g. 2019-09-17 or 2019-09-17T21:12:00+07:00)"
    )


def test_unparseable_date_csv(tmp_path: Path) -> None:
    rows = [["id", "title", "body", "published"], ["a", "T", "B", "2019-09-17"], ["b", "T", "B", "kemarin"]]
    path = write_csv(tmp_path / "a.csv", rows)
    error = corpus_error(path)
    assert error.line == 3
    assert error.problem.startswith("unparseable date 'kemarin' in 'published'")


def test_wrong_column_count_csv(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"id,title,body\na,T,B\nb,T,B,extra\nc,T\n")
    error = corpus_error(path)
    assert str(error) == f"{path}, line 3: expected 3 columns as in the header, found 4"
    corpus = read_articles(path, skip_invalid=True)
    assert corpus.skipped == [
        SkippedRecord(3, "expected 3 columns as in the header, found 4"),
        SkippedRecord(4, "expected 3 columns as in the header, found 2"),
    ]


def test_csv_line_numbers_count_physical_lines_of_multiline_records(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b'id,title,body\na,T,"satu\ndua\ntiga"\n\nb,T\n')
    error = corpus_error(path)
    assert (error.line, error.problem) == (6, "expected 3 columns as in the header, found 2")


@pytest.mark.parametrize(("title", "body"), [("", ""), ("   ", "\n\t "), ("  ", None)])
def test_title_and_body_both_empty(tmp_path: Path, title: str, body: str | None) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL, {"id": "e", "title": title, "body": body}])
    assert str(corpus_error(path)) == f"{path}, line 2: no text: 'title' and 'body' are both empty"


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"id": True, "title": "T", "body": "B"}, "field 'id' must be text or a whole number, not bool"),
        ({"id": 1.5, "title": "T", "body": "B"}, "field 'id' must be text or a whole number, not float"),
        ({"id": None, "title": "T", "body": "B"}, "field 'id' must be text or a whole number, not NoneType"),
        ({"id": "  ", "title": "T", "body": "B"}, "field 'id' is empty"),
        ({"id": "a", "title": None, "body": "B"}, "field 'title' must be text, not NoneType"),
        ({"id": "a", "title": ["T"], "body": "B"}, "field 'title' must be text, not list"),
        ({"id": "a", "title": "T", "body": 3}, "field 'body' must be text, not int"),
        ({"id": "a", "title": "T", "body": "B", "section": ["x"]}, "field 'section' must be text, not list"),
        ({"id": "a", "title": "T", "body": "B", "url": {"u": 1}}, "field 'url' must be text, not dict"),
        (
            {"id": "a", "title": "T", "body": "B", "tags": {"a": 1}},
            "field 'tags' must be a list or comma-separated text, not dict",
        ),
        (
            {"id": "a", "title": "T", "body": "B", "tags": 5},
            "field 'tags' must be a list or comma-separated text, not int",
        ),
    ],
)
def test_wrong_field_types(tmp_path: Path, record: dict[str, Any], problem: str) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [record])
    error = corpus_error(path)
    assert str(error) == f"{path}, line 1: {problem}"


@pytest.mark.parametrize("name", ["articles.txt", "articles", "articles.gz", "articles.tab.gz", "articles.jsonl.zip"])
def test_unknown_suffix(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(_jsonl_bytes([MINIMAL]))
    error = corpus_error(path)
    assert str(error) == f"{path}: unknown corpus format: use a .jsonl, .csv or .tsv file (optionally .gz compressed)"
    assert (error.path, error.line) == (str(path), None)


@pytest.mark.parametrize("name", ["missing.jsonl", "missing.csv.gz"])
def test_missing_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    error = corpus_error(path)
    assert str(error) == f"{path}: no such file"
    assert (error.path, error.line) == (str(path), None)
    assert isinstance(error, RecommenderError)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    path = tmp_path / "dir.jsonl"
    path.mkdir()
    assert str(corpus_error(path)) == f"{path}: is a directory, not a corpus file"


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.gz"])
def test_empty_jsonl(tmp_path: Path, content: bytes, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    error = corpus_error(path)
    assert str(error) == f"{path}: no valid articles in the file"
    assert error.line is None


def test_empty_csv(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"")
    assert str(corpus_error(path)) == f"{path}: empty CSV file: expected a header row with id, title, body"


def test_csv_header_only(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [["id", "title", "body"]])
    assert str(corpus_error(path)) == f"{path}: no valid articles in the file"


def test_all_records_invalid_with_skip_invalid(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", ["{", "[]"])
    assert str(corpus_error(path, skip_invalid=True)) == f"{path}: no valid articles in the file"


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(_jsonl_bytes([MINIMAL]))  # not compressed at all
    error = corpus_error(path)
    assert str(error).startswith(f"{path}: cannot read file: ")
    assert "gzip" in error.problem
    assert error.line is None


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "a.csv.gz"
    path.write_bytes(gzip.compress(_csv_bytes([["id", "title", "body"]] + [["1", "T", "B" * 50]] * 50))[:40])
    error = corpus_error(path)
    assert str(error).startswith(f"{path}: cannot read file: ")
    assert error.line is None


def test_malformed_csv_raises_with_line(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"id,title,body\na,T,B\nb,T," + b'"' + b"x" * 131_073 + b'"\n')
    error = corpus_error(path)
    assert error.problem.startswith("malformed CSV: field larger than field limit")
    assert error.line == 3


def test_corpus_error_is_catchable_as_recommender_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", ["{"])
    with pytest.raises(RecommenderError, match=r"line 1: malformed JSON"):
        read_articles(path)


# --- skip_invalid --------------------------------------------------------------------------------


def test_skip_invalid_jsonl_lists_each_problem_and_keeps_every_valid_record(tmp_path: Path) -> None:
    lines: list[Any] = [
        {**MINIMAL, "id": "v1"},  # 1
        '{"id": "x", "title": ',  # 2 malformed
        {**MINIMAL, "id": "v2"},  # 3
        "[1]",  # 4 not an object
        "",  # 5 blank
        {"id": "m", "title": "T"},  # 6 missing body
        {**MINIMAL, "id": "v1", "title": "second v1"},  # 7 duplicate
        b'{"id": "\xe9", "title": "T", "body": "B"}',  # 8 undecodable
        {**MINIMAL, "id": "d", "published": "besok"},  # 9 bad date
        {"id": "e", "title": " ", "body": ""},  # 10 no text
        {**MINIMAL, "id": "v3"},  # 11
    ]
    path = write_jsonl(tmp_path / "a.jsonl", lines)
    corpus = read_articles(path, skip_invalid=True)
    assert [a.id for a in corpus.articles] == ["v1", "v2", "v3"]
    assert corpus.articles[0].title == MINIMAL["title"]  # the first of the duplicates is kept
    assert [s.line for s in corpus.skipped] == [2, 4, 6, 7, 8, 9, 10]
    problems = [s.problem for s in corpus.skipped]
    assert problems[0] == "malformed JSON: Expecting value at column 22"
    assert problems[1] == "expected a JSON object with fields id, title, body, got list"
    assert problems[2] == "missing required field body"
    assert problems[3] == "duplicate id 'v1' (first seen on line 1)"
    assert problems[4] == "undecodable bytes at column 9 (the file is not UTF-8)"
    assert problems[5].startswith("unparseable date 'besok' in 'published'")
    assert problems[6] == "no text: 'title' and 'body' are both empty"


def test_skip_invalid_csv(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(
        b"id,title,body,published\n"  # 1
        b"a,T,B,\n"  # 2
        b"b,T,B\n"  # 3 short row
        b"a,Dup,B,\n"  # 4 duplicate
        b",T,B,\n"  # 5 empty id
        b'c,T,"multi\nline",2019-01-01\n'  # 6-7
        b"d,,,\n"  # 8 no text
        b"e,T,B,2019-13-01\n"  # 9 bad date
        b"f,T,B,2019-09-17T10:00:00+07:00\n"  # 10
    )
    corpus = read_articles(path, skip_invalid=True)
    assert [a.id for a in corpus.articles] == ["a", "c", "f"]
    assert corpus.articles[0].title == "T"
    assert corpus.articles[1].body == "multi\nline"
    assert [(s.line, s.problem.split(" (")[0].split(":")[0]) for s in corpus.skipped] == [
        (3, "expected 4 columns as in the header, found 3"),
        (4, "duplicate id 'a'"),
        (5, "field 'id' is empty"),
        (8, "no text"),
        (9, "unparseable date '2019-13-01' in 'published'"),
    ]
    assert corpus.skipped[1].problem == "duplicate id 'a' (first seen on line 2)"


def test_skip_invalid_false_reports_the_first_bad_record(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL, "[]", "{"])
    assert corpus_error(path).line == 2


def test_skip_invalid_on_clean_file_has_no_skipped(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [FULL, MINIMAL])
    corpus = read_articles(path, skip_invalid=True)
    assert corpus.skipped == []
    assert len(corpus) == 2


def test_skip_invalid_does_not_skip_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        read_articles(tmp_path / "nope.jsonl", skip_invalid=True)


def test_many_records_order_kept(tmp_path: Path) -> None:
    records: list[Any] = []
    for i in range(500):
        records.append({"id": f"a{i}", "title": f"Judul {i}", "body": "Isi"} if i % 7 else "not json")
    corpus = read_articles(write_jsonl(tmp_path / "a.jsonl.gz", records), skip_invalid=True)
    assert [a.id for a in corpus.articles] == [f"a{i}" for i in range(500) if i % 7]
    assert [s.line for s in corpus.skipped] == [i + 1 for i in range(500) if i % 7 == 0]


# --- article_from_record and dates ---------------------------------------------------------------


def test_article_from_record_direct() -> None:
    assert article_from_record(FULL) == FULL_ARTICLE
    assert article_from_record(
        {"pid": "1", "judul": "J", "isi": "I"}, {"id": "pid", "title": "judul", "body": "isi"}
    ) == (Article(id="1", title="J", body="I"))
    with pytest.raises(ValueError, match=r"^missing required field body \(column 'isi'\)$"):
        article_from_record({"pid": "1", "judul": "J"}, {"id": "pid", "title": "judul", "body": "isi"})


def test_published_at_date_only_is_utc_midnight() -> None:
    article = Article(id="a", title="T", published="2019-09-17")
    assert article.published_at() == datetime(2019, 9, 17, tzinfo=timezone.utc)
    assert article.published_at().tzinfo is timezone.utc  # type: ignore[union-attr]


def test_published_at_keeps_offset() -> None:
    when = Article(id="a", title="T", published="2019-09-17T21:12:00+07:00").published_at()
    assert when is not None
    assert when.utcoffset() == timedelta(hours=7)
    assert when == datetime(2019, 9, 17, 14, 12, tzinfo=timezone.utc)


def test_published_at_naive_time_is_utc() -> None:
    when = Article(id="a", title="T", published="2019-09-17T21:12:00").published_at()
    assert when == datetime(2019, 9, 17, 21, 12, tzinfo=timezone.utc)
    assert when is not None and when.utcoffset() == timedelta(0)


def test_published_at_none() -> None:
    assert Article(id="a", title="T").published_at() is None


def test_published_read_from_file_is_kept_as_text(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{**MINIMAL, "published": " 2019-09-17 "}])
    article = read_articles(path).articles[0]
    assert article.published == "2019-09-17"
    assert article.published_at() == datetime(2019, 9, 17, tzinfo=timezone.utc)


def test_parse_published() -> None:
    assert parse_published("2019-09-17T21:12:00Z") == datetime(2019, 9, 17, 21, 12, tzinfo=timezone.utc)
    assert parse_published(" 2019-09-17 ") == datetime(2019, 9, 17, tzinfo=timezone.utc)
    for bad in ["", "17 September 2019", "2019-02-30", "yesterday"]:
        with pytest.raises(ValueError) as info:
            parse_published(bad)
        assert str(info.value) == (
            f"unparseable date {bad!r} in 'published' (expected ISO 8601, e.g. 2019-09-17 or 2019-09-17T21:12:00+07:00)"
        )


@pytest.mark.parametrize(
    "value", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00+00:00:01"]
)
def test_published_whose_utc_time_is_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_published(value)
    assert str(info.value) == (
        f"date {value!r} in 'published' is out of range: its UTC time falls outside the years 1 to 9999"
    )
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL, {**MINIMAL, "id": "b", "published": value}])
    assert corpus_error(path).line == 2


def test_published_at_the_ends_of_the_calendar_is_kept() -> None:
    assert parse_published("9999-12-31T23:59:59+00:00") == datetime.max.replace(microsecond=0, tzinfo=timezone.utc)
    assert parse_published("0001-01-01T23:59:00+23:59") == datetime.min.replace(tzinfo=timezone.utc)


# --- article ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("article_id", "problem"),
    [
        ("a\x00b", "field 'id' has a control or invisible character (U+0000): 'a\\x00b'"),
        ("a\rb", "field 'id' has a control or invisible character (U+000D): 'a\\rb'"),
        ("a\nb", "field 'id' has a control or invisible character (U+000A): 'a\\nb'"),
        ("a\u200bb", "field 'id' has a control or invisible character (U+200B): 'a\\u200bb'"),
        (
            "berita-1.HTML",
            "field 'id' may not end in .html ('berita-1.HTML'): GET /related/{id}.html is the box of the id without it",
        ),
        ("x" * 201, "field 'id' has 201 characters; at most 200"),
    ],
)
def test_ids_no_route_can_address_are_refused(tmp_path: Path, article_id: str, problem: str) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL, {**MINIMAL, "id": article_id}])
    error = corpus_error(path)
    assert (error.line, error.problem) == (2, problem)
    with pytest.raises(ValueError, match=r"^field 'id' "):
        article_from_record({**MINIMAL, "id": article_id})  # add and PUT take records through it too


def test_ids_with_a_slash_or_200_characters_are_kept(tmp_path: Path) -> None:
    ids = ["kanal/berita/1", " y" + "x" * 199 + " ", "berita.htm"]
    path = write_jsonl(tmp_path / "a.jsonl", [{**MINIMAL, "id": i} for i in ids])
    assert [a.id for a in read_articles(path).articles] == [i.strip() for i in ids]


# --- urls ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["//evil.example/phish", "/\\evil.example", "/berita\\1", "///evil.example"])
def test_urls_a_browser_reads_as_another_host_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError) as info:
        check_url(url)
    assert str(info.value) == (
        f"field 'url' {url!r} may lead to another host (a browser reads // or \\ at its start as a host name): "
        "give the full https:// address, or a path on this site with one leading / and no backslash"
    )
    path = write_jsonl(tmp_path / "a.jsonl", [MINIMAL, {**MINIMAL, "id": "b", "url": url}])
    assert corpus_error(path).line == 2


# --- bundled corpus and the sample ---------------------------------------------------------------


def test_bundled_corpus_in_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    local = write_jsonl(tmp_path / "data" / "clickid.jsonl.gz", [MINIMAL])
    monkeypatch.chdir(tmp_path)
    found = bundled_corpus_path()
    assert found.resolve() == local.resolve()
    assert read_articles(found).articles == [MINIMAL_ARTICLE]


def test_bundled_corpus_falls_back_beside_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    found = bundled_corpus_path()
    expected = Path(corpus_module.__file__).resolve().parent.parent / "data" / "clickid.jsonl.gz"
    assert found == expected
    assert found.is_file()


def test_bundled_corpus_directory_in_working_folder_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "clickid.jsonl.gz").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert bundled_corpus_path().parent.parent == Path(corpus_module.__file__).resolve().parent.parent


def test_no_bundled_corpus_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(corpus_module, "__file__", str(tmp_path / "site" / "recommender" / "corpus.py"))
    with pytest.raises(CorpusError) as info:
        bundled_corpus_path()
    assert str(info.value) == (
        "no corpus given and no bundled corpus at data/clickid.jsonl.gz: pass the corpus file, "
        "e.g. `recommender train articles.jsonl`"
    )
    assert info.value.path is None and info.value.line is None


def test_reading_the_sample() -> None:
    corpus = read_articles(SAMPLE)
    assert len(corpus) == 380
    assert corpus.skipped == []
    ids = [a.id for a in corpus.articles]
    assert SNAKE_ID in ids
    assert len(set(ids)) == 380
    snake = corpus.articles[ids.index(SNAKE_ID)]
    assert snake.title
    assert all(a.title or a.body for a in corpus.articles)
    assert all(a.published_at() is None or a.published_at().tzinfo is not None for a in corpus.articles)  # type: ignore[union-attr]


def test_sample_as_gzip_and_csv_gives_the_same_articles(tmp_path: Path, sample_articles: list[Article]) -> None:
    gz = tmp_path / "sample.jsonl.gz"
    gz.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    assert read_articles(gz).articles == sample_articles
    rows = [CSV_HEADER] + [
        [
            a.id,
            a.title,
            a.body,
            a.published or "",
            a.section or "",
            a.category or "",
            ",".join(a.tags),
            a.url or "",
            a.source or "",
        ]
        for a in sample_articles
    ]
    csv_path = write_csv(tmp_path / "sample.csv", rows)
    assert read_articles(csv_path).articles == sample_articles
