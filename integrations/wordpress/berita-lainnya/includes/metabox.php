<?php
/**
 * The post editor's meta box (classic and block editor): the post's current list on the server, with the
 * scores (`explain=true`), and per item "Pin here" (at its place), "Pin first" and "Block"; each pin of this post
 * has "Unpin".
 *
 * A meta box sits inside the editor's own form, so its buttons name a form printed in the admin footer
 * (`form="berita-lainnya-rules"`, HTML5) and post it to admin-post.php with their own `formaction`. The
 * handlers check the nonce and `edit_posts` (and that the user can edit this post), then call the server's
 * rules API with the token, server-side: the token never reaches the page.
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

add_action('add_meta_boxes', 'berita_lainnya_add_meta_box', 10, 2);
add_action('admin_footer', 'berita_lainnya_print_rules_form', 100);  // after the block editor's meta boxes (10)
add_action('admin_post_berita_lainnya_pin', 'berita_lainnya_handle_pin');
add_action('admin_post_berita_lainnya_block', 'berita_lainnya_handle_block');
add_action('admin_post_berita_lainnya_unpin', 'berita_lainnya_handle_unpin');

/** @param string $post_type */
function berita_lainnya_add_meta_box($post_type, $post = null): void
{
    if (in_array($post_type, berita_lainnya_post_types(), true) && current_user_can('edit_posts') && berita_lainnya_server() !== '') {
        Berita_Lainnya_Meta_Box::$post_id = $post instanceof WP_Post ? $post->ID : 0;
        add_meta_box('berita-lainnya', __('Berita Lainnya', 'berita-lainnya'), 'berita_lainnya_render_meta_box', $post_type, 'side', 'low');
    }
}

/** The post whose meta box is on this page (the footer's form needs it). */
final class Berita_Lainnya_Meta_Box
{
    public static int $post_id = 0;
}

/**
 * The pins of an article in force, from `GET /rules`, by the related id; null when the server cannot say.
 *
 * @return array<string, array<string, mixed>>|null
 */
function berita_lainnya_pins(string $article_id): ?array
{
    $answer = berita_lainnya_request('GET', '/rules', null, [], 2.0, true);
    if ($answer['status'] !== 200 || !is_array($answer['data']) || !is_array($answer['data']['in_force'] ?? null)) {
        return null;
    }
    $pins = [];
    foreach ($answer['data']['in_force'] as $rule) {
        if (is_array($rule) && ($rule['kind'] ?? '') === 'pin' && ($rule['article'] ?? '') === $article_id && is_string($rule['related'] ?? null)) {
            $pins[$rule['related']] = $rule;
        }
    }
    return $pins;
}

