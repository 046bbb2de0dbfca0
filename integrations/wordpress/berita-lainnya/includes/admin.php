<?php
/**
 * Settings → Berita Lainnya: the settings (Settings API), the sync queue's state, "Send all posts",
 * "Retry now" and "Download corpus (JSON Lines)". The token is never printed: its field stays empty and a
 * blank submission keeps the saved one.
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

add_action('admin_init', 'berita_lainnya_register_settings');
add_action('admin_menu', 'berita_lainnya_admin_menu');
add_action('admin_post_berita_lainnya_send_all', 'berita_lainnya_handle_send_all');
add_action('admin_post_berita_lainnya_retry', 'berita_lainnya_handle_retry');
add_action('admin_post_berita_lainnya_corpus', 'berita_lainnya_handle_corpus');
add_filter('plugin_action_links_' . plugin_basename(BERITA_LAINNYA_FILE), 'berita_lainnya_action_links');

function berita_lainnya_admin_menu(): void
{
    add_options_page(__('Berita Lainnya', 'berita-lainnya'), __('Berita Lainnya', 'berita-lainnya'), 'manage_options', 'berita-lainnya', 'berita_lainnya_settings_page');
}

/**
 * @param array<string, string> $links
 * @return array<string, string>
 */
function berita_lainnya_action_links($links): array
{
    $links = is_array($links) ? $links : [];
    $links['settings'] = '<a href="' . esc_url(admin_url('options-general.php?page=berita-lainnya')) . '">' . esc_html__('Settings', 'berita-lainnya') . '</a>';
    return $links;
}

function berita_lainnya_register_settings(): void
{
    register_setting('berita_lainnya', BERITA_LAINNYA_OPTION, [
        'type' => 'array',
        'sanitize_callback' => 'berita_lainnya_sanitize_settings',
        'default' => berita_lainnya_defaults(),
    ]);
    add_settings_section('berita_lainnya_server', __('Server', 'berita-lainnya'), '__return_null', 'berita-lainnya');
    add_settings_section('berita_lainnya_box', __('The box', 'berita-lainnya'), '__return_null', 'berita-lainnya');
    $fields = [
        ['server', __('Server URL', 'berita-lainnya'), 'berita_lainnya_server'],
        ['token', __('Token', 'berita-lainnya'), 'berita_lainnya_server'],
        ['prefix', __('Article id prefix', 'berita-lainnya'), 'berita_lainnya_server'],
        ['source', __('Source name', 'berita-lainnya'), 'berita_lainnya_server'],
        ['k', __('Items (k)', 'berita-lainnya'), 'berita_lainnya_box'],
        ['section', __('Section', 'berita-lainnya'), 'berita_lainnya_box'],
        ['within_days', __('Within days', 'berita-lainnya'), 'berita_lainnya_box'],
        ['no_newer', __('No newer articles', 'berita-lainnya'), 'berita_lainnya_box'],
        ['own_source', __('Only this site', 'berita-lainnya'), 'berita_lainnya_box'],
        ['cache_time', __('Cache time (seconds)', 'berita-lainnya'), 'berita_lainnya_box'],
        ['images', __('Images', 'berita-lainnya'), 'berita_lainnya_box'],
        ['default_image', __('Default image URL', 'berita-lainnya'), 'berita_lainnya_box'],
        ['append', __('After the post content', 'berita-lainnya'), 'berita_lainnya_box'],
    ];
    foreach ($fields as [$name, $label, $section]) {
        add_settings_field('berita_lainnya_' . $name, $label, 'berita_lainnya_field', 'berita-lainnya', $section, ['name' => $name, 'label_for' => 'berita_lainnya_' . $name]);
    }
}

/**
 * One field of the settings form.
 *
 * @param array{name: string} $args
 */
