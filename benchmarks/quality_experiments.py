"""Quality experiments on the graded judgments: the tables of docs/quality.md that the package itself can run.

    python benchmarks/quality_experiments.py            # analysis variants, time priors, the LSA topic gate
    python benchmarks/quality_experiments.py --quick    # the default model's prior and gate only
    python benchmarks/quality_experiments.py --drafts   # drafts: exact, and without their commonest terms

Every figure is over the 60 judged queries of data/judgments (nDCG@5 over the 59 with a relevant judged
document), with judged@5 beside it. Choices are checked by nested cross-validation by query: a setting is
chosen on 54 queries and scored on the other 6, 10 folds × 5 seeds, so nothing is fitted to the queries it
is scored on. Models are trained with the package's own ``Recommender``; the prior and LSA gate grids are
computed here, by brute force for the 60 queries, from the trained model's TF-IDF matrix (the package's own
gate, ``topic_dims=64``, is in the first line's lookups).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_allpairs import PREVIOUS_DEFAULTS  # noqa: E402  (this script's folder is on the path)

from recommender import Recommender, read_articles  # noqa: E402
from recommender.evaluate import JudgedScores, QueryJudged, judged_measures, load_judgments  # noqa: E402

DAY = 86400.0
Scorer = Callable[[int, np.ndarray], np.ndarray]  # (query row, cosines to every row) -> scores


def line(name: str, s: JudgedScores) -> str:
    return (
        f"{name:58} nDCG@5 {s.ndcg_at_5:.3f} ± {s.ndcg_standard_error:.3f}  P@5 {s.precision_at_5:.3f}  "
        f"P@5(2) {s.same_story_precision_at_5:.3f}  judged@5 {s.judged_at_5:.3f}"
    )


class Bench:
    def __init__(self) -> None:
        self.articles = read_articles(ROOT / "data" / "clickid.jsonl.gz").articles
        self.ids = [a.id for a in self.articles]
        judgments = load_judgments(ROOT / "data" / "judgments" / "dev_qrels.tsv", known=dict.fromkeys(self.ids))
        self.grades = judgments.grades
        self.queries = list(self.grades)

    def model(self, **params: Any) -> Recommender:
        return Recommender.train(self.articles, **params)

    def lookups(self, model: Recommender, **options: Any) -> JudgedScores:
        """The package's own lists (related, defaults unless ``options`` say otherwise)."""
        return judged_measures({q: [r.id for r in model.related(q, 10, **options)] for q in self.queries}, self.grades)

    def brute(self, model: Recommender, scorer: Scorer) -> JudgedScores:
        """Lists ranked by ``scorer`` over the whole corpus (cosines from the model's matrix)."""
        matrix = model.matrix_
        row_of = {article_id: i for i, article_id in enumerate(model.ids_.to_list())}
        ranked = {}
        for q in self.queries:
            r = row_of[q]
            scores = scorer(r, (matrix @ matrix[r].T).toarray().ravel())
            scores[r] = -np.inf
            top = np.argsort(-scores, kind="stable")[:10]
            ranked[q] = [str(model.ids_[int(i)]) for i in top]
        return judged_measures(ranked, self.grades)


def drafts(bench: Bench, model: Recommender) -> None:
    """Each judged query's own title and body looked up as a draft (undated, itself excluded): the package's
    exact lists, and lists whose query drops its terms in more than a share of the articles (an approximate
    search reads far fewer postings). Scored by brute force with the model's topic gate, as the package
    scores a draft; the exact brute-force line must equal the package's."""
    from recommender.features import project_topics

    state = model.fitted_state()
    df = np.diff(state.index_t.indptr)
    n = len(state)
    by_id = {a.id: a for a in bench.articles}
    vectors = {q: model.vectorize(by_id[q].title, by_id[q].body) for q in bench.queries}
    package = {
        q: [r.id for r in model.related_to_text(title=by_id[q].title, body=by_id[q].body, k=10, exclude=[q])]
        for q in bench.queries
    }
    print(line("package lookups (exact)", judged_measures(package, bench.grades)))
    ids = model.ids_.to_list()
    row_of = {str(article_id): i for i, article_id in enumerate(ids)}
    settings: dict[Any, Sequence[QueryJudged]] = {}
    exact: dict[str, list[str]] = {}
    for cut in (None, 0.2, 0.1, 0.05, 0.02):
        ranked, saved = {}, []
        for q, vector in vectors.items():
            keep = np.ones(vector.nnz, bool) if cut is None else df[vector.indices] <= cut * n
            saved.append(1 - df[vector.indices[keep]].sum() / max(1, df[vector.indices].sum()))
            pruned = vector.copy()
            pruned.data = np.where(keep, pruned.data, 0).astype(np.float32)
            scores = np.asarray((state.matrix @ pruned.T).toarray()).ravel()
            if state.topics is not None and state.topic_terms is not None:  # the gate, from the whole draft
                scores = scores * np.maximum(0.0, state.topics @ project_topics(vector, state.topic_terms).ravel())
            scores[row_of[q]] = -np.inf
            ranked[q] = [str(ids[int(i)]) for i in np.argsort(-scores, kind="stable")[:10]]
        scored = judged_measures(ranked, bench.grades)
        settings[cut] = scored.queries
        if cut is None:
            exact = ranked
            same = sum(ranked[q][:5] == package[q][:5] for q in ranked)
            print(line("brute force, exact", scored) + f"  (equal to the package's top 5 on {same}/{len(ranked)})")
            continue
        overlap = np.mean([len(set(ranked[q][:5]) & set(exact[q][:5])) / 5 for q in ranked])
        print(
            line(f"without terms in > {cut:.0%} of articles", scored)
            + f"  postings saved {np.mean(saved):.0%}, top 5 shared with exact {overlap:.2f}"
        )
    print(f"nested CV over the cuts (exact included): nDCG@5 {nested_cv(settings):.3f}")


