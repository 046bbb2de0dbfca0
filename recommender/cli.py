"""The ``recommender`` command: a thin layer over the public API (parse, call, format)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

from ._progress import ProgressCallback
from ._version import __version__
from .batch import precompute
from .blend import gate
from .cluster import check_cluster_options
from .corpus import (
    Corpus,
    bundled_corpus_path,
    bundled_judgments_path,
    bundled_links_path,
    bundled_vectors_path,
    corpus_written_at,
    read_articles,
)
from .embedding import embed, seed_vectors
from .errors import InvalidParameterError, ModelError, RecommenderError
from .evaluate import (
    JUDGED_ENOUGH,
    EvaluationReport,
    evaluate,
    load_judgments,
    load_links,
    unjudged_pairs,
    write_packet,
)
from .model import Recommender, data_path, load_with_manifest, manifest_path
from .options import OPTION_NAMES, LookupOptions
from .ranking import MIN_RESULTS, MIN_SCORE, Related
from .render import render_related
from .rulebook import RuleBook
from .rules import Rule
from .store import check_output
from .updates import RuleChange, Updater, UpdateResult, freshness
from .vectorfile import VectorCoverage, vector_coverage

DEFAULT_MODEL = Path("models") / "model.joblib"

app = typer.Typer(
    help="Related articles for Indonesian news sites: train a model, look up and precompute related lists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: Rich's would read "recommender[dask]" in a docstring as markup, and print flags as "<bool>".
    rich_markup_mode=None,
)


class _Command(TyperCommand):
    """Help as click writes it: a required argument bare in the usage line (``add [OPTIONS] FILE``, not in
    braces), and arguments listed by name without Typer's ``<path>`` type labels."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [re.sub(r"^{(.*)}", r"\1", p) for p in pieces]

    def get_help(self, ctx: Any) -> str:
        lines, in_arguments = [], False
        for line in super().get_help(ctx).splitlines():
            if line == "Arguments:":
                in_arguments = True
            elif not line.strip():
                in_arguments = False
            elif in_arguments:  # blanked, not cut, so the help column stays aligned
                line = re.sub(r"^(\s+\S+)( <[^>]+>)", lambda m: m[1] + " " * len(m[2]), line)
            lines.append(line)
        return "\n".join(lines)


out = Console(soft_wrap=False)
err = Console(stderr=True)

ModelOption = Annotated[
    Path,
    typer.Option(
        "--model",
        "-m",
        metavar="PATH",
        envvar="RECOMMENDER_MODEL",
        help="Model path (its manifest and data file are beside it; env RECOMMENDER_MODEL).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON Lines, one object per line.")]
JsonObjectOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
# The lookup options (recommender.LookupOptions), one alias each, shared by `related` and `precompute`:
# a command's parameters carry the options' names, and _lookup_options builds them from its locals.
SectionOption = Annotated[str | None, typer.Option(metavar="SECTION", help="Only this section, e.g. olahraga.")]
CategoryOption = Annotated[str | None, typer.Option(metavar="CATEGORY", help="Only this category.")]
TagOption = Annotated[str | None, typer.Option(metavar="TAG", help="Only articles with this tag.")]
SourceOption = Annotated[str | None, typer.Option(metavar="SOURCE", help="Only this source (site or outlet).")]
ExcludeOption = Annotated[
    list[str], typer.Option("--exclude", metavar="ID", help="Leave out this id, e.g. already on the page (repeatable).")
]
AfterOption = Annotated[str | None, typer.Option(metavar="DATE", help="Only published on or after this ISO date.")]
BeforeOption = Annotated[str | None, typer.Option(metavar="DATE", help="Only published on or before this ISO date.")]
NewerOption = Annotated[
    bool, typer.Option("--newer/--no-newer", help="--no-newer: only articles published before it (stable archives).")
]
DiversityOption = Annotated[
    float, typer.Option(metavar="0..1", help="Trade relevance for variety, 0 (off) to 1 (MMR).")
]
WithinDaysOption = Annotated[
    float | None,
    typer.Option(metavar="DAYS", help="Only published within this many days of the article (a draft: --published)."),
]
MinScoreOption = Annotated[float, typer.Option(metavar="SCORE", help="Drop results scoring below this (0 to 1)...")]
MinResultsOption = Annotated[int, typer.Option(metavar="N", help="...unless fewer than this many would remain.")]
ExplainOption = Annotated[bool, typer.Option("--explain", help="Show the shared terms behind each result.")]


def _lookup_options(values: dict[str, Any]) -> LookupOptions:
    """The lookup options among a command's parameters (its ``locals()``), by their names."""
    return LookupOptions(**{name: values[name] for name in OPTION_NAMES if name in values})


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the package's named errors into one ``Error:`` line and exit code 1."""
    try:
        yield
    except RecommenderError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:  # disk full, no permission, a file where a folder should be, ...
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"Error: {exc.strerror or exc}{where}", err=True)
        raise typer.Exit(1) from None


