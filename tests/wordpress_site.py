"""A real WordPress site for the Berita Lainnya plugin's tests and benchmark: MariaDB in a temporary data directory
(its own socket and port), Debian's WordPress (``/usr/share/wordpress``) copied into a temporary docroot with a
wp-config.php of its own, served by PHP's built-in server on 127.0.0.1, the plugin copied in and activated, and
``recommender serve`` as a real process.

    db = MariaDB.start(tmp / "db")
    site = Site.create(tmp / "site", db)          # installed, theme and plugin active, WP_DEBUG on
    ids = site.create_posts(articles)             # through wp_insert_post, in a PHP CLI process
    site.export_corpus(tmp / "corpus.jsonl")      # the plugin's bin/export-corpus.php
    server = RecommenderServer.train_and_start(tmp / "corpus.jsonl", tmp / "rec")
    site.configure(server=server.base, token=server.token)
    status, headers, html = site.get(f"/?p={ids[0]}")

Used by tests/test_wordpress.py and benchmarks/bench_wordpress.py.
"""

from __future__ import annotations

import getpass
import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORDPRESS = Path("/usr/share/wordpress")
PLUGIN = ROOT / "integrations" / "wordpress" / "berita-lainnya"
THEME = Path(__file__).resolve().parent / "wordpress_theme"
SAMPLE = Path(__file__).resolve().parent / "data" / "sample.jsonl"
RECOMMENDER = Path(sys.executable).with_name("recommender")
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-password-for-tests"
RESULT_MARK = "@@BERITA_RESULT@@"
# What PHP prints for a warning, a notice, a deprecation or an error when display_errors is on.
PHP_TROUBLE = re.compile(r"(<b>)?(Warning|Fatal error|Parse error|Deprecated|Notice)(</b>)?: ")

# Measures the PHP time of every page: from the request's start to `shutdown`, in the X-Php-Ms header.
TIMING_MU_PLUGIN = """<?php
// The page's PHP time, request start to shutdown, in the X-Php-Ms header (tests/wordpress_site.py).
if (PHP_SAPI !== 'cli') {
    ob_start();
    add_action('shutdown', static function (): void {
        if (!headers_sent()) {
            header(sprintf('X-Php-Ms: %.3f', (microtime(true) - $_SERVER['REQUEST_TIME_FLOAT']) * 1000));
        }
    }, 0);
}
"""

# Debian's WordPress 6.1 bundles Requests 1.x, whose Requests_Cookie_Jar declares ArrayAccess methods without
# return types: PHP 8.2 prints a deprecation for each when core's HTTP API is first used, on any site, with or
# without the plugin. The test site mutes exactly those (E_DEPRECATED raised in wp-includes/Requests/); every
# other warning, notice and deprecation, the plugin's above all, is printed into the page and fails the tests.
CORE_DEPRECATIONS_MU_PLUGIN = """<?php
// Mute the deprecations of Debian's bundled Requests 1.x under PHP 8.2 (core's, not the plugin's); nothing else.
set_error_handler(static function (int $errno, string $message, string $file = ''): bool {
    return str_contains($file, '/wp-includes/Requests/');
}, E_DEPRECATED);
"""


# No update checks: the test site has no internet (WP_HTTP_BLOCK_EXTERNAL), and each blocked check warns.
NO_UPDATES_MU_PLUGIN = """<?php
// The test site checks no updates on WordPress.org (tests/wordpress_site.py).
$berita_test_checked = static fn () => (object) [
    'last_checked' => time(), 'version_checked' => get_bloginfo('version'), 'updates' => [], 'translations' => [],
    'response' => [], 'checked' => [], 'no_update' => [],
];
foreach (['update_core', 'update_plugins', 'update_themes'] as $berita_test_transient) {
    add_filter('pre_site_transient_' . $berita_test_transient, $berita_test_checked);
}
"""


