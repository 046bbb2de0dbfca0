"""``recommender embed``: every article's semantic vector, kept beside the model (:mod:`recommender.vectorfile`).

Only texts without a vector are encoded, in batches, each committed as it is done: a job killed at any point
(``kill -9`` included) loses at most the batches in flight, and the next run encodes only what is left. The
articles' texts are assigned first, so until the job ends the file says how many still lack a vector. On a
Dask cluster (``workers`` or ``scheduler``, as :func:`~recommender.precompute` takes them) each worker process
loads the encoder once and encodes whole batches; this process writes them as they come back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._progress import ProgressCallback
from .cluster import check_cluster_options, connect
from .corpus import Article
from .encoder import Encoder, TextRecipe, article_key, default_encoder, text_key
from .errors import InvalidParameterError, ModelError
from .modelfile import manifest_path
from .vectorfile import VectorCounts, VectorFile, open_vectors, vector_coverage, vectors_path

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["EmbedResult", "Seeded", "embed", "encode_batch", "seed_vectors", "vector_file"]

BATCH = 32  # texts a batch: what a kill can lose, and a Dask task's size


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """What a run did: the articles given, the texts it encoded, those it found encoded already, and those it
    took from a seed file."""

    path: Path
    encoder: str
    articles: int
    encoded: int
    reused: int
    seeded: int
    seconds: float
    counts: VectorCounts

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "encoder": self.encoder,
            "articles": self.articles,
            "encoded": self.encoded,
            "reused": self.reused,
            "seeded": self.seeded,
            "seconds": round(self.seconds, 3),
            "vectors": self.counts.vectors,
            "articles_without_vector": self.counts.articles_without,
        }


@dataclass(frozen=True, slots=True)
class Seeded:
    """What :func:`seed_vectors` did for a freshly trained model: the vectors file beside it, the vectors
    taken from the seed file, and the model's articles with and without a vector afterwards."""

    path: Path
    taken: int
    with_vector: int
    without_vector: int


SAMPLE = 50  # articles looked up first: a corpus none of whose texts the seed file holds costs no more


def seed_vectors(
    articles: Sequence[Article], model: str | Path, seed: str | Path, *, ids: Sequence[str] | None = None
) -> Seeded | None:
    """Right after ``train`` on ``articles``: give the model saved at ``model`` the vectors the file ``seed``
    (the bundled corpus's) holds for its articles' texts, without encoding anything (no encoder needed),
    and record every article's text in the model's vectors file. ``None``, and nothing written, when the
    model has no vectors file yet and the seed holds none of the first articles' texts (another corpus). A
    vectors file already beside the model keeps its vectors (they are kept by text, so a retrain reuses
    them). Counts are over ``ids``, the model's articles (default: those of ``articles``; after a retrain
    that carried updates over, pass the model's own)."""
    source = open_vectors(seed)
    file = VectorFile(vectors_path(model), encoder=source.encoder, recipe=source.recipe, dim=source.dim)
    recipe = TextRecipe.from_name(source.recipe)
    if not file.path.is_file():
        sample = [article_key(recipe, a.title, a.body) for a in articles[:SAMPLE]]
        if len(source.missing(sample)) == len(sample):
            return None
    keys = [(a.id, article_key(recipe, a.title, a.body)) for a in articles]
    file.assign(keys)
    taken = file.copy_from(source.path, file.missing(k for _, k in keys))
    coverage = vector_coverage(model, [a.id for a in articles] if ids is None else ids)
    return Seeded(file.path, taken, coverage.with_vector, coverage.without)


def vector_file(model: str | Path, encoder: Encoder, recipe: TextRecipe) -> VectorFile:
    """The vectors file beside the model at ``model``, for ``encoder`` and ``recipe``."""
    return VectorFile(vectors_path(model), encoder=encoder.name, recipe=recipe.name, dim=encoder.dim)


def encode_batch(encoder: Encoder, texts: Sequence[str]) -> np.ndarray:
    """One batch's vectors (a Dask task: the encoder arrives as the worker process's own)."""
    return encoder.encode(list(texts))


def embed(
    articles: Sequence[Article],
    model: str | Path,
    *,
    encoder: Encoder | None = None,
    recipe: TextRecipe | None = None,
    batch_size: int = BATCH,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    scheduler: str | Client | None = None,
    seeds: Sequence[str | Path] = (),
) -> EmbedResult:
    """Give every one of ``articles`` a vector in the vectors file of the model saved at ``model``,
    encoding only the texts that have none (see the module's docstring). ``seeds``: other vectors files
    (the bundled corpus's, say) whose vectors of the same texts, encoder and recipe are taken first."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidParameterError(f"batch_size must be a whole number of 1 or more, got {batch_size!r}")
    if workers is not None or scheduler is not None:
        check_cluster_options(scheduler, workers)
    if not manifest_path(model).is_file():
        raise ModelError(f"no model at {model}: train one first with `recommender train`")
    started = time.perf_counter()
    encoder = encoder or default_encoder()
    recipe = recipe or TextRecipe()
    file = vector_file(model, encoder, recipe)
    texts: dict[bytes, str] = {}
    assigned = []
    for article in articles:
        text = recipe.text(article.title, article.body)
        key = text_key(recipe, text)
        texts.setdefault(key, text)
        assigned.append((article.id, key))
    file.assign(assigned)
    todo = file.missing(texts)
    seeded = 0
    for seed in seeds:
        if todo and Path(seed).resolve() != file.path.resolve():
            seeded += file.copy_from(seed, todo)
            todo = file.missing(todo)
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    done = 0
    if progress is not None:
        progress(0, len(todo))
    results = (
        _local(encoder, texts, batches)
        if workers is None and scheduler is None
        else _on_cluster(encoder, texts, batches, workers, scheduler)
    )
    for keys, vectors in results:
        file.put(keys, vectors)
        done += len(keys)
        if progress is not None:
            progress(done, len(todo))
    return EmbedResult(
        file.path,
        encoder.name,
        len(articles),
        done,
        len(texts) - len(todo) - seeded,
        seeded,
        time.perf_counter() - started,
        file.counts(),
    )


def _local(
    encoder: Encoder, texts: dict[bytes, str], batches: list[list[bytes]]
) -> Iterator[tuple[list[bytes], np.ndarray]]:
    for keys in batches:
        yield keys, encode_batch(encoder, [texts[k] for k in keys])


def _on_cluster(
    encoder: Encoder,
    texts: dict[bytes, str],
    batches: list[list[bytes]],
    workers: int | None,
    scheduler: str | Client | None,
) -> Iterator[tuple[list[bytes], np.ndarray]]:
    from distributed import as_completed

    with connect(scheduler, workers) as client:
        futures = {client.submit(encode_batch, encoder, [texts[k] for k in keys], pure=False): keys for keys in batches}
        for future in as_completed(futures):
            yield futures[future], future.result()
