"""PDF ingestion: chapters from the outline, from headings or in parts; page furniture removed;
paragraphs joined across lines, columns and pages; encrypted, scanned and broken files refused.

Fixture PDFs are drawn with PyMuPDF in the tests, line by line, the way a typesetter places
them. The shared corpus holds real PDFs from py-pdf/sample-files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pymupdf
import pytest

from voxd.book import Book
from voxd.errors import BookError
from voxd.ingest import read_book
from voxd.ingest.pdf import MAX_PAGES, read_pdf

SIZE = 11.0
LEADING = 1.3

SENTENCES = [
    "The river ran quietly past the old mill where nobody had worked for years.",
    "Every morning the baker's daughter carried warm bread down the narrow lane.",
    "A small dog followed her, barking at the geese that guarded the pond.",
    "By noon the village square was full of carts, voices and the smell of apples.",
    "Nobody noticed the stranger who sat on the church steps reading a letter.",
    "When the bells rang at six, the stranger folded the letter and walked away.",
    "The schoolmaster wrote the names of the rivers of Europe on the blackboard.",
    "Rain came in the evening, soft at first and then hard against the shutters.",
]


# ----------------------------------------------------------------------------- drawing


def wrap(text: str, width: float, size: float = SIZE, font: str = "helv") -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and pymupdf.get_text_length(candidate, fontname=font, fontsize=size) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def draw_lines(
    page: pymupdf.Page, lines: Sequence[str], *, x: float = 72, y: float = 100, size: float = SIZE, font: str = "helv"
) -> float:
    """Write one text line per entry, like a typesetter; returns the next baseline."""
    for line in lines:
        page.insert_text((x, y), line, fontsize=size, fontname=font)
        y += size * LEADING
    return y


def draw_paragraphs(
    page: pymupdf.Page, paragraphs: Sequence[str], *, x: float = 72, y: float = 100, width: float = 450
) -> float:
    for paragraph in paragraphs:
        y = draw_lines(page, wrap(paragraph, width), x=x, y=y)
        y += SIZE  # a blank line between paragraphs
    return y


def draw_heading(page: pymupdf.Page, text: str, *, y: float, size: float = 20) -> float:
    page.insert_text((72, y), text, fontsize=size, fontname="hebo")
    return y + size * 1.8


def new_pages(doc: pymupdf.Document, count: int) -> list[pymupdf.Page]:
    for _ in range(count):
        doc.new_page()  # adding a page invalidates the Page objects held before
    return [doc[n] for n in range(count)]


def paragraph(n: int, count: int = 3) -> str:
    return " ".join(SENTENCES[(n + i) % len(SENTENCES)] for i in range(count))


def save(doc: pymupdf.Document, path: Path, **kwargs: object) -> Path:
    doc.save(path, **kwargs)
    doc.close()
    return path


def tiny_png() -> bytes:
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), False)
    pix.clear_with(180)
    return pix.tobytes("png")


def text_of(book: Book) -> str:
    return "\n".join(p for ch in book.chapters for p in ch.paragraphs)


def titles(book: Book) -> list[str]:
    return [ch.title for ch in book.chapters]


# ----------------------------------------------------------------------------- fixtures


def outline_pdf(path: Path) -> Path:
    """Three pages; Chapter Three starts in the middle of page 2. A nested outline."""
    doc = pymupdf.open()
    doc.set_metadata({"title": "Outlined", "author": "Ada Author; Bob Writer", "subject": "A test book"})
    p1, p2, p3 = new_pages(doc, 3)
    y = draw_heading(p1, "Chapter One", y=100)
    draw_paragraphs(p1, ["Alpha opens the book. " + paragraph(0), paragraph(1)], y=y)
    y = draw_heading(p2, "Chapter Two", y=100)
    draw_paragraphs(p2, ["Beta starts the second chapter. " + paragraph(2)], y=y)
    y = draw_heading(p2, "Chapter Three", y=400)
    draw_paragraphs(p2, ["Gamma starts the third chapter. " + paragraph(3)], y=y)
    draw_paragraphs(p3, ["Delta goes on with the third chapter. " + paragraph(4)], y=100)
    goto = pymupdf.LINK_GOTO
    doc.set_toc(
        [
            [1, "Part One", 1],
            [2, "Chapter One", 1, {"kind": goto, "page": 0, "to": pymupdf.Point(72, 80)}],
            [2, "Chapter Two", 2, {"kind": goto, "page": 1, "to": pymupdf.Point(72, 80)}],
            [2, "Chapter Three", 2, {"kind": goto, "page": 1, "to": pymupdf.Point(72, 380)}],
        ]
    )
    return save(doc, path)


def headings_pdf(path: Path) -> Path:
    """No outline, no title in the metadata: a big title, then big bold chapter headings."""
    doc = pymupdf.open()
    p1, p2 = new_pages(doc, 2)
    p1.insert_text((72, 90), "The Heading Book", fontsize=28, fontname="helv")
    y = draw_heading(p1, "The Arrival", y=160)
    y = draw_paragraphs(p1, ["Arrival text begins here. " + paragraph(0), paragraph(1)], y=y)
    y = draw_heading(p1, "The Market", y=y + 20)
    draw_paragraphs(p1, ["Market text begins here. " + paragraph(2)], y=y)
    y = draw_heading(p2, "The Storm", y=100)
    draw_paragraphs(p2, ["Storm text begins here. " + paragraph(3), paragraph(4)], y=y)
    return save(doc, path)


def plain_pdf(path: Path, pages: int = 4) -> Path:
    doc = pymupdf.open()
    for n in range(pages):
        page = doc.new_page()
        draw_paragraphs(page, [f"Page {n + 1} text. " + paragraph(n), paragraph(n + 1)], y=100)
    return save(doc, path)


def furniture_pdf(path: Path) -> Path:
    """Running heads, running feet and page numbers on every page; hyphenated line breaks."""
    doc = pymupdf.open()
    for n in range(4):
        page = doc.new_page()
        page.insert_text((72, 40), "THE FURNITURE BOOK", fontsize=9, fontname="helv")
        page.insert_text((400, 40), f"Chapter {n + 1} of 4", fontsize=9, fontname="helv")
        page.insert_text((280, 800), f"Page {n + 1}", fontsize=9, fontname="helv")
        page.insert_text((530, 815), f"{n + 10}", fontsize=9, fontname="helv")
        y = draw_paragraphs(page, [f"Body of page {n + 1}. " + paragraph(n)], y=100)
        draw_lines(
            page,
            [
                "The pupils sat their final exam-",
                "ple on a grey morning in the Anglo-",
                "Saxon hall, and nobody spoke a word.",
            ],
            y=y,
        )
    return save(doc, path)


def two_column_pdf(path: Path) -> Path:
    """A title across the page, then two columns; column 2 starts above column 1's end."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((150, 80), "Two Columns", fontsize=24, fontname="hebo")
    left = [f"Left {n}. " + paragraph(n, 2) for n in range(3)] + ["The left column ends here."]
    right = ["The right column starts here. " + paragraph(5, 2)] + [f"Right {n}. " + paragraph(n, 2) for n in range(2)]
    draw_paragraphs(page, left, x=72, y=130, width=210)
    draw_paragraphs(page, right, x=320, y=130, width=210)
    return save(doc, path)


