"""EPUB ingestion: chapters from the navigation, text cleaned for speech, metadata, hostile files.

Fixture books are written with ebooklib (as a publishing tool would) or, for hostile ones,
with zipfile directly. The shared corpus holds real books.
"""

from __future__ import annotations

import re
import struct
import time
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from ebooklib import epub

from voxd.book import Book
from voxd.errors import BookError, UnsupportedFormat
from voxd.ingest import read_book
from voxd.ingest.epub import read_epub

# ----------------------------------------------------------------------------- builders


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


Doc = tuple[str, str, str]  # file name, <title>, body markup


def build_epub(
    path: Path,
    docs: Sequence[Doc],
    toc: list | None = None,
    *,
    title: str = "A Test Book",
    authors: Sequence[str] = ("Ada Author",),
    language: str = "en",
    cover: bytes | None = None,
    metadata: Sequence[tuple[str | None, str, str, dict]] = (),
    guide: Sequence[dict] = (),
) -> Path:
    """Write an EPUB 3 (with NCX) with ebooklib. ``toc=None`` lists every document."""
    book = epub.EpubBook()
    book.set_identifier("urn:uuid:voxd-test")
    book.set_title(title)
    book.set_language(language)
    for i, author in enumerate(authors):
        book.add_author(author, uid=f"author{i}")
    for namespace, name, value, others in metadata:
        book.add_metadata(namespace, name, value, others)
    if cover is not None:
        book.set_cover("images/cover.png", cover)
    items = []
    for file_name, doc_title, body in docs:
        item = epub.EpubHtml(title=doc_title, file_name=file_name, lang=language)
        item.content = f"<html><head><title>{doc_title}</title></head><body>{body}</body></html>"
        book.add_item(item)
        items.append(item)
    if toc is None:
        toc = [epub.Link(file_name, doc_title, f"t{i}") for i, (file_name, doc_title, _) in enumerate(docs)]
    book.toc = toc
    book.guide = list(guide)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = (["cover"] if cover is not None else []) + ["nav", *items]
    epub.write_epub(str(path), book)
    return path


CONTAINER = b"""<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""

RAW_OPF = """<?xml version="1.0" encoding="utf-8"?>
{doctype}<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:identifier id="uid">urn:uuid:raw</dc:identifier>
    <dc:title>{title}</dc:title>
    <dc:creator>Raw Writer</dc:creator>
    <dc:language>en</dc:language>
  </metadata>
  <manifest>
    <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
    <item id="c1" href="chapter.xhtml" media-type="application/xhtml+xml"/>
  </manifest>
  <spine><itemref idref="c1"/></spine>
</package>"""

RAW_NAV = b"""<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">
<head><title>Nav</title></head>
<body><nav epub:type="toc"><ol><li><a href="chapter.xhtml">The Only Chapter</a></li></ol></nav></body>
</html>"""


def build_raw_epub(
    path: Path,
    chapter: bytes,
    *,
    opf_title: str = "Raw Book",
    opf_doctype: str = "",
    extra: dict[str, bytes] | None = None,
) -> Path:
    """Write an EPUB byte for byte with zipfile, the way a hostile tool would."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), b"application/epub+zip")
        zf.writestr("META-INF/container.xml", CONTAINER)
        zf.writestr("OEBPS/content.opf", RAW_OPF.format(title=opf_title, doctype=opf_doctype).encode())
        zf.writestr("OEBPS/nav.xhtml", RAW_NAV)
        zf.writestr("OEBPS/chapter.xhtml", chapter)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def xhtml(body: str, *, doctype: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        + doctype
        + '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        + f"<head><title>t</title></head><body>{body}</body></html>"
    ).encode()


def titles(book: Book) -> list[str]:
    return [c.title for c in book.chapters]


def all_text(book: Book) -> str:
    return "\n".join(p for c in book.chapters for p in c.paragraphs)


LOREM = "It was a bright cold day in April, and the clocks were striking thirteen."

# --------------------------------------------------------------------- basic structure


def test_three_chapters_from_the_nav(tmp_path: Path) -> None:
    docs = [
        ("ch1.xhtml", "The Beginning", f"<h1>The Beginning</h1><p>{LOREM}</p><p>Second paragraph.</p>"),
        ("ch2.xhtml", "The Middle", "<h2>The Middle</h2><p>Things happen.</p>"),
        ("ch3.xhtml", "The End", "<h2>The End</h2><p>It ends.</p>"),
    ]
    book = read_epub(build_epub(tmp_path / "three.epub", docs, authors=("Ada Author", "Bob Writer")))

    assert titles(book) == ["The Beginning", "The Middle", "The End"]
    assert book.chapters[0].paragraphs == (LOREM, "Second paragraph.")  # heading equal to the title dropped
    assert book.chapters[1].paragraphs == ("Things happen.",)
    assert book.metadata.title == "A Test Book"
    assert book.metadata.authors == ("Ada Author", "Bob Writer")
    assert book.metadata.language == "en"
    assert book.cover is None


