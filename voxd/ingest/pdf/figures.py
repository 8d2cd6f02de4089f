"""Text that is part of a picture: the labels inside figures and diagrams, never read aloud.

A PDF's diagram carries its words as text: axis ticks, node names, the letters of a
geometric drawing. Read in order they come out as strings of numbers and single letters
("0 10 20 x A B"); on a lecture-notes PDF about one paragraph in seven was such a
fragment. Two rules leave them out:

* a block whose position lies inside a figure (a cluster of vector drawing, or an
  image) is left out unless it is prose (a boxed paragraph, a sidebar);
* a run of three or more printed rows in reading order that are fragments, not sentences
  (short, no real word, mostly digits and single letters), is left out wherever it is.

With ``figure_mention`` a short "Figure." (in the book's language) stands where a
figure's text was, so the listener knows something was shown there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pymupdf

from voxd.ingest.pdf.model import Block, Page, Row
from voxd.tts.languages import primary_subtag

# Drawing items closer than this (points) belong to one figure.
_MARGIN = 6.0
# Labels sit just outside what they label (tick values left of an axis): a figure's text
# is what lies within this many points of its drawing.
_LABEL_MARGIN = 18.0
# A figure has at least this many drawing items (axes, ticks, curves) or an image ...
_MIN_ITEMS = 4
# ... is at least this big, and is no page background or frame.
_MIN_SIDE = 30.0
_MAX_PAGE_SHARE = 0.7
# A run of this many fragment blocks is a diagram drawn with text.
_MIN_RUN = 3
_FRAGMENT_MAX_CHARS = 30
_WORD = re.compile(r"[^\W\d_]{4,}")
_SENTENCE = re.compile(r"[.!?:;\u2026][\"'\u201d\u2019)\]]*$")
_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019\u00bb)\]]*$")

#: "Figure." in the languages Qwen3-TTS speaks (English for the others).
MENTIONS = {
    "en": "Figure.", "de": "Abbildung.", "fr": "Figure.", "es": "Figura.", "it": "Figura.", "pt": "Figura.",
    "ru": "Рисунок.", "zh": "图。", "ja": "図。", "ko": "그림.",
}  # fmt: skip


def mention(language: str | None) -> str:
    return MENTIONS.get(primary_subtag(language, "en"), MENTIONS["en"])


@dataclass(slots=True)
class _Cluster:
    rect: pymupdf.Rect
    items: int


def figure_regions(page: pymupdf.Page) -> list[pymupdf.Rect]:
    """The rectangles of the page's figures: clusters of vector drawing with enough items,
    and images, each smaller than most of the page."""
    area = abs(page.rect) or 1.0
    clusters: list[_Cluster] = []
    try:
        drawings = page.get_drawings()
    except (RuntimeError, ValueError):  # a damaged content stream: no figures, not no book
        drawings = []
    for path in drawings:
        rect = pymupdf.Rect(path.get("rect", (0, 0, 0, 0)))
        if rect.is_empty and rect.width == 0 and rect.height == 0:
            continue
        items = max(len(path.get("items", ())), 1)
        grown = pymupdf.Rect(rect.x0 - _MARGIN, rect.y0 - _MARGIN, rect.x1 + _MARGIN, rect.y1 + _MARGIN)
        merged = _Cluster(grown, items)
        rest = []
        for cluster in clusters:
            if cluster.rect.intersects(merged.rect):
                merged = _Cluster(merged.rect | cluster.rect, merged.items + cluster.items)
            else:
                rest.append(cluster)
        clusters = [*rest, merged]
    regions = [c.rect for c in clusters if c.items >= _MIN_ITEMS]
    try:
        images = page.get_image_info()
    except (RuntimeError, ValueError):
        images = []
    regions.extend(pymupdf.Rect(info["bbox"]) for info in images if "bbox" in info)
    return [
        r for r in regions
        if min(r.width, r.height) >= _MIN_SIDE and abs(r & page.rect) < _MAX_PAGE_SHARE * area
    ]  # fmt: skip


def is_prose(text: str) -> bool:
    """A sentence or more: several words, a real one among them, ending like a sentence."""
    words = text.split()
    return len(words) >= 6 and bool(_WORD.search(text)) and (bool(_SENTENCE.search(text)) or len(text) >= 120)


def is_fragment(text: str) -> bool:
    """A label, not a sentence: short, with no word of four letters or more, or mostly digits
    and symbols ("0.5", "x", "f(x)", "A B", "t [s]")."""
    if len(text) > _FRAGMENT_MAX_CHARS or _SENTENCE_END.search(text):
        return False  # "Yes." "No." "Why not?": short lines of dialogue are sentences
    letters = sum(ch.isalpha() for ch in text)
    return not _WORD.search(text) or letters * 2 < len(text.replace(" ", ""))


def _inside(row: Row, regions: list[pymupdf.Rect]) -> bool:
    x, y = (row.x0 + row.x1) / 2, row.mid
    m = _LABEL_MARGIN
    return any(r.x0 - m <= x <= r.x1 + m and r.y0 - m <= y <= r.y1 + m for r in regions)


def drop_figure_text(page: Page, regions: list[pymupdf.Rect], *, say: str | None) -> int:
    """Leave out the page's blocks inside a figure that are not prose; returns how many.
    With ``say``, the first left-out block of each figure becomes that mention."""
    if not regions:
        return 0
    kept: list[Block] = []
    mentioned: set[int] = set()
    dropped = 0
    for block in page.blocks:
        inside = [r for r in regions if all(_inside(row, [r]) for row in block.rows)]
        if not inside or is_prose(block.text):
            kept.append(block)
            continue
        dropped += 1
        key = id(inside[0])
        if say and key not in mentioned and not (kept and kept[-1].text == say):
            mentioned.add(key)
            kept.append(_mention_block(block, say))
    page.blocks = kept
    return dropped


def drop_fragment_runs(page: Page, *, say: str | None) -> int:
    """Leave out runs of :data:`_MIN_RUN` or more printed rows in reading order that are
    fragments (labels of a figure drawn without lines, a column of numbers); returns how
    many rows. With ``say``, the first row of each run becomes that mention."""
    rows = [(block, row) for block in page.blocks if not block.heading for row in block.rows]
    doomed: set[int] = set()
    i = 0
    while i < len(rows):
        j = i
        while j < len(rows) and is_fragment(rows[j][1].text):
            j += 1
        if j - i >= _MIN_RUN:
            run = [row for _, row in rows[i:j]]
            if say and not (i and rows[i - 1][1].text == say):
                run[0].text = say
                run = run[1:]
            doomed.update(id(row) for row in run)
        i = max(j, i + 1)
    if not doomed:
        return 0
    page.drop_rows(doomed)
    return len(doomed)


def _mention_block(where: Block, say: str) -> Block:
    row = where.rows[0]
    return Block(where.page, [Row(row.page, row.x0, row.y0, row.x1, row.y1, say, row.size, False)])