function berita_lainnya_field(array $args): void
{
    $settings = berita_lainnya_settings();
    $name = $args['name'];
    $id = 'berita_lainnya_' . $name;
    $field = BERITA_LAINNYA_OPTION . '[' . $name . ']';
    $value = $settings[$name] ?? '';
    $checkbox = static function (string $label) use ($id, $field, $value): void {
        printf('<label><input type="checkbox" id="%s" name="%s" value="1"%s> %s</label>', esc_attr($id), esc_attr($field), checked((bool) $value, true, false), esc_html($label));
    };
    switch ($name) {
        case 'token':
            $set = (string) $value !== '';
            printf('<input type="password" class="regular-text" id="%s" name="%s" value="" autocomplete="new-password" placeholder="%s">', esc_attr($id), esc_attr($field), esc_attr($set ? __('(saved: leave empty to keep it)', 'berita-lainnya') : ''));
            echo '<p class="description">' . esc_html__('The server\'s RECOMMENDER_API_TOKEN, for sending posts and editing pins and blocks. It is never shown again.', 'berita-lainnya') . '</p>';
            if ($set) {
                printf('<label><input type="checkbox" name="%s" value="1"> %s</label>', esc_attr(BERITA_LAINNYA_OPTION . '[clear_token]'), esc_html__('Remove the saved token', 'berita-lainnya'));
            }
            break;
        case 'section':
            printf('<select id="%s" name="%s">', esc_attr($id), esc_attr($field));
            printf('<option value="none"%s>%s</option>', selected($value, 'none', false), esc_html__('Any section', 'berita-lainnya'));
            printf('<option value="same"%s>%s</option>', selected($value, 'same', false), esc_html__('The same section as the post (its primary category)', 'berita-lainnya'));
            echo '</select>';
            break;
        case 'no_newer':
            $checkbox(__('Only articles published before the post', 'berita-lainnya'));
            break;
        case 'images':
            $checkbox(__('Show a thumbnail beside each item', 'berita-lainnya'));
            break;
        case 'own_source':
            $checkbox(__('Only this site\'s articles (its source name), when the server holds several sites\'', 'berita-lainnya'));
            break;
        case 'append':
            $checkbox(__('Append the box after the content of single posts', 'berita-lainnya'));
            break;
        case 'k':
        case 'within_days':
        case 'cache_time':
            printf('<input type="number" min="0" class="small-text" id="%s" name="%s" value="%s">', esc_attr($id), esc_attr($field), esc_attr((string) $value));
            if ($name === 'within_days') {
                echo ' <span class="description">' . esc_html__('0: no limit', 'berita-lainnya') . '</span>';
            }
            break;
        default:
            $type = in_array($name, ['server', 'default_image'], true) ? 'url' : 'text';
            $placeholder = match ($name) {
                'server' => 'http://127.0.0.1:8000',
                'source' => (string) wp_parse_url(home_url(), PHP_URL_HOST),
                default => '',
            };
            printf('<input type="%s" class="regular-text" id="%s" name="%s" value="%s" placeholder="%s">', esc_attr($type), esc_attr($id), esc_attr($field), esc_attr((string) $value), esc_attr($placeholder));
    }
}

/**
 * The sync queue's state, as the settings page shows it.
 *
 * @return array{pending: int, queued: int, bulk: int, failed: int, last_error: string, last_error_time: int}
 */
function berita_lainnya_queue_state(): array
{
    $last = get_option(BERITA_LAINNYA_LAST_ERROR);
    $queued = count(berita_lainnya_queue());
    $bulk = berita_lainnya_bulk_remaining();
    return [
        'pending' => $queued + $bulk,
        'queued' => $queued,
        'bulk' => $bulk,
        'failed' => count(berita_lainnya_failed()),
        'last_error' => is_array($last) ? (string) ($last['message'] ?? '') : '',
        'last_error_time' => is_array($last) ? (int) ($last['time'] ?? 0) : 0,
    ];
}

function berita_lainnya_settings_page(): void
{
    if (!current_user_can('manage_options')) {
        return;
    }
    $state = berita_lainnya_queue_state();
    $notice = isset($_GET['berita_lainnya']) ? sanitize_key((string) $_GET['berita_lainnya']) : ''; // phpcs:ignore WordPress.Security.NonceVerification -- a notice only
    echo '<div class="wrap berita-lainnya-settings"><h1>' . esc_html__('Berita Lainnya', 'berita-lainnya') . '</h1>';
    $notices = [
        'send_all' => __('Every published post is queued: the cron sends them in batches of 100.', 'berita-lainnya'),
        'retried' => __('The queue was run.', 'berita-lainnya'),
    ];
    if (isset($notices[$notice])) {
        echo '<div class="notice notice-success"><p>' . esc_html($notices[$notice]) . '</p></div>';
    }
    echo '<form method="post" action="options.php">';
    settings_fields('berita_lainnya');
    do_settings_sections('berita-lainnya');
    submit_button();
    echo '</form>';

    echo '<h2>' . esc_html__('Sync', 'berita-lainnya') . '</h2>';
    echo '<table class="widefat striped berita-lainnya-queue" style="max-width:50em"><tbody>';
    printf('<tr><th>%s</th><td class="berita-lainnya-pending">%d</td></tr>', esc_html__('Pending', 'berita-lainnya'), $state['pending']);
    printf('<tr><th>%s</th><td>%d</td></tr>', esc_html__('Queued for a retry', 'berita-lainnya'), $state['queued']);
    printf('<tr><th>%s</th><td>%d</td></tr>', esc_html__('Left to send of "Send all posts"', 'berita-lainnya'), $state['bulk']);
    printf('<tr><th>%s</th><td class="berita-lainnya-failed">%d</td></tr>', esc_html__('Failed (not retried)', 'berita-lainnya'), $state['failed']);
    printf(
        '<tr><th>%s</th><td class="berita-lainnya-last-error">%s</td></tr>',
        esc_html__('Last error', 'berita-lainnya'),
        $state['last_error'] === '' ? esc_html__('none', 'berita-lainnya') : esc_html(wp_date('Y-m-d H:i:s', $state['last_error_time']) . ' — ' . $state['last_error'])
    );
    echo '</tbody></table>';
    $failed = berita_lainnya_failed();
    if ($failed !== []) {
        echo '<h3>' . esc_html__('Failed', 'berita-lainnya') . '</h3><ul class="berita-lainnya-failures">';
        foreach (array_slice($failed, 0, 50, true) as $post_id => $job) {
            printf('<li><a href="%s">%s</a>: %s %s</li>', esc_url((string) get_edit_post_link((int) $post_id)), esc_html((string) ($job['id'] ?? $post_id)), esc_html(strtoupper((string) ($job['action'] ?? ''))), esc_html((string) ($job['error'] ?? '')));
        }
        echo '</ul>';
    }
    echo '<p>';
    berita_lainnya_admin_button('berita_lainnya_send_all', __('Send all posts', 'berita-lainnya'), __('For the first load: every published post is sent to the server, 100 at a time, by the cron.', 'berita-lainnya'));
    berita_lainnya_admin_button('berita_lainnya_retry', __('Retry now', 'berita-lainnya'), __('Send the queued posts and failures now.', 'berita-lainnya'));
    echo '</p>';
    $download = wp_nonce_url(admin_url('admin-post.php?action=berita_lainnya_corpus'), 'berita_lainnya_corpus');
    printf('<p><a class="button" href="%s">%s</a> <span class="description">%s</span></p>', esc_url($download), esc_html__('Download corpus (JSON Lines)', 'berita-lainnya'), esc_html__('Every published post, for `recommender train corpus.jsonl`.', 'berita-lainnya'));
    echo '</div>';
}

