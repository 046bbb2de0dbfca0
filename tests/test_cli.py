"""The ``recommender`` command, in process through Typer's CliRunner: exact output and exit codes."""

from __future__ import annotations

import csv
import errno
import hashlib
import html
import itertools
import json
import math
import os
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_model, stored_lists
from typer.testing import CliRunner, Result

from recommender import InvalidParameterError, Recommender, RelatedStore, __version__, read_manifest
from recommender.cli import app
from recommender.corpus import parse_published
from recommender.model import data_path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "sample.jsonl"
SNAKE_ID = "kompas-8f42b397"
SNAKE_OTHERS = {"kompas-defc2e02", "kompas-524086ea", "kompas-60ddcf82", "wowkeren-43b9afa3"}
RELATED_KEYS = {"id", "title", "url", "published", "section", "score", "similarity"}

runner = CliRunner()


def invoke(*args: object, env: dict[str, str | None] | None = None) -> Result:
    return runner.invoke(app, [str(a) for a in args], env=env)


def assert_user_error(result: Result, *fragments: str) -> str:
    """Exit code 1, nothing on stdout, exactly one ``Error: ...`` line on stderr (no traceback)."""
    assert isinstance(result.exception, SystemExit), f"unhandled {result.exception!r}\n{result.output}"
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("Error: "), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def sample_records(n: int) -> list[dict[str, Any]]:
    with open(SAMPLE, encoding="utf-8") as fh:
        return [json.loads(line) for line in itertools.islice(fh, n)]


