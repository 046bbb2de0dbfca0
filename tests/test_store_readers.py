"""A CMS reads the SQLite store as another OS user, with read access only, between and during every write.

As root (how the suite runs here) the reader is a real second user: a process run as ``nobody`` through
``setpriv``/``runuser``, reading with plain ``sqlite3`` as a PHP or Node CMS would. Otherwise the reader runs
as the same user with write permission taken away (file 0444, directory 0555) while it reads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import select
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_model, is_locked_for_readers

import recommender.store as store_module
from recommender import Article, Recommender, RelatedStore, StoreError, Updater, precompute
from recommender.updates import overlay_path

AS_ROOT = os.geteuid() == 0
SNAKE_ID = "kompas-8f42b397"

# The digest of a store's whole content, computed by the reader and by the test alike: two reads agree
# only if they saw the same committed state.
DIGEST = textwrap.dedent(
    """
    import hashlib

    def digest(conn):
        h = hashlib.sha256()
        for table, order in (("related", "article_id, rank"), ("articles", "id"), ("meta", "key")):
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                h.update(repr(row).encode())
        return h.hexdigest()
    """
)
_namespace: dict[str, Any] = {}
exec(DIGEST, _namespace)
content_digest: Callable[[sqlite3.Connection], str] = _namespace["digest"]

READER = DIGEST + textwrap.dedent(
    """
    import json, select, sqlite3, sys

    def read(uri):
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)  # a new one per page view
            try:
                conn.execute("BEGIN")  # one snapshot for the whole digest
                result = {"digest": digest(conn)}
                conn.execute("COMMIT")
            finally:
                conn.close()
        except sqlite3.Error as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        return result

    uri, mode = sys.argv[1], sys.argv[2]
    if mode == "loop":  # read again and again until stdin closes
        while not select.select([sys.stdin], [], [], 0)[0]:
            print(json.dumps(read(uri)), flush=True)
    else:  # one read per line on stdin
        for _ in sys.stdin:
            print(json.dumps(read(uri)), flush=True)
    """
)


def as_other_user() -> list[str]:
    """The command prefix that runs a program as ``nobody`` (root only)."""
    nobody = pwd.getpwnam("nobody")
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    pytest.skip("running as root without setpriv or runuser: cannot run a reader as another user")


@contextmanager
def write_access_dropped(store: Path) -> Iterator[None]:
    """Without root, the reader is ourselves: take away write permission on the store and its directory
    while it reads (as root, the reader is another user already)."""
    if AS_ROOT:
        yield
        return
    directory = store.parent
    modes = {p: p.stat().st_mode & 0o777 for p in (store, directory)}
    store.chmod(0o444)
    directory.chmod(0o555)
    try:
        yield
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


class Reader:
    """A CMS process reading the store with read-only access: on request (``ask``), or in a loop."""

    def __init__(self, store: Path, *, loop: bool = False) -> None:
        self.store = store
        uri = f"{store.resolve().as_uri()}?mode=ro"
        command = [sys.executable, "-I", "-c", READER, uri, "loop" if loop else "ask"]
        self.proc = subprocess.Popen(
            [*as_other_user(), *command] if AS_ROOT else command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=store.parent,
        )
        self.results: list[dict[str, str]] = []
        self._changed = threading.Condition()
        self._drain: threading.Thread | None = None
        if loop:
            self._drain = threading.Thread(target=self._collect)
            self._drain.start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.results.append(json.loads(line))
                self._changed.notify_all()

    def ask(self) -> dict[str, str]:
        """One read, done now (while whatever the caller is in the middle of stays as it is)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with write_access_dropped(self.store):
            self.proc.stdin.write("read\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], 120)
            assert ready, "the reader did not answer within 2 minutes"
            line = self.proc.stdout.readline()
        assert line, f"the reader died (exit code {self.proc.poll()})"
        return dict(json.loads(line))

    def wait_for(self, digest: str) -> None:
        """Until a looping reader has seen the state ``digest`` (or failed)."""
        with self._changed:
            seen = self._changed.wait_for(
                lambda: any(r.get("digest") == digest or "error" in r for r in self.results), timeout=120
            )
        assert seen, "the looping reader never saw the state"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=120)
        if self._drain is not None:
            self._drain.join(timeout=120)
            assert not self._drain.is_alive()
        assert self.proc.returncode == 0


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can traverse (pytest's own temporary directories are private), with the
    usual umask while the test writes into it."""
    directory = Path(tempfile.mkdtemp(prefix="recommender-store-", dir="/tmp"))
    directory.chmod(0o755)
    umask = os.umask(0o022)
    try:
        yield directory
    finally:
        os.umask(umask)
        shutil.rmtree(directory)


def deploy(base_model: Path, directory: Path) -> tuple[Path, Path]:
    """A copy of the base model and a store precomputed from it, in ``directory``."""
    model = copy_model(base_model, directory)
    store = directory / "related.sqlite"
    precompute(Recommender.load(model), store, k=5)
    return model, store


def digest_of(store: Path) -> str:
    conn = sqlite3.connect(store)
    try:
        return content_digest(conn)
    finally:
        conn.close()


def journal_mode(store: Path) -> str:
    conn = sqlite3.connect(store)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def set_wal(store: Path) -> None:
    """Put a store in WAL mode, as the versions before this one left it."""
    conn = sqlite3.connect(store)
    try:
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    finally:
        conn.close()


def edited(article: Article, body: str) -> Article:
    return dataclasses.replace(article, title=article.title + " (diperbarui)", body=body)


# --- reading between and during writes -------------------------------------------------------------


def test_another_user_reads_the_store_between_and_during_every_write(
    base_model: Path, timeline: list[Article], shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every read succeeds; one in the middle of a write (its transaction open) sees the old lists, one
    after it the new; a reader looping throughout sees only complete states."""
    model, store = deploy(base_model, shared_dir)
    assert store.stat().st_mode & 0o777 == 0o644 and shared_dir.stat().st_mode & 0o777 == 0o755
    states = [digest_of(store)]
    asking = Reader(store)
    looping = Reader(store, loop=True) if AS_ROOT else None  # without root, write access cannot be dropped mid-write
    during: list[dict[str, str]] = []
    try:
        assert asking.ask() == {"digest": states[-1]}
        if looping is not None:
            looping.wait_for(states[-1])

        real_replace = os.replace

        def replace_after_a_read(src: Any, dst: Any) -> None:
            # The updater renames the model's overlay between preparing the store's transaction and its COMMIT.
            if Path(dst) == overlay_path(model):
                during.append(asking.ask())
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace_after_a_read)
        updater = Updater(model, store)
        batches: list[Callable[[], object]] = [
            lambda: updater.add(timeline[300:305]),
            lambda: updater.remove([timeline[3].id, timeline[301].id]),
            lambda: updater.add([edited(timeline[7], timeline[330].body), *timeline[305:310]]),
        ]
        for batch in batches:
            batch()
            assert during[-1] == {"digest": states[-1]}  # read mid-update: the old lists, complete
            states.append(digest_of(store))
            assert asking.ask() == {"digest": states[-1]}  # read after it: the new lists
        monkeypatch.undo()
        assert len(during) == len(batches)

        def read_mid_job(done: int, total: int) -> None:  # between blocks, inside the job's transaction
            if done < total and len(during) == len(batches):
                during.append(asking.ask())

        precompute(Recommender.load(model), store, k=5, block_rows=50, progress=read_mid_job)
        assert during[-1] == {"digest": states[-1]}
        states.append(digest_of(store))
        assert asking.ask() == {"digest": states[-1]}
        assert len(set(states)) == len(states)  # every write changed the store
        if looping is not None:
            looping.wait_for(states[-1])
    finally:
        asking.close()
        if looping is not None:
            looping.close()
    if looping is not None:
        assert [r for r in looping.results if "error" in r] == []
        seen = [r["digest"] for r in looping.results]
        assert set(seen) <= set(states), "a looping reader saw a state between two complete ones"
        assert seen[0] == states[0] and seen[-1] == states[-1]
    assert journal_mode(store) == "delete"
    assert sorted(p.name for p in shared_dir.iterdir() if p.name.startswith("related")) == ["related.sqlite"]