def test_toc_titles_win_and_follow_reading_order(tmp_path: Path) -> None:
    docs = [
        ("a.xhtml", "a", f"<h1>Chapter 1</h1><p>{LOREM}</p>"),
        ("b.xhtml", "b", "<h1>Chapter 2</h1><p>Second.</p>"),
    ]
    toc = [epub.Link("a.xhtml", "Chapter 1: Arrival", "a"), epub.Link("b.xhtml", "Chapter 2: Departure", "b")]
    book = read_epub(build_epub(tmp_path / "titles.epub", docs, toc))
    assert titles(book) == ["Chapter 1: Arrival", "Chapter 2: Departure"]
    assert book.chapters[0].paragraphs == (LOREM,)  # "Chapter 1" only repeats part of the title


def test_chapters_from_fragments_of_one_file(tmp_path: Path) -> None:
    body = (
        '<section id="one"><h2>One</h2><p>First story.</p></section>'
        '<section id="two"><h2>Two</h2><p>Second story.</p><p>More of it.</p></section>'
        '<section id="three"><h2>Three</h2><p>Third <span id="mid">story</span> here.</p></section>'
    )
    toc = [
        epub.Link("all.xhtml#one", "One", "1"),
        epub.Link("all.xhtml#two", "Two", "2"),
        epub.Link("all.xhtml#three", "Three", "3"),
    ]
    book = read_epub(build_epub(tmp_path / "fragments.epub", [("all.xhtml", "All", body)], toc))
    assert titles(book) == ["One", "Two", "Three"]
    assert [c.paragraphs for c in book.chapters] == [
        ("First story.",),
        ("Second story.", "More of it."),
        ("Third story here.",),
    ]


def test_fragment_in_the_middle_of_a_paragraph_starts_there(tmp_path: Path) -> None:
    body = '<p>Closing words of part one. <a id="p2"/>Opening words of part two.</p><p>More two.</p>'
    toc = [epub.Link("x.xhtml", "Part One", "1"), epub.Link("x.xhtml#p2", "Part Two", "2")]
    book = read_epub(build_epub(tmp_path / "mid.epub", [("x.xhtml", "X", body)], toc))
    assert [c.paragraphs for c in book.chapters] == [
        ("Closing words of part one.",),
        ("Opening words of part two.", "More two."),
    ]


def test_one_chapter_spans_several_files(tmp_path: Path) -> None:
    docs = [
        ("p1.xhtml", "p1", "<h1>Long Chapter</h1><p>Page one.</p>"),
        ("p2.xhtml", "p2", "<p>Page two.</p>"),
        ("p3.xhtml", "p3", "<h1>Short Chapter</h1><p>Page three.</p>"),
    ]
    toc = [epub.Link("p1.xhtml", "Long Chapter", "1"), epub.Link("p3.xhtml", "Short Chapter", "3")]
    book = read_epub(build_epub(tmp_path / "span.epub", docs, toc))
    assert titles(book) == ["Long Chapter", "Short Chapter"]
    assert book.chapters[0].paragraphs == ("Page one.", "Page two.")


def test_spine_fallback_without_a_toc(tmp_path: Path) -> None:
    docs = [
        ("a.xhtml", "a", f"<h1>Opening</h1><p>{LOREM}</p>"),
        ("b.xhtml", "b", "<p>No heading in this one.</p>"),
        ("c.xhtml", "c", '<hgroup><h2>III</h2><p epub:type="title">The Finale</p></hgroup><p>Done.</p>'),
    ]
    book = read_epub(build_epub(tmp_path / "notoc.epub", docs, toc=[]))
    assert titles(book) == ["Opening", "Chapter 2", "III: The Finale"]
    assert book.chapters[0].paragraphs == (LOREM,)
    assert book.chapters[2].paragraphs == ("Done.",)


def _parts_book(tmp_path: Path, parts: int, chapters_per_part: int, name: str) -> Path:
    docs, toc = [], []
    for p in range(1, parts + 1):
        docs.append((f"part{p}.xhtml", f"Part {p}", f"<h1>Part {p}</h1>"))
        kids = []
        for c in range(1, chapters_per_part + 1):
            file_name = f"p{p}c{c}.xhtml"
            docs.append((file_name, f"Chapter {p}.{c}", f"<h2>Chapter {p}.{c}</h2>" + f"<p>{LOREM}</p>" * 5))
            kids.append(epub.Link(file_name, f"Chapter {p}.{c}", f"p{p}c{c}"))
        toc.append((epub.Section(f"Part {p}", href=f"part{p}.xhtml"), kids))
    return build_epub(tmp_path / name, docs, toc)


def test_nested_toc_goes_deeper_when_one_part_holds_the_book(tmp_path: Path) -> None:
    path = _parts_book(tmp_path, parts=1, chapters_per_part=3, name="onepart.epub")
    assert titles(read_epub(path)) == ["Chapter 1.1", "Chapter 1.2", "Chapter 1.3"]
    whole = read_epub(path, toc_depth=1)
    assert titles(whole) == ["Part 1"]
    assert whole.chapters[0].paragraphs[0] == "Chapter 1.1"  # inner headings stay as text
    assert len(whole.chapters[0].paragraphs) == 3 * 6


