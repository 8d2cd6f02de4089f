"""check_zip refuses hostile or broken archives before anything unpacks them."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from voxd.errors import BookError
from voxd.ingest.safezip import MiB, check_zip


def write_zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def small_epub_like(path: Path) -> Path:
    return write_zip(
        path,
        {
            "mimetype": b"application/epub+zip",
            "META-INF/container.xml": b"<container/>",
            "OEBPS/chapter.xhtml": b"<html><body><p>Hello</p></body></html>" * 50,
        },
    )


def test_accepts_a_normal_zip(tmp_path: Path) -> None:
    check_zip(small_epub_like(tmp_path / "fine.epub"))


def test_rejects_a_file_that_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "book.epub"
    path.write_text("this is plain text, not a zip archive\n" * 20)
    with pytest.raises(BookError, match=r"book\.epub: not a valid EPUB \(zip\) file"):
        check_zip(path)


def test_rejects_a_truncated_zip(tmp_path: Path) -> None:
    path = small_epub_like(tmp_path / "cut.epub")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BookError, match=r"cut\.epub: not a valid EPUB \(zip\) file"):
        check_zip(path)


def test_rejects_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.epub"
    path.write_bytes(b"")
    with pytest.raises(BookError, match=r"empty\.epub: not a valid EPUB \(zip\) file"):
        check_zip(path)


def test_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BookError, match=r"gone\.epub: file not found"):
        check_zip(tmp_path / "gone.epub")


def test_rejects_a_zip_bomb(tmp_path: Path) -> None:
    # 20 MiB of zeros deflates to about 20 KiB: a ratio near 1000.
    path = write_zip(tmp_path / "bomb.epub", {"mimetype": b"application/epub+zip", "OEBPS/big.xhtml": bytes(20 * MiB)})
    assert path.stat().st_size < MiB
    before = sorted(tmp_path.iterdir())
    with pytest.raises(BookError, match=r"bomb\.epub: member 'OEBPS/big\.xhtml' expands \d+ times.*zip bomb"):
        check_zip(path)
    assert sorted(tmp_path.iterdir()) == before  # nothing was extracted


def test_a_large_but_ordinary_member_passes(tmp_path: Path) -> None:
    # 2 MiB that compresses poorly is not a bomb.
    import random

    rnd = random.Random(7)
    data = bytes(rnd.getrandbits(8) for _ in range(2 * MiB))
    check_zip(write_zip(tmp_path / "noise.epub", {"img/cover.jpg": data}))


def test_rejects_too_much_unpacked_data(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "large.epub", {"a.xhtml": b"x" * 3000, "b.xhtml": b"y" * 3000})
    with pytest.raises(BookError, match=r"large\.epub: unpacks to more than 5000 bytes"):
        check_zip(path, max_total_bytes=5000)
    check_zip(path, max_total_bytes=10_000)


def test_rejects_too_many_entries(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "many.epub", {f"f{i}.txt": b"x" for i in range(6)})
    with pytest.raises(BookError, match=r"many\.epub: the zip holds 6 files, more than the limit of 5"):
        check_zip(path, max_entries=5)
    check_zip(path, max_entries=6)


def test_ratio_limit_is_configurable(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "zeros.epub", {"z.bin": bytes(2 * MiB)})
    with pytest.raises(BookError, match="zip bomb"):
        check_zip(path)
    check_zip(path, max_ratio=100_000)


@pytest.mark.parametrize(
    "member",
    ["../evil", "OEBPS/../../evil.xhtml", "/etc/passwd", "..\\evil.txt", "C:/Windows/evil.dll"],
)
def test_rejects_path_traversal(tmp_path: Path, member: str) -> None:
    path = tmp_path / "traversal.epub"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", b"application/epub+zip")
        info = zipfile.ZipInfo("placeholder")
        info.filename = member  # ZipInfo() would normalise the name; write it as a hostile tool would
        zf.writestr(info, b"owned")
    with zipfile.ZipFile(path) as zf:
        assert member in zf.namelist()
    with pytest.raises(BookError, match=r"traversal\.epub: member .* has an unsafe path"):
        check_zip(path)


def test_rejects_password_protected_members(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "locked.epub", {"OEBPS/chapter.xhtml": b"ciphertext"}, compression=zipfile.ZIP_STORED)
    # Set the "encrypted" bit of the general-purpose flags, as a password-protected archive
    # does, in the local header (offset 6) and in the central directory (offset 8).
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x1
    path.write_bytes(bytes(data))
    with pytest.raises(BookError, match=r"locked\.epub: member 'OEBPS/chapter\.xhtml' is password-protected"):
        check_zip(path)
