"""Corpus files as real exports write them: another delimiter (sniffed, or --delimiter), .tsv, UTF-16 by its
byte-order mark, header names in any case, and a missing field reported against the header that was found."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from recommender import Article, read_articles
from recommender.cli import app
from recommender.errors import CorpusError, InvalidParameterError, UnknownArticleError

ROWS = [["id", "title", "body"], ["detik-2", "Persija Menang", "Persija menang 2-0, atas PSM."], ["b", "T", "B"]]
ARTICLES = [
    Article(id="detik-2", title="Persija Menang", body="Persija menang 2-0, atas PSM."),
    Article(id="b", title="T", body="B"),
]

runner = CliRunner()


def invoke(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def delimited(rows: list[list[str]], delimiter: str) -> str:
    """Rows joined by ``delimiter``, a cell holding it (or a comma) quoted as spreadsheets write it."""
    quoted = [['"' + c + '"' if delimiter in c or "," in c else c for c in row] for row in rows]
    return "".join(delimiter.join(row) + "\r\n" for row in quoted)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    data = text.encode(encoding)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def problem(path: Path, **kwargs: object) -> str:
    with pytest.raises(CorpusError) as info:
        read_articles(path, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_sniffed_from_the_header(tmp_path: Path, delimiter: str) -> None:
    path = write(tmp_path / "a.csv", delimited(ROWS, delimiter))
    assert read_articles(path).articles == ARTICLES


@pytest.mark.parametrize("name", ["a.tsv", "a.TSV", "a.tsv.gz"])
def test_tsv_files_are_tab_separated(tmp_path: Path, name: str) -> None:
    # A comma in the header would win the sniff; the suffix says tab.
    rows = [["id", "title", "body", "tags", "notes, internal"], *[[*row, "x, y", ""] for row in ROWS[1:]]]
    path = write(tmp_path / name, "".join("\t".join(row) + "\n" for row in rows))
    assert [a.tags for a in read_articles(path).articles] == [("x", "y"), ("x", "y")]


def test_delimiter_given_when_the_sniff_is_wrong(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "id;title;body;tags;notes,internal\n1;T;B;a;\n")
    assert problem(path) == (
        f"{path}, line 1: missing required field id, title, body; the header has 2 columns: "
        "'id;title;body;tags;notes', 'internal' (is the delimiter ';'? pass --delimiter ';')"
    )
    assert read_articles(path, delimiter=";").articles == [Article(id="1", title="T", body="B", tags=("a",))]


@pytest.mark.parametrize("delimiter", ["", ";;", "\n", '"'])
def test_a_delimiter_must_be_one_character(tmp_path: Path, delimiter: str) -> None:
    path = write(tmp_path / "a.csv", delimited(ROWS, ","))
    with pytest.raises(InvalidParameterError, match=r"^delimiter must be one character other than"):
        read_articles(path, delimiter=delimiter)


def test_a_delimiter_is_for_delimited_files_only(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", json.dumps({"id": "1", "title": "T", "body": "B"}))
    with pytest.raises(InvalidParameterError, match=r"^delimiter applies to \.csv and \.tsv files, not to "):
        read_articles(path, delimiter=";")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
@pytest.mark.parametrize("name", ["a.csv", "a.tsv.gz", "a.jsonl"])
def test_utf16_and_utf8_read_by_their_byte_order_mark(tmp_path: Path, encoding: str, name: str) -> None:
    if name.endswith(".jsonl"):
        text = "".join(json.dumps({"id": a.id, "title": a.title, "body": a.body}) + "\r\n" for a in ARTICLES)
    else:
        text = delimited(ROWS, "\t" if ".tsv" in name else ";")
    bom = "\ufeff" if encoding in ("utf-16-le", "utf-16-be") else ""  # the others write their own
    path = write(tmp_path / name, bom + text, encoding)
    assert read_articles(path).articles == ARTICLES


def test_utf16_with_a_broken_byte_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(delimited(ROWS, ",").encode("utf-16") + b"\x00")  # an odd number of bytes
    error = problem(path)
    assert error.startswith(f"{path}: cannot decode the file as UTF-16 (it starts with a UTF-16 byte-order mark): ")


def test_header_names_match_without_case_or_surrounding_spaces(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "ID, Title ,BODY,Section \n1,T,B,bola\n")
    assert read_articles(path).articles == [Article(id="1", title="T", body="B", section="bola")]
    path = write(tmp_path / "b.csv", " Post_ID ;Judul;Isi\n1;T;B\n")
    mapped = read_articles(path, fields={"id": "post_id", "title": "JUDUL ", "body": "isi"})
    assert mapped.articles == [Article(id="1", title="T", body="B")]


def test_header_names_equal_but_for_case_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "id,title,body,ID\n1,T,B,2\n")
    assert problem(path) == f"{path}, line 1: the header has column 'id' twice (names are matched without case)"
    path = write(tmp_path / "b.csv", "id,title,body,Notes,notes,,\n1,T,B,,,,\n")  # columns not read may repeat
    assert read_articles(path).articles == [Article(id="1", title="T", body="B")]


def test_missing_fields_name_the_header_found(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "post_id,headline,content\np1,Judul,Isi\n")
    assert problem(path, fields={"id": "Post_ID", "title": "post_title"}) == (
        f"{path}, line 1: missing required field title (column 'post_title'), body; "
        "the header has 3 columns: 'post_id', 'headline', 'content'"
    )
    path = write(tmp_path / "tab.csv", "id\ttitle\tbody\n1\tT\tB\n")
    assert problem(path, delimiter="|") == (
        f"{path}, line 1: missing required field id, title, body; the header has 1 column: 'id\\ttitle\\tbody' "
        "(is the delimiter '\\t'? pass --delimiter '\\t')"
    )


def test_missing_fields_stop_even_with_skip_invalid(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", delimited(ROWS, ";"))
    with pytest.raises(CorpusError) as info:
        read_articles(path, delimiter=",", skip_invalid=True)
    assert info.value.line == 1
    assert info.value.problem.startswith("missing required field id, title, body; the header has 1 column: ")


# --- the command line ----------------------------------------------------------------------------


def test_cli_delimiter_option_and_one_article(tmp_path: Path) -> None:
    corpus = write(tmp_path / "a.csv", "id;title;body;notes,internal\n1;Banjir Jakarta;Banjir melanda Jakarta.;\n")
    model = tmp_path / "m" / "model.joblib"
    failed = invoke("train", corpus, "--model", model)
    assert failed.exit_code == 1 and "pass --delimiter ';'" in failed.stderr
    result = invoke("train", corpus, "--model", model, "--delimiter", ";", "--topic-dims", "0")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Read 1 article from {corpus}"
    assert lines[1].startswith("Trained on 1 article, ")
    added = write(tmp_path / "b.csv", "id;title;body;notes,internal\n2;Banjir Bekasi;Banjir melanda Bekasi.;\n")
    result = invoke("add", added, "--model", model, "--delimiter", ";")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith(f"Added 1 article: {model} now holds 2 articles")


def test_cli_evaluate_passes_the_delimiter_on(tmp_path: Path) -> None:
    corpus = write(tmp_path / "a.jsonl", json.dumps({"id": "1", "title": "T", "body": "B"}) + "\n")
    result = invoke("evaluate", corpus, "--delimiter", ";")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: delimiter applies to .csv and .tsv files, not to ")


@pytest.mark.parametrize("given", ["\\t", "tab", "TAB", "\t"])
def test_cli_delimiter_tab_as_a_shell_passes_it(tmp_path: Path, given: str) -> None:
    corpus = write(tmp_path / "a.csv", "id\ttitle\tbody\tnotes,internal\n1\tBanjir Jakarta\tBanjir di Jakarta.\t\n")
    result = invoke("train", corpus, "--model", tmp_path / "model.joblib", "--delimiter", given, "--topic-dims", "0")
    assert result.exit_code == 0, result.output


def test_unknown_id_message_names_the_ways_in() -> None:
    assert str(UnknownArticleError("x-1")) == (
        "unknown article id 'x-1': it is not in the model; add it with `recommender add` (or PUT /articles/{id}), "
        "or for a draft's text use `recommender related --text` (or POST /related)"
    )
