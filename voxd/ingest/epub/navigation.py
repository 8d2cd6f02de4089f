"""The table of contents (NCX or EPUB 3 nav, as ebooklib gives it) and the landmarks
and guide that name a book's cover, contents and other matter.

TOC hrefs are written loosely: relative to the NCX file or to the OPF, percent-encoded,
or naming a file by its base name only. They are resolved here, once, to spine documents.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from ebooklib import epub as ebl

from voxd.ingest.epub.package import Package
from voxd.ingest.epub.safexml import local, parse_document
from voxd.ingest.epub.text import clean, epub_types


@dataclass(eq=False)
class Node:
    title: str
    href: str | None  # raw, as ebooklib gives it
    children: list[Node] = field(default_factory=list)
    path: str | None = None  # the spine document, relative to the OPF dir
    frag: str | None = None
    pos: int | None = None  # index of its first paragraph in the book's stream
    skip: bool = False
    depth: int = 1


def ncx_dirs(ebook: ebl.EpubBook) -> list[str]:
    """Where the NCX files are: NCX hrefs are relative to the NCX file; ebooklib leaves them as they are."""
    return [
        posixpath.dirname(it.file_name)
        for it in ebook.get_items()
        if (getattr(it, "media_type", "") or "") == "application/x-dtbncx+xml"
    ]


def toc_nodes(ebook: ebl.EpubBook) -> list[Node]:
    def convert(items: Iterable[object], depth: int) -> list[Node]:
        nodes: list[Node] = []
        for it in items:
            if isinstance(it, tuple) and len(it) == 2:
                head, kids = it
                node = Node(clean(getattr(head, "title", "") or ""), getattr(head, "href", None) or None)
                node.depth = depth
                node.children = convert(kids if isinstance(kids, list) else [kids], depth + 1)
                nodes.append(node)
            elif isinstance(it, list):
                nodes.extend(convert(it, depth))
            elif isinstance(it, (ebl.Link, ebl.Section)):
                node = Node(clean(it.title or ""), getattr(it, "href", None) or None)
                node.depth = depth
                nodes.append(node)
        return nodes

    toc = ebook.toc or []
    # ebooklib returns a bare Link (with no href) for an empty NCX navMap
    return convert(toc if isinstance(toc, list) else [toc], 1)


def resolve(href: str | None, docs: set[str], relative_to: list[str]) -> tuple[str, str | None] | None:
    if not href or "://" in href or href.startswith("mailto:"):
        return None
    path, _, frag = href.partition("#")
    path = unquote(path)
    if not path:
        return None
    candidates = [posixpath.normpath(path)]
    candidates += [posixpath.normpath(posixpath.join(d, path)) for d in relative_to]
    for cand in candidates:
        if cand in docs:
            return cand, unquote(frag) or None
    base = posixpath.basename(path)
    matches = [d for d in docs if posixpath.basename(d) == base]
    if len(matches) == 1:
        return matches[0], unquote(frag) or None
    return None


def landmark_types(ebook: ebl.EpubBook, package: Package) -> dict[str, set[str]]:
    """What the landmarks (EPUB 3) and the guide (EPUB 2) say their targets are:
    href (with its #fragment if any) -> types."""
    found: dict[str, set[str]] = defaultdict(set)
    for key, kinds in package.guide_types().items():
        found[key] |= kinds
    for item in ebook.get_items():
        if not isinstance(item, ebl.EpubNav):
            continue
        content = item.content if isinstance(item.content, bytes) else str(item.content or "").encode()
        root, _ = parse_document(content)
        if root is None:
            continue
        nav_dir = posixpath.dirname(item.file_name)
        for nav in root.iter():
            if local(nav.tag) != "nav" or "landmarks" not in epub_types(nav):
                continue
            for a in nav.iter():
                if local(a.tag) == "a" and a.get("href"):
                    path, _, frag = a.get("href", "").partition("#")
                    if not path:
                        continue
                    key = posixpath.normpath(posixpath.join(nav_dir, unquote(path)))
                    found[key + ("#" + unquote(frag) if frag else "")] |= set(epub_types(a))
    return found
