<?php
/**
 * Sync: every published post of the synced types is on the server, nothing else.
 *
 * Publishing or updating a post sends `PUT /articles/{id}`; leaving `publish` (draft, private, trash) or being
 * deleted sends `DELETE /articles/{id}` (a 404 means already gone). The call is made at once; one that fails
 * for a passing reason (network error, timeout, 5xx, 429) goes into the queue, the option
 * `berita_lainnya_queue` (a job per post: the latest action wins), which the cron event `berita_lainnya_sync`
 * retries with exponential backoff (1 min, 2, 4, ... at most 1 h). Any other 4xx is a permanent failure,
 * kept in `berita_lainnya_failed` and shown on the settings page.
 *
 * "Send all posts" (the first load) sets a cursor, `berita_lainnya_bulk`: the cron sends every published post
 * after it in batches of 100 through `POST /articles`.
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

const BERITA_LAINNYA_QUEUE = 'berita_lainnya_queue';
const BERITA_LAINNYA_FAILED = 'berita_lainnya_failed';
const BERITA_LAINNYA_BULK = 'berita_lainnya_bulk';
const BERITA_LAINNYA_LAST_ERROR = 'berita_lainnya_last_error';
const BERITA_LAINNYA_BATCH = 100;
const BERITA_LAINNYA_WRITE_TIMEOUT = 5.0;

add_filter('cron_schedules', 'berita_lainnya_cron_schedules');
add_action('berita_lainnya_sync', 'berita_lainnya_run_queue');
add_action('transition_post_status', 'berita_lainnya_on_transition', 10, 3);
add_action('wp_after_insert_post', 'berita_lainnya_on_after_insert', 10, 1);
add_action('wp_trash_post', 'berita_lainnya_on_remove', 10, 1);
add_action('before_delete_post', 'berita_lainnya_on_remove', 10, 1);
add_action('shutdown', 'berita_lainnya_flush_pending');

/**
 * @param array<string, array<string, mixed>> $schedules
 * @return array<string, array<string, mixed>>
 */
function berita_lainnya_cron_schedules($schedules): array
{
    $schedules = is_array($schedules) ? $schedules : [];
    $schedules['berita_lainnya_minute'] = ['interval' => 60, 'display' => __('Every minute', 'berita-lainnya')];
    return $schedules;
}

/** What this request has decided and not sent yet, and the posts it has already removed from the server. */
final class Berita_Lainnya_Pending
{
    /** @var array<int, string> 'put' or 'delete', by post ID */
    public static array $actions = [];

    /** @var array<int, bool> posts already DELETEd in this request */
    public static array $removed = [];
}

/** Whether a post's type is synced. */
function berita_lainnya_is_synced(WP_Post $post): bool
{
    return in_array($post->post_type, berita_lainnya_post_types(), true);
}

/**
 * A status change: publish (or republish, an update) means PUT, leaving publish means DELETE. The PUT waits for
 * `wp_after_insert_post`, when the post's terms and meta are saved (the block editor saves them after the
 * status).
 */
function berita_lainnya_on_transition(string $new_status, string $old_status, WP_Post $post): void
{
    if (!berita_lainnya_is_synced($post) || berita_lainnya_server() === '') {
        return;
    }
    if ($new_status === 'publish') {
        Berita_Lainnya_Pending::$actions[$post->ID] = 'put';
        unset(Berita_Lainnya_Pending::$removed[$post->ID]);
    } elseif ($old_status === 'publish' && !isset(Berita_Lainnya_Pending::$removed[$post->ID])) {
        Berita_Lainnya_Pending::$actions[$post->ID] = 'delete';
    }
}

/** @param int|string $post_id */
function berita_lainnya_on_after_insert($post_id): void
{
    $post_id = (int) $post_id;
    $action = Berita_Lainnya_Pending::$actions[$post_id] ?? null;
    if ($action !== null) {
        unset(Berita_Lainnya_Pending::$actions[$post_id]);
        berita_lainnya_sync_post($post_id, $action);
    }
}

/**
 * Trashing or deleting: a published post leaves the server (once, even when both hooks fire).
 *
 * @param int|string $post_id
 */
function berita_lainnya_on_remove($post_id): void
{
    $post = get_post((int) $post_id);
    if (!$post instanceof WP_Post || !berita_lainnya_is_synced($post) || berita_lainnya_server() === '') {
        return;
    }
    $queued = berita_lainnya_queue()[$post->ID] ?? null;
    if (isset(Berita_Lainnya_Pending::$removed[$post->ID]) || ($post->post_status !== 'publish' && $queued === null)) {
        return;
    }
    Berita_Lainnya_Pending::$removed[$post->ID] = true;
    unset(Berita_Lainnya_Pending::$actions[$post->ID]);
    berita_lainnya_sync_post($post->ID, 'delete');
}

