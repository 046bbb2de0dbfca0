"""A synthetic news corpus of any size, scaled from the real one: seeded and deterministic.

    python benchmarks/synthetic.py 100000 --out synthetic-100k.jsonl.gz   # articles as JSON Lines

The generator works in term space. Its profile comes from the bundled corpus, analysed as ``train``
analyses it (unigrams and bigrams, min_df 2, max_df 0.5): every term's collection frequency overall
and per section, and the distribution of terms per article. Articles are then drawn from a topic
structure news has:
- *events* (a match, a court case, a disaster) belong to a section, happen on a day, and own a few
  rare real terms plus new names made up for them, so the vocabulary keeps growing with N as a real
  archive's does; event sizes follow a Zipf law;
- each article reports one event, published within days of it, and mixes event terms (30%), its
  section's terms (30%) and general news terms (40%), with a length drawn from the real articles';
- titles are event and section terms, counted three times as ``train`` counts a title.

Time spans grow with N (about 1,000 articles a day past 60k articles, a national site's pace).
:func:`generate` returns term counts and article records for ``Recommender.fit_counts``; ``--out``
writes the articles as text instead (terms joined by spaces) for the ``recommender`` CLI.
"""

from __future__ import annotations

import argparse
import gzip
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender import Article, read_articles
from recommender.corpus import bundled_corpus_path
from recommender.features import Counts, count_terms
from recommender.text import Analyzer

CACHE = Path(__file__).resolve().parent / ".cache"
_SYLLABLES = "ba bi bu da di du ga gi ja ka ki ku la li lu ma mi mu na ni nu pa pi ra ri ru sa si su ta ti tu".split()
_START = datetime(2019, 1, 1, tzinfo=timezone.utc)


@dataclass
class Profile:
    """What the generator keeps of the real corpus."""

    terms: list[str]
    cf: np.ndarray  # (terms,) collection frequency
    df: np.ndarray  # (terms,) document frequency
    section_cf: np.ndarray  # (sections, terms)
    sections: list[str]
    section_share: np.ndarray  # (sections,)
    lengths: np.ndarray  # terms per real article (body only, with repeats)


def real_profile(corpus: Path | None = None) -> Profile:
    """The bundled corpus's term profile (cached under ``benchmarks/.cache``)."""
    cache = CACHE / "profile.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return Profile(
            list(z["terms"]), z["cf"], z["df"], z["section_cf"], list(z["sections"]), z["section_share"], z["lengths"]
        )
    articles = read_articles(corpus or bundled_corpus_path()).articles
    counts = count_terms(Analyzer(title_weight=0), [(a.title, a.body) for a in articles])
    matrix = counts.matrix.tocsc()
    df = np.diff(matrix.indptr)
    keep = np.flatnonzero((df >= 2) & (df <= 0.5 * len(articles)))
    matrix = matrix[:, keep].tocsr()
    sections = sorted({a.section or "berita" for a in articles})
    section_of = np.array([sections.index(a.section or "berita") for a in articles])
    onehot = sp.csr_matrix((np.ones(len(articles)), (section_of, np.arange(len(articles)))))
    profile = Profile(
        terms=[counts.terms[i] for i in keep],
        cf=np.asarray(matrix.sum(axis=0)).ravel(),
        df=df[keep],
        section_cf=np.asarray((onehot @ matrix).todense()),
        sections=sections,
        section_share=np.bincount(section_of) / len(articles),
        lengths=np.asarray(matrix.sum(axis=1)).ravel().astype(np.int64),
    )
    CACHE.mkdir(exist_ok=True)
    np.savez(cache, **{k: np.asarray(v) for k, v in profile.__dict__.items()})
    return profile


def _names(rng: np.random.Generator, count: int) -> list[str]:
    """Made-up proper names ("kamiru", "sadita"), for the terms only an event has."""
    parts = rng.integers(0, len(_SYLLABLES), size=(count, 3))
    return ["".join(_SYLLABLES[p] for p in row) for row in parts]


@dataclass
class Synthetic:
    counts: Counts
    articles: list[Article]
    event_of: np.ndarray


