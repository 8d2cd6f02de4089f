"""The voxd manifest: a book written by hand (or by ``voxd extract``) as JSON.

A manifest is a file named ``*.voxd.json`` (any ``*.json`` is accepted)::

    {
      "voxd_manifest": 1,
      "title": "Down the Rabbit-Hole",
      "authors": ["Lewis Carroll"],
      "language": "en",
      "cover": "cover.jpg",
      "voice": "narrator",
      "chapters": [
        {"title": "Chapter One", "text": "First paragraph.\\n\\nSecond paragraph."},
        {"title": "Chapter Two", "paragraphs": ["One.", "Two."], "voice": "alice", "style": "whisper"}
      ]
    }

``voxd_manifest`` is the format version; this module reads version 1. Unknown keys
are errors (a misspelt ``"voise"`` must not be ignored silently). ``description``,
``publisher``, ``date``, ``series`` and ``series_index`` are optional metadata. A
chapter gives its text either as ``text`` (paragraphs separated by blank lines) or
as a list of ``paragraphs``, and may set its own ``voice``, ``style`` and
``language``; the book-level ``voice`` and ``style`` apply to chapters that set none.
``cover`` is a JPEG or PNG file in the manifest's folder (or below it). ``lexicon`` says
how to say words in this book, ``{"Hermione": "Her-my-oh-nee"}`` (see :mod:`voxd.narration.lexicon`);
a chapter's ``language`` is the way to read a chapter (or, set on every chapter, a book)
whose declared language the engine does not speak.

:func:`read_manifest` turns a manifest into a :class:`~voxd.book.Book`;
:func:`book_to_manifest` and :func:`write_manifest` go the other way, so any book
voxd can read can be saved, edited by hand and read again.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from pydantic_core import ErrorDetails

from voxd.book import Book, Chapter, Cover, Metadata, image_mime
from voxd.errors import BookError
from voxd.files import write_bytes_atomic, write_text_atomic
from voxd.narration.lexicon import check_entries

__all__ = [
    "MANIFEST_VERSION",
    "MAX_COVER_BYTES",
    "MAX_MANIFEST_BYTES",
    "ManifestChapter",
    "ManifestSpec",
    "book_to_manifest",
    "read_manifest",
    "write_manifest",
]

#: The manifest format version this module reads and writes.
MANIFEST_VERSION = 1
#: Larger manifests are refused before they are parsed.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
#: Larger cover images are refused.
MAX_COVER_BYTES = 10 * 1024 * 1024

_BLANK_LINE = re.compile(r"\n[ \t\f\v]*\n")


# ------------------------------------------------------------------------ schema


def _blank_to_none(value: Any) -> Any:
    """Optional text: an empty string means "not given"."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _number_to_text(value: Any) -> Any:
    """``"series_index": 2`` and ``"date": 1865`` are fine as JSON numbers."""
    if isinstance(value, bool):
        return value  # rejected by the str validator, as it should be
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    return _blank_to_none(value)


_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_Optional = Annotated[_Text | None, BeforeValidator(_blank_to_none)]
_NumberOrText = Annotated[_Text | None, BeforeValidator(_number_to_text)]


class ManifestChapter(BaseModel):
    """One chapter: a title, its text, and optionally its own voice, style and language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: _Text
    text: str | None = None
    paragraphs: list[str] | None = None
    voice: _Optional = None
    style: _Optional = None
    language: _Optional = None

    def paragraph_list(self) -> tuple[str, ...]:
        """The chapter's paragraphs, each on one line, empty ones left out."""
        if self.paragraphs is not None:
            pieces = self.paragraphs
        else:
            pieces = _BLANK_LINE.split((self.text or "").replace("\r\n", "\n").replace("\r", "\n"))
        return tuple(p for p in (" ".join(piece.split()) for piece in pieces) if p)


