"""Time the whole loop on the bundled corpus, each figure beside its plain scikit-learn baseline.

    python benchmarks/bench_pipeline.py [--corpus data/clickid.jsonl.gz] [--repeats 3]

Prints: training time (ours, with all our analysis, vs ``TfidfVectorizer().fit_transform`` on title + body),
all-pairs top-10 precompute time (ours, into SQLite, vs ``NearestNeighbors(metric="cosine",
algorithm="brute")`` on our matrix), model size, and load time (ours, memory-mapped and checked, vs plain
``joblib.load``). Medians over ``--repeats`` runs (training and all-pairs run once each unless asked).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import NearestNeighbors

from recommender import Recommender, read_articles
from recommender.batch import precompute
from recommender.corpus import bundled_corpus_path
from recommender.model import data_path


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=1, help="repeats of training and all-pairs")
    parser.add_argument("--load-repeats", type=int, default=7)
    args = parser.parse_args()
    corpus = args.corpus or bundled_corpus_path()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    articles = read_articles(corpus).articles
    print(f"corpus: {corpus}, {len(articles):,} articles\n")
    texts = [f"{a.title} {a.body}" for a in articles]

    holder: dict[str, Recommender] = {}
    ours_times, base_times = [], []
    for _ in range(args.repeats):  # interleaved, so a noisy minute on the machine hits both alike
        ours_times.append(median_seconds(lambda: holder.__setitem__("m", Recommender.train(articles)), 1))
        base_times.append(median_seconds(lambda: TfidfVectorizer().fit_transform(texts), 1))
    ours_train, base_train = statistics.median(ours_times), statistics.median(base_times)
    model = holder["m"]

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        model.save(path)
        data = data_path(path)  # the file the manifest names
        size_mb = data.stat().st_size / 1e6
        ours_load = median_seconds(lambda: Recommender.load(path), args.load_repeats)
        base_load = median_seconds(lambda: joblib.load(data), args.load_repeats)
        loaded = Recommender.load(path)
        ours_pairs = median_seconds(lambda: precompute(loaded, Path(tmp) / "related.sqlite", 10), args.repeats)

    def sklearn_all_pairs() -> None:
        nn = NearestNeighbors(n_neighbors=11, metric="cosine", algorithm="brute").fit(model.matrix_)
        nn.kneighbors(model.matrix_)

    base_pairs = median_seconds(sklearn_all_pairs, args.repeats)

    rows = [
        ("training, full corpus", ours_train, base_train, "TfidfVectorizer().fit_transform(title + body)"),
        ("all-pairs top-10 (ours into SQLite)", ours_pairs, base_pairs, "NearestNeighbors brute cosine kneighbors"),
        ("model load", ours_load, base_load, "plain joblib.load (no mmap, no checks)"),
    ]
    print(f"{'measure':38} {'ours':>10} {'baseline':>10}  baseline is")
    for name, ours, base, what in rows:
        print(f"{name:38} {ours:>9.3f}s {base:>9.3f}s  {what}")
    print(f"{'model size on disk':38} {size_mb:>8.1f}MB")
    print(f"\nterms: {model.idf_.shape[0]:,}, nonzeros: {model.matrix_.nnz:,}, dtype {np.dtype(model.matrix_.dtype)}")
    ratios = ", ".join(f"{o / b:.2f}" for o, b in zip(ours_times, base_times, strict=True))
    print(f"training time ratio per interleaved pair (ours / baseline): {ratios}")


if __name__ == "__main__":
    main()
