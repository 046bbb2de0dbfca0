<?php
/**
 * The box: the server's list for a post, cached per post with its ETag, and the one function that renders it
 * for the block, the shortcode, the widget and the content filter.
 *
 * Cache: transient `berita_lainnya_box_{post ID}` holds, per query, the list, its ETag and the time until
 * which it is used as is. After that the next view asks the server with `If-None-Match` (0.5 s at most): a 304
 * keeps the list for another cache time, a 200 replaces it, a 4xx (404 for a post the server does not have,
 * 422 for a filter it refuses) means no box for a minute. A network error, a timeout, a 5xx or a 429 keeps
 * the cached list (or no box) and sets `berita_lainnya_down_{post ID}` for a minute, during which the server
 * is not asked again for that post: a site whose server is down pays the timeout once per post per minute.
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

const BERITA_LAINNYA_TIMEOUT = 0.5;      // seconds a page waits for the server, at most
const BERITA_LAINNYA_RETRY_AFTER = 60;   // seconds without asking again after a failure, or after a 4xx

/**
 * The query string of a post's lookup: k and the filters of the settings.
 *
 * @param array<string, mixed> $args  k (overrides the setting's)
 * @return array<string, string|int>
 */
function berita_lainnya_query(int $post_id, array $args = []): array
{
    $settings = berita_lainnya_settings();
    $k = (int) ($args['k'] ?? 0);
    $query = ['k' => max(1, min(50, $k > 0 ? $k : (int) $settings['k']))];
    if ($settings['section'] === 'same') {
        $post = get_post($post_id);
        $category = $post instanceof WP_Post ? berita_lainnya_primary_category($post) : null;
        if ($category !== null) {
            $query['section'] = $category->slug;
        }
    }
    if ((int) $settings['within_days'] > 0) {
        $query['within_days'] = (int) $settings['within_days'];
    }
    if ($settings['no_newer']) {
        $query['no_newer'] = 'true';
    }
    if ($settings['own_source']) {
        $query['source'] = berita_lainnya_source();
    }
    return $query;
}

/**
 * The related items of a post, from the cache or the server; [] when there are none or the server cannot say.
 *
 * @param array<string, mixed> $args  k
 * @return list<array{id: string, title: string, url: string, image: string}>
 */
function berita_lainnya_related(int $post_id, array $args = []): array
{
    if ($post_id <= 0 || berita_lainnya_server() === '') {
        return [];
    }
    $path = '/related/' . berita_lainnya_path_id(berita_lainnya_article_id($post_id)) . '?' . http_build_query(berita_lainnya_query($post_id, $args));
    $key = 'berita_lainnya_box_' . $post_id;
    $hash = md5($path);
    $cache = get_transient($key);
    $cache = is_array($cache) ? $cache : [];
    $entry = is_array($cache[$hash] ?? null) ? $cache[$hash] : null;
    $cached = $entry !== null && is_array($entry['related'] ?? null) ? $entry['related'] : [];
    $now = time();
    if ($entry !== null && (int) ($entry['fresh'] ?? 0) > $now) {
        return $cached;
    }
    if (get_transient('berita_lainnya_down_' . $post_id) !== false) {
        return $cached;  // the server failed a moment ago: not again on every view
    }
    $headers = [];
    if ($entry !== null && (string) ($entry['etag'] ?? '') !== '') {
        $headers['If-None-Match'] = (string) $entry['etag'];
    }
    $answer = berita_lainnya_request('GET', $path, null, $headers, BERITA_LAINNYA_TIMEOUT);
    $ttl = max(0, (int) berita_lainnya_setting('cache_time'));
    $status = $answer['status'];
    if ($status === 304 && $entry !== null) {
        $entry['fresh'] = $now + $ttl;
    } elseif ($status === 200 && is_array($answer['data']) && is_array($answer['data']['related'] ?? null)) {
        $entry = ['related' => berita_lainnya_items($answer['data']['related']), 'etag' => $answer['etag'], 'fresh' => $now + $ttl];
    } elseif ($status >= 400 && $status < 500 && $status !== 429) {
        $entry = ['related' => [], 'etag' => '', 'fresh' => $now + min($ttl, BERITA_LAINNYA_RETRY_AFTER)];
    } else {
        set_transient('berita_lainnya_down_' . $post_id, $answer['error'] !== '' ? $answer['error'] : 'HTTP ' . $status, BERITA_LAINNYA_RETRY_AFTER);
        return $cached;
    }
    $cache[$hash] = $entry;
    set_transient($key, $cache, $ttl + DAY_IN_SECONDS);  // kept a day past its time, for when the server is down
    return $entry['related'];
}

