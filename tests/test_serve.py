"""`recommender serve`: the route contracts (lookups, drafts, errors, auth, validation, ETag/304, body limits,
fast paths against the full routes, writes) through the application in this process (FastAPI's TestClient,
its lifespan run as a worker runs it); real server processes on 127.0.0.1 only where processes are the
point: raw sockets and chunked bodies, another process's update, several workers, a retrain swap under
load, and the PHP, WordPress and JavaScript clients of examples/ run by `php` and `node`."""

from __future__ import annotations

import gc
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLE, SNAKE_ID, copy_model, stored_lists
from starlette.testclient import TestClient
from typer.testing import CliRunner

from recommender import Article, Recommender, Updater, precompute
from recommender.cli import app
from recommender.serve import Query, ServeSettings, Service, create_app

ROOT = Path(__file__).resolve().parent.parent
RECOMMENDER = Path(sys.executable).with_name("recommender")
TOKEN = "s3cret-token"


@dataclass(frozen=True)
class Server:
    """A server of ``model`` and ``store``: a real process at ``base`` (a URL), or the application in this
    process (``base`` its TestClient), which :func:`request` reaches alike."""

    base: Any
    model: Path
    store: Path
    process: subprocess.Popen[bytes] | None = None


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(
    base: Any, path: str, *, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> Answer:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    if isinstance(base, TestClient):  # the application in this process
        sent = {**({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})}
        answer = base.request(method, path, content=data, headers=sent)
        return Answer(answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, answer.content)
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def start(
    model: Path, store: Path, directory: Path, *, token: str | None, max_age: int = 30, workers: int = 1
) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RECOMMENDER_API_TOKEN"}
    if token is not None:
        env["RECOMMENDER_API_TOKEN"] = token
    with open(directory / f"server-{port}.log", "wb") as log:  # the server keeps its own copy of the file
        process = subprocess.Popen(
            [
                RECOMMENDER,
                "serve",
                "--model",
                model,
                "--store",
                store,
                "--port",
                str(port),
                "--max-age",
                str(max_age),
                "--workers",
                str(workers),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, (directory / f"server-{port}.log").read_text()
        try:
            if request(base, "/health").status == 200:
                return Server(base, model, store, process)
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("the server did not answer /health within 60 s")


def stop(server: Server) -> None:
    assert server.process is not None
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


def serving_a_copy(model_path: Path, directory: Path, token: str = TOKEN) -> Iterator[Server]:
    """A server with writes on (``token``), on a copy of the model at ``model_path`` and its store (k 10),
    stopped after."""
    model = copy_model(model_path, directory / "model")
    store = directory / "related.sqlite"
    precompute(Recommender.load(model), store, k=10)
    server = start(model, store, directory, token=token)
    yield server
    stop(server)


@pytest.fixture(scope="module")
def served(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The route contracts' server: the application in this process (its lifespan run: the model loaded and
    the files watched, as a worker does), writes on, on a copy of the model and its store (k 10)."""
    directory = tmp_path_factory.mktemp("serve")
    model = copy_model(model_path, directory / "model")
    store = directory / "related.sqlite"
    precompute(Recommender.load(model), store, k=10)
    application = create_app(ServeSettings(model=model, store=store, token=TOKEN, max_age=30))
    with TestClient(application, follow_redirects=False) as client:
        yield Server(client, model, store)
    gc.unfreeze()  # the lifespan froze the collector's objects, as a worker does: this process goes on


@pytest.fixture(scope="module")
def process_served(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server process: for what only a process shows (raw sockets, chunked bodies, another process's
    update landing while it serves)."""
    yield from serving_a_copy(model_path, tmp_path_factory.mktemp("serve-process"))


def without_similarity(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "similarity"} for r in results]


def test_a_lookup_by_id_is_the_cli_json_from_the_store(served: Server) -> None:
    answer = request(served.base, f"/related/{SNAKE_ID}?k=5")
    assert answer.status == 200 and answer.headers["x-recommender-source"] == "store"
    cli = CliRunner().invoke(app, ["related", SNAKE_ID, "-k", "5", "--json", "--model", str(served.model)])
    assert cli.exit_code == 0, cli.output
    expected = without_similarity([json.loads(line) for line in cli.stdout.splitlines()])
    assert answer.json() == {"id": SNAKE_ID, "related": expected}
    assert len(expected) == 5


@pytest.mark.parametrize("k", [1, 5, 10])
def test_the_store_and_the_model_give_identical_lists(served: Server, k: int) -> None:
    model = Recommender.load(served.model)
    for article_id in [model.ids_[i] for i in range(0, 380, 19)]:
        stored = request(served.base, f"/related/{article_id}?k={k}")
        # An exclude of an id in no list needs the model, and changes nothing.
        live = request(served.base, f"/related/{article_id}?k={k}&exclude=no-such-id")
        assert (stored.headers["x-recommender-source"], live.headers["x-recommender-source"]) == ("store", "model")
        assert stored.json() == live.json()
        assert stored.json()["related"] == without_similarity([r.to_dict() for r in model.related(article_id, k)])


@pytest.mark.parametrize("query", ["", "?k=3", "?k=10"])
def test_the_fast_path_answers_as_the_full_route(served: Server, query: str) -> None:
    # A lookup with no parameter but k skips the framework; one with a parameter at its default does not.
    fast = request(served.base, f"/related/{SNAKE_ID}{query}")
    full = request(served.base, f"/related/{SNAKE_ID}{query or '?'}{'&' if query else ''}min_results=0")
    assert fast.status == full.status == 200
    assert fast.body == full.body and fast.headers["x-recommender-source"] == full.headers["x-recommender-source"]
    for name in ("etag", "cache-control", "content-type"):
        assert fast.headers[name] == full.headers[name]
    assert request(served.base, "/related/no-such-id?k=3").json()["error"]["code"] == "unknown_article"
    assert request(served.base, f"/related/{SNAKE_ID}?k=0").status == 422
    assert request(served.base, f"/related/{SNAKE_ID}?k=11").headers["x-recommender-source"] == "model"


def test_filters_are_answered_by_the_model(served: Server) -> None:
    answer = request(served.base, f"/related/{SNAKE_ID}?k=3&section=berita&explain=true")
    assert answer.status == 200 and answer.headers["x-recommender-source"] == "model"
    related = answer.json()["related"]
    assert all(r["section"] == "berita" and r["why"] and "similarity" in r for r in related)


@pytest.mark.parametrize(
    ("path", "status", "code", "message"),
    [
        ("/related/no-such-id", 404, "unknown_article", "unknown article id 'no-such-id'"),
        (f"/related/{SNAKE_ID}?k=0", 422, "invalid_parameter", "k must be a whole number from 1 to 1,000, got 0"),
        (f"/related/{SNAKE_ID}?k=1001", 422, "invalid_parameter", "k must be a whole number from 1 to 1,000"),
        (f"/related/{SNAKE_ID}?k=ten", 422, "invalid_parameter", "k: Input should be a valid integer"),
        (f"/related/{SNAKE_ID}?after=yesterday", 422, "invalid_parameter", "after: unparseable date 'yesterday'"),
        (f"/related/{SNAKE_ID}?section=gosip", 422, "invalid_parameter", "unknown section 'gosip'"),
        (f"/related/{SNAKE_ID}?diversity=2", 422, "invalid_parameter", "diversity must be between 0 and 1"),
    ],
)
def test_bad_requests_are_json_errors(served: Server, path: str, status: int, code: str, message: str) -> None:
    answer = request(served.base, path)
    assert answer.status == status and answer.headers["content-type"] == "application/json"
    error = answer.json()["error"]
    assert error["code"] == code and error["message"].startswith(message)


def test_a_draft_is_looked_up_by_the_model(served: Server) -> None:
    draft = {"title": "Ular berkaki tiga", "text": "Petugas karhutla di Riau menemukan ular berkaki tiga.", "k": 3}
    answer = request(served.base, "/related", method="POST", body=draft)
    assert answer.status == 200
    model = Recommender.load(served.model)
    expected = model.related_to_text(title=draft["title"], body=draft["text"], k=3)
    assert answer.json() == {"related": without_similarity([r.to_dict() for r in expected])}
    html = request(served.base, "/related.html", method="POST", body=draft)
    assert html.status == 200 and html.body.decode().startswith('<aside class="related-articles">')


def test_the_draft_fast_path_answers_as_the_full_route(served: Server) -> None:
    # POST /related is answered without the framework; POST /related.html goes through it: same lists.
    draft = {"title": "Ular berkaki tiga", "text": "Petugas karhutla di Riau menemukan ular.", "k": 4, "explain": True}
    fast = request(served.base, "/related", method="POST", body=draft).json()["related"]
    html = request(served.base, "/related.html", method="POST", body=draft).body.decode()
    assert [r["url"] for r in fast] == [line.split('"')[1] for line in html.splitlines() if "<li>" in line]
    assert all(r["why"] and "similarity" in r for r in fast)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 422, ""),
        ({"title": "Ular", "colour": "red"}, 422, "unknown field 'colour'"),
        ({"title": "", "text": " "}, 422, "give a title or a body"),
        ({"title": "Ular", "k": 0}, 422, "k must be a whole number"),
    ],
)
def test_bad_drafts_are_json_errors(served: Server, body: Any, status: int, message: str) -> None:
    answer = request(served.base, "/related", method="POST", body=body)
    assert answer.status == status
    assert answer.json()["error"]["message"].startswith(message)


