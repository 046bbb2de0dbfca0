"""Crash-proof model files, by fault injection: a writer (``save``, ``recommender train``, an update) is
killed with SIGKILL just before its 1st, 2nd, 3rd ... file operation in the model's folder, until one
run completes. After every kill the model loads as exactly the old one or the new one, and the next
save leaves only the manifest and the data file it names."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import joblib
import pytest
from conftest import copy_model

import recommender.modelfile as modelfile_module
from recommender import Article, Recommender, Updater, read_articles, read_manifest
from recommender.model import data_path

SAMPLE = Path(__file__).parent / "data" / "sample.jsonl"
PROBES = ["kompas-8f42b397", *(a.id for a in read_articles(SAMPLE).articles[40:60:4])]

# The helper process: prepares the job once, then for N = 0, 1, 2, ... forks a child that runs the job on
# its own copy of the model's folder, with the file operations that make a model's files (renames,
# deletions, flushes) wrapped: the Nth of them on a path in that folder kills the child (SIGKILL)
# instead. Run 0 kills nothing and counts the operations; the helper prints how each child ended.
HELPER = textwrap.dedent(
    """
    import json, os, shutil, signal, sys
    from pathlib import Path

    mode, initial, source, work = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])

    from recommender import Recommender, Updater, read_articles
    from recommender.cli import app

    if mode == "save":
        model = Recommender.load(source, mmap=False)
    elif mode == "add":
        articles = read_articles(source).articles

    def job(target):
        if mode == "save":
            return lambda: model.save(target)
        if mode == "add":
            updater = Updater(target)  # prepared before the fork: the child only writes
            return lambda: updater.add(articles)
        # Without the shipped vectors: a kill after the commit would leave the new model with none or
        # some of them, lists that differ from the finished run's (vectors are degraded, never lost: tests
        # in test_semantic.py), while this test follows the model's own files.
        return lambda: app(["train", source, "--model", str(target), "--no-vectors"], standalone_mode=False)

    def run(n):
        folder = work / f"run-{n}"
        shutil.copytree(initial, folder)
        run_job = job(folder / "model.joblib")
        read, write = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            inside = os.path.realpath(folder)
            calls = 0

            def in_folder(arg):
                if isinstance(arg, int):  # a file descriptor: what it is open on
                    arg = os.readlink(f"/proc/self/fd/{arg}")
                arg = os.path.abspath(os.fspath(arg))
                return arg == inside or os.path.dirname(arg) == inside

            def killing(real):
                def call(*args, **kwargs):
                    nonlocal calls
                    if in_folder(args[0]):
                        calls += 1
                        if calls == n:
                            os.kill(os.getpid(), signal.SIGKILL)
                    return real(*args, **kwargs)
                return call

            for name in ("replace", "rename", "unlink", "remove", "fsync"):
                setattr(os, name, killing(getattr(os, name)))
            run_job()
            os.write(write, str(calls).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as fh:
            calls = fh.read()
        _, status = os.waitpid(pid, 0)
        return {"folder": str(folder), "exit": os.waitstatus_to_exitcode(status), "calls": calls}

    counted = run(0)
    runs = [counted] + [run(n) for n in range(1, int(counted["calls"] or 0) + 2)]
    print(json.dumps(runs))
    """
)


def fingerprint(model: Path | Recommender) -> tuple[object, ...]:
    """What tells two models apart: size and related lists of a few articles."""
    if not isinstance(model, Recommender):
        model = Recommender.load(model)
    return len(model), tuple(tuple(r.id for r in model.related(i, 5)) if i in model else () for i in PROBES)


def to_old_layout(path: Path) -> None:
    """Make a saved model look as versions before content-addressed names saved it: the data file at the
    model path itself, and the manifest naming it so."""
    manifest = read_manifest(path)
    (path.parent / manifest["model_file"]["name"]).rename(path)
    manifest["model_file"]["name"] = path.name
    path.with_suffix(".json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def write_jsonl(path: Path, articles: list[Article]) -> Path:
    rows = [{"id": a.id, "title": a.title, "body": a.body, "published": a.published} for a in articles]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def kill_at_every_step(initial: Path, mode: str, source: Path, work: Path) -> tuple[list[Path], Path]:
    """Run the job on copies of the folder ``initial``: once whole, counting its file operations in the
    model's folder, then killed before each of them in turn; the folders of the killed runs and of the
    whole one."""
    helper = subprocess.run(
        [sys.executable, "-c", HELPER, mode, str(initial), str(source), str(work)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert helper.returncode == 0, helper.stderr
    whole, *runs = json.loads(helper.stdout)
    operations = int(whole["exit"] == 0 and whole["calls"])
    assert operations >= 2, whole
    # Every run before the last was killed, by SIGKILL (nothing else ends a process so), before it could
    # finish; the run allowed one more operation than there are completes.
    assert [r["exit"] for r in runs] == [-signal.SIGKILL] * operations + [0], runs
    assert runs[-1]["calls"] == str(operations)
    return [Path(r["folder"]) for r in runs[:-1]], Path(whole["folder"])


def assert_old_or_new(
    killed: list[Path], old: tuple[object, ...], new: tuple[object, ...], *, work_after_commit: bool = True
) -> None:
    assert old != new
    seen = []
    for folder in killed:
        model = folder / "model.joblib"
        found = fingerprint(model)
        assert found in (old, new), f"{folder.name}: neither the old model nor the new one"
        seen.append("old" if found == old else "new")
        # The next save clears what the killed writer left: only the manifest and its data file remain.
        Recommender.load(model).save(model)
        assert fingerprint(model) == found
        named = read_manifest(model)["model_file"]["name"]
        assert sorted(p.name for p in folder.iterdir()) == sorted(["model.json", named]), folder.name
    assert "old" in seen, seen
    if work_after_commit:  # killed before the commit point and after it: both outcomes were reached
        assert "new" in seen, seen


@pytest.fixture(scope="module")
def corpora(sample_articles: list[Article], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpora")
    return {
        "old": write_jsonl(folder / "old.jsonl", sample_articles[:60]),
        "new": write_jsonl(folder / "new.jsonl", sample_articles[40:110]),
        "added": write_jsonl(folder / "added.jsonl", sample_articles[300:303]),
    }


def initial_folder(corpus: Path, folder: Path, *, old_layout: bool = False) -> Path:
    model = folder / "model.joblib"
    Recommender.train(read_articles(corpus).articles, n_jobs=1).save(model)
    if old_layout:
        to_old_layout(model)
    return folder


@pytest.mark.parametrize("old_layout", [False, True], ids=["over-a-model", "over-an-old-layout-model"])
def test_save_killed_at_every_step_leaves_the_old_or_the_new_model(
    corpora: dict[str, Path], tmp_path: Path, old_layout: bool
) -> None:
    initial = initial_folder(corpora["old"], tmp_path / "initial", old_layout=old_layout)
    source = tmp_path / "source" / "model.joblib"
    Recommender.train(read_articles(corpora["new"]).articles, n_jobs=1).save(source)
    killed, done = kill_at_every_step(initial, "save", source, tmp_path)
    assert_old_or_new(killed, fingerprint(initial / "model.joblib"), fingerprint(source))
    assert fingerprint(done / "model.joblib") == fingerprint(source)


def test_train_killed_at_every_step_leaves_the_old_or_the_new_model(corpora: dict[str, Path], tmp_path: Path) -> None:
    initial = initial_folder(corpora["old"], tmp_path / "initial")
    killed, done = kill_at_every_step(initial, "train", corpora["new"], tmp_path)
    new = fingerprint(done / "model.joblib")
    assert new[0] == 70
    assert_old_or_new(killed, fingerprint(initial / "model.joblib"), new)


def test_update_killed_at_every_step_leaves_the_old_or_the_new_model(corpora: dict[str, Path], tmp_path: Path) -> None:
    initial = initial_folder(corpora["old"], tmp_path / "initial")
    killed, done = kill_at_every_step(initial, "add", corpora["added"], tmp_path)
    expected = Recommender.load(initial / "model.joblib")
    expected.add(read_articles(corpora["added"]).articles)
    new = fingerprint(done / "model.joblib")
    assert new == fingerprint(expected) and new[0] == 63
    # The update's one file (the overlay) is renamed into place last: no kill can see the new model.
    assert_old_or_new(killed, fingerprint(initial / "model.joblib"), new, work_after_commit=False)


# --- readers and writers side by side --------------------------------------------------------------


def test_a_reader_that_read_the_old_manifest_reads_it_again_once(
    model_path: Path, sample_articles: list[Article], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A save commits and deletes the old data file just after a reader has read the old manifest: the
    # reader must read the manifest again and load the new model, not fail on the vanished file.
    path = copy_model(model_path, tmp_path)
    new = Recommender.train(sample_articles[:60], n_jobs=1)
    real_data_path = modelfile_module.data_path
    named: list[Path] = []

    def a_save_commits_meanwhile(at: str | Path, manifest: dict[str, Any] | None = None) -> Path:
        if not named:
            named.append(real_data_path(at, manifest))
            new.save(path)
        return real_data_path(at, manifest)

    monkeypatch.setattr(modelfile_module, "data_path", a_save_commits_meanwhile)
    loaded = Recommender.load(path)
    assert not named[0].exists()  # the data file the reader was first told of is gone
    assert fingerprint(loaded) == fingerprint(new)


# The writer: saves a model, pausing (until a line on its standard input) just before it renames the
# manifest into place, with the new data file already renamed into place beside the old one.
PAUSED_WRITER = textwrap.dedent(
    """
    import os, sys
    from recommender import Recommender

    model = Recommender.load(sys.argv[1], mmap=False)
    real_replace = os.replace

    def replace(src, dst):
        if os.path.basename(dst) == "model.json":
            print("paused", flush=True)
            sys.stdin.readline()
        real_replace(src, dst)

    os.replace = replace
    model.save(sys.argv[2])
    """
)


def test_a_writer_holds_the_folder_until_its_manifest_names_its_data_file(
    model_path: Path, sample_articles: list[Article], tmp_path: Path
) -> None:
    # Between renaming its data file into place and committing the manifest that names it, a writer
    # holds a lock on the folder: another writer's clean-up, which deletes data files no manifest names,
    # waits for it rather than deleting the file the first is about to name.
    path = copy_model(model_path, tmp_path / "models")
    source = tmp_path / "source" / "model.joblib"
    Recommender.train(sample_articles[:60], n_jobs=1).save(source)
    writer = subprocess.Popen(
        [sys.executable, "-c", PAUSED_WRITER, str(source), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline() == "paused\n"
        assert len(list(path.parent.glob("model-*.joblib"))) == 2  # the old data file and the new, unnamed
        assert len(Recommender.load(path)) == 380  # still the old model
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(folder)
        _, stderr = writer.communicate("\n", timeout=120)
        assert writer.returncode == 0, stderr
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.communicate()
    assert fingerprint(path) == fingerprint(source)
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(["model.json", data_path(path).name])


def test_a_load_that_a_save_overtakes_starts_again(
    model_path: Path, sample_articles: list[Article], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A load has read the manifest and the data file of a model with updates; before it reads the
    # updates, a save commits a new model and deletes them. Without the updates it would have the fitted
    # rows only, neither the old model nor the new one: it must notice the manifest changed and start
    # again.
    path = copy_model(model_path, tmp_path)
    Updater(path).add([dataclasses.replace(sample_articles[0], id="added-1")])
    old = fingerprint(path)
    assert old[0] == 381
    new = Recommender.train(sample_articles[:60], n_jobs=1)
    real_read_overlay = modelfile_module.read_overlay
    overtaken: list[bool] = []

    def a_save_commits_first(model_path: Path, base_sha256: str) -> dict[str, Any] | None:
        if not overtaken:
            overtaken.append(True)
            new.save(path)
        return real_read_overlay(model_path, base_sha256)

    monkeypatch.setattr(modelfile_module, "read_overlay", a_save_commits_first)
    assert fingerprint(path) == fingerprint(new) != old
    assert overtaken


def test_a_load_whose_updates_vanish_as_it_opens_them_starts_again(
    model_path: Path, sample_articles: list[Article], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same race a step later: the updates file is there when the load looks, and gone (a save
    # committed and deleted it) when the load opens it.
    path = copy_model(model_path, tmp_path)
    Updater(path).add([dataclasses.replace(sample_articles[0], id="added-1")])
    new = Recommender.train(sample_articles[:60], n_jobs=1)
    real_load = joblib.load
    overtaken: list[bool] = []

    def a_save_commits_first(filename: Any, *args: Any, **kwargs: Any) -> Any:
        if str(filename).endswith(".updates.joblib") and not overtaken:
            overtaken.append(True)
            new.save(path)
        return real_load(filename, *args, **kwargs)

    monkeypatch.setattr(joblib, "load", a_save_commits_first)
    assert fingerprint(path) == fingerprint(new)
    assert overtaken
