"""A Recommender shared between threads: a lookup that runs while ``add``/``remove`` update the model returns
the list of one state of the model, the one before an update or one after it, never a mix of the two."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recommender import Article, Recommender

K = 10  # long lists: more rows for an update to shift under a lookup
STEPS = 30  # updates: adds, edits and removals in turn
BATCH = 8  # new articles per add
QUERY_IDS = 8
LOOKUP_THREADS = 4
LOOKUPS_PER_STEP = 20  # the updater waits for this many lookups between two updates
TIME_LIMIT = 120.0  # seconds for the whole concurrent run

Query = tuple[str, str, str]  # (article id, "", "") for related(); ("", title, body) for related_to_text()
Update = tuple[str, list[Article] | list[str]]  # ("add", articles) or ("remove", ids)
Result = list[dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Plan:
    updates: list[Update]
    queries: list[Query]
    expected: list[dict[Query, Result]]  # expected[g]: every query's list after the first g updates


@dataclasses.dataclass(frozen=True)
class Record:
    query: Query
    before: int  # updates counted done when the lookup started
    after: int  # ... and when it returned
    outcome: Result | BaseException


def edited(article: Article, body: str) -> Article:
    return dataclasses.replace(article, title=article.title + " (diperbarui)", body=body)


def where(record: Record) -> str:
    return f"{record.query[0] or record.query[1][:40]!r} during updates {record.before}..{record.after}"


def look_up(model: Recommender, query: Query) -> Result:
    article_id, title, body = query
    if article_id:
        results = model.related(article_id, k=K)
    else:
        results = model.related_to_text(title=title, body=body, k=K)
    return [r.to_dict() for r in results]


def apply(model: Recommender, update: Update) -> None:
    kind, payload = update
    if kind == "add":
        model.add(payload)  # type: ignore[arg-type]
    else:
        model.remove(payload)  # type: ignore[arg-type]


def generations(model: Recommender, updates: list[Update], queries: list[Query]) -> Iterator[dict[Query, Result]]:
    """Every query's list before the updates, then after each update in turn (``model`` is updated)."""
    yield {q: look_up(model, q) for q in queries}
    for update in updates:
        apply(model, update)
        yield {q: look_up(model, q) for q in queries}