def test_nested_toc_keeps_the_top_level_when_it_is_chapter_sized(tmp_path: Path) -> None:
    path = _parts_book(tmp_path, parts=4, chapters_per_part=2, name="fourparts.epub")
    assert titles(read_epub(path)) == ["Part 1", "Part 2", "Part 3", "Part 4"]
    assert len(read_epub(path, toc_depth=2).chapters) == 8
    two = _parts_book(tmp_path, parts=2, chapters_per_part=2, name="twoparts.epub")
    assert titles(read_epub(two)) == ["Chapter 1.1", "Chapter 1.2", "Chapter 2.1", "Chapter 2.2"]


def test_bad_toc_depth(tmp_path: Path) -> None:
    path = build_epub(tmp_path / "d.epub", [("a.xhtml", "A", f"<p>{LOREM}</p>")])
    with pytest.raises(ValueError, match="toc_depth"):
        read_epub(path, toc_depth=0)


# ------------------------------------------------------------------ front and back matter


FRONT_BACK = [
    ("cover.xhtml", "Cover", '<img src="images/cover.png" alt="Cover of the book"/>'),
    ("title.xhtml", "Title Page", '<section epub:type="titlepage"><h1>A Test Book</h1><p>by Ada Author</p></section>'),
    ("copy.xhtml", "Copyright", "<p>Copyright 2024 Ada Author. All rights reserved.</p>"),
    ("legal.xhtml", "Legal", "<p>Printed in nowhere. ISBN 000.</p>"),
    ("contents.xhtml", "Contents", "<ol><li>Preface</li><li>Chapter 1</li></ol>"),
    ("dedication.xhtml", "Dedication", '<section epub:type="dedication"><p>For my cat.</p></section>'),
    ("preface.xhtml", "Preface", "<h1>Preface</h1><p>Why I wrote this.</p>"),
    ("ch1.xhtml", "Chapter 1", f"<h1>Chapter 1</h1><p>{LOREM}</p>"),
    ("ch2.xhtml", "Chapter 2", "<h1>Chapter 2</h1><p>The story goes on.</p>"),
    ("colophon.xhtml", "Afterthoughts", '<section epub:type="colophon"><p>Set in Garamond.</p></section>'),
    ("index.xhtml", "Index", "<p>apples, 3</p><p>pears, 7</p>"),
]


def test_front_and_back_matter_are_skipped(tmp_path: Path) -> None:
    guide = [{"href": "legal.xhtml", "title": "Legal", "type": "copyright-page"}]
    book = read_epub(build_epub(tmp_path / "matter.epub", FRONT_BACK, guide=guide))
    assert titles(book) == ["Preface", "Chapter 1", "Chapter 2"]
    text = all_text(book)
    for unwanted in ("Copyright", "ISBN", "For my cat", "Garamond", "apples", "Cover of the book"):
        assert unwanted not in text


def test_front_and_back_matter_can_be_kept(tmp_path: Path) -> None:
    book = read_epub(build_epub(tmp_path / "matter.epub", FRONT_BACK), skip_front_back_matter=False)
    kept = titles(book)
    assert kept[:2] == ["Title Page", "Copyright"]
    assert {"Dedication", "Preface", "Chapter 1", "Afterthoughts", "Index"} <= set(kept)
    assert "Cover" not in kept  # an image alone has nothing to read
    assert "Contents" in kept  # an untyped list of contents is text when nothing is skipped


def test_matter_between_chapters_ends_the_previous_chapter(tmp_path: Path) -> None:
    body = (
        f'<section id="c1"><h1>One</h1><p>{LOREM}</p></section>'
        '<section id="notes" epub:type="endnotes"><h1>Notes</h1><p>1. A note.</p></section>'
    )
    toc = [epub.Link("x.xhtml#c1", "One", "1"), epub.Link("x.xhtml#notes", "Notes", "2")]
    book = read_epub(build_epub(tmp_path / "notes.epub", [("x.xhtml", "X", body)], toc))
    assert titles(book) == ["One"]
    assert book.chapters[0].paragraphs == (LOREM,)


# ---------------------------------------------------------------------- text for speech