def headers_only(base: str, method: str, path: str, headers: dict[str, str]) -> Answer:
    """A request whose headers are sent and whose body is not: the answer is read before any of it goes out
    (sending it while the server refuses it would race the server's close: a broken pipe, now and then)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())


@pytest.mark.parametrize(("method", "path"), [("POST", "/related"), ("PUT", "/articles/big")])
def test_a_body_over_the_limit_is_refused_by_its_length(process_served: Server, method: str, path: str) -> None:
    length = {"Content-Length": "1000001", "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    answer = headers_only(process_served.base, method, path, length)
    assert answer.status == 413
    assert answer.json()["error"] == {
        "code": "too_large",
        "message": "the request body has 1,000,001 bytes; at most 1,000,000",
    }


def chunked(base: str, method: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    """A request whose body is sent in chunks, with no Content-Length."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        pieces = (body[i : i + 65_536] for i in range(0, len(body), 65_536))
        conn.request(method, path, body=pieces, headers={"Content-Type": "application/json", **(headers or {})},
                     encode_chunked=True)  # fmt: skip
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/related"), ("POST", "/related.html"), ("PUT", "/articles/big"), ("POST", "/articles")],
)
def test_a_chunked_body_over_the_limit_is_refused(process_served: Server, method: str, path: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    text = json.dumps({"title": "Ular", "body": "ular " * 250_000}).encode()  # 1.25 MB
    answer = chunked(process_served.base, method, path, text, auth)
    assert answer.status == 413
    assert answer.json()["error"] == {
        "code": "too_large",
        "message": "the request body has more than 1,000,000 bytes; at most 1,000,000",
    }
    assert request(process_served.base, "/related/big").status == 404  # nothing was added


def test_a_chunked_body_under_the_limit_is_answered(process_served: Server) -> None:
    draft = {"title": "Ular berkaki tiga", "text": "Petugas karhutla di Riau menemukan ular.", "k": 3}
    answer = chunked(process_served.base, "POST", "/related", json.dumps(draft).encode())
    assert answer.status == 200
    assert answer.json() == request(process_served.base, "/related", method="POST", body=draft).json()


def test_lookups_carry_an_etag_and_answer_304(served: Server) -> None:
    first = request(served.base, f"/related/{SNAKE_ID}")
    assert first.headers["cache-control"] == "public, max-age=30"
    again = request(served.base, f"/related/{SNAKE_ID}", headers={"If-None-Match": first.headers["etag"]})
    assert again.status == 304 and again.body == b""
    html = request(served.base, f"/related/{SNAKE_ID}.html", headers={"If-None-Match": '"other"'})
    assert html.status == 200 and html.headers["etag"] == first.headers["etag"]


def test_the_html_box_escapes_as_render_related(served: Server) -> None:
    from recommender import render_related

    answer = request(served.base, f"/related/{SNAKE_ID}.html?k=4")
    model = Recommender.load(served.model)
    assert answer.body.decode() == render_related(model.related(SNAKE_ID, 4))


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [({}, 401, "unauthorized"), ({"Authorization": "Bearer wrong"}, 403, "forbidden")],
)
def test_writes_need_the_token(served: Server, headers: dict[str, str], status: int, code: str) -> None:
    before = request(served.base, "/health").json()["model"]
    answer = request(served.base, "/articles/x-1", method="PUT", body={"title": "A", "body": "B"}, headers=headers)
    assert answer.status == status and answer.json()["error"]["code"] == code
    assert request(served.base, "/health").json()["model"] == before


