"""read_epub: an EPUB from its zip to a Book, chapter by chapter in reading order."""

from __future__ import annotations

import logging
import posixpath
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path

from ebooklib import epub as ebl
from lxml import etree

from voxd.book import SECTION_BREAK, Book, Chapter
from voxd.errors import BookError, VoxdError
from voxd.ingest.alttext import alttexts, repeated_alttexts
from voxd.ingest.common import check_toc_depth, describe, norm
from voxd.ingest.epub.metadata import read_cover, read_metadata
from voxd.ingest.epub.navigation import Node, landmark_types, ncx_dirs, resolve, toc_nodes
from voxd.ingest.epub.package import ZIP_ERRORS, Package, check_encryption
from voxd.ingest.epub.safexml import parse_document
from voxd.ingest.epub.text import MATTER_TYPES, Block, Doc, Extractor, code_mention, context_types, formula_word
from voxd.ingest.matter import NAVIGATION, is_matter_title, text_kind
from voxd.ingest.outline import chapter_spans, settle, walk
from voxd.ingest.safezip import check_zip
from voxd.narration.lexicon import MAX_LEXICON_BYTES, parse_pls, warn_left_out

log = logging.getLogger(__name__)

__all__ = ["read_epub"]

#: A section of at least this many paragraphs, this share of them links into the book (or
#: the book's own heading labels, at most _LABEL_CHARS long), and little other text, is navigation.
_LINK_LIST_MIN = 3
_LINK_LIST_SHARE = 0.7
_LINK_LIST_PROSE = 300  # characters of other text such a section may have (an introduction)
_LABEL_CHARS = 120
_DOC_TYPES = frozenset({"application/xhtml+xml", "text/html", "application/html"})


def read_epub(
    path: Path, *, toc_depth: int | None = None, skip_front_back_matter: bool = True, figure_mention: bool = False,
    code_listings: str = "mention",
) -> Book:
    """Read the EPUB at ``path`` into a :class:`Book` whose chapters are ready to speak.

    ``toc_depth``: which level of a nested table of contents makes the chapters (1 is
    the top level); ``None`` picks the level that gives chapter-sized pieces.
    ``skip_front_back_matter``: leave out cover, title page, copyright, contents,
    dedication, index, colophon and the like.
    ``figure_mention``: say the short word ("formula") where a formula's alt text is a
    placeholder that was left out (:mod:`voxd.ingest.alttext`); an EPUB's images are never read.
    ``code_listings``: a listing of code or markup (a ``<pre>``, a paragraph of nothing but
    code) is said as "A code example." in the book's language ("mention"), left out
    ("skip") or read line by line ("read"); inline code in a sentence is always read.

    Raises :class:`BookError` when the file is not a readable, DRM-free EPUB with text.
    """
    path = Path(path)
    check_toc_depth(toc_depth)
    name = path.name
    check_zip(path)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ebook = ebl.read_epub(str(path), options={"ignore_ncx": False})
    except VoxdError:
        raise
    except Exception as exc:  # noqa: BLE001 - ebooklib raises whatever its parsers raise
        detail = describe(exc)
        if isinstance(exc, (TypeError, AttributeError, IndexError)):  # ebooklib tripped on a missing part
            detail = f"its package or navigation document is malformed: {detail}"
        raise BookError(f"{name}: not a readable EPUB ({detail})") from None

    try:
        with zipfile.ZipFile(path) as zf:
            check_encryption(zf, name)
            package = Package.load(zf, name)
            metadata = read_metadata(package, fallback_title=path.stem)
            cover = read_cover(package, zf)
    except VoxdError:
        raise
    except (KeyError, etree.LxmlError, *ZIP_ERRORS) as exc:
        raise BookError(f"{name}: not a readable EPUB ({describe(exc)})") from None

    reader = _Reader(name, ebook, package, skip_matter=skip_front_back_matter, language=metadata.language,
                     figure_mention=figure_mention, code_listings=code_listings)
    chapters = reader.chapters(toc_depth)
    if not chapters:
        raise BookError(f"{name}: has no readable text")
    return Book(metadata=metadata, chapters=tuple(chapters), cover=cover, lexicon=_lexicon(path, package),
                skipped=tuple(reader.skipped))


