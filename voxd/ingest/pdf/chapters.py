"""Where chapters start in the stream of rows.

The outline is the book's own word on it; without one, headings found by font size;
without those, parts of about the same length, so that a long text is never one chapter.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

from voxd.book import Chapter
from voxd.ingest.common import norm
from voxd.ingest.matter import is_matter_title, text_kind
from voxd.ingest.outline import chapter_spans, settle, walk
from voxd.ingest.pdf.bookmarks import Node
from voxd.ingest.pdf.layout import HEADING_MAX_CHARS, HEADING_MAX_ROWS
from voxd.ingest.pdf.model import Block, Page, Row, join_rows, split_paragraphs, tier

# Automatic outline level (voxd.ingest.outline): an entry holding more than this
# (about two hours of speech) is opened into its children too.
_MAX_CHAPTER_CHARS = 100_000
# Heading level: a piece holding this share of the text is split at the next smaller
# heading size, if the pieces stay at least _MIN_AVERAGE_CHARS long on average.
_HEADING_DOMINANT_SHARE = 0.4
_MIN_AVERAGE_CHARS = 1500

_LABEL = re.compile(
    r"(?:(?:chapter|part|section|book|appendix|kapitel|chapitre|capitulo|capítulo)\s+)?"
    r"(?:\d+(?:\.\d+)*|[ivxlcdm]+|[a-z])\.?\s+",
    re.IGNORECASE,
)


def _drop_title_rows(title: str, rows: list[Row]) -> list[Row]:
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


def _first_of_crowds(toc: list[Node]) -> None:
    """Entries of one level that point at one place (forty sections all sent to the top of
    page 3) start one chapter, named by the first of them: the others, if they hold no
    entries of their own, are left unplaced. (Otherwise the last would take the text, each
    earlier one an empty span.)"""
    for siblings in (toc, *(node.children for node in walk(toc))):
        first: Node | None = None
        for node in siblings:
            if first is not None and node.pos == first.pos and node.page == first.page and not node.children:
                node.pos = None
            else:
                first = node


class Stream:
    """Chapters from the stream of rows: by outline, by headings or in parts."""

    def __init__(self, pages: list[Page], title: str, *, skip_matter: bool) -> None:
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
        """The rows as a chapter; None when nothing is left to read, or (when matter is
        skipped) when they read like an index, a contents page or an imprint."""
        rows = _drop_title_rows(title, self.rows[start:end])
        if self.skip_matter and text_kind([r.text for r in rows]):
            return None
        paragraphs = split_paragraphs(rows)
        return Chapter(title=title, paragraphs=tuple(paragraphs)) if paragraphs else None

    def leading(self, end: int) -> list[Chapter]:
        """What comes before the first chapter: kept, unless it is a contents page."""
        rows = self.rows[:end]
        if not rows:
            return []
        if self.skip_matter and is_matter_title(rows[0].text):
            return []
        first = next((i for i, r in enumerate(rows) if r.heading), None)
        title = ""
        if first is not None:  # its first heading, if any, names it
            last = first
            while last + 1 < len(rows) and last - first < HEADING_MAX_ROWS - 1 and rows[last + 1].heading:
                last += 1
            title = join_rows(rows[first : last + 1])
        chapter = self.chapter(title or self.title, 0, end)
        return [chapter] if chapter else []

    # -- outline

    def locate(self, node: Node, page_height: dict[int, float]) -> int | None:
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

    def outline_chapters(self, toc: list[Node], toc_depth: int | None, heights: dict[int, float]) -> list[Chapter]:
        # Children before parents (no recursion: outlines can be nested thousands deep).
        for node in reversed(list(walk(toc))):
            node.pos = self.locate(node, heights)
            # An entry with no target starts where its first child does.
            settle(node, matter=self.skip_matter and is_matter_title(node.title))
        _first_of_crowds(toc)
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
        tiers = sorted({tier(b.size) for b in candidates}, reverse=True)
        levels = [[b for b in candidates if tier(b.size) >= t] for t in tiers]
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
                starts[-1] = (f"{title}: {block.text}"[:HEADING_MAX_CHARS], begin, after)
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

    def _pieces(self, breaks: list[Block]) -> list[int]:
        bounds = sorted(self.block_start[id(b)] for b in breaks)
        edges = [0, *bounds, len(self.rows)]
        return [self.chars(a, b) for a, b in zip(edges, edges[1:]) if b > a]

    def _dominated(self, breaks: list[Block]) -> bool:
        pieces = self._pieces(breaks)
        total = sum(pieces) or 1
        return max(pieces, default=0) >= _HEADING_DOMINANT_SHARE * total

    def _worth_splitting(self, finer: list[Block], coarser: list[Block]) -> bool:
        pieces = self._pieces(finer)
        return len(finer) > len(coarser) and sum(pieces) / max(len(pieces), 1) >= _MIN_AVERAGE_CHARS

    # -- fixed-size parts

    def part_chapters(self, part_chars: int) -> list[Chapter]:
        paragraphs = split_paragraphs(self.rows)
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
