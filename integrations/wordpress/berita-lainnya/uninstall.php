<?php
/**
 * Uninstall: the plugin's options, transients (the cached boxes) and cron event go. The articles stay on the
 * recommender server.
 */

declare(strict_types=1);

if (!defined('WP_UNINSTALL_PLUGIN')) {
    exit;
}

foreach (['berita_lainnya_settings', 'berita_lainnya_queue', 'berita_lainnya_failed', 'berita_lainnya_bulk', 'berita_lainnya_last_error', 'widget_berita_lainnya'] as $option) {
    delete_option($option);
}
global $wpdb;
$wpdb->query(
    $wpdb->prepare(
        "DELETE FROM {$wpdb->options} WHERE option_name LIKE %s OR option_name LIKE %s",
        $wpdb->esc_like('_transient_berita_lainnya_') . '%',
        $wpdb->esc_like('_transient_timeout_berita_lainnya_') . '%'
    )
);
wp_clear_scheduled_hook('berita_lainnya_sync');
wp_cache_flush();