def test_text_is_cleaned_for_speech(tmp_path: Path) -> None:
    body = (
        "<h1>Notes and Noise</h1>"
        '<p>A foot\u00adnote here<a epub:type="noteref" href="#fn1">1</a> and a role one'
        '<a role="doc-noteref" href="#fn2">[2]</a> and a sup<sup><a href="#fn3">3</a></sup> and a bare'
        " sup<sup>4</sup>.</p>"
        "<p>Zero\u200bwidth\u2060joiners and    lots\n\t of   space.</p>"
        '<p>Read <a href="https://example.com/page">the website</a> or <a href="https://example.com">'
        "https://example.com</a> today.</p>"
        "<p>Line one<br/>Line two<br/>Line three</p>"
        '<p>Look: <img src="x.png" alt="a diagram of nothing"/> done.</p>'
        '<p>Page<span epub:type="pagebreak" id="p7" title="7">7</span> break.</p>'
        "<script>var secret = 'script text';</script><style>p { color: red }</style>"
        '<aside epub:type="footnote" id="fn1"><p>The footnote body.</p></aside>'
        '<section epub:type="footnotes"><p id="fn2">Another note body.</p></section>'
        '<div role="doc-endnotes"><p id="fn3">Endnote body.</p></div>'
        "<ul><li>First item</li><li>Second item</li></ul>"
        "<blockquote><p>Quoted.</p></blockquote>"
        "<table><tr><td>Cell A</td><td>Cell B</td></tr></table>"
        "<p>\u00a0</p><hr/><p>* * *</p>"
    )
    book = read_epub(build_epub(tmp_path / "clean.epub", [("c.xhtml", "Notes and Noise", body)]))
    assert book.chapters[0].paragraphs == (
        "A footnote here and a role one and a sup and a bare sup.",
        "Zerowidthjoiners and lots of space.",
        "Read the website or https://example.com today.",
        "Line one",
        "Line two",
        "Line three",
        "Look: done.",
        "Page break.",
        "First item",
        "Second item",
        "Quoted.",
        "Cell A",
        "Cell B",
    )


def test_chapters_without_text_are_dropped(tmp_path: Path) -> None:
    docs = [
        ("a.xhtml", "Words", f"<h1>Words</h1><p>{LOREM}</p>"),
        ("b.xhtml", "Plate", '<h1>Plate</h1><img src="plate.png" alt="A plate"/>'),
        ("c.xhtml", "More Words", "<p>And more.</p>"),
    ]
    book = read_epub(build_epub(tmp_path / "plate.epub", docs))
    assert titles(book) == ["Words", "More Words"]


def test_a_book_without_text_is_refused(tmp_path: Path) -> None:
    docs = [("a.xhtml", "Pictures", '<img src="a.png" alt="picture"/>'), ("b.xhtml", "Only", "<h1>Only</h1>")]
    with pytest.raises(BookError, match=r"pictures\.epub: has no readable text"):
        read_epub(build_epub(tmp_path / "pictures.epub", docs))


# -------------------------------------------------------------------------- metadata


def test_cover_series_and_other_metadata(tmp_path: Path) -> None:
    png = tiny_png()
    metadata = [
        (None, "meta", "", {"name": "calibre:series", "content": "The Saga"}),
        (None, "meta", "", {"name": "calibre:series_index", "content": "2.0"}),
        ("DC", "publisher", "Voxd Press", {}),
        ("DC", "date", "2021-03-04", {}),
        ("DC", "description", "<p>A <b>bold</b> tale.</p><p>Second line.</p>", {}),
    ]
    path = build_epub(
        tmp_path / "meta.epub",
        [("a.xhtml", "One", f"<p>{LOREM}</p>")],
        cover=png,
        metadata=metadata,
    )
    book = read_epub(path)
    assert book.cover is not None
    assert book.cover.mime == "image/png"
    assert book.cover.data == png
    meta = book.metadata
    assert (meta.series, meta.series_index) == ("The Saga", "2")
    assert meta.publisher == "Voxd Press"
    assert meta.date == "2021-03-04"
    assert meta.description == "A bold tale.\n\nSecond line."
    assert titles(book) == ["One"]  # the generated cover page is not a chapter


def test_epub3_collection_series(tmp_path: Path) -> None:
    metadata = [
        (None, "meta", "Discworld", {"property": "belongs-to-collection", "id": "coll"}),
        (None, "meta", "series", {"refines": "#coll", "property": "collection-type"}),
        (None, "meta", "7", {"refines": "#coll", "property": "group-position"}),
        (None, "meta", "", {"name": "calibre:series", "content": "Ignored"}),
    ]
    path = build_epub(tmp_path / "coll.epub", [("a.xhtml", "One", f"<p>{LOREM}</p>")], metadata=metadata)
    meta = read_epub(path).metadata
    assert (meta.series, meta.series_index) == ("Discworld", "7")


def test_creators_with_other_roles_are_not_authors(tmp_path: Path) -> None:
    book = epub.EpubBook()
    book.set_identifier("x")
    book.set_title("Roles")
    book.set_language("en")
    book.add_author("Main Author", uid="a1", role="aut")
    book.add_author("Some Illustrator", uid="a2", role="ill")
    item = epub.EpubHtml(title="One", file_name="a.xhtml")
    item.content = f"<html><body><p>{LOREM}</p></body></html>"
    book.add_item(item)
    book.toc = [epub.Link("a.xhtml", "One", "one")]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [item]
    path = tmp_path / "roles.epub"
    epub.write_epub(str(path), book)
    assert read_epub(path).metadata.authors == ("Main Author",)