def _lexicon(path: Path, package: Package) -> tuple[tuple[str, str], ...]:
    """The ``<alias>`` entries of the book's PLS pronunciation lexicons. A content document
    links them with ``<link rel="pronunciation">``, and every such file is a manifest item
    (a core media type), so the manifest lists them all. A broken one is left out, with a
    warning: it is the publisher's mistake, and the book reads well enough without it."""
    pairs: list[tuple[str, str]] = []
    hrefs = [
        item["href"]
        for item in package.manifest.values()
        if item["media-type"] == "application/pls+xml" or item["href"].lower().endswith(".pls")
    ]
    if not hrefs:
        return ()
    with zipfile.ZipFile(path) as zf:
        for href in hrefs:
            where = package.zip_path(href)
            try:
                info = zf.getinfo(where)
                if info.file_size > MAX_LEXICON_BYTES:
                    raise ValueError(f"larger than {MAX_LEXICON_BYTES // 2**20} MiB")
                found, phonemes, problems = parse_pls(zf.read(info))
            except (KeyError, ValueError, *ZIP_ERRORS) as exc:
                log.warning("%s: left out the pronunciation lexicon %s: %s", path.name, href, describe(exc))
                continue
            warn_left_out(f"{path.name}: {href}", problems)
            if phonemes:
                log.info("%s: %s: %d entries give only phonemes, which are not used", path.name, href, phonemes)
            pairs.extend(found)
    return tuple(pairs)


def _content(item: ebl.EpubItem) -> bytes:
    content = item.content
    return (content.encode("utf-8") if isinstance(content, str) else content) or b""


