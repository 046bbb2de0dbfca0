"""Incremental updates: the store after add/remove equals a full precompute of the updated model."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import copy_model, is_locked_for_readers, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender import (
    Article,
    InvalidParameterError,
    Recommender,
    RelatedStore,
    Rule,
    StoreError,
    UnknownArticleError,
    Updater,
    freshness,
    precompute,
)
from recommender._atomic import locked_directory
from recommender.modelfile import JournalReader, read_journal
from recommender.store import StoreMeta
from recommender.updates import REFIT_SHARE, overlay_path

OPTIONS: list[dict[str, Any]] = [
    {},
    {"newer": False},
    {"min_score": 0.05, "min_results": 2},
    {"diversity": 0.3},
    {"within_days": 2.0},
]


def fresh(base_model: Path, directory: Path, k: int = 5, **options: Any) -> tuple[Path, Path]:
    """A copy of the base model and a store precomputed from it."""
    model = copy_model(base_model, directory)
    store = directory / "related.sqlite"
    precompute(Recommender.load(model), store, k, **options)
    return model, store


def contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            "related": sorted(
                (a, r, b, round(s, 6)) for a, r, b, s in conn.execute("SELECT * FROM related").fetchall()
            ),
            "articles": sorted(conn.execute("SELECT * FROM articles").fetchall()),
        }
    finally:
        conn.close()


def assert_store_equals_full_precompute(model: Path, store: Path, k: int = 5, **options: Any) -> None:
    full = store.with_name("full.sqlite")
    precompute(Recommender.load(model), full, k, **options)
    assert contents(store) == contents(full)
    full.unlink()


def edited(article: Article, body: str) -> Article:
    return dataclasses.replace(article, title=article.title + " (diperbarui)", body=body)


# --- the contract: equal to a full precompute ------------------------------------------------------


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "no-newer", "min-score", "diversity", "within-days"])
def test_adds_edits_and_removes_equal_a_full_precompute(
    base_model: Path, timeline: list[Article], tmp_path: Path, options: dict[str, Any]
) -> None:
    model, store = fresh(base_model, tmp_path, **options)
    updater = Updater(model, store)
    first = updater.add(timeline[300:301])
    assert first.changes.added == (timeline[300].id,) and first.lists_updated >= 1
    assert_store_equals_full_precompute(model, store, **options)
    updater.add(timeline[301:340])
    assert_store_equals_full_precompute(model, store, **options)
    updater.remove([timeline[10].id, timeline[301].id])
    assert_store_equals_full_precompute(model, store, **options)
    result = updater.add([edited(timeline[20], timeline[350].body), *timeline[340:345]])
    assert result.changes.edited == (timeline[20].id,) and len(result.changes.added) == 5
    assert_store_equals_full_precompute(model, store, **options)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_sequence_of_updates_equals_a_full_precompute(
    base_model: Path, timeline: list[Article], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    k = data.draw(st.sampled_from([1, 3, 5]), label="k")
    model, store = fresh(base_model, tmp_path_factory.mktemp("seq"), k=k)
    updater = Updater(model, store)
    waiting = list(timeline[300:])
    for _ in range(data.draw(st.integers(1, 4), label="batches")):
        present = updater.model.ids_.to_list()
        kind = data.draw(st.sampled_from(["add", "edit", "remove"]))
        if kind == "add" and waiting:
            count = data.draw(st.integers(1, 8))
            updater.add(waiting[:count])
            del waiting[:count]
        elif kind == "edit":
            victim = data.draw(st.sampled_from(present))
            body = data.draw(st.sampled_from(timeline)).body
            updater.add([Article(id=str(victim), title="Berita diperbarui", body=body, published="2019-09-20")])
        else:
            gone = data.draw(st.lists(st.sampled_from(present), min_size=1, max_size=3, unique=True))
            updater.remove([str(i) for i in gone])
    assert_store_equals_full_precompute(model, store, k=k)


def test_updated_model_on_disk_equals_the_one_in_memory(
    base_model: Path, timeline: list[Article], tmp_path: Path
) -> None:
    model, store = fresh(base_model, tmp_path)
    updater = Updater(model, store)
    updater.add(timeline[300:320])
    updater.remove([timeline[3].id])
    updater.add([edited(timeline[5], timeline[330].body)])
    loaded = Recommender.load(model)
    memory = updater.model
    assert loaded.ids_.to_list() == memory.ids_.to_list()
    assert (loaded.matrix_ != memory.matrix_).nnz == 0
    assert (loaded.index_t_ != memory.index_t_).nnz == 0
    for matrix in (memory.matrix_, memory.index_t_, loaded.matrix_):  # as a fitted model's: no conversions
        assert matrix.indptr.dtype == matrix.indices.dtype == np.int32
    assert loaded.updates_ == memory.updates_
    for article_id in (timeline[310].id, timeline[5].id, timeline[100].id):
        assert loaded.related(article_id, 5) == memory.related(article_id, 5)
    # A full save holds every update: the overlay goes, and loading gives the same model.
    loaded.save(tmp_path / "again.joblib")
    again = Recommender.load(tmp_path / "again.joblib")
    assert not overlay_path(tmp_path / "again.joblib").exists()
    assert again.ids_.to_list() == memory.ids_.to_list() and again.updates_ == memory.updates_
    assert again.related(timeline[310].id, 5) == memory.related(timeline[310].id, 5)


@pytest.mark.parametrize("removing", [False, True], ids=["append", "merge"])
def test_the_term_major_index_stays_the_transpose_of_the_rows(
    base_model: Path, timeline: list[Article], removing: bool
) -> None:
    """Both ways of updating the postings (copying them whole when nothing goes, renumbering otherwise)
    give exactly the index a fit would build from the rows."""
    model = Recommender.load(base_model)
    if removing:
        model.remove([timeline[0].id, timeline[150].id])
    model.add([*timeline[300:340], edited(timeline[7], timeline[345].body)] if removing else timeline[300:340])
    expected = model.matrix_.T.tocsr()
    expected.sort_indices()
    got = model.index_t_
    assert got.shape == expected.shape
    assert np.array_equal(got.indptr, expected.indptr) and np.array_equal(got.indices, expected.indices)
    assert np.array_equal(got.data, expected.data)


def test_vocabulary_and_idf_stay_fixed(base_model: Path, timeline: list[Article]) -> None:
    model = Recommender.load(base_model)
    terms, idf = model.terms_.to_list(), np.array(model.idf_)
    novel = Article(id="new-1", title="Zyxwvu qwertyuiop asdfghjkl", body="Zyxwvu qwertyuiop bertemu di Jakarta.")
    changes = model.add([novel, timeline[300]])
    assert changes.added == ("new-1", timeline[300].id)
    assert model.terms_.to_list() == terms and np.array_equal(model.idf_, idf)
    assert "new-1" in model and len(model) == 302
    assert freshness(model).unknown_terms > 0  # the made-up words are not in the vocabulary
    assert model.related(timeline[300].id, 3)  # the new article has its own list at once


def test_edit_with_the_same_text_keeps_the_vector(base_model: Path, timeline: list[Article]) -> None:
    model = Recommender.load(base_model)
    before = model.matrix_[model.row_of(timeline[42].id)].toarray()
    assert model.add([timeline[42]]).edited == (timeline[42].id,)
    assert len(model) == 300
    assert np.array_equal(model.matrix_[model.row_of(timeline[42].id)].toarray(), before)


# --- errors leave everything as it was -------------------------------------------------------------


def snapshot(*paths: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for directory in {p.parent for p in paths}:
        for p in sorted(directory.iterdir()):
            if p.suffix != ".sqlite" and not p.name.endswith("-journal"):
                found[p.name] = p.read_bytes()
    return found


def test_removing_an_unknown_id_changes_nothing(base_model: Path, timeline: list[Article], tmp_path: Path) -> None:
    model, store = fresh(base_model, tmp_path)
    updater = Updater(model, store)
    updater.add(timeline[300:302])
    files, lists = snapshot(model), contents(store)
    with pytest.raises(UnknownArticleError) as info:
        updater.remove([timeline[0].id, "no-such-id", "nor-this"])
    assert str(info.value) == "cannot remove 'no-such-id', 'nor-this': not in the model (nothing was removed)"
    assert snapshot(model) == files and contents(store) == lists
    assert timeline[0].id in Recommender.load(model)


@pytest.mark.parametrize(
    ("articles", "remove", "message"),
    [
        (["a", "a"], [], "article id 'a' appears twice in one update: give each article once"),
        (["a"], ["a"], "article id 'a' is both added and removed in one update"),
    ],
)
def test_contradictory_batches_are_refused(
    base_model: Path, articles: list[str], remove: list[str], message: str
) -> None:
    from recommender.folding import fold

    model = Recommender.load(base_model)
    with pytest.raises(InvalidParameterError, match=message):
        fold(model.fitted_state(), [Article(id=i, title="Judul") for i in articles], remove)


def test_only_sqlite_stores_update_in_place(base_model: Path, tmp_path: Path) -> None:
    model, _ = fresh(base_model, tmp_path)
    with pytest.raises(StoreError, match=r"only a SQLite store can be updated in place"):
        Updater(model, tmp_path / "related.jsonl")
    with pytest.raises(StoreError, match=r"no store at .*missing.sqlite: write one first"):
        Updater(model, tmp_path / "missing.sqlite")


def test_a_store_from_another_fit_is_left_for_its_precompute(
    base_model: Path, timeline: list[Article], tmp_path: Path
) -> None:
    """Between a `train` and its `precompute`, an update goes to the model; the store (of the old fit)
    stays as it was, and the precompute brings it up to the update."""
    _, store = fresh(base_model, tmp_path)
    other = tmp_path / "other" / "model.joblib"
    refit = Recommender(n_jobs=1).fit(timeline[:250])
    refit.state_ = dataclasses.replace(refit.fitted_state(), fitted_at="2000-01-01T00:00:00+00:00")
    refit.save(other)
    lists = contents(store)
    result = Updater(other, store).add(timeline[300:301])
    assert (result.store_stale, result.lists_updated, result.to_dict()["store_stale"]) == (True, 0, True)
    assert contents(store) == lists
    assert len(Recommender.load(other)) == 251  # the model moved on
    precompute(Recommender.load(other), store, 5, model_path=other)
    assert_store_equals_full_precompute(other, store)
    assert Updater(other, store).add(timeline[301:302]).store_stale is False


# --- the journal: a precompute or a train that ran while updates landed -----------------------------


@pytest.mark.parametrize("options", OPTIONS[:4], ids=["default", "no-newer", "min-score", "diversity"])
def test_a_precompute_folds_in_the_updates_made_while_it_ran(
    base_model: Path, timeline: list[Article], tmp_path: Path, options: dict[str, Any]
) -> None:
    model = copy_model(base_model, tmp_path)
    loaded = Recommender.load(model)  # what the precompute computes from
    updater = Updater(model)
    updater.add(timeline[300:304])
    updater.add([edited(timeline[10], "Banjir besar melanda Jakarta dan Bekasi pagi ini.")])
    updater.remove([timeline[20].id, timeline[301].id])
    store = tmp_path / "related.sqlite"
    result = precompute(loaded, store, 5, model_path=model, **options)
    assert result.articles == len(Recommender.load(model)) == 300 + 4 - 2
    assert RelatedStore(store).meta()["model_generation"] == "3"
    assert_store_equals_full_precompute(model, store, **options)
    again = Updater(model, store).add(timeline[304:305])
    assert not again.store_rebuilt  # the store is at the model's update: repaired in place
    assert_store_equals_full_precompute(model, store, **options)


def test_a_precompute_with_a_batch_missing_from_the_journal_leaves_the_store_behind(
    base_model: Path, timeline: list[Article], tmp_path: Path
) -> None:
    model = copy_model(base_model, tmp_path)
    loaded = Recommender.load(model)
    updater = Updater(model)
    updater.add(timeline[300:301])
    updater.add(timeline[301:302])
    journal = model.with_suffix(".journal.jsonl")
    journal.write_text(journal.read_text().splitlines()[1] + "\n")  # generation 1 lost
    store = tmp_path / "related.sqlite"
    precompute(loaded, store, 5, model_path=model)
    assert RelatedStore(store).meta()["model_generation"] == "0"  # as computed: behind the model
    result = Updater(model, store).add(timeline[302:303])
    assert result.store_rebuilt
    assert_store_equals_full_precompute(model, store)


def test_the_journal_skips_a_torn_line_and_keeps_the_last_of_a_generation(
    base_model: Path, timeline: list[Article], tmp_path: Path
) -> None:
    model = copy_model(base_model, tmp_path)
    updater = Updater(model)
    updater.add(timeline[300:301])
    journal = model.with_suffix(".journal.jsonl")
    first = journal.read_text()
    journal.write_text(first + first.replace(timeline[300].id, "ganti") + first[:40])  # repeat, then torn
    updater.add(timeline[301:302])  # starts on a line of its own
    fit = Recommender.load(model).fitted_state().base_sha256
    entries = read_journal(model, str(fit))
    assert [(e.generation, [a.id for a in e.articles]) for e in entries] == [(1, ["ganti"]), (2, [timeline[301].id])]
    assert entries[1].articles[0] == timeline[301]  # as given
    assert read_journal(model, str(fit), after=1)[0].generation == 2
    assert read_journal(model, "another fit") == []


def test_a_train_carries_the_updates_made_while_it_ran(
    base_model: Path, timeline: list[Article], tmp_path: Path
) -> None:
    model = copy_model(base_model, tmp_path)
    updater = Updater(model)
    updater.add(timeline[300:301])  # before the train began: the corpus is expected to hold it
    began = time.time()
    added = timeline[301:303]
    updater.add(added)
    updater.remove([timeline[5].id, timeline[300].id])  # timeline[300] is not in the new corpus
    updater.add([edited(timeline[7], "Harga beras naik lagi di pasar induk.")])
    refit = Recommender(n_jobs=1).fit(timeline[:280])
    refit.save(model, carry_since=began)
    reloaded = Recommender.load(model)
    ids = set(reloaded.fitted_state().articles.ids.to_list())
    assert ids == {a.id for a in timeline[:280]} - {timeline[5].id} | {a.id for a in added}
    assert reloaded.updates_["generation"] == 3  # the removal, the adds and the edit; nothing else
    assert refit.related(added[0].id, 5) == reloaded.related(added[0].id, 5)
    state = reloaded.fitted_state()
    assert state.articles.titles[state.rows()[timeline[7].id]] == timeline[7].title + " (diperbarui)"
    store = tmp_path / "related.sqlite"
    precompute(reloaded, store, 5, model_path=model)  # the new fit's journal holds the carried batches
    again = Updater(model, store).add(timeline[303:304])
    assert not again.store_rebuilt and not again.store_stale
    assert_store_equals_full_precompute(model, store)


def test_a_plain_save_starts_a_new_journal(base_model: Path, timeline: list[Article], tmp_path: Path) -> None:
    model = copy_model(base_model, tmp_path)
    Updater(model).add(timeline[300:301])
    assert model.with_suffix(".journal.jsonl").is_file()
    Recommender(n_jobs=1).fit(timeline[:200]).save(model)
    assert not model.with_suffix(".journal.jsonl").exists()
    assert len(Recommender.load(model)) == 200


def test_a_failure_before_the_commit_leaves_model_and_store_as_they_were(
    base_model: Path, timeline: list[Article], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, store = fresh(base_model, tmp_path)
    updater = Updater(model, store)
    updater.add(timeline[300:303])
    files, lists = snapshot(model), contents(store)

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("recommender.modelfile.os.replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        updater.add(timeline[303:306])
    monkeypatch.undo()
    assert snapshot(model) == files and contents(store) == lists
    assert len(Recommender.load(model)) == 303
    updater.add(timeline[303:306])  # and the updater carries on from the state on disk
    assert_store_equals_full_precompute(model, store)


CRASH = """
import os, sys
from recommender import Updater, read_articles
import recommender.modelfile as modelfile

