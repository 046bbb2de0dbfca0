"""Precomputed related lists: JSON Lines, CSV and SQLite outputs, atomic rewrites, and the SQLite reader."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import is_locked_for_readers, wait_until

import recommender.blocks as blocks_module
import recommender.store as store_module
from recommender import InvalidParameterError, Recommender, StoreError, UnknownArticleError
from recommender.batch import precompute
from recommender.store import FORMATS, RelatedStore, format_for

SNAKE_ID = "kompas-8f42b397"
SNAKE_OTHERS = {"kompas-defc2e02", "kompas-524086ea", "kompas-60ddcf82", "wowkeren-43b9afa3"}
K = 5
SUFFIXES = (".jsonl", ".csv", ".sqlite", ".db")

Lists = dict[str, list[tuple[str, float]]]


# --- readers of each format, straight from the files -----------------------------------------------


def read_jsonl(path: Path) -> Lists:
    lists: Lists = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            assert set(record) == {"id", "related"}
            assert record["id"] not in lists, "one line per article"
            lists[record["id"]] = [(item["id"], item["score"]) for item in record["related"]]
    return lists


def read_csv(path: Path) -> Lists:
    lists: Lists = {}
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["id", "rank", "related_id", "score"]
        for article_id, rank, related_id, score in reader:
            items = lists.setdefault(article_id, [])
            assert int(rank) == len(items) + 1, "ranks count from 1 without gaps"
            items.append((related_id, float(score)))
    return lists


def read_sqlite(path: Path) -> Lists:
    conn = sqlite3.connect(path)
    try:
        lists: Lists = {article_id: [] for (article_id,) in conn.execute("SELECT id FROM articles")}
        rows = conn.execute("SELECT article_id, rank, related_id, score FROM related ORDER BY article_id, rank")
        for article_id, rank, related_id, score in rows:
            assert rank == len(lists[article_id]) + 1
            lists[article_id].append((related_id, score))
    finally:
        conn.close()
    return lists


def read_lists(path: Path) -> Lists:
    kind = format_for(path)
    return {"jsonl": read_jsonl, "csv": read_csv, "sqlite": read_sqlite}[kind](path)


def sqlite_contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("related", "articles", "meta")
        }
    finally:
        conn.close()


def model_ids(model: Recommender) -> list[str]:
    return [str(article_id) for article_id in model.ids_.to_list()]


def ids_only(lists: Lists) -> dict[str, list[str]]:
    return {article_id: [i for i, _ in items] for article_id, items in lists.items()}


@pytest.fixture(scope="module")
def stores(fitted: Recommender, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample's top-K lists precomputed once in every format."""
    folder = tmp_path_factory.mktemp("stores")
    paths = {}
    for suffix in SUFFIXES:
        path = folder / f"related{suffix}"
        result = precompute(fitted, path, k=K)
        assert result.path == str(path)
        assert result.format == FORMATS[suffix]
        assert (result.articles, result.k) == (380, K)
        paths[suffix] = path
    return paths


# --- what each format holds ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_every_article_with_a_valid_list(fitted: Recommender, stores: dict[str, Path], suffix: str) -> None:
    lists = read_lists(stores[suffix])
    if suffix != ".csv":  # CSV has no line for an article without related articles
        assert len(lists) == 380
    assert set(lists) <= set(model_ids(fitted))
    for article_id, items in lists.items():
        ids = [i for i, _ in items]
        scores = [s for _, s in items]
        assert len(items) <= K
        assert article_id not in ids
        assert len(set(ids)) == len(ids)
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 < s <= 1.0 for s in scores)
    assert {i for i, _ in lists[SNAKE_ID][:4]} == SNAKE_OTHERS


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_lists_match_the_model(fitted: Recommender, stores: dict[str, Path], suffix: str) -> None:
    lists = read_lists(stores[suffix])
    for article_id in model_ids(fitted):
        expected = fitted.related(article_id, k=K)
        got = lists.get(article_id, [])
        assert [i for i, _ in got] == [r.id for r in expected], article_id
        assert [s for _, s in got] == pytest.approx([r.score for r in expected], abs=2e-6)


