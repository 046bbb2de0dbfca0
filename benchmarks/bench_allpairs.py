"""All-pairs top-10: our kernel beside scikit-learn's brute force, on the real corpus and on synthetic ones.

    python benchmarks/bench_allpairs.py                      # bundled corpus, exact, vs sklearn brute
    python benchmarks/bench_allpairs.py --synthetic 1000000  # 1M synthetic articles, precompute (auto mode)

Each measurement runs in a fresh process, so its peak RSS is its own. Times are medians over --repeats.

Real corpus: our exact cosine top-10 (the kernel precompute uses, all cores) and the full default
precompute into SQLite (time prior, near-duplicates), against ``NearestNeighbors(metric="cosine",
algorithm="brute").kneighbors`` on the same matrix; the lists are compared (equal up to ties).

Synthetic: the model is built from generated term counts and saved; a fresh process loads it and runs
``precompute`` into SQLite in the mode it picks by size, reporting its recall estimate. The exact
baseline is timed on a sample of rows and extrapolated.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_fresh_process(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` in a new process; return its result and that process's peak RSS (MB)."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_measure, (fn, *args))


def _measure(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    result = fn(*args)
    return result, _peak_mb()


def _median(times: list[float]) -> float:
    return statistics.median(times)


# --- the real corpus ------------------------------------------------------------------------------


def ours_exact(model_path: str, repeats: int) -> tuple[float, np.ndarray]:
    from recommender import Recommender
    from recommender.neighbors import Index, available_threads, search_blocks

    model = Recommender.load(model_path)
    index = Index(model.matrix_, model.index_t_)  # plain cosine, as sklearn's: no time prior, no topic gate
    times, rows = [], np.empty(0)
    for _ in range(repeats):
        started = time.perf_counter()
        rows = np.vstack([h.rows for _, h in search_blocks(index, 10, threads=available_threads())])
        times.append(time.perf_counter() - started)
    return _median(times), rows


def ours_precompute(model_path: str, out: str, repeats: int, min_score: float | None = None) -> float:
    from recommender import Recommender, precompute

    model = Recommender.load(model_path)
    options: dict[str, Any] = {} if min_score is None else {"min_score": min_score}
    return _median([precompute(model, out, 10, **options).seconds for _ in range(repeats)])


# The defaults before the graded judgments chose today's (docs/quality.md): the baseline the precompute's
# cost is held to (at most 1.5x).
PREVIOUS_DEFAULTS: dict[str, Any] = {
    "stopwords": "indonesian",
    "numbers": False,
    "ngram_range": (1, 2),
    "max_df": 0.5,
    "half_life_days": 3.0,
    "time_weight": 1.0,
    "topic_dims": None,
}


def sklearn_brute(model_path: str, repeats: int) -> tuple[float, np.ndarray, np.ndarray]:
    import scipy.sparse as sp
    from sklearn.neighbors import NearestNeighbors

    from recommender import Recommender

    model = Recommender.load(model_path, mmap=False)
    matrix = sp.csr_matrix(model.matrix_)
    times, dist, idx = [], np.empty(0), np.empty(0)
    for _ in range(repeats):
        started = time.perf_counter()
        nn = NearestNeighbors(n_neighbors=11, metric="cosine", algorithm="brute").fit(matrix)
        dist, idx = nn.kneighbors(matrix)
        times.append(time.perf_counter() - started)
    return _median(times), dist, idx


def compare(ours: np.ndarray, sims_base: np.ndarray, idx_base: np.ndarray, model_path: str) -> tuple[int, int]:
    """Rows whose lists differ, and how many of those differ only by tied scores."""
    from recommender import Recommender

    matrix = Recommender.load(model_path).matrix_
    differ = tied = 0
    for r in range(ours.shape[0]):
        base = [j for j, s in zip(idx_base[r], sims_base[r], strict=True) if j != r and s > 1e-7][:10]
        mine = [j for j in ours[r] if j >= 0]
        if mine == base:
            continue
        differ += 1
        a = np.sort((matrix[mine] @ matrix[r].T).toarray().ravel())
        b = np.sort((matrix[base] @ matrix[r].T).toarray().ravel())
        if a.shape == b.shape and np.allclose(a, b, atol=1e-6):
            tied += 1
    return differ, tied


def real(args: argparse.Namespace) -> None:
    from recommender import Recommender, read_articles
    from recommender.corpus import bundled_corpus_path

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "model.joblib")
        articles = read_articles(bundled_corpus_path()).articles
        Recommender.train(articles).save(path)
        (t_ours, rows), rss_ours = _in_fresh_process(ours_exact, path, args.repeats)
        t_pre, rss_pre = _in_fresh_process(ours_precompute, path, str(Path(tmp) / "r.sqlite"), args.repeats)
        previous = str(Path(tmp) / "previous.joblib")
        Recommender.train(articles, **PREVIOUS_DEFAULTS).save(previous)
        t_prev, rss_prev = _in_fresh_process(
            ours_precompute, previous, str(Path(tmp) / "p.sqlite"), args.repeats, 0.0
        )  # no floor then
        (t_base, dist, idx), rss_base = _in_fresh_process(sklearn_brute, path, args.repeats)
        differ, tied = compare(rows, 1.0 - dist, idx, path)
        print(f"corpus: bundled, {len(articles):,} articles; median of {args.repeats}\n")
        print(f"{'all-pairs top-10':44} {'time':>9} {'peak RSS':>10}")
        print(f"{'ours: exact cosine kernel, all cores':44} {t_ours:8.2f}s {rss_ours:8.0f}MB")
        print(f"{'ours: precompute into SQLite (defaults)':44} {t_pre:8.2f}s {rss_pre:8.0f}MB")
        print(f"{'ours: the same, previous defaults':44} {t_prev:8.2f}s {rss_prev:8.0f}MB")
        print(f"{'sklearn NearestNeighbors brute cosine':44} {t_base:8.2f}s {rss_base:8.0f}MB")
        print(f"\nspeed-up of the exact kernel: {t_base / t_ours:.1f}x")
        print(f"precompute against the previous defaults: {t_pre / t_prev:.2f}x the time")
        print(f"lists identical to sklearn's: {len(rows) - differ:,} of {len(rows):,} rows", end="")
        if differ == tied:
            print(f" (the other {differ} differ only in the order of tied scores)")
        else:
            print(f"; {differ - tied} differ beyond ties")


# --- synthetic ------------------------------------------------------------------------------------


def build_synthetic(n: int, seed: int, path: str) -> dict[str, Any]:
    from synthetic import generate

    from recommender import Recommender

    started = time.perf_counter()
    syn = generate(n, seed)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    model = Recommender().fit_counts(syn.counts, syn.articles)
    fitted = time.perf_counter() - started
    model.save(path)
    return {"generate": generated, "fit": fitted, "terms": model.matrix_.shape[1], "nnz": model.matrix_.nnz}


def synthetic_precompute(path: str, out: str) -> dict[str, Any]:
    from recommender import Recommender, precompute

    started = time.perf_counter()
    model = Recommender.load(path)
    loaded = time.perf_counter() - started
    result = precompute(model, out, 10)
    return {"load": loaded, "seconds": result.seconds, "mode": result.mode, "recall": result.recall,
            "multiply_adds": result.multiply_adds, "pairs": result.pairs}  # fmt: skip


def exact_sample(path: str, sample: int) -> dict[str, Any]:
    from recommender import Recommender
    from recommender.lookups import search_index
    from recommender.neighbors import available_threads, search_blocks

    model = Recommender.load(path)
    rows = np.sort(np.random.default_rng(1).choice(len(model), size=sample, replace=False))
    index = search_index(model.fitted_state())
    for _ in search_blocks(index, 50, rows=rows[:50], threads=available_threads()):
        pass  # warm up: compiled code loaded, pages mapped
    started = time.perf_counter()
    for _ in search_blocks(index, 50, rows=rows, threads=available_threads()):
        pass
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "per_row": seconds / sample, "rows": len(model)}


def synthetic(args: argparse.Namespace) -> None:
    n = args.synthetic
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = str(Path(tmp) / "model.joblib")
        built, rss_build = _in_fresh_process(build_synthetic, n, args.seed, path)
        from recommender.model import data_path

        size_mb = os.path.getsize(data_path(path)) / 2**20  # the data file the manifest names
        ran, rss_run = _in_fresh_process(synthetic_precompute, path, str(Path(tmp) / "related.sqlite"))
        base, _ = _in_fresh_process(exact_sample, path, args.exact_sample)
    extrapolated = base["per_row"] * n
    print(f"corpus: synthetic, {n:,} articles (seed {args.seed}), {built['terms']:,} terms, {built['nnz']:,} nonzeros")
    print(f"generated in {built['generate']:.1f}s, model built in {built['fit']:.1f}s (peak {rss_build:.0f}MB), "
          f"{size_mb:.0f}MB on disk\n")  # fmt: skip
    print(f"{'all-pairs top-10':46} {'time':>10} {'peak RSS':>10}")
    label = f"ours: precompute into SQLite ({ran['mode']})"
    print(f"{label:46} {ran['seconds']:9.1f}s {rss_run:8.0f}MB")
    print(f"{'exact, extrapolated from ' + str(args.exact_sample) + ' rows':46} {extrapolated:9.0f}s")
    if ran["recall"] is not None:
        print(f"\nrecall@10 against exact lists (estimated by precompute on 200 articles): {ran['recall']:.3f}")
    print(f"speed-up over exact: {extrapolated / ran['seconds']:.1f}x; model load {ran['load']:.2f}s; "
          f"{ran['pairs']:,} links written")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=int, default=0, help="N synthetic articles instead of the real corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--exact-sample", type=int, default=2000, help="rows timed exactly to extrapolate from")
    parser.add_argument("--tmp", default=None, help="directory for the temporary model and store")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    synthetic(args) if args.synthetic else real(args)


if __name__ == "__main__":
    main()
