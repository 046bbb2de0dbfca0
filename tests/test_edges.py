"""Hostile and careless input at the edges (issue 12): each a clean error, nothing changed on disk."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SAMPLE, SNAKE_ID, copy_model
from typer.testing import CliRunner, Result

from recommender import (
    Article,
    CorpusError,
    InvalidParameterError,
    Recommender,
    UnknownArticleError,
    precompute,
    read_articles,
)
from recommender.cli import app
from recommender.corpus import check_url
from recommender.ranking import MAX_K, RankingOptions, choose, title_key

runner = CliRunner()


def invoke(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args], prog_name="recommender")


def assert_user_error(result: Result, message: str) -> None:
    """Exit code 1, nothing on stdout, exactly the one ``Error:`` line on stderr (no traceback)."""
    assert isinstance(result.exception, SystemExit), f"unhandled {result.exception!r}\n{result.output}"
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"Error: {message}"]


def tree_digest(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` and the SHA-256 of its bytes: equal digests, nothing changed."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def records(n: int) -> list[dict[str, Any]]:
    with open(SAMPLE, encoding="utf-8") as fh:
        return [json.loads(line) for line in itertools.islice(fh, n)]


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
    return path


# --- k ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -1, MAX_K + 1, 10**9, 10**20, 2.0, True, "5"])
def test_k_outside_1_to_max_is_a_named_error(fitted: Recommender, k: Any) -> None:
    message = f"k must be a whole number from 1 to {MAX_K:,}, got"
    with pytest.raises(InvalidParameterError, match=message):
        fitted.related(SNAKE_ID, k)
    with pytest.raises(InvalidParameterError, match=message):
        fitted.related_to_text(title="ular", k=k)
    with pytest.raises(InvalidParameterError, match=message):
        fitted.all_related(k)


def test_the_maximum_k_is_allowed(fitted: Recommender) -> None:
    results = fitted.related(SNAKE_ID, MAX_K, min_score=0)
    assert 0 < len(results) <= min(MAX_K, len(fitted) - 1)
    assert len({r.id for r in results}) == len(results)


@pytest.mark.parametrize("k", ["1000000000", "99999999999999999999", "0", "1001"])
def test_cli_k_outside_the_range(model_path: Path, k: str) -> None:
    assert_user_error(
        invoke("related", SNAKE_ID, "-k", k, "--model", model_path, "--json"),
        f"k must be a whole number from 1 to 1,000, got {k}",
    )


def test_precompute_with_k_outside_the_range_writes_nothing(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "related.sqlite"
    assert_user_error(
        invoke("precompute", "--out", out, "-k", "1000000000", "--model", model_path),
        "k must be a whole number from 1 to 1,000, got 1000000000",
    )
    fitted = Recommender.load(model_path)
    with pytest.raises(InvalidParameterError):
        precompute(fitted, out, 1001)
    assert list(tmp_path.iterdir()) == []


# --- the near-duplicate and diversity selection ----------------------------------------------------------


def reference_choose(
    rows: np.ndarray, rel: np.ndarray, k: int, matrix: Any, title_ids: np.ndarray, dedup: float, diversity: float
) -> list[int]:
    """The selection as first written: quadratic, plain Python, over the candidates' cosines."""
    valid = [(int(r), float(s)) for r, s in zip(rows, rel, strict=True) if r >= 0 and s > 0]
    cand = [r for r, _ in valid]
    score = dict(valid)
    x = matrix[cand].astype(np.float64)
    gram = (x @ x.T).toarray()
    pos = {r: i for i, r in enumerate(cand)}
    alive, chosen, penalty = list(cand), [], dict.fromkeys(cand, 0.0)
    while len(chosen) < k and alive:
        if diversity > 0 and chosen:
            best = max(alive, key=lambda r: ((1 - diversity) * score[r] - diversity * penalty[r], -alive.index(r)))
        else:
            best = max(alive, key=lambda r: (score[r], -alive.index(r)))
        alive.remove(best)
        if dedup > 0 and any(title_ids[c] == title_ids[best] or gram[pos[best], pos[c]] >= dedup for c in chosen):
            continue
        chosen.append(best)
        for r in alive:
            penalty[r] = max(penalty[r], gram[pos[best], pos[r]])
    return chosen