# ----------------------------------------------------------------------------- chapters


def test_outline_gives_the_chapters(tmp_path: Path) -> None:
    book = read_pdf(outline_pdf(tmp_path / "outline.pdf"))
    # "Part One" holds the whole book, so the level below it makes the chapters.
    assert titles(book) == ["Chapter One", "Chapter Two", "Chapter Three"]
    one, two, three = book.chapters
    assert one.paragraphs[0].startswith("Alpha opens the book.")
    assert len(one.paragraphs) == 2
    # The chapter spans from its position to the next entry's, across pages.
    assert two.paragraphs[0].startswith("Beta starts") and "Gamma" not in " ".join(two.paragraphs)
    assert three.paragraphs[0].startswith("Gamma starts") and three.paragraphs[-1].startswith("Delta goes on")
    # The printed heading is not read again after the title.
    assert not any(p.startswith("Chapter") for ch in book.chapters for p in ch.paragraphs)


def test_outline_depth_can_be_chosen(tmp_path: Path) -> None:
    book = read_pdf(outline_pdf(tmp_path / "outline.pdf"), toc_depth=1)
    assert titles(book) == ["Part One"]
    assert "Alpha opens" in text_of(book) and "Delta goes on" in text_of(book)


def test_metadata_from_the_info_dictionary_and_cover_from_page_one(tmp_path: Path) -> None:
    book = read_pdf(outline_pdf(tmp_path / "outline.pdf"))
    assert book.metadata.title == "Outlined"
    assert book.metadata.authors == ("Ada Author", "Bob Writer")
    assert book.metadata.description == "A test book"
    assert book.cover is not None and book.cover.mime == "image/jpeg"
    assert book.cover.data.startswith(b"\xff\xd8\xff")
    assert abs(pymupdf.Pixmap(book.cover.data).height - 600) <= 1


