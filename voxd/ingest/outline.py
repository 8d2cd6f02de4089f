"""Which entries of a table of contents are chapters: shared by the EPUB and PDF readers.

A TOC's top level is not always the chapter level: a novel may sit under one
"Part One" entry, or a collection under the book's own title. Both readers start
from the top and open up entries that hold too much of the book.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

#: An entry holding at least this share of the text is opened into its children.
DOMINANT_SHARE = 0.3
#: Rounds of opening: enough for any sane nesting, a bound for hostile ones.
MAX_EXPANSIONS = 8


class Entry(Protocol):
    @property
    def skip(self) -> bool: ...  # front or back matter: never a chapter, never counted

    @property
    def children(self) -> Sequence[Entry]: ...


E = TypeVar("E", bound=Entry)


class Placed(Protocol):
    """An entry placed in the book's stream of text (paragraphs or rows)."""

    depth: int  # 1 for the top level
    pos: int | None  # where its text starts in the stream; None when it points nowhere
    skip: bool

    @property
    def children(self) -> Sequence[Placed]: ...


P = TypeVar("P", bound=Placed)


def chapter_entries(
    toc: Sequence[E],
    spans: Callable[[list[E]], list[tuple[E, int, int]]],
    chars: Callable[[int, int], int],
    *,
    max_chars: int | None = None,
) -> list[E]:
    """Chapter-sized entries: the top level, with any entry that holds a dominant share
    of the text (or more than ``max_chars``) opened into its children, until none is left.

    ``spans(entries)`` gives each entry with the start and end of its text, in book
    order; ``chars(start, end)`` the characters in between.
    """
    selected = list(toc)
    opened: set[int] = set()
    for _ in range(MAX_EXPANSIONS):
        entries = [(n, s, e) for n, s, e in spans(selected) if not n.skip]
        total = sum(chars(s, e) for _, s, e in entries)
        if total == 0:
            break
        dominant = [
            n
            for n, s, e in entries
            if id(n) not in opened
            and any(not c.skip for c in n.children)
            and (chars(s, e) >= DOMINANT_SHARE * total or (max_chars is not None and chars(s, e) > max_chars))
        ]
        if not dominant:
            break
        for node in dominant:
            opened.add(id(node))
            selected.extend(node.children)  # type: ignore[arg-type]
    return selected


def walk(entries: Sequence[P]) -> Iterator[P]:
    """Every entry, parents before children in book order, without recursion
    (outlines can be nested thousands deep)."""
    stack = list(reversed(entries))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))  # type: ignore[arg-type]


def settle(entry: Placed, *, matter: bool) -> None:
    """Finish an entry once its children are placed: with no target of its own it starts
    where its first child does; if it is front or back ``matter`` it is skipped, unless
    one of its children is kept."""
    if entry.pos is None:
        entry.pos = next((c.pos for c in entry.children if c.pos is not None), None)
    entry.skip = matter and all(c.skip for c in entry.children)


def entry_spans(selected: Sequence[P], end: int) -> list[tuple[P, int, int]]:
    """The selected TOC nodes in reading order, each with its [start, end) range: a
    node runs until the next selected node starts (the last one until ``end``), so
    unselected children stay inside."""
    nodes = sorted((n for n in selected if n.pos is not None), key=lambda n: n.pos or 0)  # stable
    out = []
    for i, node in enumerate(nodes):
        start = node.pos or 0
        stop = nodes[i + 1].pos if i + 1 < len(nodes) else end
        out.append((node, start, max(start, stop or 0)))
    return out


def chapter_spans(
    toc: Sequence[P],
    toc_depth: int | None,
    end: int,
    chars: Callable[[int, int], int],
    *,
    max_chars: int | None = None,
) -> list[tuple[P, int, int]]:
    """The chapters' entries with their ranges (:func:`entry_spans`): every entry down to
    ``toc_depth`` when it is given, else those :func:`chapter_entries` picks."""

    def spans(selected: list[P]) -> list[tuple[P, int, int]]:
        return entry_spans(selected, end)

    if toc_depth is None:
        selected = chapter_entries(toc, spans, chars, max_chars=max_chars)
    else:
        selected = [n for n in walk(toc) if n.depth <= toc_depth]
    return spans(selected)
