"""The WordPress plugin's cost on a real page: PHP time of a post page with its box cached, beside the same page
without the plugin, and with the recommender server down.

    python benchmarks/bench_wordpress.py              # --requests 50 --posts 40

It builds the site tests/test_wordpress.py uses (tests/wordpress_site.py: MariaDB in a temporary directory,
Debian's WordPress under ``php -S`` with OPcache on, the plugin active with its widget in the sidebar), publishes
``--posts`` articles of tests/data/sample.jsonl, exports them with the plugin's bin/export-corpus.php, trains and
starts ``recommender serve``, and then measures:

- **cached box vs no plugin**: the same post page, alternately with the plugin and without it (a mu-plugin drops
  it from the active plugins for requests carrying ``without_plugin``: not loaded at all, as if deactivated),
  ``--requests`` of each after a warm-up; "PHP time" is the site's own: ``microtime(true) -
  $_SERVER['REQUEST_TIME_FLOAT']`` at ``shutdown`` (the harness's timing mu-plugin, header ``X-Php-Ms``);
- **box not cached, server up**: the first view of each post after the cache is emptied (one lookup each);
- **server down** (the process stopped: a closed port) and **server hanging** (a port that accepts and never
  answers): the first view of posts whose box was never cached, then the next views of the same posts (the
  failure is remembered for 60 s).

Medians (and the 90th percentile) in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from wordpress_site import (
    HangingServer,
    MariaDB,
    Page,
    RecommenderServer,
    Site,
    box_links,
    missing_packages,
    sample_articles,
)

WITHOUT_PLUGIN_MU_PLUGIN = """<?php
// bench_wordpress.py: a request with ?without_plugin runs without the Berita Lainnya plugin (not loaded at all).
if (isset($_GET['without_plugin'])) {
    add_filter('option_active_plugins', static fn ($plugins) => array_values(
        array_diff((array) $plugins, ['berita-lainnya/berita-lainnya.php'])
    ));
}
"""


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(values):7.2f} ms   p90 {p90:7.2f} ms   (n={len(values)})"


def fetch(site: Site, path: str) -> Page:
    page = site.get(path)
    assert page.status == 200 and not page.trouble(), (path, page.status, page.trouble())
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50, help="requests of each kind (default 50)")
    parser.add_argument("--posts", type=int, default=40, help="posts published before training (default 40)")
    args = parser.parse_args()
    reason = missing_packages()
    if reason is not None:
        sys.exit(reason)

    with tempfile.TemporaryDirectory(prefix="bench-wordpress-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        db = MariaDB.start(directory / "db")
        site = Site.create(directory / "site", db)
        server: RecommenderServer | None = None
        try:
            (site.docroot / "wp-content" / "mu-plugins" / "bench-without-plugin.php").write_text(
                WITHOUT_PLUGIN_MU_PLUGIN
            )
            sample = sample_articles()
            ids = site.create_posts(sample[:: max(1, len(sample) // args.posts)][: args.posts])
            site.export_corpus(directory / "corpus.jsonl")
            server = RecommenderServer.train_and_start(directory / "corpus.jsonl", directory / "recommender")
            site.configure(server=server.base, token=server.token, k=5, cache_time=3600)
            site.call(
                """
                update_option('widget_berita_lainnya', [2 => ['k' => 5], '_multiwidget' => 1]);
                update_option('sidebars_widgets', ['wp_inactive_widgets' => [], 'sidebar-1' => ['berita_lainnya-2'],
                    'array_version' => 3]);
                return true;
                """
            )
            print(f"Site, {len(ids)} posts, model and server ready in {time.perf_counter() - started:.1f} s")
            php = site.call("return PHP_VERSION . ' / WordPress ' . get_bloginfo('version');")
            print(f"PHP {php} under php -S (OPcache on), {platform.machine()}, {len(os.sched_getaffinity(0))} cores")

            post = ids[len(ids) // 2]
            with_plugin, without_plugin = f"/?p={post}&with_plugin=1", f"/?p={post}&without_plugin=1"
            assert len(box_links(fetch(site, with_plugin).text)) == 1
            assert box_links(fetch(site, without_plugin).text) == []
            for _ in range(10):  # warm-up: OPcache, MariaDB's buffers
                fetch(site, with_plugin)
                fetch(site, without_plugin)
            cached: list[float] = []
            bare: list[float] = []
            cached_wall: list[float] = []
            bare_wall: list[float] = []
            for i in range(args.requests):
                order = [(with_plugin, cached, cached_wall), (without_plugin, bare, bare_wall)]
                for path, into, wall in order if i % 2 == 0 else order[::-1]:
                    page = fetch(site, path)
                    into.append(page.php_ms())
                    wall.append(page.seconds * 1000)
            print("\nA post page (PHP time, the site's own measure):")
            print(f"  with the plugin, box cached     {summary(cached)}")
            print(f"  without the plugin (baseline)   {summary(bare)}")
            print(
                f"  the plugin adds                 {statistics.median(cached) - statistics.median(bare):+.2f} ms "
                f"(median against median; wall time {statistics.median(cached_wall):.1f} ms against "
                f"{statistics.median(bare_wall):.1f} ms)"
            )

            site.call("berita_lainnya_flush_boxes(); return true;")
            missed = [fetch(site, f"/?p={p}").php_ms() for p in ids[: args.requests]]
            print(f"  box not cached, server up       {summary(missed)}  (first view of each post: one lookup)")

            server.stop()
            site.call("berita_lainnya_flush_boxes(); return true;")
            posts = ids[: min(len(ids), 20)]
            first = [fetch(site, f"/?p={p}").php_ms() for p in posts]
            nxt = [fetch(site, f"/?p={p}").php_ms() for p in posts for _ in range(2)]
            print("\nThe recommender server stopped (a closed port), boxes never cached:")
            print(f"  first view of a post            {summary(first)}")
            print(f"  next views (failure remembered) {summary(nxt)}")
            with HangingServer() as port:
                site.configure(server=f"http://127.0.0.1:{port}")
                first = [fetch(site, f"/?p={p}").php_ms() for p in posts]
                nxt = [fetch(site, f"/?p={p}").php_ms() for p in posts for _ in range(2)]
            print("A server that accepts and never answers (timeout 0.5 s):")
            print(f"  first view of a post            {summary(first)}")
            print(f"  next views (failure remembered) {summary(nxt)}")
            print(
                "\nTargets: the plugin adds <= 5 ms with the box cached; a first view with the server down <= 600 ms."
            )
        finally:
            if server is not None:
                server.stop()
            site.stop()
            db.stop()


if __name__ == "__main__":
    main()