class _RateColumn(ProgressColumn):
    """Units a second (texts, articles) over the last few updates."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Any) -> Text:
        return Text("" if task.speed is None else f"{task.speed:,.1f} {self.unit}/s")


@contextmanager
def _progress(description: str, *, percent: bool = False, rate: str | None = None) -> Iterator[ProgressCallback]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn() if percent else MofNCompleteColumn(),
        *([_RateColumn(rate)] if rate else []),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _quantity(n: float) -> str:
    """1,770,633,618 as "1.8 G " (with its trailing space), 950 as "950.0 "."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit} "
    return f"{n:.1f} "


def _version(value: bool) -> None:
    if value:
        typer.echo(f"recommender {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Related articles for Indonesian news sites."""


def _field_map(fields: list[str]) -> dict[str, str]:
    mapping = {}
    for item in fields:
        ours, sep, theirs = item.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise InvalidParameterError(f"--field takes OURS=THEIRS, e.g. --field id=post_id; got {item!r}")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


FieldOption = Annotated[
    list[str],
    typer.Option("--field", metavar="OURS=THEIRS", help="Map a field to your column: --field id=post_id (repeatable)."),
]
SkipInvalidOption = Annotated[bool, typer.Option(help="Skip invalid records and list them, instead of stopping.")]
DelimiterOption = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        metavar="CHAR",
        help="Column separator of a CSV/TSV file, e.g. ';' or '\\t' (default: sniffed from the header; tab for .tsv).",
    ),
]


def _delimiter(value: str | None) -> str | None:
    # A shell passes '\t' as two characters: read it, and "tab", as the tab it means.
    return "\t" if value is not None and value.lower() in ("\\t", "tab") else value


def _store_option(purpose: str) -> Any:
    return typer.Option(
        "--store", "-s", metavar="PATH", envvar="RECOMMENDER_STORE", help=f"{purpose} (env RECOMMENDER_STORE)."
    )


StoreOption = Annotated[Path | None, _store_option("SQLite store to update in place")]


def _read(path: Path, field: list[str], delimiter: str | None, skip_invalid: bool, *, echo: bool = True) -> Corpus:
    result = read_articles(path, fields=_field_map(field), skip_invalid=skip_invalid, delimiter=_delimiter(delimiter))
    if echo:
        typer.echo(f"Read {_articles(len(result))} from {path}")
    if result.skipped:
        say = typer.echo if echo else lambda line: typer.echo(line, err=True)
        n = len(result.skipped)
        say(f"Skipped {n:,} invalid record{'' if n == 1 else 's'}:")
        for item in result.skipped[:20]:
            say(f"  line {item.line}: {item.problem}")
        if len(result.skipped) > 20:
            say(f"  ... and {len(result.skipped) - 20:,} more")
    return result


@app.command(cls=_Command)
def train(
    corpus: Annotated[
        Path | None,
        typer.Argument(
            metavar="CORPUS", help="Corpus: .jsonl, .csv or .tsv, optionally .gz (default: the bundled one)."
        ),
    ] = None,
    model: ModelOption = DEFAULT_MODEL,
    field: FieldOption = [],  # noqa: B006 (typer reads the default, never mutates it)
    delimiter: DelimiterOption = None,
    skip_invalid: SkipInvalidOption = False,
    stem: Annotated[bool, typer.Option(help="Stem Indonesian words (Sastrawi).")] = False,
    stopwords: Annotated[
        str,
        typer.Option(
            metavar="news|indonesian|none",
            help="Stopwords: news (outlets, days, months; common words are left to document frequency), "
            "indonesian (Sastrawi's list too) or none.",
        ),
    ] = "news",
    numbers: Annotated[bool, typer.Option(help="Keep numbers (2022, 11) as words.")] = True,
    bigrams: Annotated[bool, typer.Option(help="Add word pairs within a sentence as terms.")] = False,
    half_life_days: Annotated[
        float, typer.Option(metavar="DAYS", help="Time prior: the scale in days of its decay (0: off).")
    ] = 7.0,
    time_weight: Annotated[
        float,
        typer.Option(
            metavar="0..1",
            help="Share of a score that decays with time, 0 to 1 (1: halved at --half-life-days, recency first).",
        ),
    ] = 0.2,
    topic_dims: Annotated[
        int,
        typer.Option(
            metavar="N", help="Topic gate: dimensions of the topic space, at most one per 100 articles (0: off)."
        ),
    ] = 64,
    dedup: Annotated[
        float,
        typer.Option(
            metavar="COSINE", help="Cosine at which two results count as the same story; keep the best (0: off)."
        ),
    ] = 0.8,
    vectors: Annotated[
        bool,
        typer.Option(
            help="Take the shipped semantic vectors of the texts the bundled corpus has (nothing is encoded; "
            "`recommender embed` encodes the rest)."
        ),
    ] = True,
) -> None:
    """Train a model on a corpus and save it (with its JSON manifest beside it)."""
    with _user_errors():
        recommender = Recommender(
            stem=stem,
            stopwords=stopwords,
            numbers=numbers,
            ngram_range=(1, 2) if bigrams else (1, 1),
            half_life_days=half_life_days or None,
            time_weight=time_weight,
            topic_dims=topic_dims or None,
            dedup=dedup or None,
        ).check_params()  # before the corpus is read
        path = corpus or bundled_corpus_path()
        started = time.perf_counter()
        since = corpus_written_at(path)  # updates the model received after this are not in the corpus
        result = _read(path, field, delimiter, skip_invalid)
        with _progress("Analysing") as update:
            fitted = recommender.fit(result.articles, progress=update)
        manifest = fitted.save(model, carry_since=since)
        elapsed = time.perf_counter() - started
        typer.echo(f"Trained on {_articles(len(fitted))}, {manifest['terms']:,} terms in {elapsed:.1f} s")
        data = data_path(model, manifest).name
        size = _mb(manifest["model_file"]["bytes"])
        typer.echo(f"Saved {model} ({size}): manifest {model.with_suffix('.json').name}, data file {data}")
        carried = fitted.updates_
        if carried["generation"]:
            typer.echo(
                f"Carried over {carried['generation']} updates the previous model received after the corpus was "
                f"written: {carried['added']} added, {carried['edited']} edited, {carried['removed']} removed"
            )
        bundled = bundled_vectors_path()
        seeded = (
            seed_vectors(result.articles, model, bundled, ids=fitted.ids_.to_list())
            if vectors and bundled is not None
            else None
        )
        if seeded is not None:
            typer.echo(
                f"Semantic vectors: {seeded.with_vector:,} of {_articles(len(fitted))} ({seeded.taken:,} taken from "
                f"{bundled}), in {seeded.path.name}"
                + (
                    f"; `recommender embed` encodes the other {seeded.without_vector:,}"
                    if seeded.without_vector
                    else ""
                )
            )


