"""The "Berita Lainnya" HTML box: structure, escaping, unsafe links, custom templates."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from recommender import Recommender, Related
from recommender.render import BOX_TEMPLATE, ITEM_TEMPLATE, render_related

SNAKE_ID = "kompas-8f42b397"


def related(
    id: str = "a-1",
    title: str = "Judul",
    url: str | None = "https://example.com/a-1",
    published: str | None = "2019-09-20",
    section: str | None = "berita",
    score: float = 0.5,
) -> Related:
    return Related(id=id, title=title, url=url, published=published, section=section, score=score)


class Links(HTMLParser):
    """Collects each <li>'s link target and text, and every tag opened, to check the HTML structure."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[tuple[str | None, str]] = []
        self.headings: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.links.append((dict(attrs).get("href"), ""))
            self._in = "a"
        elif tag == "h2":
            self.headings.append("")
            self._in = "h2"

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "a":
            href, text = self.links[-1]
            self.links[-1] = (href, text + data)
        elif self._in == "h2":
            self.headings[-1] += data


def parse(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    parser.close()
    return parser


def test_box_from_model_results(fitted: Recommender) -> None:
    results = fitted.related(SNAKE_ID, k=4)
    html = render_related(results)
    parsed = parse(html)
    assert parsed.headings == ["Berita Lainnya"]
    assert html.count("<li>") == html.count("</li>") == 4
    assert parsed.links == [(r.url, r.title) for r in results]
    assert parsed.tags.count("aside") == 1 and parsed.tags.count("ul") == 1
    assert html.startswith('<aside class="related-articles">')


def test_empty_list_renders_nothing() -> None:
    assert render_related([]) == ""
    assert render_related(()) == ""


def test_titles_are_escaped() -> None:
    title = "<script>alert('x')</script> Tom & \"Jerry\" > 'Rocky'"
    html = render_related([related(title=title)])
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "Tom &amp; &quot;Jerry&quot; &gt; &#x27;Rocky&#x27;" in html
    assert parse(html).links == [("https://example.com/a-1", title)]
    assert parse(html).tags == ["aside", "h2", "ul", "li", "a"]


def test_urls_are_escaped_in_the_attribute() -> None:
    url = 'https://example.com/a?x=1&y=2" onmouseover="alert(1)'
    html = render_related([related(url=url)])
    assert 'href="https://example.com/a?x=1&amp;y=2&quot; onmouseover=&quot;alert(1)"' in html
    assert parse(html).links[0][0] == url  # one attribute, with the quote inside it


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "  javascript:alert(document.cookie)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
    ],
)
def test_unsafe_urls_become_hash(url: str) -> None:
    html = render_related([related(url=url)])
    assert parse(html).links == [("#", "Judul")]
    assert "script:" not in html.lower()


@pytest.mark.parametrize(
    ("url", "href"),
    [
        ("https://example.com/x", "https://example.com/x"),
        ("http://example.com/x", "http://example.com/x"),
        ("/berita/123", "/berita/123"),
        ("  https://example.com/x  ", "https://example.com/x"),
        (None, "#"),
        ("", "#"),
    ],
)
def test_safe_and_missing_urls(url: str | None, href: str) -> None:
    assert parse(render_related([related(url=url)])).links == [(href, "Judul")]


def test_malformed_url_does_not_break_the_box() -> None:
    # Scraped URLs can be malformed (an unbalanced "[" in the host makes urlsplit raise ValueError);
    # the page must still render, with a dead link for that item.
    items = [related(url="https://exa[mple.com/berita"), related(id="a-2", title="Lain")]
    html = render_related(items)
    assert parse(html).links == [("#", "Judul"), ("https://example.com/a-1", "Lain")]


def test_custom_heading_is_escaped() -> None:
    html = render_related([related()], heading="Baca <b>juga</b> & lainnya")
    assert parse(html).headings == ["Baca <b>juga</b> & lainnya"]
    assert "<b>" not in html


def test_custom_templates() -> None:
    items = [
        related(id="x-1", title="Satu", section="olahraga", published="2019-09-20", score=0.123456),
        related(id="x-2", title="Dua & tiga", section=None, published=None, score=1.0),
    ]
    html = render_related(
        items,
        heading="Terkait",
        box_template='<div class="box"><h3>$heading</h3><ol>$items</ol></div>',
        item_template='<li data-id="$id" data-section="$section" data-date="$published">'
        '<a href="$url">$title</a> ($score)</li>',
    )
    assert html == (
        '<div class="box"><h3>Terkait</h3><ol>'
        '<li data-id="x-1" data-section="olahraga" data-date="2019-09-20">'
        '<a href="https://example.com/a-1">Satu</a> (0.123)</li>\n'
        '<li data-id="x-2" data-section="" data-date="">'
        '<a href="https://example.com/a-1">Dua &amp; tiga</a> (1.000)</li>'
        "</ol></div>"
    )


def test_unknown_template_fields_are_left_alone() -> None:
    html = render_related([related()], item_template="<li>$title $unknown $$</li>")
    assert "<li>Judul $unknown $</li>" in html


def test_values_with_dollar_signs_are_not_substituted_again() -> None:
    html = render_related([related(title="Harga $title naik $items")])
    assert parse(html).links == [("https://example.com/a-1", "Harga $title naik $items")]


def test_url_for_maps_results_to_site_links(fitted: Recommender) -> None:
    results = fitted.related(SNAKE_ID, k=3)
    html = render_related(results, url_for=lambda r: f"/read/{r.id}?ref=related&pos=1")
    assert parse(html).links == [(f"/read/{r.id}?ref=related&pos=1", r.title) for r in results]
    assert "&amp;pos=1" in html
    # its result is checked like a stored URL
    unsafe = render_related(results, url_for=lambda r: "javascript:alert(1)" if r.id == results[0].id else None)
    assert [href for href, _ in parse(unsafe).links] == ["#", "#", "#"]


def test_default_templates_are_exported() -> None:
    assert "$heading" in BOX_TEMPLATE and "$items" in BOX_TEMPLATE
    assert re.search(r"\$url.*\$title", ITEM_TEMPLATE)
