"""precompute on a Dask cluster: a real LocalCluster of worker processes, compared with the local job."""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import recommender.cluster as cluster_module
from recommender import Article, ClusterError, InvalidParameterError, Recommender, Rule, Rules, vectors_for
from recommender.batch import precompute
from recommender.cli import app
from recommender.corpus import bundled_vectors_path

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

K = 5
BLOCK_ROWS = 32  # 12 blocks of the 380-article sample, shared by both workers
SUFFIXES = (".sqlite", ".jsonl", ".csv")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as local_cluster:
        yield local_cluster


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture(scope="module")
def local(fitted: Recommender, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample's lists precomputed in this process, in every format."""
    folder = tmp_path_factory.mktemp("local")
    paths = {suffix: folder / f"related{suffix}" for suffix in SUFFIXES}
    for path in paths.values():
        precompute(fitted, path, k=K)
    return paths


def sqlite_tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table in its stored row order; meta without the time of writing."""
    conn = sqlite3.connect(path)
    try:
        tables = {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall() for table in ("related", "articles")
        }
        tables["meta"] = conn.execute("SELECT * FROM meta WHERE key != 'written_at' ORDER BY key").fetchall()
    finally:
        conn.close()
    return tables


def assert_same_output(got: Path, expected: Path) -> None:
    if got.suffix == ".sqlite":
        assert sqlite_tables(got) == sqlite_tables(expected)
    else:
        assert got.read_bytes() == expected.read_bytes()


def lists_by_article(path: Path) -> dict[str, list[tuple[int, str, float]]]:
    """Each article's stored list; fails on an article stored twice or a gap in the ranks."""
    conn = sqlite3.connect(path)
    try:
        lists: dict[str, list[tuple[int, str, float]]] = {}
        for article_id, rank, related_id, score in conn.execute("SELECT * FROM related ORDER BY rowid"):
            items = lists.setdefault(article_id, [])
            assert rank == len(items) + 1, f"{article_id}: rank {rank} after {len(items)} (stored twice?)"
            items.append((rank, related_id, score))
    finally:
        conn.close()
    return lists


# --- the same output as the local job ----------------------------------------------------------------


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_cluster_writes_what_the_local_job_writes(
    fitted: Recommender, cluster: Any, local: dict[str, Path], tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"related{suffix}"
    result = precompute(fitted, out, k=K, scheduler=cluster.scheduler_address, block_rows=BLOCK_ROWS)
    assert (result.articles, result.mode) == (380, "exact")
    assert_same_output(out, local[suffix])


def test_cluster_workers_apply_the_editors_rules(fitted: Recommender, client: Any, tmp_path: Path) -> None:
    ids = [str(i) for i in fitted.ids_.to_list()]
    sections = fitted.fitted_state().articles.sections.to_list()
    rules = Rules(
        (
            Rule("pin", article=ids[0], related=ids[300], id=1),
            Rule("block", related=ids[5], id=2),
            Rule(
                "block",
                field="section",
                value=str(sections[7]),
                under_field="section",
                under_value=str(sections[0]),
                id=3,
            ),
        )
    )
    ruled = Recommender.from_state(fitted.fitted_state().with_rules(rules), fitted.get_params())
    precompute(ruled, tmp_path / "local.sqlite", k=K)
    precompute(ruled, tmp_path / "dask.sqlite", k=K, scheduler=client, block_rows=BLOCK_ROWS)
    assert sqlite_tables(tmp_path / "dask.sqlite") == sqlite_tables(tmp_path / "local.sqlite")
    assert ruled.related(ids[0], k=1)[0].id == ids[300]


def test_cluster_workers_gate_by_meaning_as_the_local_job(
    fitted: Recommender, sample_articles: list[Article], client: Any, tmp_path: Path
) -> None:
    bundled = bundled_vectors_path()
    if bundled is None:
        pytest.skip("the bundled corpus's vectors are not in data/")
    semantic = fitted.with_vectors(vectors_for(bundled, sample_articles))
    precompute(semantic, tmp_path / "local.sqlite", k=K)
    precompute(semantic, tmp_path / "dask.sqlite", k=K, scheduler=client, block_rows=BLOCK_ROWS)
    assert sqlite_tables(tmp_path / "dask.sqlite") == sqlite_tables(tmp_path / "local.sqlite")
    precompute(fitted, tmp_path / "words.sqlite", k=K)
    assert sqlite_tables(tmp_path / "words.sqlite") != sqlite_tables(tmp_path / "local.sqlite")  # meaning counted


def test_cluster_approximate_mode_is_identical_too(fitted: Recommender, client: Any, tmp_path: Path) -> None:
    expected = precompute(fitted, tmp_path / "local.sqlite", k=K, mode="approx")
    got = precompute(fitted, tmp_path / "dask.sqlite", k=K, mode="approx", scheduler=client, block_rows=BLOCK_ROWS)
    assert (got.mode, got.recall, got.pairs) == ("approx", expected.recall, expected.pairs)
    assert sqlite_tables(tmp_path / "dask.sqlite") == sqlite_tables(tmp_path / "local.sqlite")
    assert client.status == "running", "a client passed in is the caller's: left open"


def test_cluster_options_reach_the_workers(
    fitted: Recommender, client: Any, local: dict[str, Path], tmp_path: Path
) -> None:
    options: dict[str, Any] = {
        "newer": False,
        "diversity": 0.3,
        "min_score": 0.2,
        "min_results": 2,
        "source": "kompas.com",
    }
    precompute(fitted, tmp_path / "local.jsonl", k=3, **options)
    precompute(fitted, tmp_path / "dask.jsonl", k=3, scheduler=client, block_rows=BLOCK_ROWS, **options)
    assert (tmp_path / "dask.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert (tmp_path / "dask.jsonl").read_bytes() != local[".jsonl"].read_bytes()


def test_progress_counts_the_local_jobs_multiply_adds(fitted: Recommender, client: Any, tmp_path: Path) -> None:
    local_calls: list[tuple[int, int]] = []
    cluster_calls: list[tuple[int, int]] = []
    precompute(fitted, tmp_path / "local.sqlite", k=K, progress=lambda d, t: local_calls.append((d, t)))
    precompute(
        fitted,
        tmp_path / "dask.sqlite",
        k=K,
        scheduler=client,
        block_rows=BLOCK_ROWS,
        progress=lambda d, t: cluster_calls.append((d, t)),
    )
    assert len(cluster_calls) >= -(-380 // BLOCK_ROWS), "one call per finished block"
    done = [d for d, _ in cluster_calls]
    assert done == sorted(done) and done[0] > 0
    assert cluster_calls[-1] == local_calls[-1]


def test_a_killed_workers_blocks_are_run_again_and_written_once(
    fitted: Recommender, client: Any, local: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "killed"
    original = cluster_module.compute_block

    def killing_block(*args: Any) -> Any:
        # Sent to the workers by value; the first to start a block past row 150 dies, with blocks done before.
        if args[-2] > 150:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return original(*args)

    monkeypatch.setattr(cluster_module, "compute_block", killing_block)
    workers_before = set(client.scheduler_info()["workers"])
    out = tmp_path / "related.sqlite"
    precompute(fitted, out, k=K, scheduler=client, block_rows=BLOCK_ROWS)
    assert marker.exists(), "a worker was killed"
    lists = lists_by_article(out)
    assert lists == lists_by_article(local[".sqlite"])
    assert sqlite_tables(out) == sqlite_tables(local[".sqlite"])
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it, for the tests after this one
    assert set(client.scheduler_info()["workers"]) != workers_before


@pytest.mark.parametrize(("n", "block_rows", "blocks"), [(1, 10, 4), (380, 32, 16), (1000, 100, 4), (97, 1000, 8)])
def test_blocks_cover_every_row_once_at_about_equal_cost(n: int, block_rows: int, blocks: int) -> None:
    cost = np.random.default_rng(n).integers(0, 1000, size=n).astype(np.float64)
    cost[: n // 3] *= 10  # uneven: the early rows cost more
    bounds = cluster_module.split_rows(np.cumsum(cost), block_rows, blocks)
    assert [start for start, _ in bounds] == [0] + [stop for _, stop in bounds[:-1]]
    assert bounds[-1][1] == n
    assert all(0 < stop - start <= block_rows for start, stop in bounds)
    assert len(bounds) >= min(n, blocks)
    if n >= 100 * blocks:  # no block costs much more than its share
        assert max(cost[start:stop].sum() for start, stop in bounds) <= 1.5 * cost.sum() / len(bounds) + cost.max()
    assert cluster_module.split_rows(np.zeros(0), block_rows, blocks) == []


# --- the command line ----------------------------------------------------------------------------------

runner = CliRunner()


def invoke(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args], env={"RECOMMENDER_MODEL": None})


def test_cli_workers_starts_a_local_cluster(model_path: Path, local: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "related.jsonl"
    result = invoke("precompute", "--out", out, "-k", K, "--model", model_path, "--workers", 2)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    pairs = sum(len(json.loads(line)["related"]) for line in local[".jsonl"].read_text().splitlines())
    assert 0 < pairs <= 380 * K
    assert lines[0].startswith(f"Wrote {pairs:,} related links for 380 articles to {out} (jsonl, k={K}) in ")
    assert lines[1].startswith("Mode: exact (")
    assert lines[2:] == ["Computed on a local Dask cluster of 2 workers"]
    assert out.read_bytes() == local[".jsonl"].read_bytes()


def test_cli_scheduler(model_path: Path, cluster: Any, local: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "related.csv"
    result = invoke(
        "precompute", "--out", out, "-k", K, "--model", model_path, "--scheduler", cluster.scheduler_address
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2] == f"Computed on the Dask cluster at {cluster.scheduler_address}"
    assert out.read_bytes() == local[".csv"].read_bytes()


def assert_user_error(result: Any, fragment: str) -> None:
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr


def test_cli_scheduler_and_workers_together_is_an_error(tmp_path: Path) -> None:
    # Refused before the model is even read: there is none.
    result = invoke("precompute", "--out", tmp_path / "r.sqlite", "--model", tmp_path / "none.joblib",
                    "--scheduler", "tcp://127.0.0.1:8786", "--workers", 2)  # fmt: skip
    assert_user_error(result, "choose one of --scheduler (an existing cluster) and --workers (a local one)")


@pytest.mark.parametrize("workers", [0, -1])
def test_cli_workers_must_be_positive(tmp_path: Path, workers: int) -> None:
    result = invoke("precompute", "--out", tmp_path / "r.sqlite", "--model", tmp_path / "none.joblib",
                    "--workers", workers)  # fmt: skip
    assert_user_error(result, f"workers must be a whole number of 1 or more, got {workers}")


def test_cli_unreachable_scheduler_is_an_error(model_path: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "r.sqlite"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = invoke("precompute", "--out", out, "--model", model_path, "--scheduler", f"tcp://127.0.0.1:{port}")
    assert_user_error(result, f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    conn = sqlite3.connect(out)  # the job's transaction was rolled back: no lists
    try:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'related'").fetchall() == []
    finally:
        conn.close()


def test_a_scheduler_without_workers_is_an_error(model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.sqlite"
    with (
        distributed.LocalCluster(
            n_workers=0, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        ) as empty,
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
    ):
        result = invoke("precompute", "--out", out, "--model", model_path, "--scheduler", empty.scheduler_address)
    assert_user_error(
        result,
        f"no Dask workers joined {empty.scheduler_address} within 1 s: "
        f"start some with `dask worker {empty.scheduler_address}`",
    )
    conn = sqlite3.connect(out)  # nothing was written
    try:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'related'").fetchall() == []
    finally:
        conn.close()


def test_without_dask_a_cluster_job_says_what_to_install(
    fitted: Recommender, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    with pytest.raises(ClusterError, match=r"install recommender\[dask\]"):
        precompute(fitted, tmp_path / "r.sqlite", workers=2)
    assert not (tmp_path / "r.sqlite").exists()
    result = invoke("precompute", "--out", tmp_path / "r.jsonl", "--model", model_path, "--workers", 2)
    assert_user_error(result, "install recommender[dask]")
    with pytest.raises(InvalidParameterError):
        precompute(fitted, tmp_path / "r.sqlite", workers=2, scheduler="tcp://127.0.0.1:8786")


def test_the_package_imports_no_dask_until_asked() -> None:
    code = (
        "import sys; import recommender, recommender.cli, recommender.store, recommender.cluster; "
        "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_model_pickles_without_its_lookup_tables(fitted: Recommender) -> None:
    fitted.related("kompas-8f42b397")  # builds lookup tables, which stay out of the pickle
    built = fitted.fitted_state().memo
    assert built.peek("index") is not None and built.peek("rows") is not None
    data = pickle.dumps(fitted)
    copy = pickle.loads(data)
    assert copy.fitted_state().memo.peek("index") is None and copy.fitted_state().memo.peek("rows") is None
    # The id table alone would add about 8 kB (pickle's sharing of equal objects varies by a few bytes).
    rows_table = len(pickle.dumps(built.peek("rows")))
    assert rows_table > 5_000 and abs(len(pickle.dumps(copy)) - len(data)) < 1_000
    assert copy.related("kompas-8f42b397") == fitted.related("kompas-8f42b397")
    assert copy.fitted_state().memo.peek("rows") is not None  # the copy builds its own on use