def _related_table(results: list[Related], explain: bool = False) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id", no_wrap=True)
    table.add_column("published", no_wrap=True)
    table.add_column("title")
    if explain:
        table.add_column("why (meaning; shared terms)")
    for rank, r in enumerate(results, start=1):
        # Text, not str: a title's "[/]" or "[link=...]" is what the corpus says, never Rich markup.
        row = [Text(str(rank)), Text(f"{r.score:.3f}"), Text(r.id), Text((r.published or "")[:10]), Text(r.title)]
        if explain:
            why = ", ".join(f"{w.term} {w.weight:.3f}" for w in r.why[:3])
            if r.semantic is not None:  # the cosine, and the share of the words score it kept
                why = f"meaning {r.semantic:.3f} (×{float(gate(np.array(r.semantic))):.2f}); {why}"
            row.append(Text(f"{r.rule}; {why}" if r.rule else why))
        table.add_row(*row)
    return table


@app.command(cls=_Command)
def related(
    article_id: Annotated[str | None, typer.Argument(metavar="ID", help="An article id in the model.")] = None,
    text: Annotated[
        str | None, typer.Option("--text", metavar="TEXT", help="A draft's body text (not in the model).")
    ] = None,
    title: Annotated[str | None, typer.Option("--title", metavar="TEXT", help="A draft's title.")] = None,
    k: Annotated[int, typer.Option("-k", metavar="N", help="How many related articles (at most 1,000).")] = 5,
    model: ModelOption = DEFAULT_MODEL,
    section: SectionOption = None,
    category: CategoryOption = None,
    tag: TagOption = None,
    source: SourceOption = None,
    exclude: ExcludeOption = [],  # noqa: B006
    after: AfterOption = None,
    before: BeforeOption = None,
    within_days: WithinDaysOption = None,
    published: Annotated[
        str | None, typer.Option(metavar="DATE", help="A draft's publication time (ISO), for the time prior.")
    ] = None,
    newer: NewerOption = True,
    diversity: DiversityOption = 0.0,
    min_score: MinScoreOption = MIN_SCORE,
    min_results: MinResultsOption = MIN_RESULTS,
    explain: ExplainOption = False,
    as_json: JsonOption = False,
    as_html: Annotated[bool, typer.Option("--html", help="Print the 'Berita Lainnya' HTML box.")] = False,
) -> None:
    """Show the articles related to an article ID, or to a draft given with --title/--text."""
    with _user_errors():
        options = _lookup_options(locals())
        is_draft = text is not None or title is not None
        if (article_id is None) == (not is_draft):
            raise InvalidParameterError("give an article ID, or a draft with --text and/or --title (not both)")
        if published is not None and not is_draft:
            raise InvalidParameterError("--published is for a draft: an article ID has its own date")
        if as_json and as_html:
            raise InvalidParameterError("choose one of --json and --html")
        recommender = Recommender.load(model)
        if article_id is not None:
            results = recommender.related(article_id, k, options)
        else:
            results = recommender.related_to_text(
                title=title or "", body=text or "", k=k, published=published, options=options
            )
        if as_json:
            for r in results:
                typer.echo(json.dumps(r.to_dict(), ensure_ascii=False))
        elif as_html:
            typer.echo(render_related(results))
        elif not results:
            typer.echo("No related articles found.")
        else:
            out.print(_related_table(results, explain))
        if explain and article_id is not None and not (as_json or as_html):
            for r, rule in recommender.blocked(article_id, k, options):
                typer.echo(f"Blocked by rule {rule}: {r.id} {r.title}")


