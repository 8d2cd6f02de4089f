"""The PDF's outline (its bookmarks), as a tree of entries with their targets on the page.

Outlines come from strangers too: they are walked without recursion and cut off after
a bound, however deep or long they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypeGuard

import pymupdf

from voxd.ingest.pdf.model import visible_text

_MAX_OUTLINE_ENTRIES = 20_000


@dataclass(eq=False)
class Node:
    title: str
    page: int  # 0-based; -1 when the entry points nowhere in this file
    x: float
    y: float
    depth: int
    children: list[Node] = field(default_factory=list)
    pos: int | None = None  # index of its first row in the stream
    skip: bool = False


def read_outline(doc: pymupdf.Document) -> list[Node]:
    """The outline as a tree, each entry with its target page and point (top-left origin).

    Walks the same tree as ``doc.get_toc()``, without recursion, and asks MuPDF to
    resolve every target: ``get_toc(simple=False)`` gives named destinations in PDF
    coordinates (origin bottom-left) and direct ones with origin top-left.
    """
    item = doc.outline
    roots: list[Node] = []
    stack: list[tuple[pymupdf.Outline | None, int, list[Node]]] = [(item, 1, roots)]
    count = 0
    while stack:
        item, depth, siblings = stack.pop()
        chain = []
        while _live(item) and count < _MAX_OUTLINE_ENTRIES:
            count += 1
            title = " ".join(visible_text(item.title or "").split())
            page, x, y = -1, math.nan, math.nan
            if not item.is_external and item.uri:
                page, x, y = doc.resolve_link(item.uri)
            node = Node(title=title, page=page, x=float(x), y=float(y), depth=depth)
            siblings.append(node)
            if item.down is not None:
                chain.append((item.down, depth + 1, node.children))
            item = item.next
        stack.extend(reversed(chain))
    return roots


def _live(item: pymupdf.Outline | None) -> TypeGuard[pymupdf.Outline]:
    """An outline item that points to an entry (PyMuPDF ends chains with an empty one)."""
    return item is not None and bool(getattr(getattr(item, "this", None), "m_internal", None))