# ---------------------------------------------------------------------- hostile files


def test_xxe_entity_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-PASSWORD")
    doctype = f'<!DOCTYPE html [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
    chapter = xhtml("<h1>The Only Chapter</h1><p>before &xxe; after</p>", doctype=doctype)
    opf_doctype = f'<!DOCTYPE package [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
    path = build_raw_epub(tmp_path / "xxe.epub", chapter, opf_title="Raw &xxe; Title", opf_doctype=opf_doctype)

    book = read_epub(path)
    assert "TOP-SECRET" not in all_text(book)
    assert "TOP-SECRET" not in book.metadata.title
    assert book.chapters[0].paragraphs == ("before after",)


def test_billion_laughs_does_not_expand(tmp_path: Path) -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    chapter = xhtml("<p>laughs: &lol9; end</p><p>Still readable.</p>", doctype=f"<!DOCTYPE html [{entities}]>\n")
    path = build_raw_epub(tmp_path / "lol.epub", chapter)
    started = time.monotonic()
    book = read_epub(path)
    assert time.monotonic() - started < 5
    text = all_text(book)
    assert "lollol" not in text
    assert len(text) < 200
    assert "Still readable." in text


def test_html_entities_in_sloppy_xhtml_still_read(tmp_path: Path) -> None:
    chapter = b"<html><body><p>caf&eacute;&nbsp;au lait<p>unclosed paragraph</body></html>"
    book = read_epub(build_raw_epub(tmp_path / "sloppy.epub", chapter))
    assert book.chapters[0].paragraphs == ("caf\u00e9 au lait", "unclosed paragraph")


def test_zip_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    path = build_raw_epub(tmp_path / "bomb.epub", xhtml("<p>hi</p>"), extra={"OEBPS/fill.bin": bytes(30 * 1024 * 1024)})
    with pytest.raises(BookError, match=r"bomb\.epub: .*zip bomb"):
        read_epub(path)


def test_path_traversal_is_refused(tmp_path: Path) -> None:
    path = build_raw_epub(tmp_path / "evil.epub", xhtml("<p>hi</p>"), extra={"../evil": b"owned"})
    with pytest.raises(BookError, match=r"evil\.epub: member '\.\./evil' has an unsafe path"):
        read_epub(path)


def test_truncated_epub_is_refused(tmp_path: Path) -> None:
    path = build_epub(tmp_path / "cut.epub", [("a.xhtml", "A", f"<p>{LOREM}</p>")])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 200])
    with pytest.raises(BookError, match=r"cut\.epub: not a valid EPUB \(zip\) file"):
        read_epub(path)


def test_zip_without_a_package_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hollow.epub"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", b"application/epub+zip")
        zf.writestr("hello.txt", b"hello")
    with pytest.raises(BookError, match=r"hollow\.epub: not a readable EPUB"):
        read_epub(path)


def test_drm_encrypted_epub_is_refused(tmp_path: Path) -> None:
    encryption = b"""<?xml version="1.0"?>
<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#">
  <enc:EncryptedData>
    <enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
    <enc:CipherData><enc:CipherReference URI="OEBPS/chapter.xhtml"/></enc:CipherData>
  </enc:EncryptedData>
</encryption>"""
    path = build_raw_epub(tmp_path / "drm.epub", b"\x8a\x01binary", extra={"META-INF/encryption.xml": encryption})
    with pytest.raises(BookError, match=r"drm\.epub: is DRM-protected"):
        read_epub(path)


# --------------------------------------------------------------------------- dispatch


def test_read_book_dispatches_by_suffix(tmp_path: Path) -> None:
    path = build_epub(tmp_path / "Upper.EPUB", [("a.xhtml", "Only", f"<p>{LOREM}</p>")])
    assert titles(read_book(path)) == ["Only"]
    assert len(read_book(path, toc_depth=1, skip_front_back_matter=False).chapters) == 1


@pytest.mark.parametrize("name", ["book.pdf", "book.voxd.json"])
def test_other_formats_reach_their_reader(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"%PDF-1.7" if name.endswith(".pdf") else b"{}")
    with pytest.raises(BookError, match=re.escape(name)):
        read_book(path)


def test_unknown_suffix_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(
        UnsupportedFormat,
        match=re.escape("notes.txt: unsupported file type '.txt' (voxd reads .epub, .pdf and .voxd.json)"),
    ):
        read_book(path)


def test_epub_that_is_not_a_zip_is_a_book_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.epub"
    path.write_bytes(b"%PDF-1.7 not really an epub")
    with pytest.raises(BookError, match=r"fake\.epub: not a valid EPUB \(zip\) file"):
        read_book(path)


# ----------------------------------------------------------------------------- corpus

_MATTER_TITLES = re.compile(
    r"(?i)^(titlepage|title page|imprint|dedication|colophon|uncopyright|contents|table of contents|endnotes)$"
)


