"""Incremental updates on the bundled corpus, beside a full precompute of the same corpus.

    python benchmarks/bench_updates.py            # --batch 1000 --singles 20 --repeats 3

The corpus in publication order: a model is fitted on all but the newest ``--batch`` articles, saved, and
its SQLite store precomputed. Then, each through the API (``Updater``, model and store on disk):
- ``--singles`` of the newest articles are added one at a time (p50 and max, end to end: analysis, model
  overlay written, store transaction committed);
- on a fresh copy, the newest ``--batch`` articles are added in one call.
The baseline is a full ``precompute`` of the updated model into a new SQLite file (median of
``--repeats``). After each phase the updated store is compared with that full precompute, list by list.

    python benchmarks/bench_updates.py --synthetic 100000   # the same on N synthetic articles

With ``--synthetic N``, the model is built from N generated articles' term counts (as in the other
benchmarks); the single adds and the batch are more generated articles, given as text (their terms as
words). The baseline is one full precompute.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from recommender import Recommender, Updater, precompute, read_articles
from recommender.lookups import term_counts

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


def synthetic_batch(n: int, batch: int, singles: int, k: int) -> None:
    """On ``n`` synthetic articles (fitted from their counts): ``singles`` newer ones added one at a time,
    and, on a fresh copy, ``batch`` more added in one call, as text."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scipy.sparse as sp
    from synthetic import generate

    from recommender.features import Counts

    total = n + batch + singles
    syn = generate(total, 0)
    order = sorted(range(total), key=lambda i: (syn.articles[i].published or "", syn.articles[i].id))
    old, new, one_by_one = order[:n], order[n : n + batch], order[n + batch :]
    matrix, terms = syn.counts.matrix, syn.counts.terms

    def as_text(i: int) -> Any:
        a = syn.articles[i]
        lo, hi = matrix.indptr[i], matrix.indptr[i + 1]
        words = [
            terms[t] for t, c in zip(matrix.indices[lo:hi], matrix.data[lo:hi], strict=True) for _ in range(int(c))
        ]
        return dataclasses.replace(a, body=". ".join(words))

    counts = Counts(sp.csr_matrix(matrix[old]), terms)
    print(
        f"corpus: synthetic, {n:,} articles fitted from term counts; {singles} newer ones added one at a time, "
        f"and {batch:,} in one call, as text; k={k}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "batch").mkdir()
        model, store = work / "batch" / "model.joblib", work / "batch" / "related.sqlite"
        Recommender().fit_counts(counts, [syn.articles[i] for i in old]).save(model)
        precompute(Recommender.load(model), store, k)
        shutil.copytree(work / "batch", work / "singles")
        full = work / "full.sqlite"

        updater = Updater(work / "singles" / "model.joblib", work / "singles" / "related.sqlite")
        times = []
        for i in one_by_one:
            started = time.perf_counter()
            updater.add([as_text(i)])
            times.append(time.perf_counter() - started)
        precompute(Recommender.load(work / "singles" / "model.joblib"), full, k)
        same_singles = lists(work / "singles" / "related.sqlite") == lists(full)

        updater = Updater(model, store)
        articles = [as_text(i) for i in new]
        started = time.perf_counter()
        result = updater.add(articles)
        batch_seconds = time.perf_counter() - started
        started = time.perf_counter()
        precompute(Recommender.load(model), full, k)
        full_seconds = time.perf_counter() - started
        same = lists(store) == lists(full)
    ms = sorted(t * 1000 for t in times)
    if ms:
        print(f"add 1 article, end to end: p50 {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms ({len(ms)} adds)")
    print(
        f"add {batch:,} articles in one call: {batch_seconds:.2f} s; "
        f"full precompute of the corpus: {full_seconds:.2f} s"
    )
    print(f"speed-up of the batch over a full precompute: {full_seconds / batch_seconds:.1f}x")
    print(f"lists rewritten by the batch: {result.lists_updated:,}")
    print(f"stores identical to a full precompute: singles {same_singles}, batch {same}")
    if not (same and same_singles):
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--synthetic", type=int, default=0, metavar="N")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    if args.synthetic:
        synthetic_batch(args.synthetic, args.batch, args.singles, args.k)
        return
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
        started, cpu = time.perf_counter(), time.process_time()
        result = updater.add(newest)
        batch_seconds, batch_cpu = time.perf_counter() - started, time.process_time() - cpu
        # The analysis alone, as the batch did it (one process, its word caches now warm).
        started = time.perf_counter()
        for article in newest:
            term_counts(updater.model.fitted_state(), article.title, article.body)
        analysis_seconds = time.perf_counter() - started
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
    cores = os.cpu_count() or 1
    print(
        f"batch CPU time, all threads: {batch_cpu:.2f} s (on {cores} cores, at least {batch_cpu / cores:.2f} s of "
        f"wall time); the same texts analysed again, caches warm: {analysis_seconds:.2f} s"
    )
    print(f"opening the updater (model load, the store's lists, lookup tables): {opened:.2f} s, once per process")
    print(f"stores identical to a full precompute: singles {same_singles}, batch {same_batch}")
    if not (same_singles and same_batch):
        sys.exit(1)


if __name__ == "__main__":
    main()
