"""Fuzzing the readers: whatever the bytes, ``read_book`` returns a Book or raises a PermanentError.

Any other exception (a TypeError deep in ebooklib, a KeyError in our TOC code, a
RecursionError...) is a bug: in the daemon it would still fail the job, but with a
traceback instead of a reason a person understands. Each strategy runs a bounded
number of examples (``EXAMPLES``), derandomized so every run tries the same inputs;
no example database is written.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxd.book import Book
from voxd.errors import PermanentError
from voxd.ingest import read_book
from voxd.samples import build_epub

EXAMPLES = 150
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------------ the seed book


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, bytes]:
    """The members of a small valid EPUB 3 (nav + NCX, two chapters), in order."""
    path = build_epub(
        tmp_path_factory.mktemp("fuzz") / "seed.epub",
        title="Fuzz Seed",
        authors=("Ada Fuzz",),
        chapters=[("One", ["The first chapter has a sentence."]), ("Two", ["And the second one, another."])],
        identifier="voxd-fuzz-seed",
    )
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name) if name == "mimetype" else name, data)
    return buf.getvalue()


def check(path: Path, data: bytes) -> None:
    """The property: a Book, or a PermanentError that names the file."""
    path.write_bytes(data)
    try:
        book = read_book(path)
    except PermanentError as exc:
        assert path.name in str(exc), f"the reason does not name the file: {exc}"
        return
    assert isinstance(book, Book) and book.chapters


# Mutations: (position as a fraction of the length, operation, payload).
_MUTATION = st.tuples(
    st.floats(0, 1),
    st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate"]),
    st.binary(min_size=1, max_size=16),
)


def mutate(data: bytes, mutations: list[tuple[float, str, bytes]]) -> bytes:
    buf = bytearray(data)
    for where, op, payload in mutations:
        if not buf:
            break
        i = min(int(where * len(buf)), len(buf) - 1)
        if op == "flip":
            buf[i] ^= payload[0] or 0xFF
        elif op == "overwrite":
            buf[i:i + len(payload)] = payload
        elif op == "insert":
            buf[i:i] = payload
        elif op == "delete":
            del buf[i:i + len(payload)]
        else:
            del buf[i:]
    return bytes(buf)


_XML_BITS = st.sampled_from(
    [
        b"<", b">", b"</", b"/>", b"&", b";", b"&amp;", b"&nbsp;", b"&#0;", b"&#xFFFFFFFF;", b"<!--", b"-->",
        b"<![CDATA[", b"]]>", b"<!DOCTYPE html [<!ENTITY e \"x\">]>", b"<!ENTITY", b"&e;", b"\"", b"'",
        b"<p>", b"</p>", b"<h1>", b"<a href=\"#x\">", b"id=\"x\"", b"<body>", b"</body>", b"<nav epub:type=\"toc\">",
        b"<itemref idref=\"", b"<item id=\"x\" href=\"", b"../", b"#", b"%", b"%zz", b"\x00", b"\xff\xfe",
        b"\xef\xbb\xbf",
        b"\n", b" ", b"xmlns=\"\"", b"<?xml version=\"1.0\" encoding=\"utf-16\"?>", b"<?xml-stylesheet?>",
    ]
)


# ------------------------------------------------------------------------------ EPUB


@FUZZ
@given(mutations=st.lists(_MUTATION, min_size=1, max_size=8), deflate=st.booleans())
def test_epub_archive_bytes_mutated_150_examples(base, tmp_path_factory, mutations, deflate):
    """Random damage to the archive itself: headers, central directory, compressed data."""
    data = zip_bytes(base, zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    check(tmp_path_factory.mktemp("m") / "mutated.epub", mutate(data, mutations))


@FUZZ
@given(data=st.data())
def test_epub_member_contents_mutated_150_examples(base, tmp_path_factory, data):
    """A well-formed zip whose members (container, OPF, nav, NCX, chapters) are damaged:
    the bytes reach the XML parsers and our TOC, metadata and chapter code."""
    members = dict(base)
    for name in data.draw(st.lists(st.sampled_from(sorted(members)), min_size=1, max_size=3, unique=True)):
        mode = data.draw(st.sampled_from(["mutate", "splice", "random", "empty"]))
        if mode == "mutate":
            members[name] = mutate(members[name], data.draw(st.lists(_MUTATION, min_size=1, max_size=6)))
        elif mode == "splice":
            content = bytearray(members[name])
            for _ in range(data.draw(st.integers(1, 6))):
                i = data.draw(st.integers(0, len(content)))
                cut = data.draw(st.integers(0, 40))
                content[i:i + cut] = data.draw(_XML_BITS)
            members[name] = bytes(content)
        elif mode == "random":
            members[name] = data.draw(st.binary(max_size=512))
        else:
            members[name] = b""
    check(tmp_path_factory.mktemp("c") / "members.epub", zip_bytes(members))


_MEMBER_NAMES = st.sampled_from(
    [
        "mimetype", "META-INF/container.xml", "EPUB/content.opf", "EPUB/nav.xhtml", "EPUB/toc.ncx",
        "EPUB/chapter001.xhtml", "EPUB/chapter002.xhtml", "META-INF/encryption.xml", "EPUB/cover.png",
        "content.opf", "EPUB/", "EPUB/sub/../x.xhtml", "EPUB/ü.xhtml", "EPUB/a b.xhtml",
    ]
)


@FUZZ
@given(data=st.data())
def test_epub_random_members_150_examples(base, tmp_path_factory, data):
    """Members dropped, added, renamed or replaced by random text that looks a bit like XML."""
    members = dict(base)
    for _ in range(data.draw(st.integers(1, 5))):
        action = data.draw(st.sampled_from(["drop", "add", "rename", "xmlish"]))
        names = sorted(members)
        if action == "drop" and names:
            members.pop(data.draw(st.sampled_from(names)))
        elif action == "add":
            members[data.draw(_MEMBER_NAMES)] = data.draw(st.binary(max_size=256))
        elif action == "rename" and names:
            old = data.draw(st.sampled_from(names))
            members[data.draw(_MEMBER_NAMES)] = members.pop(old)
        else:
            target = data.draw(st.sampled_from(names)) if names else data.draw(_MEMBER_NAMES)
            members[target] = b"".join(data.draw(st.lists(_XML_BITS | st.binary(max_size=8), max_size=40)))
    check(tmp_path_factory.mktemp("r") / "random.epub", zip_bytes(members))


# -------------------------------------------------------------------------- manifest

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_KEYS = st.sampled_from(
    ["voxd_manifest", "title", "authors", "language", "description", "publisher", "date", "series",
     "series_index", "cover", "voice", "style", "chapters", "text", "paragraphs", "voise"]
)
_CHAPTER = st.dictionaries(_KEYS, _JSON, max_size=5) | st.fixed_dictionaries(
    {"title": st.text(max_size=10) | _JSON}, optional={"text": _JSON, "paragraphs": _JSON, "voice": _JSON}
)
_NEAR_MANIFEST = st.fixed_dictionaries(
    {"voxd_manifest": st.sampled_from([1, 1.0, "1", 2, True, None]), "title": st.text(max_size=10) | _JSON,
     "chapters": st.lists(_CHAPTER, max_size=3) | _JSON},
    optional={"authors": _JSON, "cover": st.sampled_from(["", ".", "..", "../x.png", "/etc/passwd", "C:x", "a\x00b",
                                                          "cover.png", "sub/../../x.jpg"]) | _JSON,
              "series_index": _JSON, "date": _JSON, "voise": _JSON},
)


@FUZZ
@given(doc=_JSON | _NEAR_MANIFEST, raw=st.booleans(), tail=st.binary(max_size=8))
def test_manifest_random_json_150_examples(tmp_path_factory, doc, raw, tail):
    """Random JSON values, near-valid manifests with wrong types, and broken JSON text."""
    folder = tmp_path_factory.mktemp("j")
    (folder / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    text = json.dumps(doc, allow_nan=True).encode()
    check(folder / "fuzz.voxd.json", text + tail if raw else text)


# ------------------------------------------------------- crashes the fuzzing found, pinned

_ENCRYPTION = b'<?xml version="1.0"?><encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"/>' + b" " * 500


def _patch_central(data: bytes, member: str, offset: int, value: int) -> bytes:
    """Set a 16-bit field of ``member``'s central directory entry (and local header, for the method)."""
    buf = bytearray(data)
    name = member.encode()
    i = 0
    while (i := buf.find(b"PK\x01\x02", i)) >= 0:
        length = int.from_bytes(buf[i + 28:i + 30], "little")
        if buf[i + 46:i + 46 + length] == name:
            buf[i + offset:i + offset + 2] = value.to_bytes(2, "little")
        i += 4
    return bytes(buf)


