"""A PDF's title, authors, language and description, and its first page as the cover.

The information dictionary is often empty or says "Untitled" or "Microsoft Word -
draft.docx": then the largest text on the first page is the title.
"""

from __future__ import annotations

import logging
import re

import pymupdf

from voxd.book import Cover, Metadata
from voxd.ingest.common import describe
from voxd.ingest.matter import is_matter_title
from voxd.ingest.pdf.document import MUPDF_ERRORS
from voxd.ingest.pdf.layout import HEADING_MAX_CHARS, HEADING_RATIO
from voxd.ingest.pdf.model import Page

log = logging.getLogger(__name__)

#: Height of the rendered cover in pixels (the width follows the page, at most twice that).
COVER_HEIGHT = 600

_JUNK_TITLE = re.compile(
    r"untitled(?:[\s-]?\d+)?|document\s?\d*|microsoft (?:word|powerpoint) - .*|slide \d+|.*\.(?:docx?|odt|rtf|"
    r"pdf|tex|dvi|ps|indd|qxd|pages|txt|html?)",
    re.IGNORECASE,
)
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def read_metadata(doc: pymupdf.Document, pages: list[Page], body: float, fallback: str) -> Metadata:
    info = doc.metadata or {}

    def field_(key: str) -> str | None:
        value = " ".join(str(info.get(key) or "").split())
        return value or None

    title = field_("title")
    if title and _JUNK_TITLE.fullmatch(title):
        title = None
    title = title or _first_page_title(pages, body) or fallback
    author = field_("author")
    authors: tuple[str, ...] = ()
    if author:
        authors = tuple(a for a in (p.strip() for p in re.split(r";|&| and ", author)) if a)
    return Metadata(
        title=title,
        authors=authors,
        language=document_language(doc),
        description=field_("subject"),
    )


def _first_page_title(pages: list[Page], body: float) -> str | None:
    """The largest text on the first page, if it is clearly larger than the body text."""
    if not pages:
        return None
    blocks = [b for b in pages[0].blocks if b.chars <= 300 and b.size >= body * HEADING_RATIO]
    blocks = [b for b in blocks if not is_matter_title(b.text)]
    if not blocks:
        return None
    largest = max(b.size for b in blocks)
    parts = [b.text for b in blocks if b.size == largest]
    title = " ".join(parts)[:HEADING_MAX_CHARS].strip()
    return title if any(ch.isalpha() for ch in title) else None


def document_language(doc: pymupdf.Document) -> str | None:
    try:
        kind, value = doc.xref_get_key(doc.pdf_catalog(), "Lang")
    except MUPDF_ERRORS:
        return None
    if kind != "string":
        return None
    value = value.strip()
    return value if _LANGUAGE.fullmatch(value) else None


def render_cover(doc: pymupdf.Document, name: str) -> Cover | None:
    try:
        page = doc[0]
        rect = page.rect
        if rect.height < 1 or rect.width < 1:
            return None
        zoom = min(COVER_HEIGHT / rect.height, 2 * COVER_HEIGHT / rect.width)
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False, colorspace=pymupdf.csRGB)
        return Cover(data=pix.tobytes("jpeg", jpg_quality=85), mime="image/jpeg")
    except MUPDF_ERRORS as exc:
        log.warning("%s: could not render the first page as a cover (%s)", name, describe(exc))
        return None