def generate(n: int, seed: int = 0, profile: Profile | None = None, chunk: int = 50_000) -> Synthetic:
    """``n`` synthetic articles: their term counts and records (id, title, published, section)."""
    profile = profile or real_profile()
    rng = np.random.default_rng(seed)
    n_real = len(profile.terms)
    n_sections = len(profile.sections)
    n_events = max(1, n // 15)
    days = max(60.0, n / 1000.0)
    event_section = rng.choice(n_sections, size=n_events, p=profile.section_share)
    event_day = rng.uniform(0, days, size=n_events)
    popularity = 1.0 / np.arange(1, n_events + 1) ** 0.8
    popularity = rng.permutation(popularity / popularity.sum())
    # Event terms: 6 rare real terms of the event's section, and 4 new names.
    rare = np.flatnonzero((profile.df >= 2) & (profile.df <= 50))
    per_event_real = 6
    per_event_new = 4
    event_terms = np.empty((n_events, per_event_real + per_event_new), dtype=np.int64)
    for s in range(n_sections):
        events = np.flatnonzero(event_section == s)
        weights = profile.section_cf[s, rare] + 0.1
        event_terms[events, :per_event_real] = rng.choice(
            rare, size=(events.size, per_event_real), p=weights / weights.sum()
        )
    names = _names(rng, n_events * per_event_new)
    name_ids: dict[str, int] = {}
    new_terms = np.array([name_ids.setdefault(t, n_real + len(name_ids)) for t in names], dtype=np.int64)
    event_terms[:, per_event_real:] = new_terms.reshape(n_events, per_event_new)
    terms = profile.terms + list(name_ids)
    n_terms = len(terms)
    background = profile.cf / profile.cf.sum()
    section_p = profile.section_cf / profile.section_cf.sum(axis=1, keepdims=True)
    event_term_p = 1.0 / np.arange(1, event_terms.shape[1] + 1)
    event_term_p /= event_term_p.sum()

    # Articles in publication order, as a CMS exports them.
    event_of = rng.choice(n_events, size=n, p=popularity)
    published_day = event_day[event_of] + rng.laplace(0, 1.5, size=n)
    by_time = np.argsort(published_day, kind="stable")
    event_of, published_day = event_of[by_time], published_day[by_time]
    title_ids = np.take_along_axis(
        event_terms[event_of], np.argsort(rng.random((n, event_terms.shape[1])), axis=1)[:, :5], axis=1
    )
    lengths = rng.choice(profile.lengths[profile.lengths > 0], size=n)
    parts = []
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        rows, cols = [], []
        length = lengths[lo:hi]
        n_event = rng.binomial(length, 0.3)
        n_section = rng.binomial(length - n_event, 0.3 / 0.7)
        n_background = length - n_event - n_section
        doc = np.arange(lo, hi) - lo
        # background terms
        rows.append(np.repeat(doc, n_background))
        cols.append(rng.choice(n_real, size=int(n_background.sum()), p=background))
        # section terms, drawn section by section
        sec = event_section[event_of[lo:hi]]
        for s in range(n_sections):
            members = np.flatnonzero(sec == s)
            rows.append(np.repeat(members, n_section[members]))
            cols.append(rng.choice(n_real, size=int(n_section[members].sum()), p=section_p[s]))
        # event terms, and a title of event and section terms counted three times
        ev = np.repeat(event_of[lo:hi], n_event)
        rows.append(np.repeat(doc, n_event))
        cols.append(event_terms[ev, rng.choice(event_terms.shape[1], size=ev.size, p=event_term_p)])
        title = title_ids[lo:hi]
        rows.append(np.repeat(doc, 3 * title.shape[1]))
        cols.append(np.repeat(title, 3, axis=1).ravel())
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        block = sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)), shape=(hi - lo, n_terms))
        block.sum_duplicates()
        parts.append(block)
    matrix = sp.vstack(parts, format="csr")
    articles = [
        Article(
            id=f"syn-{i:07d}",
            title=" ".join(terms[t] for t in title_ids[i]).capitalize(),
            body="",
            published=(_START + timedelta(days=float(published_day[i]))).isoformat(timespec="seconds"),
            section=profile.sections[event_section[event_of[i]]],
            url=f"https://example.org/syn-{i:07d}",
        )
        for i in range(n)
    ]
    return Synthetic(Counts(matrix, terms), articles, event_of)


def write_jsonl(synthetic: Synthetic, path: Path) -> None:
    """The articles as text: each one's terms (with repeats) joined by spaces as its body."""
    matrix, terms = synthetic.counts.matrix, synthetic.counts.terms
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:  # type: ignore[operator]
        for i, a in enumerate(synthetic.articles):
            lo, hi = matrix.indptr[i], matrix.indptr[i + 1]
            pairs = zip(matrix.indices[lo:hi], matrix.data[lo:hi], strict=True)
            words = [terms[t] for t, c in pairs for _ in range(int(c))]
            record = {"id": a.id, "title": a.title, "body": ". ".join(words), "published": a.published}
            record.update(section=a.section, url=a.url)
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    synthetic = generate(args.n, args.seed)
    write_jsonl(synthetic, args.out)
    print(f"{args.n:,} articles, {len(synthetic.counts.terms):,} terms -> {args.out}")


if __name__ == "__main__":
    main()
