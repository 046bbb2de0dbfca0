"""The batch job: every article's related list, computed here or on a Dask cluster, written to JSON Lines,
CSV or SQLite (see :mod:`recommender.store` for the formats and how each is replaced atomically)."""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import blocks
from ._atomic import atomic_write, locked_directory
from ._progress import ProgressCallback
from .cluster import check_cluster_options, cluster_blocks
from .errors import StoreError
from .model import Recommender
from .modelfile import read_journal
from .neighbors import BLOCK_ROWS, Block, Plan, available_threads
from .options import LookupOptions
from .ranking import RankingOptions, check_k
from .repair import StoredLists, catch_up, rules_changed_lists, under_rules
from .rulebook import RuleBook
from .ruleindex import rule_index
from .rules import Rule, rules_json, rules_key
from .state import FittedState
from .store import RowLists, SqliteStore, StoreMeta, check_output, is_busy, locked, row_lists

__all__ = ["PrecomputeResult", "precompute"]


@dataclass(frozen=True, slots=True)
class PrecomputeResult:
    """What a precompute job wrote."""

    path: str
    format: str
    articles: int
    pairs: int
    k: int
    seconds: float
    mode: str = "exact"
    multiply_adds: int = 0
    recall: float | None = None  # approximate mode: estimated recall@k against exact lists


def _pairs(blocks: Iterator[Block]) -> RowLists:
    for block in blocks:
        yield from row_lists(range(block.start, block.start + block.indices.shape[0]), block.indices, block.scores)


def precompute(
    model: Recommender,
    path: str | Path,
    k: int = 10,
    options: LookupOptions | None = None,
    *,
    mode: str | Plan = "auto",
    progress: ProgressCallback | None = None,
    block_rows: int = BLOCK_ROWS,
    recall_sample: int = 200,
    scheduler: Any = None,
    workers: int | None = None,
    model_path: str | Path | None = None,
    **changes: Any,
) -> PrecomputeResult:
    """Write every article's top-``k`` related list to ``path`` (format by suffix), replacing it atomically.

    ``mode``: "exact", "approx", or "auto" (exact up to a size, see :meth:`Recommender.plan_all_related`).
    In approximate mode the recall against exact lists is estimated on ``recall_sample`` articles first.
    ``options`` (a :class:`~recommender.LookupOptions`, or its fields as keywords: ``newer=``,
    ``within_days=``, ``category=``, ...) are :meth:`Recommender.all_related`'s, recorded in a SQLite
    store's ``meta`` table, so that updates recompute lists with them.
    ``scheduler`` (a Dask scheduler's address, or a ``distributed.Client``) or ``workers`` (a local Dask
    cluster of that many processes) computes the lists on a cluster instead, identical (``recommender[dask]``).
    ``model_path``: where ``model`` was loaded from. A SQLite store is then written in the model's turn
    of its writer lock, with the updates that landed on the model while the lists were computed folded
    in (from the model's journal), so that the store is at the model's latest update, not behind it.
    """
    path = Path(path)
    check_k(k)  # first: a mistyped k must not start a job sized by it
    kind = check_output(path)
    on_cluster = scheduler is not None or workers is not None
    if on_cluster:
        check_cluster_options(scheduler, workers)  # before the slow steps
    started = time.perf_counter()
    state = model.fitted_state()  # one state for the whole job, whatever updates happen meanwhile
    plan = mode if isinstance(mode, Plan) else blocks.plan_lists(state, mode)
    ranking = model.batch_options(options, **changes)
    threads = available_threads(model.n_jobs)
    applied = rule_index(state).in_force  # the rules the lists apply, recorded in a SQLite store
    recall = (
        blocks.estimate_recall(state, k, ranking, plan.approx, sample=recall_sample, threads=threads)
        if plan.approx
        else None
    )
    if on_cluster:  # the same blocks from Dask workers, once writing starts
        lists = cluster_blocks(
            state, k, plan, ranking, scheduler=scheduler, workers=workers, block_rows=block_rows, progress=progress
        )
    else:
        lists = blocks.all_related(
            state, k, ranking, approx=plan.approx, progress=progress, block_rows=block_rows, threads=threads
        )
    try:
        if kind == "sqlite" and model_path is not None and state.base_sha256 is not None:
            state, pairs = _write_caught_up(
                state, Path(model_path), path, lists, k, ranking, plan, recall, threads, applied
            )
        else:
            # What an incremental update needs to recompute lists as this job did.
            meta = replace(
                StoreMeta.of_job(k, plan.mode, ranking, state.updates.generation),
                recall_estimate=recall,
                rules=rules_json(applied) if applied else None,
            )
            writer = {"jsonl": _write_jsonl, "csv": _write_csv, "sqlite": _write_sqlite}[kind]
            pairs = writer(state, path, _pairs(lists), meta)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    except sqlite3.OperationalError as exc:  # locked for too long, disk full, ...
        if is_busy(exc):
            raise StoreError(f"{locked(path)}: nothing was changed; try again") from None
        raise StoreError(f"cannot write {path}: {exc}") from None
    finally:
        if isinstance(lists, Generator):
            lists.close()  # now, not at garbage collection: a failed job shuts its Dask cluster down at once
    seconds = time.perf_counter() - started
    return PrecomputeResult(str(path), kind, len(state), pairs, k, seconds, plan.mode, plan.multiply_adds, recall)