def test_headings_by_font_size_without_outline(tmp_path: Path) -> None:
    book = read_pdf(headings_pdf(tmp_path / "headings.pdf"))
    assert book.metadata.title == "The Heading Book"  # the largest text on page 1
    assert titles(book) == ["The Arrival", "The Market", "The Storm"]
    arrival, market, storm = book.chapters
    assert arrival.paragraphs[0].startswith("Arrival text begins here.") and len(arrival.paragraphs) == 2
    assert market.paragraphs == (f"Market text begins here. {paragraph(2)}",)
    assert storm.paragraphs[0].startswith("Storm text begins here.") and len(storm.paragraphs) == 2


def test_no_outline_no_headings_gives_parts(tmp_path: Path) -> None:
    path = plain_pdf(tmp_path / "plain.pdf", pages=4)
    book = read_pdf(path, part_chars=500)
    assert len(book.chapters) >= 2
    assert titles(book) == [f"Part {n}" for n in range(1, len(book.chapters) + 1)]
    every = [p for ch in book.chapters for p in ch.paragraphs]
    assert len(every) == 8 and every[0].startswith("Page 1 text.") and every[-2].startswith("Page 4 text.")
    assert titles(read_pdf(path)) == ["Part 1"]  # a short text is one part


def test_outline_matter_entries_are_skipped_like_the_epub_readers(tmp_path: Path) -> None:
    """Dedication and bibliography are front and back matter in a PDF's outline too."""
    doc = pymupdf.open()
    p1, p2, p3 = new_pages(doc, 3)
    draw_paragraphs(p1, ["For my cat, who sat on every page."], y=draw_heading(p1, "Dedication", y=100))
    draw_paragraphs(p2, ["Alpha opens the book. " + paragraph(0)], y=draw_heading(p2, "Chapter One", y=100))
    draw_paragraphs(p3, ["Smith, J. A Book of Sources. 1901."], y=draw_heading(p3, "Bibliography", y=100))
    goto = pymupdf.LINK_GOTO
    doc.set_toc(
        [
            [1, title, n + 1, {"kind": goto, "page": n, "to": pymupdf.Point(72, 80)}]
            for n, title in enumerate(["Dedication", "Chapter One", "Bibliography"])
        ]
    )
    path = save(doc, tmp_path / "matter.pdf")
    assert titles(read_pdf(path)) == ["Chapter One"]
    assert titles(read_pdf(path, skip_front_back_matter=False)) == ["Dedication", "Chapter One", "Bibliography"]


# ----------------------------------------------------------------------------- text


