"""The "Berita Lainnya" box as an HTML fragment, with templates a site can override."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from string import Template
from urllib.parse import urlsplit

from .ranking import Related

__all__ = ["BOX_TEMPLATE", "IMAGE_SIZE", "ITEM_TEMPLATE", "THUMBNAIL_TEMPLATE", "render_related"]

BOX_TEMPLATE = """<aside class="related-articles">
  <h2>$heading</h2>
  <ul>
$items
  </ul>
</aside>"""
ITEM_TEMPLATE = '    <li><a href="$url">$thumbnail$title</a></li>'
# An item's picture in the default box: its size given, so the page does not move as pictures load.
THUMBNAIL_TEMPLATE = '<img src="$image" alt="" loading="lazy" width="$width" height="$height"> '
IMAGE_SIZE = (120, 80)


def _safe_url(url: str | None) -> str:
    # Only web and site-relative links: a scraped "javascript:" URL must not become a live link.
    if not url:
        return "#"
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:  # malformed (e.g. an unbalanced "[" in the host): not a link we can vouch for
        return "#"
    return url.strip() if scheme in ("", "http", "https") else "#"


def _safe_image(url: str | None) -> str:
    # A picture's address as a link's: web or site-relative, never "javascript:" or "//host".
    safe = _safe_url(url)
    return "" if safe == "#" or safe.startswith("//") else safe


def render_related(
    related: Sequence[Related],
    *,
    heading: str = "Berita Lainnya",
    box_template: str = BOX_TEMPLATE,
    item_template: str = ITEM_TEMPLATE,
    url_for: Callable[[Related], str | None] | None = None,
    default_image: str | None = None,
    image_size: tuple[int, int] = IMAGE_SIZE,
) -> str:
    """Render related articles as an HTML box; every value is HTML-escaped.

    Templates use ``string.Template`` fields: the box ``$heading`` and ``$items``; each item ``$url``,
    ``$title``, ``$id``, ``$published``, ``$section``, ``$score``, ``$image`` (its picture's address, or
    ``default_image``, or empty) and ``$thumbnail`` (the default box's ``<img>`` of it, lazy-loaded and
    ``image_size`` pixels wide and high; empty without a picture). ``url_for`` maps a result to the
    site's own link (default: its stored ``url``). An empty list renders as an empty string.
    """
    if not related:
        return ""
    item = Template(item_template)
    thumbnail = Template(THUMBNAIL_TEMPLATE)
    width, height = (str(int(n)) for n in image_size)
    items = []
    for r in related:
        fields = {
            "url": _safe_url(url_for(r) if url_for else r.url),
            "title": r.title,
            "id": r.id,
            "published": r.published or "",
            "section": r.section or "",
            "score": f"{r.score:.3f}",
            "image": _safe_image(r.image) or _safe_image(default_image),
        }
        escaped = {k: html.escape(v, quote=True) for k, v in fields.items()}
        picture = thumbnail.substitute(image=escaped["image"], width=width, height=height) if escaped["image"] else ""
        items.append(item.safe_substitute(escaped, thumbnail=picture))
    return Template(box_template).safe_substitute(heading=html.escape(heading), items="\n".join(items))
