"""The installed ``recommender`` console script as real processes: end to end, errors, and SIGKILL mid-job."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import copy_model

from recommender import Article, Recommender, read_manifest
from recommender.batch import precompute
from recommender.model import data_path
from recommender.store import RelatedStore

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "data" / "sample.jsonl"
SNAKE_ID = "kompas-8f42b397"
SNAKE_OTHERS = {"kompas-defc2e02", "kompas-524086ea", "kompas-60ddcf82", "wowkeren-43b9afa3"}
COPIES = 10  # the big corpus: the sample 10 times over, ids suffixed


def _script() -> str:
    beside = Path(sys.executable).parent / "recommender"
    found = str(beside) if beside.is_file() else shutil.which("recommender")
    if found is None:
        pytest.skip("the recommender console script is not installed")
    return found


SCRIPT = _script()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RECOMMENDER_MODEL"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(args: Sequence[object], cwd: Path) -> subprocess.Popen[str]:
    """Start the console script in its own process group (so a kill also reaches its workers)."""
    return _spawn([SCRIPT, *map(str, args)], cwd)


def _spawn(command: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        start_new_session=True,
    )


# Fault injection: the console script run through a launcher that, at a chosen moment of the job, writes a marker
# file and waits there to be killed. The kill then lands at that moment however fast or slow the machine is.
LAUNCHER = """
import os, runpy, sys, time
from pathlib import Path

marker, moment, script = Path(sys.argv[1]), sys.argv[2], sys.argv[3]


def stop_here():
    marker.write_text(str(os.getpid()))
    while True:
        time.sleep(3600)


if moment == "analysing":  # once the first chunk of articles is analysed, before the last
    import recommender.model as model

    count_terms = model.count_terms

    def counting(analyzer, docs, *, n_jobs=-1, progress=None):
        def step(done, total):
            if progress is not None:
                progress(done, total)
            if 0 < done < total:
                stop_here()

        return count_terms(analyzer, docs, n_jobs=n_jobs, progress=step)

    model.count_terms = counting
elif moment == "saving":  # the new model file written in full beside the old one, not yet renamed over it
    import joblib

    dump = joblib.dump

    def dumping(*args, **kwargs):
        result = dump(*args, **kwargs)
        stop_here()
        return result

    joblib.dump = dumping
elif moment == "writing":  # every list handed to the store's writer, its transaction not yet committed
    import recommender.blocks as blocks

    all_related = blocks.all_related

    def related_then_stop(*args, **kwargs):
        lists = all_related(*args, **kwargs)

        def each():
            yield from lists
            stop_here()

        return each()

    blocks.all_related = related_then_stop
else:
    raise SystemExit(f"unknown moment {moment!r}")
sys.argv = [script, *sys.argv[4:]]
runpy.run_path(script, run_name="__main__")
"""


def start_stopping(moment: str, args: Sequence[object], cwd: Path, marker: Path) -> subprocess.Popen[str]:
    """Start the console script (own process group) so that it stops at ``moment``, writing ``marker`` there."""
    launcher = marker.with_name("launcher.py")
    launcher.write_text(LAUNCHER, encoding="utf-8")
    return _spawn([sys.executable, str(launcher), str(marker), moment, SCRIPT, *map(str, args)], cwd)


def run_all(commands: Sequence[Sequence[object]], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands side by side (process start-up dominates), results in the same order."""
    procs = [start(args, cwd) for args in commands]
    results = []
    for args, proc in zip(commands, procs, strict=True):
        stdout, stderr = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess([str(a) for a in args], proc.returncode, stdout, stderr))
    return results