def test_corpus_wodehouse_novel(corpus_dir: Path) -> None:
    book = read_book(corpus_dir / "p-g-wodehouse_love-among-the-chickens.epub")
    assert len(book.chapters) == 23
    assert titles(book)[:3] == [
        "I: A Letter with a Postscript",
        "II: Mr. and Mrs. S. F. Ukridge",
        "III: Waterloo Station, Some Fellow-Travellers, and a Girl with Brown Hair",
    ]
    assert titles(book)[-1] == "XXIII: After the Storm"
    assert not [t for t in titles(book) if _MATTER_TITLES.match(t)]
    first = book.chapters[0].paragraphs
    assert first[0].startswith("“A gentleman called to see you when you were out last night, sir,”")
    assert "A Letter with a Postscript" not in first  # the heading is the title, spoken separately
    text = all_text(book)
    for unwanted in ("Standard Ebooks", "Uncopyright", "Dear Bill", "\u00ad", "\u2060", "http"):
        assert unwanted not in text
    meta = book.metadata
    assert meta.title == "Love Among the Chickens"
    assert meta.authors == ("P. G. Wodehouse",)
    assert meta.language == "en-GB"
    assert meta.publisher == "Standard Ebooks"
    assert meta.description and meta.description.startswith("Stanley Ukridge ensnares the narrator")
    assert book.cover is not None and book.cover.mime == "image/jpeg"  # cover.svg, drawn


def test_corpus_wodehouse_options(corpus_dir: Path) -> None:
    path = corpus_dir / "p-g-wodehouse_love-among-the-chickens.epub"
    assert titles(read_book(path, toc_depth=1)) == ["Love Among the Chickens"]
    everything = titles(read_book(path, skip_front_back_matter=False))
    assert {"Titlepage", "Imprint", "Dedication", "Colophon", "Uncopyright"} <= set(everything)
    assert len([t for t in everything if ":" in t]) == 23


def test_corpus_childrens_literature_fragments(corpus_dir: Path) -> None:
    book = read_book(corpus_dir / "idpf-childrens-literature.epub")
    names = titles(book)
    assert len(names) >= 10  # many chapters, all cut from one XHTML file
    assert names[:3] == ["INTRODUCTORY", "190 A FOUR-LEAVED CLOVER", "191 THE LORD HELPETH MAN AND BEAST"]
    assert "192 THE REAL PRINCESS" in names
    assert "BIBLIOGRAPHY" not in names
    princess = book.chapters[names.index("192 THE REAL PRINCESS")]
    assert any("princess" in p.lower() for p in princess.paragraphs)
    assert not any(p.strip().isdigit() for p in princess.paragraphs)  # page numbers are not read
    assert book.metadata.title == "Children's Literature"
    assert book.metadata.authors == ("Charles Madison Curry", "Erle Elsworth Clippinger")
    assert book.cover is not None and book.cover.mime == "image/jpeg"  # a PNG in the file, made a JPEG


def test_corpus_wasteland(corpus_dir: Path) -> None:
    book = read_book(corpus_dir / "idpf-wasteland.epub")
    assert titles(book) == [
        "I. THE BURIAL OF THE DEAD",
        "II. A GAME OF CHESS",
        "III. THE FIRE SERMON",
        "IV. DEATH BY WATER",
        "V. WHAT THE THUNDER SAID",
    ]
    assert book.chapters[0].paragraphs[0] == "April is the cruellest month, breeding"
    text = all_text(book)
    assert "*" not in text  # note references
    assert "Out of this stony rubbish? Son of man," in text.split("\n")  # no note mark, no line number 20
    assert not re.search(r"[^\W\d]\W?\d+$", text, re.MULTILINE)  # no printed line numbers anywhere
    assert book.metadata.authors == ("T.S. Eliot",)
    assert book.cover is not None and book.cover.mime == "image/jpeg"


def test_corpus_leaves_of_grass(corpus_dir: Path) -> None:
    started = time.monotonic()
    book = read_book(corpus_dir / "walt-whitman_leaves-of-grass.epub")
    assert time.monotonic() - started < 10
    names = titles(book)
    assert 20 <= len(names) <= 80  # the deep TOC gives sections, not hundreds of single poems
    assert {"Song of Myself", "Drum-Taps", "Sea-Drift"} <= set(names)
    assert not [t for t in names if _MATTER_TITLES.match(t)]
    assert book.metadata.authors == ("Walt Whitman",)


# ----------------------------------------------------------------------------- section breaks


