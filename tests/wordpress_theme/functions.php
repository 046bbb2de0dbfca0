<?php
/** The test theme: a title tag and one sidebar of classic widgets. */

add_action('after_setup_theme', static function (): void {
    add_theme_support('title-tag');
    add_theme_support('post-thumbnails');
});

add_action('widgets_init', static function (): void {
    register_sidebar([
        'name' => 'Sidebar',
        'id' => 'sidebar-1',
        'before_widget' => '<section id="%1$s" class="widget %2$s">',
        'after_widget' => '</section>',
        'before_title' => '<h2 class="widget-title">',
        'after_title' => '</h2>',
    ]);
});

add_action('wp_enqueue_scripts', static function (): void {
    wp_enqueue_style('berita-test', get_stylesheet_uri(), [], '1.0');
});