def test_running_heads_feet_and_page_numbers_are_removed(tmp_path: Path) -> None:
    book = read_pdf(furniture_pdf(tmp_path / "furniture.pdf"))
    text = text_of(book)
    for n in range(1, 5):
        assert f"Body of page {n}." in text
    assert "FURNITURE" not in text and "of 4" not in text
    assert not re.search(r"\bPage \d\b", text)
    assert not re.search(r"\b1[0-3]\b", text)


def test_hyphenated_line_breaks_are_joined(tmp_path: Path) -> None:
    book = read_pdf(furniture_pdf(tmp_path / "furniture.pdf"))
    text = text_of(book)
    assert "final example on a grey morning in the Anglo-Saxon hall" in text
    assert "exam-" not in text


def test_lines_are_joined_into_paragraphs(tmp_path: Path) -> None:
    book = read_pdf(plain_pdf(tmp_path / "plain.pdf", pages=1))
    assert book.chapters[0].paragraphs == (f"Page 1 text. {paragraph(0)}", paragraph(1))


def test_two_columns_are_read_one_after_the_other(tmp_path: Path) -> None:
    book = read_pdf(two_column_pdf(tmp_path / "columns.pdf"))
    text = text_of(book)
    order = [text.index(marker) for marker in ("Left 0.", "Left 1.", "Left 2.", "The left column ends here.")]
    order += [text.index(marker) for marker in ("The right column starts here.", "Right 0.", "Right 1.")]
    assert order == sorted(order)
    assert text.index("Two Columns") < order[0]


def test_read_book_dispatches_pdf(tmp_path: Path) -> None:
    path = plain_pdf(tmp_path / "Upper.PDF", pages=1)
    assert titles(read_book(path)) == ["Part 1"]


# ----------------------------------------------------------------------------- refused files


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    doc = pymupdf.open()
    draw_paragraphs(doc.new_page(), [paragraph(0)])
    path = save(doc, tmp_path / "secret.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")
    with pytest.raises(BookError, match=r"^secret\.pdf is password protected; voxd cannot read encrypted PDFs$"):
        read_pdf(path)


def test_image_only_pdf_is_refused(tmp_path: Path) -> None:
    doc = pymupdf.open()
    png = tiny_png()
    for _ in range(2):
        doc.new_page().insert_image(pymupdf.Rect(50, 50, 545, 792), stream=png)
    path = save(doc, tmp_path / "scan.pdf")
    with pytest.raises(BookError, match=r"^scan\.pdf has no text layer \(scanned PDF\); OCR is not supported$"):
        read_pdf(path)


def test_blank_pdf_has_no_text(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page()
    with pytest.raises(BookError, match=r"^blank\.pdf has no readable text$"):
        read_pdf(save(doc, tmp_path / "blank.pdf"))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (os.urandom(4096), "it does not start with a PDF header"),
        (b"%PDF-1.7\n" + os.urandom(4096), "it is damaged beyond repair"),
        (b"", "the file is empty"),
    ],
)
def test_not_a_pdf_is_a_clear_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "noise.pdf"
    path.write_bytes(content)
    with pytest.raises(BookError, match=rf"^noise\.pdf is not a readable PDF: {re.escape(reason)}$"):
        read_book(path)


def blank_pages_pdf(path: Path, count: int) -> Path:
    """A minimal PDF of ``count`` empty pages, written by hand (PyMuPDF takes seconds for 5,000)."""
    parts = [b"%PDF-1.4\n"]
    offsets = []

    def add(obj: str) -> None:
        offsets.append(sum(map(len, parts)))
        parts.append(obj.encode())

    kids = " ".join(f"{n + 3} 0 R" for n in range(count))
    add("1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj\n")
    add(f"2 0 obj <</Type/Pages/Count {count}/Kids[{kids}]>> endobj\n")
    for n in range(count):
        add(f"{n + 3} 0 obj <</Type/Page/Parent 2 0 R/MediaBox[0 0 100 100]>> endobj\n")
    xref = sum(map(len, parts))
    table = "".join(f"{offset:010d} 00000 n \n" for offset in offsets)
    parts.append(f"xref\n0 {count + 3}\n0000000000 65535 f \n{table}".encode())
    parts.append(f"trailer <</Size {count + 3}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n".encode())
    path.write_bytes(b"".join(parts))
    return path


