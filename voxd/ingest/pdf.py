"""Read a PDF into a :class:`~voxd.book.Book` of speakable chapters, with PyMuPDF.

The pipeline:

1. The file is opened as a PDF and vetted: unreadable, encrypted (a user password is
   needed) and over-long files are refused with a :class:`BookError` that says why.
2. Every page's text comes from ``page.get_text("dict")``: blocks of lines of spans,
   each with its position, font size and weight. Lines that share a baseline inside a
   block become one *row*; a block whose font size changes (a heading printed in the
   same block as the text below it) is split there.
3. Page furniture is removed: rows at the top or bottom edge of a page that repeat on
   several pages at about the same height (running heads and feet, digits ignored),
   and edge rows that are only a page number ("12", "Page 3", "3 of 10", "- iv -").
4. Blocks are put in reading order: on a page with columns (block x-ranges that form
   separate clusters) each column is read top to bottom, left to right, between the
   blocks that span the columns (a title, a wide table).
5. Rows are joined into paragraphs: a paragraph starts with a block, unless the block
   continues a sentence cut by a column or page break; inside a block, a large
   vertical gap, a first-line indent or (in justified text) a short line ending a
   sentence starts a new one. Words hyphenated across lines are joined.
6. Chapters come from the outline (bookmarks) when there is one, at the level that
   gives chapter-sized pieces; otherwise from headings found by font size; otherwise
   the text is cut into "Part 1", "Part 2"... of about ``part_chars`` characters.

Metadata comes from the document information dictionary and the catalog's ``/Lang``;
without a title, the largest text on the first page is the title. The cover is the
first page, rendered to a JPEG about 600 pixels tall.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf

from voxd.book import Book, Chapter, Cover, Metadata
from voxd.errors import BookError, VoxdError
from voxd.ingest.common import SOFT_HYPHEN, check_toc_depth, describe, is_matter_title, norm, strip_invisible
from voxd.ingest.outline import chapter_spans, settle, walk

log = logging.getLogger(__name__)

__all__ = ["MAX_PAGES", "PART_CHARS", "read_pdf"]

#: PDFs with more pages than this are refused (a book is rarely over 2,000).
MAX_PAGES = 5000
#: Without outline or headings the text is cut into parts of about this many characters
#: (roughly 20 minutes of speech).
PART_CHARS = 20_000
#: Height of the rendered cover in pixels (the width follows the page, at most twice that).
COVER_HEIGHT = 600

# Ligatures are expanded ("ﬁ" -> "fi"); text outside the media box is dropped.
_TEXT_FLAGS = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP
# A heading's font is at least this much larger than the body text's.
_HEADING_RATIO = 1.15
# ... and, unless it is bold, at least this much larger ("Your Name" under a title is not one).
_PLAIN_HEADING_RATIO = 1.25
_HEADING_MAX_CHARS = 200
_HEADING_MAX_ROWS = 3
# Rows this close (points) to a page's first or last text row are edge rows.
_EDGE_ROWS = 2
_ROW_TOLERANCE = 2.0
_FURNITURE_DRIFT = 6.0
_FURNITURE_ROWS = 2
# ... and is set off from the text by at least this share of the body font size.
_FURNITURE_GAP = 0.5
# Column detection is skipped on pages with more blocks than this (tables, hostile files).
_MAX_COLUMN_BLOCKS = 400
_MAX_OUTLINE_ENTRIES = 20_000
# Automatic outline level (voxd.ingest.outline): an entry holding more than this
# (about two hours of speech) is opened into its children too.
_MAX_CHAPTER_CHARS = 100_000
# Heading level: a piece holding this share of the text is split at the next smaller
# heading size, if the pieces stay at least _MIN_AVERAGE_CHARS long on average.
_HEADING_DOMINANT_SHARE = 0.4
_MIN_AVERAGE_CHARS = 1500
# A page with fewer letters and digits than this has no text to speak of; a PDF whose
# pages are mostly images without text is a scan.
_MIN_PAGE_CHARS = 20
_SCANNED_SHARE = 0.9
# A text layer with more unmapped glyphs (U+FFFD) than this share is unusable.
_MAX_UNMAPPED_SHARE = 0.3

_PAGE_NUMBER = re.compile(
    r"[\s\[(<\-\u2010-\u2015]*"
    r"(?:(?i:page|p\.|pg\.?|seite|s\.|pagina|página|pág\.?)\s*)?"
    r"(?:\d{1,5}(?:\s*(?:(?i:of|von|de|sur|di)|/)\s*\d{1,5})?|[ivxlcdm]{1,8})"
    r"[\s\])>\-\u2010-\u2015]*"
)
_SENTENCE_END = re.compile(r"[.!?\u2026:;\"'\u201d\u2019\u00bb)\]]$")
_HYPHENS = "-\u2010"
# Control codes other than tab and newline are never text: removed like the invisible ones.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_LABEL = re.compile(
    r"(?:(?:chapter|part|section|book|appendix|kapitel|chapitre|capitulo|capítulo)\s+)?"
    r"(?:\d+(?:\.\d+)*|[ivxlcdm]+|[a-z])\.?\s+",
    re.IGNORECASE,
)
_CONTENTS_ROW = re.compile(r".*\D[\s.\u2026·]*\d{1,4}")
_JUNK_TITLE = re.compile(
    r"untitled(?:[\s-]?\d+)?|document\s?\d*|microsoft (?:word|powerpoint) - .*|slide \d+|.*\.(?:docx?|odt|rtf|"
    r"pdf|tex|dvi|ps|indd|qxd|pages|txt|html?)",
    re.IGNORECASE,
)
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
# What MuPDF raises for a damaged file: PyMuPDF's RuntimeError subclasses, and the
# binding's own exceptions where PyMuPDF lets them through.
_MUPDF_ERRORS: tuple[type[Exception], ...] = (RuntimeError, ValueError, pymupdf.mupdf.FzErrorBase)


# ---------------------------------------------------------------------------- public


def read_pdf(
    path: Path,
    *,
    toc_depth: int | None = None,
    skip_front_back_matter: bool = True,
    part_chars: int = PART_CHARS,
) -> Book:
    """Read the PDF at ``path`` into a :class:`Book` whose chapters are ready to speak.

    ``toc_depth``: which level of a nested outline makes the chapters (1 is the top
    level); ``None`` picks the level that gives chapter-sized pieces.
    ``skip_front_back_matter``: leave out outline entries such as the table of
    contents, index or copyright page, and a contents page before the first chapter.
    ``part_chars``: size of the "Part N" pieces used when the PDF has neither an outline
    nor headings.

    Raises :class:`BookError` when the file is not a readable PDF, is encrypted, is a
    scan without a text layer, has too many pages or has no text.
    """
    path = Path(path)
    check_toc_depth(toc_depth)
    if part_chars < 1:
        raise ValueError(f"part_chars must be positive, not {part_chars}")
    name = path.name
    doc = _open(path)
    try:
        return _read(doc, path, toc_depth=toc_depth, skip_matter=skip_front_back_matter, part_chars=part_chars)
    except VoxdError:
        raise
    except _MUPDF_ERRORS as exc:
        raise BookError(f"{name} is not a readable PDF: {describe(exc)}") from None
    finally:
        doc.close()


# ------------------------------------------------------------------------ opening


def _open(path: Path) -> pymupdf.Document:
    name = path.name
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except pymupdf.EmptyFileError:
        raise BookError(f"{name} is not a readable PDF: the file is empty") from None
    except FileNotFoundError:
        raise BookError(f"{name} is not a readable PDF: the file does not exist") from None
    except (*_MUPDF_ERRORS, OSError) as exc:
        raise BookError(f"{name} is not a readable PDF: {_open_failure(path, exc)}") from None
    try:
        if doc.needs_pass or doc.is_encrypted:
            raise BookError(f"{name} is password protected; voxd cannot read encrypted PDFs")
        if doc.page_count > MAX_PAGES:
            raise BookError(f"{name} has {doc.page_count} pages; voxd reads PDFs of at most {MAX_PAGES} pages")
        if doc.page_count < 1:
            raise BookError(f"{name} is not a readable PDF: it has no pages")
    except BaseException:
        doc.close()
        raise
    return doc


def _open_failure(path: Path, exc: BaseException) -> str:
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
    except OSError as err:
        return err.strerror or describe(exc)
    if b"%PDF-" not in head:
        return "it does not start with a PDF header"
    return "it is damaged beyond repair"


# ------------------------------------------------------------------------ the model


@dataclass(slots=True)
class _Row:
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
class _Block:
    page: int
    rows: list[_Row]
    heading: bool = False
    column: int = -1  # -1: spans the columns (or the page has none)
    size: float = 0.0  # the font size of most of its characters

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        self.size = _weighted_mode((r.size, len(r.text)) for r in self.rows)

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
        return _join_rows(self.rows)


@dataclass(eq=False)
class _Node:
    title: str
    page: int  # 0-based; -1 when the entry points nowhere in this file
    x: float
    y: float
    depth: int
    children: list[_Node] = field(default_factory=list)
    pos: int | None = None  # index of its first row in the stream
    skip: bool = False


@dataclass(slots=True)
class _Page:
    blocks: list[_Block]
    turned: bool = False  # most text runs at an angle: kept in MuPDF's order
    columns: bool = False  # read column by column
    letters: int = 0  # letters and digits (up to a few), -1 for a scanned page


def _tier(size: float) -> float:
    return round(size * 2) / 2


def _weighted_mode(pairs: Iterable[tuple[float, int]]) -> float:
    """The size (to half a point) that most characters have."""
    counts: dict[float, int] = {}
    for size, weight in pairs:
        tier = round(size * 2) / 2
        counts[tier] = counts.get(tier, 0) + max(weight, 1)
    return max(counts, key=counts.__getitem__) if counts else 0.0


def _visible(text: str) -> str:
    """``text`` without invisible characters and control codes (soft hyphens stay)."""
    return _CONTROL.sub("", strip_invisible(text))


def _finish(text: str) -> str:
    """A paragraph as voxd keeps it: no soft hyphens or invisible characters, one line."""
    return " ".join(_visible(text.replace(SOFT_HYPHEN, "")).split())


def _join(left: str, right: str, *, glue: bool = False) -> str:
    """Join two printed lines: words hyphenated at the break become one word again."""
    if not left:
        return right
    if glue or left.endswith(SOFT_HYPHEN):
        return left.rstrip(SOFT_HYPHEN) + right
    if left[-1] in _HYPHENS and len(left) > 1 and left[-2].isalpha() and right[:1].isalpha():
        # "exam-" + "ple" -> "example"; "Anglo-" + "Saxon" keeps its hyphen.
        return (left[:-1] if right[0].islower() else left) + right
    return f"{left} {right}"


def _join_rows(rows: list[_Row]) -> str:
    text = ""
    glue = False
    for row in rows:
        text = _join(text, row.text, glue=glue)
        glue = row.glue
    return _finish(text)


# -------------------------------------------------------------------- extraction


def _span_bold(span: dict) -> bool:
    return bool(span.get("flags", 0) & pymupdf.TEXT_FONT_BOLD) or bool(_BOLD_FONT.search(span.get("font", "")))


def _page_content(page: pymupdf.Page, pno: int) -> tuple[_Page, int, int]:
    """The page's blocks of rows; also the counts of unmapped and of all visible characters."""
    data = page.get_text("dict", flags=_TEXT_FLAGS)
    raw: list[list[tuple[tuple[float, float, float, float], str, float, bool, bool]]] = []
    straight = slanted = 0
    unmapped = visible = 0
    for block in data.get("blocks", ()):
        if block.get("type") != 0:
            continue
        lines = []
        for line in block.get("lines", ()):
            spans = line.get("spans", ())
            text = "".join(s.get("text", "") for s in spans)
            weights = [(s.get("size", 0.0), len(s.get("text", "").strip())) for s in spans]
            chars = sum(w for _, w in weights)
            if not chars:
                continue
            unmapped += text.count("\ufffd")
            visible += chars
            text = text.replace("\ufffd", "")
            if not text.strip():
                continue
            size = _weighted_mode(weights)
            bold_chars = sum(len(s.get("text", "").strip()) for s in spans if _span_bold(s))
            dx, dy = line.get("dir", (1.0, 0.0))
            horizontal = dx > 0 and abs(dy) < 0.05
            if horizontal:
                straight += chars
            else:
                slanted += chars
            lines.append((tuple(line["bbox"]), text, size, bold_chars * 2 > chars, horizontal))
        if lines:
            raw.append(lines)

    # Margin notes, stamps and watermarks run at an angle: drop them, unless the page
    # itself is turned (then its text keeps MuPDF's order).
    turned = slanted > straight
    blocks: list[_Block] = []
    for lines in raw:
        kept = lines if turned else [ln for ln in lines if ln[4]]
        blocks.extend(_split_by_size(pno, _rows(pno, kept, group=not turned)))
    return _Page(blocks, turned=turned), unmapped, visible


