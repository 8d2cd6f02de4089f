"""Small EPUBs built on the spot: the quick start's sample book, and books for tests and benchmarks.

``python -m voxd.samples OUT.epub`` writes the sample book. The text is the
opening of Lewis Carroll's *Alice's Adventures in Wonderland* (1865, public domain).
"""

from __future__ import annotations

import argparse
import html
from collections.abc import Sequence
from pathlib import Path

SAMPLE_TITLE = "Down the Rabbit-Hole"
SAMPLE_AUTHOR = "Lewis Carroll"
SAMPLE_CHAPTERS: list[tuple[str, list[str]]] = [
    (
        "Down the Rabbit-Hole",
        [
            "Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing "
            "to do: once or twice she had peeped into the book her sister was reading, but it had no pictures "
            "or conversations in it, \u201cand what is the use of a book,\u201d thought Alice \u201cwithout "
            "pictures or conversations?\u201d",
            "So she was considering in her own mind (as well as she could, for the hot day made her feel very "
            "sleepy and stupid), whether the pleasure of making a daisy-chain would be worth the trouble of "
            "getting up and picking the daisies, when suddenly a White Rabbit with pink eyes ran close by her.",
        ],
    ),
    (
        "The Pool of Tears",
        [
            "\u201cCuriouser and curiouser!\u201d cried Alice (she was so much surprised, that for the moment "
            "she quite forgot how to speak good English).",
            "\u201cNow I\u2019m opening out like the largest telescope that ever was! Good-bye, feet!\u201d",
        ],
    ),
    (
        "A Caucus-Race and a Long Tale",
        [
            "They were indeed a queer-looking party that assembled on the bank: the birds with draggled "
            "feathers, the animals with their fur clinging close to them, and all dripping wet, cross, and "
            "uncomfortable.",
        ],
    ),
]


def build_epub(
    path: Path,
    *,
    title: str,
    authors: Sequence[str] = ("Anonymous",),
    chapters: Sequence[tuple[str, Sequence[str]]],
    language: str = "en",
    identifier: str | None = None,
    cover: bytes | None = None,
) -> Path:
    """Write an EPUB 3 with a nav document and one XHTML file per chapter."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier(identifier or f"voxd-sample-{abs(hash((title, tuple(authors)))) :x}")
    book.set_title(title)
    book.set_language(language)
    for author in authors:
        book.add_author(author)
    if cover is not None:
        book.set_cover("cover.png", cover)
    items = []
    for n, (chapter_title, paragraphs) in enumerate(chapters, start=1):
        item = epub.EpubHtml(title=chapter_title, file_name=f"chapter{n:03d}.xhtml", lang=language)
        body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        item.content = f"<html><body><h1>{html.escape(chapter_title)}</h1>{body}</body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = tuple(items)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    path.parent.mkdir(parents=True, exist_ok=True)
    epub.write_epub(str(path), book)
    return path


def build_sample(path: Path) -> Path:
    return build_epub(path, title=SAMPLE_TITLE, authors=(SAMPLE_AUTHOR,), chapters=SAMPLE_CHAPTERS,
                      identifier="voxd-sample-alice")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the quick start's sample EPUB.")
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    print(build_sample(args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