def test_formats_agree(stores: dict[str, Path]) -> None:
    jsonl = read_lists(stores[".jsonl"])
    csv_lists = read_lists(stores[".csv"])
    sqlite_lists = read_lists(stores[".sqlite"])
    assert ids_only(sqlite_lists) == ids_only(jsonl) == ids_only(read_lists(stores[".db"]))
    assert ids_only(csv_lists) == {a: ids for a, ids in ids_only(jsonl).items() if ids}
    for article_id, items in jsonl.items():
        assert [s for _, s in csv_lists.get(article_id, [])] == pytest.approx([s for _, s in items], abs=2e-6)
        assert [s for _, s in sqlite_lists[article_id]] == pytest.approx([s for _, s in items], abs=2e-6)


def test_jsonl_items_carry_display_fields(fitted: Recommender, stores: dict[str, Path]) -> None:
    lines = stores[".jsonl"].read_text(encoding="utf-8").splitlines()
    assert len(lines) == 380
    rows = {fitted.ids_[i]: i for i in range(len(fitted))}
    for line in lines:
        for item in json.loads(line)["related"]:
            assert set(item) == {"id", "title", "url", "published", "score"}
            article = fitted.article(rows[item["id"]])
            assert (item["title"], item["url"], item["published"]) == (
                article["title"],
                article["url"],
                article["published"],
            )
    # non-ASCII text (the sample has curly quotes and accents in titles) is written as UTF-8, not \u escapes
    text = stores[".jsonl"].read_text(encoding="utf-8")
    assert not text.isascii()
    assert "\\u" not in text


def test_csv_layout(stores: dict[str, Path]) -> None:
    text = stores[".csv"].read_text(encoding="utf-8")
    assert text.splitlines()[0] == "id,rank,related_id,score"
    rows = list(csv.reader(text.splitlines()[1:]))
    assert all(len(row) == 4 for row in rows)
    snake = [row for row in rows if row[0] == SNAKE_ID]
    assert [row[1] for row in snake] == [str(r) for r in range(1, K + 1)]


@pytest.mark.parametrize("suffix", [".sqlite", ".db"])
def test_sqlite_schema(fitted: Recommender, stores: dict[str, Path], suffix: str) -> None:
    conn = sqlite3.connect(stores[suffix])
    try:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(related)")]
        assert columns == ["article_id", "rank", "related_id", "score"]
        indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'related'")
        index_sql = [sql for _, sql in indexes if sql]
        assert any("(article_id" in sql for sql in index_sql), index_sql
        plan = " ".join(
            str(row) for row in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM related WHERE article_id = 'x'")
        )
        assert "USING INDEX" in plan
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"related", "articles", "meta"} <= tables
        assert [row[1] for row in conn.execute("PRAGMA table_info(articles)")] == [
            "id",
            "title",
            "url",
            "published",
            "section",
            "image",
        ]
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (380,)
        snake = conn.execute("SELECT title, section FROM articles WHERE id = ?", (SNAKE_ID,)).fetchone()
        row = fitted.row_of(SNAKE_ID)
        assert snake == (fitted.titles_[row], fitted.sections_[row])
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        assert meta["k"] == str(K)
        assert meta["articles"] == "380"
        assert meta["corpus_checksum"] == fitted.corpus_["checksum"]
        assert meta["model_created_at"] == fitted.fitted_at_
        # a rollback journal, not WAL: readers with read access only can open it (tests/test_store_readers.py)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        conn.close()


def test_precompute_result_counts_pairs(fitted: Recommender, tmp_path: Path) -> None:
    for suffix in (".jsonl", ".csv", ".sqlite"):
        path = tmp_path / f"out{suffix}"
        result = precompute(fitted, path, k=3)
        assert result.pairs == sum(len(items) for items in read_lists(path).values())
        assert result.seconds >= 0


def test_precompute_from_a_memory_mapped_model(fitted: Recommender, model_path: Path, tmp_path: Path) -> None:
    loaded = Recommender.load(model_path, mmap=True)
    precompute(fitted, tmp_path / "a.jsonl", k=K, block_rows=1)
    precompute(loaded, tmp_path / "b.jsonl", k=K)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


