<?php
// WordPress (functions.php or a small plugin): the box under each post, from `recommender serve`.
// Post ids map to the model's article ids; here the model was trained with the posts' slugs as ids.
function recommender_box($article_id, $base = 'http://127.0.0.1:8000') {
    $response = wp_remote_get($base . '/related/' . rawurlencode($article_id) . '?k=5', ['timeout' => 0.5]);
    if (is_wp_error($response) || wp_remote_retrieve_response_code($response) !== 200) {
        return '';  // no box rather than a broken page
    }
    $data = json_decode(wp_remote_retrieve_body($response), true);
    if (!is_array($data) || !is_array($data['related'] ?? null)) {
        return '';  // not the server's JSON (a proxy's error page, say): no box
    }
    $items = '';
    foreach ($data['related'] as $item) {
        $items .= '<li><a href="' . esc_url($item['url']) . '">' . esc_html($item['title']) . '</a></li>';
    }
    return '<aside class="related-articles"><h2>Berita Lainnya</h2><ul>' . $items . '</ul></aside>';
}
// add_filter('the_content', fn($content) => $content . recommender_box(get_post_field('post_name')));
