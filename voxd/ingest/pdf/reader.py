"""read_pdf: a PDF's pages through every step, in order, to a Book or a clear refusal."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from voxd.book import Book, Chapter
from voxd.errors import BookError, VoxdError
from voxd.ingest.common import check_toc_depth, describe
from voxd.ingest.pdf.bookmarks import read_outline
from voxd.ingest.pdf.chapters import Stream
from voxd.ingest.pdf.document import MAX_PAGES, MUPDF_ERRORS, open_pdf
from voxd.ingest.pdf.extract import page_content
from voxd.ingest.pdf.figures import drop_figure_text, drop_fragment_runs, figure_regions, mention
from voxd.ingest.pdf.furniture import strip_furniture
from voxd.ingest.pdf.layout import mark_headings, mark_paragraphs, reading_order
from voxd.ingest.pdf.metadata import document_language, read_metadata, render_cover
from voxd.ingest.pdf.model import Page, weighted_mode

__all__ = ["MAX_PAGES", "PART_CHARS", "read_pdf"]

#: Without outline or headings the text is cut into parts of about this many characters
#: (roughly 20 minutes of speech).
PART_CHARS = 20_000
# A page with fewer letters and digits than this has no text to speak of; a PDF whose
# pages are mostly images without text is a scan.
_MIN_PAGE_CHARS = 20
_SCANNED_SHARE = 0.9
# A text layer with more unmapped glyphs (U+FFFD) than this share is unusable.
_MAX_UNMAPPED_SHARE = 0.3


def read_pdf(
    path: Path,
    *,
    toc_depth: int | None = None,
    skip_front_back_matter: bool = True,
    part_chars: int = PART_CHARS,
    figure_mention: bool = False,
    code_listings: str = "mention",
) -> Book:
    """Read the PDF at ``path`` into a :class:`Book` whose chapters are ready to speak.

    ``toc_depth``: which level of a nested outline makes the chapters (1 is the top
    level); ``None`` picks the level that gives chapter-sized pieces.
    ``skip_front_back_matter``: leave out outline entries such as the table of
    contents, index or copyright page, and a contents page before the first chapter.
    ``part_chars``: size of the "Part N" pieces used when the PDF has neither an outline
    nor headings.
    ``figure_mention``: say "Figure." where the labels of a figure were left out.
    ``code_listings`` is for the EPUB reader (a PDF marks no code).

    Raises :class:`BookError` when the file is not a readable PDF, is encrypted, is a
    scan without a text layer, has too many pages or has no text.
    """
    path = Path(path)
    check_toc_depth(toc_depth)
    if part_chars < 1:
        raise ValueError(f"part_chars must be positive, not {part_chars}")
    name = path.name
    doc = open_pdf(path)
    try:
        return _read(
            doc, path, toc_depth=toc_depth, skip_matter=skip_front_back_matter, part_chars=part_chars,
            figure_mention=figure_mention,
        )
    except VoxdError:
        raise
    except MUPDF_ERRORS as exc:
        raise BookError(f"{name} is not a readable PDF: {describe(exc)}") from None
    finally:
        doc.close()


def _count_letters(page: Page, enough: int) -> int:
    """Letters and digits on the page, counted up to ``enough``."""
    count = 0
    for block in page.blocks:
        for row in block.rows:
            count += sum(ch.isalnum() for ch in row.text)
            if count >= enough:
                return count
    return count


def _read(
    doc: pymupdf.Document, path: Path, *, toc_depth: int | None, skip_matter: bool, part_chars: int,
    figure_mention: bool,
) -> Book:
    name = path.name
    pages: list[Page] = []
    heights: dict[int, float] = {}
    unmapped = visible = 0
    say = mention(document_language(doc)) if figure_mention else None
    for pno in range(doc.page_count):
        pdf_page = doc[pno]
        heights[pno] = pdf_page.rect.height
        content, bad, seen = page_content(pdf_page, pno)
        content.letters = _count_letters(content, _MIN_PAGE_CHARS)
        if content.letters < _MIN_PAGE_CHARS and pdf_page.get_images(full=False):
            content.letters = -1  # an image and (almost) no text: a scanned page
        else:
            drop_figure_text(content, figure_regions(pdf_page), say=say)
        pages.append(content)
        unmapped += bad
        visible += seen

    if visible and unmapped > _MAX_UNMAPPED_SHARE * visible:
        raise BookError(
            f"{name} has no usable text layer (its fonts do not say which letters they draw); OCR is not supported"
        )
    scanned = sum(1 for p in pages if p.letters < 0)
    with_text = sum(1 for p in pages if p.letters >= _MIN_PAGE_CHARS)
    if with_text == 0 or scanned >= _SCANNED_SHARE * len(pages):
        if scanned:
            raise BookError(f"{name} has no text layer (scanned PDF); OCR is not supported")
        raise BookError(f"{name} has no readable text")

    body = weighted_mode((r.size, len(r.text)) for p in pages for b in p.blocks for r in b.rows)
    strip_furniture(pages, body)
    for page in pages:
        mark_headings(page, body)
        reading_order(page)
        drop_fragment_runs(page, say=say)
    mark_paragraphs([b for p in pages for b in p.blocks])

    metadata = read_metadata(doc, pages, body, fallback=path.stem)
    stream = Stream(pages, metadata.title, skip_matter=skip_matter)

    chapters: list[Chapter] = []
    toc = read_outline(doc)
    if toc:
        chapters = stream.outline_chapters(toc, toc_depth, heights)
    if not chapters:
        chapters = stream.heading_chapters()
    if not chapters:
        chapters = stream.part_chapters(part_chars)
    if not chapters:
        raise BookError(f"{name} has no readable text")
    return Book(metadata=metadata, chapters=tuple(chapters), cover=render_cover(doc, name))
