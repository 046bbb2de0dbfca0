"""`recommender serve` as a user starts it: the README's sequence after the quick start (a model, no store
yet), and what it prints before it serves. Real processes: what the command prints and when is the point."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from conftest import SNAKE_ID, copy_model, wait_until
from test_serve import RECOMMENDER, TOKEN, free_port, request


def serve_process(model: Path, store: Path, port: int, token: str | None = TOKEN) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "RECOMMENDER_API_TOKEN"}
    if token is not None:
        env["RECOMMENDER_API_TOKEN"] = token
    command = [RECOMMENDER, "serve", "--model", model, "--store", store, "--port", str(port)]
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)


def read_line(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    return process.stderr.readline().rstrip("\n")


def test_serve_before_any_precompute_answers_from_the_model_then_the_store(model_path: Path, tmp_path: Path) -> None:
    """The README's order: train, then serve with --store (not written yet), then precompute."""
    model = copy_model(model_path, tmp_path / "model")
    store = tmp_path / "related.sqlite"
    port = free_port()
    process = serve_process(model, store, port)
    try:
        said = [read_line(process) for _ in range(3)]
        assert said[0].startswith("Warning: RECOMMENDER_API_TOKEN has 12 characters: use 16 or more"), said
        assert said[1].startswith(f"No store at {store} yet: the model answers every lookup"), said
        # Said once it listens, with the model loaded: the first request is answered.
        assert said[2].startswith(f"Serving {model} on http://127.0.0.1:{port} (1 worker(s), writes on"), said
        base = f"http://127.0.0.1:{port}"
        answer = request(base, f"/related/{SNAKE_ID}?k=5")
        assert answer.status == 200 and answer.headers["x-recommender-source"] == "model"
        assert len(answer.json()["related"]) == 5
        assert request(base, "/health").json()["store"]["in_use"] is False

        put = request(
            base,
            "/articles/baru-1",
            method="PUT",
            body={"title": "Ular berkaki ditemukan di Riau", "body": "Ular berkaki di lokasi karhutla Riau."},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert put.status == 200, put.body  # a write before any store changes the model alone
        assert request(base, "/related/baru-1?k=3").status == 200

        done = subprocess.run(
            [RECOMMENDER, "precompute", "--model", model, "--out", store, "-k", "10"], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert wait_until(
            lambda: request(base, f"/related/{SNAKE_ID}?k=5").headers["x-recommender-source"] == "store", 30
        )
        stored = request(base, "/related/baru-1?k=3")
        assert stored.headers["x-recommender-source"] == "store" and stored.json()["related"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_says_serving_only_once_it_serves(model_path: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-model" / "model.joblib"
    done = subprocess.run(
        [RECOMMENDER, "serve", "--model", missing, "--port", str(free_port())], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip() == f"Error: no model at {missing}: train one first with `recommender train`"

    model = copy_model(model_path, tmp_path / "model")
    with socket.socket() as taken:  # another server has the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [RECOMMENDER, "serve", "--model", model, "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1, done.stderr
    assert "Serving" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"Error: could not serve on http://127.0.0.1:{port}: see the message above (port in use?)"
    )
