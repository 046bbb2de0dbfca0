"""Editors' rules on the bundled corpus: each kind of rule added to a model and its SQLite store, beside a
full precompute (what a site would run without in-place repair); lookups with rules beside lookups without.

    python benchmarks/bench_rules.py            # --k 10 --lookups 2000; about 3 minutes

The model is trained on the bundled corpus and saved, and its store precomputed (k 10). Then, through the
API (``Updater.add_rule``, rules file and store transaction committed), one after another:
- a pin into one article's list;
- an article blocked everywhere (a takedown);
- a whole section blocked everywhere (every ``hiburan`` article);
- a section blocked only under another section (``hiburan`` under ``berita``).
Each prints the lists it rewrote and its time. After them, the store is compared with a full precompute of
the model with the rules, list by list, and that precompute is timed beside the one without rules.
Last, ``Recommender.related`` by id: p50/p99 over ``--lookups`` articles with the four rules in force,
beside the same lookups with none.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recommender import Recommender, Rule, Rules, Updater, precompute, read_articles

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_updates import lists

ROOT = Path(__file__).resolve().parent.parent


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def percentiles(model: Recommender, ids: list[str], k: int) -> tuple[float, float]:
    for article_id in ids[:20]:
        model.related(article_id, k=k)
    times = []
    for article_id in ids:
        started = time.perf_counter()
        model.related(article_id, k=k)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), float(np.percentile(times, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    corpus = read_articles(ROOT / "data" / "clickid.jsonl.gz", skip_invalid=True).articles
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        model_path, store = Path(tmp) / "model.joblib", Path(tmp) / "related.sqlite"
        model = Recommender.train(corpus)
        model.save(model_path)
        _, plain = timed(lambda: precompute(Recommender.load(model_path), store, args.k))
        print(f"corpus: bundled, {len(model):,} articles; store k={args.k}; full precompute {plain:.1f} s")
        ids = [str(i) for i in model.ids_.to_list()]
        sections = model.fitted_state().articles.sections.to_list()
        rules = [
            Rule("pin", article=ids[0], related=ids[1000]),
            Rule("block", related=ids[5]),
            Rule("block", field="section", value="hiburan"),
            Rule("block", field="section", value="hiburan", under_field="section", under_value="berita"),
        ]
        updater = Updater(model_path, store)
        print(f"\n{'rule added (Updater.add_rule)':<56} {'lists':>7} {'seconds':>8}")
        for rule in rules:
            change, seconds = timed(lambda rule=rule: updater.add_rule(rule))
            described = rule.describe().replace(ids[0], "A").replace(ids[1000], "B").replace(ids[5], "C")
            for long, short in (("block every article with ", "block "), ("under articles with ", "under ")):
                described = described.replace(long, short)
            print(f"{described:<56} {change.lists_updated:>7,} {seconds:>8.2f}")  # type: ignore[attr-defined]
        ruled = Recommender.load(model_path)
        full = Path(tmp) / "full.sqlite"
        _, with_rules = timed(lambda: precompute(ruled, full, args.k))
        same = lists(store) == lists(full)
        print(f"\nfull precompute with the rules: {with_rules:.1f} s (without: {plain:.1f} s)")
        print(f"store after the four rule changes equals that precompute, list by list: {same}")
        under = sum(s == "berita" for s in sections)
        print(f"('berita' articles, whose lists the last rule reaches: {under:,})")

        sample = [ids[i] for i in np.random.default_rng(0).choice(len(ids), size=args.lookups, replace=False)]
        bare = Recommender.from_state(ruled.fitted_state().with_rules(Rules()), ruled.get_params())
        p50, p99 = percentiles(ruled, sample, args.k)
        b50, b99 = percentiles(bare, sample, args.k)
        print(f"\nlookup by id (Recommender.related, k={args.k}), {args.lookups:,} articles: p50 / p99 ms")
        print(f"  with the four rules {p50:6.3f} / {p99:6.3f}    without rules {b50:6.3f} / {b99:6.3f}")
        if not same:
            sys.exit("the store differs from a full precompute")


if __name__ == "__main__":
    main()