def _rows(pno: int, lines: list, *, group: bool = True) -> list[_Row]:
    """Lines of one block grouped into printed rows (pieces on the same baseline)."""
    ordered = sorted(lines, key=lambda ln: ((ln[0][1] + ln[0][3]) / 2, ln[0][0])) if group else lines
    groups: list[list] = []
    for ln in ordered:
        y0, y1 = ln[0][1], ln[0][3]
        if groups and group:
            last = groups[-1]
            gy0 = min(g[0][1] for g in last)
            gy1 = max(g[0][3] for g in last)
            overlap = min(y1, gy1) - max(y0, gy0)
            if overlap >= 0.5 * max(min(y1 - y0, gy1 - gy0), 0.1):
                last.append(ln)
                continue
        groups.append([ln])
    rows = []
    for group in groups:
        pieces = sorted(group, key=lambda ln: ln[0][0])
        text = ""
        for ln in pieces:
            text = _join(text, " ".join(ln[1].split()))
        text = _visible(text).strip()
        if not text:
            continue
        weights = [(ln[2], len(ln[1].strip())) for ln in pieces]
        bold = sum(len(ln[1].strip()) for ln in pieces if ln[3]) * 2 > sum(w for _, w in weights)
        rows.append(
            _Row(
                page=pno,
                x0=min(ln[0][0] for ln in pieces),
                y0=min(ln[0][1] for ln in pieces),
                x1=max(ln[0][2] for ln in pieces),
                y1=max(ln[0][3] for ln in pieces),
                text=text,
                size=_weighted_mode(weights),
                bold=bold,
            )
        )
    return rows


