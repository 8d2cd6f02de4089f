"""Opening a PDF, and refusing one that cannot be read, before any page is looked at."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from voxd.errors import BookError
from voxd.ingest.common import describe

#: PDFs with more pages than this are refused (a book is rarely over 2,000).
MAX_PAGES = 5000
# What MuPDF raises for a damaged file: PyMuPDF's RuntimeError subclasses, and the
# binding's own exceptions where PyMuPDF lets them through.
MUPDF_ERRORS = (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase)


def open_pdf(path: Path) -> pymupdf.Document:
    name = path.name
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except pymupdf.EmptyFileError:
        raise BookError(f"{name} is not a readable PDF: the file is empty") from None
    except FileNotFoundError:
        raise BookError(f"{name} is not a readable PDF: the file does not exist") from None
    except (*MUPDF_ERRORS, OSError) as exc:
        raise BookError(f"{name} is not a readable PDF: {_open_failure(path, exc)}") from None
    try:
        if doc.needs_pass or doc.is_encrypted:
            raise BookError(f"{name} is password protected; voxd cannot read encrypted PDFs")
        if doc.page_count > MAX_PAGES:
            raise BookError(f"{name} has {doc.page_count} pages; voxd reads PDFs of at most {MAX_PAGES} pages")
        if doc.page_count < 1:
            raise BookError(f"{name} is not a readable PDF: it has no pages")
    except BaseException:
        doc.close()
        raise
    return doc


def _open_failure(path: Path, exc: BaseException) -> str:
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
    except OSError as err:
        return err.strerror or describe(exc)
    if b"%PDF-" not in head:
        return "it does not start with a PDF header"
    return "it is damaged beyond repair"