@app.command("precompute", cls=_Command)
def precompute_command(
    out_path: Annotated[
        Path, typer.Option("--out", "-o", metavar="PATH", help="Output: .jsonl, .csv, or .sqlite/.db (SQLite).")
    ],
    k: Annotated[int, typer.Option("-k", metavar="N", help="Related articles per article (at most 1,000).")] = 10,
    model: ModelOption = DEFAULT_MODEL,
    section: SectionOption = None,
    category: CategoryOption = None,
    tag: TagOption = None,
    source: SourceOption = None,
    exclude: ExcludeOption = [],  # noqa: B006
    after: AfterOption = None,
    before: BeforeOption = None,
    newer: NewerOption = True,
    within_days: WithinDaysOption = None,
    diversity: DiversityOption = 0.0,
    min_score: MinScoreOption = MIN_SCORE,
    min_results: MinResultsOption = MIN_RESULTS,
    exact: Annotated[bool, typer.Option("--exact", help="Exact lists, however long it takes.")] = False,
    approx: Annotated[
        bool, typer.Option("--approx", help="Approximate lists (time windows and rare terms), even when small.")
    ] = False,
    scheduler: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Run on the Dask cluster of this scheduler (tcp://HOST:8786).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(metavar="N", help="Run on a local Dask cluster of this many worker processes.")
    ] = None,
) -> None:
    """Precompute every article's related list into a file or SQLite database, replacing it atomically.

    Exact up to a size, approximate beyond (with its recall estimated on a sample); --exact or --approx
    decide instead. --scheduler or --workers computes the same lists on a Dask cluster (recommender[dask]).
    The filters (--section, --tag, ...) apply to every list, and are recorded for updates to apply too."""
    with _user_errors():
        options = _lookup_options(locals())
        if exact and approx:
            raise InvalidParameterError("choose one of --exact and --approx")
        if scheduler is not None or workers is not None:
            check_cluster_options(scheduler, workers)
        check_output(out_path)  # a bad suffix or a missing directory fails before the model is even loaded
        recommender = Recommender.load(model)
        plan = recommender.plan_all_related("exact" if exact else "approx" if approx else "auto")
        cost = f"{_quantity(plan.multiply_adds)}multiply-adds"
        with _progress(f"Precomputing ({plan.mode}, {cost})", percent=True) as update:
            result = precompute(
                recommender,
                out_path,
                k,
                options,
                mode=plan,
                progress=update,
                scheduler=scheduler,
                workers=workers,
                model_path=model,
            )
        typer.echo(
            f"Wrote {result.pairs:,} related links for {result.articles:,} articles to {result.path} "
            f"({result.format}, k={result.k}) in {result.seconds:.1f} s"
        )
        if result.recall is None:
            typer.echo(f"Mode: exact ({cost})")
        else:
            typer.echo(
                f"Mode: approximate ({cost}; exact: {_quantity(plan.exact_multiply_adds)}multiply-adds); "
                f"recall@{k} against exact lists estimated at {result.recall:.3f}"
            )
        if scheduler is not None:
            typer.echo(f"Computed on the Dask cluster at {scheduler}")
        elif workers is not None:
            typer.echo(f"Computed on a local Dask cluster of {workers} workers")