@pytest.mark.parametrize(("dedup", "diversity"), [(0.8, 0.0), (0.3, 0.0), (None, 0.0), (0.8, 0.4), (None, 0.7)])
def test_selection_matches_the_quadratic_reference(fitted: Recommender, dedup: float | None, diversity: float) -> None:
    """Near-duplicates (low thresholds make many) and MMR, picked as the plain quadratic loop picks them."""
    matrix = fitted.matrix_
    titles = fitted.titles_.to_list()
    keys: dict[str, int] = {}
    title_ids = np.array([keys.setdefault(title_key(t), len(keys)) for t in titles], dtype=np.int64)
    options = RankingOptions(dedup=dedup, diversity=diversity, min_score=0)
    rng = np.random.default_rng(7)
    for query in rng.choice(len(fitted), size=12, replace=False):
        sims = (matrix @ matrix[query].T).toarray().ravel()
        sims[query] = 0
        order = np.argsort(-sims, kind="stable")[:80]
        rel = sims[order].astype(np.float32)
        for k in (1, 5, 30, 80):
            got = choose(order, rel, k, matrix=matrix, title_ids=title_ids, options=options)
            want = reference_choose(order, rel, k, matrix, title_ids, dedup or -1.0, diversity)
            assert got == want, (query, k)
    if dedup is None and diversity == 0:
        return  # nothing to select: the first k, as given
    # Candidates not in score order take the general path, and agree too.
    shuffled = rng.permutation(80)
    got = choose(order[shuffled], rel[shuffled], 10, matrix=matrix, title_ids=title_ids, options=options)
    assert got == reference_choose(order[shuffled], rel[shuffled], 10, matrix, title_ids, dedup or -1.0, diversity)


# --- within_days ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [math.nan, math.inf, -math.inf, 1e12, -1.0, 1_000_001])
def test_within_days_out_of_range(fitted: Recommender, model_path: Path, days: float) -> None:
    message = f"within_days must be from 0 to 1,000,000 days, got {float(days)}"
    with pytest.raises(InvalidParameterError) as caught:
        fitted.related(SNAKE_ID, within_days=days)
    assert str(caught.value) == message
    with pytest.raises(InvalidParameterError):
        fitted.all_related(5, within_days=days)
    cli_value = {math.nan: "nan", math.inf: "inf", -math.inf: "-inf"}.get(days, str(days))
    assert_user_error(invoke("related", SNAKE_ID, "--within-days", cli_value, "--model", model_path), message)


def test_within_days_at_the_maximum_is_no_window(fitted: Recommender) -> None:
    """A window past the calendar's ends is open on that side: the same list as without one."""
    assert fitted.related(SNAKE_ID, within_days=1_000_000) == fitted.related(SNAKE_ID)


# --- ids ------------------------------------------------------------------------------------------------


def test_ids_are_stripped_when_looked_up(fitted: Recommender, model_path: Path) -> None:
    assert fitted.related(f"  {SNAKE_ID}\t") == fitted.related(SNAKE_ID)
    assert invoke("related", f" {SNAKE_ID} ", "--model", model_path, "--json").stdout == (
        invoke("related", SNAKE_ID, "--model", model_path, "--json").stdout
    )
    with pytest.raises(UnknownArticleError, match="unknown article id ' nope '"):
        fitted.related(" nope ")


def test_remove_an_id_given_twice_changes_nothing(model_path: Path, tmp_path: Path) -> None:
    path = copy_model(model_path, tmp_path / "m")
    before = tree_digest(path.parent)
    other = Recommender.load(path).ids_[1]
    assert_user_error(
        invoke("remove", other, SNAKE_ID, f" {other}", "--model", path),
        f"article id {other!r} is given twice to remove: give each id once",
    )
    assert tree_digest(path.parent) == before


# --- output ----------------------------------------------------------------------------------------------


def test_titles_are_printed_as_written_never_as_markup(tmp_path: Path) -> None:
    base = records(12)
    hostile = "Banjir Jakarta [link=javascript:alert(1)]klik[/link] [/] [bold]"
    twin = dict(base[0], id="twin", title=hostile)  # the same text: first in the first article's list
    corpus = write_jsonl(tmp_path / "c.jsonl", [*base, twin])
    model = tmp_path / "m" / "model.joblib"
    assert invoke("train", corpus, "--model", model, "--topic-dims", 0).exit_code == 0
    result = invoke("related", base[0]["id"], "--model", model, "-k", 1)
    assert result.exit_code == 0, result.output
    table = "".join(line.split("│")[-1].strip() for line in result.stdout.splitlines()[2:])
    assert hostile.replace(" ", "") in table.replace(" ", "")