def test_a_job_larger_than_the_page_cache_never_locks_readers_out_before_its_commit(
    fitted: Recommender, tmp_path: Path
) -> None:
    """The job keeps its changes in memory: spilling them into the file once SQLite's page cache is full
    (2 MB by default) would take the exclusive lock, and readers would wait for the rest of the job."""
    store = tmp_path / "related.sqlite"
    precompute(fitted, store, k=3)
    locked_mid_job: list[bool] = []

    def try_a_read(done: int, total: int) -> None:
        if done < total:
            locked_mid_job.append(is_locked_for_readers(store))

    precompute(fitted, store, k=100, min_score=0.0, block_rows=20, progress=try_a_read)
    assert store.stat().st_size > 3_000_000  # more than the page cache holds
    assert len(locked_mid_job) > 10 and not any(locked_mid_job)


# --- through RelatedStore, the Python reader --------------------------------------------------------

READ_WITH_RELATED_STORE = textwrap.dedent(
    """
    import sys
    from recommender import RelatedStore, StoreError

    try:
        print(" ".join(r.id for r in RelatedStore(sys.argv[1]).related(sys.argv[2])))
    except StoreError as exc:
        print(f"StoreError: {exc}")
    """
)


def related_as_reader(store: Path, article_id: str) -> str:
    """``RelatedStore(store).related(article_id)`` in a process with read access only: the ids, or the error."""
    numba_cache = store.parent / "numba-cache"
    numba_cache.mkdir(exist_ok=True)
    numba_cache.chmod(0o777)
    # numba caches compiled kernels beside the package's sources; a user who cannot write there needs a
    # cache directory of its own to import recommender at all.
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache)}
    command = [sys.executable, "-I", "-c", READ_WITH_RELATED_STORE, str(store), article_id]
    with write_access_dropped(store):
        done = subprocess.run(
            [*as_other_user(), *command] if AS_ROOT else command,
            capture_output=True,
            text=True,
            cwd=store.parent,
            env=env,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_related_store_as_another_user(fitted: Recommender, shared_dir: Path) -> None:
    store = shared_dir / "related.sqlite"
    precompute(fitted, store, k=3)
    expected = " ".join(r.id for r in RelatedStore(store).related(SNAKE_ID))
    assert len(expected.split()) == 3
    assert related_as_reader(store, SNAKE_ID) == expected
    set_wal(store)  # as an older version left it
    if sys.version_info >= (3, 11):  # SQLite's error names reach Python from 3.11 on
        assert related_as_reader(store, SNAKE_ID) == (
            f"StoreError: {store} is in WAL mode (written by an older recommender), which needs write access to "
            "read: the next `recommender precompute`, `add` or `remove` converts it"
        )


# --- an older version's WAL store -------------------------------------------------------------------


@pytest.mark.parametrize("writer", ["update", "precompute"])
def test_a_store_left_in_wal_mode_is_converted_by_the_next_write(
    base_model: Path, timeline: list[Article], shared_dir: Path, writer: str
) -> None:
    model, store = deploy(base_model, shared_dir)
    set_wal(store)
    reader = Reader(store)
    try:
        # what the issue reported: WAL needs a -shm file that a reader without write access cannot create
        assert "attempt to write a readonly database" in reader.ask().get("error", "")
        if writer == "update":
            Updater(model, store).add(timeline[300:302])
        else:
            precompute(Recommender.load(model), store, k=5)
        assert journal_mode(store) == "delete"
        assert reader.ask() == {"digest": digest_of(store)}
    finally:
        reader.close()
    assert sorted(p.name for p in shared_dir.iterdir() if p.name.startswith("related")) == ["related.sqlite"]


def test_a_wal_store_open_elsewhere_is_not_converted_and_says_why(
    fitted: Recommender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "related.sqlite"
    precompute(fitted, store, k=3)
    set_wal(store)
    before = digest_of(store)
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT", 0.3)
    other = sqlite3.connect(store)  # a reader of the older version, kept open (as a CMS worker's would be)
    try:
        other.execute("SELECT count(*) FROM related").fetchone()
        with pytest.raises(StoreError) as info:
            precompute(fitted, store, k=5)
    finally:
        other.close()
    assert str(info.value) == (
        f"{store} is in WAL mode (written by an older recommender), which readers without write access cannot "
        "open, and it stayed open elsewhere for 0.3 s, so it could not be converted: stop the programs reading "
        "it for a moment (restart the CMS workers) and run this again"
    )
    assert digest_of(store) == before and journal_mode(store) == "wal"
    precompute(fitted, store, k=5)  # once the readers are gone
    assert journal_mode(store) == "delete"


# --- locks held too long, crashed writers --------------------------------------------------------------


def lists(store: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(store)
    try:
        return {
            "related": sorted((a, r, b, round(s, 6)) for a, r, b, s in conn.execute("SELECT * FROM related")),
            "articles": sorted(conn.execute("SELECT * FROM articles")),
        }
    finally:
        conn.close()


@pytest.mark.parametrize("writer", ["update", "precompute"])
def test_a_reader_holding_a_transaction_past_the_timeout_is_a_store_error(
    base_model: Path, timeline: list[Article], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    """A rollback journal makes the COMMIT wait for readers; one that never lets go fails the write
    cleanly (a StoreError, not a traceback) and leaves the store as it was."""
    model, store = deploy(base_model, tmp_path)
    updater = Updater(model, store)
    before = digest_of(store)
    monkeypatch.setattr(store_module, "LOCK_TIMEOUT", 0.5)
    reader = sqlite3.connect(store, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM related").fetchone()
        with pytest.raises(StoreError) as info:
            if writer == "update":
                updater.add(timeline[300:302])
            else:
                precompute(Recommender.load(model), store, k=5)
    finally:
        reader.close()
    locked = f"{store} stayed locked for 0.5 s (by another writer, or a reader holding a transaction open)"
    assert digest_of(store) == before
    if writer == "precompute":
        assert str(info.value) == f"{locked}: nothing was changed; try again"
        return
    # The model's overlay was renamed into place before the COMMIT: the model moved on, the store is one
    # update behind, and the next update rebuilds it.
    assert str(info.value) == (
        f"{locked}: the model was updated but not its store; the next add or remove rebuilds the store"
    )
    assert len(Recommender.load(model)) == 302
    assert updater.add(timeline[302:304]).store_rebuilt
    full = tmp_path / "full.sqlite"
    precompute(Recommender.load(model), full, k=5)
    assert lists(store) == lists(full)


KILLED_MID_COMMIT = textwrap.dedent(
    """
    import os, sqlite3, sys

    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    # A small cache that spills: the file is overwritten before COMMIT, and the journal made hot, as when a
    # writer is killed in the middle of its COMMIT.
    conn.execute("PRAGMA cache_size=5")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DELETE FROM related")
    conn.executemany("INSERT INTO related VALUES (?, 1, 'x', 0.5)", ((f"a{i}",) for i in range(20000)))
    os._exit(9)
    """
)


def test_after_a_writer_killed_mid_commit_the_next_write_lets_readers_in_again(
    base_model: Path, shared_dir: Path
) -> None:
    """A writer killed mid-commit leaves a hot journal that only a connection with write access can roll
    back: readers without it fail (clearly, through RelatedStore) until the next writer opens the store."""
    model, store = deploy(base_model, shared_dir)
    before = digest_of(store)
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_COMMIT, str(store)], timeout=120)
    assert killed.returncode == 9
    assert (shared_dir / "related.sqlite-journal").exists()
    reader = Reader(store)
    try:
        assert "attempt to write a readonly database" in reader.ask().get("error", "")
        if sys.version_info >= (3, 11):  # SQLite's error names reach Python from 3.11 on
            with pytest.raises(StoreError, match=r"was left mid-commit by a writer that was killed .* is hot"):
                RelatedStore(store).related("any-id")
        Updater(model, store)  # opening the store for writing rolls the journal back
        assert reader.ask() == {"digest": before}
    finally:
        reader.close()
    assert not (shared_dir / "related.sqlite-journal").exists()


# --- file modes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o027], ids=["022", "002", "027"])
def test_a_new_store_and_its_journal_get_the_mode_of_any_new_file(
    fitted: Recommender, tmp_path: Path, umask: int
) -> None:
    """0666 less the umask, as the package's other files (SQLite's own default is 0644 less it)."""
    store = tmp_path / "related.sqlite"
    journal = tmp_path / "related.sqlite-journal"
    journal_modes: list[int] = []

    def look(done: int, total: int) -> None:  # mid-job: the journal exists
        if done < total and journal.exists():
            journal_modes.append(journal.stat().st_mode & 0o777)

    previous = os.umask(umask)
    try:
        precompute(fitted, store, k=3, block_rows=50, progress=look)
    finally:
        os.umask(previous)
    assert store.stat().st_mode & 0o777 == 0o666 & ~umask
    assert journal_modes and set(journal_modes) == {0o666 & ~umask}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["related.sqlite"]  # no -wal, -shm or journal left
