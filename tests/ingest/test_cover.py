"""Covers decoded under a pixel limit and embedded as a JPEG of sane size, real images made with
Pillow and zlib; a book whose cover would decode to 900 million pixels still becomes an audiobook."""

from __future__ import annotations

import io
import logging
import struct
import zlib
from pathlib import Path

from mutagen.mp4 import MP4, MP4Cover
from PIL import Image

from voxd.book import Cover
from voxd.ingest.cover import MAX_SIDE, sane_cover
from voxd.samples import SAMPLE_CHAPTERS, build_epub

from ..support import settings_for


def huge_png(side: int = 30_000) -> bytes:
    """A PNG of ``side`` x ``side`` black pixels in a hundred kilobytes or so: 1-bit grey,
    every row the same, deflated as a stream (nothing this large is ever held here)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (side + 7) // 8)
    deflate = zlib.compressobj(9)
    parts = [deflate.compress(row) for _ in range(side)]
    data = b"".join(parts) + deflate.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def image(width: int, height: int, fmt: str, mode: str = "RGB") -> bytes:
    picture = Image.new(mode, (width, height), (200, 30, 30, 128) if mode == "RGBA" else None)
    out = io.BytesIO()
    picture.save(out, format=fmt)
    return out.getvalue()


def dimensions(data: bytes) -> tuple[str | None, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as picture:
        return picture.format, picture.size


def test_a_cover_too_large_to_decode_is_dropped_with_a_warning(caplog) -> None:
    data = huge_png()
    assert len(data) < 1_000_000
    with caplog.at_level(logging.WARNING, logger="voxd.ingest.cover"):
        assert sane_cover(Cover(data, "image/png"), "bomb.epub") is None
    assert "bomb.epub: the cover image has more pixels than voxd decodes" in caplog.text
    with caplog.at_level(logging.WARNING, logger="voxd.ingest.cover"):
        assert sane_cover(Cover(huge_png(9000), "image/png"), "big.epub") is None
    assert "big.epub: the cover image is 9000 x 9000 pixels, more than voxd decodes" in caplog.text


def test_a_large_png_becomes_a_jpeg_of_sane_size() -> None:
    cover = sane_cover(Cover(image(4000, 1000, "PNG", "RGBA"), "image/png"), "wide.epub")
    assert cover is not None and cover.mime == "image/jpeg"
    assert dimensions(cover.data) == ("JPEG", (MAX_SIDE, 512))


def test_a_jpeg_of_sane_size_is_kept_as_it_is() -> None:
    data = image(600, 900, "JPEG")
    cover = sane_cover(Cover(data, "image/jpeg"), "plain.epub")
    assert cover is not None and cover.data == data
    cmyk = image(600, 900, "JPEG", "CMYK")  # print covers often are: players show RGB
    again = sane_cover(Cover(cmyk, "image/jpeg"), "print.epub")
    assert again is not None and again.data != cmyk
    with Image.open(io.BytesIO(again.data)) as picture:
        assert picture.mode == "RGB" and picture.size == (600, 900)


def test_a_cover_that_does_not_decode_is_dropped_with_a_warning(caplog) -> None:
    broken = image(300, 300, "PNG")[:200]  # cut short
    with caplog.at_level(logging.WARNING, logger="voxd.ingest.cover"):
        assert sane_cover(Cover(broken, "image/png"), "cut.epub") is None
        assert sane_cover(Cover(b"\x89PNG\r\n\x1a\nnot an image", "image/png"), "junk.epub") is None
    assert "cut.epub: the cover image cannot be decoded" in caplog.text
    assert "junk.epub: the cover image cannot be decoded" in caplog.text


def test_a_book_with_a_bomb_for_a_cover_becomes_an_audiobook_without_it(tmp_path: Path) -> None:
    from voxd.convert import convert
    from voxd.tts.espeak import EspeakEngine

    epub = build_epub(tmp_path / "bomb.epub", title="Bomb Cover", authors=("A. Tester",),
                      chapters=SAMPLE_CHAPTERS[:1], identifier="voxd-test-bomb-cover", cover=huge_png())
    output = tmp_path / "out" / "Bomb Cover.m4b"
    outcome = convert(epub, lambda book: output, settings_for(tmp_path), EspeakEngine())
    assert outcome.book.cover is None
    assert "covr" not in (MP4(output).tags or {})
    assert sorted(p.name for p in output.parent.iterdir()) == ["Bomb Cover.m4b", "metadata.json"]


def test_a_large_cover_is_embedded_and_written_beside_the_book_as_a_sane_jpeg(tmp_path: Path) -> None:
    from voxd.convert import convert
    from voxd.tts.espeak import EspeakEngine

    epub = build_epub(tmp_path / "big.epub", title="Big Cover", authors=("A. Tester",),
                      chapters=SAMPLE_CHAPTERS[:1], identifier="voxd-test-big-cover", cover=image(3000, 4500, "PNG"))
    output = tmp_path / "out" / "Big Cover.m4b"
    convert(epub, lambda book: output, settings_for(tmp_path), EspeakEngine())
    [covr] = MP4(output).tags["covr"]
    assert covr.imageformat == MP4Cover.FORMAT_JPEG
    assert dimensions(bytes(covr)) == ("JPEG", (1365, MAX_SIDE))
    assert sorted(p.name for p in output.parent.iterdir()) == ["Big Cover.m4b", "cover.jpg", "metadata.json"]
    assert (output.parent / "cover.jpg").read_bytes() == bytes(covr)


def svg_cover(picture: bytes | None = None, *, extra: str = "", href: str | None = None) -> bytes:
    """A cover as Standard Ebooks make them: a picture embedded as a data URI, a title box and
    white lettering over it, coloured by a <style> sheet (which MuPDF does not read)."""
    import base64

    picture = image(700, 1050, "JPEG") if picture is None else picture
    href = href or "data:image/jpeg;base64," + base64.b64encode(picture).decode()
    return f"""<?xml version="1.0" encoding="utf-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1"
     viewBox="0 0 1400 2100">
  <style type="text/css">
    path {{ fill: #fff; }}
    .title-box {{ fill: #000; fill-opacity: .75; }}
  </style>
  <image height="2100" width="1400" x="0" y="0" xlink:href="{href}"/>
  <path class="title-box" d="M 50,1620 1350,1620 1350,2050 50,2050 Z"/>
  <path d="M 300,1700 1100,1700 1100,1800 300,1800 Z"/>{extra}
</svg>""".encode()


def test_an_svg_cover_is_drawn_as_a_jpeg_with_its_style_sheet() -> None:
    red = Image.new("RGB", (700, 1050), (200, 30, 30))
    out = io.BytesIO()
    red.save(out, format="PNG")
    cover = sane_cover(Cover(svg_cover(out.getvalue()), "image/svg+xml"), "se.epub")
    assert cover is not None and cover.mime == "image/jpeg"
    assert dimensions(cover.data)[1][1] == MAX_SIDE and abs(dimensions(cover.data)[1][0] - MAX_SIDE * 2 / 3) < 2
    with Image.open(io.BytesIO(cover.data)) as picture:
        scale = MAX_SIDE / 2100
        at = lambda x, y: picture.getpixel((int(x * scale), int(y * scale)))  # noqa: E731
        r, g, b = at(700, 500)  # the embedded picture
        assert r > 150 and g < 80 and b < 80
        assert min(at(700, 1750)) > 230  # the lettering: white, as the style sheet says (MuPDF alone: black)
        r, g, b = at(100, 1900)  # the title box: black at 75 % over red
        assert 30 < r < 90 and g < 30


def test_an_svg_cover_that_refers_outside_itself_is_not_drawn(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="voxd.ingest.cover"):
        assert sane_cover(Cover(svg_cover(href="file:///etc/passwd"), "image/svg+xml"), "peek.epub") is None
        assert sane_cover(Cover(svg_cover(href="../../secret.jpg"), "image/svg+xml"), "near.epub") is None
    assert "peek.epub: the cover is an SVG that refers to 'file:///etc/passwd' outside itself" in caplog.text
    assert "near.epub: the cover is an SVG that refers to '../../secret.jpg'" in caplog.text


def test_an_svg_cover_keeps_the_pixel_limit_of_what_it_embeds(caplog) -> None:
    import base64

    bomb = "data:image/png;base64," + base64.b64encode(huge_png(9000)).decode()
    with caplog.at_level(logging.WARNING, logger="voxd.ingest.cover"):
        assert sane_cover(Cover(svg_cover(href=bomb), "image/svg+xml"), "bomb.epub") is None
    assert "bomb.epub: the cover is an SVG whose embedded image is 9000 x 9000 pixels, more than voxd decodes" \
        in caplog.text


def test_an_svg_cover_whose_xlink_prefix_names_another_namespace_keeps_the_limit(caplog) -> None:
    """MuPDF reads "xlink:href" by its name: a prefix bound elsewhere must not hide the picture."""
    import base64

    bomb = "data:image/png;base64," + base64.b64encode(huge_png(9000)).decode()
    renamed = svg_cover(href=bomb).replace(b'xmlns:xlink="http://www.w3.org/1999/xlink"', b'xmlns:xlink="urn:x"')
    with caplog.at_level(logging.WARNING, logger="voxd.ingest.cover"):
        assert sane_cover(Cover(renamed, "image/svg+xml"), "renamed.epub") is None
    assert "renamed.epub: the cover is an SVG whose embedded image is 9000 x 9000 pixels" in caplog.text


def test_style_declarations_that_cannot_be_attributes_do_not_cost_the_cover() -> None:
    """Inkscape's ``-inkscape-font-specification``, custom properties, garbage: left out, the rest drawn."""
    extra = ('\n  <path style="-inkscape-font-specification:Sans; --brand: red; a b: 1; fill: #fff"'
             ' d="M 10,10 20,10 20,20 Z"/>')
    cover = sane_cover(Cover(svg_cover(extra=extra), "image/svg+xml"), "inkscape.epub")
    assert cover is not None and cover.mime == "image/jpeg"


def test_an_epub_with_an_svg_or_gif_cover_gets_it_and_one_it_cannot_use_says_so(tmp_path: Path, caplog) -> None:
    from voxd.ingest import read_book

    svg = build_epub(tmp_path / "se.epub", title="S", authors=("A",), chapters=SAMPLE_CHAPTERS[:1],
                     identifier="voxd-test-svg-cover", cover=svg_cover())
    book = read_book(svg)
    assert book.cover is not None and dimensions(book.cover.data)[0] == "JPEG"
    gif = build_epub(tmp_path / "gif.epub", title="G", authors=("A",), chapters=SAMPLE_CHAPTERS[:1],
                     identifier="voxd-test-gif-cover", cover=image(300, 450, "GIF", "P"))
    assert (cover := read_book(gif).cover) is not None and dimensions(cover.data) == ("JPEG", (300, 450))
    junk = build_epub(tmp_path / "junk.epub", title="J", authors=("A",), chapters=SAMPLE_CHAPTERS[:1],
                      identifier="voxd-test-junk-cover", cover=b"not an image at all")
    with caplog.at_level(logging.WARNING, logger="voxd.ingest.cover"):
        assert read_book(junk).cover is None
    assert "junk.epub: the cover image cannot be decoded" in caplog.text
