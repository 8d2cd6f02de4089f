"""A page's text as MuPDF gives it, turned into blocks of printed rows.

MuPDF's lines are pieces of text: a printed line may be several of them, and one of
its blocks may hold a heading and the text below it.
"""

from __future__ import annotations

import re

import pymupdf

from voxd.ingest.pdf.model import Block, Page, Row, join, visible_text, weighted_mode

# Ligatures are expanded ("ﬁ" -> "fi"); text outside the media box is dropped.
_TEXT_FLAGS = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP
_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)


def _span_bold(span: dict) -> bool:
    return bool(span.get("flags", 0) & pymupdf.TEXT_FONT_BOLD) or bool(_BOLD_FONT.search(span.get("font", "")))


def page_content(page: pymupdf.Page, pno: int) -> tuple[Page, int, int]:
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
            size = weighted_mode(weights)
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
    blocks: list[Block] = []
    for lines in raw:
        kept = lines if turned else [ln for ln in lines if ln[4]]
        blocks.extend(_split_by_size(pno, _rows(pno, kept, group=not turned)))
    return Page(blocks, turned=turned), unmapped, visible


def _rows(pno: int, lines: list, *, group: bool = True) -> list[Row]:
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
    for members in groups:
        pieces = sorted(members, key=lambda ln: ln[0][0])
        text = ""
        for ln in pieces:
            text = join(text, " ".join(ln[1].split()))
        text = visible_text(text).strip()
        if not text:
            continue
        weights = [(ln[2], len(ln[1].strip())) for ln in pieces]
        bold = sum(len(ln[1].strip()) for ln in pieces if ln[3]) * 2 > sum(w for _, w in weights)
        rows.append(
            Row(
                page=pno,
                x0=min(ln[0][0] for ln in pieces),
                y0=min(ln[0][1] for ln in pieces),
                x1=max(ln[0][2] for ln in pieces),
                y1=max(ln[0][3] for ln in pieces),
                text=text,
                size=weighted_mode(weights),
                bold=bold,
            )
        )
    return rows


def _split_by_size(pno: int, rows: list[Row]) -> list[Block]:
    """One block per run of rows in the same font size (a heading glued to its text)."""
    blocks: list[Block] = []
    current: list[Row] = []
    for row in rows:
        if current and abs(row.size - current[-1].size) > 0.15 * max(row.size, current[-1].size):
            blocks.append(Block(pno, current))
            current = []
        current.append(row)
    if current:
        blocks.append(Block(pno, current))
    return blocks
