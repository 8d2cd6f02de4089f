"""The domain types every stage passes along: a book, its chapters, and the chunks we speak.

They are plain frozen dataclasses with no I/O so that readers, the planner, the
renderer and the encoder can agree on them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True, slots=True)
class Metadata:
    title: str
    authors: tuple[str, ...] = ()
    language: str | None = None
    description: str | None = None
    publisher: str | None = None
    date: str | None = None
    series: str | None = None
    series_index: str | None = None

    @property
    def author(self) -> str:
        """Authors joined for display and for tags; 'Unknown Author' keeps paths sane."""
        return ", ".join(self.authors) if self.authors else "Unknown Author"


#: A paragraph that is only this marks a section break inside a chapter. Readers write it
#: where a book has a rule (``<hr/>``) or an ornament; the chunker also takes any paragraph
#: that is only an ornament (``* * *``, ``⁂``) or a section number (``II``, ``3``) for one.
#: It is never spoken: it becomes a longer pause (or a spoken "Part Two").
SECTION_BREAK = "* * *"


@dataclass(frozen=True, slots=True)
class Chapter:
    """A titled piece of the book; paragraphs are already cleaned for speech."""

    title: str
    paragraphs: tuple[str, ...]
    voice: str | None = None
    style: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Cover:
    data: bytes
    mime: str  # "image/jpeg" once read (:func:`voxd.ingest.cover.sane_cover`); as found: PNG, SVG...


def image_mime(data: bytes) -> str | None:
    """JPEG or PNG by their first bytes (the only cover formats every player shows), else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


@dataclass(frozen=True, slots=True)
class Book:
    metadata: Metadata
    chapters: tuple[Chapter, ...]
    cover: Cover | None = None
    #: How to say words: (written, spoken) pairs from the manifest or the EPUB's PLS
    #: lexicons, applied on top of the global lexicon (see :mod:`voxd.narration.lexicon`).
    lexicon: tuple[tuple[str, str], ...] = ()
    #: Sections the reader left out for what their text is, whatever their title, and why:
    #: (title, kind) with a kind of :mod:`voxd.ingest.matter` ("pages", "imprint", "navigation: ...").
    skipped: tuple[tuple[str, str], ...] = ()


class Pause(str, Enum):
    """The silence that follows a chunk; its length comes from settings."""

    SENTENCE = "sentence"
    PARAGRAPH = "paragraph"
    SECTION = "section"  # a section break inside a chapter
    CHAPTER = "chapter"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One utterance for the engine, placed in the book so assembly can pace it."""

    chapter: int
    index: int  # position inside the chapter
    text: str
    pause: Pause
    voice: str
    language: str | None = None
    style: str | None = None
    key: str = field(default="", compare=False)
    #: A piece of a sentence longer than the chunk limit, cut at a clause or between
    #: words: the listener hears a pause the author did not write.
    cut: bool = field(default=False, compare=False)