def _split_by_size(pno: int, rows: list[_Row]) -> list[_Block]:
    """One block per run of rows in the same font size (a heading glued to its text)."""
    blocks: list[_Block] = []
    current: list[_Row] = []
    for row in rows:
        if current and abs(row.size - current[-1].size) > 0.15 * max(row.size, current[-1].size):
            blocks.append(_Block(pno, current))
            current = []
        current.append(row)
    if current:
        blocks.append(_Block(pno, current))
    return blocks


# ------------------------------------------------------------------ page furniture


def _furniture_key(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", re.sub(r"\d+", "#", text.casefold())).split())


def _strip_furniture(pages: list[_Page], body: float) -> None:
    """Remove running heads/feet and page numbers from the top and bottom rows of pages.

    Furniture stands apart: a block of its own (or of two rows) at a page's edge, in
    type no larger than the body's, set off from the remaining text by white space. So
    the first or last line of a paragraph that happens to repeat at the top of several
    pages (a refrain) is never taken for a running head.
    """
    min_repeat = 2 if len(pages) <= 4 else 3
    found: dict[int, tuple[int, str, _Row]] = {}  # id(row) -> (page, edge, row)
    seen: dict[tuple[str, str], list[tuple[int, float, _Row]]] = defaultdict(list)
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
            if row.size > body * _HEADING_RATIO or id(row) not in apart:
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
    for page in pages:
        kept = []
        for block in page.blocks:
            rows = [r for r in block.rows if id(r) not in doomed]
            if len(rows) != len(block.rows):
                block.rows = rows
                if rows:
                    block.refresh()
            if block.rows:
                kept.append(block)
        page.blocks = kept


# ------------------------------------------------------------------ reading order


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _reading_order(page: _Page) -> None:
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

    ordered: list[_Block] = []
    pending: dict[int, list[_Block]] = defaultdict(list)

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


# ------------------------------------------------------------------ paragraphs


def _mark_paragraphs(blocks: list[_Block]) -> None:
    """Decide which rows start a paragraph, across blocks, columns and pages."""
    prev: _Row | None = None
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


def _continues(prev: _Row | None, row: _Row, *, prev_full: bool) -> bool:
    """Does ``row`` (first of its block) carry on the paragraph ``prev`` ended in?

    Yes when ``prev`` ends without closing a sentence and ``row`` starts in lower case,
    or when ``prev`` filled the whole line (a page or column break cut it) and ``row``
    is not indented like a new paragraph.
    """
    if prev is None or prev.heading or row.heading:
        return False
    if prev.glue:
        return True
    if abs(prev.size - row.size) > 0.15 * max(prev.size, row.size):
        return False
    if _SENTENCE_END.search(prev.text):
        return False
    return row.text[:1].islower() or prev_full


def _paragraphs(rows: list[_Row]) -> list[str]:
    paragraphs: list[str] = []
    current = ""
    glue = False
    for i, row in enumerate(rows):
        if i and row.starts and not glue:
            paragraphs.append(current)
            current = ""
        current = _join(current, row.text, glue=glue)
        glue = row.glue
    paragraphs.append(current)
    out = []
    for text in paragraphs:
        text = _finish(text)
        if any(ch.isalnum() for ch in text):
            out.append(text)
    return out


def _drop_title_rows(title: str, rows: list[_Row]) -> list[_Row]:
    """The title is spoken on its own: drop leading rows that only repeat it
    ("1 Foo" under the outline title "Foo", "Chapter 3" and "The Storm" under
    "Chapter 3: The Storm")."""
    wanted = norm(title)
    if not wanted:
        return rows
    padded = f" {wanted} "
    i = 0
    while i < len(rows) and i < 4:
        text = norm(rows[i].text)
        unlabelled = norm(_LABEL.sub("", rows[i].text.strip(), count=1))
        if not text:
            i += 1
            continue
        if text == wanted or (rows[i].heading and (f" {text} " in padded or unlabelled == wanted)):
            i += 1
        else:
            break
    return rows[i:]


def _contents_like(rows: list[_Row]) -> bool:
    """A table of contents: most rows end in a page number."""
    if len(rows) < 3:
        return False
    numbered = sum(1 for r in rows if _CONTENTS_ROW.fullmatch(r.text))
    return numbered * 2 >= len(rows)


# ------------------------------------------------------------------ the reader


class _Reader:
    """Chapters from the stream of rows: by outline, by headings or in parts."""

    def __init__(self, pages: list[_Page], title: str, *, skip_matter: bool) -> None:
        self.pages = pages
        self.title = title
        self.skip_matter = skip_matter
        self.blocks = [b for p in pages for b in p.blocks]
        self.rows = [r for b in self.blocks for r in b.rows]
        self.sizes = [0]
        for row in self.rows:
            self.sizes.append(self.sizes[-1] + len(row.text))
        self.by_page: dict[int, list[int]] = defaultdict(list)
        for i, row in enumerate(self.rows):
            self.by_page[row.page].append(i)
        # first row on this page or a later one, for targets past a page's last row
        self.next_row = [len(self.rows)] * (len(pages) + 1)
        for p in range(len(pages) - 1, -1, -1):
            self.next_row[p] = self.by_page[p][0] if self.by_page.get(p) else self.next_row[p + 1]
        self.block_start: dict[int, int] = {}
        pos = 0
        for block in self.blocks:
            self.block_start[id(block)] = pos
            pos += len(block.rows)

    def chars(self, start: int, end: int) -> int:
        return self.sizes[end] - self.sizes[start]

    def chapter(self, title: str, start: int, end: int) -> Chapter | None:
        rows = _drop_title_rows(title, self.rows[start:end])
        paragraphs = _paragraphs(rows)
        return Chapter(title=title, paragraphs=tuple(paragraphs)) if paragraphs else None

    def leading(self, end: int) -> list[Chapter]:
        """What comes before the first chapter: kept, unless it is a contents page."""
        rows = self.rows[:end]
        if not rows:
            return []
        if self.skip_matter and (_contents_like(rows) or is_matter_title(rows[0].text)):
            return []
        first = next((i for i, r in enumerate(rows) if r.heading), None)
        title = ""
        if first is not None:  # its first heading, if any, names it
            last = first
            while last + 1 < len(rows) and last - first < _HEADING_MAX_ROWS - 1 and rows[last + 1].heading:
                last += 1
            title = _join_rows(rows[first : last + 1])
        chapter = self.chapter(title or self.title, 0, end)
        return [chapter] if chapter else []

    # -- outline

    def locate(self, node: _Node, page_height: dict[int, float]) -> int | None:
        if node.page < 0 or node.page >= len(self.pages):
            return None
        rows = self.by_page.get(node.page, [])
        y = node.y
        if rows and math.isfinite(y) and 0 < y < page_height.get(node.page, math.inf):
            use_x = self.pages[node.page].columns and math.isfinite(node.x) and node.x > 0
            for i in rows:
                row = self.rows[i]
                if row.y1 >= y + 0.5 and (not use_x or row.x1 > node.x):
                    return i
            return self.next_row[node.page + 1]
        return self.next_row[node.page]

    def outline_chapters(self, toc: list[_Node], toc_depth: int | None, heights: dict[int, float]) -> list[Chapter]:
        # Children before parents (no recursion: outlines can be nested thousands deep).
        for node in reversed(list(walk(toc))):
            node.pos = self.locate(node, heights)
            # An entry with no target starts where its first child does.
            settle(node, matter=self.skip_matter and is_matter_title(node.title))
        entries = chapter_spans(toc, toc_depth, len(self.rows), self.chars, max_chars=_MAX_CHAPTER_CHARS)
        if not entries:
            return []
        chapters = self.leading(entries[0][1])
        for node, start, end in entries:
            if node.skip or start >= end:
                continue
            title = node.title or next((r.text for r in self.rows[start:end] if r.heading), "")
            chapter = self.chapter(title or f"Chapter {len(chapters) + 1}", start, end)
            if chapter:
                chapters.append(chapter)
        return chapters

    # -- headings

    def heading_chapters(self) -> list[Chapter]:
        wanted = norm(self.title)
        candidates = [
            b for b in self.blocks if b.heading and not (b.page == 0 and wanted and norm(b.text) == wanted)
        ]
        # Heading levels by font size, largest first; each level includes the larger ones.
        tiers = sorted({_tier(b.size) for b in candidates}, reverse=True)
        levels = [[b for b in candidates if _tier(b.size) >= t] for t in tiers]
        levels = [level for level in levels if len(level) >= 2]
        if not levels:
            return []
        breaks = levels[0]
        for finer in levels[1:]:
            if not self._dominated(breaks) or not self._worth_splitting(finer, breaks):
                break
            breaks = finer

        # Consecutive heading blocks ("Chapter 3" above "The Storm") make one title.
        starts: list[tuple[str, int, int]] = []  # title, first row, first row after the heading
        for block in breaks:
            first = self.block_start[id(block)]
            after = first + len(block.rows)
            if starts and starts[-1][2] == first and self.rows[first - 1].page == block.page:
                title, begin, _ = starts[-1]
                starts[-1] = (f"{title}: {block.text}"[:_HEADING_MAX_CHARS], begin, after)
            else:
                starts.append((block.text, first, after))

        chapters = self.leading(starts[0][1])
        for n, (title, _, after) in enumerate(starts):
            end = starts[n + 1][1] if n + 1 < len(starts) else len(self.rows)
            chapter = self.chapter(title, after, end)
            if chapter is None:
                continue
            if self.skip_matter and is_matter_title(title):
                continue
            chapters.append(chapter)
        return chapters

    def _pieces(self, breaks: list[_Block]) -> list[int]:
        bounds = sorted(self.block_start[id(b)] for b in breaks)
        edges = [0, *bounds, len(self.rows)]
        return [self.chars(a, b) for a, b in zip(edges, edges[1:]) if b > a]

    def _dominated(self, breaks: list[_Block]) -> bool:
        pieces = self._pieces(breaks)
        total = sum(pieces) or 1
        return max(pieces, default=0) >= _HEADING_DOMINANT_SHARE * total

    def _worth_splitting(self, finer: list[_Block], coarser: list[_Block]) -> bool:
        pieces = self._pieces(finer)
        return len(finer) > len(coarser) and sum(pieces) / max(len(pieces), 1) >= _MIN_AVERAGE_CHARS

    # -- fixed-size parts

    def part_chapters(self, part_chars: int) -> list[Chapter]:
        paragraphs = _paragraphs(self.rows)
        parts: list[list[str]] = []
        size = part_chars  # start a part on the first paragraph
        for text in paragraphs:
            if size >= part_chars:
                parts.append([])
                size = 0
            parts[-1].append(text)
            size += len(text)
        if len(parts) > 1 and sum(len(t) for t in parts[-1]) < part_chars // 4:
            parts[-2].extend(parts.pop())
        return [Chapter(title=f"Part {n}", paragraphs=tuple(p)) for n, p in enumerate(parts, start=1)]


# ------------------------------------------------------------------ outline


def _outline(doc: pymupdf.Document) -> list[_Node]:
    """The outline as a tree, each entry with its target page and point (top-left origin).

    Walks the same tree as ``doc.get_toc()``, without recursion, and asks MuPDF to
    resolve every target: ``get_toc(simple=False)`` gives named destinations in PDF
    coordinates (origin bottom-left) and direct ones with origin top-left.
    """
    item = doc.outline
    roots: list[_Node] = []
    stack: list[tuple[object, int, list[_Node]]] = [(item, 1, roots)]
    count = 0
    while stack:
        item, depth, siblings = stack.pop()
        chain = []
        while _live(item) and count < _MAX_OUTLINE_ENTRIES:
            count += 1
            title = " ".join(_visible(item.title or "").split())
            page, x, y = -1, math.nan, math.nan
            if not item.is_external and item.uri:
                page, x, y = doc.resolve_link(item.uri)
            node = _Node(title=title, page=page, x=float(x), y=float(y), depth=depth)
            siblings.append(node)
            if item.down is not None:
                chain.append((item.down, depth + 1, node.children))
            item = item.next
        stack.extend(reversed(chain))
    return roots


def _live(item: object) -> bool:
    """An outline item that points to an entry (PyMuPDF ends chains with an empty one)."""
    return item is not None and bool(getattr(getattr(item, "this", None), "m_internal", None))


# ------------------------------------------------------------------ metadata and cover


def _metadata(doc: pymupdf.Document, pages: list[_Page], body: float, fallback: str) -> Metadata:
    info = doc.metadata or {}

    def field_(key: str) -> str | None:
        value = " ".join(str(info.get(key) or "").split())
        return value or None

    title = field_("title")
    if title and _JUNK_TITLE.fullmatch(title):
        title = None
    title = title or _first_page_title(pages, body) or fallback
    author = field_("author")
    authors: tuple[str, ...] = ()
    if author:
        authors = tuple(a for a in (p.strip() for p in re.split(r";|&| and ", author)) if a)
    return Metadata(
        title=title,
        authors=authors,
        language=_language(doc),
        description=field_("subject"),
    )


def _first_page_title(pages: list[_Page], body: float) -> str | None:
    """The largest text on the first page, if it is clearly larger than the body text."""
    if not pages:
        return None
    blocks = [b for b in pages[0].blocks if b.chars <= 300 and b.size >= body * _HEADING_RATIO]
    blocks = [b for b in blocks if not is_matter_title(b.text)]
    if not blocks:
        return None
    largest = max(b.size for b in blocks)
    parts = [b.text for b in blocks if b.size == largest]
    title = " ".join(parts)[:_HEADING_MAX_CHARS].strip()
    return title if any(ch.isalpha() for ch in title) else None


def _language(doc: pymupdf.Document) -> str | None:
    try:
        kind, value = doc.xref_get_key(doc.pdf_catalog(), "Lang")
    except _MUPDF_ERRORS:
        return None
    if kind != "string":
        return None
    value = value.strip()
    return value if _LANGUAGE.fullmatch(value) else None


def _cover(doc: pymupdf.Document, name: str) -> Cover | None:
    try:
        page = doc[0]
        rect = page.rect
        if rect.height < 1 or rect.width < 1:
            return None
        zoom = min(COVER_HEIGHT / rect.height, 2 * COVER_HEIGHT / rect.width)
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False, colorspace=pymupdf.csRGB)
        return Cover(data=pix.tobytes("jpeg", jpg_quality=85), mime="image/jpeg")
    except _MUPDF_ERRORS as exc:
        log.warning("%s: could not render the first page as a cover (%s)", name, describe(exc))
        return None


