"""Read a PDF into a :class:`~voxd.book.Book` of speakable chapters, with PyMuPDF.

The pipeline:

1. The file is opened as a PDF and vetted: unreadable, encrypted (a user password is
   needed) and over-long files are refused with a :class:`BookError` that says why.
2. Every page's text comes from ``page.get_text("dict")``: blocks of lines of spans,
   each with its position, font size and weight. Lines that share a baseline inside a
   block become one *row*; a block whose font size changes (a heading printed in the
   same block as the text below it) is split there.
3. Page furniture is removed: rows at the top or bottom edge of a page that repeat on
   several pages at about the same height (running heads and feet, digits ignored),
   and edge rows that are only a page number ("12", "Page 3", "3 of 10", "- iv -").
4. Blocks are put in reading order: on a page with columns (block x-ranges that form
   separate clusters) each column is read top to bottom, left to right, between the
   blocks that span the columns (a title, a wide table).
5. Rows are joined into paragraphs: a paragraph starts with a block, unless the block
   continues a sentence cut by a column or page break; inside a block, a large
   vertical gap, a first-line indent or (in justified text) a short line ending a
   sentence starts a new one. Words hyphenated across lines are joined.
6. Chapters come from the outline (bookmarks) when there is one, at the level that
   gives chapter-sized pieces; otherwise from headings found by font size; otherwise
   the text is cut into "Part 1", "Part 2"... of about ``part_chars`` characters.

Metadata comes from the document information dictionary and the catalog's ``/Lang``;
without a title, the largest text on the first page is the title. The cover is the
first page, rendered to a JPEG about 600 pixels tall.
"""

from voxd.ingest.pdf.metadata import COVER_HEIGHT as COVER_HEIGHT
from voxd.ingest.pdf.reader import MAX_PAGES, PART_CHARS, read_pdf

__all__ = ["MAX_PAGES", "PART_CHARS", "read_pdf"]
