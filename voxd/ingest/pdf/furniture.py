"""Running heads, running feet and page numbers: printed on every page, never read aloud."""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict

from voxd.ingest.common import norm
from voxd.ingest.pdf.layout import HEADING_RATIO
from voxd.ingest.pdf.model import Page, Row

# Rows this close (points) to a page's first or last text row are edge rows.
_EDGE_ROWS = 2
_ROW_TOLERANCE = 2.0
_FURNITURE_DRIFT = 6.0
_FURNITURE_ROWS = 2
# ... and is set off from the text by at least this share of the body font size.
_FURNITURE_GAP = 0.5

_PAGE_NUMBER = re.compile(
    r"[\s\[(<\-\u2010-\u2015]*"
    r"(?:(?i:page|p\.|pg\.?|seite|s\.|pagina|página|pág\.?)\s*)?"
    r"(?:\d{1,5}(?:\s*(?:(?i:of|von|de|sur|di)|/)\s*\d{1,5})?|[ivxlcdm]{1,8})"
    r"[\s\])>\-\u2010-\u2015]*"
)


def _furniture_key(text: str) -> str:
    """``text`` as running heads are compared: as titles are, digits ignored ("Page 3", "Page 4")."""
    return norm(re.sub(r"\d+", "#", text))


def strip_furniture(pages: list[Page], body: float) -> None:
    """Remove running heads/feet and page numbers from the top and bottom rows of pages.

    Furniture stands apart: a block of its own (or of two rows) at a page's edge, in
    type no larger than the body's, set off from the remaining text by white space. So
    the first or last line of a paragraph that happens to repeat at the top of several
    pages (a refrain) is never taken for a running head.
    """
    min_repeat = 2 if len(pages) <= 4 else 3
    found: dict[int, tuple[int, str, Row]] = {}  # id(row) -> (page, edge, row)
    seen: dict[tuple[str, str], list[tuple[int, float, Row]]] = defaultdict(list)
    for pno, page in enumerate(pages):
        rows = [r for b in page.blocks for r in b.rows]
        if not rows:
            continue
        apart = {id(r) for b in page.blocks if len(b.rows) <= _FURNITURE_ROWS for r in b.rows}
        levels: list[float] = []
        for mid in sorted(r.mid for r in rows):
            if not levels or mid - levels[-1] > _ROW_TOLERANCE:
                levels.append(mid)
        top, bottom = levels[:_EDGE_ROWS], levels[-_EDGE_ROWS:]
        for row in rows:
            if row.size > body * HEADING_RATIO or id(row) not in apart:
                continue
            if any(abs(row.mid - lv) <= _ROW_TOLERANCE for lv in top):
                edge = "top"
            elif any(abs(row.mid - lv) <= _ROW_TOLERANCE for lv in bottom):
                edge = "bottom"
            else:
                continue
            if _PAGE_NUMBER.fullmatch(row.text):
                found[id(row)] = (pno, edge, row)
                continue
            key = _furniture_key(row.text)
            if key:
                seen[(key, edge)].append((pno, row.mid, row))
    for (_, edge), hits in seen.items():
        if len({pno for pno, _, _ in hits}) < min_repeat:
            continue
        middle = statistics.median(mid for _, mid, _ in hits)
        near = [(pno, row) for pno, mid, row in hits if abs(mid - middle) <= _FURNITURE_DRIFT]
        # Running heads run on page after page (or every other page): a line that
        # comes back at chapter openings, pages apart, is a heading, not furniture.
        hit = sorted({pno for pno, _ in near})
        close = sum(1 for a, b in zip(hit, hit[1:]) if b - a <= 2)
        if len(hit) >= min_repeat and close >= min_repeat - 1:
            found.update((id(row), (pno, edge, row)) for pno, row in near)
    if not found:
        return

    doomed: set[int] = set()
    for pno, edge, row in found.values():
        rest = [r for b in pages[pno].blocks for r in b.rows if id(r) not in found]
        if edge == "top":
            below = [r.y0 for r in rest if r.mid > row.mid + _ROW_TOLERANCE]
            gap = min(below) - row.y1 if below else math.inf
        else:
            above = [r.y1 for r in rest if r.mid < row.mid - _ROW_TOLERANCE]
            gap = row.y0 - max(above) if above else math.inf
        if gap >= _FURNITURE_GAP * body:
            doomed.add(id(row))
    if not _text_left(pages, doomed):
        # Every line repeats page after page (a one-line text printed on each page): that
        # line is the document, not its running head. Only the page numbers go.
        doomed = {key for key in doomed if _PAGE_NUMBER.fullmatch(found[key][2].text)}
    for page in pages:
        page.drop_rows(doomed)


def _text_left(pages: list[Page], doomed: set[int]) -> bool:
    """Whether a row with a letter in it survives the removal of ``doomed``."""
    return any(id(r) not in doomed and any(ch.isalpha() for ch in r.text)
               for p in pages for b in p.blocks for r in b.rows)
