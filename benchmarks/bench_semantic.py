"""The cost of meaning in the lists, each figure beside the same run with words alone (``semantic=False``).

    python benchmarks/bench_semantic.py            # the bundled corpus, its shipped vectors

On the bundled corpus (25,614 articles) with the semantic vectors shipped for it (nothing is encoded, but
the drafts):

- precompute: every article's top-10 list (``all_related``, exact, default options), the median of 3 runs,
  interleaved with the words-alone runs; the target is at most 1.3× words alone;
- lookup by id: ``Recommender.related(id, 5)`` live, p50/p99 over 2,000 random articles after 20 warm-up
  lookups, interleaved; the target is a p99 within 10% of words alone;
- a draft: ``related_to_text`` of 100 article texts as drafts (title and body), which encodes the draft
  (one thread), against words alone;
- approximate mode forced, recall@10 against exact lists on 1,000 articles, with and without meaning;
- loading: the vectors' share of ``Recommender.load`` and their memory, measured here and per article
  (float16) for 100k and 1M articles.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_lookups import percentiles

from recommender import Article, Recommender, read_articles
from recommender.corpus import bundled_corpus_path, bundled_vectors_path
from recommender.embedding import seed_vectors
from recommender.vectorfile import read_vectors


def precompute_seconds(model: Recommender) -> float:
    started = time.perf_counter()
    for _ in model.all_related(10, mode="exact"):
        pass
    return time.perf_counter() - started


def bundled_model(path: Path) -> list[Article]:
    """Train on the bundled corpus, save as ``path`` with the shipped semantic vectors beside it; its articles."""
    bundled = bundled_vectors_path()
    if bundled is None:
        raise SystemExit("the bundled corpus's vectors are not in data/")
    articles = read_articles(bundled_corpus_path()).articles
    Recommender().fit(articles).save(path)
    seed_vectors(articles, path, bundled)
    return articles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--drafts", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        articles = bundled_model(path)
        started = time.perf_counter()
        Recommender.load(path)
        with_load = time.perf_counter() - started
        ids = Recommender.load(path).ids_.to_list()
        started = time.perf_counter()
        vectors = read_vectors(path, ids)
        vectors_load = time.perf_counter() - started
        meaning = Recommender.load(path)
    assert vectors is not None
    words = Recommender.from_state(meaning.fitted_state(), meaning.get_params() | {"semantic": False})
    print(f"corpus: {len(ids):,} articles, {len(ids) - vectors.missing:,} with a vector")
    print()
    print(f"load: {with_load * 1000:.0f} ms in all, of which the vectors {vectors_load * 1000:.0f} ms")
    per = vectors.matrix.nbytes / len(ids)
    print(
        f"vectors in memory: {vectors.matrix.nbytes / 1e6:.1f} MB here ({per:.0f} bytes an article, float16); "
        f"{per * 100_000 / 1e6:.0f} MB at 100k, {per * 1_000_000 / 1e6:.0f} MB at 1M"
    )

    # Warm both (compiled kernels, lookup tables) before timing.
    for model in (words, meaning):
        model.related(ids[0], 5)
        list(model.all_related(10, mode="exact"))
    print()
    timings: dict[str, list[float]] = {"words": [], "meaning": []}
    for _ in range(args.runs):
        for name, model in (("words", words), ("meaning", meaning)):
            timings[name].append(precompute_seconds(model))
    w, m = statistics.median(timings["words"]), statistics.median(timings["meaning"])
    print(f"precompute, top-10 of every article (median of {args.runs}):")
    print(f"  words alone   {w:6.2f} s")
    print(f"  with meaning  {m:6.2f} s   {m / w:.2f}x   (target <= 1.30x)")

    rng = np.random.default_rng(1)
    picks = [ids[i] for i in rng.choice(len(ids), size=args.queries, replace=False)]
    for model in (words, meaning):
        for i in range(20):
            model.related(picks[i], 5)
    half = args.queries // 2
    results: dict[str, list[tuple[float, float]]] = {"words": [], "meaning": []}
    for part in (picks[:half], picks[half:]):  # interleaved halves: drift hits both alike
        for name, model in (("words", words), ("meaning", meaning)):
            results[name].append(percentiles(lambda i, m=model, p=part: m.related(p[i], 5), len(part)))
    print()
    print(f"lookup by id, k=5, {args.queries:,} articles (ms; the worse of two interleaved halves):")
    p99 = {}
    for name in ("words", "meaning"):
        p50 = max(r[0] for r in results[name])
        p99[name] = max(r[1] for r in results[name])
        print(f"  {name:<8} p50 {p50:6.2f}   p99 {p99[name]:6.2f}")
    print(f"  p99 ratio {p99['meaning'] / p99['words']:.2f}   (target <= 1.10)")

    by_id = {a.id: a for a in articles}
    drafts = [by_id[i] for i in picks[: args.drafts]]
    print()
    print(f"a draft (title and body, {args.drafts} article texts; ms):")
    for name, model in (("words", words), ("meaning", meaning)):
        model.related_to_text(title=drafts[0].title, body=drafts[0].body)
        p50, p99d = percentiles(
            lambda i, m=model: m.related_to_text(title=drafts[i].title, body=drafts[i].body), len(drafts)
        )
        print(f"  {name:<8} p50 {p50:6.1f}   p99 {p99d:6.1f}")

    print()
    print("approximate mode forced, recall@10 against exact lists (1,000 articles):")
    for name, model in (("words", words), ("meaning", meaning)):
        recall = model.estimate_recall(10, mode="approx", sample=1000)
        print(f"  {name:<8} {recall:.3f}   (target >= 0.95)")


if __name__ == "__main__":
    main()
