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