@app.command("embed", cls=_Command)
def embed_command(
    corpus: Annotated[
        Path | None,
        typer.Argument(metavar="CORPUS", help="The corpus the model was trained on (default: the bundled one)."),
    ] = None,
    model: ModelOption = DEFAULT_MODEL,
    field: FieldOption = [],  # noqa: B006 (typer reads the default, never mutates it)
    delimiter: DelimiterOption = None,
    skip_invalid: SkipInvalidOption = False,
    scheduler: Annotated[
        str | None,
        typer.Option(metavar="ADDRESS", help="Encode on the Dask cluster of this scheduler (tcp://HOST:8786)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(metavar="N", help="Encode on a local Dask cluster of this many worker processes.")
    ] = None,
    as_json: JsonObjectOption = False,
) -> None:
    """Encode every article's meaning (recommender[semantic]) into the vectors file beside the model.

    Only texts without a vector are encoded; a killed run loses at most the batch in flight, and the next
    one resumes. --scheduler or --workers encodes on a Dask cluster (recommender[dask])."""
    with _user_errors():
        if scheduler is not None or workers is not None:
            check_cluster_options(scheduler, workers)
        if not manifest_path(model).is_file():
            raise ModelError(f"no model at {model}: train one first with `recommender train`")
        path = corpus or bundled_corpus_path()
        articles = _read(path, field, delimiter, skip_invalid, echo=not as_json).articles
        with _progress("Encoding", rate="texts") as update:
            bundled = bundled_vectors_path()
            seeds = [bundled] if bundled is not None else []
            result = embed(articles, model, progress=update, workers=workers, scheduler=scheduler, seeds=seeds)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
            return
        typer.echo(
            f"Encoded {result.encoded:,} texts in {result.seconds:.1f} s ({result.reused:,} had a vector already"
            + (f", {result.seeded:,} taken from {seeds[0]}" if result.seeded else "")
            + f") into {result.path}"
        )
        without = result.counts.articles_without
        typer.echo(
            f"{_articles(result.articles)} with a vector; {without:,} without"
            if without
            else f"Every one of {_articles(result.articles)} has a vector ({result.encoder})"
        )


def _articles(n: int) -> str:
    return f"{n:,} article{'' if n == 1 else 's'}"


def _report_update(result: UpdateResult, model: Path, store: Path | None, as_json: bool) -> None:
    advice, c = result.freshness.advice(), result.changes
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    done = [f"added {_articles(len(c.added))}"] if c.added or not (c.edited or c.removed) else []
    if c.edited:
        done.append(f"updated {_articles(len(c.edited))}")
    if c.removed:
        done.append(f"removed {_articles(len(c.removed))}")
    summary = ", ".join(done)
    typer.echo(
        f"{summary[0].upper()}{summary[1:]}: {model} now holds {_articles(result.articles)} "
        f"(update {result.generation} since the fit)"
    )
    if store is not None and result.store_stale:
        typer.echo(
            f"Left {store} as it was: it was precomputed from another fit of the model; "
            f"`recommender precompute --out {store}` brings it up to this update"
        )
    elif store is not None:
        if result.store_rebuilt:
            typer.echo(f"Rebuilt every list in {store}: it was behind the model (an interrupted update)")
        typer.echo(f"Rewrote {result.lists_updated:,} related lists in {store} in {result.seconds:.2f} s")
    if advice:
        typer.echo(f"Refit suggested: {advice}")


@app.command("add", cls=_Command)
def add_command(
    corpus: Annotated[
        Path, typer.Argument(metavar="FILE", help="New or edited articles: .jsonl, .csv or .tsv, optionally .gz.")
    ],
    model: ModelOption = DEFAULT_MODEL,
    store: StoreOption = None,
    field: FieldOption = [],  # noqa: B006
    delimiter: DelimiterOption = None,
    skip_invalid: SkipInvalidOption = False,
    as_json: JsonObjectOption = False,
) -> None:
    """Add new articles to a model, or update edited ones (same id), and their store's lists in place.

    The vocabulary and IDF stay as trained: `info` says when a retrain is due."""
    with _user_errors():
        updater = Updater(model, store)  # a wrong model or store fails before the file is read
        articles = _read(corpus, field, delimiter, skip_invalid, echo=not as_json)
        if not articles.articles:
            raise InvalidParameterError(f"no articles to add in {corpus}")
        _report_update(updater.add(articles.articles), model, store, as_json)


@app.command("remove", cls=_Command)
def remove_command(
    ids: Annotated[list[str], typer.Argument(metavar="ID", help="Ids of the articles to take out.")],
    model: ModelOption = DEFAULT_MODEL,
    store: StoreOption = None,
    as_json: JsonObjectOption = False,
) -> None:
    """Remove articles from a model, and from their store: their lists, and every list that showed them."""
    with _user_errors():
        _report_update(Updater(model, store).remove(ids), model, store, as_json)


UntilOption = Annotated[
    str | None, typer.Option("--until", metavar="DATE", help="When the rule expires (ISO date or time).")
]
NoteOption = Annotated[str, typer.Option("--note", metavar="TEXT", help="Why: shown by `recommender rules`.")]
RulesStoreOption = Annotated[Path | None, _store_option("SQLite store whose lists the rule rewrites")]


def _report_rule(change: RuleChange, store: Path | None, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(change.to_dict(), ensure_ascii=False))
        return
    typer.echo(f"{change.action.capitalize()} rule {change.rule.id}: {change.rule.describe()}")
    if store is not None and change.store_stale:
        typer.echo(
            f"Left {store} as it was: it was precomputed from another fit of the model; "
            f"`recommender precompute --out {store}` applies the rules"
        )
    elif store is not None:
        typer.echo(f"Rewrote {change.lists_updated:,} related lists in {store} in {change.seconds:.2f} s")


@app.command("pin", cls=_Command)
def pin_command(
    article_id: Annotated[str, typer.Argument(metavar="ARTICLE", help="The article whose list shows the pin.")],
    related_id: Annotated[str, typer.Argument(metavar="RELATED", help="The article to pin into that list.")],
    position: Annotated[int, typer.Option("--position", metavar="N", help="Its place in the list (1: first).")] = 1,
    until: UntilOption = None,
    note: NoteOption = "",
    model: ModelOption = DEFAULT_MODEL,
    store: RulesStoreOption = None,
    as_json: JsonObjectOption = False,
) -> None:
    """Pin RELATED into ARTICLE's list at a position (several pins keep their order)."""
    with _user_errors():
        rule = Rule("pin", article=article_id, related=related_id, position=position, until=until, note=note)
        _report_rule(Updater(model, store).add_rule(rule), store, as_json)


@app.command("block", cls=_Command)
def block_command(
    related_id: Annotated[
        str | None, typer.Argument(metavar="[RELATED]", help="The article to block (everywhere, or --under one).")
    ] = None,
    under: Annotated[
        str | None, typer.Option("--under", metavar="ARTICLE", help="Only in this article's list.")
    ] = None,
    both_ways: Annotated[bool, typer.Option("--both-ways", help="With --under: each out of the other's list.")] = False,
    section: Annotated[str | None, typer.Option(metavar="VALUE", help="Block every article of this section.")] = None,
    source: Annotated[str | None, typer.Option(metavar="VALUE", help="Block every article of this source.")] = None,
    category: Annotated[str | None, typer.Option(metavar="VALUE", help="Block every article of this category.")] = None,
    tag: Annotated[str | None, typer.Option(metavar="VALUE", help="Block every article with this tag.")] = None,
    title: Annotated[
        str | None, typer.Option(metavar="PATTERN", help="Block every headline matching this regular expression.")
    ] = None,
    only_under: Annotated[
        str | None,
        typer.Option(
            "--only-under", metavar="FIELD=VALUE", help="A field block only under such articles: section=berita."
        ),
    ] = None,
    until: UntilOption = None,
    note: NoteOption = "",
    model: ModelOption = DEFAULT_MODEL,
    store: RulesStoreOption = None,
    as_json: JsonObjectOption = False,
) -> None:
    """Block an article everywhere, or under one article, or every article matching a field."""
    with _user_errors():
        fields = {"section": section, "source": source, "category": category, "tag": tag, "title": title}
        given = [(name, value) for name, value in fields.items() if value is not None]
        if len(given) > 1:
            raise InvalidParameterError("give one of --section, --source, --category, --tag and --title")
        under_field = under_value = None
        if only_under is not None:
            under_field, sep, under_value = only_under.partition("=")
            if not sep:
                raise InvalidParameterError(f"--only-under takes FIELD=VALUE, e.g. section=berita, got {only_under!r}")
        field, value = given[0] if given else (None, None)
        rule = Rule(
            "block",
            article=under,
            related=related_id,
            field=field,
            value=value,
            under_field=under_field,
            under_value=under_value,
            both_ways=both_ways,
            until=until,
            note=note,
        )
        _report_rule(Updater(model, store).add_rule(rule), store, as_json)


RuleIdArgument = Annotated[int, typer.Argument(metavar="RULE", help="The rule's number, from `recommender rules`.")]


@app.command("unpin", cls=_Command)
def unpin_command(
    rule_id: RuleIdArgument,
    model: ModelOption = DEFAULT_MODEL,
    store: RulesStoreOption = None,
    as_json: JsonObjectOption = False,
) -> None:
    """Remove a pin (by its number in `recommender rules`)."""
    _remove_rule("pin", rule_id, model, store, as_json)


@app.command("unblock", cls=_Command)
def unblock_command(
    rule_id: RuleIdArgument,
    model: ModelOption = DEFAULT_MODEL,
    store: RulesStoreOption = None,
    as_json: JsonObjectOption = False,
) -> None:
    """Remove a block (by its number in `recommender rules`)."""
    _remove_rule("block", rule_id, model, store, as_json)


def _remove_rule(kind: str, rule_id: int, model: Path, store: Path | None, as_json: bool) -> None:
    with _user_errors():
        _report_rule(Updater(model, store).remove_rule(rule_id, kind=kind), store, as_json)


@app.command("rules", cls=_Command)
def rules_command(
    model: ModelOption = DEFAULT_MODEL,
    apply: Annotated[
        bool, typer.Option("--apply", help="Rewrite the store's lists a rule's expiry changed (needs --store).")
    ] = False,
    store: RulesStoreOption = None,
    as_json: JsonObjectOption = False,
) -> None:
    """List the editors' pins and blocks: those in force, and those expired."""
    with _user_errors():
        if not manifest_path(model).is_file():
            raise ModelError(f"no model at {model}: train one first with `recommender train`")
        rewritten = None
        if apply:
            if store is None:
                raise InvalidParameterError("--apply rewrites a store's lists: give it with --store")
            rewritten = Updater(model, store).apply_rules()
            if not as_json:
                typer.echo(f"Rewrote {rewritten:,} related lists in {store}: they apply the rules in force now")
        now = time.time()
        stored = RuleBook.of_model(model).rules()
        if as_json:
            payload: dict[str, Any] = stored.to_dict(now)
            if rewritten is not None:
                payload["lists_updated"] = rewritten
            typer.echo(json.dumps(payload, ensure_ascii=False))
            return
        if not stored:
            typer.echo(f"No rules for {model}: add one with `recommender pin` or `recommender block`.")
            return
        for heading, rules in (("In force", stored.in_force(now)), ("Expired", stored.expired(now))):
            if not rules:
                continue
            table = Table(title=heading, title_justify="left", show_edge=False, pad_edge=False)
            for column in ("#", "rule", "note", "added"):
                table.add_column(column, justify="right" if column == "#" else "left")
            for r in rules:
                table.add_row(Text(str(r.id)), Text(r.describe()), Text(r.note), Text((r.created or "")[:16]))
            out.print(table)


@app.command("serve", cls=_Command)
def serve_command(
    model: ModelOption = DEFAULT_MODEL,
    store: Annotated[
        Path | None, _store_option("SQLite store to answer plain lookups from, and to keep fresh on writes")
    ] = None,
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(metavar="N", help="Worker processes.")] = 1,
    max_age: Annotated[
        int, typer.Option("--max-age", metavar="SECONDS", help="Cache-Control max-age of lookups, for a CDN.")
    ] = 60,
    default_image: Annotated[
        str | None,
        typer.Option(metavar="URL", help="The HTML box's picture for an article without one (default: none)."),
    ] = None,
) -> None:
    """Serve related lists over HTTP (JSON and HTML) until interrupted; writes need RECOMMENDER_API_TOKEN."""
    with _user_errors():
        from .server import TOKEN_VARIABLE, ServeSettings, run, token_warning  # FastAPI only for this command

        if max_age < 0:
            raise InvalidParameterError(f"--max-age must be 0 or more seconds, got {max_age}")
        token = os.environ.get(TOKEN_VARIABLE) or None
        settings = ServeSettings(model=model, store=store, token=token, max_age=max_age, default_image=default_image)
        writes = "writes on (token set)" if token else f"writes off (set {TOKEN_VARIABLE} to allow them)"
        warning = token_warning(settings)
        if warning is not None:
            err.print(f"Warning: {warning}", soft_wrap=True, markup=False)
        if store is not None and not store.exists():
            err.print(
                f"No store at {store} yet: the model answers every lookup until "
                f"`recommender precompute --out {store}` writes it (then it is used at once)",
                soft_wrap=True,
                markup=False,
            )

        def ready() -> None:
            line = f"Serving {model} on http://{host}:{port} ({workers} worker(s), {writes}); docs at /docs"
            err.print(line, soft_wrap=True, markup=False)

        run(settings, host=host, port=port, workers=workers, on_ready=ready)


