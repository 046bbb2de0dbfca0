<?php
// Plain PHP with curl: print an article's "Berita Lainnya" box from `recommender serve`.
// Usage: php client.php http://127.0.0.1:8000 kompas-8f42b397
$base = $argv[1] ?? 'http://127.0.0.1:8000';
$id = $argv[2] ?? '';
$ch = curl_init($base . '/related/' . rawurlencode($id) . '?k=5');
curl_setopt_array($ch, [CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT_MS => 500]);
$body = curl_exec($ch);
$status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
curl_close($ch);
$data = $body === false ? null : json_decode($body, true);
if ($status !== 200 || !is_array($data)) {
    exit(0);  // no box rather than a broken page
}
echo "<aside class=\"related-articles\"><h2>Berita Lainnya</h2><ul>\n";
foreach ($data['related'] as $item) {
    $url = htmlspecialchars($item['url'] ?? '#', ENT_QUOTES);
    $title = htmlspecialchars($item['title'], ENT_QUOTES);
    echo "<li><a href=\"$url\">$title</a></li>\n";
}
echo "</ul></aside>\n";
