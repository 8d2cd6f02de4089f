"""PDFs at the edges of the furniture and outline rules: one line on every page, and an outline
whose entries crowd onto one page. The PDFs are drawn with PyMuPDF, as in test_ingest_pdf."""

from __future__ import annotations

from pathlib import Path

import pymupdf

from voxd.ingest.pdf import read_pdf

LINE = "Remember to water the plants on Sunday."
SENTENCE = "The river ran quietly past the old mill where nobody had worked for years."


def test_a_pdf_of_the_same_line_on_every_page_is_read_not_taken_for_a_running_head(tmp_path: Path) -> None:
    doc = pymupdf.open()
    for n in range(8):
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 100), LINE, fontsize=11, fontname="helv")
        page.insert_text((290, 800), str(n + 1), fontsize=9, fontname="helv")
    path = tmp_path / "reminders.pdf"
    doc.save(path)
    book = read_pdf(path)
    text = [p for c in book.chapters for p in c.paragraphs]
    assert text and all(p == LINE for p in text)  # the line, page by page; the page numbers gone
    assert len(text) == 8


def test_running_heads_still_go_when_there_is_text_beside_them(tmp_path: Path) -> None:
    doc = pymupdf.open()
    for n in range(8):
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 50), "A Book of Rivers", fontsize=9, fontname="helv")
        y = 120.0
        for k in range(6):
            page.insert_text((72, y), f"{SENTENCE[:-1]} on page {n + 1}, line {k + 1}.", fontsize=11, fontname="helv")
            y += 15
        page.insert_text((290, 800), str(n + 1), fontsize=9, fontname="helv")
    path = tmp_path / "rivers.pdf"
    doc.save(path)
    text = " ".join(p for c in read_pdf(path).chapters for p in c.paragraphs)
    assert "A Book of Rivers" not in text and "on page 8, line 6." in text


def six_pages() -> pymupdf.Document:
    """Six pages of eight numbered lines each ("Page 3, line 1: ..."), for outlines to point into."""
    doc = pymupdf.open()
    for n in range(6):
        page = doc.new_page(width=595, height=842)
        y = 100.0
        for k in range(8):
            page.insert_text((72, y), f"Page {n + 1}, line {k + 1}: {SENTENCE}", fontsize=11, fontname="helv")
            y += 14
    return doc


def test_outline_entries_crowding_one_page_name_it_by_the_first(tmp_path: Path) -> None:
    doc = six_pages()
    toc = [[1, "Chapter One", 1], [1, "Chapter Two", 3]]
    toc += [[1, f"Crowded entry {k}", 3] for k in range(40)]
    toc += [[1, "Chapter Three", 5]]
    doc.set_toc(toc)
    path = tmp_path / "crowded.pdf"
    doc.save(path)
    book = read_pdf(path)
    assert [c.title for c in book.chapters] == ["Chapter One", "Chapter Two", "Chapter Three"]
    assert book.chapters[1].paragraphs[0].startswith("Page 3, line 1:")


def test_a_part_and_its_first_chapter_on_one_page_keep_the_chapter(tmp_path: Path) -> None:
    doc = six_pages()
    doc.set_toc([[1, "Part One", 1], [2, "Chapter 1", 1], [2, "Chapter 2", 3], [1, "Part Two", 5],
                 [2, "Chapter 3", 5]])
    path = tmp_path / "parts.pdf"
    doc.save(path)
    assert [c.title for c in read_pdf(path, toc_depth=2).chapters] == ["Chapter 1", "Chapter 2", "Chapter 3"]