real_replace = os.replace
def crash_{when}(src, dst):
    if "{when}" == "after":
        real_replace(src, dst)
    os._exit(9)  # no cleanup, no rollback: as a power cut or SIGKILL would leave things

modelfile.os.replace = crash_{when}
articles = read_articles(sys.argv[3]).articles
Updater(sys.argv[1], sys.argv[2]).add(articles)
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_killed_update_leaves_model_and_store_consistent(
    base_model: Path, timeline: list[Article], tmp_path: Path, when: str
) -> None:
    """Killed just before the model's new overlay is renamed into place, or just after (before the store
    commits): either way the store is a complete, consistent set of lists, and the next update repairs."""
    model, store = fresh(base_model, tmp_path / "m")
    Updater(model, store).add(timeline[300:302])
    before = contents(store)
    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        "".join(json.dumps({"id": a.id, "title": a.title, "body": a.body}) + "\n" for a in timeline[302:304])
    )
    code = textwrap.dedent(CRASH.format(when=when))
    done = subprocess.run([sys.executable, "-c", code, str(model), str(store), str(batch)], timeout=120)
    assert done.returncode == 9
    assert contents(store) == before  # the uncommitted transaction is gone
    assert RelatedStore(store).meta()["model_generation"] == "1"
    assert len(Recommender.load(model)) == (302 if when == "before" else 304)
    # The next update notices a store behind its model and rebuilds it.
    result = Updater(model, store).add(timeline[304:306])
    assert result.store_rebuilt == (when == "after")
    assert_store_equals_full_precompute(model, store)
    assert not [p.name for p in model.parent.iterdir() if p.name.endswith(".tmp")]


