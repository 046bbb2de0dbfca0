<?php
/**
 * The plugin's settings: one option, `berita_lainnya_settings`, read through berita_lainnya_settings().
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

const BERITA_LAINNYA_OPTION = 'berita_lainnya_settings';

/**
 * The defaults of every setting.
 *
 * @return array<string, mixed>
 */
function berita_lainnya_defaults(): array
{
    return [
        'server' => '',          // e.g. http://127.0.0.1:8000 (no trailing slash needed)
        'token' => '',           // RECOMMENDER_API_TOKEN: for writes and the rules; never printed in a page
        'k' => 5,                // items in the box
        'section' => 'none',     // 'same': only the post's own section; 'none': any
        'within_days' => 0,      // 0: no limit
        'no_newer' => false,     // only articles published before the post
        'cache_time' => 300,     // seconds a box is used before it is revalidated (ETag)
        'images' => false,       // thumbnails in the box
        'default_image' => '',   // thumbnail of items without an image (when images are on)
        'prefix' => 'wp-',       // article id = prefix . post ID
        'append' => false,      // append the box after the post content
        'source' => '',          // the articles' "source" (default: the site's host)
        'own_source' => false,   // only this site's articles in the box (a server shared by several sites)
    ];
}

/**
 * The settings, defaults filled in.
 *
 * @return array<string, mixed>
 */
function berita_lainnya_settings(): array
{
    $saved = get_option(BERITA_LAINNYA_OPTION, []);
    return array_merge(berita_lainnya_defaults(), is_array($saved) ? $saved : []);
}

/** One setting. */
function berita_lainnya_setting(string $name): mixed
{
    return berita_lainnya_settings()[$name] ?? null;
}

/** The server's base URL without a trailing slash, or '' when not set (the plugin then does nothing). */
function berita_lainnya_server(): string
{
    return untrailingslashit(trim((string) berita_lainnya_setting('server')));
}

/** The article id of a post: the prefix and the post ID (`wp-12`). */
function berita_lainnya_article_id(int $post_id): string
{
    return (string) berita_lainnya_setting('prefix') . $post_id;
}

/** The post ID of an article id of this site, or 0 when it is another site's (another prefix). */
function berita_lainnya_post_id(string $article_id): int
{
    $prefix = (string) berita_lainnya_setting('prefix');
    if ($prefix !== '' && !str_starts_with($article_id, $prefix)) {
        return 0;
    }
    $rest = substr($article_id, strlen($prefix));
    return ctype_digit($rest) ? (int) $rest : 0;
}

/**
 * The post types whose posts are sent to the server and get a box (filter `berita_lainnya_post_types`).
 *
 * @return list<string>
 */
function berita_lainnya_post_types(): array
{
    $types = apply_filters('berita_lainnya_post_types', ['post']);
    return array_values(array_filter(is_array($types) ? $types : ['post'], 'is_string'));
}

/**
 * Clean a submitted settings form (the Settings API's sanitize callback). An empty token keeps the saved one:
 * the form never shows it.
 *
 * @param mixed $input
 * @return array<string, mixed>
 */
function berita_lainnya_sanitize_settings($input): array
{
    $old = berita_lainnya_settings();
    $input = is_array($input) ? $input : [];  // options.php has unslashed it
    $clean = $old;
    if (isset($input['server'])) {
        $clean['server'] = untrailingslashit(esc_url_raw(trim((string) $input['server']), ['http', 'https']));
    }
    if (isset($input['token']) && trim((string) $input['token']) !== '') {
        $clean['token'] = trim((string) $input['token']);
    }
    if (!empty($input['clear_token'])) {
        $clean['token'] = '';
    }
    $clean['k'] = max(1, min(50, (int) ($input['k'] ?? $old['k'])));
    $clean['section'] = ($input['section'] ?? '') === 'same' ? 'same' : 'none';
    $clean['within_days'] = max(0, (int) ($input['within_days'] ?? 0));
    $clean['no_newer'] = !empty($input['no_newer']);
    $clean['cache_time'] = max(0, (int) ($input['cache_time'] ?? $old['cache_time']));
    $clean['images'] = !empty($input['images']);
    $clean['default_image'] = esc_url_raw(trim((string) ($input['default_image'] ?? '')));
    $prefix = preg_replace('/[^A-Za-z0-9._:-]/', '', (string) ($input['prefix'] ?? $old['prefix']));
    $clean['prefix'] = is_string($prefix) ? substr($prefix, 0, 50) : 'wp-';
    $clean['append'] = !empty($input['append']);
    $clean['source'] = sanitize_text_field((string) ($input['source'] ?? ''));
    $clean['own_source'] = !empty($input['own_source']);
    if ($clean['server'] !== $old['server'] || $clean['prefix'] !== $old['prefix']) {
        berita_lainnya_flush_boxes();
    }
    return $clean;
}
