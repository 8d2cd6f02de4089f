"""Where a page's blocks sit: which are headings, in which order columns are read, and
where paragraphs start, across blocks, columns and pages.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict

from voxd.ingest.pdf.model import Block, Page, Row

# A heading's font is at least this much larger than the body text's.
HEADING_RATIO = 1.15
# ... and, unless it is bold, at least this much larger ("Your Name" under a title is not one).
_PLAIN_HEADING_RATIO = 1.25
HEADING_MAX_CHARS = 200
HEADING_MAX_ROWS = 3
# Column detection is skipped on pages with more blocks than this (tables, hostile files).
_MAX_COLUMN_BLOCKS = 400

_SENTENCE_END = re.compile(r"[.!?\u2026:;\"'\u201d\u2019\u00bb)\]]$")


def mark_headings(page: Page, body: float) -> None:
    """Mark the page's headings (short blocks in type larger than the ``body`` size) and its drop caps."""
    for block in page.blocks:
        text = block.text
        size = block.size
        block.heading = (
            size >= body * HEADING_RATIO
            and (size >= body * _PLAIN_HEADING_RATIO or sum(r.bold for r in block.rows) * 2 > len(block.rows))
            and len(block.rows) <= HEADING_MAX_ROWS
            and len(text) <= HEADING_MAX_CHARS
            and sum(ch.isalnum() for ch in text) >= 2
        )
        if len(block.rows) == 1 and len(text) == 1 and text.isalpha() and size >= 1.5 * body:
            block.rows[0].glue = True  # a drop cap: the first letter of the next paragraph


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def reading_order(page: Page) -> None:
    """Sort the page's blocks column by column, between the blocks that span columns."""
    blocks = page.blocks
    if len(blocks) < 2 or page.turned:
        return
    if len(blocks) > _MAX_COLUMN_BLOCKS:
        blocks.sort(key=lambda b: (round(b.y0), b.x0))
        return
    left = min(b.x0 for b in blocks)
    width = max(b.x1 for b in blocks) - left
    if width <= 0:
        return
    spans = [(b.x0, b.x1) for b in blocks]
    narrow = [i for i, (x0, x1) in enumerate(spans) if x1 - x0 < 0.6 * width]

    # Union the narrow blocks whose x-ranges mostly overlap: each cluster is a column.
    parent = {i: i for i in narrow}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for n, i in enumerate(narrow):
        for j in narrow[n + 1 :]:
            (a0, a1), (b0, b1) = spans[i], spans[j]
            if _overlap(a0, a1, b0, b1) >= 0.5 * max(min(a1 - a0, b1 - b0), 0.1):
                parent[find(i)] = find(j)
    clusters: dict[int, list[int]] = defaultdict(list)
    for i in narrow:
        clusters[find(i)].append(i)
    total = sum(blocks[i].chars for i in narrow) or 1
    columns = []
    for members in clusters.values():
        chars = sum(blocks[i].chars for i in members)
        if chars >= 0.1 * total:
            columns.append([min(spans[i][0] for i in members), max(spans[i][1] for i in members)])
    columns.sort()
    merged: list[list[float]] = []
    for col in columns:  # columns that overlap are one column
        if merged and col[0] < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], col[1])
        else:
            merged.append(col)
    if len(merged) < 2:
        blocks.sort(key=lambda b: (round(b.y0), b.x0))
        return

    page.columns = True
    for block in blocks:
        w = max(block.x1 - block.x0, 0.1)
        inside = [c for c, (c0, c1) in enumerate(merged) if _overlap(block.x0, block.x1, c0, c1) >= 0.8 * w]
        block.column = inside[0] if len(inside) == 1 else -1

    ordered: list[Block] = []
    pending: dict[int, list[Block]] = defaultdict(list)

    def flush() -> None:
        for c in sorted(pending):
            ordered.extend(sorted(pending[c], key=lambda b: b.y0))
        pending.clear()

    for block in sorted(blocks, key=lambda b: (b.y0, b.x0)):
        if block.column < 0:
            flush()
            ordered.append(block)
        else:
            pending[block.column].append(block)
    flush()
    page.blocks = ordered


def mark_paragraphs(blocks: list[Block]) -> None:
    """Decide which rows start a paragraph, across blocks, columns and pages."""
    prev: Row | None = None
    prev_full = False  # prev filled its block's measure (and so was cut, not ended)
    for block in blocks:
        rows = block.rows
        left = min(r.x0 for r in rows)
        right = max(r.x1 for r in rows)
        pitches = [b.y0 - a.y0 for a, b in zip(rows, rows[1:])]
        typical = statistics.median(pitches) if len(pitches) >= 2 else None
        full = sum(1 for r in rows[:-1] if r.x1 >= right - 0.5 * r.size)
        justified = len(rows) >= 3 and full >= 0.6 * (len(rows) - 1)
        for i, row in enumerate(rows):
            row.heading = block.heading
            if i == 0:
                indented = len(rows) > 1 and row.x0 - left >= 0.8 * row.size
                row.starts = not _continues(prev, row, prev_full=prev_full and not indented)
            elif block.heading:
                row.starts = False
            else:
                above = rows[i - 1]
                pitch = row.y0 - above.y0
                expected = typical if typical is not None else 1.25 * row.size
                gap = pitch > 1.4 * expected + 0.5
                shift = row.x0 - left
                indent = 0.8 * row.size <= shift <= 0.35 * (right - left) and above.x0 - left < 0.5 * row.size
                short = (
                    justified
                    and above.x1 < right - 2 * row.size
                    and bool(_SENTENCE_END.search(above.text))
                    and not above.glue
                )
                row.starts = gap or indent or short
            prev = row
        prev_full = len(rows) > 1 and rows[-1].x1 >= right - 1.5 * rows[-1].size


def _continues(prev: Row | None, row: Row, *, prev_full: bool) -> bool:
    """Does ``row`` (first of its block) carry on the paragraph ``prev`` ended in?

    Yes when ``prev`` ends without closing a sentence and ``row`` starts in lower case,
    or when ``prev`` filled the whole line (a page or column break cut it) and ``row``
    is not indented like a new paragraph.
    """
    if prev is None or prev.heading or row.heading:
        return False
    if prev.glue:
        # A drop cap stands beside the lines it begins; a big letter above the text is a
        # heading of its own (a section numbered "I"), not the first letter of the next word.
        if row.y0 < prev.y1:
            return True
        prev.glue = False
        return False
    if abs(prev.size - row.size) > 0.15 * max(prev.size, row.size):
        return False
    if _SENTENCE_END.search(prev.text):
        return False
    return row.text[:1].islower() or prev_full