class _Reader:
    def __init__(
        self, name: str, ebook: ebl.EpubBook, package: Package, *, skip_matter: bool, language: str | None = None,
        figure_mention: bool = False, code_listings: str = "mention",
    ) -> None:
        self.name = name
        self.code_listings = code_listings
        self.skipped: list[tuple[str, str]] = []  # sections left out for their text, and why
        self._labels: set[str] | None = None  # the book's headings, as norm() has them
        self.code_said = code_mention(language)
        self.figure_mention = figure_mention
        self.repeated: frozenset[str] = frozenset()
        self.formula = formula_word(language)
        self.ebook = ebook
        self.package = package
        self.skip_matter = skip_matter
        self.docs: list[Doc] = []
        self.blocks: list[Block] = []
        self._sizes: list[int] = [0]  # prefix sums of paragraph lengths
        self._ncx_dirs = ncx_dirs(ebook)

    # -- the stream of paragraphs

    def _spine_items(self) -> list[tuple[ebl.EpubItem, bool]]:
        items = []
        seen = set()
        for entry in self.ebook.spine:
            idref, linear = (entry if isinstance(entry, tuple) else (entry, "yes"))[:2]
            item = self.ebook.get_item_with_id(idref)
            if item is None or id(item) in seen:
                continue
            media = (getattr(item, "media_type", "") or "").lower()
            if not isinstance(item, ebl.EpubHtml) and media not in _DOC_TYPES:
                continue
            seen.add(id(item))
            items.append((item, str(linear).lower() != "no"))
        return items

    def _build_stream(self, targets: dict[str, set[str]]) -> None:
        self.repeated = repeated_alttexts(alttexts(_content(item) for item, _ in self._spine_items()))
        for item, linear in self._spine_items():
            href = posixpath.normpath(item.file_name)
            if not linear and href not in targets:
                continue  # out-of-flow (pop-up notes and the like) unless the TOC points there
            doc = self._read_doc(href, _content(item), targets.get(href, set()))
            doc.offset = len(self.blocks)
            self.docs.append(doc)
            self.blocks.extend(doc.blocks)
        for block in self.blocks:
            self._sizes.append(self._sizes[-1] + len(block.text))

    def _read_doc(self, href: str, data: bytes, targets: set[str]) -> Doc:
        root, lenient = parse_document(data)
        ex = Extractor(targets, skip_matter=self.skip_matter, lenient=lenient, formula=self.formula,
                       figure_mention=self.figure_mention, repeated=self.repeated, code=self.code_listings,
                       code_said=self.code_said)
        start_types: frozenset[str] = frozenset()
        if root is not None:
            ex.run(root)
            start_types = context_types(Extractor.body(root))
        else:
            log.warning("%s: could not parse %s; skipping it", self.name, href)
        return Doc(href, ex.blocks, ex.anchors, ex.anchor_types, start_types, ex.first_heading)

    def _chars(self, start: int, end: int) -> int:
        return self._sizes[end] - self._sizes[start]

    # -- choosing chapters

    def chapters(self, toc_depth: int | None) -> list[Chapter]:
        doc_hrefs = {posixpath.normpath(it.file_name) for it, _ in self._spine_items()}
        toc = toc_nodes(self.ebook)
        targets: dict[str, set[str]] = defaultdict(set)
        for node in walk(toc):
            resolved = resolve(node.href, doc_hrefs, self._ncx_dirs)
            if resolved:
                node.path, node.frag = resolved
                if node.frag:
                    targets[node.path].add(node.frag)
                else:
                    targets.setdefault(node.path, set())
        self._build_stream(targets)

        chapters: list[Chapter] = []
        if any(node.path for node in walk(toc)):
            self._place(toc)
            chapters = self._toc_chapters(toc, toc_depth)
        if not chapters:
            chapters = self._spine_chapters()
        return chapters

    def _place(self, toc: list[Node]) -> None:
        by_href = {doc.href: doc for doc in self.docs}
        landmarks = landmark_types(self.ebook, self.package)

        def place(node: Node) -> None:
            doc = by_href.get(node.path or "")
            types: frozenset[str] = frozenset()
            if doc is not None:
                if node.frag and node.frag in doc.anchors:
                    node.pos = doc.offset + doc.anchors[node.frag]
                    types = doc.anchor_types[node.frag]
                else:
                    if node.frag:
                        log.info(
                            "%s: TOC target %s#%s not found; using the file's start", self.name, doc.href, node.frag
                        )
                    node.pos = doc.offset
                    types = doc.start_types
                key = doc.href + ("#" + node.frag if node.frag else "")
                types = types | landmarks.get(key, set())
            for child in node.children:
                place(child)
            # A heading with no link starts where its first child does. A skipped entry that
            # holds content (a half-title page heading the whole novel) stays: only its own
            # pages are left out, by the extractor.
            settle(node, matter=self.skip_matter and (bool(types & MATTER_TYPES) or is_matter_title(node.title)))

        for node in toc:
            place(node)

    def _toc_chapters(self, toc: list[Node], toc_depth: int | None) -> list[Chapter]:
        chapters: list[Chapter] = []
        for node, start, end in chapter_spans(toc, toc_depth, len(self.blocks), self._chars):
            if node.skip or start >= end:
                continue
            blocks = self.blocks[start:end]
            title = node.title or next((b.text for b in blocks if b.heading), "") or f"Chapter {len(chapters) + 1}"
            paragraphs = _drop_title_headings(title, blocks)
            if paragraphs and not self._matter_text(title, paragraphs, blocks):
                chapters.append(Chapter(title=title, paragraphs=tuple(paragraphs)))
        return chapters

    def _matter_text(self, title: str, paragraphs: list[str], blocks: list[Block]) -> bool:
        """A chapter whose text is an index, a contents page, an imprint or a list of links into
        the book, whatever its title says."""
        if not self.skip_matter:
            return False
        kind = text_kind(paragraphs) or (NAVIGATION if self._link_list(blocks) else None)
        if kind:
            log.info("%s: leaving out %r: it reads like front or back matter (%s)", self.name, title, kind)
            self.skipped.append((title, kind))
        return kind is not None

    def _link_list(self, blocks: list[Block]) -> bool:
        """Whether a section is a navigation list like a table of contents ("Theorems",
        "Notation"): most of its paragraphs are links to other places in the book, or the
        same short labels as the book's headings."""
        if self._labels is None:
            self._labels = {norm(b.text) for b in self.blocks if b.heading and len(b.text) <= _LABEL_CHARS}
        body = [b for b in blocks if not b.heading and b.text != SECTION_BREAK]
        if len(body) < _LINK_LIST_MIN:
            return False
        labels = self._labels
        prose = [b for b in body
                 if b.inner_links < 0.5 and not (len(b.text) <= _LABEL_CHARS and norm(b.text) in labels)]
        if len(prose) > len(body) * (1 - _LINK_LIST_SHARE):
            return False
        # A chapter that opens with its own list of sections still has its text: it is read.
        chars = sum(len(b.text) for b in body)
        return sum(len(b.text) for b in prose) <= max(_LINK_LIST_PROSE, chars * 0.2)

    def _spine_chapters(self) -> list[Chapter]:
        landmarks = landmark_types(self.ebook, self.package) if self.skip_matter else {}
        chapters: list[Chapter] = []
        for doc in self.docs:
            if not doc.blocks:
                continue
            title = doc.first_heading or f"Chapter {len(chapters) + 1}"
            if self.skip_matter and (
                doc.start_types & MATTER_TYPES
                or landmarks.get(doc.href, set()) & MATTER_TYPES
                or (doc.first_heading and is_matter_title(doc.first_heading))
            ):
                continue
            paragraphs = _drop_title_headings(title, doc.blocks)
            if paragraphs and not self._matter_text(title, paragraphs, doc.blocks):
                chapters.append(Chapter(title=title, paragraphs=tuple(paragraphs)))
        return chapters


def _trim_breaks(paragraphs: list[str]) -> list[str]:
    """A section break only stands between paragraphs, never at a chapter's edge."""
    start, end = 0, len(paragraphs)
    while start < end and paragraphs[start] == SECTION_BREAK:
        start += 1
    while end > start and paragraphs[end - 1] == SECTION_BREAK:
        end -= 1
    return paragraphs[start:end]


def _drop_title_headings(title: str, blocks: list[Block]) -> list[str]:
    """The title is spoken separately: drop leading headings that only repeat it
    (``I`` and ``A Letter with a Postscript`` under the title ``I: A Letter with a Postscript``)."""
    wanted = f" {norm(title)} "
    i = 0
    while i < len(blocks) and i < 4 and blocks[i].heading:
        text = norm(blocks[i].text)
        if text and f" {text} " in wanted:
            i += 1
        else:
            break
    return _trim_breaks([b.text for b in blocks[i:]])