class ManifestSpec(BaseModel):
    """A voxd manifest, version 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    voxd_manifest: Literal[1]
    title: _Text
    authors: list[_Text] = Field(default_factory=list)
    language: _Optional = None
    description: _Optional = None
    publisher: _Optional = None
    date: _NumberOrText = None
    series: _Optional = None
    series_index: _NumberOrText = None
    cover: _Optional = None
    voice: _Optional = None
    style: _Optional = None
    lexicon: dict[str, str] | None = None
    chapters: list[ManifestChapter] = Field(min_length=1)

    @field_validator("lexicon")
    @classmethod
    def _lexicon(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value:
            _, problems = check_entries(value)
            if problems:
                raise ValueError("; ".join(problems))
        return value

    @field_validator("cover")
    @classmethod
    def _relative_cover(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "\x00" in value:
            raise ValueError("the cover path contains a NUL character")
        if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or PureWindowsPath(value).drive:
            raise ValueError("the cover must be a path relative to the manifest's folder, not an absolute path")
        return value


# ------------------------------------------------------------------------ reading


def read_manifest(
    path: Path, *, toc_depth: int | None = None, skip_front_back_matter: bool = True, figure_mention: bool = False,
    code_listings: str = "mention",
) -> Book:
    """Read the voxd manifest at ``path`` into a :class:`Book`.

    ``toc_depth``, ``skip_front_back_matter``, ``figure_mention`` and ``code_listings`` are accepted so that
    :func:`~voxd.ingest.read_book` can pass the EPUB and PDF readers' options to
    any reader; a manifest's chapters are given as they are, so they change nothing.

    Raises :class:`BookError` when the file is not JSON, not a voxd manifest, of an
    unsupported version or not valid (the message lists every bad field with its
    path, like ``chapters[2].title: Field required``), or when its cover is missing,
    outside the manifest's folder, too large or not a JPEG or PNG image.
    """
    path = Path(path)
    name = path.name
    data = _load_json(path)
    spec = _validate(data, name)
    cover = _read_cover(path, spec.cover, name) if spec.cover else None
    metadata = Metadata(
        title=spec.title,
        authors=tuple(spec.authors),
        language=spec.language,
        description=spec.description,
        publisher=spec.publisher,
        date=spec.date,
        series=spec.series,
        series_index=spec.series_index,
    )
    chapters = tuple(
        Chapter(
            title=ch.title,
            paragraphs=ch.paragraph_list(),
            voice=ch.voice or spec.voice,
            style=ch.style or spec.style,
            language=ch.language,
        )
        for ch in spec.chapters
    )
    lexicon, _ = check_entries(spec.lexicon or {})
    return Book(metadata=metadata, chapters=chapters, cover=cover, lexicon=lexicon)


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _load_json(path: Path) -> Any:
    name = path.name
    try:
        with path.open("rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise BookError(f"{name} is not a regular file")
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise BookError(f"{name}: cannot read the manifest ({exc.strerror or exc})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BookError(f"{name} is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB; voxd refuses such manifests")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BookError(f"{name} is not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise BookError(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except _DuplicateKey as exc:
        raise BookError(f'{name} is not valid JSON for voxd: the key "{exc}" appears twice in one object') from None
    except RecursionError:
        raise BookError(f"{name} is not valid JSON for voxd: it is nested too deeply") from None
    except ValueError as exc:  # NaN, Infinity, integers with too many digits
        raise BookError(f"{name} is not valid JSON for voxd: {exc}") from None


def _validate(data: Any, name: str) -> ManifestSpec:
    if not isinstance(data, dict):
        raise BookError(f"{name} is not a voxd manifest: the top level must be a JSON object")
    if "voxd_manifest" not in data:
        raise BookError(f'{name} is not a voxd manifest: it has no "voxd_manifest" version number')
    version = data["voxd_manifest"]
    if isinstance(version, bool) or version != MANIFEST_VERSION:
        raise BookError(
            f"{name}: voxd manifest version {json.dumps(version)} is not supported "
            f"(this voxd reads version {MANIFEST_VERSION})"
        )

    problems: list[tuple[tuple[Any, ...], str]] = []
    spec: ManifestSpec | None = None
    try:
        spec = ManifestSpec.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            problems.append((tuple(err["loc"]), _message(err)))
    problems.extend(_chapter_body_problems(data.get("chapters")))
    if problems or spec is None:
        problems.sort(key=lambda p: _chapter_index(p[0]))
        listed = "; ".join(f"{_json_path(loc)}: {msg}" for loc, msg in problems)
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        raise BookError(f"{name} is not a valid voxd manifest ({count}): {listed}")
    return spec


def _chapter_body_problems(chapters: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Each chapter needs ``text`` or ``paragraphs`` (not both) with something in it.

    Checked here rather than in a model validator so that these problems are listed
    together with the field errors of the same chapter.
    """
    problems: list[tuple[tuple[Any, ...], str]] = []
    if not isinstance(chapters, list):
        return problems
    for i, chapter in enumerate(chapters):
        if not isinstance(chapter, dict):
            continue
        text, paragraphs = chapter.get("text"), chapter.get("paragraphs")
        if text is not None and paragraphs is not None:
            problems.append((("chapters", i), 'give either "text" or "paragraphs", not both'))
        elif text is None and paragraphs is None:
            problems.append((("chapters", i), 'has no text: give "text" or "paragraphs"'))
        elif isinstance(text, str) and not text.strip():
            problems.append((("chapters", i, "text"), "is empty"))
        elif isinstance(paragraphs, list) and all(isinstance(p, str) and not p.strip() for p in paragraphs):
            problems.append((("chapters", i, "paragraphs"), "has no non-empty paragraph"))
    return problems