def test_zip_needing_an_unknown_zip_version_is_a_book_error(base, tmp_path):
    """zipfile raised NotImplementedError('zip file version 19.3') out of check_zip."""
    data = _patch_central(zip_bytes(base), "EPUB/chapter001.xhtml", 6, 193)  # version needed to extract
    with pytest.raises(PermanentError, match=r"version\.epub: not a valid EPUB \(zip\) file"):
        check_raises(tmp_path / "version.epub", data)


def test_member_with_unknown_compression_method_is_a_book_error(base, tmp_path):
    """A member ebooklib never reads (META-INF/encryption.xml) with method 99 raised NotImplementedError."""
    members = {**base, "META-INF/encryption.xml": _ENCRYPTION}
    data = _patch_central(zip_bytes(members, zipfile.ZIP_DEFLATED), "META-INF/encryption.xml", 10, 99)
    with pytest.raises(PermanentError, match=r"method\.epub: .*unknown compression method 99"):
        check_raises(tmp_path / "method.epub", data)


def test_member_with_damaged_deflate_data_is_a_book_error(base, tmp_path):
    """zlib.error ('invalid code lengths set') from reading META-INF/encryption.xml escaped read_epub."""
    data = bytearray(zip_bytes({**base, "META-INF/encryption.xml": _ENCRYPTION}, zipfile.ZIP_DEFLATED))
    start = data.find(b"META-INF/encryption.xml") + len("META-INF/encryption.xml")  # local header's name
    for k in range(start + 5, start + 40):
        data[k] ^= 0x55
    with pytest.raises(PermanentError, match=r"deflate\.epub: not a readable EPUB"):
        check_raises(tmp_path / "deflate.epub", bytes(data))


def check_raises(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    read_book(path)
