<?php
/** Every page: the header, the post (or a list of posts), and the sidebar. */
?><!doctype html>
<html <?php language_attributes(); ?>>
<head>
<meta charset="<?php bloginfo('charset'); ?>">
<meta name="viewport" content="width=device-width, initial-scale=1">
<?php wp_head(); ?>
</head>
<body <?php body_class(); ?>>
<?php wp_body_open(); ?>
<header class="site-header">
  <p class="site-title"><a href="<?php echo esc_url(home_url('/')); ?>"><?php bloginfo('name'); ?></a></p>
  <p class="site-description"><?php bloginfo('description'); ?></p>
</header>
<div class="site">
  <main class="content">
  <?php if (is_singular()) : ?>
    <?php while (have_posts()) : the_post(); ?>
      <article id="post-<?php the_ID(); ?>" <?php post_class(); ?>>
        <h1 class="entry-title"><?php the_title(); ?></h1>
        <p class="entry-meta">
          <?php $berita_test_categories = get_the_category(); ?>
          <?php if ($berita_test_categories) : ?><span class="category"><?php echo esc_html($berita_test_categories[0]->name); ?></span><?php endif; ?>
          <time datetime="<?php echo esc_attr(get_the_date('c')); ?>"><?php echo esc_html(get_the_date()); ?></time>
        </p>
        <div class="entry-content"><?php the_content(); ?></div>
      </article>
    <?php endwhile; ?>
  <?php else : ?>
    <div class="post-list">
    <?php while (have_posts()) : the_post(); ?>
      <article><a href="<?php the_permalink(); ?>"><?php the_title(); ?></a></article>
    <?php endwhile; ?>
    </div>
  <?php endif; ?>
  </main>
  <aside class="sidebar"><?php dynamic_sidebar('sidebar-1'); ?></aside>
</div>
<footer class="site-footer">Berita Test &middot; WordPress <?php echo esc_html(get_bloginfo('version')); ?></footer>
<?php wp_footer(); ?>
</body>
</html>
