<?php
/**
 * Plugin Name:       Berita Lainnya
 * Plugin URI:        https://github.com/
 * Description:       Related articles ("Berita Lainnya") under each post, from a `recommender serve` server: a block, a shortcode, a widget, sync of every published post, and pins and blocks from the post editor.
 * Version:           1.0.0
 * Requires at least: 6.1
 * Requires PHP:      8.2
 * Author:            recommender
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:       berita-lainnya
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

define('BERITA_LAINNYA_VERSION', '1.0.0');
define('BERITA_LAINNYA_FILE', __FILE__);
define('BERITA_LAINNYA_DIR', __DIR__);

require_once __DIR__ . '/includes/settings.php';
require_once __DIR__ . '/includes/client.php';
require_once __DIR__ . '/includes/article.php';
require_once __DIR__ . '/includes/render.php';
require_once __DIR__ . '/includes/display.php';
require_once __DIR__ . '/includes/sync.php';
require_once __DIR__ . '/includes/export.php';
require_once __DIR__ . '/includes/admin.php';
require_once __DIR__ . '/includes/metabox.php';

register_activation_hook(__FILE__, 'berita_lainnya_activate');
register_deactivation_hook(__FILE__, 'berita_lainnya_deactivate');

/** Activation: the sync cron event, every minute. */
function berita_lainnya_activate(): void
{
    if (!wp_next_scheduled('berita_lainnya_sync')) {
        wp_schedule_event(time() + 60, 'berita_lainnya_minute', 'berita_lainnya_sync');
    }
}

/** Deactivation: the cron event goes; the settings and the queue stay (uninstall.php removes them). */
function berita_lainnya_deactivate(): void
{
    wp_clear_scheduled_hook('berita_lainnya_sync');
}