def _message(err: ErrorDetails) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return f"unknown field (not part of voxd manifest version {MANIFEST_VERSION})"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def _chapter_index(loc: tuple[Any, ...]) -> int:
    if len(loc) >= 2 and loc[0] == "chapters" and isinstance(loc[1], int):
        return loc[1]
    return -1


def _json_path(loc: tuple[Any, ...]) -> str:
    """("chapters", 2, "title") -> chapters[2].title"""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{json.dumps(str(part), ensure_ascii=False)}]"
    return out or "(top level)"


# ------------------------------------------------------------------------ the cover


def _read_cover(manifest: Path, relative: str, name: str) -> Cover:
    """The cover file, which must lie in the manifest's folder (symlinks resolved)."""
    base = manifest.parent.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or target == base:
        raise BookError(f'{name}: the cover "{relative}" is outside the manifest\'s folder; voxd will not read it')
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags)
    except FileNotFoundError:
        raise BookError(f'{name}: the cover "{relative}" does not exist') from None
    except OSError as exc:
        raise BookError(f'{name}: cannot read the cover "{relative}" ({exc.strerror or exc})') from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise BookError(f'{name}: the cover "{relative}" is not a regular file')
        if info.st_size > MAX_COVER_BYTES:
            raise BookError(f'{name}: the cover "{relative}" is larger than {MAX_COVER_BYTES // (1024 * 1024)} MiB')
        data = fh.read(MAX_COVER_BYTES + 1)
    if len(data) > MAX_COVER_BYTES:
        raise BookError(f'{name}: the cover "{relative}" is larger than {MAX_COVER_BYTES // (1024 * 1024)} MiB')
    mime = image_mime(data)
    if mime is None:
        raise BookError(f'{name}: the cover "{relative}" is not a JPEG or PNG image')
    return Cover(data=data, mime=mime)


# ------------------------------------------------------------------------ writing


def _cover_file_name(cover_name: str, mime: str) -> str:
    """``cover_name`` checked (a plain file name) and given the suffix of the image type."""
    if (
        not cover_name
        or cover_name in (".", "..")
        or "/" in cover_name
        or "\\" in cover_name
        or "\x00" in cover_name
    ):
        raise ValueError(f"cover_name must be a plain file name, not {cover_name!r}")
    stem, suffix = os.path.splitext(cover_name)
    if mime == "image/png" and suffix.lower() != ".png":
        return f"{stem or 'cover'}.png"
    if mime == "image/jpeg" and suffix.lower() not in (".jpg", ".jpeg"):
        return f"{stem or 'cover'}.jpg"
    return cover_name


def book_to_manifest(book: Book, *, cover_name: str = "cover.jpg") -> dict[str, Any]:
    """The manifest (as a JSON-ready dict) that :func:`read_manifest` reads back as ``book``.

    Chapters are written as lists of ``paragraphs``; fields that are not set are left
    out. With a cover, ``"cover"`` names ``cover_name`` (its suffix made to match the
    image: ``cover.png`` for a PNG); the image itself is written by :func:`write_manifest`.
    """
    meta = book.metadata
    data: dict[str, Any] = {"voxd_manifest": MANIFEST_VERSION, "title": meta.title}
    if meta.authors:
        data["authors"] = list(meta.authors)
    for key in ("language", "description", "publisher", "date", "series", "series_index"):
        value = getattr(meta, key)
        if value is not None:
            data[key] = value
    if book.cover is not None:
        data["cover"] = _cover_file_name(cover_name, book.cover.mime)
    if book.lexicon:
        data["lexicon"] = dict(book.lexicon)
    chapters = []
    for chapter in book.chapters:
        entry: dict[str, Any] = {"title": chapter.title, "paragraphs": list(chapter.paragraphs)}
        for key in ("voice", "style", "language"):
            value = getattr(chapter, key)
            if value is not None:
                entry[key] = value
        chapters.append(entry)
    data["chapters"] = chapters
    return data


def write_manifest(book: Book, path: Path, cover_name: str = "cover.jpg") -> Path:
    """Write ``book`` as a voxd manifest at ``path``, its cover (if any) beside it.

    Both files are written to a temporary name in the same folder and renamed into
    place, the cover first, so the manifest never names a missing or half-written
    image. An existing file of the same name is replaced. Returns ``path``.
    """
    path = Path(path)
    data = book_to_manifest(book, cover_name=cover_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if book.cover is not None:
        write_bytes_atomic(path.parent / data["cover"], book.cover.data)
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    return path
