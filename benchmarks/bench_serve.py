"""`recommender serve` under load from wrk, each figure beside the same lookups made in-process.

    python benchmarks/bench_serve.py              # --n 100000 --workers 2 --seconds 10

On loopback, with wrk sharing the machine's cores with the server:
- ``GET /related/{id}`` answered from the store, at 50 and at 4 connections (wrk, 2 threads), ids drawn at
  random from the whole corpus; beside it, ``RelatedStore.related`` in this process;
- ``POST /related`` with a draft of 500 words, at 8 connections; beside it, ``related_to_text`` in this
  process;
- the server's own latency histogram (``/metrics``) for the same requests.

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
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_lookups import percentiles
from synthetic import generate

from recommender import Recommender, RelatedStore, precompute

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
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

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [str(Path(sys.executable).with_name("recommender")), "serve", "--model", str(path)]
        command += ["--store", str(store_path), "--port", str(port), "--workers", str(args.workers)]
        server = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(base + "/health", timeout=5) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            wrk(base, get_script, 4, 2)  # warm-up: every worker's tables built, kernels loaded
            wrk(base, post_script, 4, 2)
            runs = [
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
    print()
    print(f"{'measure':48} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}   in-process p50 / p99 ms")
    for label, result, (in_p50, in_p99) in runs:
        print(
            f"{label:48} {result['rps']:8,.0f} {result['p50']:8.2f} {result['p99']:8.2f} {result['failed']:7.0f}"
            f"   {in_p50:.3f} / {in_p99:.3f}"
        )
    count = re.findall(r'recommender_request_seconds_count\{route="([^"]+)"\} ([\d.e+]+)', metrics)
    total = re.findall(r'recommender_request_seconds_sum\{route="([^"]+)"\} ([\d.e+]+)', metrics)
    sums = dict(total)
    print()
    print("the server's own /metrics (all runs, both endpoints; one worker's share when several):")
    for route, n in count:
        print(f"  {route:28} {float(n):>10,.0f} requests, mean {float(sums[route]) / float(n) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