/** The meta box's HTML (printed by berita_lainnya_render_meta_box). */
function berita_lainnya_meta_box_html(WP_Post $post): string
{
    Berita_Lainnya_Meta_Box::$post_id = $post->ID;
    $article_id = berita_lainnya_article_id($post->ID);
    $html = '<div class="berita-lainnya-meta-box">';
    $notice = isset($_GET['berita_lainnya']) ? sanitize_text_field(wp_unslash((string) $_GET['berita_lainnya'])) : ''; // phpcs:ignore WordPress.Security.NonceVerification -- a notice only
    $notices = [
        'pinned' => __('Pinned.', 'berita-lainnya'),
        'blocked' => __('Blocked.', 'berita-lainnya'),
        'unpinned' => __('Unpinned.', 'berita-lainnya'),
        'error' => __('The server refused or did not answer: nothing changed.', 'berita-lainnya'),
    ];
    if (isset($notices[$notice])) {
        $html .= '<p class="berita-lainnya-notice"><strong>' . esc_html($notices[$notice]) . '</strong></p>';
    }
    if ($post->post_status !== 'publish') {
        return $html . '<p>' . esc_html__('The box is shown once the post is published.', 'berita-lainnya') . '</p></div>';
    }
    $query = berita_lainnya_query($post->ID) + ['explain' => 'true'];
    $answer = berita_lainnya_request('GET', '/related/' . berita_lainnya_path_id($article_id) . '?' . http_build_query($query), null, [], 2.0);
    if ($answer['status'] !== 200 || !is_array($answer['data']) || !is_array($answer['data']['related'] ?? null)) {
        $why = $answer['status'] === 404 ? __('The server does not have this post yet.', 'berita-lainnya') : $answer['error'];
        return $html . '<p>' . esc_html(sprintf(__('No list: %s', 'berita-lainnya'), $why)) . '</p></div>';
    }
    $pins = berita_lainnya_pins($article_id) ?? [];
    $html .= '<ol class="berita-lainnya-list">';
    $position = 0;
    foreach ($answer['data']['related'] as $item) {
        if (!is_array($item) || !is_string($item['id'] ?? null)) {
            continue;
        }
        ++$position;
        $related = $item['id'];
        $title = is_string($item['title'] ?? null) ? $item['title'] : $related;
        $score = is_numeric($item['score'] ?? null) ? sprintf(' <span class="description">%.3f</span>', (float) $item['score']) : '';
        $html .= '<li data-id="' . esc_attr($related) . '">';
        $html .= is_string($item['url'] ?? null) ? '<a href="' . esc_url($item['url']) . '" target="_blank" rel="noopener">' . esc_html($title) . '</a>' : esc_html($title);
        $html .= $score . '<br>';
        if (isset($pins[$related])) {
            $html .= '<em>' . esc_html(sprintf(__('pinned at %d', 'berita-lainnya'), (int) ($pins[$related]['position'] ?? 0))) . '</em> ';
            $html .= berita_lainnya_rule_button('unpin', ['rule' => (string) (int) ($pins[$related]['id'] ?? 0)], __('Unpin', 'berita-lainnya'));
            unset($pins[$related]);
        } else {
            $html .= berita_lainnya_rule_button('pin', ['related' => $related, 'position' => (string) $position], __('Pin here', 'berita-lainnya'));
            if ($position > 1) {
                $html .= ' ' . berita_lainnya_rule_button('pin', ['related' => $related, 'position' => '1'], __('Pin first', 'berita-lainnya'));
            }
        }
        $html .= ' ' . berita_lainnya_rule_button('block', ['related' => $related], __('Block', 'berita-lainnya')) . '</li>';
    }
    $html .= '</ol>';
    if ($position === 0) {
        $html .= '<p>' . esc_html__('The server lists nothing for this post.', 'berita-lainnya') . '</p>';
    }
    foreach ($pins as $related => $rule) {  // pins not in the list (another filter, say)
        $html .= '<p>' . esc_html(sprintf(__('Pinned: %1$s at %2$d', 'berita-lainnya'), $related, (int) ($rule['position'] ?? 0))) . ' ';
        $html .= berita_lainnya_rule_button('unpin', ['rule' => (string) (int) ($rule['id'] ?? 0)], __('Unpin', 'berita-lainnya')) . '</p>';
    }
    return $html . '</div>';
}

function berita_lainnya_render_meta_box(WP_Post $post): void
{
    echo berita_lainnya_meta_box_html($post); // phpcs:ignore WordPress.Security.EscapeOutput -- escaped when built
}

/**
 * A button of the footer's form, posting to admin-post.php?action=berita_lainnya_{kind}&...
 *
 * @param array<string, string> $args
 */
function berita_lainnya_rule_button(string $kind, array $args, string $label): string
{
    $url = add_query_arg(array_map('rawurlencode', ['action' => 'berita_lainnya_' . $kind] + $args), admin_url('admin-post.php'));
    return '<button type="submit" class="button button-small berita-lainnya-' . esc_attr($kind) . '" form="berita-lainnya-rules" formaction="' . esc_url($url) . '">' . esc_html($label) . '</button>';
}

/** The form the meta box's buttons post (outside the editor's own form): the post and the nonce. */
function berita_lainnya_rules_form_html(int $post_id): string
{
    return '<form id="berita-lainnya-rules" method="post" action="' . esc_url(admin_url('admin-post.php')) . '" hidden>'
        . '<input type="hidden" name="post_id" value="' . esc_attr((string) $post_id) . '">'
        . wp_nonce_field('berita_lainnya_rules_' . $post_id, 'berita_lainnya_nonce', false, false)
        . '</form>';
}