def missing_packages() -> str | None:
    """Why a WordPress site cannot be built here (the Debian packages missing), or None."""
    needs = {
        "wordpress (Debian's /usr/share/wordpress)": (WORDPRESS / "wp-settings.php").exists(),
        "mariadb-server (mariadbd)": bool(shutil.which("mariadbd") or shutil.which("mysqld")),
        "mariadb-install-db": bool(shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")),
        "php-cli": bool(shutil.which("php")),
    }
    if shutil.which("php"):
        modules = subprocess.run(["php", "-m"], capture_output=True, text=True).stdout.split()
        needs["php-mysql (the mysqli module)"] = "mysqli" in modules
        needs["php-curl"] = "curl" in modules
    absent = [name for name, present in needs.items() if not present]
    if not absent:
        return None
    return "missing: " + ", ".join(absent) + " (apt-get install wordpress mariadb-server php-mysql php-cli php-curl)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class MariaDB:
    """A MariaDB server of its own: a data directory, a socket and a port, run as the current user."""

    directory: Path
    socket: Path
    port: int
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, directory: Path, database: str = "wordpress") -> MariaDB:
        directory.mkdir(parents=True, exist_ok=True)
        data, sock, port, user = directory / "data", directory / "mysqld.sock", free_port(), getpass.getuser()
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db") or "mariadb-install-db"
        subprocess.run(
            [
                install,
                "--no-defaults",
                f"--datadir={data}",
                f"--user={user}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )
        server = shutil.which("mariadbd") or shutil.which("mysqld") or "mariadbd"
        with open(directory / "mariadb.log", "wb") as log:
            process = subprocess.Popen(
                [
                    server,
                    "--no-defaults",
                    f"--datadir={data}",
                    f"--socket={sock}",
                    f"--port={port}",
                    "--bind-address=127.0.0.1",
                    "--skip-networking=0",
                    f"--user={user}",
                    f"--pid-file={directory / 'mariadb.pid'}",
                    "--skip-log-bin",
                    "--skip-name-resolve",
                    "--innodb-buffer-pool-size=64M",
                    "--innodb-log-file-size=16M",
                    "--innodb-flush-log-at-trx-commit=2",
                    "--performance-schema=OFF",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        db = cls(directory, sock, port, process)

        def ready() -> bool:
            assert process.poll() is None, (directory / "mariadb.log").read_text(errors="replace")
            return sock.exists() and db.sql("SELECT 1", check=False).returncode == 0

        wait_for(ready, 60, "MariaDB")
        db.sql(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        return db

    def sql(self, statement: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
        return subprocess.run(
            [client, "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-e", statement],
            capture_output=True,
            text=True,
            check=check,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class Page:
    status: int
    headers: dict[str, str]
    text: str
    seconds: float

    def php_ms(self) -> float:
        """The page's PHP time (the timing mu-plugin's header), in milliseconds."""
        return float(self.headers["x-php-ms"])

    def trouble(self) -> list[str]:
        """The PHP warnings, notices, deprecations and errors printed into the page."""
        return [line.strip()[:300] for line in self.text.splitlines() if PHP_TROUBLE.search(line)]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Browser:
    """An HTTP client with cookies (a logged-in user), following no redirect (the Location is the answer's)."""

    base: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect())

    def send(self, path: str, fields: Mapping[str, str] | None = None, timeout: float = 60) -> Page:
        data = None if fields is None else urllib.parse.urlencode(fields).encode()
        url = path if path.startswith("http") else self.base + path
        start = time.perf_counter()
        try:
            with self.opener.open(urllib.request.Request(url, data=data), timeout=timeout) as answer:
                status, headers, body = answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as exc:
            status, headers, body = exc.code, exc.headers, exc.read()
        seconds = time.perf_counter() - start
        return Page(status, {k.lower(): v for k, v in headers.items()}, body.decode("utf-8", "replace"), seconds)

    def login(self, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> None:
        self.send("/wp-login.php")  # sets the test cookie
        answer = self.send(
            "/wp-login.php",
            {"log": user, "pwd": password, "wp-submit": "Log In", "testcookie": "1", "redirect_to": "/wp-admin/"},
        )
        assert answer.status == 302 and "/wp-admin" in answer.headers.get("location", ""), answer.text[-2000:]


@dataclass
class Site:
    """A WordPress site in ``directory``: ``docroot`` served at ``base`` by ``php -S``."""

    directory: Path
    docroot: Path
    db: MariaDB
    port: int
    process: subprocess.Popen[bytes] | None = None
    returned: list[float] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def debug_log(self) -> Path:
        return self.directory / "debug.log"

    @classmethod
    def create(cls, directory: Path, db: MariaDB, title: str = "Berita Test") -> Site:
        """Copy Debian's WordPress into ``directory/docroot`` (its wp-admin and wp-includes load wp-load.php beside
        themselves, so a symlinked tree would read Debian's /etc/wordpress config), write a wp-config.php, copy
        the theme and the plugin in, install, activate both and start the PHP server."""
        docroot = directory / "docroot"
        docroot.mkdir(parents=True)
        for entry in WORDPRESS.iterdir():
            if entry.name in {"wp-config.php", "wp-content"}:
                continue
            if entry.is_dir():
                shutil.copytree(entry, docroot / entry.name, symlinks=True)
            else:
                shutil.copy2(entry, docroot / entry.name, follow_symlinks=False)
        content = docroot / "wp-content"
        for sub in ("plugins", "themes", "mu-plugins", "uploads"):
            (content / sub).mkdir(parents=True)
        shutil.copytree(THEME, content / "themes" / "berita-test")
        (content / "mu-plugins" / "timing.php").write_text(TIMING_MU_PLUGIN)
        (content / "mu-plugins" / "core-deprecations.php").write_text(CORE_DEPRECATIONS_MU_PLUGIN)
        (content / "mu-plugins" / "no-updates.php").write_text(NO_UPDATES_MU_PLUGIN)
        site = cls(directory, docroot, db, free_port())
        site.copy_plugin()
        site.write_config()
        site.install(title)
        site.start()
        return site

    def copy_plugin(self) -> None:
        """Install the plugin as a site owner does: its folder copied into wp-content/plugins."""
        target = self.docroot / "wp-content" / "plugins" / "berita-lainnya"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(PLUGIN, target)

    def write_config(self) -> None:
        values = {
            "DB_NAME": "wordpress",
            "DB_USER": "root",
            "DB_PASSWORD": "",
            "DB_HOST": f"localhost:{self.db.socket}",
            "DB_CHARSET": "utf8mb4",
            "DB_COLLATE": "",
            "WP_HOME": self.base,
            "WP_SITEURL": self.base,
            "WP_CONTENT_DIR": str(self.docroot / "wp-content"),
            "WP_DEBUG_LOG": str(self.debug_log),
            "WP_ENVIRONMENT_TYPE": "local",
            "FS_METHOD": "direct",
        }
        flags = {
            "WP_DEBUG": True,
            "WP_DEBUG_DISPLAY": True,
            "SCRIPT_DEBUG": False,
            "DISABLE_WP_CRON": True,  # the tests run the cron themselves
            "AUTOMATIC_UPDATER_DISABLED": True,
            "WP_HTTP_BLOCK_EXTERNAL": True,  # no update checks: 127.0.0.1 only
        }
        salts = "".join(
            f"define('{name}', '{os.urandom(24).hex()}');\n"
            for name in (
                *("AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY"),
                *("AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"),
            )
        )
        lines = [f"define('{k}', {php_string(v)});" for k, v in values.items()]
        lines += [f"define('{k}', {'true' if v else 'false'});" for k, v in flags.items()]
        (self.docroot / "wp-config.php").write_text(
            "<?php\n// The test site's own config (tests/wordpress_site.py), not Debian's /etc/wordpress one.\n"
            + "\n".join(lines)
            + "\n"
            + salts
            + "$table_prefix = 'wp_';\n"
            + "if (!defined('ABSPATH')) {\n    define('ABSPATH', __DIR__ . '/');\n}\n"
            + "require_once ABSPATH . 'wp-settings.php';\n"
        )

    def install(self, title: str) -> None:
        script = self.directory / "install.php"
        script.write_text(
            "<?php\n"
            "define('WP_INSTALLING', true);\n"
            f"$_SERVER['HTTP_HOST'] = '127.0.0.1:{self.port}';\n"
            "$_SERVER['REQUEST_URI'] = '/';\n"
            f"require {php_string(str(self.docroot / 'wp-load.php'))};\n"
            "require_once ABSPATH . 'wp-admin/includes/upgrade.php';\n"
            f"$result = wp_install({php_string(title)}, {php_string(ADMIN_USER)}, 'admin@example.com', false, '',"
            f" {php_string(ADMIN_PASSWORD)});\n"
            "echo is_wp_error($result) ? 'ERROR ' . $result->get_error_message() : 'OK';\n"
        )
        out = subprocess.run(["php", str(script)], capture_output=True, text=True, cwd=self.directory)
        assert out.stdout.strip().endswith("OK"), out.stdout + out.stderr
        self.call(
            """
            update_option('blogdescription', 'Kabar terkini dari Nusantara');
            update_option('timezone_string', 'Asia/Jakarta');
            update_option('WPLANG', '');
            wp_delete_post(1, true);  // "Hello world!"
            wp_delete_post(2, true);  // the sample page
            switch_theme('berita-test');
            require_once ABSPATH . 'wp-admin/includes/plugin.php';
            $activated = activate_plugin('berita-lainnya/berita-lainnya.php');
            if (is_wp_error($activated)) {
                return $activated->get_error_message();
            }
            return 'OK';
            """,
            expect="OK",
        )

    def start(self) -> None:
        """Start (or restart) the PHP built-in server, OPcache on as on a production site."""
        log = open(self.directory / "php-server.log", "ab")  # the server keeps its own copy
        self.process = subprocess.Popen(
            ["php", "-d", "opcache.enable_cli=1", "-S", f"127.0.0.1:{self.port}", "-t", str(self.docroot)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.docroot,
        )
        log.close()
        wait_for(lambda: port_open(self.port), 30, "the PHP server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    # --- PHP on the command line, WordPress loaded ---------------------------------------------------------------

    def call(self, code: str, expect: Any = None, **values: Any) -> Any:
        """Run ``code`` (a PHP function body; ``$input`` holds ``values``) in a PHP CLI process that loads
        WordPress as the admin user; answer what it returns (as JSON). Anything PHP prints besides (a warning)
        fails the call."""
        script = self.directory / "cli.php"
        script.write_text(
            "<?php\n"
            f"$_SERVER['HTTP_HOST'] = '127.0.0.1:{self.port}';\n"
            "$_SERVER['REQUEST_URI'] = '/';\n"
            f"require {php_string(str(self.docroot / 'wp-load.php'))};\n"
            "require_once ABSPATH . 'wp-admin/includes/plugin.php';\n"
            "require_once ABSPATH . 'wp-admin/includes/post.php';\n"
            "wp_set_current_user(1);\n"
            "$input = json_decode((string) stream_get_contents(STDIN), true);\n"
            f"$result = (static function (array $input) {{\n{code}\n}})($input);\n"
            f"echo {php_string(RESULT_MARK)}, json_encode($result, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);\n"
        )
        done = subprocess.run(
            ["php", str(script)], input=json.dumps(values), capture_output=True, text=True, cwd=self.directory
        )
        before, mark, after = done.stdout.rpartition(RESULT_MARK)
        assert mark and done.returncode == 0, f"PHP failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        assert not before.strip() and not done.stderr.strip(), f"PHP printed:\n{before}\n{done.stderr}"
        result = json.loads(after)
        if expect is not None:
            assert result == expect, result
        return result

    def option(self, name: str) -> Any:
        return self.call("return get_option($input['name'], null);", name=name)

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change some of the plugin's settings (the rest kept); answer them all."""
        return dict(
            self.call(
                """
                $settings = array_merge(berita_lainnya_settings(), $input['settings']);
                update_option('berita_lainnya_settings', $settings);
                berita_lainnya_flush_boxes();
                return berita_lainnya_settings();
                """,
                settings=settings,
            )
        )

    def create_posts(self, articles: list[dict[str, Any]]) -> list[int]:
        """Publish ``articles`` (sample.jsonl's fields: title, body, published, section, category, tags) through
        ``wp_insert_post``: categories made from their section (slug) and category (name). Answers the post IDs,
        and the time (``time.time()``) each wp_insert_post call returned is in ``self.returned``."""
        result = self.call(
            """
            $ids = [];
            $returned = [];
            foreach ($input['articles'] as $article) {
                $ids[] = berita_test_insert($article);
                $returned[] = microtime(true);
            }
            return ['ids' => $ids, 'returned' => $returned];
            """.replace("berita_test_insert", "(" + INSERT_POST + ")"),
            articles=articles,
        )
        self.returned = [float(t) for t in result["returned"]]
        return [int(i) for i in result["ids"]]

    def export_corpus(self, path: Path) -> list[dict[str, Any]]:
        """The plugin's command-line export: ``php bin/export-corpus.php DOCROOT > path``."""
        script = self.docroot / "wp-content" / "plugins" / "berita-lainnya" / "bin" / "export-corpus.php"
        with open(path, "wb") as out:
            done = subprocess.run(["php", str(script), str(self.docroot)], stdout=out, stderr=subprocess.PIPE)
        assert done.returncode == 0 and b"Exported" in done.stderr, done.stderr.decode()
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def run_cron(self, due_now: bool = False) -> Any:
        """The plugin's cron event, as WP-Cron runs it; ``due_now`` first makes every queued job due (as if its
        backoff had passed)."""
        return self.call(
            """
            if ($input['due_now']) {
                $queue = berita_lainnya_queue();
                foreach ($queue as $post_id => $job) {
                    $queue[$post_id]['next'] = 0;
                }
                berita_lainnya_save_queue($queue);
            }
            do_action('berita_lainnya_sync');
            return berita_lainnya_queue_state();
            """,
            due_now=due_now,
        )

    def get(self, path: str) -> Page:
        return Browser(self.base).send(path)

    def admin(self) -> Browser:
        browser = Browser(self.base)
        browser.login()
        return browser


# A PHP closure: publish one article (sample.jsonl's fields) and answer its post ID.
INSERT_POST = r"""
static function (array $article): int {
    $category_ids = [];
    if (!empty($article['section'])) {
        $term = get_term_by('slug', $article['section'], 'category');
        if (!$term) {
            $name = $article['category'] ?? $article['section'];
            $made = wp_insert_term($name, 'category', ['slug' => $article['section']]);
            $term = get_term((int) $made['term_id'], 'category');
        }
        $category_ids[] = (int) $term->term_id;
    }
    $paragraphs = array_filter(array_map('trim', preg_split('/(?<=[.!?])\s+(?=[A-Z"])/u', $article['body'] ?? '')));
    $post = [
        'post_title' => $article['title'],
        'post_content' => implode("\n\n", array_map(
            static fn ($p) => '<!-- wp:paragraph --><p>' . esc_html($p) . '</p><!-- /wp:paragraph -->',
            $paragraphs
        )) . ($article['extra'] ?? ''),
        'post_status' => $article['status'] ?? 'publish',
        'post_category' => $category_ids,
        'tags_input' => $article['tags'] ?? [],
    ];
    if (!empty($article['published'])) {
        $post['post_date'] = wp_date('Y-m-d H:i:s', strtotime($article['published']));
        $post['post_date_gmt'] = gmdate('Y-m-d H:i:s', strtotime($article['published']));
    }
    $id = wp_insert_post(wp_slash($post), true);
    if (is_wp_error($id)) {
        throw new RuntimeException($id->get_error_message());
    }
    return (int) $id;
}
"""


def php_string(value: str) -> str:
    """A PHP single-quoted string literal of ``value``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class RecommenderServer:
    """``recommender serve`` of a model and store, as a real process on a fixed port (so that it can be stopped
    and started again where the plugin's settings point)."""

    model: Path
    store: Path
    directory: Path
    token: str = "wordpress-test-token-0123456789"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def train_and_start(cls, corpus: Path, directory: Path) -> RecommenderServer:
        """``recommender train corpus --no-vectors``, ``recommender precompute``, then ``recommender serve``."""
        directory.mkdir(parents=True, exist_ok=True)
        model, store = directory / "model.joblib", directory / "related.sqlite"
        for args in (
            ["train", str(corpus), "--model", str(model), "--no-vectors"],
            ["precompute", "--out", str(store), "--model", str(model)],
        ):
            done = subprocess.run([str(RECOMMENDER), *args], capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
        server = cls(model, store, directory)
        server.start()
        return server

    def start(self) -> None:
        env = {**os.environ, "RECOMMENDER_API_TOKEN": self.token}
        with open(self.directory / "serve.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(RECOMMENDER),
                    "serve",
                    "--model",
                    str(self.model),
                    "--store",
                    str(self.store),
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

        def up() -> bool:
            assert self.process is not None and self.process.poll() is None, (self.directory / "serve.log").read_text()
            try:
                return self.request("/health")[0] == 200
            except OSError:
                return False

        wait_for(up, 60, "recommender serve")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        wait_for(lambda: not port_open(self.port), 10, "the server's port to close")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def request(self, path: str, method: str = "GET", body: Any = None, auth: bool = False) -> tuple[int, Any]:
        """(status, JSON body) of a request to the server."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as answer:
                raw = answer.read()
                return answer.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def related_ids(self, article_id: str, k: int = 5, **filters: str) -> list[str] | None:
        """The ids of an article's list on the server (with these filters), or None when it does not know the
        article."""
        query = urllib.parse.urlencode({"k": k, **filters})
        status, body = self.request(f"/related/{urllib.parse.quote(article_id, safe='')}?{query}")
        if status == 404:
            return None
        assert status == 200, (status, body)
        return [item["id"] for item in body["related"]]


def sample_articles() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def box_links(html: str) -> list[list[str]]:
    """The links (href) of each "Berita Lainnya" box in a page, in order."""
    boxes = re.findall(r'<aside class="berita-lainnya">(.*?)</aside>', html, flags=re.S)
    return [
        [
            urllib.parse.unquote(h.replace("&#038;", "&").replace("&amp;", "&"))
            for h in re.findall(r'<a href="([^"]*)"', b)
        ]
        for b in boxes
    ]


class HangingServer:
    """A port that accepts connections and never answers."""

    def __enter__(self) -> int:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return int(self.listener.getsockname()[1])

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                self.held.append(self.listener.accept()[0])
            except TimeoutError:
                continue

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.listener.close()
