"""The "Berita Lainnya" box as an HTML fragment, with templates a site can override."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from string import Template
from urllib.parse import urlsplit

from .ranking import Related

__all__ = ["BOX_TEMPLATE", "ITEM_TEMPLATE", "render_related"]

BOX_TEMPLATE = """<aside class="related-articles">
  <h2>$heading</h2>
  <ul>
$items
  </ul>
</aside>"""
ITEM_TEMPLATE = '    <li><a href="$url">$title</a></li>'


def _safe_url(url: str | None) -> str:
    # Only web and site-relative links: a scraped "javascript:" URL must not become a live link.
    if not url:
        return "#"
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:  # malformed (e.g. an unbalanced "[" in the host): not a link we can vouch for
        return "#"
    return url.strip() if scheme in ("", "http", "https") else "#"


def render_related(
    related: Sequence[Related],
    *,
    heading: str = "Berita Lainnya",
    box_template: str = BOX_TEMPLATE,
    item_template: str = ITEM_TEMPLATE,
    url_for: Callable[[Related], str | None] | None = None,
) -> str:
    """Render related articles as an HTML box; every value is HTML-escaped.

    Templates use ``string.Template`` fields: the box ``$heading`` and ``$items``; each item ``$url``,
    ``$title``, ``$id``, ``$published``, ``$section`` and ``$score``. ``url_for`` maps a result to
    the site's own link (default: its stored ``url``). An empty list renders as an empty string.
    """
    if not related:
        return ""
    item = Template(item_template)
    items = []
    for r in related:
        fields = {
            "url": _safe_url(url_for(r) if url_for else r.url),
            "title": r.title,
            "id": r.id,
            "published": r.published or "",
            "section": r.section or "",
            "score": f"{r.score:.3f}",
        }
        items.append(item.safe_substitute({k: html.escape(v, quote=True) for k, v in fields.items()}))
    return Template(box_template).safe_substitute(heading=html.escape(heading), items="\n".join(items))
