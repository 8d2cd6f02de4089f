"""The speakable text of an XHTML document: paragraphs in reading order, headings marked,
and where each table-of-contents target starts.

What is never read aloud is decided here, once: notes and their markers, page and line
numbers, media and navigation, code listings, and (when asked) front and back matter sections.
"""

from __future__ import annotations

import html.entities
import re
from dataclasses import dataclass

import lxml.html
from lxml import etree

from voxd.book import SECTION_BREAK
from voxd.ingest.alttext import is_placeholder
from voxd.ingest.common import SOFT_HYPHEN, is_navigation, strip_invisible
from voxd.ingest.epub.safexml import html_parser, local, plain_text
from voxd.tts.languages import primary_subtag

_OPS = "http://www.idpf.org/2007/ops"

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
        "image", "svg", "object", "embed", "video", "audio", "source", "track", "iframe",
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
MATTER_TYPES = frozenset(
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
# Web navigation kept in EPUBs made from web pages: ARIA landmarks and the usual class names.
_NAV_ROLES = frozenset({"navigation", "search", "banner", "contentinfo"})
_NAV_CLASS = re.compile(
    r"breadcrumbs?|related|relbar\d?|navbar|nav-?links|nav-?panel|navigation|pager|pagination|sphinxsidebar"
    r"|skip-?link|back-?to-?top|top-?link|(?:section|local|mini|page)-?toc",
    re.IGNORECASE,
)
#: Said for a MathML formula without alttext, by language; the formula itself is never read.
FORMULA = {
    "en": "formula", "de": "Formel", "fr": "formule", "es": "fórmula", "it": "formula", "pt": "fórmula",
    "ru": "формула", "zh": "公式", "ja": "数式", "ko": "수식",
}  # fmt: skip


def formula_word(language: str | None) -> str:
    return FORMULA.get(primary_subtag(language, "en"), FORMULA["en"])


#: Said where a code or markup listing was, by language (``code_listings = "mention"``).
CODE_MENTION = {
    "en": "A code example.", "de": "Ein Codebeispiel.", "fr": "Un exemple de code.", "es": "Un ejemplo de código.",
    "it": "Un esempio di codice.", "pt": "Um exemplo de código.", "ru": "Пример кода.", "zh": "代码示例。",
    "ja": "コード例。", "ko": "코드 예제.",
}  # fmt: skip


def code_mention(language: str | None) -> str:
    return CODE_MENTION.get(primary_subtag(language, "en"), CODE_MENTION["en"])


# Not <tt> or <var>: old books set telegrams in <tt>, and mathematics writes its variables in <var>.
_CODE_TAGS = ("code", "kbd", "samp")
_LISTING_TAGS = frozenset({"pre", "listing", "xmp", "plaintext"})
# A block of code: every word of it inside code elements (<p><code>ls -l</code></p>).
_HAS_CODE = etree.XPath("boolean(.//*[" + " or ".join(f"local-name()='{t}'" for t in _CODE_TAGS) + "])")
_TEXT_OUTSIDE_CODE = etree.XPath(
    "boolean(.//text()[normalize-space()][not(ancestor::*["
    + " or ".join(f"local-name()='{t}'" for t in _CODE_TAGS) + "])])"
)
# Class names that mark a listing (DocBook's programlisting and screen, Pandoc's sourceCode,
# highlighters' highlight-python, language-js), as a name or a part of one, not "screenplay".
_CODE_CLASS = re.compile(
    r"(?:.*[-_])?(?:code|sourcecode|programlisting|listing|source|highlight|screen|console|terminal|shell"
    r"|prettyprint|language|lang|brush|src)(?:[-_:].*)?",
    re.IGNORECASE,
)
# What code and markup look like, and poetry set in <pre> does not.
_CODE_LINE = re.compile(
    r"\s*(?:</?[A-Za-z!?][^>]*>|[$#>%] \S|//|/\*|\*/|#include|#!|(?:def|class|import|from|return|function|var|let"
    r"|const|public|private|static|void|int|if|for|while|print)\b.*(?:[({=]|:\s*$)|.*[{}]\s*$|.*\)\s*[{:;]\s*$)"
)
_CODE_SYMBOLS = frozenset("{}<>;=[]\\|$#@^~`&")


def _looks_like_code(el: etree._Element) -> bool:
    """Whether a <pre> holds code or markup rather than verse or a letter set in type."""
    if _HAS_CODE(el) or any(_CODE_CLASS.fullmatch(c) for c in (el.get("class") or "").split()):
        return True
    text = plain_text(el)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return False
    visible = [ch for ch in text if not ch.isspace()]
    symbols = sum(ch in _CODE_SYMBOLS for ch in visible)
    code_lines = sum(1 for line in lines if _CODE_LINE.match(line))
    return symbols >= max(3, len(visible) * 0.03) or code_lines * 3 >= len(lines)


_URL_TEXT = re.compile(r"(?:https?://|ftp://|mailto:|www\.)\S+", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")  # an href that leaves the book: http:, mailto:
_LEFTOVER_ENTITY = re.compile(r"&[A-Za-z_][\w.-]*;")
# A block with no letter or digit this short is an ornament between sections ("* * *").
_ORNAMENT_MAX = 40


def epub_types(el: etree._Element) -> frozenset[str]:
    """epub:type tokens plus ARIA ``doc-*`` roles (without the prefix), lower-cased."""
    raw = el.get(f"{{{_OPS}}}type") or el.get("epub:type") or ""
    tokens = set(raw.lower().split())
    role = el.get("role")
    if role:
        tokens.update(r[4:] for r in role.lower().split() if r.startswith("doc-"))
    return frozenset(tokens)


def clean(text: str, *, strip_entities: bool = False) -> str:
    text = strip_invisible(text).replace(SOFT_HYPHEN, "")
    if strip_entities:
        text = _LEFTOVER_ENTITY.sub("", text)
    return " ".join(text.split())


@dataclass(slots=True)
class Block:
    text: str
    heading: bool
    inner_links: float = 0.0  # share of its characters in links to other places in the book


@dataclass(slots=True)
class Doc:
    href: str
    blocks: list[Block]
    anchors: dict[str, int]
    anchor_types: dict[str, frozenset[str]]
    start_types: frozenset[str]
    first_heading: str | None
    offset: int = 0


class Extractor:
    """Flatten one XHTML document into paragraphs, noting where TOC targets start."""

    def __init__(
        self, targets: set[str], *, skip_matter: bool, lenient: bool, formula: str = FORMULA["en"],
        figure_mention: bool = False, repeated: frozenset[str] = frozenset(), code: str = "mention",
        code_said: str = CODE_MENTION["en"],
    ) -> None:
        self.targets = targets
        self.skip_matter = skip_matter
        self.lenient = lenient
        self.formula = formula
        self.figure_mention = figure_mention
        self.repeated = repeated  # alt texts the book puts on most of its formulas
        self.code = code  # code listings: "mention", "skip" or "read"
        self.code_said = code_said
        self._link = 0  # inside a link
        self._link_chars = 0  # characters of the paragraph being gathered that are link text
        self._inner = 0  # inside a link to another place in the book
        self._inner_chars = 0
        self.blocks: list[Block] = []
        self.anchors: dict[str, int] = {}
        self.anchor_types: dict[str, frozenset[str]] = {}
        self.first_heading: str | None = None
        self._buf: list[str] = []
        self._buf_heading = False
        self._buf_body = False
        self._heading = 0
        self._pre = 0

    def run(self, root: etree._Element) -> None:
        body = self.body(root)
        self._walk(body)
        self._flush()

    @staticmethod
    def body(root: etree._Element) -> etree._Element:
        for el in root.iter():
            if local(el.tag) == "body":
                return el
        return root

    # -- paragraphs

    def _flush(self) -> None:
        if self._buf:
            text = clean("".join(self._buf), strip_entities=self.lenient)
            visible = max(1, len(text.replace(" ", "")))
            links = self._link_chars / visible
            if text and any(ch.isalnum() for ch in text):
                if not is_navigation(text, links):
                    heading = self._buf_heading and not self._buf_body
                    self.blocks.append(Block(text, heading, min(1.0, self._inner_chars / visible)))
            elif text and len(text) <= _ORNAMENT_MAX:
                self._section_break()  # "* * *", "⁂": an ornament between sections
        self._buf.clear()
        self._buf_heading = self._buf_body = False
        self._link_chars = self._inner_chars = 0

    def _section_break(self) -> None:
        if self.blocks and self.blocks[-1].text != SECTION_BREAK:
            self.blocks.append(Block(SECTION_BREAK, False))

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
        if self._link:
            self._link_chars += len(text.replace(" ", "").strip())
        if self._inner:
            self._inner_chars += len(text.replace(" ", "").strip())
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
            self.anchor_types[ident] = context_types(el)

    def _mark_skipped(self, el: etree._Element) -> None:
        if len(self.anchors) == len(self.targets):
            return
        for sub in el.iter():
            if isinstance(sub.tag, str):
                self._mark(sub, local(sub.tag))

    # -- the walk

    def _skip(self, el: etree._Element, tag: str, types: frozenset[str]) -> bool:
        if tag in _SKIP_TAGS or el.get("hidden") is not None:
            return True
        if tag in _SECTIONING or tag in ("ul", "ol", "p", "header", "footer"):
            if (el.get("role") or "").lower() in _NAV_ROLES:
                return True
            if any(_NAV_CLASS.fullmatch(c) for c in (el.get("class") or "").split()):
                return True
        if tag in ("ul", "ol") and _link_list(el):
            return True  # a page's own table of contents: every item only a link
        if types & _NOTE_TYPES or "noteref" in types:
            return True
        if any(_NUMBER_CLASS.fullmatch(c) for c in (el.get("class") or "").split()):
            return True
        if self.skip_matter and tag in _SECTIONING and types & MATTER_TYPES:
            return True
        if tag == "a":
            text = plain_text(el).strip()
            href = el.get("href") or ""
            if "#" in href and _NOTE_MARKER.fullmatch(text):
                return True  # a bare "12" or "*" linking to a note
        if tag == "sup":
            text = plain_text(el).strip()
            if _NOTE_MARKER.fullmatch(text):
                return True
            kids = [c for c in el if isinstance(c.tag, str)]
            if (
                len(kids) == 1
                and local(kids[0].tag) == "a"
                and not (el.text or "").strip()
                and not (kids[0].tail or "").strip()
            ):
                return True
        return False

    def _walk(self, el: etree._Element) -> None:
        tag = local(el.tag)
        types = epub_types(el)
        if self._skip(el, tag, types):
            self._mark_skipped(el)
            return
        block = tag in _BLOCK_TAGS
        if block:
            self._flush()
        if self.code != "read" and not self._heading and self._listing(el, tag):
            self._mark(el, tag)
            self._mark_skipped(el)
            if self.code == "mention" and not (self.blocks and self.blocks[-1].text == self.code_said):
                self.blocks.append(Block(self.code_said, False))
            return
        self._mark(el, tag)
        if tag == "math":
            # A formula is said by its alttext where the book gives one, else named: its
            # markup read as text is a soup of single letters and operators. A placeholder
            # ("Alternative text not available", "image", a file name) describes nothing:
            # left out, or named with figure_mention.
            alt = " ".join((el.get("alttext") or "").split())
            if alt and (alt in self.repeated or is_placeholder(alt)):
                said = self.formula if self.figure_mention else ""
            else:
                said = alt or self.formula
            if said and el.get("display") == "block":
                self._flush()
                self._add(said)
                self._flush()
            elif said:
                self._add(f" {said} ")
            self._mark_skipped(el)
            return
        if tag == "br":
            self._flush()
            return
        if tag == "hr":
            self._section_break()
            return
        heading = tag in _HEADING_TAGS or bool(types & _HEADING_TYPES)
        first_heading = tag in _HEADING_TAGS and self.first_heading is None and not self._heading
        start = len(self.blocks)
        if heading:
            self._heading += 1
        if tag == "pre":
            self._pre += 1
        # A link whose text is a web address is no navigation: the cleanup says its host
        # ("website at example dot com"), so the sentence around it keeps its words.
        link = tag == "a" and el.get("href") is not None and not _URL_TEXT.fullmatch(plain_text(el).strip())
        inner = link and not _SCHEME.match(el.get("href") or "")
        if link:
            self._link += 1
        if inner:
            self._inner += 1

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

        if link:
            self._link -= 1
        if inner:
            self._inner -= 1
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


    @staticmethod
    def _listing(el: etree._Element, tag: str) -> bool:
        """A listing of code or markup: a <pre> that looks like code, or a paragraph that
        is nothing but code. Inline code inside a sentence is a word, and stays."""
        if tag in _LISTING_TAGS:
            return _looks_like_code(el)
        if tag in ("p", "div"):
            return bool(_HAS_CODE(el)) and not _TEXT_OUTSIDE_CODE(el) and bool(plain_text(el).strip())
        return False


def _link_list(el: etree._Element) -> bool:
    """A list of two or more items, each nothing but a link (a web page's local contents)."""
    items = [c for c in el if isinstance(c.tag, str) and local(c.tag) == "li"]
    if len(items) < 2:
        return False
    for item in items:
        links = [a for a in item.iter() if isinstance(a.tag, str) and local(a.tag) == "a" and a.get("href")]
        text = plain_text(item).strip()
        if not links or not text or "".join(plain_text(a) for a in links).strip() != text:
            return False
    return True


def context_types(el: etree._Element) -> frozenset[str]:
    """Types that say what a TOC target is: its own, its ancestors', and those of the
    sectioning element it opens with (``<body><section epub:type="dedication">``)."""
    types = set(epub_types(el))
    for anc in el.iterancestors():
        types |= epub_types(anc)
    node = el
    for _ in range(4):
        first = next((c for c in node if isinstance(c.tag, str)), None)
        if first is None or local(first.tag) not in _SECTIONING:
            break
        types |= epub_types(first)
        node = first
    return frozenset(types)


def html_fragment_text(text: str) -> str:
    try:
        root = lxml.html.fragment_fromstring(text, create_parent="div", parser=html_parser("utf-8"))
    except (etree.LxmlError, ValueError):
        return clean(re.sub(r"<[^>]*>", " ", text))
    ex = Extractor(set(), skip_matter=False, lenient=True)
    ex.run(root)
    return "\n\n".join(b.text for b in ex.blocks)