def test_readers_see_the_old_lists_or_the_new_never_a_mix(
    base_model: Path, timeline: list[Article], tmp_path: Path
) -> None:
    """A reader holding a transaction open keeps seeing the old lists: the update's COMMIT waits for it
    (a rollback journal locks the file to commit), and the reader's next transaction sees the new lists."""
    model, store = fresh(base_model, tmp_path)
    old = contents(store)
    updater = Updater(model, store)
    reader = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM related").fetchone() == (len(old["related"]),)
        done: list[Any] = []
        writer = threading.Thread(target=lambda: done.append(updater.add(timeline[300:320])))
        writer.start()
        try:
            assert wait_until(lambda: is_locked_for_readers(store) or not writer.is_alive())
            assert writer.is_alive() and not done, "the update committed under an open read transaction"
            assert reader.execute("SELECT count(*) FROM articles").fetchone() == (300,)
            reader.execute("COMMIT")
        finally:
            writer.join(timeout=120)
        assert not writer.is_alive() and done
        assert reader.execute("SELECT count(*) FROM articles").fetchone() == (320,)
    finally:
        reader.close()
    assert_store_equals_full_precompute(model, store)


def test_two_updaters_take_turns(base_model: Path, timeline: list[Article], tmp_path: Path) -> None:
    """Another process's updates are picked up: each updater reloads what changed on disk."""
    model, store = fresh(base_model, tmp_path)
    one, two = Updater(model, store), Updater(model, store)
    one.add(timeline[300:305])
    two.add(timeline[305:310])
    one.remove([timeline[301].id])
    assert len(one.model) == 309 and two.model.updates_["generation"] == 2
    assert_store_equals_full_precompute(model, store)


