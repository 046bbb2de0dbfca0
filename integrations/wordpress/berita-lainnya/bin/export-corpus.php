<?php
/**
 * Export a WordPress site's published posts as the corpus `recommender train` reads (JSON Lines):
 *
 *     php bin/export-corpus.php /path/to/wordpress > corpus.jsonl
 *
 * The path is the directory holding wp-load.php. The plugin need not be active; its settings (id prefix,
 * source) are used when saved. The count goes to standard error.
 */

declare(strict_types=1);

if (PHP_SAPI !== 'cli') {
    exit(1);
}
$root = $argv[1] ?? '';
if ($root === '' || !is_file(rtrim($root, '/') . '/wp-load.php')) {
    fwrite(STDERR, "usage: php bin/export-corpus.php /path/to/wordpress > corpus.jsonl\n(the directory holding wp-load.php)\n");
    exit(2);
}
$_SERVER['HTTP_HOST'] = $_SERVER['HTTP_HOST'] ?? (string) (parse_url((string) getenv('WP_HOME'), PHP_URL_HOST) ?: 'localhost');
$_SERVER['REQUEST_URI'] = $_SERVER['REQUEST_URI'] ?? '/';
define('WP_USE_THEMES', false);
require rtrim($root, '/') . '/wp-load.php';

if (!function_exists('berita_lainnya_export_corpus')) {  // the plugin installed but not active
    require_once dirname(__DIR__) . '/berita-lainnya.php';
}
$count = berita_lainnya_export_corpus(STDOUT);
fwrite(STDERR, sprintf("Exported %d articles\n", $count));