# ------------------------------------------------------------------ putting it together


def _count_letters(page: _Page, enough: int) -> int:
    """Letters and digits on the page, counted up to ``enough``."""
    count = 0
    for block in page.blocks:
        for row in block.rows:
            count += sum(ch.isalnum() for ch in row.text)
            if count >= enough:
                return count
    return count


def _read(doc: pymupdf.Document, path: Path, *, toc_depth: int | None, skip_matter: bool, part_chars: int) -> Book:
    name = path.name
    pages: list[_Page] = []
    heights: dict[int, float] = {}
    unmapped = visible = 0
    for pno in range(doc.page_count):
        page = doc[pno]
        heights[pno] = page.rect.height
        content, bad, seen = _page_content(page, pno)
        content.letters = _count_letters(content, _MIN_PAGE_CHARS)
        if content.letters < _MIN_PAGE_CHARS and page.get_images(full=False):
            content.letters = -1  # an image and (almost) no text: a scanned page
        pages.append(content)
        unmapped += bad
        visible += seen

    if visible and unmapped > _MAX_UNMAPPED_SHARE * visible:
        raise BookError(
            f"{name} has no usable text layer (its fonts do not say which letters they draw); OCR is not supported"
        )
    scanned = sum(1 for p in pages if p.letters < 0)
    with_text = sum(1 for p in pages if p.letters >= _MIN_PAGE_CHARS)
    if with_text == 0 or scanned >= _SCANNED_SHARE * len(pages):
        if scanned:
            raise BookError(f"{name} has no text layer (scanned PDF); OCR is not supported")
        raise BookError(f"{name} has no readable text")

    body = _weighted_mode((r.size, len(r.text)) for p in pages for b in p.blocks for r in b.rows)
    _strip_furniture(pages, body)
    for page in pages:
        for block in page.blocks:
            text = block.text
            size = block.size
            block.heading = (
                size >= body * _HEADING_RATIO
                and (size >= body * _PLAIN_HEADING_RATIO or sum(r.bold for r in block.rows) * 2 > len(block.rows))
                and len(block.rows) <= _HEADING_MAX_ROWS
                and len(text) <= _HEADING_MAX_CHARS
                and sum(ch.isalnum() for ch in text) >= 2
            )
            if len(block.rows) == 1 and len(text) == 1 and text.isalpha() and size >= 1.5 * body:
                block.rows[0].glue = True  # a drop cap: the first letter of the next paragraph
        _reading_order(page)
    _mark_paragraphs([b for p in pages for b in p.blocks])

    metadata = _metadata(doc, pages, body, fallback=path.stem)
    reader = _Reader(pages, metadata.title, skip_matter=skip_matter)

    chapters: list[Chapter] = []
    toc = _outline(doc)
    if toc:
        chapters = reader.outline_chapters(toc, toc_depth, heights)
    if not chapters:
        chapters = reader.heading_chapters()
    if not chapters:
        chapters = reader.part_chapters(part_chars)
    if not chapters:
        raise BookError(f"{name} has no readable text")
    return Book(metadata=metadata, chapters=tuple(chapters), cover=_cover(doc, name))
