<?php
/**
 * The corpus export: every published post of the synced types as the JSON Lines `recommender train` reads,
 * one article a line ({"id", "title", "body", "published", "url", "section", "category", "tags", "source",
 * "image"}), streamed: posts are read 200 at a time and each line is written as soon as it is made.
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

const BERITA_LAINNYA_EXPORT_PAGE = 200;

/**
 * Write the corpus to a stream (php://output, STDOUT, a file).
 *
 * @param resource $stream
 * @return int the number of articles written
 */
function berita_lainnya_export_corpus($stream): int
{
    $after = 0;
    $written = 0;
    while (true) {
        $posts = berita_lainnya_published_posts($after, BERITA_LAINNYA_EXPORT_PAGE);
        if ($posts === []) {
            return $written;
        }
        foreach ($posts as $post) {
            $article = ['id' => berita_lainnya_article_id($post->ID)] + berita_lainnya_article($post);
            $line = wp_json_encode($article, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE);
            if (is_string($line)) {
                fwrite($stream, $line . "\n");
                ++$written;
            }
            $after = $post->ID;
        }
        fflush($stream);
        if (function_exists('wp_cache_flush_runtime')) {
            wp_cache_flush_runtime();  // the memory stays bounded, whatever the number of posts
        }
    }
}
