"""Read an EPUB (2 or 3) into a :class:`~voxd.book.Book` of speakable chapters.

The pipeline:

1. :func:`~voxd.ingest.safezip.check_zip` vets the archive before anything parses it.
2. ebooklib reads the package: manifest, spine, guide and the table of contents
   (NCX or EPUB 3 nav, as ``book.toc``).
3. Every spine document is parsed by us with a hardened lxml parser (no entity
   expansion, no network, no DTD) and flattened into one stream of paragraphs. Each
   table-of-contents target (``file.xhtml#id``) is remembered as a position in that
   stream.
4. Chapters are the stretches of the stream between consecutive TOC targets, so one
   file may hold many chapters and one chapter may span many files. Without a TOC,
   each spine document is a chapter.
5. Front and back matter (cover, title page, copyright, contents, index, colophon...)
   is recognised by ``epub:type``/ARIA roles, landmarks, the EPUB 2 guide and titles.

Metadata comes from the OPF, parsed by us with the same hardened parser.
"""

from __future__ import annotations

import html.entities
import logging
import lzma
import posixpath
import re
import warnings
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import lxml.html
from ebooklib import epub as ebl
from lxml import etree

from voxd.book import Book, Chapter, Cover, Metadata, image_mime
from voxd.errors import BookError, VoxdError
from voxd.ingest.common import SOFT_HYPHEN, check_toc_depth, describe, is_matter_title, norm, strip_invisible
from voxd.ingest.outline import chapter_spans, settle, walk
from voxd.ingest.safezip import check_zip

log = logging.getLogger(__name__)

__all__ = ["read_epub"]

_OPF = "http://www.idpf.org/2007/opf"
_DC = "http://purl.org/dc/elements/1.1/"
_OPS = "http://www.idpf.org/2007/ops"
_CONTAINER = "urn:oasis:names:tc:opendocument:xmlns:container"
_XLINK = "http://www.w3.org/1999/xlink"

_DOC_TYPES = frozenset({"application/xhtml+xml", "text/html", "application/html"})

# Elements that end the current paragraph when they start and when they end.
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
        "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2",
        "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav",
        "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "hgroup"})
# Never spoken: metadata, code, media (alt text included), ruby annotations, navigation, asides.
_SKIP_TAGS = frozenset(
    {
        "head", "title", "script", "style", "noscript", "template", "link", "meta", "base", "img",
        "image", "svg", "math", "object", "embed", "video", "audio", "source", "track", "iframe",
        "canvas", "map", "area", "input", "button", "select", "textarea", "rt", "rp", "aside", "nav",
    }
)  # fmt: skip
_SECTIONING = frozenset({"body", "section", "article", "div", "main", "nav", "aside"})
_HEADING_TYPES = frozenset({"title", "subtitle"})
# Notes and page numbers are never read, whatever the options.
_NOTE_TYPES = frozenset(
    {"footnote", "footnotes", "endnote", "endnotes", "rearnote", "rearnotes", "note", "notes", "pagebreak", "toc"}
)
# Front and back matter that an audiobook skips (epub:type, ARIA doc-* roles, guide types).
_MATTER_TYPES = frozenset(
    {
        "cover", "titlepage", "title-page", "halftitlepage", "halftitle", "copyright-page", "copyright",
        "imprint", "imprimatur", "colophon", "toc", "toc-brief", "index", "loi", "lot", "loa", "lov",
        "landmarks", "page-list", "dedication", "errata", "bibliography", "seriespage", "other-credits",
        "footnotes", "endnotes", "rearnotes", "notes",
    }
)  # fmt: skip
_NOTE_MARKER = re.compile(r"[\[(]?(?:\d{1,4}|[*†‡§¶‖]{1,4})[\])]?")
# Classes that mark printed line and page numbers (IDPF samples, Project Gutenberg).
_NUMBER_CLASS = re.compile(r"(?:l|line|page|pg)[-_]?(?:num|number|no|nr)s?", re.IGNORECASE)
_URL_TEXT = re.compile(r"(?:https?://|ftp://|mailto:|www\.)\S+", re.IGNORECASE)
_LEFTOVER_ENTITY = re.compile(r"&[A-Za-z_][\w.-]*;")
_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*(?:\[.*?\]\s*)?>", re.IGNORECASE | re.DOTALL)
_FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})
# What zipfile raises for a member it cannot unpack (damaged data, a method it lacks).
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, NotImplementedError, RuntimeError, OSError, EOFError)