@pytest.fixture(scope="module")
def plan(base_model: Path, timeline: list[Article]) -> Plan:
    """Updates that hit the articles most often listed as related (so rows shift under the lookups), and
    queries whose lists change along the way, with their lists in every state computed one thread only."""
    base = Recommender.load(base_model)
    lists = {a.id: [r.id for r in base.related(a.id, k=K)] for a in timeline[:300]}
    popularity = Counter(i for ids in lists.values() for i in ids)
    victims = sorted(popularity, key=lambda i: (-popularity[i], i))[: 2 * (STEPS // 3)]
    to_edit, to_remove = victims[0::2], victims[1::2]
    by_id = {a.id: a for a in timeline}
    arriving = timeline[300:]
    assert len(arriving) >= BATCH * (STEPS // 3)

    updates: list[Update] = []
    for step in range(STEPS):
        n = step // 3
        if step % 3 == 0:
            updates.append(("add", arriving[n * BATCH : (n + 1) * BATCH]))
        elif step % 3 == 1:  # same id, another story: the old row goes, the new one is appended
            updates.append(("add", [edited(by_id[to_edit[n]], arriving[-1 - n].body)]))
        else:
            updates.append(("remove", [to_remove[n]]))

    # Lookups by id of articles never edited nor removed, those listing the most victims first; and two
    # drafts, the texts of a victim to be edited and of one to be removed.
    hit = sorted((i for i in lists if i not in victims), key=lambda i: (-len(set(lists[i]) & set(victims)), i))
    candidates: list[Query] = [(i, "", "") for i in hit[: 4 * QUERY_IDS]]
    drafts: list[Query] = [("", by_id[i].title, by_id[i].body) for i in (to_edit[0], to_remove[0])]
    states = list(generations(base, updates, candidates + drafts))

    def variety(q: Query) -> int:
        return len({repr(state[q]) for state in states})

    queries = sorted(candidates, key=lambda q: (-variety(q), q))[:QUERY_IDS] + drafts
    assert all(variety(q) > 1 for q in queries), "every query's list must change along the updates"
    return Plan(updates, queries, [{q: state[q] for q in queries} for state in states])


def test_lookups_while_adding_and_removing_see_one_state(base_model: Path, plan: Plan) -> None:
    """4 threads look up lists (by id and by draft text) while one thread applies 30 updates to the same model;
    every list must equal the one-thread list of a state the model was in during that lookup."""
    last = len(plan.updates)
    model = Recommender.load(base_model)
    # Warm up (lookup tables, compiled kernels) so that the lookups run from the first update on.
    assert {q: look_up(model, q) for q in plan.queries} == plan.expected[0]

    done = threading.Event()
    records: list[Record] = []  # list.append is atomic
    counter = [0]  # updates done: raised only after add/remove has returned
    failures: list[BaseException] = []

    def lookups(worker: int) -> None:
        i = worker
        while not done.is_set():
            query = plan.queries[i % len(plan.queries)]
            i += 1
            before = counter[0]
            try:
                outcome: Result | BaseException = look_up(model, query)
            except Exception as exc:
                outcome = exc
            records.append(Record(query, before, counter[0], outcome))

    def updater() -> None:
        try:
            for update in plan.updates:
                apply(model, update)
                counter[0] += 1
                seen = len(records)  # let the lookups run on this state before the next update
                deadline = time.monotonic() + TIME_LIMIT
                while len(records) < seen + LOOKUPS_PER_STEP and time.monotonic() < deadline:
                    time.sleep(0.001)
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    threads = [threading.Thread(target=lookups, args=(w,), daemon=True) for w in range(LOOKUP_THREADS)]
    threads.append(threading.Thread(target=updater, daemon=True))
    started = time.monotonic()
    for t in threads:
        t.start()
    finished = done.wait(TIME_LIMIT)
    done.set()  # stops the lookups if the updater is stuck
    for t in threads:
        t.join(max(1.0, TIME_LIMIT - (time.monotonic() - started)))
    assert finished and not any(t.is_alive() for t in threads), f"not done in {TIME_LIMIT:.0f} s"
    assert failures == [], f"the updates failed: {failures!r}"
    assert counter[0] == last

    errors = [r for r in records if isinstance(r.outcome, BaseException)]
    wrong = [
        r
        for r in records
        if not isinstance(r.outcome, BaseException)
        # The update in progress when ``after`` was read may already be visible: up to after + 1.
        and not any(r.outcome == plan.expected[g][r.query] for g in range(r.before, min(r.after + 1, last) + 1))
    ]
    during = sum(r.before < last for r in records)
    itself = sum(any(d["id"] == r.query[0] for d in r.outcome) for r in wrong)  # type: ignore[union-attr]
    summary = (
        f"{len(records)} lookups ({during} during updates): {len(errors)} raised "
        f"{dict(Counter(type(r.outcome).__name__ for r in errors))}, {len(wrong)} returned a list of no state "
        f"({itself} listing the query article itself)"
    )
    examples = [f"{where(r)}: {r.outcome!r}" for r in errors[:3]]
    examples += [f"{where(r)}: got {[(d['id'], d['score']) for d in r.outcome]}" for r in wrong[:3]]  # type: ignore[union-attr]
    consistent = not errors and not wrong
    assert consistent, summary + "\n" + "\n".join(examples)
    assert during >= 200, f"too few lookups ran during the updates for the test to mean anything: {summary}"


def test_updates_from_two_threads_lose_nothing(base_model: Path, timeline: list[Article]) -> None:
    # Each add reads the current state and swaps in the next: two writers at once must take turns, or one
    # thread's articles would vanish under the other's swap.
    model = Recommender.load(base_model)
    halves = [timeline[300:340:2], timeline[301:340:2]]
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def add_one_by_one(articles: list[Article]) -> None:
        try:
            start.wait()
            for article in articles:
                model.add([article])
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=add_one_by_one, args=(half,)) for half in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIME_LIMIT)
    assert not any(thread.is_alive() for thread in threads) and not failures
    assert len(model) == 340
    assert all(a.id in model for a in timeline[:340])
    assert model.updates_["generation"] == 40
