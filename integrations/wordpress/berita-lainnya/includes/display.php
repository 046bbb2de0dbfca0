<?php
/**
 * Where the box is shown: the block `berita-lainnya/box`, the shortcode `[berita_lainnya]`, the classic widget
 * and, when the setting is on, after the post content. All call berita_lainnya_render_box().
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

add_action('init', 'berita_lainnya_register_display');
add_action('widgets_init', 'berita_lainnya_register_widget');
add_action('wp_enqueue_scripts', 'berita_lainnya_enqueue_style');
add_filter('the_content', 'berita_lainnya_append_to_content', 20);

function berita_lainnya_register_display(): void
{
    register_block_type(BERITA_LAINNYA_DIR . '/blocks/box');
    add_shortcode('berita_lainnya', 'berita_lainnya_shortcode');
}

/**
 * `[berita_lainnya]`, `[berita_lainnya k="3"]`, `[berita_lainnya id="12"]` (a post ID; default: the current post).
 *
 * @param array<string, string>|string $atts
 */
function berita_lainnya_shortcode($atts): string
{
    $atts = shortcode_atts(['k' => '', 'id' => ''], is_array($atts) ? $atts : [], 'berita_lainnya');
    $post_id = ctype_digit((string) $atts['id']) ? (int) $atts['id'] : (int) get_the_ID();
    return berita_lainnya_render_box($post_id, ['k' => (int) $atts['k']]);
}

/**
 * After the content of a single post, when the setting asks for it and the post has no box of its own.
 *
 * @param string|null $content
 */
function berita_lainnya_append_to_content($content): string
{
    $content = (string) $content;
    if (!berita_lainnya_setting('append') || !is_singular(berita_lainnya_post_types()) || !in_the_loop() || !is_main_query()) {
        return $content;
    }
    $post_id = (int) get_the_ID();
    if ($post_id !== (int) get_queried_object_id() || has_block('berita-lainnya/box', $post_id) || has_shortcode($content, 'berita_lainnya')) {
        return $content;
    }
    return $content . berita_lainnya_render_box($post_id);
}

function berita_lainnya_enqueue_style(): void
{
    if (is_singular()) {
        wp_enqueue_style('berita-lainnya', plugins_url('assets/box.css', BERITA_LAINNYA_FILE), [], BERITA_LAINNYA_VERSION);
    }
}

function berita_lainnya_register_widget(): void
{
    register_widget('Berita_Lainnya_Widget');
}

/** The classic widget: the box of the post being shown, on single posts only. */
class Berita_Lainnya_Widget extends WP_Widget
{
    public function __construct()
    {
        parent::__construct('berita_lainnya', __('Berita Lainnya', 'berita-lainnya'), [
            'description' => __('Related articles of the post being shown (single posts only).', 'berita-lainnya'),
        ]);
    }

    /**
     * @param array<string, mixed> $args
     * @param array<string, mixed> $instance
     */
    public function widget($args, $instance): void
    {
        if (!is_singular(berita_lainnya_post_types())) {
            return;
        }
        $box = berita_lainnya_render_box((int) get_queried_object_id(), ['k' => (int) ($instance['k'] ?? 0)]);
        if ($box === '') {
            return;
        }
        echo $args['before_widget'] ?? '', $box, $args['after_widget'] ?? ''; // phpcs:ignore WordPress.Security.EscapeOutput -- escaped by the render function and the theme
    }

    /**
     * @param array<string, mixed> $instance
     */
    public function form($instance): string
    {
        $k = (int) ($instance['k'] ?? 0);
        printf(
            '<p><label for="%1$s">%2$s</label> <input class="tiny-text" type="number" min="0" max="50" id="%1$s" name="%3$s" value="%4$s"></p>',
            esc_attr($this->get_field_id('k')),
            esc_html__('Items (0: the settings\' k):', 'berita-lainnya'),
            esc_attr($this->get_field_name('k')),
            esc_attr((string) $k)
        );
        return '';
    }

    /**
     * @param array<string, mixed> $new_instance
     * @param array<string, mixed> $old_instance
     * @return array<string, mixed>
     */
    public function update($new_instance, $old_instance): array
    {
        return ['k' => max(0, min(50, (int) ($new_instance['k'] ?? 0)))];
    }
}