/** The end of a request: whatever was decided and not sent yet (a status changed outside wp_insert_post). */
function berita_lainnya_flush_pending(): void
{
    foreach (Berita_Lainnya_Pending::$actions as $post_id => $action) {
        unset(Berita_Lainnya_Pending::$actions[$post_id]);
        berita_lainnya_sync_post((int) $post_id, $action);
    }
}

/**
 * The queue: jobs by post ID, each {action, id, attempts, next, error, since}.
 *
 * @return array<int, array<string, mixed>>
 */
function berita_lainnya_queue(): array
{
    $queue = get_option(BERITA_LAINNYA_QUEUE, []);
    return is_array($queue) ? $queue : [];
}

/** @param array<int, array<string, mixed>> $queue */
function berita_lainnya_save_queue(array $queue): void
{
    update_option(BERITA_LAINNYA_QUEUE, $queue, false);
}

/**
 * Permanent failures, by post ID: {action, id, error, time}.
 *
 * @return array<int, array<string, mixed>>
 */
function berita_lainnya_failed(): array
{
    $failed = get_option(BERITA_LAINNYA_FAILED, []);
    return is_array($failed) ? $failed : [];
}

/** Seconds before the next try after `attempts` failures: 1 min, 2, 4, ... at most 1 h. */
function berita_lainnya_backoff(int $attempts): int
{
    return (int) min(HOUR_IN_SECONDS, MINUTE_IN_SECONDS * 2 ** min(10, max(0, $attempts - 1)));
}

/** What an answer means for a write: 'ok', 'retry' (a passing failure) or 'fail' (permanent). */
function berita_lainnya_outcome(array $answer, string $action): string
{
    $status = (int) $answer['status'];
    if (($status >= 200 && $status < 300) || ($status === 404 && $action === 'delete')) {
        return 'ok';
    }
    if ($status === 0 || $status === 429 || $status >= 500) {
        return 'retry';
    }
    return 'fail';
}

/** Record the last error, shown on the settings page. */
function berita_lainnya_note_error(string $message): void
{
    update_option(BERITA_LAINNYA_LAST_ERROR, ['message' => $message, 'time' => time()], false);
}

/**
 * Send one post's action now. A post to PUT that is no longer published is DELETEd instead. Success clears its
 * queued job and failure; a passing failure (re)queues it with backoff; a permanent one is recorded.
 *
 * @return string 'ok', 'retry' or 'fail'
 */
function berita_lainnya_sync_post(int $post_id, string $action): string
{
    $post = get_post($post_id);
    if ($action === 'put' && (!$post instanceof WP_Post || $post->post_status !== 'publish')) {
        $action = 'delete';
    }
    $article_id = berita_lainnya_article_id($post_id);
    $path = '/articles/' . berita_lainnya_path_id($article_id);
    $answer = $action === 'put' && $post instanceof WP_Post
        ? berita_lainnya_request('PUT', $path, berita_lainnya_article($post), [], BERITA_LAINNYA_WRITE_TIMEOUT, true)
        : berita_lainnya_request('DELETE', $path, null, [], BERITA_LAINNYA_WRITE_TIMEOUT, true);
    $outcome = berita_lainnya_outcome($answer, $action);
    $queue = berita_lainnya_queue();
    $failed = berita_lainnya_failed();
    $job = $queue[$post_id] ?? null;
    $had_failed = isset($failed[$post_id]);
    unset($queue[$post_id], $failed[$post_id]);
    if ($outcome === 'ok') {
        berita_lainnya_flush_boxes($post_id);
    } elseif ($outcome === 'retry') {
        $attempts = (int) ($job['attempts'] ?? 0) + 1;
        $queue[$post_id] = [
            'action' => $action,
            'id' => $article_id,
            'attempts' => $attempts,
            'next' => time() + berita_lainnya_backoff($attempts),
            'error' => $answer['error'],
            'since' => (int) ($job['since'] ?? time()),
        ];
        berita_lainnya_note_error(sprintf('%s %s: %s', strtoupper($action), $article_id, $answer['error']));
    } else {
        $failed[$post_id] = ['action' => $action, 'id' => $article_id, 'error' => $answer['error'], 'time' => time()];
        berita_lainnya_note_error(sprintf('%s %s: %s', strtoupper($action), $article_id, $answer['error']));
    }
    if ($job !== null || $outcome === 'retry') {
        berita_lainnya_save_queue($queue);
    }
    if ($outcome === 'fail' || $had_failed) {
        update_option(BERITA_LAINNYA_FAILED, $failed, false);
    }
    return $outcome;
}

/**
 * The cron event: the queued jobs that are due, then the next batches of "Send all posts", for at most
 * `$seconds` seconds.
 *
 * @param int|string $seconds
 */
