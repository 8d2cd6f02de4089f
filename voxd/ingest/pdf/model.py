"""The rows, blocks and pages that every step of the PDF reader works on, and how
printed lines become a paragraph's text: one place for the joining rules, so a heading,
a title and a paragraph are joined alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from voxd.book import SECTION_BREAK
from voxd.ingest.common import SOFT_HYPHEN, strip_invisible

_HYPHENS = "-\u2010"
# Control codes other than tab and newline are never text: removed like the invisible ones.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
# A line with no letter or digit this short is an ornament between sections ("* * *").
_ORNAMENT_MAX = 40


@dataclass(slots=True)
class Row:
    """One printed line of a block (pieces of text that share a baseline)."""

    page: int
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    size: float
    bold: bool
    heading: bool = False  # part of a heading block
    starts: bool = True  # starts a paragraph
    glue: bool = False  # a drop cap: the next row follows without a space

    @property
    def mid(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass(slots=True)
class Block:
    page: int
    rows: list[Row]
    heading: bool = False
    column: int = -1  # -1: spans the columns (or the page has none)
    size: float = 0.0  # the font size of most of its characters

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        self.size = weighted_mode((r.size, len(r.text)) for r in self.rows)

    @property
    def x0(self) -> float:
        return min(r.x0 for r in self.rows)

    @property
    def x1(self) -> float:
        return max(r.x1 for r in self.rows)

    @property
    def y0(self) -> float:
        return min(r.y0 for r in self.rows)

    @property
    def chars(self) -> int:
        return sum(len(r.text) for r in self.rows)

    @property
    def text(self) -> str:
        return join_rows(self.rows)


@dataclass(slots=True)
class Page:
    blocks: list[Block]
    turned: bool = False  # most text runs at an angle: kept in MuPDF's order
    columns: bool = False  # read column by column
    letters: int = 0  # letters and digits (up to a few), -1 for a scanned page

    def drop_rows(self, doomed: set[int]) -> None:
        """Remove the rows whose ``id`` is in ``doomed``; a block left empty goes too."""
        kept = []
        for block in self.blocks:
            left = [row for row in block.rows if id(row) not in doomed]
            if len(left) != len(block.rows):
                block.rows = left
                if left:
                    block.refresh()
            if block.rows:
                kept.append(block)
        self.blocks = kept


def tier(size: float) -> float:
    return round(size * 2) / 2


def weighted_mode(pairs: Iterable[tuple[float, int]]) -> float:
    """The size (to half a point) that most characters have."""
    counts: dict[float, int] = {}
    for size, weight in pairs:
        half = tier(size)
        counts[half] = counts.get(half, 0) + max(weight, 1)
    return max(counts, key=counts.__getitem__) if counts else 0.0


def visible_text(text: str) -> str:
    """``text`` without invisible characters and control codes (soft hyphens stay)."""
    return _CONTROL.sub("", strip_invisible(text))


def finish(text: str) -> str:
    """A paragraph as voxd keeps it: no soft hyphens or invisible characters, one line."""
    return " ".join(visible_text(text.replace(SOFT_HYPHEN, "")).split())


def join(left: str, right: str, *, glue: bool = False) -> str:
    """Join two printed lines: words hyphenated at the break become one word again."""
    if not left:
        return right
    if glue or left.endswith(SOFT_HYPHEN):
        return left.rstrip(SOFT_HYPHEN) + right
    if left[-1] in _HYPHENS and len(left) > 1 and left[-2].isalpha() and right[:1].isalpha():
        # "exam-" + "ple" -> "example"; "Anglo-" + "Saxon" keeps its hyphen.
        return (left[:-1] if right[0].islower() else left) + right
    return f"{left} {right}"


def join_rows(rows: list[Row]) -> str:
    text = ""
    glue = False
    for row in rows:
        text = join(text, row.text, glue=glue)
        glue = row.glue
    return finish(text)


def split_paragraphs(rows: list[Row]) -> list[str]:
    paragraphs: list[str] = []
    current = ""
    glue = False
    for i, row in enumerate(rows):
        if i and row.starts and not glue:
            paragraphs.append(current)
            current = ""
        current = join(current, row.text, glue=glue)
        glue = row.glue
    paragraphs.append(current)
    out: list[str] = []
    for text in paragraphs:
        text = finish(text)
        if any(ch.isalnum() for ch in text):
            out.append(text)
        elif text and len(text) <= _ORNAMENT_MAX and out and out[-1] != SECTION_BREAK:
            out.append(SECTION_BREAK)  # "* * *" on a line of its own: a section break
    while out and out[-1] == SECTION_BREAK:
        out.pop()
    return out
