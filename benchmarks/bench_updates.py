"""Incremental updates on the bundled corpus, beside a full precompute of the same corpus.

    python benchmarks/bench_updates.py            # --batch 1000 --singles 20 --repeats 3

The corpus in publication order: a model is fitted on all but the newest ``--batch`` articles, saved, and
its SQLite store precomputed. Then, each through the API (``Updater``, model and store on disk):
- ``--singles`` of the newest articles are added one at a time (p50 and max, end to end: analysis, model
  overlay written, store transaction committed);
- on a fresh copy, the newest ``--batch`` articles are added in one call.
The baseline is a full ``precompute`` of the updated model into a new SQLite file (median of
``--repeats``). After each phase the updated store is compared with that full precompute, list by list.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from recommender import Recommender, Updater, precompute, read_articles

ROOT = Path(__file__).resolve().parent.parent


def lists(path: Path) -> list[tuple[str, int, str, float]]:
    conn = sqlite3.connect(path)
    try:
        return sorted((a, r, b, round(s, 6)) for a, r, b, s in conn.execute("SELECT * FROM related"))
    finally:
        conn.close()


def setup(directory: Path, base: list, k: int) -> tuple[Path, Path]:
    directory.mkdir(parents=True)
    model, store = directory / "model.joblib", directory / "related.sqlite"
    Recommender().fit(base).save(model)
    precompute(Recommender.load(model), store, k)
    return model, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    corpus = read_articles(ROOT / "data" / "clickid.jsonl.gz").articles
    timeline = sorted(corpus, key=lambda a: (a.published or "", a.id))
    base, newest = timeline[: -args.batch], timeline[-args.batch :]
    print(f"corpus: bundled, {len(timeline):,} articles; fitted on the oldest {len(base):,}, k={args.k}")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, store = setup(work / "singles", base, args.k)
        shutil.copytree(work / "singles", work / "batch")
        started = time.perf_counter()
        updater = Updater(model, store)
        opened = time.perf_counter() - started
        times, touched = [], []
        for article in newest[: args.singles]:
            started = time.perf_counter()
            result = updater.add([article])
            times.append(time.perf_counter() - started)
            touched.append(result.lists_updated)
        full = work / "full.sqlite"
        precompute(Recommender.load(model), full, args.k)
        same_singles = lists(store) == lists(full)

        updater = Updater(work / "batch" / "model.joblib", work / "batch" / "related.sqlite")
        started = time.perf_counter()
        result = updater.add(newest)
        batch_seconds = time.perf_counter() - started
        updated = Recommender.load(work / "batch" / "model.joblib")
        full_times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            precompute(updated, full, args.k)
            full_times.append(time.perf_counter() - started)
        same_batch = lists(work / "batch" / "related.sqlite") == lists(full)
        full_seconds = statistics.median(full_times)

    ms = sorted(t * 1000 for t in times)
    print()
    print(f"{'measure':<52}{'ours':>12}{'baseline':>12}  baseline is")
    print(
        f"{'add 1 article, end to end (ms), p50 / max':<52}{f'{statistics.median(ms):.0f} / {ms[-1]:.0f}':>12}"
        f"{full_seconds * 1000:>12.0f}  full precompute of the corpus"
    )
    print(
        f"{f'add {len(newest):,} articles in one call (s)':<52}{batch_seconds:>12.2f}{full_seconds:>12.2f}"
        f"  full precompute ({statistics.median(full_times):.2f} s median of {args.repeats})"
    )
    print()
    print(f"single adds: {args.singles}, lists rewritten per add: median {statistics.median(touched):.0f}")
    print(f"batch: {result.lists_updated:,} lists rewritten; {batch_seconds / full_seconds:.2f} of a full precompute")
    print(f"speed-up of the batch over a full precompute: {full_seconds / batch_seconds:.1f}x")
    print(f"opening the updater (model load + the store's lists): {opened:.2f} s, once per process")
    print(f"stores identical to a full precompute: singles {same_singles}, batch {same_batch}")
    if not (same_singles and same_batch):
        sys.exit(1)


if __name__ == "__main__":
    main()
