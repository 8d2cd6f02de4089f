"""Read an EPUB (2 or 3) into a :class:`~voxd.book.Book` of speakable chapters.

The pipeline:

1. :func:`~voxd.ingest.safezip.check_zip` vets the archive before anything parses it.
2. ebooklib reads the package: manifest, spine, guide and the table of contents
   (NCX or EPUB 3 nav, as ``book.toc``).
3. Every spine document is parsed by us with a hardened lxml parser (no entity
   expansion, no network, no DTD) and flattened into one stream of paragraphs. Each
   table-of-contents target (``file.xhtml#id``) is remembered as a position in that
   stream.
4. Chapters are the stretches of the stream between consecutive TOC targets, so one
   file may hold many chapters and one chapter may span many files. Without a TOC,
   each spine document is a chapter.
5. Front and back matter (cover, title page, copyright, contents, index, colophon...)
   is recognised by ``epub:type``/ARIA roles, landmarks, the EPUB 2 guide and titles.

Metadata comes from the OPF, parsed by us with the same hardened parser.
"""

from voxd.ingest.epub.reader import read_epub

__all__ = ["read_epub"]
