"""Which entries of a table of contents are chapters: shared by the EPUB and PDF readers.

A TOC's top level is not always the chapter level: a novel may sit under one
"Part One" entry, or a collection under the book's own title. Both readers start
from the top and open up entries that hold too much of the book.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, TypeVar

#: An entry holding at least this share of the text is opened into its children.
DOMINANT_SHARE = 0.3
#: Rounds of opening: enough for any sane nesting, a bound for hostile ones.
MAX_EXPANSIONS = 8


class Entry(Protocol):
    @property
    def skip(self) -> bool: ...  # front or back matter: never a chapter, never counted

    @property
    def children(self) -> Sequence["Entry"]: ...


E = TypeVar("E", bound=Entry)


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