def test_too_many_pages_is_refused(tmp_path: Path) -> None:
    path = blank_pages_pdf(tmp_path / "huge.pdf", MAX_PAGES + 1)
    with pytest.raises(BookError, match=rf"^huge\.pdf has {MAX_PAGES + 1} pages; voxd reads PDFs of at most"):
        read_pdf(path)


# ----------------------------------------------------------------------------- the corpus


def test_corpus_encrypted_pdf_fails_clearly(corpus_dir: Path) -> None:
    path = corpus_dir / "pdf-libreoffice-writer-password.pdf"
    with pytest.raises(BookError, match="password protected; voxd cannot read encrypted PDFs"):
        read_book(path)


def test_corpus_outline_pdf_uses_its_outline(corpus_dir: Path) -> None:
    path = corpus_dir / "pdf-pdflatex-outline.pdf"
    with pymupdf.open(path) as doc:
        outline = [title for level, title, _ in doc.get_toc() if level == 1]
    book = read_book(path)
    assert titles(book) == outline == ["Foo", "Bar", "Baz"] * 3
    for chapter in book.chapters:
        assert chapter.paragraphs[0].startswith("Hello, here is some text without a meaning.")
    assert "Contents" not in text_of(book)  # the contents page before the first entry is skipped


def test_corpus_multicolumn_pdf_reads_column_by_column(corpus_dir: Path) -> None:
    book = read_book(corpus_dir / "pdf-multicolumn.pdf")
    text = text_of(book)
    assert book.metadata.title == "Two-Column Document with Lorem Ipsum"
    # Page 1: the second paragraph of column 1 and the end of column 1 come before the
    # top of column 2 (which sits higher on the page than both).
    second_in_column_1 = text.index("Nam dui ligula, fringilla a, euismod sodales")
    end_of_column_1 = text.index("Vivamus viverra fermentum felis. Donec nonummy")
    top_of_column_2 = text.index("pellentesque ante. Phasellus adipiscing semper elit.")
    assert second_in_column_1 < end_of_column_1 < top_of_column_2
    # The sentence cut by the column break is one paragraph; page numbers are gone.
    assert any("Donec nonummy pellentesque ante." in p for ch in book.chapters for p in ch.paragraphs)
    assert not any(p.strip() in {"1", "2", "3"} for ch in book.chapters for p in ch.paragraphs)


# ----------------------------------------------------------------------------- section breaks


def test_story_sections_become_breaks_not_words(tmp_path: Path) -> None:
    """A big "I" above the text is a section number, not a drop cap; "* * *" is a break."""
    from voxd.book import SECTION_BREAK

    doc = pymupdf.open()
    (page,) = new_pages(doc, 1)
    y = draw_heading(page, "The Empty House", y=90)
    page.insert_text((290, y + 10), "I", fontsize=24, fontname="helv")
    y = draw_paragraphs(page, ["The house stood empty all winter. " + paragraph(0)], y=y + 50)
    page.insert_text((295, y + 10), "II", fontsize=SIZE, fontname="helv")
    y = draw_paragraphs(page, ["In spring a cart arrived. " + paragraph(1)], y=y + 40)
    page.insert_text((280, y), "* * *", fontsize=SIZE, fontname="helv")
    draw_paragraphs(page, ["By summer the garden was full of beans. " + paragraph(2)], y=y + 30)
    book = read_pdf(save(doc, tmp_path / "story.pdf"))
    paragraphs = [p for c in book.chapters for p in c.paragraphs]
    assert [p[:20] for p in paragraphs][-6:] == [
        "I", "The house stood empt", "II", "In spring a cart arr", SECTION_BREAK, "By summer the garden"
    ]