# ---------------------------------------------------------------------------- public


def read_epub(path: Path, *, toc_depth: int | None = None, skip_front_back_matter: bool = True) -> Book:
    """Read the EPUB at ``path`` into a :class:`Book` whose chapters are ready to speak.

    ``toc_depth``: which level of a nested table of contents makes the chapters (1 is
    the top level); ``None`` picks the level that gives chapter-sized pieces.
    ``skip_front_back_matter``: leave out cover, title page, copyright, contents,
    dedication, index, colophon and the like.

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
            _check_encryption(zf, name)
            package = _Package.load(zf, name)
            metadata = package.metadata(fallback_title=path.stem)
            cover = package.cover(zf)
    except VoxdError:
        raise
    except (KeyError, etree.LxmlError, *_ZIP_ERRORS) as exc:
        raise BookError(f"{name}: not a readable EPUB ({describe(exc)})") from None

    reader = _Reader(name, ebook, package, skip_matter=skip_front_back_matter)
    chapters = reader.chapters(toc_depth)
    if not chapters:
        raise BookError(f"{name}: has no readable text")
    return Book(metadata=metadata, chapters=tuple(chapters), cover=cover)


# ------------------------------------------------------------------- safe XML parsing


def _xml_parser() -> etree.XMLParser:
    # One per call: lxml parsers must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _html_parser(encoding: str | None) -> lxml.html.HTMLParser:
    # libxml2's HTML parser knows the HTML named entities and never reads a DTD.
    return lxml.html.HTMLParser(
        encoding=encoding, no_network=True, huge_tree=False, remove_comments=True, remove_pis=True
    )


def _parse_xml(data: bytes) -> etree._Element:
    """Parse package XML (OPF, container): strict, entities never expanded."""
    return etree.fromstring(data, _xml_parser())


def _parse_document(data: bytes) -> tuple[etree._Element | None, bool]:
    """Parse an XHTML document; returns (root, parsed_leniently).

    Well-formed XHTML goes through the hardened XML parser, which keeps entity
    references as unexpanded nodes. Anything else (HTML entities without a DTD, tag
    soup, a billion-laughs bomb that libxml2 refuses) is parsed again as HTML with the
    DOCTYPE and its internal subset cut off first, so declared entities stay
    literal text that is removed later.
    """
    try:
        return etree.fromstring(data, _xml_parser()), False
    except (etree.XMLSyntaxError, ValueError):
        pass
    cleaned = _DOCTYPE.sub(b"", data, count=1)
    try:
        cleaned.decode("utf-8")
        encoding: str | None = "utf-8"
    except UnicodeDecodeError:
        encoding = None
    try:
        return lxml.html.document_fromstring(cleaned, parser=_html_parser(encoding)), True
    except (etree.LxmlError, ValueError):
        return None, True


# ------------------------------------------------------------------------ text utils


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def _types(el: etree._Element) -> frozenset[str]:
    """epub:type tokens plus ARIA ``doc-*`` roles (without the prefix), lower-cased."""
    raw = el.get(f"{{{_OPS}}}type") or el.get("epub:type") or ""
    tokens = set(raw.lower().split())
    role = el.get("role")
    if role:
        tokens.update(r[4:] for r in role.lower().split() if r.startswith("doc-"))
    return frozenset(tokens)


def _clean(text: str, *, strip_entities: bool = False) -> str:
    text = strip_invisible(text).replace(SOFT_HYPHEN, "")
    if strip_entities:
        text = _LEFTOVER_ENTITY.sub("", text)
    return " ".join(text.split())


def _plain_text(el: etree._Element) -> str:
    """All text below ``el``; entity references are dropped, never expanded."""
    parts: list[str] = []

    def walk(node: etree._Element) -> None:
        if node.text and isinstance(node.tag, str):
            parts.append(node.text)
        for child in node:
            if isinstance(child.tag, str):
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(el)
    return "".join(parts)


# ------------------------------------------------------------------ text extraction


@dataclass(slots=True)
class _Block:
    text: str
    heading: bool


@dataclass(slots=True)
class _Doc:
    href: str
    blocks: list[_Block]
    anchors: dict[str, int]
    anchor_types: dict[str, frozenset[str]]
    start_types: frozenset[str]
    first_heading: str | None
    offset: int = 0


class _Extractor:
    """Flatten one XHTML document into paragraphs, noting where TOC targets start."""

    def __init__(self, targets: set[str], *, skip_matter: bool, lenient: bool) -> None:
        self.targets = targets
        self.skip_matter = skip_matter
        self.lenient = lenient
        self.blocks: list[_Block] = []
        self.anchors: dict[str, int] = {}
        self.anchor_types: dict[str, frozenset[str]] = {}
        self.first_heading: str | None = None
        self._buf: list[str] = []
        self._buf_heading = False
        self._buf_body = False
        self._heading = 0
        self._pre = 0

    def run(self, root: etree._Element) -> None:
        body = self._body(root)
        self._walk(body)
        self._flush()

    @staticmethod
    def _body(root: etree._Element) -> etree._Element:
        for el in root.iter():
            if _local(el.tag) == "body":
                return el
        return root

    # -- paragraphs

    def _flush(self) -> None:
        if self._buf:
            text = _clean("".join(self._buf), strip_entities=self.lenient)
            if text and any(ch.isalnum() for ch in text):
                self.blocks.append(_Block(text, self._buf_heading and not self._buf_body))
        self._buf.clear()
        self._buf_heading = self._buf_body = False

    def _add(self, text: str | None) -> None:
        if not text:
            return
        if self._pre:
            for i, line in enumerate(text.split("\n")):
                if i:
                    self._flush()
                self._append(line)
        else:
            self._append(text)

    def _append(self, text: str) -> None:
        self._buf.append(text)
        if text and not text.isspace():
            if self._heading:
                self._buf_heading = True
            else:
                self._buf_body = True

    # -- anchors

    def _mark(self, el: etree._Element, tag: str) -> None:
        ident = el.get("id") or (el.get("name") if tag == "a" else None)
        if ident and ident in self.targets and ident not in self.anchors:
            self._flush()  # a chapter starts exactly here, even mid-paragraph
            self.anchors[ident] = len(self.blocks)
            self.anchor_types[ident] = _context_types(el)

    def _mark_skipped(self, el: etree._Element) -> None:
        if len(self.anchors) == len(self.targets):
            return
        for sub in el.iter():
            if isinstance(sub.tag, str):
                self._mark(sub, _local(sub.tag))

    # -- the walk

    def _skip(self, el: etree._Element, tag: str, types: frozenset[str]) -> bool:
        if tag in _SKIP_TAGS or el.get("hidden") is not None:
            return True
        if types & _NOTE_TYPES or "noteref" in types:
            return True
        if any(_NUMBER_CLASS.fullmatch(c) for c in (el.get("class") or "").split()):
            return True
        if self.skip_matter and tag in _SECTIONING and types & _MATTER_TYPES:
            return True
        if tag == "a":
            text = _plain_text(el).strip()
            if _URL_TEXT.fullmatch(text):
                return True  # never read a URL aloud
            href = el.get("href") or ""
            if "#" in href and _NOTE_MARKER.fullmatch(text):
                return True  # a bare "12" or "*" linking to a note
        if tag == "sup":
            text = _plain_text(el).strip()
            if _NOTE_MARKER.fullmatch(text):
                return True
            kids = [c for c in el if isinstance(c.tag, str)]
            if (
                len(kids) == 1
                and _local(kids[0].tag) == "a"
                and not (el.text or "").strip()
                and not (kids[0].tail or "").strip()
            ):
                return True
        return False

    def _walk(self, el: etree._Element) -> None:
        tag = _local(el.tag)
        types = _types(el)
        if self._skip(el, tag, types):
            self._mark_skipped(el)
            return
        block = tag in _BLOCK_TAGS
        if block:
            self._flush()
        self._mark(el, tag)
        if tag == "br":
            self._flush()
            return
        heading = tag in _HEADING_TAGS or bool(types & _HEADING_TYPES)
        first_heading = tag in _HEADING_TAGS and self.first_heading is None and not self._heading
        start = len(self.blocks)
        if heading:
            self._heading += 1
        if tag == "pre":
            self._pre += 1

        self._add(el.text)
        for child in el:
            if isinstance(child.tag, str):
                self._walk(child)
            elif isinstance(child, etree._Entity):
                # Unexpanded entity reference: keep HTML's named characters, drop the rest
                # (an external entity is never read).
                code = html.entities.name2codepoint.get(child.name)
                if code is not None:
                    self._add(chr(code))
            self._add(child.tail)

        if tag == "pre":
            self._pre -= 1
        if heading:
            self._heading -= 1
        if block:
            self._flush()
        if first_heading:
            parts = [b.text for b in self.blocks[start:]]
            if parts:
                self.first_heading = ": ".join(parts)


def _context_types(el: etree._Element) -> frozenset[str]:
    """Types that say what a TOC target is: its own, its ancestors', and those of the
    sectioning element it opens with (``<body><section epub:type="dedication">``)."""
    types = set(_types(el))
    for anc in el.iterancestors():
        types |= _types(anc)
    node = el
    for _ in range(4):
        first = next((c for c in node if isinstance(c.tag, str)), None)
        if first is None or _local(first.tag) not in _SECTIONING:
            break
        types |= _types(first)
        node = first
    return frozenset(types)


# -------------------------------------------------------------------------- package


@dataclass
class _Package:
    """The OPF as we parse it ourselves: metadata, manifest and guide."""

    name: str
    opf_dir: str
    root: etree._Element
    manifest: dict[str, dict[str, str]]  # id -> {href (relative to the OPF dir), media-type, properties}

    @classmethod
    def load(cls, zf: zipfile.ZipFile, name: str) -> _Package:
        container = _parse_xml(zf.read("META-INF/container.xml"))
        rootfiles = [el for el in container.iter(f"{{{_CONTAINER}}}rootfile") if el.get("full-path")]
        if not rootfiles:
            raise BookError(f"{name}: not a readable EPUB (META-INF/container.xml names no package file)")
        chosen = next((el for el in rootfiles if el.get("media-type") == "application/oebps-package+xml"), rootfiles[0])
        opf_path = posixpath.normpath(unquote(chosen.get("full-path", "")))
        root = _parse_xml(zf.read(opf_path))
        opf_dir = posixpath.dirname(opf_path)
        manifest: dict[str, dict[str, str]] = {}
        for item in root.iter(f"{{{_OPF}}}item"):
            ident, href = item.get("id"), item.get("href")
            if ident and href:
                manifest[ident] = {
                    "href": posixpath.normpath(unquote(href)),
                    "media-type": (item.get("media-type") or "").lower(),
                    "properties": item.get("properties") or "",
                }
        return cls(name, opf_dir, root, manifest)

    # -- metadata

    def _meta_root(self) -> etree._Element:
        found = self.root.find(f"{{{_OPF}}}metadata")
        return found if found is not None else self.root

    def _dc(self, tag: str) -> list[etree._Element]:
        return list(self._meta_root().iter(f"{{{_DC}}}{tag}"))

    def _metas(self) -> Iterator[etree._Element]:
        for el in self._meta_root().iter():
            if _local(el.tag) == "meta":
                yield el

    def metadata(self, *, fallback_title: str) -> Metadata:
        refines: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        named: dict[str, str] = {}
        collections: list[tuple[str | None, str]] = []
        for m in self._metas():
            prop, text = m.get("property"), _clean(_plain_text(m))
            if prop and m.get("refines"):
                refines[m.get("refines", "").lstrip("#")][prop].append(text)
            elif prop == "belongs-to-collection" and text:
                collections.append((m.get("id"), text))
            elif m.get("name") and m.get("content") is not None:
                named.setdefault(m.get("name", ""), _clean(m.get("content", "")))

        title = self._title(refines) or fallback_title
        authors = self._authors(refines)
        language = self._first("language")
        description = self._description()
        publisher = self._first("publisher")
        date = self._date()
        series, series_index = self._series(named, collections, refines)
        return Metadata(
            title=title,
            authors=authors,
            language=language,
            description=description,
            publisher=publisher,
            date=date,
            series=series,
            series_index=series_index,
        )

    def _first(self, tag: str) -> str | None:
        for el in self._dc(tag):
            text = _clean(_plain_text(el))
            if text:
                return text
        return None

    def _title(self, refines: dict[str, dict[str, list[str]]]) -> str | None:
        titles = [(el.get("id"), _clean(_plain_text(el))) for el in self._dc("title")]
        titles = [(i, t) for i, t in titles if t]
        for ident, text in titles:
            if ident and "main" in refines.get(ident, {}).get("title-type", []):
                return text
        return titles[0][1] if titles else None

    def _authors(self, refines: dict[str, dict[str, list[str]]]) -> tuple[str, ...]:
        everyone: list[str] = []
        authors: list[str] = []
        for el in self._dc("creator"):
            text = _clean(_plain_text(el))
            if not text or text in everyone:
                continue
            everyone.append(text)
            roles = {r.lower() for r in refines.get(el.get("id") or "", {}).get("role", [])}
            epub2_role = el.get(f"{{{_OPF}}}role") or el.get("role")
            if epub2_role:
                roles.add(epub2_role.lower())
            if not roles or "aut" in roles:
                authors.append(text)
        return tuple(authors or everyone)

    def _description(self) -> str | None:
        for el in self._dc("description"):
            text = _plain_text(el).strip()
            if not text:
                continue
            if "<" in text:
                text = _html_fragment_text(text)
            else:
                text = _clean(text)
            if text:
                return text
        return None

    def _date(self) -> str | None:
        dates = []
        for el in self._dc("date"):
            event = el.get(f"{{{_OPF}}}event") or el.get("event") or ""
            text = _clean(_plain_text(el))
            if text:
                dates.append((event.lower(), text))
        for event, text in dates:
            if event == "publication":
                return text
        return dates[0][1] if dates else None

    def _series(
        self,
        named: dict[str, str],
        collections: list[tuple[str | None, str]],
        refines: dict[str, dict[str, list[str]]],
    ) -> tuple[str | None, str | None]:
        def epub3(only_series: bool) -> tuple[str, str | None] | None:
            for ident, text in collections:
                ref = refines.get(ident or "", {})
                if only_series and "series" not in [t.lower() for t in ref.get("collection-type", [])]:
                    continue
                position = ref.get("group-position", [None])[0]
                return text, position
            return None

        found = epub3(True)
        if found is None and named.get("calibre:series"):
            found = named["calibre:series"], named.get("calibre:series_index")
        if found is None:
            found = epub3(False)
        if found is None:
            return None, None
        series, index = found
        return series, _series_index(index)

    # -- cover

    def cover(self, zf: zipfile.ZipFile) -> Cover | None:
        for href in self._cover_candidates(zf):
            try:
                data = zf.read(self._zip_path(href))
            except (KeyError, ValueError, *_ZIP_ERRORS):
                continue  # a missing or damaged image is no cover, not a broken book
            mime = image_mime(data)
            if mime:
                return Cover(data=data, mime=mime)
        return None

    def _zip_path(self, href: str) -> str:
        return posixpath.normpath(posixpath.join(self.opf_dir, href))

    def _cover_candidates(self, zf: zipfile.ZipFile) -> Iterator[str]:
        images = {i: it for i, it in self.manifest.items() if it["media-type"].startswith("image/")}
        for item in images.values():  # EPUB 3
            if "cover-image" in item["properties"].split():
                yield item["href"]
        for m in self._metas():  # EPUB 2: <meta name="cover" content="item-id"/>
            if (m.get("name") or "").lower() == "cover" and m.get("content"):
                content = m.get("content", "")
                if content in images:
                    yield images[content]["href"]
                else:
                    yield posixpath.normpath(unquote(content))
        named = sorted(
            (it["href"] for i, it in images.items() if "cover" in i.lower() or "cover" in it["href"].lower()),
            key=lambda h: (posixpath.splitext(posixpath.basename(h))[0].lower() != "cover", h),
        )
        yield from named
        yield from self._guide_cover_images(zf)

    def _guide_cover_images(self, zf: zipfile.ZipFile) -> Iterator[str]:
        for ref in self.root.iter(f"{{{_OPF}}}reference"):
            if (ref.get("type") or "").lower() != "cover" or not ref.get("href"):
                continue
            page = posixpath.normpath(unquote(ref.get("href", "").partition("#")[0]))
            try:
                root, _ = _parse_document(zf.read(self._zip_path(page)))
            except (KeyError, ValueError, *_ZIP_ERRORS):
                continue
            if root is None:
                continue
            for el in root.iter():
                tag = _local(el.tag)
                src = el.get("src") if tag == "img" else None
                if tag == "image":
                    src = el.get(f"{{{_XLINK}}}href") or el.get("href")
                if src and "://" not in src:
                    yield posixpath.normpath(posixpath.join(posixpath.dirname(page), unquote(src)))

    # -- guide

    def guide_types(self) -> dict[str, set[str]]:
        """href (relative to the OPF dir, with its #fragment if any) -> guide types."""
        found: dict[str, set[str]] = defaultdict(set)
        for ref in self.root.iter(f"{{{_OPF}}}reference"):
            href, kind = ref.get("href"), (ref.get("type") or "").lower()
            if href and kind:
                path, _, frag = href.partition("#")
                key = posixpath.normpath(unquote(path)) + ("#" + unquote(frag) if frag else "")
                found[key].add(kind)
        return found


def _html_fragment_text(text: str) -> str:
    try:
        root = lxml.html.fragment_fromstring(text, create_parent="div", parser=_html_parser("utf-8"))
    except (etree.LxmlError, ValueError):
        return _clean(re.sub(r"<[^>]*>", " ", text))
    ex = _Extractor(set(), skip_matter=False, lenient=True)
    ex.run(root)
    return "\n\n".join(b.text for b in ex.blocks)


def _series_index(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        return value or None
    return str(int(number)) if number.is_integer() else value


def _check_encryption(zf: zipfile.ZipFile, name: str) -> None:
    try:
        data = zf.read("META-INF/encryption.xml")
    except KeyError:
        return
    try:
        root = _parse_xml(data)
    except etree.XMLSyntaxError:
        raise BookError(f"{name}: has an unreadable META-INF/encryption.xml; it may be DRM-protected") from None
    for el in root.iter():
        if _local(el.tag) == "encryptionmethod" and el.get("Algorithm") not in _FONT_OBFUSCATION:
            raise BookError(f"{name}: is DRM-protected (encrypted); voxd reads only DRM-free EPUBs")


# --------------------------------------------------------------------------- chapters


@dataclass(eq=False)
class _Node:
    title: str
    href: str | None  # raw, as ebooklib gives it
    children: list[_Node] = field(default_factory=list)
    path: str | None = None  # the spine document, relative to the OPF dir
    frag: str | None = None
    pos: int | None = None  # index of its first paragraph in the book's stream
    skip: bool = False
    depth: int = 1


class _Reader:
    def __init__(self, name: str, ebook: ebl.EpubBook, package: _Package, *, skip_matter: bool) -> None:
        self.name = name
        self.ebook = ebook
        self.package = package
        self.skip_matter = skip_matter
        self.docs: list[_Doc] = []
        self.blocks: list[_Block] = []
        self._sizes: list[int] = [0]  # prefix sums of paragraph lengths
        # NCX hrefs are relative to the NCX file; ebooklib leaves them as they are.
        self._ncx_dirs = [
            posixpath.dirname(it.file_name)
            for it in ebook.get_items()
            if (getattr(it, "media_type", "") or "") == "application/x-dtbncx+xml"
        ]

    # -- the stream of paragraphs

    def _spine_items(self) -> list[tuple[object, bool]]:
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
        for item, linear in self._spine_items():
            href = posixpath.normpath(item.file_name)
            if not linear and href not in targets:
                continue  # out-of-flow (pop-up notes and the like) unless the TOC points there
            content = item.content
            if isinstance(content, str):
                content = content.encode("utf-8")
            doc = self._read_doc(href, content or b"", targets.get(href, set()))
            doc.offset = len(self.blocks)
            self.docs.append(doc)
            self.blocks.extend(doc.blocks)
        for block in self.blocks:
            self._sizes.append(self._sizes[-1] + len(block.text))

    def _read_doc(self, href: str, data: bytes, targets: set[str]) -> _Doc:
        root, lenient = _parse_document(data)
        ex = _Extractor(targets, skip_matter=self.skip_matter, lenient=lenient)
        start_types: frozenset[str] = frozenset()
        if root is not None:
            ex.run(root)
            start_types = _context_types(_Extractor._body(root))
        else:
            log.warning("%s: could not parse %s; skipping it", self.name, href)
        return _Doc(href, ex.blocks, ex.anchors, ex.anchor_types, start_types, ex.first_heading)

    def _chars(self, start: int, end: int) -> int:
        return self._sizes[end] - self._sizes[start]

    # -- table of contents

    def _toc(self) -> list[_Node]:
        def convert(items: Iterable[object], depth: int) -> list[_Node]:
            nodes: list[_Node] = []
            for it in items:
                if isinstance(it, tuple) and len(it) == 2:
                    head, kids = it
                    node = _Node(_clean(getattr(head, "title", "") or ""), getattr(head, "href", None) or None)
                    node.depth = depth
                    node.children = convert(kids if isinstance(kids, list) else [kids], depth + 1)
                    nodes.append(node)
                elif isinstance(it, list):
                    nodes.extend(convert(it, depth))
                elif isinstance(it, (ebl.Link, ebl.Section)):
                    node = _Node(_clean(it.title or ""), getattr(it, "href", None) or None)
                    node.depth = depth
                    nodes.append(node)
            return nodes

        toc = self.ebook.toc or []
        # ebooklib returns a bare Link (with no href) for an empty NCX navMap
        return convert(toc if isinstance(toc, list) else [toc], 1)

    def _resolve(self, href: str | None, docs: set[str]) -> tuple[str, str | None] | None:
        if not href or "://" in href or href.startswith("mailto:"):
            return None
        path, _, frag = href.partition("#")
        path = unquote(path)
        if not path:
            return None
        candidates = [posixpath.normpath(path)]
        candidates += [posixpath.normpath(posixpath.join(d, path)) for d in self._ncx_dirs]
        for cand in candidates:
            if cand in docs:
                return cand, unquote(frag) or None
        base = posixpath.basename(path)
        matches = [d for d in docs if posixpath.basename(d) == base]
        if len(matches) == 1:
            return matches[0], unquote(frag) or None
        return None

    # -- landmarks (EPUB 3) and guide (EPUB 2)

    def _landmark_types(self, docs: set[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for key, kinds in self.package.guide_types().items():
            found[key] |= kinds
        for item in self.ebook.get_items():
            if not isinstance(item, ebl.EpubNav):
                continue
            content = item.content if isinstance(item.content, bytes) else str(item.content or "").encode()
            root, _ = _parse_document(content)
            if root is None:
                continue
            nav_dir = posixpath.dirname(item.file_name)
            for nav in root.iter():
                if _local(nav.tag) != "nav" or "landmarks" not in _types(nav):
                    continue
                for a in nav.iter():
                    if _local(a.tag) == "a" and a.get("href"):
                        path, _, frag = a.get("href", "").partition("#")
                        if not path:
                            continue
                        key = posixpath.normpath(posixpath.join(nav_dir, unquote(path)))
                        found[key + ("#" + unquote(frag) if frag else "")] |= set(_types(a))
        return found

    # -- choosing chapters

    def chapters(self, toc_depth: int | None) -> list[Chapter]:
        doc_hrefs = {posixpath.normpath(it.file_name) for it, _ in self._spine_items()}
        toc = self._toc()
        targets: dict[str, set[str]] = defaultdict(set)
        for node in walk(toc):
            resolved = self._resolve(node.href, doc_hrefs)
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

    def _place(self, toc: list[_Node]) -> None:
        by_href = {doc.href: doc for doc in self.docs}
        landmarks = self._landmark_types(set(by_href))

        def place(node: _Node) -> None:
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
            settle(node, matter=self.skip_matter and (bool(types & _MATTER_TYPES) or is_matter_title(node.title)))

        for node in toc:
            place(node)

    def _toc_chapters(self, toc: list[_Node], toc_depth: int | None) -> list[Chapter]:
        chapters: list[Chapter] = []
        for node, start, end in chapter_spans(toc, toc_depth, len(self.blocks), self._chars):
            if node.skip or start >= end:
                continue
            blocks = self.blocks[start:end]
            title = node.title or next((b.text for b in blocks if b.heading), "") or f"Chapter {len(chapters) + 1}"
            paragraphs = _drop_title_headings(title, blocks)
            if paragraphs:
                chapters.append(Chapter(title=title, paragraphs=tuple(paragraphs)))
        return chapters

    def _spine_chapters(self) -> list[Chapter]:
        landmarks = self._landmark_types({doc.href for doc in self.docs}) if self.skip_matter else {}
        chapters: list[Chapter] = []
        for doc in self.docs:
            if not doc.blocks:
                continue
            title = doc.first_heading or f"Chapter {len(chapters) + 1}"
            if self.skip_matter and (
                doc.start_types & _MATTER_TYPES
                or landmarks.get(doc.href, set()) & _MATTER_TYPES
                or (doc.first_heading and is_matter_title(doc.first_heading))
            ):
                continue
            paragraphs = _drop_title_headings(title, doc.blocks)
            if paragraphs:
                chapters.append(Chapter(title=title, paragraphs=tuple(paragraphs)))
        return chapters


def _drop_title_headings(title: str, blocks: list[_Block]) -> list[str]:
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
    return [b.text for b in blocks[i:]]