def test_writes_are_off_without_a_token(model_path: Path, tmp_path: Path) -> None:
    model = copy_model(model_path, tmp_path / "model")
    store = tmp_path / "related.sqlite"
    precompute(Recommender.load(model), store, k=5)
    server = start(model, store, tmp_path, token=None)
    try:
        answer = request(
            server.base, "/articles/x-1", method="PUT", body={"title": "A"}, headers={"Authorization": "Bearer x"}
        )
        assert answer.status == 403 and answer.json()["error"]["code"] == "writes_disabled"
        assert "RECOMMENDER_API_TOKEN" in answer.json()["error"]["message"]
    finally:
        stop(server)


def stored_ids(store: Path) -> set[str]:
    with sqlite3.connect(store) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM articles")}


def test_put_and_delete_change_the_model_and_the_store(served: Server) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    article = {"title": "Ular berkaki tiga muncul lagi di Riau", "body": "Petugas karhutla menemukan ular berkaki."}
    bad = request(served.base, "/articles/serve-1", method="PUT", body={"body": "no title"}, headers=auth)
    assert bad.status == 422 and "missing required field title" in bad.json()["error"]["message"]
    assert "serve-1" not in stored_ids(served.store)

    added = request(served.base, "/articles/serve-1", method="PUT", body=article, headers=auth)
    assert added.status == 200 and added.json()["added"] == ["serve-1"]
    assert "serve-1" in stored_ids(served.store)
    own = request(served.base, "/related/serve-1?k=3")
    assert own.status == 200 and own.headers["x-recommender-source"] == "store"
    assert SNAKE_ID in [r["id"] for r in request(served.base, "/related/serve-1?k=10").json()["related"]]

    batch = request(
        served.base, "/articles", method="POST", body={"articles": [{"id": "serve-2", **article}]}, headers=auth
    )
    assert batch.status == 200 and batch.json()["added"] == ["serve-2"]
    for article_id in ("serve-1", "serve-2"):
        removed = request(served.base, f"/articles/{article_id}", method="DELETE", headers=auth)
        assert removed.status == 200 and removed.json()["removed"] == [article_id]
        assert request(served.base, f"/related/{article_id}").status == 404
    assert not {"serve-1", "serve-2"} & stored_ids(served.store)


