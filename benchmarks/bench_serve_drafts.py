"""`recommender serve`'s lookups by id while semantic drafts are encoded, beside the same lookups alone.

    python benchmarks/bench_serve_drafts.py       # --seconds 10 --drafters 2 --workers 1

The bundled corpus with its shipped semantic vectors, its store precomputed (k 10), one server process on
127.0.0.1. wrk reads ``GET /related/{id}?k=5`` (4 connections, 2 threads, ids drawn from 2,000 random
articles) for ``--seconds``: first alone, then while ``--drafters`` client threads post drafts one after
another (``POST /related``, an article's title and body: each is encoded by the server, about 0.1 s of
CPU). A draft encodes in a worker thread, not on the event loop, and the encoder releases the GIL, so the
lookups by id go on; on a 2-core machine they share the cores with the encoding and with wrk itself.
Printed: the lookups' requests/s and p50/p99 in both runs, and the drafts answered and their latency.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_semantic import bundled_model
from bench_serve import GET_SCRIPT, http, lua_string, serve, wrk

from recommender import Recommender, precompute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--drafters", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        articles = bundled_model(path)
        rng = np.random.default_rng(1)
        ids = [articles[int(r)].id for r in rng.choice(len(articles), size=2000, replace=False)]
        drafts = [
            {"title": articles[int(r)].title, "text": articles[int(r)].body[:2000], "k": 5}
            for r in rng.choice(len(articles), size=200, replace=False)
        ]
        store = Path(tmp) / "related.sqlite"
        precompute(Recommender.load(path), store, 10)
        script = Path(tmp) / "get.lua"
        script.write_text(GET_SCRIPT % ", ".join(lua_string(i) for i in ids))
        base, server = serve(path, store, args.workers)
        try:
            status, health = http(base, "/health")
            assert status == 200 and health["vectors"]["drafts_encoded"], health
            http(base, "/related", "POST", drafts[0])  # the encoder's weights loaded
            wrk(base, script, 4, 2)  # warm-up
            alone = wrk(base, script, 4, args.seconds)

            stop = threading.Event()
            times: list[float] = []
            failures: list[int] = []

            def drafter(offset: int) -> None:
                i = offset
                while not stop.is_set():
                    started = time.perf_counter()
                    code, _ = http(base, "/related", "POST", drafts[i % len(drafts)])
                    times.append(time.perf_counter() - started)
                    if code != 200:
                        failures.append(code)
                    i += args.drafters

            threads = [threading.Thread(target=drafter, args=(n,)) for n in range(args.drafters)]
            for t in threads:
                t.start()
            time.sleep(1)  # the drafts are under way
            busy = wrk(base, script, 4, args.seconds)
            stop.set()
            for t in threads:
                t.join()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    print(f"corpus: {len(articles):,} articles with their semantic vectors; server: {args.workers} worker(s)")
    print(f"GET /related/{{id}} from the store, wrk 4 connections, {args.seconds} s:")
    print(
        f"  alone                 {alone['rps']:8.0f} req/s   p50 {alone['p50']:6.2f} ms   p99 {alone['p99']:6.2f} ms"
    )
    print(
        f"  while drafts encode   {busy['rps']:8.0f} req/s   p50 {busy['p50']:6.2f} ms   p99 {busy['p99']:6.2f} ms"
        f"   ({busy['rps'] / alone['rps']:.2f}x the throughput)"
    )
    print(f"  failed requests: {int(alone['failed'] + busy['failed'])}")
    ms = np.array(times) * 1000
    print(
        f"drafts ({args.drafters} clients, one after another): {len(times)} answered, {len(failures)} failed, "
        f"p50 {np.percentile(ms, 50):.0f} ms, p99 {np.percentile(ms, 99):.0f} ms"
    )
    print(json.dumps({"alone": alone, "while_drafts": busy}))


if __name__ == "__main__":
    main()