def test_an_update_waits_for_the_model_folders_lock(base_model: Path, timeline: list[Article], tmp_path: Path) -> None:
    """Updaters take the lock a save commits under (the model's folder), not one on the manifest, which a save
    replaces: an update never runs between a save's renames, nor beside an updater holding the old manifest."""
    model, store = fresh(base_model, tmp_path)
    updater = Updater(model, store)
    started, finished = threading.Event(), threading.Event()

    def update() -> None:
        started.set()
        updater.add(timeline[300:302])
        finished.set()

    with locked_directory(model.parent):  # as a save holds it between its data file's rename and its commit
        worker = threading.Thread(target=update)
        worker.start()
        assert started.wait(60)
        assert not finished.wait(2), "the update ran while the folder was locked"
        assert Recommender.load(model).updates_["generation"] == 0
    worker.join(120)
    assert finished.is_set() and not worker.is_alive()
    assert Recommender.load(model).updates_["generation"] == 1
    assert_store_equals_full_precompute(model, store)


TAKING_TURNS = """
import dataclasses, json, sys, time
from pathlib import Path
from recommender import Article, Updater

model, store, plan_file, me, mode, turns = sys.argv[1:7]
plan, turns = json.loads(Path(plan_file).read_text()), Path(turns)


def wait_for(path):
    deadline = time.monotonic() + 120
    while not path.exists():
        assert time.monotonic() < deadline, f"timed out waiting for {path.name}"
        time.sleep(0.005)


updater = Updater(model, store)
(turns / f"ready-{me}").touch()
for other in plan["order"]:  # everyone has loaded the model before anyone updates it
    wait_for(turns / f"ready-{other}")
for step, (owner, change) in enumerate(zip(plan["order"], plan["steps"])):
    if owner != me:
        continue
    if mode == "alternate" and step > 0:
        wait_for(turns / f"done-{step - 1}")  # the other process's update, which this one must pick up
    if "add" in change:
        result = updater.add([Article(**{**a, "tags": tuple(a["tags"])}) for a in change["add"]])
    else:
        result = updater.remove(change["remove"])
    print(json.dumps({"step": step, "generation": result.generation, "rebuilt": result.store_rebuilt}), flush=True)
    (turns / f"done-{step}").touch()
"""


