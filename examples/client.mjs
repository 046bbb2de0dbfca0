// JavaScript (Node 18+ or a browser): print an article's "Berita Lainnya" box from `recommender serve`.
// Usage: node client.mjs http://127.0.0.1:8000 kompas-8f42b397
const [base = "http://127.0.0.1:8000", id = ""] = process.argv.slice(2);
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
try {
  // The timeout covers the body too: a server that hangs mid-answer is given up on after 0.5 s.
  const response = await fetch(`${base}/related/${encodeURIComponent(id)}?k=5`, {
    signal: AbortSignal.timeout(500),
  });
  if (response.ok) {
    const { related } = await response.json();
    const items = related.map((r) => `<li><a href="${escape(r.url ?? "#")}">${escape(r.title)}</a></li>`);
    console.log(`<aside class="related-articles"><h2>Berita Lainnya</h2><ul>\n${items.join("\n")}\n</ul></aside>`);
  }
} catch {
  // Server down, hanging or answering garbage: no box rather than a broken page.
}
