<?php
/**
 * A post as the server's article: the body of `PUT /articles/{id}` and a line of the corpus export.
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

/** Text of a post field as plain text: shortcodes, tags and entities gone, white space collapsed. */
function berita_lainnya_plain_text(string $html): string
{
    $text = wp_strip_all_tags(strip_shortcodes($html), false);
    $text = html_entity_decode($text, ENT_QUOTES | ENT_HTML5, 'UTF-8');
    $text = preg_replace('/[ \t\x{00A0}]+/u', ' ', $text) ?? $text;
    $text = preg_replace('/\s*\n\s*/u', "\n", $text) ?? $text;
    return trim($text);
}

/** The post's primary category: Yoast's primary one when set, else the first. */
function berita_lainnya_primary_category(WP_Post $post): ?WP_Term
{
    $primary = (int) get_post_meta($post->ID, '_yoast_wpseo_primary_category', true);
    if ($primary > 0) {
        $term = get_term($primary, 'category');
        if ($term instanceof WP_Term) {
            return $term;
        }
    }
    $categories = get_the_terms($post, 'category');
    return is_array($categories) && $categories !== [] ? $categories[0] : null;
}

/** The articles' source: the setting, or the site's host. */
function berita_lainnya_source(): string
{
    $source = (string) berita_lainnya_setting('source');
    if ($source === '') {
        $source = (string) wp_parse_url(home_url(), PHP_URL_HOST);
    }
    return $source;
}

/**
 * The article of a post (filter `berita_lainnya_article`).
 *
 * @return array<string, mixed>
 */
function berita_lainnya_article(WP_Post $post): array
{
    $article = [
        'title' => berita_lainnya_plain_text((string) $post->post_title),
        'body' => berita_lainnya_plain_text((string) $post->post_content),
    ];
    if ($article['title'] === '') {
        $article['title'] = '(' . $post->ID . ')';  // the server requires a title
    }
    $gmt = (string) $post->post_date_gmt;
    if ($gmt !== '' && $gmt !== '0000-00-00 00:00:00') {
        try {
            $article['published'] = (new DateTimeImmutable($gmt, new DateTimeZone('UTC')))->format('Y-m-d\TH:i:sP');
        } catch (Exception) {
            // no date rather than a wrong one
        }
    }
    $url = get_permalink($post);
    if (is_string($url) && $url !== '') {
        $article['url'] = $url;
    }
    $category = berita_lainnya_primary_category($post);
    if ($category !== null) {
        $article['section'] = $category->slug;
        $article['category'] = html_entity_decode($category->name, ENT_QUOTES | ENT_HTML5, 'UTF-8');
    }
    $tags = get_the_terms($post, 'post_tag');
    $article['tags'] = is_array($tags)
        ? array_values(array_map(static fn (WP_Term $tag): string => html_entity_decode($tag->name, ENT_QUOTES | ENT_HTML5, 'UTF-8'), $tags))
        : [];
    $article['source'] = berita_lainnya_source();
    $image = get_the_post_thumbnail_url($post, 'medium');
    if (is_string($image) && $image !== '') {
        $article['image'] = $image;
    }
    $filtered = apply_filters('berita_lainnya_article', $article, $post);
    return is_array($filtered) ? $filtered : $article;
}