def run(args: Sequence[object], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_all([args], cwd)[0]


def kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # it had already finished
        pass
    proc.communicate(timeout=60)


def kill_stopped(proc: subprocess.Popen[str]) -> None:
    """Kill a job waiting at its stop (see LAUNCHER) with its process group, and prove the kill is what ended it."""
    assert proc.poll() is None, f"the job ended before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.args}: {result.stderr}"
    assert "Traceback" not in result.stderr


def digests(model: Path) -> dict[str, str]:
    """SHA-256 of every file in a model's folder (its manifest and data file): equal, byte-identical files."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(model.parent.iterdir())}


@pytest.fixture(scope="module")
def big_articles(sample_articles: list[Article]) -> list[Article]:
    return [dataclasses.replace(a, id=f"{a.id}-{i}") for i in range(COPIES) for a in sample_articles]


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    with open(SAMPLE, encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    with open(path, "w", encoding="utf-8") as out:
        for i in range(COPIES):
            for r in records:
                out.write(json.dumps(r | {"id": f"{r['id']}-{i}"}, ensure_ascii=False) + "\n")
    return path


@pytest.fixture(scope="module")
def big_model(big_articles: list[Article], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bigmodel") / "big.joblib"
    # Ten copies of every story: near-duplicate suppression would collapse them (and spend the job
    # on it); the kill tests want a plain, steadily growing job.
    Recommender.train(big_articles, n_jobs=1, dedup=None).save(path)
    return path


# --- end to end ------------------------------------------------------------------------------------


def test_train_related_precompute_end_to_end(tmp_path: Path) -> None:
    train = run(["train", SAMPLE, "--model", "m.joblib"], tmp_path)
    assert_ok(train)
    lines = train.stdout.splitlines()
    assert lines[0] == f"Read 380 articles from {SAMPLE}"
    assert re.fullmatch(r"Trained on 380 articles, \d{1,3}(,\d{3})* terms in \d+\.\d s", lines[1]), lines[1]
    saved = re.fullmatch(
        r"Saved m\.joblib \(\d+\.\d MB\): manifest m\.json, data file (m-[0-9a-f]{16}\.joblib)", lines[2]
    )
    assert saved, lines[2]
    # The sample's texts are the bundled corpus's: their shipped semantic vectors are taken, nothing encoded.
    vectors_line = (
        r"Semantic vectors: 380 of 380 articles \(380 taken from \S*clickid\.vectors\.sqlite\), in m\.vectors\.sqlite"
    )
    assert re.fullmatch(vectors_line, lines[3]), lines[3]
    assert len(lines) == 4
    assert train.stderr.strip() == ""  # the progress bar is on stderr, and transient
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.json", saved.group(1), "m.vectors.sqlite"])

    related, draft, pre, info = run_all(
        [
            ["related", SNAKE_ID, "--model", "m.joblib", "--json", "-k", "4"],
            ["related", "--title", "Ular berkaki ditemukan di lokasi karhutla Riau", "--json", "-m", "m.joblib"],
            ["precompute", "--out", "r.sqlite", "-k", "3", "--model", "m.joblib"],
            ["info", "--json", "--model", "m.joblib"],
        ],
        tmp_path,
    )
    for result in (related, draft, pre, info):
        assert_ok(result)

    # --json is pure JSON Lines on stdout: every line an object, nothing else (no bar, no blank line).
    assert related.stdout.endswith("\n")
    rows = [json.loads(line) for line in related.stdout.split("\n")[:-1]]
    assert len(rows) == 4
    fields = {"id", "title", "url", "published", "section", "score", "similarity", "semantic"}
    assert all(set(row) == fields for row in rows)
    assert all(0.7 < row["semantic"] <= 1 and row["score"] <= row["similarity"] for row in rows)
    assert {row["id"] for row in rows} == SNAKE_OTHERS
    draft_rows = [json.loads(line) for line in draft.stdout.split("\n")[:-1]]
    assert {row["id"] for row in draft_rows} == SNAKE_OTHERS | {SNAKE_ID}

    match = re.fullmatch(
        r"Wrote (\d{1,3}(?:,\d{3})*) related links for 380 articles to r\.sqlite \(sqlite, k=3\) in \d+\.\d s\n"
        r"Mode: exact \(\d+\.\d [kM] multiply-adds\)\n",
        pre.stdout,
    )
    assert match, pre.stdout
    pairs = int(match.group(1).replace(",", ""))
    assert pairs <= 380 * 3
    with sqlite3.connect(tmp_path / "r.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM related").fetchone()[0] == pairs
        assert conn.execute("SELECT COUNT(DISTINCT article_id) FROM related").fetchone()[0] == 380
    stored = RelatedStore(tmp_path / "r.sqlite").related(SNAKE_ID)
    assert [r.id for r in stored] == [row["id"] for row in rows[:3]]

    manifest = json.loads(info.stdout)
    vectors = manifest.pop("vectors")  # beside the manifest: the vectors file's
    assert (vectors["articles_with_vector"], vectors["articles_without_vector"]) == (380, 0)
    assert manifest == read_manifest(tmp_path / "m.joblib")
    assert manifest["corpus"]["articles"] == 380


# --- errors ----------------------------------------------------------------------------------------


def test_errors_are_one_line_without_traceback(model_path: Path, tmp_path: Path) -> None:
    missing, unknown, suffix, bad_corpus = run_all(
        [
            ["related", SNAKE_ID, "--model", "nowhere/model.joblib"],
            ["related", "nope-123", "--model", model_path],
            ["precompute", "--out", "r.txt", "--model", model_path],
            ["train", "no-such-corpus.jsonl", "--model", "m.joblib"],
        ],
        tmp_path,
    )
    assert missing.stderr == ("Error: no model at nowhere/model.joblib: train one first with `recommender train`\n")
    assert unknown.stderr.startswith("Error: unknown article id 'nope-123': ")
    assert ".jsonl" in suffix.stderr and ".sqlite" in suffix.stderr
    assert bad_corpus.stderr == "Error: no-such-corpus.jsonl: no such file\n"
    for result in (missing, unknown, suffix, bad_corpus):
        assert result.returncode == 1, result.stderr
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("Error: ") and result.stderr.endswith("\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- crash safety: SIGKILL mid-job -----------------------------------------------------------------


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 60.0) -> bool:
    """Poll ``condition()`` until true (returns True) or the process ends (returns False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    raise AssertionError("timed out waiting for the process")


@pytest.mark.parametrize("moment", ["analysing", "saving"])
def test_killed_train_leaves_the_previous_model_intact(
    moment: str, big_corpus: Path, model_path: Path, tmp_path: Path
) -> None:
    model = copy_model(model_path, tmp_path / "models")
    before = digests(model)
    marker = tmp_path / "stopped"
    proc = start_stopping(moment, ["train", big_corpus, "--model", model], tmp_path, marker)
    assert proc.stdout is not None
    assert proc.stdout.readline() == f"Read {380 * COPIES:,} articles from {big_corpus}\n"
    assert _wait_for(marker.exists, proc), f"the job ended before reaching {moment}: {proc.communicate()}"
    if moment == "saving":  # the new model file is there, beside the old one
        assert list(model.parent.glob(".model.joblib.*.tmp"))
    kill_stopped(proc)

    if moment == "saving":  # the killed job's temporary file is left behind: the others are as they were
        assert [p.name for p in model.parent.glob(".model.joblib.*.tmp")]
        assert {n: d for n, d in digests(model).items() if not n.endswith(".tmp")} == before
    else:
        assert digests(model) == before
    loaded = Recommender.load(model)
    assert len(loaded) == 380
    assert {r.id for r in loaded.related(SNAKE_ID, 4)} == SNAKE_OTHERS
    if moment == "saving":
        # The next save beside it removes the killed job's temporary file (and the previous data file).
        loaded.save(model)
        assert not list(model.parent.glob(".model.joblib.*.tmp"))
    assert sorted(p.name for p in model.parent.iterdir()) == sorted(["model.json", data_path(model).name])


def _counts(path: Path) -> tuple[set[int], int, str | None]:
    """Distinct per-article list lengths, number of articles with lists, and meta k (read-only)."""
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
        lengths = {n for (n,) in conn.execute("SELECT COUNT(*) FROM related GROUP BY article_id")}
        articles = conn.execute("SELECT COUNT(DISTINCT article_id) FROM related").fetchone()[0]
        meta = conn.execute("SELECT value FROM meta WHERE key = 'k'").fetchone()
    return lengths, articles, meta[0] if meta else None


def test_killed_precompute_leaves_the_previous_lists_intact(big_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "related.sqlite"
    model = Recommender.load(big_model)
    n = len(model)
    old = precompute(model, out, 2)
    assert old.pairs == 2 * n
    assert _counts(out) == ({2}, n, "2")

    marker = tmp_path / "stopped"
    proc = start_stopping("writing", ["precompute", "--out", out, "-k", "50", "--model", big_model], tmp_path, marker)
    assert _wait_for(marker.exists, proc), f"the job ended before writing its lists: {proc.communicate()}"
    # Every new row is in the job's open transaction; a reader meanwhile (the CMS) still sees the old lists.
    assert _counts(out) == ({2}, n, "2")
    assert len(RelatedStore(out).related(f"{SNAKE_ID}-0")) == 2
    kill_stopped(proc)

    assert _counts(out) == ({2}, n, "2"), "a killed job must leave the old lists"
    # Readable through the store a CMS uses, and rewritable by the next job.
    assert len(RelatedStore(out).related(f"{SNAKE_ID}-0")) == 2
    precompute(model, out, 3)
    assert _counts(out) == ({3}, n, "3")