function berita_lainnya_run_queue($seconds = 20): void
{
    $seconds = is_numeric($seconds) ? (int) $seconds : 20;  // do_action() passes '' when given nothing
    if (berita_lainnya_server() === '') {
        return;
    }
    $deadline = microtime(true) + max(1, $seconds);
    foreach (berita_lainnya_queue() as $post_id => $job) {
        if (microtime(true) > $deadline) {
            return;
        }
        if ((int) ($job['next'] ?? 0) <= time()) {
            if (berita_lainnya_sync_post((int) $post_id, (string) ($job['action'] ?? 'put')) === 'retry') {
                return;  // the server is failing: the other jobs wait for their own time
            }
        }
    }
    while (microtime(true) < $deadline && berita_lainnya_send_batch() === 'more') {
        // next batch
    }
}

/**
 * Start "Send all posts": every published post of the synced types, in ID order.
 */
function berita_lainnya_start_bulk(): void
{
    update_option(BERITA_LAINNYA_BULK, ['after' => 0, 'sent' => 0, 'next' => 0, 'attempts' => 0, 'started' => time()], false);
    if (!wp_next_scheduled('berita_lainnya_sync')) {
        wp_schedule_event(time() + 60, 'berita_lainnya_minute', 'berita_lainnya_sync');
    }
    wp_schedule_single_event(time(), 'berita_lainnya_sync', [], false);
}

/** The published posts of "Send all posts" still to send. */
function berita_lainnya_bulk_remaining(): int
{
    $bulk = get_option(BERITA_LAINNYA_BULK);
    if (!is_array($bulk)) {
        return 0;
    }
    global $wpdb;
    $types = berita_lainnya_post_types();
    $placeholders = implode(',', array_fill(0, count($types), '%s'));
    // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- placeholders only
    return (int) $wpdb->get_var($wpdb->prepare("SELECT COUNT(*) FROM {$wpdb->posts} WHERE post_status = 'publish' AND post_type IN ($placeholders) AND ID > %d", ...[...$types, (int) $bulk['after']]));
}

/**
 * Send the next batch of "Send all posts" (up to 100 posts, one `POST /articles`).
 *
 * @return string 'more', 'done' (nothing left or no bulk running) or 'wait' (failed; retried later)
 */
function berita_lainnya_send_batch(): string
{
    $bulk = get_option(BERITA_LAINNYA_BULK);
    if (!is_array($bulk) || (int) ($bulk['next'] ?? 0) > time()) {
        return is_array($bulk) ? 'wait' : 'done';
    }
    $posts = berita_lainnya_published_posts((int) $bulk['after'], BERITA_LAINNYA_BATCH);
    if ($posts === []) {
        delete_option(BERITA_LAINNYA_BULK);
        return 'done';
    }
    $articles = [];
    foreach ($posts as $post) {
        $articles[] = ['id' => berita_lainnya_article_id($post->ID)] + berita_lainnya_article($post);
    }
    $answer = berita_lainnya_request('POST', '/articles', ['articles' => $articles], [], 30.0, true);
    $outcome = berita_lainnya_outcome($answer, 'put');
    if ($outcome === 'fail') {
        // one bad article refuses the batch: send each alone, so the others go and the bad one is recorded
        foreach ($posts as $post) {
            berita_lainnya_sync_post($post->ID, 'put');
        }
        $outcome = 'ok';
    }
    if ($outcome === 'retry') {
        $bulk['attempts'] = (int) ($bulk['attempts'] ?? 0) + 1;
        $bulk['next'] = time() + berita_lainnya_backoff((int) $bulk['attempts']);
        $bulk['error'] = $answer['error'];
        update_option(BERITA_LAINNYA_BULK, $bulk, false);
        berita_lainnya_note_error('POST /articles: ' . $answer['error']);
        return 'wait';
    }
    $last = end($posts);
    $bulk['after'] = $last->ID;
    $bulk['sent'] = (int) ($bulk['sent'] ?? 0) + count($posts);
    $bulk['attempts'] = 0;
    $bulk['next'] = 0;
    unset($bulk['error']);
    update_option(BERITA_LAINNYA_BULK, $bulk, false);
    return 'more';
}

/**
 * The next published posts of the synced types after a post ID, in ID order (the corpus export pages with it).
 *
 * @return list<WP_Post>
 */
function berita_lainnya_published_posts(int $after, int $limit): array
{
    global $wpdb;
    $types = berita_lainnya_post_types();
    if ($types === []) {
        return [];
    }
    $placeholders = implode(',', array_fill(0, count($types), '%s'));
    // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- placeholders only
    $sql = $wpdb->prepare("SELECT ID FROM {$wpdb->posts} WHERE post_status = 'publish' AND post_type IN ($placeholders) AND ID > %d ORDER BY ID ASC LIMIT %d", ...[...$types, $after, $limit]);
    $ids = array_map('intval', $wpdb->get_col($sql));
    if ($ids === []) {
        return [];
    }
    _prime_post_caches($ids, true, true);
    return array_values(array_filter(array_map('get_post', $ids), static fn ($post): bool => $post instanceof WP_Post));
}