@app.command(cls=_Command)
def info(
    model: ModelOption = DEFAULT_MODEL,
    as_json: JsonObjectOption = False,
) -> None:
    """Show a model's manifest: versions, parameters, corpus figures."""
    with _user_errors():
        started = time.perf_counter()
        recommender, manifest = load_with_manifest(model)
        load_seconds = time.perf_counter() - started
        fresh = freshness(recommender)
        coverage = vector_coverage(model, recommender.ids_.to_list())
        if as_json:
            if recommender.updates_["generation"]:  # updates since the file was saved: as they are now
                manifest = manifest | {"updates": recommender.updates_, "refit_suggested": fresh.refit_suggested}
            typer.echo(json.dumps(manifest | {"vectors": coverage.to_dict()}, ensure_ascii=False))
            return
        corpus = manifest["corpus"]
        table = Table(show_header=False, show_edge=False, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        rows = {
            "model": f"{model} ({_mb(manifest['model_file']['bytes'])}, loads in {load_seconds * 1000:.0f} ms)",
            "data file": data_path(model, manifest).name,
            "sha256": manifest["model_file"]["sha256"],
            "created": manifest["created_at"],
            "format": f"{manifest['format_version']} (recommender {manifest['package_version']})",
            "versions": ", ".join(f"{k} {v}" for k, v in manifest["versions"].items()),
            "params": ", ".join(f"{k}={v}" for k, v in recommender.get_params().items()),  # all, as used
            "articles": f"{len(recommender):,} ({corpus['empty_bodies']:,} with an empty body)",
            "terms": f"{manifest['terms']:,}",
            "corpus sha256": corpus["checksum"],
            "sections": ", ".join(f"{k} {v:,}" for k, v in corpus["sections"].items()),
            "sources": ", ".join(f"{k} {v:,}" for k, v in corpus["sources"].items()),
            "since the fit": (
                f"{fresh.added:,} added, {fresh.edited:,} edited, {fresh.removed:,} removed "
                f"({fresh.changed_share:.1%} of the fitted corpus"
                + (f"; {fresh.unknown_terms:.0%} of the added words are new to the vocabulary)" if fresh.added else ")")
            ),
        }
        if fresh.refit_suggested:
            rows["refit"] = f"suggested: {fresh.advice()}"
        rows["vectors"] = _vectors_line(coverage)
        for key, value in rows.items():
            table.add_row(key, Text(value))  # section and source names come from the corpus: not markup
        out.print(table)


def _vectors_line(coverage: VectorCoverage) -> str:
    if coverage.encoder is None:
        return "none (`recommender embed` encodes them, with recommender[semantic])"
    line = f"{coverage.with_vector:,} of {_articles(coverage.articles)} ({coverage.encoder}; {coverage.recipe})"
    return line + (f"; {coverage.without:,} without: `recommender embed` adds them" if coverage.without else "")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _pairs(n: int, kind: str = "judged") -> str:
    return f"{n:,} {kind} pair{'' if n == 1 else 's'}"


def _evaluation_table() -> Table:
    table = Table(show_edge=False, pad_edge=False, box=box.SIMPLE_HEAD, collapse_padding=True)
    table.add_column("system", min_width=18)
    return table


def _judged_table(report: EvaluationReport) -> tuple[str, Table, bool]:
    """The judged figures' title and table, and whether a system's judged@5 is too low to trust them."""
    ndcg_queries = max((s.judged.ndcg_queries for s in report.systems if s.judged), default=0)
    title = f"Judged: {report.judged_queries} queries, {report.judged_pairs:,} pairs ({report.judgments})"
    if ndcg_queries < report.judged_queries:
        title += f"; nDCG@5 over the {ndcg_queries} with a relevant doc"
    table = _evaluation_table()
    for column in ("nDCG@5 ± SE", "P@5", "P@5\ngrade 2", "judged@5"):
        table.add_column(column, justify="right", no_wrap=True)
    short = False
    for s in report.systems:
        if s.judged is None:
            continue
        j = s.judged
        low = j.judged_at_5 < JUDGED_ENOUGH
        short |= low
        table.add_row(
            s.system,
            f"{_fmt(j.ndcg_at_5)} ± {_fmt(j.ndcg_standard_error)}",
            _fmt(j.precision_at_5),
            _fmt(j.same_story_precision_at_5),
            _fmt(j.judged_at_5) + ("*" if low else " "),
        )
    return title, table, short


@app.command("evaluate", cls=_Command)
def evaluate_command(
    corpus: Annotated[
        Path | None, typer.Argument(metavar="CORPUS", help="Corpus to evaluate on (default: the bundled one).")
    ] = None,
    judgments: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Graded judgments, query_id<TAB>doc_id<TAB>grade (0/1/2; default: the bundled ones)."
        ),
    ] = None,
    links: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Editor links, source_id<TAB>target_id (default: the bundled ones)."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model", "-m", metavar="PATH", help="Evaluate this model (trained on CORPUS) instead of training one."
        ),
    ] = None,
    field: FieldOption = [],  # noqa: B006
    delimiter: DelimiterOption = None,
    sample: Annotated[int, typer.Option(metavar="N", help="Random articles for same-section precision.")] = 2000,
    seed: Annotated[
        int, typer.Option(metavar="N", help="Seed of that sample (and of the packet's candidate order).")
    ] = 1,
    baselines: Annotated[bool, typer.Option(help="Also score the reference systems.")] = True,
    unjudged_out: Annotated[
        Path | None,
        typer.Option(
            metavar="PACKET.md",
            help="Write the unjudged pairs of every system's top 5 as a judging packet (.md, and .tsv).",
        ),
    ] = None,
    as_json: JsonObjectOption = False,
) -> None:
    """Score the engine against graded judgments, then editor links and section labels, beside reference systems."""
    with _user_errors():
        corpus_path = corpus or bundled_corpus_path()
        articles = read_articles(corpus_path, fields=_field_map(field), delimiter=_delimiter(delimiter)).articles
        graded = load_judgments(judgments or bundled_judgments_path())  # evaluate() drops ids not in the corpus
        link_map = load_links(links or bundled_links_path())  # evaluate() keeps the links inside the corpus
        fitted = Recommender.load(model) if model is not None else None
        status = err.status("Evaluating", spinner="dots") if err.is_terminal else nullcontext()
        with status as spinner:

            def say(message: str) -> None:
                if spinner is not None:
                    spinner.update(message)

            report = evaluate(
                articles,
                link_map,
                graded,
                model=fitted,
                baselines=baselines,
                sample=sample,
                seed=seed,
                progress=say,
                vectors=bundled_vectors_path() if corpus is None and model is None else None,
            )
        notes = []
        if report.judged_pairs_dropped:
            notes.append(
                f"Dropped {_pairs(report.judged_pairs_dropped)} of {graded.path}: query or doc not in the corpus"
            )
        if unjudged_out is not None:
            packet = write_packet(unjudged_out, unjudged_pairs(report, graded), articles, seed=seed)
            notes.append(
                f"Wrote {_pairs(packet.pairs, 'unjudged')} of {packet.queries} queries to {packet.markdown} "
                f"(grades go in {packet.tsv})"
            )
        if as_json:
            for note in notes:
                typer.echo(note, err=True)
            typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
            return
        for note in notes:
            typer.echo(note)
        if report.judged_queries:
            title, table, short = _judged_table(report)
            typer.echo(title)
            out.print(table)
            if short:
                typer.echo(
                    f"* judged@5 below {JUDGED_ENOUGH}: figures are a lower bound; "
                    "write the unjudged pairs with --unjudged-out"
                )
        else:
            typer.echo(f"No judged query of {graded.path} is in the corpus: pass --judgments FILE for it")
        typer.echo()
        typer.echo(
            f"Proxies: {report.articles:,} articles, {report.links} links from {report.link_sources} sources, "
            f"{report.section_queries:,} section queries (seed {report.seed})"
        )
        table = _evaluation_table()
        for column in ("recall@5", "recall@10", "section\nP@10", "near-dup\ntop-5", "coverage", "ms/query"):
            table.add_column(column, justify="right", no_wrap=True)
        for s in report.systems:
            table.add_row(
                s.system,
                _fmt(s.recall_at_5),
                _fmt(s.recall_at_10),
                _fmt(s.section_precision_at_10),
                _fmt(s.near_duplicate_lists),
                _fmt(s.coverage),
                _fmt(s.ms_per_query, 2),
            )
        out.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