function berita_lainnya_print_rules_form(): void
{
    if (Berita_Lainnya_Meta_Box::$post_id > 0) {
        echo berita_lainnya_rules_form_html(Berita_Lainnya_Meta_Box::$post_id); // phpcs:ignore WordPress.Security.EscapeOutput -- escaped when built
    }
}

/** The post of a rules request, its nonce and the user's rights checked; dies otherwise. */
function berita_lainnya_rules_request_post(): WP_Post
{
    $post_id = isset($_POST['post_id']) ? absint(wp_unslash((string) $_POST['post_id'])) : 0;
    if (!current_user_can('edit_posts') || $post_id <= 0 || !current_user_can('edit_post', $post_id)) {
        wp_die(esc_html__('Sorry, you are not allowed to do that.', 'berita-lainnya'), '', ['response' => 403]);
    }
    check_admin_referer('berita_lainnya_rules_' . $post_id, 'berita_lainnya_nonce');
    $post = get_post($post_id);
    if (!$post instanceof WP_Post) {
        wp_die(esc_html__('No such post.', 'berita-lainnya'), '', ['response' => 404]);
    }
    return $post;
}

/** The related article id of a request: one of the server's ids (1 to 200 characters, no control character). */
function berita_lainnya_request_related(): string
{
    $related = isset($_GET['related']) ? trim(wp_unslash((string) $_GET['related'])) : ''; // phpcs:ignore WordPress.Security.NonceVerification -- checked by berita_lainnya_rules_request_post
    if ($related === '' || strlen($related) > 800 || preg_match('/[\x00-\x1f\x7f]/', $related)) {
        wp_die(esc_html__('Bad article id.', 'berita-lainnya'), '', ['response' => 400]);
    }
    return $related;
}

/**
 * Call the rules API, forget the post's cached box, and go back to the editor with a notice.
 *
 * @param array<string, mixed>|null $body
 */
function berita_lainnya_rules_call(WP_Post $post, string $method, string $path, ?array $body, string $done): void
{
    $answer = berita_lainnya_request($method, $path, $body, [], 5.0, true);
    $ok = $answer['status'] >= 200 && $answer['status'] < 300;
    if ($ok) {
        berita_lainnya_flush_boxes($post->ID);
    } else {
        berita_lainnya_note_error(sprintf('%s %s: %s', $method, $path, $answer['error']));
    }
    $back = (string) get_edit_post_link($post->ID, 'url');
    wp_safe_redirect(add_query_arg('berita_lainnya', $ok ? $done : 'error', $back !== '' ? $back : admin_url()));
    exit;
}

function berita_lainnya_handle_pin(): void
{
    $post = berita_lainnya_rules_request_post();
    $position = isset($_GET['position']) ? max(1, min(1000, absint(wp_unslash((string) $_GET['position'])))) : 1; // phpcs:ignore WordPress.Security.NonceVerification -- checked above
    berita_lainnya_rules_call($post, 'POST', '/rules', [
        'kind' => 'pin',
        'article' => berita_lainnya_article_id($post->ID),
        'related' => berita_lainnya_request_related(),
        'position' => $position,
    ], 'pinned');
}

function berita_lainnya_handle_block(): void
{
    $post = berita_lainnya_rules_request_post();
    berita_lainnya_rules_call($post, 'POST', '/rules', [
        'kind' => 'block',
        'article' => berita_lainnya_article_id($post->ID),
        'related' => berita_lainnya_request_related(),
    ], 'blocked');
}

function berita_lainnya_handle_unpin(): void
{
    $post = berita_lainnya_rules_request_post();
    $rule = isset($_GET['rule']) ? absint(wp_unslash((string) $_GET['rule'])) : 0; // phpcs:ignore WordPress.Security.NonceVerification -- checked above
    $pins = berita_lainnya_pins(berita_lainnya_article_id($post->ID)) ?? [];
    $ours = array_filter($pins, static fn (array $pin): bool => (int) ($pin['id'] ?? 0) === $rule);
    if ($rule <= 0 || $ours === []) {  // only a pin of this post can be removed from its editor
        wp_die(esc_html__('No such pin on this post.', 'berita-lainnya'), '', ['response' => 404]);
    }
    berita_lainnya_rules_call($post, 'DELETE', '/rules/' . $rule, null, 'unpinned');
}
