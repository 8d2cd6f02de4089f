"""voxd.ingest.outline: which TOC entries become chapters, on plain entries over a line of text."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxd.ingest.outline import MAX_EXPANSIONS, chapter_entries


@dataclass(eq=False)
class Node:
    title: str
    pos: int  # where its text starts, in characters
    children: list[Node] = field(default_factory=list)
    skip: bool = False


def spans_over(length: int):
    """Each selected entry runs from its start to the next selected entry's start."""

    def spans(selected: list[Node]) -> list[tuple[Node, int, int]]:
        nodes = sorted(selected, key=lambda n: n.pos)
        ends = [n.pos for n in nodes[1:]] + [length]
        return list(zip(nodes, [n.pos for n in nodes], ends))

    return spans


def chars(start: int, end: int) -> int:
    return end - start


def titles(selected: list[Node]) -> list[str]:
    return [n.title for n in sorted(selected, key=lambda n: n.pos)]


def test_a_part_holding_the_novel_gives_way_to_its_chapters() -> None:
    chapters = [Node(f"Chapter {i}", 1000 + i * 10_000) for i in range(1, 9)]
    toc = [Node("Title page", 0, skip=True), Node("Part One", 1000, chapters), Node("Afterword", 90_000)]
    selected = chapter_entries(toc, spans_over(92_000), chars)
    assert "Chapter 1" in titles(selected) and "Chapter 8" in titles(selected)
    assert titles(selected)[-1] == "Afterword"


def test_balanced_top_level_is_kept() -> None:
    toc = [Node(f"Chapter {i}", i * 1000, [Node(f"Section {i}.1", i * 1000 + 500)]) for i in range(5)]
    assert chapter_entries(toc, spans_over(5000), chars) == toc


def test_an_entry_over_max_chars_is_opened_even_when_not_dominant() -> None:
    big = Node("Big", 0, [Node("Big.1", 100), Node("Big.2", 5000)])
    toc = [big] + [Node(f"Other {i}", 10_000 + i * 10_000) for i in range(10)]
    assert "Big.2" not in titles(chapter_entries(toc, spans_over(110_000), chars))
    assert "Big.2" in titles(chapter_entries(toc, spans_over(110_000), chars, max_chars=9000))


def test_skipped_children_do_not_open_an_entry() -> None:
    toc = [Node("Whole book", 0, [Node("Notes", 90, skip=True)]), Node("Colophon", 100, skip=True)]
    assert chapter_entries(toc, spans_over(110), chars) == toc


def test_hostile_nesting_is_opened_a_bounded_number_of_times() -> None:
    root = Node("Level 0", 0)
    node = root
    for depth in range(1, 50):  # each level holds all of the text
        child = Node(f"Level {depth}", depth)
        node.children.append(child)
        node = child
    selected = chapter_entries([root], spans_over(1000), chars)
    assert len(selected) == MAX_EXPANSIONS + 1