def test_json_and_html_together_is_an_error(model_path: Path) -> None:
    assert_user_error(
        invoke("related", SNAKE_ID, "--json", "--html", "--model", model_path), "choose one of --json and --html"
    )


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("related", "Usage: recommender related [OPTIONS] [ID]"),
        ("add", "Usage: recommender add [OPTIONS] FILE"),
        ("remove", "Usage: recommender remove [OPTIONS] ID..."),
        ("train", "Usage: recommender train [OPTIONS] [CORPUS]"),
        ("evaluate", "Usage: recommender evaluate [OPTIONS] [CORPUS]"),
        ("precompute", "Usage: recommender precompute [OPTIONS]"),
        ("info", "Usage: recommender info [OPTIONS]"),
    ],
)
def test_help_reads_plainly(command: str, usage: str) -> None:
    text = invoke(command, "--help").stdout
    assert text.splitlines()[0] == usage
    assert "<" not in text.replace("<TAB>", ""), text  # no "<bool>", "<str>", "<list[str]>"
    if command == "precompute":
        assert "(recommender[dask])" in text  # not eaten as markup


# --- corpus URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "java\tscript:alert(1)",
        "https://example.com/\nx",
        "ftp://example.com/a",
        "https:/example.com",
        "example.com/berita",
        "berita/1.html",
    ],
)
def test_unsafe_urls_are_corpus_errors(tmp_path: Path, url: str) -> None:
    items = records(3)
    items[1]["url"] = url
    corpus = write_jsonl(tmp_path / "c.jsonl", items)
    with pytest.raises(CorpusError) as caught:
        read_articles(corpus)
    assert caught.value.line == 2
    assert "field 'url'" in str(caught.value)
    skipped = read_articles(corpus, skip_invalid=True)
    assert [a.id for a in skipped.articles] == [items[0]["id"], items[2]["id"]]
    assert [s.line for s in skipped.skipped] == [2]
    with pytest.raises(CorpusError, match="field 'url'"):
        Article(id="a", title="t", url=url)
    model = tmp_path / "m" / "model.joblib"
    result = invoke("train", corpus, "--model", model)
    assert result.exit_code == 1 and result.stderr.startswith(f"Error: {corpus}, line 2: field 'url'")
    assert not model.parent.exists()


@pytest.mark.parametrize("url", ["https://example.com/a?x=1", "HTTP://EXAMPLE.COM", "/berita/1"])
def test_safe_urls_pass(url: str) -> None:
    assert check_url(url) == url
    assert Article(id="a", title="t", url=url).url == url


# --- another user ---------------------------------------------------------------------------------------

IMPORT_AND_LOOK_UP = """
import sys
from recommender import Recommender, read_articles
from recommender._numba_cache import cache_dir
model = Recommender.train(read_articles(sys.argv[1]).articles[:60], n_jobs=1)
print(cache_dir(), len(model.related(model.ids_[0], 3, min_score=0)))
"""


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to run as another user")
def test_a_user_who_cannot_write_beside_the_package_can_use_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A CMS running as another user (here ``nobody``, whose home does not exist) imports recommender and
    runs the compiled kernels: numba caches them in a private directory of its own, not beside the sources."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is missing")
    shared = Path(tempfile.mkdtemp(prefix="recommender-user-"))
    try:
        shared.chmod(0o755)
        corpus = shutil.copy(SAMPLE, shared / "sample.jsonl")
        os.chmod(corpus, 0o644)
        nobody = pwd.getpwnam("nobody")
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
        as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
        command = [*as_nobody, sys.executable, "-I", "-c", IMPORT_AND_LOOK_UP, str(corpus)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=shared, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        where, found = done.stdout.split()
        assert found == "3"
        info = Path(where).stat()
        assert info.st_uid == nobody.pw_uid and info.st_mode & 0o077 == 0  # private to that user
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_a_plain_date_as_before_includes_that_whole_day(fitted: Recommender, model_path: Path) -> None:
    """ "On or before 2019-09-20": an article of 2019-09-20 04:19 UTC is kept, as the help says."""
    target = "kompas-defc2e02"  # published 2019-09-20T11:19:00+07:00
    assert target in {r.id for r in fitted.related(SNAKE_ID, 50, before="2019-09-20", min_score=0)}
    assert target not in {r.id for r in fitted.related(SNAKE_ID, 50, before="2019-09-19", min_score=0)}
    assert target not in {r.id for r in fitted.related(SNAKE_ID, 50, before="2019-09-20T04:00:00Z", min_score=0)}
    shown = invoke("related", SNAKE_ID, "--before", "2019-09-20", "--model", model_path, "--json", "-k", 50)
    assert target in shown.stdout
