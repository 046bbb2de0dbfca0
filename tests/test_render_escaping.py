"""Every field the "Berita Lainnya" templates can print is HTML-escaped: one test per field, with hostile values,
then through the real paths a value takes to the page (corpus → model → box, the CLI's --html, a store a CMS
may have written to)."""

from __future__ import annotations

import json
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recommender import Recommender, Related, RelatedStore, read_articles
from recommender.batch import precompute
from recommender.cli import app
from recommender.render import render_related

# Every item field, each in an attribute (where a quote would end the value) and in text (where a tag would open).
ALL_FIELDS = (
    '<li data-id="$id" data-section="$section" data-published="$published" data-score="$score">'
    '<a href="$url">$title</a> <span>$id|$section|$published|$score</span></li>'
)
HOSTILE = "<script>alert(\"x\")</script> & 'y'"
# Written out by hand (not computed with html.escape, which is what render_related uses).
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;y&#x27;"
# A URL that passes the web-links-only rule (https) and still tries to break out of href="...".
HOSTILE_URL = "https://example.com/a?x=1&y=2\"><script>alert('u')</script>"
ESCAPED_URL = "https://example.com/a?x=1&amp;y=2&quot;&gt;&lt;script&gt;alert(&#x27;u&#x27;)&lt;/script&gt;"

BENIGN = {
    "id": "a-1",
    "title": "Judul",
    "url": "https://example.com/a-1",
    "published": "2019-09-20",
    "section": "berita",
}


class Tags(HTMLParser):
    """Every tag opened, each <li>'s attributes and each <a>'s href and text, as a browser would decode them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.items: list[dict[str, str | None]] = []
        self.links: list[tuple[str | None, str]] = []
        self.spans: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "li":
            self.items.append(dict(attrs))
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), ""))
        elif tag == "span":
            self.spans.append("")
        self._in = tag

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "a":
            self.links[-1] = (self.links[-1][0], self.links[-1][1] + data)
        elif self._in == "span":
            self.spans[-1] += data


def parse(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    parser.close()
    return parser


def item(**fields: str) -> str:
    """The expected ALL_FIELDS item, with each value as given (already escaped)."""
    values = {**BENIGN, "score": "0.500", **fields}
    return (
        f'<li data-id="{values["id"]}" data-section="{values["section"]}" data-published="{values["published"]}" '
        f'data-score="{values["score"]}"><a href="{values["url"]}">{values["title"]}</a> '
        f"<span>{values['id']}|{values['section']}|{values['published']}|{values['score']}</span></li>"
    )


def box(*items: str) -> str:
    lines = "\n".join(items)
    return f'<aside class="related-articles">\n  <h2>Berita Lainnya</h2>\n  <ul>\n{lines}\n  </ul>\n</aside>'


# --- one test per field ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["id", "title", "section", "published"])
def test_field_is_escaped(field: str) -> None:
    result = Related(**{**BENIGN, field: HOSTILE}, score=0.5)  # type: ignore[arg-type]
    html = render_related([result], item_template=ALL_FIELDS)
    assert html == box(item(**{field: ESCAPED}))
    parsed = parse(html)
    assert parsed.tags == ["aside", "h2", "ul", "li", "a", "span"]  # no <script>: the value stayed text
    values = {**BENIGN, field: HOSTILE}  # and a browser shows each value as it was
    assert parsed.items == [
        {"data-id": values["id"], "data-section": values["section"], "data-published": values["published"],
         "data-score": "0.500"}
    ]  # fmt: skip
    assert parsed.links == [(values["url"], values["title"])]
    assert parsed.spans == [f"{values['id']}|{values['section']}|{values['published']}|0.500"]


def test_url_is_escaped() -> None:
    html = render_related([Related(**{**BENIGN, "url": HOSTILE_URL}, score=0.5)], item_template=ALL_FIELDS)  # type: ignore[arg-type]
    assert html == box(item(url=ESCAPED_URL))
    parsed = parse(html)
    assert parsed.tags == ["aside", "h2", "ul", "li", "a", "span"]
    assert parsed.links == [(HOSTILE_URL, "Judul")]


@pytest.mark.parametrize(("score", "text"), [(0.5, "0.500"), (0.1234567, "0.123"), (1.0, "1.000"), (0.0, "0.000")])
def test_score_is_printed_as_a_number(score: float, text: str) -> None:
    # A float: it cannot carry markup; it is printed with three decimals in every place the template uses it.
    html = render_related([Related(**BENIGN, score=score)], item_template=ALL_FIELDS)  # type: ignore[arg-type]
    assert html == box(item(score=text))


def test_missing_fields_are_empty_not_none() -> None:
    result = Related(id="a-1", title="Judul", url=None, published=None, section=None, score=0.5)
    html = render_related([result], item_template=ALL_FIELDS)
    assert html == box(item(url="#", published="", section=""))


def test_every_field_hostile_at_once_in_several_items() -> None:
    results = [
        Related(id=HOSTILE, title=HOSTILE, url=HOSTILE_URL, published=HOSTILE, section=HOSTILE, score=0.25),
        Related(**BENIGN, score=0.125),  # type: ignore[arg-type]
    ]
    html = render_related(results, heading=HOSTILE, item_template=ALL_FIELDS)
    first = item(id=ESCAPED, title=ESCAPED, url=ESCAPED_URL, published=ESCAPED, section=ESCAPED, score="0.250")
    expected = box(first, item(score="0.125")).replace("<h2>Berita Lainnya</h2>", f"<h2>{ESCAPED}</h2>")
    assert html == expected
    assert "<script>" not in html


# --- through the real paths ----------------------------------------------------------------------------

EVIL_ID = 'b-2"><script>alert(1)</script>'
EVIL_TITLE = "Banjir <script>alert('t')</script> & \"Jakarta\" [/] [link=javascript:alert(1)]klik[/link]"
EVIL_SECTION = "<img src=x onerror=alert(1)>"
EVIL_URL = 'https://example.com/banjir?a=1&b="><script>alert(2)</script>'
PUBLISHED = "2019-09-20T10:00:00+07:00"


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny corpus file whose second article has a hostile id, title, section and URL (all valid records),
    trained and saved."""
    folder = tmp_path_factory.mktemp("hostile")
    records = [
        {"id": "q-1", "title": "Banjir besar melanda Jakarta", "body": "Hujan deras, banjir di Jakarta Timur.",
         "published": "2019-09-20T08:00:00+07:00", "section": "berita", "url": "https://example.com/q-1"},
        {"id": EVIL_ID, "title": EVIL_TITLE, "body": "Banjir di Jakarta Timur setelah hujan deras semalam.",
         "published": PUBLISHED, "section": EVIL_SECTION, "url": EVIL_URL},
        {"id": "c-3", "title": "Harga cabai naik", "body": "Pasar induk mencatat harga cabai naik lagi.",
         "published": "2019-09-19", "section": "ekonomi", "url": "https://example.com/c-3"},
    ]  # fmt: skip
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    path = folder / "model.joblib"
    Recommender.train(read_articles(corpus).articles, n_jobs=1).save(path)
    return path