def test_story_sections_become_breaks_not_words(tmp_path: Path) -> None:
    from voxd.book import SECTION_BREAK, Pause
    from voxd.narration.text import plan_chunks

    body = (
        "<h1>The Empty House</h1>"
        "<h2>I</h2><p>The house stood empty all winter.</p><p>Nobody came up the lane.</p>"
        "<h2>II</h2><p>In spring a cart arrived.</p>"
        '<p class="center">* * *</p><p>By summer the garden was full of beans.</p>'
        "<hr/><p>In autumn they left again.</p><hr/>"
    )
    book = read_epub(build_epub(tmp_path / "story.epub", [("s.xhtml", "The Empty House", body)]))
    assert book.chapters[0].paragraphs == (
        "I", "The house stood empty all winter.", "Nobody came up the lane.",
        "II", "In spring a cart arrived.", SECTION_BREAK,
        "By summer the garden was full of beans.", SECTION_BREAK, "In autumn they left again.",
    )  # fmt: skip
    chunks = plan_chunks(book, voice="v", language="en")
    assert [c.text for c in chunks] == [
        "The Empty House", "The house stood empty all winter.", "Nobody came up the lane.",
        "In spring a cart arrived.", "By summer the garden was full of beans.", "In autumn they left again.",
    ]  # fmt: skip
    assert [c.pause for c in chunks] == [
        Pause.PARAGRAPH, Pause.PARAGRAPH, Pause.SECTION, Pause.SECTION, Pause.SECTION, Pause.CHAPTER
    ]


# ----------------------------------------------------------------------------- math and navigation

MATHML = "http://www.w3.org/1998/Math/MathML"


def test_mathml_is_said_by_its_alttext_or_named(tmp_path: Path) -> None:
    body = (
        "<h1>Energy</h1>"
        f'<p>The energy is <math xmlns="{MATHML}" alttext="E equals m c squared"><mi>E</mi><mo>=</mo><mi>m</mi>'
        "<msup><mi>c</mi><mn>2</mn></msup></math> as everyone knows.</p>"
        f'<p>A fraction: <math xmlns="{MATHML}"><mfrac><mi>a</mi><mi>b</mi></mfrac></math> is small.</p>'
        f'<math xmlns="{MATHML}" display="block"><mi>x</mi><mo>+</mo><mi>y</mi></math>'
    )
    book = read_epub(build_epub(tmp_path / "math.epub", [("m.xhtml", "Energy", body)]))
    assert book.chapters[0].paragraphs == (
        "The energy is E equals m c squared as everyone knows.",
        "A fraction: formula is small.",
        "formula",
    )
    german = read_epub(build_epub(tmp_path / "formel.epub", [("m.xhtml", "Energy", body)], language="de"))
    assert german.chapters[0].paragraphs[1] == "A fraction: Formel is small."


def test_web_navigation_is_not_read(tmp_path: Path) -> None:
    body = (
        '<div class="related" role="navigation"><ul><li><a href="a.xhtml">previous</a> |</li>'
        '<li><a href="b.xhtml">next</a></li></ul></div>'
        '<p><a href="index.xhtml">Home</a> » <a href="guide.xhtml">Guide</a> » Install</p>'
        '<div class="header"><p>Next: <a href="b.xhtml">Configure</a>, Previous: <a href="a.xhtml">Overview</a>,'
        ' Up: <a href="i.xhtml">Guide</a> [<a href="x.xhtml">Index</a>]</p></div>'
        "<h1>Install</h1><p>Unpack the archive and run the installer.</p>"
        '<ul><li><a href="s1.xhtml">Unpacking</a></li><li><a href="s2.xhtml">Running it</a></li></ul>'
        '<p>Previous topic: <a href="a.xhtml">Overview</a></p>'
        '<p>Next topic: <a href="b.xhtml">Configure</a></p>'
        '<p><a href="#top">Back to top</a></p>'
        '<p>« <a href="a.xhtml">Previous</a> | <a href="b.xhtml">Next</a> »</p>'
        '<p>Next, read the <a href="b.xhtml">configuration guide</a> before you start.</p>'
    )
    book = read_epub(build_epub(tmp_path / "web.epub", [("i.xhtml", "Install", body)]))
    assert book.chapters[0].paragraphs == (
        "Unpack the archive and run the installer.",
        "Next, read the configuration guide before you start.",
    )


# ----------------------------------------------------------------------------- code listings

CODE_BODY = (
    "<h1>Packaging</h1>"
    "<p>The spine lists the documents; run <code>zip -X</code> to pack them.</p>"
    "<pre>&lt;spine&gt;\n  &lt;itemref idref=\"chapter1\"/&gt;\n&lt;/spine&gt;</pre>"
    "<pre><code>def read(path):\n    return open(path).read()</code></pre>"
    "<p>Then check it:</p>"
    "<p><code>epubcheck book.epub</code></p>"
    "<p>Done.</p>"
    "<pre>Whose woods these are I think I know.\n   His house is in the village though;</pre>"
    "<p><tt>ARRIVING TUESDAY STOP</tt></p>"
    '<pre class="screenplay">INT. KITCHEN - NIGHT</pre>'
    '<pre class="programlisting">make install</pre>'
)


