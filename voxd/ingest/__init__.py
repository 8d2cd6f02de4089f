"""Turn a book file into a :class:`~voxd.book.Book`, choosing the reader by file type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from voxd.book import Book
from voxd.errors import UnsupportedFormat

__all__ = ["READERS", "read_book", "read_epub", "read_manifest", "read_pdf"]

Reader = Callable[..., Book]


# The readers import their parsers (PyMuPDF alone is ~110 MB of RSS) only when a
# book of their kind arrives, so the daemon starts small and fast.
def read_epub(path: Path, **options: Any) -> Book:
    from voxd.ingest.epub import read_epub as reader

    return reader(path, **options)


def read_pdf(path: Path, **options: Any) -> Book:
    from voxd.ingest.pdf import read_pdf as reader

    return reader(path, **options)


def read_manifest(path: Path, **options: Any) -> Book:
    from voxd.ingest.manifest import read_manifest as reader

    return reader(path, **options)


#: File suffix (lower case) -> reader. Readers take the path and keyword options.
READERS: dict[str, Reader] = {
    ".epub": read_epub,
    ".pdf": read_pdf,
    ".json": read_manifest,  # *.voxd.json, and any other *.json
}


def read_book(path: Path, **options: Any) -> Book:
    """Read ``path`` with the reader for its suffix; ``options`` go to that reader.

    Raises :class:`UnsupportedFormat` for a file type voxd does not read and
    :class:`~voxd.errors.BookError` for a file that is corrupt, hostile or empty
    (an ``.epub`` that is not a zip, for instance). The cover is decoded here, under a
    pixel limit, and comes back as a JPEG of sane size, or not at all
    (:func:`voxd.ingest.cover.sane_cover`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        kind = f"file type '{suffix}'" if suffix else "file with no extension"
        raise UnsupportedFormat(f"{path.name}: unsupported {kind} (voxd reads .epub, .pdf and .voxd.json)")
    book = reader(path, **options)
    if book.cover is not None:
        from voxd.ingest.cover import sane_cover

        book = replace(book, cover=sane_cover(book.cover, path.name))
    return book
