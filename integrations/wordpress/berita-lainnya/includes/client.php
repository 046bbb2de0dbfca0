<?php
/**
 * Calls to the recommender server: one function for every request, answering a small array instead of
 * throwing, so that no call can break a page.
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

/**
 * Send a request to the server.
 *
 * @param string $method  GET, PUT, POST, DELETE
 * @param string $path    e.g. /related/wp-12?k=5 (the id already encoded)
 * @param array<string, mixed>|null $body  sent as JSON
 * @param array<string, string> $headers
 * @return array{status: int, body: string, data: mixed, etag: string, error: string}
 *         status 0 on a network error (error says which); data is the decoded JSON body or null.
 */
function berita_lainnya_request(string $method, string $path, ?array $body = null, array $headers = [], float $timeout = 3.0, bool $auth = false): array
{
    $server = berita_lainnya_server();
    if ($server === '') {
        return ['status' => 0, 'body' => '', 'data' => null, 'etag' => '', 'error' => 'no server URL is set'];
    }
    $headers['Accept'] = 'application/json';
    if ($auth) {
        $headers['Authorization'] = 'Bearer ' . (string) berita_lainnya_setting('token');
    }
    $args = [
        'method' => $method,
        'timeout' => $timeout,
        'berita_lainnya_timeout' => $timeout,  // read by berita_lainnya_curl_timeout()
        'redirection' => 0,
        'headers' => $headers,
        'user-agent' => 'berita-lainnya/' . BERITA_LAINNYA_VERSION . '; ' . home_url('/'),
    ];
    if ($body !== null) {
        $args['headers']['Content-Type'] = 'application/json';
        $args['body'] = wp_json_encode($body, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
    }
    $response = wp_remote_request($server . $path, $args);
    if (is_wp_error($response)) {
        return ['status' => 0, 'body' => '', 'data' => null, 'etag' => '', 'error' => $response->get_error_message()];
    }
    $status = (int) wp_remote_retrieve_response_code($response);
    $text = (string) wp_remote_retrieve_body($response);
    $data = $text === '' ? null : json_decode($text, true);
    $error = '';
    if ($status >= 400) {
        $message = is_array($data) && is_array($data['error'] ?? null) ? (string) ($data['error']['message'] ?? '') : '';
        $error = 'HTTP ' . $status . ($message !== '' ? ': ' . $message : '');
    }
    return [
        'status' => $status,
        'body' => $text,
        'data' => $data,
        'etag' => (string) wp_remote_retrieve_header($response, 'etag'),
        'error' => $error,
    ];
}

/** An article id as a path segment of the server's routes. */
function berita_lainnya_path_id(string $article_id): string
{
    return rawurlencode($article_id);
}

add_action('http_api_curl', 'berita_lainnya_curl_timeout', 10, 2);

/**
 * WordPress's HTTP library (Requests) rounds a cURL timeout up to 1 s, for the system DNS resolver's alarm().
 * A page must wait 0.5 s at most for its box, so the plugin's own requests get their timeout in milliseconds,
 * without signals (CURLOPT_NOSIGNAL): give the server URL as an IP address or a name in /etc/hosts.
 *
 * @param resource|CurlHandle $handle
 * @param array<string, mixed> $args
 */
function berita_lainnya_curl_timeout($handle, $args): void
{
    if (!is_array($args) || !isset($args['berita_lainnya_timeout']) || !$handle instanceof CurlHandle) {
        return;
    }
    $ms = (int) round(1000 * (float) $args['berita_lainnya_timeout']);
    curl_setopt($handle, CURLOPT_NOSIGNAL, 1);
    curl_setopt($handle, CURLOPT_TIMEOUT_MS, $ms);
    curl_setopt($handle, CURLOPT_CONNECTTIMEOUT_MS, $ms);
}
