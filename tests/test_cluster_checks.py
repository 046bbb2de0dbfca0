"""The Dask job's two refusals, on real LocalClusters: a worker with another recommender version (or none), checked
before any block runs, and a block that keeps killing its workers (Dask gives up on a task after it has taken down
more than ``distributed.scheduler.allowed-failures``, 3, workers). Each is a ClusterError naming the problem, and
the previous output stays as it was."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import recommender.cluster as cluster_module
from recommender import ClusterError, Recommender, __version__
from recommender.batch import precompute
from recommender.cli import app

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

K = 3
BLOCK_ROWS = 32  # blocks of at most 32 of the 380-article sample's rows
TABLES = ("related", "articles", "meta")
AMM = "distributed.scheduler.active-memory-manager.start"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as local_cluster:
        yield local_cluster


def worker_addresses(cluster: Any) -> set[str]:
    return set(cluster.scheduler_info["workers"])


def tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {name: conn.execute(f"SELECT * FROM {name} ORDER BY rowid").fetchall() for name in TABLES}
    finally:
        conn.close()


# --- another version on a worker -------------------------------------------------------------------------


def test_a_worker_with_another_version_is_refused(
    fitted: Recommender, cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "related.jsonl"
    precompute(fitted, out, k=2)
    before = out.read_bytes()
    # This process claims another version; the workers report the installed one, as a real mismatch would.
    monkeypatch.setattr(cluster_module, "__version__", "0.0.1-other")
    with pytest.raises(ClusterError) as info:
        precompute(fitted, out, k=K, scheduler=cluster.scheduler_address, block_rows=BLOCK_ROWS)
    message = str(info.value)
    match = re.fullmatch(
        rf"Dask worker (\S+) has recommender {re.escape(__version__)}, this process 0\.0\.1-other: "
        "install the same version everywhere, so every list is computed alike",
        message,
    )
    assert match, message
    assert match.group(1) in worker_addresses(cluster)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["related.jsonl"]


def test_the_version_check_at_the_command_line(
    model_path: Path, cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_module, "__version__", "0.0.1-other")
    out = tmp_path / "related.csv"
    result = CliRunner().invoke(
        app, ["precompute", "--out", str(out), "--model", str(model_path), "--scheduler", cluster.scheduler_address]
    )
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert re.fullmatch(
        rf"Error: Dask worker \S+ has recommender {re.escape(__version__)}, this process 0\.0\.1-other: "
        r"install the same version everywhere, so every list is computed alike\n",
        result.stderr,
    ), result.stderr
    assert not out.exists()


def test_a_worker_that_cannot_import_recommender_is_refused(
    fitted: Recommender, cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_recommender_here() -> str:  # sent to the workers by value, as a function of this test
        raise ImportError("No module named 'recommender'")

    monkeypatch.setattr(cluster_module, "_worker_version", no_recommender_here)
    out = tmp_path / "related.sqlite"
    with pytest.raises(ClusterError) as info:
        precompute(fitted, out, k=K, scheduler=cluster.scheduler_address, block_rows=BLOCK_ROWS)
    match = re.fullmatch(
        r"Dask worker (\S+) cannot run recommender \(ImportError\(\"No module named 'recommender'\"\)\): "
        "install it on every worker",
        str(info.value),
    )
    assert match, str(info.value)
    assert match.group(1) in worker_addresses(cluster)
    conn = sqlite3.connect(out)  # the job's transaction was rolled back: no lists
    try:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'related'").fetchall() == []
    finally:
        conn.close()


def test_workers_of_the_same_version_are_accepted(fitted: Recommender, cluster: Any, tmp_path: Path) -> None:
    # The check passes when versions agree: the refusal above is the mismatch, not the check itself failing.
    result = precompute(fitted, tmp_path / "related.jsonl", k=K, scheduler=cluster.scheduler_address)
    assert result.articles == 380


# --- a block that keeps killing its workers --------------------------------------------------------------


def test_a_block_that_kills_more_than_three_workers_fails_the_job(
    fitted: Recommender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "related.sqlite"
    precompute(fitted, out, k=2)
    before = tables(out)
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    original = cluster_module.compute_block

    def deadly_block(*args: Any) -> Any:
        # Sent to the workers by value. The block holding row 100 always kills the worker running it (as a block
        # needing more memory than a worker has would); the nanny starts a new worker each time.
        start, stop = args[-2:]
        if start <= 100 < stop:
            (attempts / f"{os.getpid()}-{len(list(attempts.iterdir()))}").touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args)

    monkeypatch.setattr(cluster_module, "compute_block", deadly_block)
    # A local cluster of its own, of 5 workers, without Dask's active memory manager: the model is scattered to
    # every worker, and a worker that still holds it must outlive the 4 deaths. With the manager on, it drops the
    # model's copies down to the workers running blocks that need it, so once the deadly block is the last one
    # left, its own worker holds the only copy and the job fails as "the Dask cluster lost the job" instead (see
    # test_a_worker_dying_on_the_last_block_loses_the_job).
    with pytest.raises(ClusterError) as info, dask.config.set({AMM: False}):
        precompute(fitted, out, k=K, workers=5, block_rows=BLOCK_ROWS)
    assert re.fullmatch(
        r"Dask workers kept dying on one block \(.*recommender-block-[0-9a-f]{8}-\d+.*\); give them more memory",
        str(info.value),
    ), str(info.value)
    # Dask's allowed-failures is 3: the fourth worker to die on the block ends the job.
    deaths = list(attempts.iterdir())
    assert len(deaths) == 4, sorted(p.name for p in deaths)
    assert len({p.name.split("-")[0] for p in deaths}) == 4  # four different worker processes
    assert tables(out) == before  # the blocks written before the failure were rolled back


def test_a_worker_dying_on_the_last_block_with_the_only_model_copy(
    fitted: Recommender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dask's active memory manager keeps the model only where blocks still need it: the worker running the last
    # block holds the only copy, and its death loses it. The job sends the model again with the unfinished blocks.
    expected = tmp_path / "local.jsonl"
    precompute(fitted, expected, k=K)
    marker = tmp_path / "killed"
    never_alone = tmp_path / "never-the-only-copy"
    original = cluster_module.compute_block

    def last_block_dies_once(*args: Any) -> Any:
        if args[-1] == 380:
            # Wait (for an event, not a time) until the scheduler knows of one copy of the model, on this worker.
            worker, client = distributed.get_worker(), distributed.get_client()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                # The scattered state's key is its type's name and a token.
                held = [list(w) for key, w in client.who_has().items() if str(key).startswith("FittedState-")]
                if held == [[worker.address]]:
                    break
                time.sleep(0.05)
            else:
                os.close(os.open(never_alone, os.O_CREAT))  # the test fails: it did not test what it says
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return original(*args)

    monkeypatch.setattr(cluster_module, "compute_block", last_block_dies_once)
    out = tmp_path / "dask.jsonl"
    precompute(fitted, out, k=K, workers=2, block_rows=BLOCK_ROWS)
    assert marker.exists(), "a worker was killed"
    assert not never_alone.exists(), "the killed worker never held the model's only copy"
    assert out.read_bytes() == expected.read_bytes()