def _write_caught_up(
    state: FittedState,
    model_path: Path,
    path: Path,
    lists: Iterator[Block],
    k: int,
    options: RankingOptions,
    plan: Plan,
    recall: float | None,
    threads: int,
    applied: tuple[Rule, ...],
) -> tuple[FittedState, int]:
    """Write ``state``'s ``lists`` to the SQLite store ``path`` with the updates made to the model at
    ``model_path`` since ``state`` folded in; returns the state written and the pairs."""
    # Computed first: updaters wait on the lock only while the store is written.
    stored = StoredLists.collect(lists, len(state), k, options)
    with locked_directory(model_path.parent):
        fit = str(state.base_sha256)
        caught = catch_up(state, stored, read_journal(model_path, fit, after=state.updates.generation), threads)
        if caught is not None:  # else a batch is missing from the journal: the store is behind its model, and
            state, stored = caught  # the next update rebuilds it
        # Rules changed (or expired) while the lists were computed: those they reach are recomputed too.
        current = RuleBook.of_model(model_path).rules()
        if rules_key(current.in_force(time.time())) != rules_key(applied):
            ruled = state.with_rules(current)
            _, stored = rules_changed_lists(under_rules(state, applied), ruled, stored, threads)
            state, applied = ruled, rule_index(ruled).in_force
        meta = replace(
            StoreMeta.of_job(k, plan.mode, options, state.updates.generation),
            recall_estimate=recall,
            rules=rules_json(applied) if applied else None,
        )
        rows = row_lists(range(len(state)), stored.indices, stored.scores)
        return state, _write_sqlite(state, path, rows, meta)


def _write_jsonl(state: FittedState, path: Path, rows: RowLists, meta: StoreMeta) -> int:
    articles = state.articles
    ids, titles, urls = articles.ids.to_list(), articles.titles.to_list(), articles.urls.to_list()
    published, images = articles.published.to_list(), articles.images.to_list()
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with open(tmp, "w", encoding="utf-8") as out:
            for row, neighbours in rows:
                related = [
                    {"id": ids[j], "title": titles[j], "url": urls[j], "published": published[j], "score": round(s, 6)}
                    | ({} if images[j] is None else {"image": images[j]})  # as Related.to_dict: only when it has one
                    for j, s in neighbours
                ]
                count += len(related)
                out.write(json.dumps({"id": ids[row], "related": related}, ensure_ascii=False) + "\n")

    atomic_write(path, write, make_parents=False)
    return count


def _write_csv(state: FittedState, path: Path, rows: RowLists, meta: StoreMeta) -> int:
    ids = state.articles.ids.to_list()
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["id", "rank", "related_id", "score"])
            for row, neighbours in rows:
                for rank, (j, s) in enumerate(neighbours, start=1):
                    writer.writerow([ids[row], rank, ids[j], f"{s:.6f}"])
                    count += 1

    atomic_write(path, write, make_parents=False)
    return count


def _write_sqlite(state: FittedState, path: Path, rows: RowLists, meta: StoreMeta) -> int:
    store = SqliteStore.for_writing(path, create=True)
    try:
        # One transaction: readers keep seeing the old lists until COMMIT; a crash rolls back to them.
        store.begin()
        store.create_tables()
        store.clear()
        store.insert_articles(state.articles)
        count = store.insert_lists(state.articles.ids.to_list(), rows)
        store.write_meta(
            replace(
                meta,
                articles=len(state),
                model_created_at=str(state.fitted_at),
                corpus_checksum=str(state.corpus["checksum"]),
                written_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
        )
        store.commit()
    except BaseException:
        store.rollback()
        raise
    finally:
        store.close()
    return count
