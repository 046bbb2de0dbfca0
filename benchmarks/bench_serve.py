"""`recommender serve` under load from wrk, each figure beside the same lookups made in-process.

    python benchmarks/bench_serve.py              # --n 100000 --workers 2 --seconds 10 --swap-seconds 60

On loopback, with wrk sharing the machine's cores with the server:
- ``GET /related/{id}`` answered from the store, at 50 and at 4 connections (wrk, 2 threads), ids drawn at
  random from the whole corpus; beside it, ``RelatedStore.related`` in this process;
- ``POST /related`` with a draft of 500 words, at 8 connections; beside it, ``related_to_text`` in this
  process;
- the server's own latency histogram (``/metrics``) for the same requests;
- a swap under load, on the bundled corpus (real text, as ``recommender train`` reads it): for
  ``--swap-seconds``, wrk reads lists (8 connections) while 100 articles are PUT one by one and
  ``recommender train`` then ``recommender precompute`` replace the model and the store, as processes of
  their own. Counted: failed requests of every kind, how long each PUT took to be served by the server
  (either worker), whether every PUT article is still served, from the store, after the swap; beside
  it, the same GETs without the swap.

Each wrk run is bounded in time (``--seconds``); wrk reports latency percentiles (``--latency``) and
counts non-2xx answers and socket errors, which must be zero.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_lookups import percentiles
from synthetic import generate

from recommender import Recommender, RelatedStore, precompute, read_articles
from recommender.corpus import bundled_corpus_path

GET_SCRIPT = """
local ids = {%s}
request = function()
  return wrk.format("GET", "/related/" .. ids[math.random(#ids)] .. "?k=5")
end
"""
POST_SCRIPT = """
local bodies = {%s}
request = function()
  return wrk.format("POST", "/related", {["Content-Type"] = "application/json"}, bodies[math.random(#bodies)])
end
"""


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def wrk(base: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    done = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout

    def ms(label: str) -> float:
        found = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if found is None:
            raise RuntimeError(f"no {label} latency in wrk's output:\n{out}")
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rate.group(1)) if rate else 0.0,
        "requests": float(total.group(1)) if total else 0.0,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "failed": float(bad.group(1) if bad else 0) + (sum(int(g) for g in errors.groups()) if errors else 0),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(base: str, path: str, check: Callable[[Any], bool], timeout: float = 120.0) -> float:
    """Poll ``path`` until ``check`` holds on its JSON answer; the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(base + path, timeout=10) as answer:
                if check(json.loads(answer.read())):
                    return time.monotonic() - started
        except (OSError, ValueError):
            pass
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{path} did not reach the expected state in {timeout:.0f} s")
        time.sleep(0.02)


def http(base: str, path: str, method: str = "GET", body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def serve(model: Path, store: Path, workers: int, source: Path | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """``recommender serve`` of ``model`` and ``store`` on a free port, started and answering: its address.
    ``source``: a folder holding another ``recommender`` package to serve with (an earlier commit's)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).with_name("recommender")), "serve", "--model", str(model)]
    command += ["--store", str(store), "--port", str(port), "--workers", str(workers)]
    env = None if source is None else dict(os.environ, PYTHONPATH=str(source))
    return base, start_server(command, base, env)


def start_server(command: list[str], base: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env
    )
    try:
        wait_for(base, "/health", lambda health: health.get("status") == "ok")
    except BaseException:
        os.killpg(server.pid, signal.SIGTERM)
        raise
    return server


def swap_run(workers: int, seconds: int, puts: int, nice: int = 0) -> None:
    """A `train` + `precompute` swap and ``puts`` PUTs while wrk reads lists for ``seconds`` (see the module)."""
    recommender = str(Path(sys.executable).with_name("recommender"))
    corpus = bundled_corpus_path()
    articles = read_articles(corpus).articles
    rng = np.random.default_rng(2)
    sources = [articles[int(r)] for r in rng.choice(len(articles), size=puts, replace=False)]
    token = "bench-token"
    with tempfile.TemporaryDirectory() as tmp:
        model, store = Path(tmp) / "model.joblib", Path(tmp) / "related.sqlite"
        started = time.perf_counter()
        subprocess.run([recommender, "train", "--model", str(model)], check=True, capture_output=True)
        train_alone = time.perf_counter() - started
        started = time.perf_counter()
        precompute_cmd = [recommender, "precompute", "--model", str(model), "--out", str(store)]
        subprocess.run(precompute_cmd, check=True, capture_output=True)
        precompute_alone = time.perf_counter() - started
        ids = [a.id for a in articles[:: max(1, len(articles) // 2000)]]
        script = Path(tmp) / "get.lua"
        script.write_text(GET_SCRIPT % ", ".join(lua_string(i) for i in ids))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [recommender, "serve", "--model", str(model), "--store", str(store), "--port", str(port)]
        server = start_server(
            [*command, "--workers", str(workers)], base, dict(os.environ, RECOMMENDER_API_TOKEN=token)
        )
        failures: list[str] = []
        delays: list[float] = []
        put_ids: list[str] = []
        events: dict[str, float] = {}
        try:
            wrk(base, script, 4, 2)  # warm-up
            quiet = wrk(base, script, 8, 10)
            loaded: dict[str, dict[str, float]] = {}
            reader = threading.Thread(target=lambda: loaded.update(swap=wrk(base, script, 8, seconds)))
            t0 = time.monotonic()

            def put_all() -> None:
                for n, source in enumerate(sources):
                    while time.monotonic() - t0 < n * (seconds - 5) / puts:
                        time.sleep(0.01)
                    article_id = f"bench-swap-{n}"
                    body = {
                        "title": f"{source.title} (salinan {n})",
                        "body": source.body,
                        "published": source.published,
                    }
                    status, answer = http(base, f"/articles/{article_id}", "PUT", body, token)
                    if status != 200:
                        failures.append(f"PUT {article_id}: {status} {answer!r:.200}")
                        continue
                    put_ids.append(article_id)
                    try:  # served by whichever worker answers, with the article it copies among its related
                        delays.append(
                            wait_for(
                                base,
                                f"/related/{article_id}?k=10",
                                lambda a, s=source: s.id in [r["id"] for r in a["related"]],
                                timeout=10,
                            )
                        )
                    except RuntimeError as exc:
                        failures.append(f"PUT {article_id}: {exc}")

            writer = threading.Thread(target=put_all)
            reader.start()
            writer.start()
            time.sleep(5)
            before = http(base, "/health")[1]["model"]["sha256"]
            events["train started"] = time.monotonic() - t0
            niced = ["nice", "-n", str(nice)] if nice else []
            train = subprocess.run(
                [*niced, recommender, "train", "--model", str(model)], capture_output=True, text=True
            )
            if train.returncode != 0:
                failures.append(f"train: {train.stderr.strip()}")
            events["train done"] = time.monotonic() - t0
            wait_for(base, "/health", lambda h: h["model"]["sha256"] != before)
            events["new model served"] = time.monotonic() - t0
            done = subprocess.run([*niced, *precompute_cmd], capture_output=True, text=True)
            if done.returncode != 0:
                failures.append(f"precompute: {done.stderr.strip()}")
            events["precompute done"] = time.monotonic() - t0
            for _ in range(2 * workers):  # each worker's answer
                wait_for(base, "/health", lambda h: h["store"]["in_use"])
            events["store served again"] = time.monotonic() - t0
            writer.join()
            reader.join()
            events["run ended"] = time.monotonic() - t0
            time.sleep(1.0)  # every worker has looked at the files since the last PUT
            kept = from_store = 0
            for article_id in put_ids:
                try:
                    with urllib.request.urlopen(f"{base}/related/{article_id}", timeout=10) as answer:
                        kept += 1
                        from_store += answer.headers["X-Recommender-Source"] == "store"
                except urllib.error.HTTPError as exc:
                    failures.append(f"after the swap, GET {article_id}: {exc.code} {exc.read()[:200]!r}")
            health = http(base, "/health")[1]
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    swapped = loaded["swap"]
    print()
    print(
        f"swap under load: bundled corpus ({len(articles):,} articles); server: {workers} workers; wrk: 8 connections"
        + (f"; train and precompute under nice -n {nice}" if nice else "")
    )
    print(f"  train alone {train_alone:.1f} s, precompute alone {precompute_alone:.1f} s (before the server started)")
    print("  " + ", ".join(f"{name} at {at:.1f} s" for name, at in events.items()))
    print(f"{'  measure':48} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
    for label, result in (("  GET, no swap (10 s, before)", quiet), (f"  GET during the swap ({seconds} s)", swapped)):
        print(f"{label:48} {result['rps']:8,.0f} {result['p50']:8.2f} {result['p99']:8.2f} {result['failed']:7.0f}")
    print(f"  PUT /articles: {len(put_ids)} of {puts} answered 200; failures: {len(failures)}")
    for failure in failures[:10]:
        print(f"    {failure}")
    if delays:
        ordered = sorted(delays)
        print(
            "  PUT -> served, with its source among its related (either worker): "
            f"median {ordered[len(ordered) // 2] * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
        )
    print(
        f"  after the swap: {kept} of {len(put_ids)} PUT articles served ({from_store} from the store); "
        f"model generation {health['model']['generation']}, store in use: {health['store']['in_use']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--swap-seconds", type=int, default=60, help="the swap run's length (0: skip it)")
    parser.add_argument("--puts", type=int, default=100, help="articles PUT during the swap run")
    parser.add_argument("--only-swap", action="store_true", help="run the swap only")
    parser.add_argument("--nice", type=int, default=0, help="run the swap's train and precompute under nice -n N")
    parser.add_argument(
        "--before",
        type=Path,
        help="also serve the same runs with the recommender package in this folder (an earlier commit's, from "
        "`git archive COMMIT recommender | tar -x -C DIR`), first, for a before/after table",
    )
    parser.add_argument("--now-first", action="store_true", help="with --before: serve this tree's runs first")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    if not args.only_swap:
        load_runs(args)
    if args.swap_seconds:
        swap_run(args.workers, args.swap_seconds, args.puts, args.nice)


def load_runs(args: argparse.Namespace) -> None:
    """The 100k runs: GETs from the store at 50 and 4 connections, drafts at 8."""
    syn = generate(args.n, args.seed)
    model = Recommender().fit_counts(syn.counts, syn.articles)
    rng = np.random.default_rng(1)
    matrix, terms = syn.counts.matrix, syn.counts.terms

    def draft(row: int) -> dict[str, object]:
        words = [terms[t] for t in matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]]
        body = " ".join(words[i % len(words)] for i in range(500))  # a draft of 500 words
        return {"title": syn.articles[row].title, "text": body, "k": 5}

    ids = [syn.articles[int(r)].id for r in rng.choice(args.n, size=2000, replace=False)]
    drafts = [draft(int(r)) for r in rng.choice(args.n, size=200, replace=False)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        model.save(path)
        store_path = Path(tmp) / "related.sqlite"
        precompute(model, store_path, 10)
        store = RelatedStore(store_path)
        get_in = percentiles(lambda i: store.related(ids[i % len(ids)], 5), 2000)
        post_in = percentiles(
            lambda i: model.related_to_text(title=str(drafts[i % 200]["title"]), body=str(drafts[i % 200]["text"])),
            300,
        )
        get_script, post_script = Path(tmp) / "get.lua", Path(tmp) / "post.lua"
        get_script.write_text(GET_SCRIPT % ", ".join(lua_string(i) for i in ids))
        post_script.write_text(POST_SCRIPT % ", ".join(lua_string(json.dumps(d)) for d in drafts))

        sources = [("before", args.before), ("now", None)] if args.before else [("now", None)]
        if args.now_first:
            sources.reverse()
        tables = {}
        for name, source in sources:
            base, server = serve(path, store_path, args.workers, source)
            try:
                wrk(base, get_script, 4, 2)  # warm-up: every worker's tables built, kernels loaded
                wrk(base, post_script, 4, 2)
                tables[name] = [
                    ("GET /related/{id} (store), 50 connections", wrk(base, get_script, 50, args.seconds), get_in),
                    ("GET /related/{id} (store), 4 connections", wrk(base, get_script, 4, args.seconds), get_in),
                    ("POST /related (500-word draft), 8 connections", wrk(base, post_script, 8, args.seconds), post_in),
                ]
                with urllib.request.urlopen(base + "/metrics", timeout=5) as answer:
                    metrics = answer.read().decode()
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)

    print(f"corpus: synthetic, {args.n:,} articles; server: {args.workers} workers; wrk: 2 threads, {args.seconds} s")
    for name, runs in tables.items():
        print()
        print(
            f"{name}: {'measure':40} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}   in-process p50 / p99 ms"
        )
        for label, result, (in_p50, in_p99) in runs:
            print(
                f"{' ' * (len(name) + 2)}{label:40} {result['rps']:8,.0f} {result['p50']:8.2f} {result['p99']:8.2f}"
                f" {result['failed']:7.0f}   {in_p50:.3f} / {in_p99:.3f}"
            )
    count = re.findall(r'recommender_request_seconds_count\{route="([^"]+)"\} ([\d.e+]+)', metrics)
    total = re.findall(r'recommender_request_seconds_sum\{route="([^"]+)"\} ([\d.e+]+)', metrics)
    sums = dict(total)
    print()
    print("the server's own /metrics (all runs, every endpoint, every worker):")
    for route, n in count:
        print(f"  {route:28} {float(n):>10,.0f} requests, mean {float(sums[route]) / float(n) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