function berita_lainnya_admin_button(string $action, string $label, string $title): void
{
    printf('<form method="post" action="%s" style="display:inline-block;margin-right:1em">', esc_url(admin_url('admin-post.php')));
    printf('<input type="hidden" name="action" value="%s">', esc_attr($action));
    wp_nonce_field($action);
    printf('<button type="submit" class="button button-secondary" title="%s">%s</button></form>', esc_attr($title), esc_html($label));
}

function berita_lainnya_check_admin(string $action): void
{
    if (!current_user_can('manage_options')) {
        wp_die(esc_html__('Sorry, you are not allowed to do that.', 'berita-lainnya'), '', ['response' => 403]);
    }
    check_admin_referer($action);
}

function berita_lainnya_back(string $notice): void
{
    wp_safe_redirect(add_query_arg('berita_lainnya', $notice, admin_url('options-general.php?page=berita-lainnya')));
    exit;
}

function berita_lainnya_handle_send_all(): void
{
    berita_lainnya_check_admin('berita_lainnya_send_all');
    berita_lainnya_start_bulk();
    berita_lainnya_back('send_all');
}

function berita_lainnya_handle_retry(): void
{
    berita_lainnya_check_admin('berita_lainnya_retry');
    $queue = berita_lainnya_queue();
    foreach (berita_lainnya_failed() as $post_id => $job) {
        $queue[(int) $post_id] = ['action' => (string) ($job['action'] ?? 'put'), 'id' => (string) ($job['id'] ?? ''), 'attempts' => 0, 'next' => 0, 'error' => (string) ($job['error'] ?? ''), 'since' => time()];
    }
    foreach ($queue as $post_id => $job) {
        $queue[$post_id]['next'] = 0;
    }
    berita_lainnya_save_queue($queue);
    update_option(BERITA_LAINNYA_FAILED, [], false);
    $bulk = get_option(BERITA_LAINNYA_BULK);
    if (is_array($bulk)) {
        $bulk['next'] = 0;
        update_option(BERITA_LAINNYA_BULK, $bulk, false);
    }
    berita_lainnya_run_queue(20);
    berita_lainnya_back('retried');
}

/** The corpus download: JSON Lines, streamed as it is written. */
function berita_lainnya_handle_corpus(): void
{
    if (!current_user_can('manage_options')) {
        wp_die(esc_html__('Sorry, you are not allowed to do that.', 'berita-lainnya'), '', ['response' => 403]);
    }
    check_admin_referer('berita_lainnya_corpus');
    while (ob_get_level() > 0) {
        ob_end_clean();
    }
    nocache_headers();
    header('Content-Type: application/x-ndjson; charset=utf-8');
    header('Content-Disposition: attachment; filename="corpus.jsonl"');
    header('X-Content-Type-Options: nosniff');
    $out = fopen('php://output', 'wb');
    if ($out !== false) {
        berita_lainnya_export_corpus($out);
        fclose($out);
    }
    exit;
}
