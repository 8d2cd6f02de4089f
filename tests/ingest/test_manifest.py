"""The voxd manifest: reading, validation that lists every problem, hostile cover paths,
and the round trip book -> manifest -> book."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pymupdf
import pytest

from voxd.book import Book, Chapter, Cover, Metadata
from voxd.errors import BookError
from voxd.ingest import read_book
from voxd.ingest.manifest import MAX_COVER_BYTES, book_to_manifest, read_manifest, write_manifest
from voxd.samples import SAMPLE_AUTHOR, SAMPLE_CHAPTERS, SAMPLE_TITLE, build_epub


def image(kind: str) -> bytes:
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 16, 24), False)
    pix.clear_with(120)
    return pix.tobytes(kind)


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def valid_manifest() -> dict[str, Any]:
    return {
        "voxd_manifest": 1,
        "title": "The Manifest Book",
        "authors": ["Ada Author", "Bob Writer"],
        "language": "en-GB",
        "description": "Two short chapters.\n\nWritten by hand.",
        "publisher": "Voxd Press",
        "date": 1865,
        "series": "Hand-written Books",
        "series_index": 2,
        "cover": "art/cover.png",
        "voice": "narrator",
        "style": "calm",
        "chapters": [
            {"title": "One", "text": "First paragraph,\nwrapped by hand.\n\n  \n\nSecond paragraph.\n"},
            {
                "title": "Two",
                "paragraphs": ["Whispered words.", "  ", "More of them."],
                "voice": "alice",
                "style": "whisper",
                "language": "fr",
            },
        ],
    }


# ----------------------------------------------------------------------------- reading


def test_valid_manifest(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    png = image("png")
    (tmp_path / "art" / "cover.png").write_bytes(png)
    path = write_json(tmp_path / "book.voxd.json", valid_manifest())

    book = read_book(path)

    assert book.metadata == Metadata(
        title="The Manifest Book",
        authors=("Ada Author", "Bob Writer"),
        language="en-GB",
        description="Two short chapters.\n\nWritten by hand.",
        publisher="Voxd Press",
        date="1865",
        series="Hand-written Books",
        series_index="2",
    )
    assert read_manifest(path).cover == Cover(data=png, mime="image/png")  # as the manifest has it...
    assert book.cover is not None and book.cover.mime == "image/jpeg"  # ...and decoded, made a JPEG, by read_book
    one, two = book.chapters
    assert one == Chapter(
        title="One",
        paragraphs=("First paragraph, wrapped by hand.", "Second paragraph."),
        voice="narrator",  # the book's voice and style are the defaults
        style="calm",
    )
    assert two == Chapter(
        title="Two",
        paragraphs=("Whispered words.", "More of them."),
        voice="alice",
        style="whisper",
        language="fr",
    )


def test_minimal_manifest_with_plain_json_name(tmp_path: Path) -> None:
    data = {"voxd_manifest": 1, "title": "Tiny", "chapters": [{"title": "Only", "text": "Hello."}]}
    book = read_book(write_json(tmp_path / "tiny.json", data))
    assert book == Book(Metadata(title="Tiny"), (Chapter("Only", ("Hello.",)),))
    # The other readers' options are accepted (and change nothing).
    assert read_book(tmp_path / "tiny.json", toc_depth=1, skip_front_back_matter=False) == book


def test_every_bad_field_is_listed(tmp_path: Path) -> None:
    data = {
        "voxd_manifest": 1,
        "titel": "Misspelt",
        "authors": "Ada Author",
        "cover": "/etc/cover.jpg",
        "chapters": [
            {"title": "Fine", "text": "Fine."},
            {"title": "Both", "text": "a", "paragraphs": ["b"]},
            {"text": "No title."},
            {"title": "", "paragraphs": ["ok", 7], "voise": "typo"},
            {"title": "Empty"},
        ],
    }
    path = write_json(tmp_path / "broken.voxd.json", data)
    with pytest.raises(BookError) as caught:
        read_manifest(path)
    message = str(caught.value)
    assert message.startswith("broken.voxd.json is not a valid voxd manifest (10 problems): ")
    for expected in [
        "title: Field required",
        "titel: unknown field",
        "authors: Input should be a valid list",
        "cover: the cover must be a path relative to the manifest's folder",
        'chapters[1]: give either "text" or "paragraphs", not both',
        "chapters[2].title: Field required",
        "chapters[3].title: String should have at least 1 character",
        "chapters[3].paragraphs[1]: Input should be a valid string",
        "chapters[3].voise: unknown field",
        'chapters[4]: has no text: give "text" or "paragraphs"',
    ]:
        assert expected in message, expected
    assert "\n" not in message


def test_no_chapters_is_an_error(tmp_path: Path) -> None:
    path = write_json(tmp_path / "empty.voxd.json", {"voxd_manifest": 1, "title": "T", "chapters": []})
    with pytest.raises(BookError, match=re.escape("chapters: List should have at least 1 item")):
        read_manifest(path)


def test_bad_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.voxd.json"
    path.write_text('{\n  "voxd_manifest": 1,\n  "title": "x",\n}\n', encoding="utf-8")
    with pytest.raises(BookError, match=r"^bad\.voxd\.json is not valid JSON: .* at line 4, column 1$"):
        read_manifest(path)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.voxd.json"
    path.write_text('{"voxd_manifest": 1, "title": "a", "title": "b", "chapters": []}', encoding="utf-8")
    with pytest.raises(BookError, match='the key "title" appears twice'):
        read_manifest(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"voxd_manifest": 2, "title": "x"}, "voxd manifest version 2 is not supported (this voxd reads version 1)"),
        ({"voxd_manifest": "1", "title": "x"}, 'voxd manifest version "1" is not supported'),
        ({"voxd_manifest": True, "title": "x"}, "voxd manifest version true is not supported"),
        ({"title": "x"}, 'is not a voxd manifest: it has no "voxd_manifest" version number'),
        ([1, 2, 3], "is not a voxd manifest: the top level must be a JSON object"),
    ],
)
def test_not_a_manifest_of_this_version(tmp_path: Path, data: Any, message: str) -> None:
    path = write_json(tmp_path / "other.json", data)
    with pytest.raises(BookError, match=r"^other\.json.*" + re.escape(message)):
        read_manifest(path)


# ----------------------------------------------------------------------------- the cover


def manifest_with_cover(folder: Path, cover: str) -> Path:
    data = {"voxd_manifest": 1, "title": "T", "cover": cover, "chapters": [{"title": "C", "text": "x"}]}
    folder.mkdir(parents=True, exist_ok=True)
    return write_json(folder / "book.voxd.json", data)


def test_cover_outside_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.jpg").write_bytes(image("jpeg"))
    path = manifest_with_cover(tmp_path / "book", "../secret.jpg")
    with pytest.raises(BookError, match=r"^book\.voxd\.json: the cover \"\.\./secret\.jpg\" is outside the manifest's"):
        read_manifest(path)


def test_cover_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.jpg").write_bytes(image("jpeg"))
    folder = tmp_path / "book"
    folder.mkdir()
    (folder / "cover.jpg").symlink_to(tmp_path / "secret.jpg")
    with pytest.raises(BookError, match="is outside the manifest's folder"):
        read_manifest(manifest_with_cover(folder, "cover.jpg"))


def test_cover_absolute_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cover.jpg").write_bytes(image("jpeg"))
    path = manifest_with_cover(tmp_path, str(tmp_path / "cover.jpg"))
    with pytest.raises(BookError, match="cover: the cover must be a path relative to the manifest's folder"):
        read_manifest(path)


def test_cover_must_be_a_jpeg_or_png_of_limited_size(tmp_path: Path) -> None:
    (tmp_path / "cover.jpg").write_bytes(b"GIF89a not really")
    with pytest.raises(BookError, match='the cover "cover.jpg" is not a JPEG or PNG image'):
        read_manifest(manifest_with_cover(tmp_path, "cover.jpg"))
    with open(tmp_path / "cover.jpg", "wb") as fh:
        fh.write(b"\xff\xd8\xff")
        fh.truncate(MAX_COVER_BYTES + 1)
    with pytest.raises(BookError, match='the cover "cover.jpg" is larger than 10 MiB'):
        read_manifest(manifest_with_cover(tmp_path, "cover.jpg"))
    with pytest.raises(BookError, match='the cover "missing.jpg" does not exist'):
        read_manifest(manifest_with_cover(tmp_path, "missing.jpg"))
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(BookError, match='the cover "pipe.jpg" is not a regular file'):
        read_manifest(manifest_with_cover(tmp_path, "pipe.jpg"))


# ----------------------------------------------------------------------------- round trip


def test_round_trip_of_an_epub_book(tmp_path: Path) -> None:
    epub = build_epub(
        tmp_path / "alice.epub",
        title=SAMPLE_TITLE,
        authors=[SAMPLE_AUTHOR],
        chapters=SAMPLE_CHAPTERS,
        cover=image("png"),
    )
    book = read_book(epub)
    assert book.cover is not None and len(book.chapters) == 3

    out = tmp_path / "out" / "alice.voxd.json"
    assert write_manifest(book, out) == out

    # The cover (a PNG in the EPUB, a JPEG once read) is written as cover.jpg, beside the
    # manifest; nothing else is left there. Read again, it is kept as it is.
    assert sorted(p.name for p in out.parent.iterdir()) == ["alice.voxd.json", "cover.jpg"]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["voxd_manifest"] == 1 and data["cover"] == "cover.jpg"
    assert data == book_to_manifest(book)

    again = read_book(out)
    assert again == book
    assert again.chapters == book.chapters and again.metadata == book.metadata and again.cover == book.cover


def test_round_trip_keeps_chapter_voice_style_and_language(tmp_path: Path) -> None:
    book = Book(
        metadata=Metadata(title="Voices", authors=("A", "B"), language="de", series="S", series_index="1.5"),
        chapters=(
            Chapter("Eins", ("Guten Tag.", "Wie geht es?"), voice="anna", style="cheerful", language="de-AT"),
            Chapter("Zwei", ("Gute Nacht.",)),
        ),
        cover=Cover(image("jpeg"), "image/jpeg"),
    )
    out = write_manifest(book, tmp_path / "voices.voxd.json", cover_name="front.jpeg")
    assert (tmp_path / "front.jpeg").read_bytes() == book.cover.data  # type: ignore[union-attr]
    assert read_manifest(out) == book


def test_cover_name_must_be_a_plain_file_name(tmp_path: Path) -> None:
    book = Book(Metadata(title="T"), (Chapter("C", ("x",)),), Cover(image("jpeg"), "image/jpeg"))
    with pytest.raises(ValueError, match="plain file name"):
        write_manifest(book, tmp_path / "t.voxd.json", cover_name="../cover.jpg")