def test_hostile_corpus_values_are_escaped_in_the_box(hostile_model: Path) -> None:
    results = Recommender.load(hostile_model).related("q-1", k=1)
    assert [r.id for r in results] == [EVIL_ID]
    html = render_related(results, item_template=ALL_FIELDS)
    parsed = parse(html)
    assert parsed.tags == ["aside", "h2", "ul", "li", "a", "span"]
    assert parsed.items == [
        {"data-id": EVIL_ID, "data-section": EVIL_SECTION, "data-published": PUBLISHED,
         "data-score": f"{results[0].score:.3f}"}
    ]  # fmt: skip
    assert parsed.links == [(EVIL_URL, EVIL_TITLE)]
    assert parsed.spans == [f"{EVIL_ID}|{EVIL_SECTION}|{PUBLISHED}|{results[0].score:.3f}"]
    assert 'data-id="b-2&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert 'data-section="&lt;img src=x onerror=alert(1)&gt;"' in html


def test_cli_html_escapes_hostile_titles_and_urls(hostile_model: Path) -> None:
    result = CliRunner().invoke(app, ["related", "q-1", "-k", "1", "--html", "--model", str(hostile_model)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        '<aside class="related-articles">\n'
        "  <h2>Berita Lainnya</h2>\n"
        "  <ul>\n"
        '    <li><a href="https://example.com/banjir?a=1&amp;b=&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;">'
        "Banjir &lt;script&gt;alert(&#x27;t&#x27;)&lt;/script&gt; &amp; &quot;Jakarta&quot; [/] "
        "[link=javascript:alert(1)]klik[/link]</a></li>\n"
        "  </ul>\n"
        "</aside>\n"
    )
    assert result.stderr == ""


def test_values_a_cms_wrote_into_the_store_are_escaped(hostile_model: Path, tmp_path: Path) -> None:
    # A store's articles table is the CMS's to read and, perhaps, to fill: a date there is whatever text it holds.
    store = tmp_path / "related.sqlite"
    precompute(Recommender.load(hostile_model), store, k=1)
    conn = sqlite3.connect(store)
    try:
        with conn:
            conn.execute("UPDATE articles SET published = ? WHERE id = ?", (HOSTILE, EVIL_ID))
    finally:
        conn.close()
    results = RelatedStore(store).related("q-1")
    assert [(r.id, r.published, r.section) for r in results] == [(EVIL_ID, HOSTILE, EVIL_SECTION)]
    html = render_related(results, item_template=ALL_FIELDS)
    parsed = parse(html)
    assert parsed.tags == ["aside", "h2", "ul", "li", "a", "span"]
    assert parsed.items[0]["data-published"] == HOSTILE
    assert f'data-published="{ESCAPED}"' in html