def write_jsonl(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def model_bytes(path: Path) -> dict[str, str]:
    """SHA-256 of every file in a model's folder (its manifest and data file): equal, byte-identical files."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.parent.iterdir())}


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """The first 12 articles of the sample, for trainings that only need to be quick."""
    lines = [json.dumps(r, ensure_ascii=False) for r in sample_records(12)]
    return write_jsonl(tmp_path / "small.jsonl", lines)


@pytest.fixture
def bad_corpus(tmp_path: Path) -> Path:
    """12 lines: 10 valid articles, malformed JSON on line 2, a record without a body on line 4."""
    good = [json.dumps(r, ensure_ascii=False) for r in sample_records(10)]
    lines = [good[0], '{"id": "bad", "title": "x"', good[1], '{"id": "nobody", "title": "Judul"}', *good[2:]]
    return write_jsonl(tmp_path / "bad.jsonl", lines)


# --- version ---------------------------------------------------------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"recommender {__version__}\n"


# --- train -----------------------------------------------------------------------------------------


def test_train_prints_exactly_four_lines_and_writes_model_manifest_and_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    model = tmp_path / "m.joblib"
    result = invoke("train", "tests/data/sample.jsonl", "--model", model)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == ""  # only the (transient) progress bar goes there
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout
    assert lines[0] == "Read 380 articles from tests/data/sample.jsonl"
    trained = re.fullmatch(r"Trained on 380 articles, (\d{1,3}(?:,\d{3})*) terms in \d+\.\d s", lines[1])
    assert trained, lines[1]
    manifest = read_manifest(model)
    data = data_path(model)
    assert lines[2] == f"Saved {model} ({data.stat().st_size / 1e6:.1f} MB): manifest m.json, data file {data.name}"
    assert re.fullmatch(r"Saved .+ \(\d+\.\d MB\): manifest m\.json, data file m-[0-9a-f]{16}\.joblib", lines[2])
    # The sample's texts are the bundled corpus's: their shipped vectors are taken (nothing is encoded).
    assert lines[3] == (
        "Semantic vectors: 380 of 380 articles (380 taken from data/clickid.vectors.sqlite), in m.vectors.sqlite"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.json", data.name, "m.vectors.sqlite"])
    assert int(trained.group(1).replace(",", "")) == manifest["terms"] > 0
    assert manifest["corpus"]["articles"] == 380
    assert len(Recommender.load(model)) == 380


def test_train_model_path_from_env(small_corpus: Path, tmp_path: Path) -> None:
    model = tmp_path / "env" / "m.joblib"
    result = invoke("train", small_corpus, env={"RECOMMENDER_MODEL": str(model)})
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2].startswith(f"Saved {model} (")
    assert data_path(model).is_file() and model.with_suffix(".json").is_file()
    assert len(Recommender.load(model)) == 12


def test_train_default_model_path(small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("train", small_corpus, env={"RECOMMENDER_MODEL": None})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "models" / "model.json").is_file()
    assert data_path(tmp_path / "models" / "model.joblib").is_file()


def test_train_skip_invalid_lists_skipped_records(bad_corpus: Path, tmp_path: Path) -> None:
    model = tmp_path / "out" / "m.joblib"
    result = invoke("train", bad_corpus, "--model", model, "--skip-invalid")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        f"Read 10 articles from {bad_corpus}",
        "Skipped 2 invalid records:",
        "  line 2: malformed JSON: Expecting ',' delimiter at column 27",
        "  line 4: missing required field body",
    ]
    assert lines[4].startswith("Trained on 10 articles, ")
    assert lines[6].startswith("Semantic vectors: 10 of 10 articles")  # the sample's texts: shipped vectors
    assert len(lines) == 7
    assert "bad" not in Recommender.load(model) and "nobody" not in Recommender.load(model)


def test_train_invalid_record_fails_without_writing_a_model(bad_corpus: Path, tmp_path: Path) -> None:
    model = tmp_path / "out" / "m.joblib"
    result = invoke("train", bad_corpus, "--model", model)
    line = assert_user_error(result)
    assert line == f"Error: {bad_corpus}, line 2: malformed JSON: Expecting ',' delimiter at column 27"
    assert not model.exists() and not model.with_suffix(".json").exists()
    assert not model.parent.exists() or list(model.parent.iterdir()) == []


def test_train_invalid_record_leaves_previous_model_byte_identical(
    bad_corpus: Path, model_path: Path, tmp_path: Path
) -> None:
    model = copy_model(model_path, tmp_path / "old")
    before = model_bytes(model)
    assert_user_error(invoke("train", bad_corpus, "--model", model), "line 2: malformed JSON")
    assert model_bytes(model) == before  # the same two files, byte for byte
    assert len(Recommender.load(model)) == 380


def test_train_field_mapping_on_csv(tmp_path: Path) -> None:
    records = sample_records(12)
    corpus = tmp_path / "cms.csv"
    with open(corpus, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["post_id", "post_title", "content"])
        for r in records:
            writer.writerow([f"post-{r['id']}", r["title"], r["body"]])
    model = tmp_path / "m.joblib"
    result = invoke(
        "train",
        corpus,
        "--model",
        model,
        "--field",
        "id=post_id",
        "--field",
        "title=post_title",
        "--field",
        "body=content",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"Read 12 articles from {corpus}"
    fitted = Recommender.load(model)
    assert fitted.ids_.to_list() == [f"post-{r['id']}" for r in records]
    assert fitted.titles_.to_list() == [r["title"] for r in records]

    # Without the mapping, the header names what is missing.
    assert_user_error(
        invoke("train", corpus, "--model", tmp_path / "x.joblib"),
        f"{corpus}, line 1: missing required field id, title, body; the header has 3 columns: 'post_id', ",
    )
    # A mapping to a column that is not there names that column.
    assert_user_error(
        invoke("train", corpus, "--model", tmp_path / "x.joblib", "--field", "id=nope"),
        "missing required field id (column 'nope')",
    )
    assert not (tmp_path / "x.joblib").exists()


def test_train_analysis_and_prior_options_reach_the_model(tmp_path: Path) -> None:
    model = tmp_path / "m.joblib"
    result = invoke(
        "train", SAMPLE, "--model", model, "--stopwords", "indonesian", "--no-numbers", "--bigrams",
        "--half-life-days", "3", "--time-weight", "1", "--dedup", "0", "--topic-dims", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    params = read_manifest(model)["params"]
    assert {k: params[k] for k in ("stopwords", "numbers", "ngram_range", "half_life_days", "time_weight")} == {
        "stopwords": "indonesian",
        "numbers": False,
        "ngram_range": [1, 2],
        "half_life_days": 3.0,
        "time_weight": 1.0,
    }
    assert params["dedup"] is None and params["topic_dims"] is None  # 0 turns them off
    off = tmp_path / "off.joblib"
    assert invoke("train", SAMPLE, "--model", off, "--half-life-days", "0").exit_code == 0
    assert read_manifest(off)["params"]["half_life_days"] is None
    assert read_manifest(off)["params"]["stopwords"] == "news"  # the defaults otherwise


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--stopwords", "all", "stopwords must be one of news, indonesian, none; got 'all'"),
        ("--time-weight", "0", "time_weight must be in (0, 1], got 0.0"),
        ("--time-weight", "1.5", "time_weight must be in (0, 1], got 1.5"),
        ("--topic-dims", "-3", "topic_dims must be a whole number of 1 or more (or None), got -3"),
    ],
)
def test_train_bad_analysis_or_prior_option(tmp_path: Path, option: str, value: str, message: str) -> None:
    model = tmp_path / "m.joblib"
    assert_user_error(invoke("train", SAMPLE, "--model", model, option, value), message)
    assert not model.exists()


def test_train_field_without_equals_is_an_error(small_corpus: Path, tmp_path: Path) -> None:
    result = invoke("train", small_corpus, "--model", tmp_path / "m.joblib", "--field", "idpost_id")
    assert_user_error(result, "--field takes OURS=THEIRS", "'idpost_id'")
    assert not (tmp_path / "m.joblib").exists()


def test_train_missing_corpus_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    assert_user_error(invoke("train", missing, "--model", tmp_path / "m.joblib"), f"{missing}: no such file")


def test_train_unknown_corpus_format_is_an_error(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello\n", encoding="utf-8")
    assert_user_error(invoke("train", corpus, "--model", tmp_path / "m.joblib"), ".jsonl", ".csv")


def test_train_to_an_unwritable_model_path_is_a_user_error(small_corpus: Path, tmp_path: Path) -> None:
    # The model's folder cannot be created: a file is in the way. A user mistake, so one Error line.
    (tmp_path / "afile").write_text("not a folder\n", encoding="utf-8")
    result = invoke("train", small_corpus, "--model", tmp_path / "afile" / "m.joblib")
    assert isinstance(result.exception, SystemExit), f"unhandled {result.exception!r}"
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "afile" in lines[0], result.stderr


def test_train_that_fails_to_save_leaves_the_previous_model_usable(
    small_corpus: Path, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The disk fills up once the new model file is written, as its manifest is written: the job
    # fails with one Error line, and the previous model must still load (its two files still a pair).
    real_dumps = json.dumps

    def disk_full_on_manifest(obj: object, *args: Any, **kwargs: Any) -> str:
        if isinstance(obj, dict) and "model_file" in obj:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_dumps(obj, *args, **kwargs)

    model = copy_model(model_path, tmp_path / "old")
    before = model_bytes(model)
    monkeypatch.setattr(json, "dumps", disk_full_on_manifest)
    result = invoke("train", small_corpus, "--model", model)
    monkeypatch.undo()
    assert result.exit_code == 1
    assert model_bytes(model) == before, "the model file was replaced but its manifest was not"
    assert len(Recommender.load(model)) == 380
    assert isinstance(result.exception, SystemExit), f"unhandled {result.exception!r}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert os.strerror(errno.ENOSPC) in lines[0]


# --- related ---------------------------------------------------------------------------------------


def test_related_json(model_path: Path) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "4")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    rows = json_lines(result.stdout)
    assert len(rows) == 4
    for row in rows:
        assert set(row) == RELATED_KEYS
        assert isinstance(row["score"], float) and 0.0 < row["score"] <= 1.0
        assert isinstance(row["title"], str) and row["title"]
    ids = [row["id"] for row in rows]
    assert set(ids) == SNAKE_OTHERS
    assert SNAKE_ID not in ids
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)


def test_related_json_matches_the_api(model_path: Path, fitted: Recommender) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "7")
    assert json_lines(result.stdout) == [r.to_dict() for r in fitted.related(SNAKE_ID, 7)]


def test_related_model_from_env(model_path: Path) -> None:
    result = invoke("related", SNAKE_ID, "--json", "-k", "4", env={"RECOMMENDER_MODEL": str(model_path)})
    assert result.exit_code == 0, result.output
    assert {row["id"] for row in json_lines(result.stdout)} == SNAKE_OTHERS


def test_related_table(model_path: Path) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines[0]
    for column in ("#", "score", "id", "published", "title"):
        assert column in header, header
    for article_id in SNAKE_OTHERS:
        assert article_id in result.stdout
    assert SNAKE_ID not in result.stdout
    assert re.search(r"^\s*1 \S+ 0\.\d{3} \S+ kompas-defc2e02 ", result.stdout, re.MULTILINE), result.stdout


def test_related_html(model_path: Path, fitted: Recommender) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path, "--html", "-k", "4")
    assert result.exit_code == 0, result.output
    out = result.stdout.strip()
    assert out.startswith('<aside class="related-articles">') and out.endswith("</aside>")
    assert "<h2>Berita Lainnya</h2>" in out
    items = re.findall(r'<li><a href="([^"]*)">([^<]*)</a></li>', out)
    assert len(items) == out.count("<li>") == 4
    expected = fitted.related(SNAKE_ID, 4)
    assert items == [(html.escape(r.url or "#"), html.escape(r.title)) for r in expected]
    assert "&#x27;Berkaki&#x27;" in out  # the wowkeren title's quotes are escaped


@pytest.mark.parametrize("option", ["--title", "--text"])
def test_related_draft(model_path: Path, option: str) -> None:
    result = invoke(
        "related", option, "Ular berkaki ditemukan di lokasi karhutla Riau", "--model", model_path, "--json"
    )
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert len(rows) == 5
    assert all(set(row) == RELATED_KEYS for row in rows)
    # A draft is not in the model, so the snake report itself is a fair answer.
    assert {row["id"] for row in rows} == SNAKE_OTHERS | {SNAKE_ID}


def test_related_draft_title_and_text(model_path: Path) -> None:
    result = invoke(
        "related",
        "--title",
        "Ular berkaki di Riau",
        "--text",
        "Petugas pemadam karhutla menemukan ular berkaki.",
        "--model",
        model_path,
        "--json",
        "-k",
        "3",
    )
    assert result.exit_code == 0, result.output
    assert len(json_lines(result.stdout)) == 3


def test_related_no_results(model_path: Path) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path, "--section", "no-such-section")
    assert result.exit_code == 0, result.output
    assert result.stdout == "No related articles found.\n"
    result = invoke("related", SNAKE_ID, "--model", model_path, "--section", "no-such-section", "--json")
    assert result.exit_code == 0 and result.stdout == ""


# --- related: filters ------------------------------------------------------------------------------


@pytest.mark.parametrize("section", ["berita", "tekno", "olahraga"])
def test_related_section_filter(model_path: Path, section: str) -> None:
    result = invoke(
        "related", SNAKE_ID, "--model", model_path, "--json", "-k", "10", "--section", section, "--min-score", "0"
    )  # weak matches too: the filter is under test, not the floor
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert rows, section
    assert {row["section"] for row in rows} == {section}
    assert SNAKE_ID not in {row["id"] for row in rows}


def test_related_exclude_is_repeatable(model_path: Path) -> None:
    result = invoke(
        "related",
        SNAKE_ID,
        "--model",
        model_path,
        "--json",
        "-k",
        "4",
        "--exclude",
        "kompas-defc2e02",
        "--exclude",
        "kompas-524086ea",
    )
    assert result.exit_code == 0, result.output
    ids = [row["id"] for row in json_lines(result.stdout)]
    assert len(ids) == 4
    assert not {"kompas-defc2e02", "kompas-524086ea", SNAKE_ID} & set(ids)
    assert {"kompas-60ddcf82", "wowkeren-43b9afa3"} <= set(ids)


def test_related_after_before(model_path: Path) -> None:
    after = "2019-09-20T12:00:00+07:00"
    result = invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "10", "--after", after)
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert "wowkeren-43b9afa3" in {row["id"] for row in rows}
    assert not {"kompas-defc2e02", "kompas-524086ea", "kompas-60ddcf82"} & {row["id"] for row in rows}
    assert all(parse_published(row["published"]) >= parse_published(after) for row in rows)

    before = "2019-09-20T08:00:00+07:00"
    result = invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "10", "--before", before)
    rows = json_lines(result.stdout)
    assert {"kompas-524086ea", "kompas-60ddcf82"} <= {row["id"] for row in rows}
    assert all(parse_published(row["published"]) <= parse_published(before) for row in rows)

    after, before = "2019-09-20T00:00:00+07:00", "2019-09-20T23:59:59+07:00"
    result = invoke(
        "related", SNAKE_ID, "--model", model_path, "--json", "-k", "50", "--after", after, "--before", before
    )
    rows = json_lines(result.stdout)
    assert SNAKE_OTHERS - {"wowkeren-43b9afa3"} <= {row["id"] for row in rows}
    assert "wowkeren-43b9afa3" not in {row["id"] for row in rows}
    assert all(parse_published(after) <= parse_published(row["published"]) <= parse_published(before) for row in rows)


def test_related_within_days(model_path: Path) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "20", "--within-days", "1")
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    own = parse_published("2019-09-20T10:34:00+07:00")
    assert SNAKE_OTHERS <= {row["id"] for row in rows}
    assert all(abs((parse_published(row["published"]) - own).total_seconds()) <= 86400 for row in rows)


# --- related: errors -------------------------------------------------------------------------------


def test_related_unknown_id(model_path: Path) -> None:
    assert_user_error(invoke("related", "nope-123", "--model", model_path), "unknown article id 'nope-123'")


def test_related_needs_an_id_or_a_draft(model_path: Path) -> None:
    assert_user_error(invoke("related", "--model", model_path), "article ID", "--text")


def test_related_not_both_id_and_draft(model_path: Path) -> None:
    assert_user_error(invoke("related", SNAKE_ID, "--text", "ular", "--model", model_path), "not both")
    assert_user_error(invoke("related", SNAKE_ID, "--title", "ular", "--model", model_path), "not both")


@pytest.mark.parametrize("k", ["0", "-3"])
def test_related_k_must_be_positive(model_path: Path, k: str) -> None:
    assert_user_error(invoke("related", SNAKE_ID, "--model", model_path, "-k", k), f"got {k}")
    assert_user_error(invoke("related", "--text", "ular berkaki", "--model", model_path, "-k", k), f"got {k}")


def test_related_within_days_of_a_draft_needs_its_date(model_path: Path) -> None:
    assert_user_error(
        invoke("related", "--text", "ular berkaki", "--within-days", "3", "--model", model_path),
        "within_days needs its published time",
    )
    dated = ("--published", "2019-09-20", "--json", "-k", "10", "--min-score", "0")
    result = invoke("related", "--text", "ular berkaki", "--within-days", "3", *dated, "--model", model_path)
    assert result.exit_code == 0, result.output
    published = [json.loads(line)["published"] for line in result.stdout.splitlines()]
    assert published and all("2019-09-17" <= p[:10] <= "2019-09-23" for p in published), published


def test_related_negative_within_days(model_path: Path) -> None:
    assert_user_error(invoke("related", SNAKE_ID, "--within-days", "-1", "--model", model_path), "within_days")


def test_related_bad_dates(model_path: Path) -> None:
    assert_user_error(
        invoke("related", SNAKE_ID, "--after", "yesterday", "--model", model_path), "'yesterday'", "ISO 8601"
    )
    assert_user_error(invoke("related", SNAKE_ID, "--before", "2019-13-01", "--model", model_path), "'2019-13-01'")
    assert_user_error(
        invoke("related", SNAKE_ID, "--after", "2019-10-01", "--before", "2019-09-01", "--model", model_path),
        "before it starts",
    )


@pytest.mark.parametrize("command", [["related", SNAKE_ID], ["info"], ["precompute", "--out", "r.sqlite"]])
def test_missing_model_says_to_train(tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "none" / "model.joblib"
    assert_user_error(invoke(*command, "--model", missing), str(missing), "recommender train")
    # The default path (models/model.joblib in the working folder) too.
    assert_user_error(invoke(*command, env={"RECOMMENDER_MODEL": None}), "recommender train")
    assert not (tmp_path / "r.sqlite").exists()


def test_tampered_model_is_refused(model_path: Path, tmp_path: Path) -> None:
    model = copy_model(model_path, tmp_path)
    data = bytearray(data_path(model).read_bytes())
    data[len(data) // 2] ^= 0xFF
    data_path(model).write_bytes(bytes(data))
    assert_user_error(invoke("related", SNAKE_ID, "--model", model), "does not match its manifest")


# --- precompute ------------------------------------------------------------------------------------

WROTE = re.compile(
    r"Wrote (?P<pairs>\d{1,3}(?:,\d{3})*) related links for 380 articles to (?P<path>.+) "
    r"\((?P<format>\w+), k=(?P<k>\d+)\) in \d+\.\d s"
)


def precompute_ok(model: Path, out: Path, k: int) -> int:
    """Run precompute; check its two lines of output; return the number of links it says it wrote."""
    result = invoke("precompute", "--out", out, "-k", k, "--model", model)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert re.fullmatch(r"Mode: exact \(\d+\.\d [kMG]? ?multiply-adds\)", lines[1]), lines[1]
    match = WROTE.fullmatch(lines[0])
    assert match, lines[0]
    assert match["path"] == str(out)
    assert match["k"] == str(k)
    assert match["format"] == {".jsonl": "jsonl", ".csv": "csv"}.get(out.suffix, "sqlite")
    pairs = int(match["pairs"].replace(",", ""))
    assert 0 < pairs <= 380 * k
    return pairs


def test_precompute_sqlite(model_path: Path, tmp_path: Path, fitted: Recommender) -> None:
    out = tmp_path / "r.sqlite"
    pairs = precompute_ok(model_path, out, 3)
    # Every article with anything above the floor has a list; the others none (nothing related enough)
    with_list = sum(1 for i in fitted.ids_.to_list() if fitted.related(str(i), 3))
    assert with_list > 300
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT COUNT(*) FROM related").fetchone()[0] == pairs
        assert conn.execute("SELECT COUNT(DISTINCT article_id) FROM related").fetchone()[0] == with_list
        assert conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 380
        assert (
            conn.execute("SELECT MAX(n) FROM (SELECT COUNT(*) n FROM related GROUP BY article_id)").fetchone()[0] == 3
        )
        assert conn.execute("SELECT COUNT(*) FROM related WHERE article_id = related_id").fetchone()[0] == 0
        snake = conn.execute(
            "SELECT related_id FROM related WHERE article_id = ? ORDER BY rank", (SNAKE_ID,)
        ).fetchall()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    assert [r[0] for r in snake] == ["kompas-defc2e02", "kompas-524086ea", "kompas-60ddcf82"]
    assert meta["k"] == "3" and meta["articles"] == "380"


def test_precompute_sqlite_replaces_previous_lists(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.db"
    precompute_ok(model_path, out, 5)
    pairs = precompute_ok(model_path, out, 2)
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT COUNT(*) FROM related").fetchone()[0] == pairs
        assert conn.execute("SELECT MAX(rank) FROM related").fetchone()[0] == 2


def test_precompute_jsonl(model_path: Path, tmp_path: Path, fitted: Recommender) -> None:
    out = tmp_path / "r.jsonl"
    pairs = precompute_ok(model_path, out, 3)
    rows = json_lines(out.read_text(encoding="utf-8"))
    assert len(rows) == 380
    assert [row["id"] for row in rows] == fitted.ids_.to_list()
    assert sum(len(row["related"]) for row in rows) == pairs
    snake = next(row for row in rows if row["id"] == SNAKE_ID)
    assert [r["id"] for r in snake["related"]] == ["kompas-defc2e02", "kompas-524086ea", "kompas-60ddcf82"]
    assert set(snake["related"][0]) == {"id", "title", "url", "published", "score"}


def test_precompute_csv(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    pairs = precompute_ok(model_path, out, 3)
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id", "rank", "related_id", "score"]
    assert len(rows) - 1 == pairs
    assert len({row[0] for row in rows[1:]}) == 380
    assert rows[1:4] == [[rows[1][0], str(rank), rows[rank][2], rows[rank][3]] for rank in (1, 2, 3)]


def test_precompute_file_outputs_are_readable_like_any_new_file(model_path: Path, tmp_path: Path) -> None:
    # A CMS usually reads the lists as another user: the file must get the usual permissions
    # (0666 minus the umask, as open() gives), like the .sqlite output does, not mkstemp's 0600.
    umask = os.umask(0)
    os.umask(umask)
    expected = 0o666 & ~umask
    for name in ("r.sqlite", "r.jsonl", "r.csv"):
        out = tmp_path / name
        precompute_ok(model_path, out, 1)
        assert out.stat().st_mode & 0o777 == expected, f"{name}: {oct(out.stat().st_mode & 0o777)}"


@pytest.mark.parametrize("name", ["r.txt", "r", "r.json.gz"])
def test_precompute_unknown_suffix(model_path: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    assert_user_error(invoke("precompute", "--out", out, "--model", model_path), ".jsonl", ".csv", ".sqlite", ".db")
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".sqlite", ".jsonl", ".csv"])
def test_precompute_into_a_missing_directory(model_path: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / "nonexistent" / "dir" / f"p{suffix}"
    line = assert_user_error(invoke("precompute", "--out", out, "--model", model_path))
    assert line == f"Error: directory {out.parent} does not exist: create it first"
    assert list(tmp_path.iterdir()) == []


def test_precompute_bad_k(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.sqlite"
    assert_user_error(invoke("precompute", "--out", out, "-k", "0", "--model", model_path), "got 0")


def test_precompute_approx_says_so_with_its_recall(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.sqlite"
    result = invoke("precompute", "--out", out, "-k", "5", "--model", model_path, "--approx")
    assert result.exit_code == 0, result.output
    wrote, mode = result.stdout.splitlines()
    assert WROTE.fullmatch(wrote), wrote
    match = re.fullmatch(
        r"Mode: approximate \(\d+\.\d [kMG]? ?multiply-adds; exact: \d+\.\d [kMG]? ?multiply-adds\); "
        r"recall@5 against exact lists estimated at (?P<recall>[01]\.\d{3})",
        mode,
    )
    assert match, mode
    assert 0.8 <= float(match["recall"]) <= 1.0
    assert RelatedStore(out).meta()["mode"] == "approx"


def test_precompute_exact_and_approx_together(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.sqlite"
    line = assert_user_error(invoke("precompute", "--out", out, "--model", model_path, "--exact", "--approx"))
    assert line == "Error: choose one of --exact and --approx"
    assert not out.exists()


# --- info ------------------------------------------------------------------------------------------


def test_info(model_path: Path) -> None:
    result = invoke("info", "--model", model_path)
    assert result.exit_code == 0, result.output
    manifest = read_manifest(model_path)
    out = result.stdout
    for key in ("model", "sha256", "created", "format", "versions", "params", "articles", "terms", "sections"):
        assert re.search(rf"^{key}\s", out, re.MULTILINE), key
    assert re.search(r"^articles\s+\S\s+380 \(", out, re.MULTILINE), out
    assert re.search(rf"^data file\s+\S\s+{data_path(model_path).name}\s*$", out, re.MULTILINE), out
    assert manifest["model_file"]["sha256"] in out
    assert manifest["corpus"]["checksum"] in out
    assert "stem=False" in out and "title_weight=3" in out
    assert f"{manifest['terms']:,}" in out


def test_info_json(model_path: Path) -> None:
    result = invoke("info", "--model", model_path, "--json")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1
    manifest = json.loads(result.stdout)
    vectors = manifest.pop("vectors")  # beside the manifest: the semantic vectors' coverage (none here)
    assert vectors["articles_without_vector"] == 380 and vectors["encoder"] is None
    assert manifest == read_manifest(model_path)
    assert manifest["corpus"]["articles"] == 380
    assert manifest["package_version"] == __version__
    assert manifest["model_file"]["bytes"] == data_path(model_path).stat().st_size


def test_info_refuses_a_parameter_edited_in_the_manifest(model_path: Path, tmp_path: Path) -> None:
    # Reported: half_life_days edited to 300 in model.json showed as 300 in `info`, while lookups used 7.
    model = copy_model(model_path, tmp_path)
    manifest_file = model.with_suffix(".json")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    manifest["params"]["half_life_days"] = 300
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    for command in (["info"], ["related", SNAKE_ID]):
        line = assert_user_error(invoke(*command, "--model", model))
        assert line == (
            f"Error: manifest {manifest_file}: field 'params.half_life_days' is 300, but the data file "
            f"{data_path(model).name} has 7.0: restore the manifest, or retrain with `recommender train` to "
            "change the model"
        )


def test_info_shows_the_parameters_the_model_uses(model_path: Path, tmp_path: Path) -> None:
    # A manifest of format 1 may lack parameters added since (its model loads with what it was built
    # with): `info` shows every parameter the loaded model uses, not only those the manifest lists.
    model = copy_model(model_path, tmp_path)
    manifest_file = model.with_suffix(".json")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    del manifest["params"]["topic_dims"], manifest["params"]["time_weight"]
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    result = invoke("info", "--model", model)
    assert result.exit_code == 0, result.output
    params = re.search(r"^params\s+\S\s+(.*(?:\n\s+\S\s+\S.*)*)", result.stdout, re.MULTILINE)
    assert params, result.stdout
    shown = " ".join(part.strip(" │") for part in params.group(1).splitlines())
    assert "topic_dims=64" in shown and "time_weight=0.2" in shown, shown


def test_info_model_from_env(model_path: Path) -> None:
    result = invoke("info", "--json", env={"RECOMMENDER_MODEL": str(model_path)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["corpus"]["articles"] == 380


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("corpus", "x", "field 'corpus' must be an object, got \"x\""),
        ("corpus.sections", None, "field 'corpus.sections' must be an object, got null"),
        ("created_at", ..., "field 'created_at' is missing"),
        ("format_version", "1", "field 'format_version' must be an integer, got \"1\""),
    ],
    ids=["corpus-x", "sections-null", "no-created-at", "format-as-string"],
)
@pytest.mark.parametrize("command", [["info"], ["info", "--json"], ["related", SNAKE_ID]], ids=" ".join)
def test_a_hand_edited_manifest_is_one_error_line(
    model_path: Path, tmp_path: Path, command: list[str], field: str, value: object, problem: str
) -> None:
    # Reported: TypeError, AttributeError and KeyError tracebacks from `info`, and "has model format
    # '1', this version of recommender reads format 1".
    model = copy_model(model_path, tmp_path)
    manifest_file = model.with_suffix(".json")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    *parents, name = field.split(".")
    where = manifest
    for parent in parents:
        where = where[parent]
    if value is ...:
        del where[name]
    else:
        where[name] = value
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    before = model_bytes(model)
    line = assert_user_error(invoke(*command, "--model", model))
    assert line == f"Error: manifest {manifest_file}: {problem}: retrain with `recommender train` or restore the file"
    assert model_bytes(model) == before


# --- related: ranking options ----------------------------------------------------------------------

SNAKE_PUBLISHED = "2019-09-20T10:34:00+07:00"


def test_related_explain_table(model_path: Path) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path, "--explain", "-k", "4")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    header = "\n".join(result.stdout.splitlines()[:3])
    assert "why" in header, header
    for column in ("score", "id", "title"):
        assert column in header, header
    # Every one of the four snake reports shares "ular" and "berkaki" with it, each with its weight.
    assert len(re.findall(r"\bular 0\.\d{3}\b", result.stdout)) == 4, result.stdout
    assert len(re.findall(r"\bberkaki 0\.\d{3}\b", result.stdout)) == 4, result.stdout
    for article_id in SNAKE_OTHERS:
        assert article_id in result.stdout


def test_related_table_without_explain_has_no_why(model_path: Path) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path, "-k", "4")
    assert result.exit_code == 0, result.output
    assert "why" not in result.stdout
    assert not re.search(r"\bular 0\.\d{3}\b", result.stdout)


def test_related_explain_json(model_path: Path, fitted: Recommender) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path, "--explain", "--json", "-k", "4")
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert len(rows) == 4
    expected = fitted.related(SNAKE_ID, 4, explain=True)
    for row, r in zip(rows, expected, strict=True):
        assert set(row) == RELATED_KEYS | {"why"}
        assert row["id"] == r.id
        assert isinstance(row["why"], list) and 1 <= len(row["why"]) <= 5
        for item in row["why"]:
            assert set(item) == {"term", "weight"}
            assert isinstance(item["term"], str) and item["term"]
            assert isinstance(item["weight"], float) and 0.0 < item["weight"] <= row["similarity"] + 1e-3
        assert row["why"] == [{"term": w.term, "weight": w.weight} for w in r.why]
        assert {"ular", "berkaki"} <= {item["term"] for item in row["why"]}
    # Without --explain the JSON has no "why" key at all.
    plain = json_lines(invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "4").stdout)
    assert all("why" not in row for row in plain)


def test_related_no_newer(model_path: Path) -> None:
    default = json_lines(invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "10").stdout)
    own = parse_published(SNAKE_PUBLISHED)
    assert any(parse_published(row["published"]) > own for row in default)  # the option has work to do

    result = invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "10", "--no-newer")
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert rows
    assert all(parse_published(row["published"]) <= own for row in rows), [row["published"] for row in rows]
    ids = [row["id"] for row in rows]
    assert ids[:2] == ["kompas-524086ea", "kompas-60ddcf82"]
    assert not {"kompas-defc2e02", "wowkeren-43b9afa3"} & set(ids)


def test_related_newer_flag_is_the_default(model_path: Path) -> None:
    default = invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "6")
    explicit = invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "6", "--newer")
    assert explicit.exit_code == 0, explicit.output
    assert explicit.stdout == default.stdout


def test_related_min_score_with_min_results(model_path: Path) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path, "--json", "--min-score", "1.0", "--min-results", "2")
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert len(rows) == 2
    assert [row["id"] for row in rows] == ["kompas-defc2e02", "kompas-524086ea"]  # the best two


def test_related_min_score(model_path: Path, fitted: Recommender) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "10", "--min-score", "0.3")
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    above = [r.id for r in fitted.related(SNAKE_ID, 10) if r.score >= 0.3]
    assert 3 <= len(above) < 10  # the other reports of the story pass, the rest of the list does not
    assert [row["id"] for row in rows] == above
    assert ["kompas-defc2e02", "kompas-524086ea", "kompas-60ddcf82"] == above[:3]
    assert all(row["score"] >= 0.3 for row in rows)
    none = invoke("related", SNAKE_ID, "--model", model_path, "--min-score", "1.0")
    assert none.exit_code == 0, none.output
    assert none.stdout == "No related articles found.\n"


def test_related_diversity(model_path: Path, fitted: Recommender) -> None:
    result = invoke("related", SNAKE_ID, "--model", model_path, "--json", "-k", "5", "--diversity", "0.7")
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert [row["id"] for row in rows] == [r.id for r in fitted.related(SNAKE_ID, 5, diversity=0.7)]
    assert rows[0]["id"] == "kompas-defc2e02"


def test_related_diversity_out_of_range(model_path: Path) -> None:
    line = assert_user_error(invoke("related", SNAKE_ID, "--model", model_path, "--diversity", "2"))
    assert line == "Error: diversity must be between 0 and 1, got 2.0"


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--min-score", "1.5", "min_score must be between 0 and 1, got 1.5"),
        ("--min-score", "-0.1", "min_score must be between 0 and 1, got -0.1"),
        ("--min-results", "-1", "min_results must be a whole number of 0 or more, got -1"),
    ],
)
def test_related_bad_ranking_options(model_path: Path, option: str, value: str, fragment: str) -> None:
    assert_user_error(invoke("related", SNAKE_ID, "--model", model_path, option, value), fragment)


def test_related_draft_published_no_newer(model_path: Path, fitted: Recommender) -> None:
    row = fitted.row_of(SNAKE_ID)
    title, own = fitted.titles_[row], parse_published(SNAKE_PUBLISHED)
    assert title is not None
    result = invoke(
        "related", "--title", title, "--published", SNAKE_PUBLISHED, "--no-newer", "--json", "-k", "10",
        "--model", model_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json_lines(result.stdout)
    assert rows and all(parse_published(r["published"]) <= own for r in rows)
    assert "wowkeren-43b9afa3" not in {r["id"] for r in rows}


def test_precompute_with_list_options(model_path: Path, tmp_path: Path, fitted: Recommender) -> None:
    out = tmp_path / "r.jsonl"
    result = invoke(
        "precompute", "--out", out, "-k", "5", "--model", model_path,
        "--no-newer", "--min-score", "0.2", "--min-results", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json_lines(out.read_text(encoding="utf-8"))
    assert len(rows) == 380
    for row in rows:
        expected = fitted.related(row["id"], 5, newer=False, min_score=0.2, min_results=1)
        assert [r["id"] for r in row["related"]] == [r.id for r in expected], row["id"]
    snake = next(row for row in rows if row["id"] == SNAKE_ID)
    # Only the reports published before it (no newer), and only those scoring 0.2 or more
    assert [r["id"] for r in snake["related"]][:2] == ["kompas-524086ea", "kompas-60ddcf82"]
    assert all(r["score"] >= 0.2 for r in snake["related"])


def test_precompute_within_days_gives_the_lists_related_gives(
    model_path: Path, tmp_path: Path, fitted: Recommender
) -> None:
    out = tmp_path / "r.sqlite"
    result = invoke("precompute", "--out", out, "-k", "5", "--model", model_path, "--within-days", "2")
    assert result.exit_code == 0, result.output
    store = RelatedStore(out)
    dated = undated = 0
    for article_id in fitted.ids_.to_list():
        got = [r.id for r in store.related(str(article_id), 5)]
        try:
            expected = [r.id for r in fitted.related(str(article_id), 5, within_days=2)]
            dated += 1
        except InvalidParameterError:  # no publication date: no window around it
            expected = [r.id for r in fitted.related(str(article_id), 5)]
            undated += 1
        assert got == expected, article_id
    assert dated > 300
    with sqlite3.connect(out) as conn:
        assert dict(conn.execute("SELECT key, value FROM meta").fetchall())["within_days"] == "2.0"
    # A window narrows lists: the snake story's week-old reports of other snakes drop out.
    assert len(store.related(SNAKE_ID, 5)) <= len(fitted.related(SNAKE_ID, 5))


def test_precompute_bad_within_days(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.sqlite"
    result = invoke("precompute", "--out", out, "--model", model_path, "--within-days", "-1")
    assert_user_error(result, "within_days must be from 0 to 1,000,000 days, got -1.0")
    assert not out.exists()


def test_precompute_bad_diversity(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.sqlite"
    result = invoke("precompute", "--out", out, "--model", model_path, "--diversity", "-1")
    assert_user_error(result, "diversity must be between 0 and 1, got -1.0")
    assert not out.exists()


# --- evaluate --------------------------------------------------------------------------------------

LINKS = ROOT / "data" / "baca_juga.tsv"
EVAL_SYSTEMS = ["recommender (ours)", "sklearn defaults", "MLT BM25 (25 terms)", "sklearn tuned"]
JUDGED_KEYS = {"query_id", "ndcg_at_5", "precision_at_5", "same_story_precision_at_5", "judged_at_5", "top"}


@pytest.fixture
def sample_judgments(tmp_path: Path, fitted: Recommender) -> tuple[Path, list[str], list[str]]:
    """SNAKE_ID's top 3 of our engine graded 0, 2, 1 (its 4th and 5th unjudged), another query whose top 2
    are graded 0, and a pair outside the sample."""
    other = "kompas-defc2e02"
    top1 = [r.id for r in fitted.related(SNAKE_ID, 5)]
    top2 = [r.id for r in fitted.related(other, 5)]
    lines = ["query_id\tdoc_id\tgrade", f"{SNAKE_ID}\t{top1[0]}\t0", f"{SNAKE_ID}\t{top1[1]}\t2"]
    lines += [f"{SNAKE_ID}\t{top1[2]}\t1", f"{other}\t{top2[0]}\t0", f"{other}\t{top2[1]}\t0"]
    lines.append(f"{SNAKE_ID}\tnot-in-the-sample\t2")
    path = tmp_path / "qrels.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, top1, top2


def test_evaluate_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = invoke("evaluate", "tests/data/sample.jsonl", "--links", "data/baca_juga.tsv", "--sample", "50", "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    report = json.loads(lines[0])
    assert report["articles"] == 380
    assert report["section_queries"] == 50
    assert report["seed"] == 1
    assert report["link_sources"] > 0 and report["links"] >= report["link_sources"]
    assert [s["system"] for s in report["systems"]] == EVAL_SYSTEMS
    for system in report["systems"]:
        for measure in ("recall_at_5", "recall_at_10", "section_precision_at_10", "near_duplicate_lists", "coverage"):
            assert 0.0 <= system[measure] <= 1.0, (system["system"], measure)
        assert system["ms_per_query"] > 0


def test_evaluate_no_baselines_with_a_model(model_path: Path) -> None:
    result = invoke(
        "evaluate", SAMPLE, "--links", LINKS, "--model", model_path, "--sample", "30", "--seed", "7",
        "--no-baselines", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [s["system"] for s in report["systems"]] == ["recommender (ours)"]
    assert report["section_queries"] == 30 and report["seed"] == 7


def test_evaluate_table(model_path: Path, sample_judgments: tuple[Path, list[str], list[str]]) -> None:
    judgments = sample_judgments[0]
    result = invoke(
        "evaluate", SAMPLE, "--links", LINKS, "--judgments", judgments, "--model", model_path, "--sample", "30",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Dropped 1 judged pair of {judgments}: query or doc not in the corpus"
    assert lines[1] == f"Judged: 2 queries, 5 pairs ({judgments}); nDCG@5 over the 1 with a relevant doc"
    # By hand for our engine: grades 0, 2, 1 at ranks 1-3 against the ideal 2, 1, 0; the second query
    # (all 0) counts in P@5 only; 5 of its 10 results are judged.
    ndcg = (3 / math.log2(3) + 1 / math.log2(4)) / (3 + 1 / math.log2(3))
    ours = next(line for line in lines if line.startswith("recommender (ours)"))
    assert ours.split() == ["recommender", "(ours)", f"{ndcg:.3f}", "±", "—", "0.200", "0.100", "0.500*"]
    judged_rows = lines[lines.index(ours) : lines.index(ours) + 4]
    assert [row[:19].strip() for row in judged_rows] == EVAL_SYSTEMS
    footnote = lines[lines.index(ours) + 4]
    assert footnote == (
        "* judged@5 below 0.95: figures are a lower bound; write the unjudged pairs with --unjudged-out"
    )
    assert lines[lines.index(ours) + 5] == ""
    assert (
        lines[lines.index(ours) + 6] == "Proxies: 380 articles, 69 links from 45 sources, 30 section queries (seed 1)"
    )
    assert lines[lines.index(ours) + 8].split() == [
        "system", "recall@5", "recall@10", "P@10", "top-5", "coverage", "ms/query",
    ]  # fmt: skip
    assert [row[:19].strip() for row in lines[-4:]] == EVAL_SYSTEMS
    assert "…" not in result.stdout, result.stdout


def test_evaluate_json_per_query_and_packet(
    model_path: Path, sample_judgments: tuple[Path, list[str], list[str]], tmp_path: Path
) -> None:
    judgments, top1, top2 = sample_judgments
    packet = tmp_path / "out" / "packet.md"
    result = invoke(
        "evaluate", SAMPLE, "--links", LINKS, "--judgments", judgments, "--model", model_path, "--sample", "10",
        "--unjudged-out", packet, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["judgments"], report["judged_queries"], report["judged_pairs"]) == (str(judgments), 2, 5)
    assert report["judged_pairs_dropped"] == 1
    assert [s["system"] for s in report["systems"]] == EVAL_SYSTEMS
    graded = {(SNAKE_ID, top1[0]), (SNAKE_ID, top1[1]), (SNAKE_ID, top1[2]), ("kompas-defc2e02", top2[0])}
    graded.add(("kompas-defc2e02", top2[1]))
    unjudged = set()
    for system in report["systems"]:
        queries = system["judged"]["queries"]
        assert [q["query_id"] for q in queries] == [SNAKE_ID, "kompas-defc2e02"]
        assert all(set(q) == JUDGED_KEYS and len(q["top"]) == 5 for q in queries)
        assert queries[1]["ndcg_at_5"] is None
        unjudged |= {(q["query_id"], doc) for q in queries for doc in q["top"]} - graded
    assert report["systems"][0]["judged"]["queries"][0]["top"] == top1

    # Every unjudged pair of every system once, in the TSV to fill in and in the Markdown to read.
    n = len(unjudged)
    assert result.stderr.splitlines() == [
        f"Dropped 1 judged pair of {judgments}: query or doc not in the corpus",
        f"Wrote {n} unjudged pairs of 2 queries to {packet} (grades go in {packet.with_suffix('.tsv')})",
    ]
    rows = packet.with_suffix(".tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "query_id\tdoc_id\tgrade"
    assert sorted(rows[1:]) == sorted(f"{q}\t{d}\t" for q, d in unjudged)
    text = packet.read_text(encoding="utf-8")
    assert text.startswith("# Relevance judging packet\n\nGrades:\n- 2 = same specific story")
    headings = re.findall(r"^## Query `([^`]+)`: |^### Candidate `([^`]+)`: ", text, flags=re.MULTILINE)
    pairs, query = [], None
    for q, candidate in headings:
        query = q or query
        if candidate:
            pairs.append((query, candidate))
    assert len(pairs) == n and set(pairs) == unjudged
    for name in (*EVAL_SYSTEMS, "score", "rank"):
        assert name not in text
    # Shuffled: our own 4th and 5th result are not in rank order for both queries.
    order = [c for q, c in pairs]
    ours_unjudged = [top1[3], top1[4], top2[2], top2[3], top2[4]]
    assert [c for c in order if c in ours_unjudged] != ours_unjudged


def test_evaluate_field_mapping_and_no_judged_query(
    tmp_path: Path, model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the bundled judgments, found from the working folder
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    renamed = [{("post_id" if k == "id" else k): v for k, v in r.items()} for r in records]
    corpus = write_jsonl(tmp_path / "renamed.jsonl", [json.dumps(r, ensure_ascii=False) for r in renamed])
    result = invoke(
        "evaluate", corpus, "--field", "id=post_id", "--links", LINKS, "--model", model_path, "--sample", "5",
        "--no-baselines",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    bundled = Path("data") / "judgments" / "dev_qrels.tsv"
    assert lines[0] == f"Dropped 2,102 judged pairs of {bundled}: query or doc not in the corpus"
    assert lines[1] == f"No judged query of {bundled} is in the corpus: pass --judgments FILE for it"
    assert lines[2] == ""
    assert lines[-1].startswith("recommender (ours)")


def test_evaluate_malformed_judgments(tmp_path: Path) -> None:
    judgments = tmp_path / "qrels.tsv"
    judgments.write_text(f"{SNAKE_ID}\tkompas-defc2e02\t2\n{SNAKE_ID}\tkompas-524086ea\t5\n", encoding="utf-8")
    line = assert_user_error(invoke("evaluate", SAMPLE, "--judgments", judgments), f"{judgments}, line 2:")
    assert line == f"Error: {judgments}, line 2: grade must be 0, 1 or 2, got '5'"
    missing = tmp_path / "missing.tsv"
    assert assert_user_error(invoke("evaluate", SAMPLE, "--judgments", missing)) == f"Error: {missing}: no such file"


def test_evaluate_missing_links(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tsv"
    line = assert_user_error(invoke("evaluate", SAMPLE, "--links", missing), "no such file")
    assert line == f"Error: {missing}: no such file"


def test_evaluate_malformed_links(tmp_path: Path) -> None:
    links = tmp_path / "bad.tsv"
    links.write_text("source_id\ttarget_id\nkompas-8f42b397\n", encoding="utf-8")
    assert_user_error(invoke("evaluate", SAMPLE, "--links", links), f"{links}, line 2:", "two tab-separated ids")


def test_evaluate_model_of_another_corpus(small_corpus: Path, model_path: Path) -> None:
    result = invoke("evaluate", small_corpus, "--links", LINKS, "--model", model_path, "--sample", "5")
    assert_user_error(result, "trained on other articles")


# --- add / remove: incremental updates -------------------------------------------------------------


@pytest.fixture(scope="module")
def split_sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sample in publication order: a model and store of the first 300, and files of later articles."""
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    records.sort(key=lambda r: (r.get("published") or "", r["id"]))
    directory = tmp_path_factory.mktemp("split")

    def write(name: str, items: list[dict[str, Any]]) -> Path:
        path = directory / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
        return path

    edited = dict(records[5], title=records[5]["title"] + " (diperbarui)")
    base = write("base.jsonl", records[:300])
    model = directory / "model" / "model.joblib"
    assert invoke("train", base, "--model", model).exit_code == 0
    return {
        "records": records,
        "model": model,
        "new": write("new.jsonl", records[300:303]),
        "edit": write("edit.jsonl", [edited, records[303]]),
        "bad": write("bad.jsonl", [{"id": "x-1", "body": "no title"}, records[304]]),
    }


def updatable(split_sample: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    model = copy_model(split_sample["model"], directory)
    store = directory / "related.sqlite"
    assert invoke("precompute", "--model", model, "--out", store, "-k", "5").exit_code == 0
    return model, store


def test_add_prints_what_changed_and_updates_the_store(split_sample: dict[str, Any], tmp_path: Path) -> None:
    model, store = updatable(split_sample, tmp_path)
    result = invoke("add", split_sample["new"], "--model", model, "--store", store)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"Read 3 articles from {split_sample['new']}",
        f"Added 3 articles: {model} now holds 303 articles (update 1 since the fit)",
    ]
    assert re.fullmatch(rf"Rewrote \d+ related lists in {re.escape(str(store))} in \d+\.\d\d s", lines[2]), lines[2]
    assert len(lines) == 3 and result.stderr == ""
    new_id = split_sample["records"][300]["id"]
    assert RelatedStore(store).related(new_id)  # the new article has its list
    full = tmp_path / "full.sqlite"
    assert invoke("precompute", "--model", model, "--out", full, "-k", "5").exit_code == 0
    assert stored_lists(store) == stored_lists(full)


def test_add_an_edit_as_json(split_sample: dict[str, Any], tmp_path: Path) -> None:
    model, store = updatable(split_sample, tmp_path)
    result = invoke("add", split_sample["edit"], "--model", model, "--store", store, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert len(result.stdout.splitlines()) == 1
    assert record["added"] == [split_sample["records"][303]["id"]]
    assert record["edited"] == [split_sample["records"][5]["id"]]
    assert record["removed"] == [] and record["articles"] == 301 and record["generation"] == 1
    assert record["lists_updated"] >= 2 and record["store_rebuilt"] is False and record["refit_suggested"] is False
    with sqlite3.connect(store) as conn:
        title = conn.execute("SELECT title FROM articles WHERE id = ?", (split_sample["records"][5]["id"],))
        assert title.fetchone()[0].endswith("(diperbarui)")


def test_a_retrain_keeps_what_was_added_after_its_corpus_and_precompute_catches_up(
    split_sample: dict[str, Any], tmp_path: Path
) -> None:
    model, store = updatable(split_sample, tmp_path)
    base = tmp_path / "base.jsonl"
    base.write_bytes(Path(split_sample["model"]).parent.parent.joinpath("base.jsonl").read_bytes())
    os.utime(base, (1_000_000_000, 1_000_000_000))  # the corpus was written before the add below
    assert invoke("add", split_sample["new"], "--model", model, "--store", store).exit_code == 0
    trained = invoke("train", base, "--model", model)
    assert trained.exit_code == 0, trained.output
    assert trained.stdout.splitlines()[-2:] == [
        "Carried over 1 updates the previous model received after the corpus was written: 3 added, 0 edited, 0 removed",
        # The 3 carried over were added before the model had vectors: they go without until `embed`.
        "Semantic vectors: 300 of 303 articles (300 taken from data/clickid.vectors.sqlite), in model.vectors.sqlite; "
        "`recommender embed` encodes the other 3",
    ]
    assert len(Recommender.load(model)) == 303
    # The store is of the previous fit until the precompute: an add leaves it as it is, and says so.
    added = invoke("add", split_sample["edit"], "--model", model, "--store", store)
    assert added.exit_code == 0, added.output
    assert added.stdout.splitlines()[2:] == [
        f"Left {store} as it was: it was precomputed from another fit of the model; "
        f"`recommender precompute --out {store}` brings it up to this update"
    ]
    assert json.loads(invoke("add", split_sample["edit"], "--model", model, "--store", store, "--json").stdout)[
        "store_stale"
    ]
    assert invoke("precompute", "--model", model, "--out", store, "-k", "5").exit_code == 0
    full = tmp_path / "full.sqlite"
    assert invoke("precompute", "--model", model, "--out", full, "-k", "5").exit_code == 0
    assert stored_lists(store) == stored_lists(full)
    assert RelatedStore(store).related(split_sample["records"][300]["id"])


def test_add_without_a_store(split_sample: dict[str, Any], tmp_path: Path) -> None:
    model = copy_model(split_sample["model"], tmp_path)
    result = invoke("add", split_sample["new"], "--model", model)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        f"Added 3 articles: {model} now holds 303 articles (update 1 since the fit)"
    ]
    new_id = split_sample["records"][301]["id"]
    assert invoke("related", new_id, "--model", model, "--json").exit_code == 0


def test_add_skips_invalid_records_when_asked(split_sample: dict[str, Any], tmp_path: Path) -> None:
    model, store = updatable(split_sample, tmp_path)
    refused = invoke("add", split_sample["bad"], "--model", model, "--store", store)
    assert_user_error(refused, "line 1", "title")
    assert len(Recommender.load(model)) == 300
    result = invoke("add", split_sample["bad"], "--model", model, "--store", store, "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:3] == [
        f"Read 1 article from {split_sample['bad']}",
        "Skipped 1 invalid record:",
        "  line 1: missing required field title",
    ]


def test_remove(split_sample: dict[str, Any], tmp_path: Path) -> None:
    model, store = updatable(split_sample, tmp_path)
    gone = [split_sample["records"][0]["id"], split_sample["records"][1]["id"]]
    result = invoke("remove", *gone, "--model", model, "--store", store)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Removed 2 articles: {model} now holds 298 articles (update 1 since the fit)"
    assert re.fullmatch(r"Rewrote \d+ related lists in .* in \d+\.\d\d s", lines[1]), lines[1]
    assert not any(related in gone or own in gone for own, _, related, _ in stored_lists(store))


def test_remove_an_unknown_id_is_one_error_and_changes_nothing(split_sample: dict[str, Any], tmp_path: Path) -> None:
    model, store = updatable(split_sample, tmp_path)
    before = stored_lists(store)
    known = split_sample["records"][0]["id"]
    line = assert_user_error(invoke("remove", known, "no-such-id", "--model", model, "--store", store))
    assert line == "Error: cannot remove 'no-such-id': not in the model (nothing was removed)"
    assert stored_lists(store) == before and known in Recommender.load(model)


@pytest.mark.parametrize(
    ("store_name", "message"),
    [
        ("related.jsonl", "only a SQLite store can be updated in place"),
        ("missing.sqlite", "no store at"),
    ],
)
def test_add_refuses_stores_it_cannot_update(
    split_sample: dict[str, Any], tmp_path: Path, store_name: str, message: str
) -> None:
    model = copy_model(split_sample["model"], tmp_path)
    assert_user_error(invoke("add", split_sample["new"], "--model", model, "--store", tmp_path / store_name), message)
    assert len(Recommender.load(model)) == 300


def test_store_from_the_environment(split_sample: dict[str, Any], tmp_path: Path) -> None:
    model, store = updatable(split_sample, tmp_path)
    result = invoke("add", split_sample["new"], "--model", model, env={"RECOMMENDER_STORE": str(store)})
    assert result.exit_code == 0, result.output
    assert RelatedStore(store).meta()["model_generation"] == "1"


def test_info_after_updates(split_sample: dict[str, Any], tmp_path: Path) -> None:
    model = copy_model(split_sample["model"], tmp_path)
    assert invoke("add", split_sample["new"], "--model", model).exit_code == 0
    out = invoke("info", "--model", model).stdout
    assert re.search(
        r"^since the fit\s+\S\s+3 added, 0 edited, 0 removed \(1\.0% of the fitted corpus; \d+% of", out, re.M
    )
    assert "refit" not in out
    manifest = json.loads(invoke("info", "--model", model, "--json").stdout)
    assert manifest["updates"]["added"] == 3 and manifest["refit_suggested"] is False
    records = split_sample["records"]
    many = tmp_path / "many.jsonl"
    many.write_text("".join(json.dumps(dict(r, id=r["id"] + "-copy")) + "\n" for r in records[:30]), encoding="utf-8")
    result = invoke("add", many, "--model", model)
    assert result.stdout.splitlines()[-1] == (
        "Refit suggested: 33 articles changed since the fit (11% of 300): retrain (`recommender train`) to "
        "refresh the vocabulary and IDF"
    )
    out = invoke("info", "--model", model).stdout
    assert re.search(r"^refit\s+\S\s+suggested: 33 articles changed", out, re.M), out
