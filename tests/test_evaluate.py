"""Evaluation: the judgment and editor-link readers, each measure by hand, a full run on the sample. The reference
systems' judged figures on the bundled corpus are pinned in test_reference_figures.py."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import Article, CorpusError, InvalidParameterError, Recommender
from recommender.evaluate import (
    RUBRIC,
    EvaluationReport,
    Judgments,
    editor_recall,
    evaluate,
    judged_measures,
    load_judgments,
    load_links,
    near_duplicate_rate,
    section_precision,
)

ROOT = Path(__file__).resolve().parent.parent
LINKS = ROOT / "data" / "baca_juga.tsv"
JUDGMENTS = ROOT / "data" / "judgments"
SYSTEMS = ["recommender (ours)", "sklearn defaults", "MLT BM25 (25 terms)", "sklearn tuned"]
MEASURES = ("recall_at_5", "recall_at_10", "section_precision_at_10", "near_duplicate_lists", "coverage")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- load_judgments --------------------------------------------------------------------------------


def test_load_judgments_with_header_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "qrels.tsv", "query_id\tdoc_id\tgrade\nq\ta\t2\n\nq\tb\t0\n r \t a \t 1 \n")
    judgments = load_judgments(path)
    assert judgments == Judgments(str(path), {"q": {"a": 2, "b": 0}, "r": {"a": 1}}, dropped=0)
    assert judgments.pairs == 3


def test_load_judgments_known_drops_and_counts(tmp_path: Path) -> None:
    path = write(tmp_path / "qrels.tsv", "q\ta\t2\nq\tgone\t1\ngone\ta\t2\ngone\tb\t0\nr\tgone\t1\n")
    judgments = load_judgments(path, known={"q": 0, "r": 1, "a": 2, "b": 3})
    assert judgments.grades == {"q": {"a": 2}}  # r has no judged doc left: no query
    assert judgments.dropped == 4


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("query_id\tdoc_id\tgrade\nq\ta\n", 2, "expected three tab-separated fields"),
        ("q\ta\t1\t\n", 1, "expected three tab-separated fields"),
        ("q\ta\t1\n\t a\t1\n", 2, "expected three tab-separated fields"),
        ("q\ta\t3\n", 1, "grade must be 0, 1 or 2, got '3'"),
        ("q\ta\t1\nq\tb\t\n", 2, "grade must be 0, 1 or 2, got ''"),
        ("q\ta\t1.0\n", 1, "grade must be 0, 1 or 2"),
        ("q\ta\t1\nr\ta\t1\nq\ta\t2\n", 3, "duplicate pair q a"),
        ("q\ta\t1\nquery_id\tdoc_id\tgrade\n", 2, "grade must be 0, 1 or 2"),  # a header only on line 1
    ],
)
def test_load_judgments_bad_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = write(tmp_path / "bad.tsv", text)
    with pytest.raises(CorpusError) as info:
        load_judgments(path)
    assert (info.value.path, info.value.line) == (str(path), line)
    assert str(info.value).startswith(f"{path}, line {line}: {problem}")


def test_load_judgments_missing_file_and_not_utf8(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as info:
        load_judgments(tmp_path / "missing.tsv")
    assert str(info.value) == f"{tmp_path / 'missing.tsv'}: no such file"
    path = tmp_path / "latin1.tsv"
    path.write_bytes("caf\xe9\tx\t1\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="not UTF-8") as info:
        load_judgments(path)
    assert info.value.path == str(path) and info.value.line is None


def test_load_judgments_bundled_file() -> None:
    judgments = load_judgments(JUDGMENTS / "dev_qrels.tsv")
    assert len(judgments.grades) == 60 and judgments.pairs == 2102  # as data/judgments/README.md says
    grades = [g for docs in judgments.grades.values() for g in docs.values()]
    assert (grades.count(0), grades.count(1), grades.count(2)) == (1265, 498, 339)


def test_rubric_is_the_one_the_graders_followed() -> None:
    judging = (JUDGMENTS / "JUDGING.md").read_text(encoding="utf-8").splitlines()
    for line in RUBRIC.splitlines():
        assert line in judging, line


# --- judged_measures -------------------------------------------------------------------------------


def test_judged_measures_by_hand() -> None:
    grades = {"q1": {"a": 2, "b": 1, "c": 0, "d": 2}, "q2": {"x": 0, "y": 0}, "q3": {"m": 1}}
    ranked = {
        "q1": ["b", "z", "a", "c", "e", "d"],  # z and e unjudged (grade 0); d is 6th, not shown
        "q2": ["x", "w"],  # every judged grade 0: no nDCG; a short list; w unjudged
        "q3": [],  # nothing found: nDCG 0, P@5 0, no judged@5
    }
    scores = judged_measures(ranked, grades)
    dcg = 1 / math.log2(2) + 3 / math.log2(4)  # b (grade 1) at rank 1, a (grade 2) at rank 3
    ideal = 3 / math.log2(2) + 3 / math.log2(3) + 1 / math.log2(4)  # grades 2, 2, 1, 0
    q1, q2, q3 = scores.queries
    assert q1.query_id == "q1" and q1.top == ("b", "z", "a", "c", "e")
    assert q1.ndcg_at_5 == pytest.approx(dcg / ideal)
    assert (q1.precision_at_5, q1.same_story_precision_at_5, q1.judged_at_5) == (2 / 5, 1 / 5, 3 / 5)
    assert q2.ndcg_at_5 is None
    assert (q2.precision_at_5, q2.same_story_precision_at_5, q2.judged_at_5, q2.top) == (0.0, 0.0, 1 / 2, ("x", "w"))
    assert (q3.ndcg_at_5, q3.precision_at_5, q3.judged_at_5, q3.top) == (0.0, 0.0, None, ())
    assert scores.ndcg_queries == 2
    assert scores.ndcg_at_5 == pytest.approx(dcg / ideal / 2)  # q2 left out, not counted as 0
    assert scores.ndcg_standard_error == pytest.approx(np.std([dcg / ideal, 0.0], ddof=1) / math.sqrt(2))
    assert scores.precision_at_5 == pytest.approx(2 / 5 / 3)
    assert scores.same_story_precision_at_5 == pytest.approx(1 / 5 / 3)
    assert scores.judged_at_5 == pytest.approx(4 / 7)  # judged results over shown results


def test_judged_measures_perfect_and_reversed() -> None:
    grades = {"q": {"a": 2, "b": 2, "c": 1, "d": 1, "e": 0, "f": 0}}
    best = judged_measures({"q": ["a", "b", "c", "d", "e"]}, grades)
    assert best.ndcg_at_5 == pytest.approx(1.0)
    assert best.ndcg_standard_error is None  # one query: no spread to measure
    worst = judged_measures({"q": ["f", "e", "d", "c", "b"]}, grades)
    assert 0.0 < worst.ndcg_at_5 < 1.0  # type: ignore[operator]
    assert (best.precision_at_5, worst.precision_at_5) == (4 / 5, 3 / 5)
    assert (best.same_story_precision_at_5, worst.same_story_precision_at_5) == (2 / 5, 1 / 5)


def test_judged_measures_needs_queries() -> None:
    with pytest.raises(InvalidParameterError, match="no judged queries"):
        judged_measures({}, {})


# --- load_links ------------------------------------------------------------------------------------


def test_load_links_with_header_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "links.tsv", "source_id\ttarget_id\na\tx\n\na\ty\nb\tx\n\n\na\tx\n")
    assert load_links(path) == {"a": {"x", "y"}, "b": {"x"}}
    assert load_links(str(path)) == {"a": {"x", "y"}, "b": {"x"}}


def test_load_links_without_header(tmp_path: Path) -> None:
    assert load_links(write(tmp_path / "links.tsv", "a\tx\n b \t y \n")) == {"a": {"x"}, "b": {"y"}}


def test_load_links_crlf(tmp_path: Path) -> None:
    path = tmp_path / "links.tsv"
    path.write_bytes(b"source_id\ttarget_id\r\na\tx\r\n\r\nb\ty\r\n")
    assert load_links(path) == {"a": {"x"}, "b": {"y"}}


def test_load_links_empty_file(tmp_path: Path) -> None:
    assert load_links(write(tmp_path / "links.tsv", "")) == {}
    assert load_links(write(tmp_path / "header.tsv", "source_id\ttarget_id\n")) == {}


def test_load_links_known_filters_both_ends(tmp_path: Path) -> None:
    path = write(tmp_path / "links.tsv", "source_id\ttarget_id\na\tx\na\tgone\ngone\tx\nb\tx\nb\ty\n")
    known = {"a": 0, "b": 1, "x": 2}
    assert load_links(path, known=known) == {"a": {"x"}, "b": {"x"}}
    assert load_links(path, known={"a": 0}) == {}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("source_id\ttarget_id\na\tx\nonlyone\n", 3),
        ("a\tx\n\nb\n", 3),
        ("a\tx\tz\n", 1),
        ("a\tx\n\t y\n", 2),
        ("a\t\n", 1),
    ],
)
def test_load_links_malformed_line(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path / "bad.tsv", text)
    with pytest.raises(CorpusError) as info:
        load_links(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    message = str(info.value)
    assert message.startswith(f"{path}, line {line}: ")
    assert "two tab-separated ids" in message


def test_load_links_header_only_on_the_first_line(tmp_path: Path) -> None:
    # "source_id target_id" further down is data, not a header.
    path = write(tmp_path / "links.tsv", "a\tx\nsource_id\ttarget_id\n")
    assert load_links(path) == {"a": {"x"}, "source_id": {"target_id"}}


def test_load_links_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.tsv"
    with pytest.raises(CorpusError) as info:
        load_links(path)
    assert info.value.path == str(path)
    assert info.value.line is None
    assert str(info.value) == f"{path}: no such file"


def test_load_links_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.tsv"
    path.write_bytes("caf\xe9\tx\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="not UTF-8"):
        load_links(path)


def test_load_links_bundled_file() -> None:
    links = load_links(LINKS)
    with open(LINKS, encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t") if r][1:]
    assert sum(len(t) for t in links.values()) == len({(s, t) for s, t in rows})
    assert set(links) == {s for s, _ in rows}


# --- editor_recall ---------------------------------------------------------------------------------


def test_editor_recall_by_hand() -> None:
    ranked = {"a": ["x", "y", "z"], "b": ["q"]}
    links = {"a": {"x", "w"}, "b": {"q"}}
    assert editor_recall(ranked, links, 1) == pytest.approx((0.5 + 1.0) / 2)
    assert editor_recall(ranked, links, 3) == pytest.approx(0.75)
    assert editor_recall(ranked, links, 10) == pytest.approx(0.75)


def test_editor_recall_depends_on_k() -> None:
    ranked = {"a": ["p", "x", "q", "w"], "b": ["z", "y", "q"]}
    links = {"a": {"x", "w"}, "b": {"q"}}
    assert editor_recall(ranked, links, 1) == 0.0
    assert editor_recall(ranked, links, 2) == pytest.approx((0.5 + 0.0) / 2)
    assert editor_recall(ranked, links, 3) == pytest.approx((0.5 + 1.0) / 2)
    assert editor_recall(ranked, links, 4) == pytest.approx((1.0 + 1.0) / 2)


def test_editor_recall_ignores_sources_not_linked_and_extra_results() -> None:
    ranked = {"a": ["x"], "c": ["x", "y"]}
    assert editor_recall(ranked, {"a": {"x"}}, 5) == 1.0


def test_editor_recall_with_int_rows() -> None:
    assert editor_recall({0: [3, 1], 1: []}, {0: {1, 2}, 1: {0}}, 2) == pytest.approx((0.5 + 0.0) / 2)


def test_editor_recall_needs_links() -> None:
    with pytest.raises(InvalidParameterError, match="no editor links"):
        editor_recall({"a": ["x"]}, {}, 5)


# --- section_precision -----------------------------------------------------------------------------


def test_section_precision_by_hand() -> None:
    ranked = [["olahraga", "olahraga", "tekno"], ["berita", "tekno", "berita"]]
    own = ["olahraga", "berita"]
    assert section_precision(ranked, own, 1) == pytest.approx(1.0)
    assert section_precision(ranked, own, 2) == pytest.approx((1.0 + 0.5) / 2)
    assert section_precision(ranked, own, 3) == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_section_precision_short_lists_count_as_misses() -> None:
    # One result for k = 3: 1/3, not 1/1. An empty list scores 0.
    assert section_precision([["berita"]], ["berita"], 3) == pytest.approx(1 / 3)
    assert section_precision([["berita"], []], ["berita", "tekno"], 2) == pytest.approx((0.5 + 0.0) / 2)
    assert section_precision([["tekno", None]], ["tekno"], 4) == pytest.approx(0.25)


def test_section_precision_needs_queries() -> None:
    with pytest.raises(InvalidParameterError, match="no queries"):
        section_precision([], [], 10)


def test_section_precision_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        section_precision([["a"], ["b"]], ["a"], 1)


# --- near_duplicate_rate ---------------------------------------------------------------------------


def unit_rows(*vectors: list[float]) -> sp.csr_matrix:
    dense = np.array(vectors, dtype=np.float64)
    return sp.csr_matrix(dense / np.linalg.norm(dense, axis=1, keepdims=True))


NEAR = math.sqrt(1 - 0.95**2)
MATRIX = unit_rows(
    [1, 0, 0, 0],  # 0
    [0.95, NEAR, 0, 0],  # 1: cosine 0.95 with 0
    [0, 0, 1, 0],  # 2
    [0, 0, 0, 1],  # 3
    [0.89, math.sqrt(1 - 0.89**2), 0, 0],  # 4: cosine 0.89 with 0, under the 0.9 line
)
TITLES = ["Satu", "Dua", "Banjir, Jakarta!", "banjir JAKARTA", "Lima"]


def test_near_duplicate_rate_by_hand() -> None:
    lists = [[0, 1], [2, 3], [0, 3], [1]]  # cosine pair, same title, fine, too short
    assert near_duplicate_rate(lists, MATRIX, TITLES) == pytest.approx(2 / 4)
    assert near_duplicate_rate([[0, 4], [0, 2, 3, 4]], MATRIX, TITLES) == pytest.approx(1 / 2)
    assert near_duplicate_rate([[3, 0, 2]], MATRIX, TITLES) == 1.0  # the pair need not be adjacent


def test_near_duplicate_rate_only_looks_at_the_first_items() -> None:
    lists = [[0, 2, 1], [2, 0, 3]]
    assert near_duplicate_rate(lists, MATRIX, TITLES) == 1.0
    assert near_duplicate_rate(lists, MATRIX, TITLES, size=2) == 0.0


def test_near_duplicate_rate_short_and_empty_lists() -> None:
    assert near_duplicate_rate([[0], [], [3]], MATRIX, TITLES) == 0.0
    assert near_duplicate_rate([], MATRIX, TITLES) == 0.0


def test_near_duplicate_rate_threshold_is_inclusive() -> None:
    # One-term rows, so the products are exact: 0.9 · 1.0 = 0.9 (counts), 0.89 · 1.0 (does not).
    matrix = sp.csr_matrix(np.array([[0.9], [1.0], [0.89]]))
    assert near_duplicate_rate([[0, 1]], matrix, ["a", "b", "c"]) == 1.0
    assert near_duplicate_rate([[2, 1]], matrix, ["a", "b", "c"]) == 0.0


# --- evaluate on the sample ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_links(sample_articles: list[Article]) -> dict[str, set[str]]:
    return load_links(LINKS, known={a.id: i for i, a in enumerate(sample_articles)})


@pytest.fixture(scope="module")
def sample_judgments(
    sample_articles: list[Article], fitted: Recommender, tmp_path_factory: pytest.TempPathFactory
) -> Judgments:
    """Two sample queries: the first's top 3 of our engine graded 2, 1, 0; the second's top 2 graded 0; and a
    pair of an id not in the corpus."""
    first, second = sample_articles[0].id, sample_articles[1].id
    top1 = [r.id for r in fitted.related(first, 5)]
    top2 = [r.id for r in fitted.related(second, 5)]
    lines = [f"{first}\t{top1[0]}\t2", f"{first}\t{top1[1]}\t1", f"{first}\t{top1[2]}\t0"]
    lines += [f"{second}\t{top2[0]}\t0", f"{second}\t{top2[1]}\t0", f"{first}\tnot-in-the-sample\t2"]
    path = tmp_path_factory.mktemp("judgments") / "qrels.tsv"
    return load_judgments(write(path, "\n".join(lines) + "\n"))


@pytest.fixture(scope="module")
def report(
    sample_articles: list[Article], sample_links: dict[str, set[str]], sample_judgments: Judgments, fitted: Recommender
) -> EvaluationReport:
    return evaluate(sample_articles, sample_links, sample_judgments, model=fitted, sample=100)


def test_sample_links(sample_links: dict[str, set[str]], sample_articles: list[Article]) -> None:
    ids = {a.id for a in sample_articles}
    assert sample_links
    assert all(s in ids and targets <= ids for s, targets in sample_links.items())


def test_evaluate_report_fields(report: EvaluationReport, sample_links: dict[str, set[str]]) -> None:
    assert report.articles == 380
    assert report.link_sources == len(sample_links) > 0
    assert report.links == sum(len(t) for t in sample_links.values()) >= report.link_sources
    assert report.section_queries == 100
    assert report.seed == 1
    assert (report.judged_queries, report.judged_pairs, report.judged_pairs_dropped) == (2, 5, 1)
    data = report.to_dict()
    assert set(data) == {
        "articles", "link_sources", "links", "section_queries", "seed", "systems",
        "judgments", "judged_queries", "judged_pairs", "judged_pairs_dropped",
    }  # fmt: skip
    assert len(data["systems"]) == 4


def test_evaluate_judged_figures_of_our_engine(report: EvaluationReport) -> None:
    judged = report.systems[0].judged
    assert judged is not None
    first, second = judged.queries
    assert first.ndcg_at_5 == pytest.approx(1.0)  # graded in our own order
    assert (first.precision_at_5, first.same_story_precision_at_5, first.judged_at_5) == (2 / 5, 1 / 5, 3 / 5)
    assert second.ndcg_at_5 is None and second.precision_at_5 == 0.0 and second.judged_at_5 == 2 / 5
    assert judged.ndcg_at_5 == pytest.approx(1.0) and judged.ndcg_queries == 1
    assert judged.judged_at_5 == pytest.approx(5 / 10)
    for system in report.systems[1:]:  # the others: their own lists, graded the same way
        assert system.judged is not None
        assert system.judged.ndcg_at_5 is not None and 0.0 <= system.judged.ndcg_at_5 <= 1.0
        assert len(system.judged.queries) == 2


def test_evaluate_systems_and_measures(report: EvaluationReport) -> None:
    assert [s.system for s in report.systems] == SYSTEMS
    for s in report.systems:
        for measure in MEASURES:
            value = getattr(s, measure)
            assert value is not None, (s.system, measure)
            assert 0.0 <= value <= 1.0, (s.system, measure, value)
        assert s.ms_per_query > 0
        assert s.coverage > 0
        assert set(s.to_dict()) == {"system", *MEASURES, "ms_per_query", "judged"}


def test_evaluate_our_figures_are_sensible(report: EvaluationReport) -> None:
    ours = report.systems[0]
    assert ours.recall_at_5 is not None and ours.recall_at_10 is not None
    assert ours.recall_at_5 <= ours.recall_at_10
    assert ours.recall_at_10 > 0.5  # editors' links are mostly found on the sample
    assert ours.near_duplicate_lists == 0.0  # dedup is on by default
    assert ours.coverage > 0.9


def test_evaluate_is_deterministic(
    report: EvaluationReport,
    sample_articles: list[Article],
    sample_links: dict[str, set[str]],
    sample_judgments: Judgments,
    fitted: Recommender,
) -> None:
    again = evaluate(sample_articles, sample_links, sample_judgments, model=fitted, sample=100, baselines=False)
    assert len(again.systems) == 1
    assert again.systems[0].system == "recommender (ours)"
    first, second = report.systems[0].to_dict(), again.systems[0].to_dict()
    del first["ms_per_query"], second["ms_per_query"]
    assert first == second
    assert (again.articles, again.link_sources, again.links, again.section_queries) == (
        report.articles,
        report.link_sources,
        report.links,
        report.section_queries,
    )


def test_evaluate_sample_larger_than_the_corpus(
    sample_articles: list[Article], sample_links: dict[str, set[str]], fitted: Recommender
) -> None:
    result = evaluate(sample_articles, sample_links, model=fitted, sample=10_000, baselines=False)
    assert result.section_queries == sum(1 for a in sample_articles if a.section)


def test_evaluate_without_links(sample_articles: list[Article], fitted: Recommender) -> None:
    result = evaluate(sample_articles, {}, model=fitted, sample=20, baselines=False)
    assert result.link_sources == 0 and result.links == 0
    ours = result.systems[0]
    assert ours.recall_at_5 is None and ours.recall_at_10 is None
    assert ours.section_precision_at_10 is not None


def test_evaluate_progress_messages(
    sample_articles: list[Article], sample_links: dict[str, set[str]], fitted: Recommender
) -> None:
    messages: list[str] = []
    evaluate(sample_articles, sample_links, model=fitted, sample=10, baselines=False, progress=messages.append)
    assert messages == ["scoring recommender (ours)"]  # no reference systems built when none are asked for
    messages.clear()
    evaluate(sample_articles, sample_links, model=fitted, sample=10, progress=messages.append)
    assert messages == [
        "building reference systems",
        "scoring recommender (ours)",
        "scoring sklearn defaults",
        "scoring MLT BM25 (25 terms)",
        "scoring sklearn tuned",
    ]


def test_evaluate_model_of_other_articles(
    sample_articles: list[Article], sample_links: dict[str, set[str]], fitted: Recommender
) -> None:
    other = Recommender.train(sample_articles[:50], n_jobs=1)
    with pytest.raises(InvalidParameterError, match="trained on other articles"):
        evaluate(sample_articles, sample_links, model=other, sample=10)
    with pytest.raises(InvalidParameterError, match="trained on other articles"):
        evaluate(list(reversed(sample_articles)), sample_links, model=fitted, sample=10)


def test_evaluate_without_judgments_or_with_none_in_the_corpus(
    sample_articles: list[Article], fitted: Recommender, tmp_path: Path
) -> None:
    result = evaluate(sample_articles, {}, model=fitted, sample=10, baselines=False)
    assert result.judgments is None and result.systems[0].judged is None
    bundled = load_judgments(JUDGMENTS / "dev_qrels.tsv")  # none of its queries is in the sample
    result = evaluate(sample_articles, {}, bundled, model=fitted, sample=10, baselines=False)
    assert (result.judged_queries, result.judged_pairs, result.judged_pairs_dropped) == (0, 0, 2102)
    assert result.systems[0].judged is None
