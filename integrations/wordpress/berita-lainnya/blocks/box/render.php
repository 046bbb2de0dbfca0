<?php
/**
 * The block's front end: the box of the post in context (or the current post), rendered on the server.
 *
 * @var array<string, mixed> $attributes
 * @var WP_Block $block
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

echo berita_lainnya_render_box( // phpcs:ignore WordPress.Security.EscapeOutput -- every value is escaped by the render function
    isset($block->context['postId']) ? (int) $block->context['postId'] : (int) get_the_ID(),
    ['k' => (int) ($attributes['k'] ?? 0)]
);