/**
 * The items of a server's answer that can be shown: a title and a URL, as strings.
 *
 * @param array<mixed> $related
 * @return list<array{id: string, title: string, url: string, image: string}>
 */
function berita_lainnya_items(array $related): array
{
    $items = [];
    foreach ($related as $item) {
        if (!is_array($item) || !is_string($item['title'] ?? null) || !is_string($item['url'] ?? null) || $item['url'] === '') {
            continue;
        }
        $items[] = [
            'id' => is_string($item['id'] ?? null) ? $item['id'] : '',
            'title' => $item['title'],
            'url' => $item['url'],
            'image' => is_string($item['image'] ?? null) ? $item['image'] : '',
        ];
    }
    return $items;
}

/**
 * The box of a post: `<aside class="berita-lainnya"><h2>Berita Lainnya</h2><ul><li><a href>title</a></li>...`,
 * or '' when there is nothing to show. Every value escaped.
 *
 * @param array<string, mixed> $args  k
 */
function berita_lainnya_render_box(int $post_id, array $args = []): string
{
    $items = berita_lainnya_related($post_id, $args);
    if ($items === []) {
        return '';
    }
    $settings = berita_lainnya_settings();
    $size = apply_filters('berita_lainnya_image_size', [120, 68]);
    [$width, $height] = is_array($size) && count($size) === 2 ? array_map('intval', array_values($size)) : [120, 68];
    $heading = (string) apply_filters('berita_lainnya_heading', __('Berita Lainnya', 'berita-lainnya'), $post_id);
    $html = '<aside class="berita-lainnya"><h2>' . esc_html($heading) . '</h2><ul>';
    foreach ($items as $item) {
        $image = '';
        if ($settings['images']) {
            $src = $item['image'] !== '' ? $item['image'] : (string) $settings['default_image'];
            if ($src !== '') {
                $image = '<img src="' . esc_url($src) . '" alt="" loading="lazy" width="' . esc_attr((string) $width) . '" height="' . esc_attr((string) $height) . '">';
            }
        }
        $html .= '<li><a href="' . esc_url($item['url']) . '">' . $image . esc_html($item['title']) . '</a></li>';
    }
    return $html . '</ul></aside>';
}

/** Forget the cached boxes: one post's, or every post's. */
function berita_lainnya_flush_boxes(?int $post_id = null): void
{
    if ($post_id !== null) {
        delete_transient('berita_lainnya_box_' . $post_id);
        delete_transient('berita_lainnya_down_' . $post_id);
        return;
    }
    global $wpdb;
    $wpdb->query(
        $wpdb->prepare(
            "DELETE FROM {$wpdb->options} WHERE option_name LIKE %s OR option_name LIKE %s OR option_name LIKE %s OR option_name LIKE %s",
            $wpdb->esc_like('_transient_berita_lainnya_') . '%',
            $wpdb->esc_like('_transient_timeout_berita_lainnya_') . '%',
            $wpdb->esc_like('_site_transient_berita_lainnya_') . '%',
            $wpdb->esc_like('_site_transient_timeout_berita_lainnya_') . '%'
        )
    );
    wp_cache_flush();
}