@pytest.mark.parametrize("mode", ["alternate", "concurrent"])
def test_updaters_in_two_processes_take_turns(
    base_model: Path, timeline: list[Article], tmp_path: Path, mode: str
) -> None:
    """Two processes, each with its own Updater on the same model and store: strictly in turn (each must
    reload what the other changed), or both at once (the lock on the manifest orders them). The end state
    equals a full precompute of the final corpus, and no update was lost."""
    model, store = fresh(base_model, tmp_path / "m")
    article = dataclasses.asdict
    # The two processes' changes do not depend on each other, so any interleaving reaches the same corpus.
    order = ["a", "b", "a", "b", "a", "b"]
    steps: list[dict[str, Any]] = [
        {"add": [article(a) for a in timeline[300:305]]},
        {"add": [article(a) for a in timeline[305:310]]},
        {"remove": [timeline[3].id, timeline[301].id]},
        {"add": [article(edited(timeline[9], timeline[350].body))]},
        {"add": [article(a) for a in (edited(timeline[7], timeline[340].body), *timeline[310:313])]},
        {"remove": [timeline[306].id, timeline[50].id]},
    ]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"order": order, "steps": steps}))
    turns = tmp_path / "turns"
    turns.mkdir()
    procs = {
        me: subprocess.Popen(
            [sys.executable, "-c", TAKING_TURNS, str(model), str(store), str(plan), me, mode, str(turns)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me in ("a", "b")
    }
    reports = {}
    for proc in procs.values():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        for line in out.splitlines():
            report = json.loads(line)
            reports[report["step"]] = report
    assert sorted(reports) == list(range(len(steps)))
    generations = sorted(r["generation"] for r in reports.values())
    assert generations == list(range(1, len(steps) + 1))  # every update built on all the earlier ones
    assert not any(r["rebuilt"] for r in reports.values())  # the store always kept up with the model
    if mode == "alternate":
        assert [reports[step]["generation"] for step in range(len(steps))] == list(range(1, len(steps) + 1))

    removed = {timeline[3].id, timeline[301].id, timeline[306].id, timeline[50].id}
    expected = {a.id for a in timeline[:313]} - removed
    final = Recommender.load(model)
    assert set(final.ids_.to_list()) == expected and len(final) == len(expected)
    assert final.updates_["generation"] == len(steps)
    assert final.updates_["edited"] == 2 and final.updates_["removed"] == 4
    assert_store_equals_full_precompute(model, store)


def test_opening_an_updater_prepares_it_and_changes_nothing(base_model: Path, tmp_path: Path) -> None:
    """Opening builds the lookup tables (a dry run adds an empty article and removes one) so the first update
    costs what later ones do; the dry run leaves the model, its files and the store as they were."""
    model, store = fresh(base_model, tmp_path)
    files, lists = snapshot(model, store), contents(store)
    updater = Updater(model, store)
    assert updater.model.fitted_state().memo.peek("vocabulary") is not None
    assert updater.model.fitted_state().memo.peek("titles") is not None
    assert len(updater.model) == 300 and updater.model.updates_["generation"] == 0
    assert snapshot(model, store) == files and contents(store) == lists
    assert updater.model.ids_.to_list() == Recommender.load(model).ids_.to_list()


def test_model_without_store(base_model: Path, timeline: list[Article], tmp_path: Path) -> None:
    model, _ = fresh(base_model, tmp_path)
    result = Updater(model).add(timeline[300:302])
    assert result.lists_updated == 0 and result.articles == 302
    assert Recommender.load(model).related(timeline[301].id, 3)


def test_training_again_drops_the_old_updates(base_model: Path, timeline: list[Article], tmp_path: Path) -> None:
    model, _ = fresh(base_model, tmp_path)
    Updater(model).add(timeline[300:302])
    assert overlay_path(model).exists()
    Recommender(n_jobs=1).fit(timeline[:100]).save(model)
    assert not overlay_path(model).exists() and len(Recommender.load(model)) == 100


def test_freshness_suggests_a_refit_past_a_share(base_model: Path, timeline: list[Article]) -> None:
    model = Recommender.load(base_model)
    model.add(timeline[300:310])
    assert not freshness(model).refit_suggested and freshness(model).advice() is None
    model.add(timeline[310 : 300 + int(REFIT_SHARE * 300)])
    fresh_state = freshness(model)
    assert fresh_state.added == int(REFIT_SHARE * 300) and fresh_state.refit_suggested
    assert fresh_state.advice() == (
        "30 articles changed since the fit (10% of 300): retrain (`recommender train`) to refresh the "
        "vocabulary and IDF"
    )


def test_updates_respect_umask(base_model: Path, timeline: list[Article], tmp_path: Path) -> None:
    model, _ = fresh(base_model, tmp_path)
    Updater(model).add(timeline[300:301])
    mask = os.umask(0)
    os.umask(mask)
    assert overlay_path(model).stat().st_mode & 0o777 == 0o666 & ~mask


def test_an_empty_update_is_refused(base_model: Path) -> None:
    model = Recommender.load(base_model)
    with pytest.raises(InvalidParameterError, match="nothing to update: give articles to add or ids to remove"):
        model.add([])
    assert model.updates_["generation"] == 0


def test_a_corrupt_overlay_is_a_clear_error(base_model: Path, timeline: list[Article], tmp_path: Path) -> None:
    from recommender import ModelError

    model, _ = fresh(base_model, tmp_path)
    Updater(model).add(timeline[300:301])
    overlay_path(model).write_bytes(b"not a pickle")
    with pytest.raises(
        ModelError, match=r"cannot read the model's updates .*model.updates.joblib \(corrupt or truncated\): delete it"
    ):
        Recommender.load(model)


def test_a_reader_asking_for_the_lists_it_knows_gets_none_once_they_are_rewritten(
    base_model: Path, timeline: list[Article], tmp_path: Path
) -> None:
    model, store = fresh(base_model, tmp_path)
    reader = RelatedStore(store)
    known = StoreMeta.from_rows(reader.meta()).lists_key()
    some = timeline[3].id
    assert reader.related_as_of(some, 5, known) == reader.related(some, 5)
    with pytest.raises(UnknownArticleError):
        reader.related_as_of("no-such-id", 5, known)
    Updater(model, store).add(timeline[300:301])  # another writer rewrites lists
    assert reader.related_as_of(some, 5, known) is None
    assert reader.related_as_of("no-such-id", 5, known) is None  # out of date before unknown
    now = StoreMeta.from_rows(reader.meta()).lists_key()
    assert now != known and reader.related_as_of(some, 5, now) == reader.related(some, 5)


def test_a_journal_reader_reads_each_complete_line_once(
    base_model: Path, timeline: list[Article], tmp_path: Path
) -> None:
    model = copy_model(base_model, tmp_path)
    fit = str(Recommender.load(model).fitted_state().base_sha256)
    reader = JournalReader(model)
    assert reader.new_entries(fit, after=0) == []  # no journal yet
    updater = Updater(model)
    updater.add(timeline[300:301])
    updater.add(timeline[301:302])
    assert [e.generation for e in reader.new_entries(fit, after=0)] == [1, 2]
    assert reader.new_entries(fit, after=0) == []  # nothing new
    journal = model.with_suffix(".journal.jsonl")
    whole = journal.read_text().splitlines(keepends=True)[0]
    with open(journal, "a") as out:
        out.write(whole.replace('"generation": 1', '"generation": 3')[:50])  # a line being written
    assert reader.new_entries(fit, after=0) == []
    with open(journal, "a") as out:
        out.write(whole.replace('"generation": 1', '"generation": 3')[50:])
    assert [e.generation for e in reader.new_entries(fit, after=0)] == [3]
    Recommender(n_jobs=1).fit(timeline[:200]).save(model)  # a new fit: a new journal
    refit = str(Recommender.load(model).fitted_state().base_sha256)
    Updater(model).add(timeline[300:301])
    assert [e.generation for e in reader.new_entries(refit, after=0)] == [1]


def test_model_files_names_every_file_a_model_keeps(base_model: Path, timeline: list[Article], tmp_path: Path) -> None:
    from recommender.corpus import bundled_vectors_path
    from recommender.embedding import seed_vectors
    from recommender.model import ModelFiles

    model = copy_model(base_model, tmp_path / "model")
    bundled = bundled_vectors_path()
    if bundled is not None:
        seed_vectors(timeline[:300], model, bundled)
    updater = Updater(model)
    updater.add(timeline[300:302])
    updater.add_rule(Rule("block", related=timeline[0].id))
    files = ModelFiles.of(model)
    named = {files.manifest, files.overlay, files.journal, files.rules, files.data()}
    if bundled is not None:
        named.add(files.vectors)
    kept = {p for p in model.parent.iterdir() if not p.name.startswith(".")}  # the folder lock is hidden
    assert kept == named, sorted(p.name for p in kept ^ named)
