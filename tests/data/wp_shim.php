<?php
// The few WordPress functions examples/wordpress.php calls, on plain curl, so a test can run it without
// WordPress: php wp_shim.php BASE_URL ARTICLE_ID
function wp_remote_get($url, $args = []) {
    $ch = curl_init($url);
    curl_setopt_array($ch, [CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT_MS => (int) (($args['timeout'] ?? 5) * 1000)]);
    $body = curl_exec($ch);
    $code = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    curl_close($ch);
    return $body === false ? new WP_Error() : ['body' => $body, 'response' => ['code' => $code]];
}
class WP_Error {}
function is_wp_error($thing) { return $thing instanceof WP_Error; }
function wp_remote_retrieve_response_code($response) { return $response['response']['code']; }
function wp_remote_retrieve_body($response) { return $response['body']; }
function esc_url($url) { return htmlspecialchars($url ?? '', ENT_QUOTES); }
function esc_html($text) { return htmlspecialchars($text, ENT_QUOTES); }
require __DIR__ . '/../../examples/wordpress.php';
echo recommender_box($argv[2], $argv[1]), "\n";