def prior(model: Recommender, weight: float, half_life: float) -> Scorer:
    days = np.asarray(model.timestamps_) / DAY

    def score(r: int, cosines: np.ndarray) -> np.ndarray:
        apart = np.nan_to_num(np.abs(days - days[r]), nan=0.0)  # undated: factor 1
        return cosines * (1 - weight + weight / (1 + apart / half_life))

    return score


def lsa(model: Recommender, dims: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD

    z = TruncatedSVD(dims, random_state=seed).fit_transform(model.matrix_).astype(np.float32)
    return z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-9)


def gated(base: Scorer, z: np.ndarray, exponent: float) -> Scorer:
    return lambda r, cosines: base(r, cosines * np.maximum(0.0, z @ z[r]) ** exponent)


def nested_cv(per_setting: dict[Any, Sequence[QueryJudged]], folds: int = 10, seeds: int = 5) -> float:
    """Mean nDCG@5 of the setting chosen on the other folds' queries, over ``seeds`` fold assignments."""
    queries = [q.query_id for q in next(iter(per_setting.values()))]
    ndcg = {k: {q.query_id: q.ndcg_at_5 for q in v} for k, v in per_setting.items()}
    means = []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(queries))
        scored: list[float] = []
        for f in range(folds):
            test = {queries[i] for i in order[f::folds]}

            def train_mean(k: Any, test: set[str] = test) -> float:
                return float(np.mean([v for q, v in ndcg[k].items() if q not in test and v is not None]))

            best = max(ndcg, key=train_mean)
            scored += [v for q, v in ndcg[best].items() if q in test and v is not None]
        means.append(float(np.mean(scored)))
    return float(np.mean(means))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the default model's prior and gate")
    parser.add_argument("--drafts", action="store_true", help="drafts only: exact, and without common terms")
    args = parser.parse_args()
    bench = Bench()
    started = time.perf_counter()
    default = bench.model()
    if args.drafts:
        print("# drafts: each judged query's title and body, looked up as text")
        drafts(bench, default)
        print(f"\n{time.perf_counter() - started:.0f} s")
        return
    print(line("defaults (package lookups)", bench.lookups(default)))

    if not args.quick:
        print("\n# analysis variants, package lookups (topic gate, gentle prior, floor)")
        variants: dict[str, dict[str, Any]] = {
            "previous defaults (Sastrawi, bigrams, no numbers, max_df 0.5, full prior, no gate)": PREVIOUS_DEFAULTS,
            "Sastrawi list, bigrams, no numbers, max_df 0.5": {
                "stopwords": "indonesian",
                "numbers": False,
                "ngram_range": (1, 2),
                "max_df": 0.5,
            },
            "Sastrawi list, unigrams, numbers, max_df 0.2": {"stopwords": "indonesian"},
            "no stopwords at all, unigrams, numbers, max_df 0.2": {"stopwords": "none"},
            "news stopwords, bigrams, numbers, max_df 0.2": {"ngram_range": (1, 2)},
            "news stopwords, unigrams, numbers, max_df 0.3": {"max_df": 0.3},
            "news stopwords, unigrams, numbers, max_df 0.1": {"max_df": 0.1},
        }
        for name, params in variants.items():
            print(line(name, bench.lookups(bench.model(**params))), flush=True)

    print("\n# time priors on the default model: cosine × (1 − w + w / (1 + days / h)), brute force")
    priors: dict[Any, Sequence[QueryJudged]] = {}
    none = bench.brute(default, lambda r, c: c)
    priors["none"] = none.queries
    print(line("no prior", none))
    for w, h in [(1.0, 3.0), (1.0, 7.0), (0.5, 7.0), (0.3, 7.0), (0.2, 3.0), (0.2, 7.0), (0.1, 7.0)]:
        s = bench.brute(default, prior(default, w, h))
        priors[(w, h)] = s.queries
        print(line(f"w {w}, h {h}", s), flush=True)
    print(f"nested CV over the priors: nDCG@5 {nested_cv(priors):.3f}")

    print("\n# LSA topic gate on the default model: cosine × max(0, LSA cosine)^p, gentle prior")
    gates: dict[Any, Sequence[QueryJudged]] = {}
    base = prior(default, 0.2, 7.0)
    for dims in (32, 64, 128) if not args.quick else (64,):
        for seed in (0, 1):
            z = lsa(default, dims, seed)
            for p in (0.5, 1.0, 1.5):
                s = bench.brute(default, gated(base, z, p))
                gates[(dims, seed, p)] = s.queries
                print(line(f"LSA-{dims} (SVD seed {seed}), exponent {p}", s), flush=True)
    print(f"nested CV over dimensions and exponents: nDCG@5 {nested_cv(gates):.3f}")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
