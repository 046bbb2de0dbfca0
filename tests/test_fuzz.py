"""Fuzzing the edges with hypothesis: whatever the arguments or records, a clean error or a valid result,
never a traceback, and never a changed file after an error."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE, SNAKE_ID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from recommender import CorpusError, Recommender, read_articles
from recommender.cli import app
from recommender.corpus import FIELDS, check_url, parse_published

runner = CliRunner()
# Derandomized: the same examples every run, so CI cannot fail by luck; function-scoped fixtures are not used.
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None)


def invoke(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args], prog_name="recommender")


def tree_digest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def assert_clean(result: Result) -> None:
    """Success, one ``Error:`` line with exit 1, or Click's usage error with exit 2: never a traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert result.stdout == ""
    elif result.exit_code == 2:
        assert "Usage: recommender" in result.stderr and "Error" in result.stderr, result.stderr
    else:
        assert result.exit_code == 0, result.output


def sample_records(n: int) -> list[dict[str, Any]]:
    with open(SAMPLE, encoding="utf-8") as fh:
        return [json.loads(line) for line in itertools.islice(fh, n)]


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fuzz-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def fuzz_model(model_path: Path, workdir: Path) -> Path:
    """A copy of the sample model, whose files every fuzzed command must leave as they were."""
    target = workdir / "model"
    shutil.copytree(model_path.parent, target)
    return target / model_path.name


# --- corpus records -------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "  ", "2019-09-21", "2019-13-45", "21/09/2019", "https://a.id/x", "javascript:x", "/a"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=5), scalars, max_size=2))
record = st.dictionaries(st.sampled_from([*FIELDS, "extra"]), values, max_size=len(FIELDS) + 1)
good_record = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=12), "title": st.text(max_size=40), "body": st.text(max_size=80)},
    optional={"url": values, "published": values, "tags": values, "section": values},
)


def _line(item: dict[str, Any] | str) -> str:
    return item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)


@settings(FUZZ, max_examples=150)
@given(items=st.lists(st.one_of(record, good_record, st.text(max_size=40)), min_size=1, max_size=6))
def test_any_records_read_cleanly(workdir: Path, items: list[dict[str, Any] | str]) -> None:
    path = workdir / "records.jsonl"
    path.write_text("".join(_line(i).replace("\n", " ") + "\n" for i in items), encoding="utf-8")
    try:
        corpus = read_articles(path)
    except CorpusError as exc:
        assert exc.path == str(path)
    else:
        assert len(corpus.articles) == sum(1 for i in items if _line(i).strip())
    try:
        lenient = read_articles(path, skip_invalid=True).articles
    except CorpusError as exc:  # record problems are skipped: only the file as a whole can fail
        assert exc.line is None and exc.problem == "no valid articles in the file"
        lenient = []
    for article in lenient:
        assert article.id and article.id == article.id.strip()
        assert article.url is None or check_url(article.url) == article.url
        assert article.published is None or parse_published(article.published) is not None


@settings(FUZZ, max_examples=15)
@given(extra=st.lists(st.one_of(record, good_record), min_size=1, max_size=2))
def test_train_on_fuzzed_records_is_clean_and_an_error_changes_nothing(
    fuzz_model: Path, workdir: Path, extra: list[dict[str, Any]]
) -> None:
    corpus = workdir / "train.jsonl"
    corpus.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*sample_records(8), *extra]), encoding="utf-8"
    )
    target = workdir / "trained" / "model.joblib"
    if not target.parent.exists():
        shutil.copytree(fuzz_model.parent, target.parent)
    before = tree_digest(target.parent)
    result = invoke("train", corpus, "--model", target, "--topic-dims", 0)
    assert_clean(result)
    if result.exit_code == 0:
        assert len(Recommender.load(target)) == len(read_articles(corpus).articles)
    else:
        assert tree_digest(target.parent) == before


# --- command-line arguments -----------------------------------------------------------------------------

EDGES = ["99999999999999999999", "1e12", "nan", "inf", "-inf", "-1", "0", "1001", "", "x"]


def number(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """Mostly a valid value, so that a run gets past the other options to where this one is used; often
    one of the values that break things; sometimes any float at all."""
    edges = st.sampled_from(EDGES)
    return st.one_of(valid.map(str), valid.map(str), edges, edges, st.floats().map(repr))


dates = st.one_of(
    st.sampled_from(["2019-09-01", "2019-09-21T10:00:00+07:00", "2019-09-30"]),
    st.sampled_from(["2019-02-30", "nope", "", "99999-01-01", "2019-09-21T25:00"]),
    st.text(max_size=12),
)
flag = st.just(None)
options = st.fixed_dictionaries(
    {},
    optional={
        "-k": number(st.integers(1, 1000)),
        "--within-days": number(st.floats(0, 1e6)),
        "--diversity": number(st.floats(0, 1)),
        "--min-score": number(st.floats(0, 1)),
        "--min-results": number(st.integers(0, 20)),
        "--after": dates,
        "--before": dates,
        "--section": st.sampled_from(["berita", "olahraga", "", "<b>", "x" * 300]),
        "--exclude": st.one_of(st.sampled_from(["kompas-defc2e02", "nope"]), st.text(max_size=10)),
        "--explain": flag,
        "--no-newer": flag,
        "--json": flag,
        "--html": flag,
    },
)


def _arguments(chosen: dict[str, str | None]) -> list[object]:
    args: list[object] = []
    for name, value in chosen.items():
        args.extend([name] if value is None else [name, value])
    return args


@settings(FUZZ, max_examples=150)
@given(
    article=st.one_of(st.sampled_from([SNAKE_ID, f" {SNAKE_ID}\t"]), st.text(max_size=12)),
    draft=st.booleans(),
    chosen=options,
)
def test_related_with_any_arguments(fuzz_model: Path, article: str, draft: bool, chosen: dict[str, str | None]) -> None:
    before = tree_digest(fuzz_model.parent)
    args: list[object] = ["related", *(["--title", article] if draft else [article]), "--model", fuzz_model]
    args.extend(_arguments(chosen))
    result = invoke(*args)
    assert_clean(result)
    if result.exit_code == 0 and "--json" in args and "--html" not in args:
        for line in result.stdout.splitlines():
            item = json.loads(line)
            assert item["id"] != SNAKE_ID or article.strip() != SNAKE_ID
            assert 0 <= item["score"] <= 1 and not math.isnan(item["score"])
    assert tree_digest(fuzz_model.parent) == before


@settings(FUZZ, max_examples=15)
@given(
    chosen=st.fixed_dictionaries(
        {},
        optional={
            "-k": number(st.integers(1, 1000)),
            "--within-days": number(st.floats(0, 1e6)),
            "--min-score": number(st.floats(0, 1)),
            "--no-newer": flag,
        },
    ),
    suffix=st.sampled_from([".sqlite", ".jsonl", ".csv", ".txt"]),
)
def test_precompute_with_any_arguments(
    fuzz_model: Path, workdir: Path, chosen: dict[str, str | None], suffix: str
) -> None:
    out_dir = workdir / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir()
    args: list[object] = ["precompute", "--out", out_dir / f"related{suffix}", "--model", fuzz_model]
    args.extend(_arguments(chosen))
    before = tree_digest(fuzz_model.parent)
    result = invoke(*args)
    assert_clean(result)
    if result.exit_code != 0:
        assert list(out_dir.iterdir()) == []
    assert tree_digest(fuzz_model.parent) == before