# --- rewriting -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_rerun_replaces_old_lists(fitted: Recommender, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"related{suffix}"
    precompute(fitted, path, k=3)
    assert max(len(items) for items in read_lists(path).values()) == 3
    result = precompute(fitted, path, k=5)
    lists = read_lists(path)
    assert max(len(items) for items in lists.values()) == 5
    assert sum(len(items) for items in lists.values()) == result.pairs
    assert ids_only(lists)[SNAKE_ID] == [r.id for r in fitted.related(SNAKE_ID, k=5)]
    if suffix in (".sqlite", ".db"):
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("SELECT max(rank), count(*) FROM related").fetchone() == (5, result.pairs)
            assert conn.execute("SELECT value FROM meta WHERE key = 'k'").fetchone() == ("5",)
            assert conn.execute("SELECT count(*) FROM articles").fetchone() == (380,)
        finally:
            conn.close()


def crash_after_first_block(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """Make the all-pairs kernel yield its first real block of scores, then fail."""
    real = blocks_module.search_blocks

    def crashing(*args: Any, **kwargs: Any) -> Iterator[tuple[int, Any]]:
        blocks = real(*args, **kwargs)
        yield next(blocks)
        raise exc

    monkeypatch.setattr(blocks_module, "search_blocks", crashing)


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("exc", [RuntimeError("worker died"), KeyboardInterrupt()])
def test_crash_mid_precompute_keeps_previous_output(
    fitted: Recommender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, exc: BaseException
) -> None:
    path = tmp_path / f"related{suffix}"
    precompute(fitted, path, k=3)
    old_bytes = path.read_bytes()
    old_contents = sqlite_contents(path) if suffix in (".sqlite", ".db") else None
    files_before = sorted(p.name for p in tmp_path.iterdir())
    crash_after_first_block(monkeypatch, exc)
    with pytest.raises(type(exc)):
        precompute(fitted, path, k=5, block_rows=1)  # one row per block: the crash comes early
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before  # no temporary files left
    if old_contents is None:
        assert path.read_bytes() == old_bytes
    else:
        assert sqlite_contents(path) == old_contents
    assert max(len(items) for items in read_lists(path).values()) == 3


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_crash_on_first_run_leaves_nothing(
    fitted: Recommender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    crash_after_first_block(monkeypatch, RuntimeError("worker died"))
    with pytest.raises(RuntimeError):
        precompute(fitted, tmp_path / f"related{suffix}", k=5, block_rows=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_file_readers_see_the_old_file_until_the_new_one_is_complete(
    fitted: Recommender, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"related{suffix}"
    precompute(fitted, path, k=3)
    old_bytes = path.read_bytes()
    seen: list[bool] = []

    def check(done: int, total: int) -> None:  # called between blocks, mid-write
        if done < total:
            seen.append(path.read_bytes() == old_bytes)

    precompute(fitted, path, k=5, block_rows=1, progress=check)
    assert seen and all(seen)
    assert max(len(items) for items in read_lists(path).values()) == 5


def test_sqlite_reader_sees_complete_old_or_new_lists(fitted: Recommender, tmp_path: Path) -> None:
    """Readers see the old lists while the job writes; a reader holding a transaction open makes the job's
    COMMIT wait for it (a rollback journal locks the file to commit), so it never sees the lists change."""
    path = tmp_path / "related.sqlite"
    precompute(fitted, path, k=3)
    old_count = len(sqlite_contents(path)["related"])

    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM related").fetchone() == (old_count,)  # holds its read lock

        mid_write: list[tuple[int, int]] = []

        def check(done: int, total: int) -> None:  # between blocks, inside the writer's transaction
            if done < total and len(mid_write) < 20:
                other = sqlite3.connect(path)
                try:
                    mid_write.append(other.execute("SELECT count(*), max(rank) FROM related").fetchone())
                finally:
                    other.close()

        results: list[Any] = []
        writer = threading.Thread(
            target=lambda: results.append(precompute(fitted, path, k=5, block_rows=1, progress=check))
        )
        writer.start()
        try:
            # The job is at its COMMIT, waiting for our read lock, once it keeps new readers out.
            assert wait_until(lambda: is_locked_for_readers(path) or not writer.is_alive())
            assert writer.is_alive() and not results, "the job committed under an open read transaction"
            assert mid_write and set(mid_write) == {(old_count, 3)}
            # the open read transaction still sees the complete old lists
            assert reader.execute("SELECT count(*), max(rank) FROM related").fetchone() == (old_count, 3)
            assert reader.execute("SELECT value FROM meta WHERE key = 'k'").fetchone() == ("3",)
            reader.execute("COMMIT")
        finally:
            writer.join(timeout=120)
        assert not writer.is_alive()
        # and the next one the complete new lists
        assert reader.execute("SELECT count(*), max(rank) FROM related").fetchone() == (results[0].pairs, 5)
    finally:
        reader.close()


def test_sqlite_readers_in_threads_never_see_a_partial_rewrite(fitted: Recommender, tmp_path: Path) -> None:
    path = tmp_path / "related.sqlite"
    precompute(fitted, path, k=3)
    counts = {len(sqlite_contents(path)["related"])}
    stop = threading.Event()
    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def read() -> None:
        conn = sqlite3.connect(path, timeout=30)
        try:
            while not stop.is_set():
                seen.append(conn.execute("SELECT count(*), count(DISTINCT article_id) FROM related").fetchone())
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for k in (5, 2):
            counts.add(precompute(fitted, path, k=k, block_rows=1).pairs)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a reader thread hung"
    assert errors == []
    assert seen
    full = {c for c, _ in seen}
    assert full <= counts, f"a reader saw a partial rewrite: {full - counts}"


# --- bad paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["related.txt", "related", "related.json", "related.jsonl.gz"])
def test_unknown_suffix(fitted: Recommender, tmp_path: Path, name: str) -> None:
    with pytest.raises(StoreError) as info:
        precompute(fitted, tmp_path / name, k=3)
    message = str(info.value)
    for choice in (".jsonl", ".csv", ".sqlite", ".db"):
        assert choice in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".sqlite", ".jsonl", ".csv"])
def test_a_missing_directory_is_an_error_and_nothing_is_created(
    fitted: Recommender, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / "nonexistent" / "dir" / f"p{suffix}"
    with pytest.raises(StoreError) as info:
        precompute(fitted, out, k=3)
    assert str(info.value) == f"directory {tmp_path / 'nonexistent' / 'dir'} does not exist: create it first"
    assert list(tmp_path.iterdir()) == []


def test_a_file_where_the_directory_should_be(fitted: Recommender, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError) as info:
        precompute(fitted, tmp_path / "file" / "p.sqlite", k=3)
    assert str(info.value) == f"{tmp_path / 'file'} is not a directory: write the output into a directory"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_format_for_is_case_insensitive() -> None:
    assert format_for("OUT.JSONL") == "jsonl"
    assert format_for(Path("x/related.Sqlite3")) == "sqlite"


def test_non_sqlite_file_at_sqlite_path(fitted: Recommender, tmp_path: Path) -> None:
    path = tmp_path / "related.sqlite"
    content = b"id,rank,related_id,score\n" + b"a,1,b,0.5\n" * 50
    path.write_bytes(content)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        precompute(fitted, path, k=3)
    assert path.read_bytes() == content


def test_precomputed_files_respect_umask(fitted: Recommender, tmp_path: Path) -> None:
    # The batch job and the CMS that reads its output usually run as different users: the output must
    # get the permissions of any new file (0644 under umask 022), not a private temporary file's 0600.
    umask = os.umask(0o022)
    try:
        for suffix in (".jsonl", ".csv"):
            precompute(fitted, tmp_path / f"related{suffix}", k=2)
    finally:
        os.umask(umask)
    for suffix in (".jsonl", ".csv"):
        assert (tmp_path / f"related{suffix}").stat().st_mode & 0o777 == 0o644, suffix


# --- RelatedStore ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".sqlite", ".db"])
def test_related_store_matches_the_model(fitted: Recommender, stores: dict[str, Path], suffix: str) -> None:
    store = RelatedStore(stores[suffix])
    for article_id in model_ids(fitted):
        for k in (None, 2, K):
            got = store.related(article_id, k)
            expected = fitted.related(article_id, k=k or K)
            assert [(r.id, r.title, r.url, r.published, r.section) for r in got] == [
                (r.id, r.title, r.url, r.published, r.section) for r in expected
            ], article_id
            assert [r.score for r in got] == pytest.approx([r.score for r in expected], abs=1e-6)
    assert store.meta()["k"] == str(K)


def test_related_store_unknown_id(stores: dict[str, Path]) -> None:
    store = RelatedStore(stores[".sqlite"])
    with pytest.raises(UnknownArticleError) as info:
        store.related("kompas-00000000")
    assert "kompas-00000000" in str(info.value)


@pytest.mark.parametrize("k", [0, -1, 1001, 10**20, 2.0, "3", True])
def test_related_store_bad_k(stores: dict[str, Path], k: Any) -> None:
    store = RelatedStore(stores[".sqlite"])
    with pytest.raises(InvalidParameterError) as info:
        store.related(SNAKE_ID, k)
    assert str(info.value) == f"k must be a whole number from 1 to 1,000, got {k!r}"


def test_related_store_k_up_to_the_maximum(fitted: Recommender, stores: dict[str, Path]) -> None:
    store = RelatedStore(stores[".sqlite"])
    expected = [r.id for r in fitted.related(SNAKE_ID, k=K)]
    assert [r.id for r in store.related(SNAKE_ID, 1000)] == expected  # all K stored
    assert [r.id for r in store.related(SNAKE_ID, np.int64(2))] == expected[:2]
    assert [r.id for r in store.related(SNAKE_ID, 1)] == expected[:1]


@pytest.mark.parametrize("padded", [f" {SNAKE_ID} ", f"\t{SNAKE_ID}\n", f"{SNAKE_ID} "])
def test_related_store_ignores_whitespace_around_an_id(stores: dict[str, Path], padded: str) -> None:
    store = RelatedStore(stores[".sqlite"])
    assert store.related(padded) == store.related(SNAKE_ID) != []
    with pytest.raises(UnknownArticleError):
        store.related(" kompas-00000000 ")


def test_related_store_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store"):
        RelatedStore(tmp_path / "missing.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_related_store_on_files_that_are_not_stores(tmp_path: Path) -> None:
    text = tmp_path / "text.sqlite"
    text.write_bytes(b"not a database " * 100)
    with pytest.raises(StoreError):
        RelatedStore(text).related(SNAKE_ID)
    empty_db = tmp_path / "other.sqlite"
    conn = sqlite3.connect(empty_db)
    conn.execute("CREATE TABLE something (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a recommender store"):
        RelatedStore(empty_db).related(SNAKE_ID)


def test_related_store_waits_for_a_commit_then_gives_up_clearly(
    fitted: Recommender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "related.sqlite"
    precompute(fitted, path, k=3)
    monkeypatch.setattr(store_module, "READ_TIMEOUT", 0.2)
    store = RelatedStore(path)
    expected = store.related(SNAKE_ID)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")  # as a writer's COMMIT holds the file
        with pytest.raises(StoreError) as info:
            store.related(SNAKE_ID)
        assert str(info.value) == f"{path} stayed locked by a writer for 0.2 s: try again"
    finally:
        writer.close()
    assert store.related(SNAKE_ID) == expected


def test_related_store_whose_file_went_away(fitted: Recommender, tmp_path: Path) -> None:
    path = tmp_path / "related.sqlite"
    precompute(fitted, path, k=3)
    store = RelatedStore(path)
    path.unlink()
    with pytest.raises(StoreError, match=r"^cannot open .*related.sqlite: unable to open database file$"):
        store.related(SNAKE_ID)


def test_related_store_is_read_only(stores: dict[str, Path]) -> None:
    store = RelatedStore(stores[".sqlite"])
    store.related(SNAKE_ID)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.connection().conn.execute("DELETE FROM related")


def test_related_store_from_several_threads(fitted: Recommender, stores: dict[str, Path]) -> None:
    store = RelatedStore(stores[".sqlite"])
    ids = model_ids(fitted)
    expected = {article_id: store.related(article_id) for article_id in ids}
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []
    mismatches: list[str] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for article_id in ids[t:] + ids[:t]:
                if store.related(article_id) != expected[article_id]:
                    mismatches.append(article_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a reader thread hung"
    assert errors == []
    assert mismatches == []
    assert {r.id for r in expected[SNAKE_ID][:4]} == SNAKE_OTHERS