# ----------------------------------------------------------------------------- figures


def figure_pdf(path: Path) -> Path:
    """Prose, a vector plot with axis ticks and labels drawn with PyMuPDF's drawing API, a
    boxed paragraph (prose inside a frame) and a diagram made of text labels only."""
    doc = pymupdf.open()
    (page,) = new_pages(doc, 1)
    y = draw_paragraphs(page, ["The plot below shows the growth of the village. " + paragraph(0)], y=80)
    top, left, size = y + 10, 120.0, 160.0
    shape = page.new_shape()
    shape.draw_line((left, top + size), (left + size, top + size))  # x axis
    shape.draw_line((left, top), (left, top + size))  # y axis
    for i in range(5):
        x = left + i * size / 4
        shape.draw_line((x, top + size), (x, top + size + 4))
        page.insert_text((x - 3, top + size + 14), str(i * 5), fontsize=8, fontname="helv")
        ty = top + size - i * size / 4
        shape.draw_line((left - 4, ty), (left, ty))
        page.insert_text((left - 18, ty + 3), str(i * 10), fontsize=8, fontname="helv")
    shape.draw_bezier((left, top + size), (left + 60, top + size - 20), (left + 100, top + 40), (left + size, top))
    shape.finish(color=(0, 0, 0), width=0.8)
    shape.commit()
    page.insert_text((left + size + 6, top + size + 3), "x", fontsize=9, fontname="helv")
    page.insert_text((left - 4, top - 6), "f(x)", fontsize=9, fontname="helv")
    page.insert_text((left + 80, top + 60), "A", fontsize=9, fontname="helv")
    y = top + size + 40
    y = draw_paragraphs(page, ["After the plot the story goes on. " + paragraph(1)], y=y)
    box = page.new_shape()
    box.draw_rect(pymupdf.Rect(66, y - 8, 530, y + 50))
    box.finish(color=(0, 0, 0), width=0.5)
    box.commit()
    y = draw_paragraphs(page, ["A boxed note is prose and is read. " + paragraph(2, 1)], y=y + 6)
    for label, dx, dy in [("A", 200, 20), ("B", 120, 45), ("C", 280, 45), ("1", 90, 70), ("2", 160, 70),
                          ("3", 300, 70)]:  # a tree drawn with text alone
        page.insert_text((dx, y + dy), label, fontsize=9, fontname="helv")
    draw_paragraphs(page, ["The last paragraph ends the page. " + paragraph(3)], y=y + 100)
    return save(doc, path)


def test_figure_labels_are_left_out(tmp_path: Path) -> None:
    path = figure_pdf(tmp_path / "figure.pdf")
    paragraphs = [p for c in read_pdf(path).chapters for p in c.paragraphs]
    text = "\n".join(paragraphs)
    for kept in ("The plot below", "After the plot", "A boxed note is prose", "The last paragraph"):
        assert kept in text
    assert not [p for p in paragraphs if len(p) < 25], paragraphs  # no "0 5 10", "f(x)", "A B C"
    assert "f(x)" not in text
    mentioned = [p for c in read_pdf(path, figure_mention=True).chapters for p in c.paragraphs]
    assert mentioned.count("Figure.") == 2


def test_short_lines_of_dialogue_are_no_figure(tmp_path: Path) -> None:
    doc = pymupdf.open()
    (page,) = new_pages(doc, 1)
    y = draw_paragraphs(page, ["They stood at the gate. " + paragraph(0)], y=80)
    y = draw_paragraphs(page, ['"Yes."', '"No."', '"Why not?"', "Ha!"], y=y)
    draw_paragraphs(page, ["Then they went in. " + paragraph(1)], y=y)
    paragraphs = [p for c in read_pdf(save(doc, tmp_path / "talk.pdf")).chapters for p in c.paragraphs]
    assert paragraphs[1:5] == ['"Yes."', '"No."', '"Why not?"', "Ha!"]