def test_an_update_from_another_process_is_served_within_a_second(process_served: Server, tmp_path: Path) -> None:
    before = request(process_served.base, "/health").json()
    corpus = tmp_path / "new.jsonl"
    corpus.write_text(json.dumps({"id": "cli-1", "title": "Ular berkaki", "body": "Ular berkaki tiga."}) + "\n")
    subprocess.run(
        [RECOMMENDER, "add", corpus, "--model", process_served.model, "--store", process_served.store],
        check=True,
        capture_output=True,
    )
    added_at = time.monotonic()
    while request(process_served.base, "/related/cli-1").status != 200:
        assert time.monotonic() - added_at < 1.0, "the server still served the old model after a second"
        time.sleep(0.02)
    after = request(process_served.base, "/health").json()
    assert after["model"]["generation"] == before["model"]["generation"] + 1 and after["etag"] != before["etag"]
    assert after["store"]["in_use"] is True
    subprocess.run(
        [RECOMMENDER, "remove", "cli-1", "--model", process_served.model, "--store", process_served.store], check=True
    )


def test_a_retrain_and_its_precompute_under_writes_and_reads_fail_no_request(tmp_path: Path) -> None:
    """Two workers serve while articles are PUT, and `recommender train` then `precompute` replace the model
    and the store (real processes): no request fails, every PUT is served within two seconds and is still
    there after the swap, and the final store is a full precompute of the final model."""
    model, store = tmp_path / "model.joblib", tmp_path / "related.sqlite"
    subprocess.run([RECOMMENDER, "train", SAMPLE, "--model", model], check=True, capture_output=True)
    subprocess.run([RECOMMENDER, "precompute", "--model", model, "--out", store], check=True, capture_output=True)
    server = start(model, store, tmp_path, token=TOKEN, workers=2)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    sources = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()[:60]]
    failures: list[str] = []
    put_ids: list[str] = []
    done = threading.Event()

    def read() -> None:
        i = 0
        while not done.is_set():
            article_id = sources[i % len(sources)]["id"]
            answer = request(server.base, f"/related/{article_id}?k=5")
            if answer.status != 200:
                failures.append(f"GET {article_id}: {answer.status} {answer.body[:200]!r}")
            i += 1

    def write() -> None:
        for n, source in enumerate(sources[:40]):
            article_id = f"swap-{n}"
            body = {
                "title": source["title"] + f" (salinan {n})",
                "body": source["body"],
                "published": source["published"],
            }
            answer = request(server.base, f"/articles/{article_id}", method="PUT", body=body, headers=auth)
            if answer.status != 200:
                failures.append(f"PUT {article_id}: {answer.status} {answer.body[:200]!r}")
                continue
            put_ids.append(article_id)
            landed = time.monotonic()
            while request(server.base, f"/related/{article_id}").status != 200:  # either worker may answer
                if time.monotonic() - landed > 2.0:
                    failures.append(f"PUT {article_id}: not served 2 s after it landed")
                    break
                time.sleep(0.02)
            time.sleep(0.05)

    try:
        threads = [threading.Thread(target=read), threading.Thread(target=write)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        before = request(server.base, "/health").json()
        subprocess.run([RECOMMENDER, "train", SAMPLE, "--model", model], check=True, capture_output=True)
        subprocess.run([RECOMMENDER, "precompute", "--model", model, "--out", store], check=True, capture_output=True)
        threads[1].join(timeout=120)
        done.set()
        threads[0].join(timeout=30)
        assert failures == []
        assert len(put_ids) == 40
        time.sleep(1.0)  # both workers have looked at the files again
        for _ in range(4):  # answers from both workers
            health = request(server.base, "/health").json()
            assert health["model"]["sha256"] != before["model"]["sha256"]  # the retrained model
            assert health["store"]["in_use"] is True
        for article_id in put_ids:  # none lost to the train, all in the precomputed store
            answer = request(server.base, f"/related/{article_id}?k=5")
            assert (answer.status, answer.headers["x-recommender-source"]) == (200, "store"), article_id
        full = tmp_path / "full.sqlite"
        subprocess.run([RECOMMENDER, "precompute", "--model", model, "--out", full], check=True, capture_output=True)
        assert stored_lists(store) == stored_lists(full)
    finally:
        done.set()
        stop(server)


def test_metrics_count_requests_and_time_them(served: Server) -> None:
    request(served.base, f"/related/{SNAKE_ID}")
    text = request(served.base, "/metrics").body.decode()
    assert 'recommender_requests_total{route="/related/{article_id}",status="200"}' in text
    assert 'recommender_request_seconds_bucket{le="0.005",route="/related/{article_id}"}' in text
    assert "recommender_reloads_total" in text


def counted(base: Any, status: int) -> float:
    page = request(base, "/metrics").body.decode()
    found = re.search(
        rf'^recommender_requests_total{{route="/related/{{article_id}}",status="{status}"}} (\S+)$', page, re.M
    )
    return float(found.group(1)) if found else 0.0


def test_a_revalidation_the_fast_path_answers_is_counted_as_a_304(served: Server) -> None:
    first = request(served.base, f"/related/{SNAKE_ID}")
    assert first.headers["x-recommender-source"] == "store"  # the fast path's answer
    ok, unchanged = counted(served.base, 200), counted(served.base, 304)
    again = request(served.base, f"/related/{SNAKE_ID}", headers={"If-None-Match": first.headers["etag"]})
    assert again.status == 304
    assert (counted(served.base, 200), counted(served.base, 304)) == (ok, unchanged + 1)


def test_two_workers_count_every_request_in_one_metrics_page(model_path: Path, tmp_path: Path) -> None:
    model = copy_model(model_path, tmp_path / "model")
    store = tmp_path / "related.sqlite"
    precompute(Recommender.load(model), store, k=10)
    server = start(model, store, tmp_path, token=None, workers=2)
    try:
        for _ in range(40):  # a new connection each: the kernel spreads them over both workers
            assert request(server.base, f"/related/{SNAKE_ID}?k=3").status == 200
        # Pages from either worker (a new connection each): each counts both workers' requests.
        pages = [request(server.base, "/metrics").body.decode() for _ in range(6)]
        for page in pages:
            counted = re.search(
                r'^recommender_requests_total\{route="/related/\{article_id\}",status="200"\} (\S+)$', page, re.M
            )
            timed = re.search(
                r'^recommender_request_seconds_count\{route="/related/\{article_id\}"\} (\S+)$', page, re.M
            )
            assert counted is not None and float(counted.group(1)) == 40, page
            assert timed is not None and float(timed.group(1)) == 40
    finally:
        stop(server)


@pytest.mark.parametrize(
    "client",
    [
        pytest.param(["php", str(ROOT / "examples" / "client.php")], id="php-curl"),
        pytest.param(["php", str(ROOT / "tests" / "data" / "wp_shim.php")], id="wordpress"),
        pytest.param(["node", str(ROOT / "examples" / "client.mjs")], id="javascript"),
    ],
)
def test_the_readme_clients_print_the_box(process_served: Server, client: list[str]) -> None:
    if shutil.which(client[0]) is None:
        pytest.fail(f"{client[0]} is not installed: .ci/run installs it")
    done = subprocess.run([*client, process_served.base, SNAKE_ID], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    expected = request(process_served.base, f"/related/{SNAKE_ID}?k=5").json()["related"]
    printed = done.stdout.replace("\n", "")
    assert printed.startswith('<aside class="related-articles"><h2>Berita Lainnya</h2><ul>')
    for item in expected:
        assert item["url"] in printed
    assert printed.count("<li>") == len(expected) == 5
    # The README shows the PHP and JavaScript clients as they are tested, docs/http.md the WordPress snippet.
    for name, page in (("client.php", "README.md"), ("wordpress.php", "docs/http.md"), ("client.mjs", "README.md")):
        shown = (ROOT / page).read_text(encoding="utf-8")
        assert (ROOT / "examples" / name).read_text(encoding="utf-8").strip() in shown


TWIN = Article(id="twin-1", title="Ular berkaki tiga ditemukan warga Riau", body="Ular berkaki tiga di Riau.")


def in_process(model_path: Path, directory: Path) -> tuple[Path, Path, Service]:
    """A copy of the model, its store, and a worker's Service that has loaded them."""
    model = copy_model(model_path, directory / "model")
    store = directory / "related.sqlite"
    precompute(Recommender.load(model), store, k=10)
    service = Service(ServeSettings(model=model, store=store))
    assert service.refresh()
    return model, store, service


def test_a_snapshot_whose_store_was_rewritten_answers_from_its_own_model(model_path: Path, tmp_path: Path) -> None:
    """Between another process's write and the worker's next look at the files, a lookup is answered by
    the snapshot's model, never from lists newer than the snapshot (and its ETag)."""
    model, store, service = in_process(model_path, tmp_path)
    snapshot = service.current()
    before, source = service.lookup(snapshot, SNAKE_ID, Query(k=10))
    assert source == "store"
    Updater(model, store).add([TWIN])  # another process: the store now lists the twin under the snake story
    during, source = service.lookup(snapshot, SNAKE_ID, Query(k=10))
    assert source == "model" and [r.id for r in during] == [r.id for r in before]
    assert service.refresh() and service.current().etag != snapshot.etag
    after, source = service.lookup(service.current(), SNAKE_ID, Query(k=10))
    assert source == "store" and "twin-1" in [r.id for r in after]


def served_lists(service: Service, ids: list[str]) -> list[list[str]]:
    snapshot = service.current()
    return [[r.id for r in snapshot.model.related(i, 5)] for i in ids]


def test_another_process_s_update_is_folded_in_from_the_journal(model_path: Path, tmp_path: Path) -> None:
    model, store, service = in_process(model_path, tmp_path)
    first = service.current()
    assert first.model.fitted_state().memo.peek("titles") is not None  # built before it was served
    other = Updater(model, store)  # another process's updater
    other.add([TWIN])
    other.remove([SNAKE_ID])
    assert service.refresh()
    replayed = service.current()
    state = replayed.model.fitted_state()
    assert state.updates.generation == 2 and replayed.store_key is not None  # the store is in use
    assert state.memo.peek("titles") is not None  # carried over by the folds: the model was not loaded again
    loaded = Recommender.load(model)
    ids = ["twin-1", *(str(loaded.ids_[i]) for i in range(0, 30, 3))]
    assert served_lists(service, ids) == [[r.id for r in loaded.related(i, 5)] for i in ids]

    precompute(loaded, store, k=10)  # only the store changes: the model served is kept
    assert service.refresh() and service.current().model is replayed.model
    assert service.current().etag != replayed.etag


def test_a_batch_missing_from_the_journal_loads_the_model_again(model_path: Path, tmp_path: Path) -> None:
    model = copy_model(model_path, tmp_path / "model")
    service = Service(ServeSettings(model=model))
    assert service.refresh()
    Updater(model).add([TWIN])
    model.with_suffix(".journal.jsonl").unlink()
    assert service.refresh()
    state = service.current().model.fitted_state()
    assert state.updates.generation == 1 and "twin-1" in state.rows()
    assert state.memo.peek("titles") is not None  # loaded, and its tables built before it was served


# --- the HTTP edge, in this process -----------------------------------------------------------------------

AUTH = {"Authorization": f"Bearer {TOKEN}"}
DRAFT = {"title": "Ular berkaki tiga", "text": "Petugas karhutla di Riau menemukan ular berkaki tiga."}
ARTICLE = {"title": "Ular berkaki tiga muncul lagi di Riau", "body": "Petugas karhutla menemukan ular berkaki."}


def app_on_a_copy(model_path: Path, directory: Path) -> Any:
    """The server's application, writes on, on a copy of the model at ``model_path`` and its store (k 10)."""
    model = copy_model(model_path, directory / "model")
    store = directory / "related.sqlite"
    precompute(Recommender.load(model), store, k=10)
    return create_app(ServeSettings(model=model, store=store, token=TOKEN))


@pytest.fixture(scope="module")
def edge(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The application in this process, its lifespan run (the model loaded, as a worker loads it)."""
    with TestClient(app_on_a_copy(model_path, tmp_path_factory.mktemp("edge")), follow_redirects=False) as client:
        yield client
    gc.unfreeze()  # the lifespan froze the collector's objects, as a worker does: this process goes on


@pytest.mark.parametrize("route", ["/related", "/related.html"])
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("published", 20190220, "published: Input should be a valid string"),
        ("section", ["berita"], "section: Input should be a valid string"),
        ("after", 5, "after: Input should be a valid string"),
        ("exclude", "kompas-60ddcf82", "exclude: Input should be a valid array"),  # not split into characters
        ("no_newer", "false", "no_newer: Input should be a valid boolean"),  # not taken as true
        ("explain", 1, "explain: Input should be a valid boolean"),
        ("k", True, "k: Input should be a valid integer"),
        ("k", 3.5, "k: Input should be a valid integer"),
        ("diversity", "0.5", "diversity: Input should be a valid number"),
        ("title", None, "title: Input should be a valid string"),
        ("published", "yesterday", "published: unparseable date 'yesterday'"),
        ("before", "2019-13-45", "before: unparseable date '2019-13-45'"),
    ],
)
def test_every_draft_field_is_strictly_typed(
    edge: TestClient, route: str, field: str, value: Any, message: str
) -> None:
    answer = edge.post(route, json={**DRAFT, field: value})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_parameter"
    assert answer.json()["error"]["message"].startswith(message)


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/related"), ("POST", "/related.html"), ("PUT", "/articles/deep"), ("POST", "/rules")]
)
def test_a_body_nested_too_deep_is_refused(edge: TestClient, method: str, path: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    answer = edge.request(method, path, content=deep, headers=AUTH | {"Content-Type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["error"] == {
        "code": "invalid_parameter",
        "message": "the JSON body nests more than 32 levels deep",
    }


def test_brackets_in_text_do_not_nest_and_32_levels_are_read(edge: TestClient) -> None:
    assert edge.post("/related", json={**DRAFT, "text": DRAFT["text"] + " [{" * 100}).status_code == 200
    nested: Any = "x"
    for _ in range(31):
        nested = [nested]
    answer = edge.post("/related", json={**DRAFT, "exclude": nested})  # the object and 31 arrays: read
    assert answer.status_code == 422 and answer.json()["error"]["message"].startswith("exclude.0: ")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/no-such-page", None, 404, "not_found"),
        ("DELETE", "/health", None, 405, "method_not_allowed"),
        ("GET", "/related", None, 405, "method_not_allowed"),
        ("POST", "/related.html", b"{not json", 422, "invalid_parameter"),
        ("POST", "/related.html", b"\xff", 422, "invalid_parameter"),
        ("PUT", "/articles/x-1", b"{not json", 422, "invalid_parameter"),
        ("PUT", "/articles/x-1", b"\xff", 400, "bad_request"),
    ],
)
def test_every_error_is_the_documented_envelope(
    edge: TestClient, method: str, path: str, body: bytes | None, status: int, code: str
) -> None:
    answer = edge.request(method, path, content=body, headers=AUTH | {"Content-Type": "application/json"})
    assert answer.status_code == status and answer.headers["content-type"] == "application/json"
    assert list(answer.json()) == ["error"] and answer.json()["error"]["code"] == code
    assert answer.json()["error"]["message"]
    if status == 405:
        assert answer.headers["allow"] in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    "path",
    [
        f"/related/{SNAKE_ID}",  # from the store, without the framework
        f"/related/{SNAKE_ID}?k=3&section=berita",  # from the model
        f"/related/{SNAKE_ID}.html",
        "/health",
        f"/?id={SNAKE_ID}",
        "/docs",
    ],
)
def test_head_answers_as_get_without_a_body(edge: TestClient, path: str) -> None:
    got, head = edge.get(path), edge.head(path)
    assert head.status_code == got.status_code == 200 and head.content == b"" and got.content
    for name in ("content-length", "content-type", "etag", "cache-control", "x-recommender-source"):
        assert head.headers.get(name) == got.headers.get(name), name


def test_an_id_with_a_slash_is_put_looked_up_and_removed(edge: TestClient) -> None:
    put = edge.put("/articles/riau%2Fular-1", json=ARTICLE, headers=AUTH)
    assert put.status_code == 200 and put.json()["added"] == ["riau/ular-1"]
    found = edge.get("/related/riau%2Fular-1?k=3")
    assert found.status_code == 200 and found.json()["id"] == "riau/ular-1" and len(found.json()["related"]) == 3
    box = edge.get("/related/riau/ular-1.html?k=3")
    assert box.status_code == 200 and box.text.startswith('<aside class="related-articles">')
    page = edge.get("/?id=riau%2Fular-1")
    assert page.status_code == 200 and "<code>riau/ular-1</code>" in page.text
    removed = edge.delete("/articles/riau%2Fular-1", headers=AUTH)
    assert removed.status_code == 200 and removed.json()["removed"] == ["riau/ular-1"]
    assert edge.get("/related/riau%2Fular-1").json()["error"]["code"] == "unknown_article"


@pytest.mark.parametrize("path", ["/articles/berita-1.html", "/articles/berita%00-1", "/articles/berita%0D%0A-1"])
def test_an_id_no_route_could_serve_is_refused(edge: TestClient, path: str) -> None:
    answer = edge.put(path, json=ARTICLE, headers=AUTH)
    assert answer.status_code == 422 and "field 'id'" in answer.json()["error"]["message"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_nothing_from_another_host(edge: TestClient, page: str) -> None:
    answer = edge.get(page)
    assert answer.status_code == 200 and not re.search(r"https?://", answer.text)
    assets = re.findall(r'(?:src|href)="([^"]+)"', answer.text)
    assert len(assets) >= 2 and all(a.startswith("/") and not a.startswith("//") for a in assets)
    for asset in assets:
        assert edge.get(asset).status_code == 200, asset


def test_a_short_write_token_is_warned_about(tmp_path: Path) -> None:
    from recommender.serve import token_warning

    warning = token_warning(ServeSettings(model=tmp_path / "model.joblib", token=TOKEN))
    assert warning is not None and warning.startswith("RECOMMENDER_API_TOKEN has 12 characters: use 16 or more")
    assert token_warning(ServeSettings(model=tmp_path / "model.joblib", token="x" * 16)) is None
    assert token_warning(ServeSettings(model=tmp_path / "model.joblib")) is None  # writes off


def test_wrong_tokens_are_rate_limited_per_address(model_path: Path, tmp_path: Path) -> None:
    """Wrong API tokens and wrong logins count together; after 5 from one address, that address waits (429),
    even with the right token, and another does not."""
    application = app_on_a_copy(model_path, tmp_path)
    wrong = {"Authorization": "Bearer not-the-token"}
    try:
        with TestClient(application, follow_redirects=False) as guesser:
            for _ in range(3):
                assert guesser.put("/articles/x-1", json=ARTICLE, headers=wrong).status_code == 403
            for _ in range(2):
                assert guesser.post("/login", data={"token": "not-the-token", "next": "/"}).status_code == 403
            for headers in (wrong, AUTH):
                answer = guesser.put("/articles/x-1", json=ARTICLE, headers=headers)
                assert answer.status_code == 429 and answer.json()["error"]["code"] == "rate_limited"
                assert 55 <= int(answer.headers["retry-after"]) <= 60
            login = guesser.post("/login", data={"token": TOKEN, "next": "/"})
            assert login.status_code == 429 and "Too many wrong tokens" in login.text
            assert "set-cookie" not in login.headers and 55 <= int(login.headers["retry-after"]) <= 60
            other = TestClient(application, client=("192.0.2.7", 50000))  # another address: its own count
            assert other.get("/rules", headers=AUTH).status_code == 200
    finally:
        gc.unfreeze()


def test_a_throttled_address_tries_again_once_its_oldest_failure_is_a_window_old() -> None:
    from recommender.editor import Throttle

    now = [0.0]
    throttle = Throttle(limit=5, window=60.0, clock=lambda: now[0])
    for second in range(5):
        now[0] = float(second)
        assert throttle.wait("198.51.100.1") == 0
        throttle.failed("198.51.100.1")
    assert throttle.wait("198.51.100.1") == 56 and throttle.wait("198.51.100.2") == 0
    now[0] = 60.0  # the failure at 0 s has aged out: one more try
    assert throttle.wait("198.51.100.1") == 0
    throttle.failed("198.51.100.1")
    assert throttle.wait("198.51.100.1") == 1  # until the one at 1 s ages out