def test_a_code_listing_is_mentioned_not_read_and_inline_code_stays(tmp_path: Path) -> None:
    path = build_epub(tmp_path / "code.epub", [("c.xhtml", "Packaging", CODE_BODY)])
    assert read_epub(path).chapters[0].paragraphs == (
        "The spine lists the documents; run zip -X to pack them.",
        "A code example.",  # two listings in a row: said once
        "Then check it:",
        "A code example.",
        "Done.",
        "Whose woods these are I think I know.",  # verse set in <pre> is read
        "His house is in the village though;",
        "ARRIVING TUESDAY STOP",  # a telegram set in type
        "INT. KITCHEN - NIGHT",
        "A code example.",  # a listing by its class, whatever its text
    )
    skipped = read_epub(path, code_listings="skip").chapters[0].paragraphs
    assert "A code example." not in skipped and "Then check it:" in skipped and "Done." in skipped
    read = " ".join(read_epub(path, code_listings="read").chapters[0].paragraphs)
    assert 'itemref idref="chapter1"' in read and "epubcheck book.epub" in read


def test_the_code_mention_is_in_the_books_language(tmp_path: Path) -> None:
    path = build_epub(tmp_path / "de.epub", [("c.xhtml", "Packen", CODE_BODY)], language="de")
    assert "Ein Codebeispiel." in read_epub(path).chapters[0].paragraphs


def test_a_removed_web_address_leaves_no_hole(tmp_path: Path) -> None:
    """A link whose text is a URL is said by its host: "at ." and "( )" are never left."""
    from voxd.narration.text import plan_chunks

    body = (
        "<h1>About</h1>"
        '<p>His professional website is at <a href="http://beezer.cotc.pugetsound.edu/">'
        "http://beezer.cotc.pugetsound.edu/</a>.</p>"
        '<p>Errata are kept online (<a href="https://example.org/errata">https://example.org/errata</a>).</p>'
        '<p>Write to <a href="mailto:rob@example.edu">mailto:rob@example.edu</a> with corrections.</p>'
        '<p><a href="https://example.org/">https://example.org/</a></p>'
    )
    book = read_epub(build_epub(tmp_path / "web.epub", [("a.xhtml", "About", body)]))
    said = [c.text for c in plan_chunks(book, voice="v", language="en")]
    assert said == [
        "About",
        "His professional website is at beezer dot cotc dot pugetsound dot edu.",
        "Errata are kept online (example dot org).",
        "Write to rob at example dot edu with corrections.",
    ]


# ----------------------------------------------------------------------------- link lists

THEOREMS = [("EOPSS", "Equation Operations Preserve Solution Sets"), ("REMEF", "Row-Equivalent Matrices"),
            ("RREFU", "Reduced Row-Echelon Form is Unique"), ("HSC", "Homogeneous Systems are Consistent")]


def linear_algebra(path: Path) -> Path:
    """A textbook that opens with a section of links to its theorems and one of its heading labels."""
    links = "".join(f'<p><a href="s1.xhtml#{t}">Theorem {t} {name}</a></p>' for t, name in THEOREMS)
    labels = "".join(f"<p>Theorem {t} {name}</p>" for t, name in THEOREMS)
    body = "<h1>Systems</h1>" + "".join(
        f'<h2 id="{t}">Theorem {t} {name}</h2><p>Suppose a system of equations; then {name.lower()} holds, '
        f'as <a href="s1.xhtml#{THEOREMS[0][0]}">Theorem {THEOREMS[0][0]}</a> shows.</p>'
        for t, name in THEOREMS
    )
    names = ("rows", "columns", "sums", "products", "inverses", "transposes", "ranks", "traces", "blocks",
             "kernels", "images", "spans")
    sections = "".join(f'<p><a href="#s{n}">Of {name}</a></p>' for n, name in enumerate(names, 1))
    text = "".join(f'<p id="s{n}">{" ".join([LOREM] * 5)}</p>' for n in range(1, 4))  # fewer, longer paragraphs
    docs = [("theorems.xhtml", "Theorems", f"<h1>Theorems</h1><p>Every theorem, in order.</p>{links}"),
            ("notation.xhtml", "Notation", f"<h1>Notation</h1>{labels}"),
            ("s1.xhtml", "Systems", body),
            ("s2.xhtml", "Matrices", f"<h1>Matrices</h1>{sections}{text}")]
    return build_epub(path, docs, title="Linear Algebra")


def test_a_section_of_links_into_the_book_is_skipped_like_a_contents_page(tmp_path: Path) -> None:
    from voxd.ingest.matter import NAVIGATION

    path = linear_algebra(tmp_path / "la.epub")
    book = read_epub(path)
    assert [c.title for c in book.chapters] == ["Systems", "Matrices"]  # one opens with its own links
    assert dict(book.skipped) == {"Theorems": NAVIGATION, "Notation": NAVIGATION}
    # a chapter that links to its own theorems is read, and nothing is skipped when asked
    assert any("Theorem EOPSS" in p for p in book.chapters[0].paragraphs)
    assert [c.title for c in read_epub(path, skip_front_back_matter=False).chapters] == [
        "Theorems", "Notation", "Systems", "Matrices"]
