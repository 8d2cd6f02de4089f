"""Parsers for the XML and HTML inside an EPUB, hardened against what strangers put there.

An EPUB's package and documents are files written by anyone: no parser here expands an
entity, reads a DTD, goes to the network or builds a huge tree, so a billion-laughs
bomb or an external entity costs nothing and reveals nothing.
"""

from __future__ import annotations

import re

import lxml.html
from lxml import etree

_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*(?:\[.*?\]\s*)?>", re.IGNORECASE | re.DOTALL)


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


def html_parser(encoding: str | None) -> lxml.html.HTMLParser:
    # libxml2's HTML parser knows the HTML named entities and never reads a DTD.
    return lxml.html.HTMLParser(
        encoding=encoding, no_network=True, huge_tree=False, remove_comments=True, remove_pis=True
    )


def parse_xml(data: bytes) -> etree._Element:
    """Parse package XML (OPF, container): strict, entities never expanded."""
    return etree.fromstring(data, _xml_parser())


def parse_document(data: bytes) -> tuple[etree._Element | None, bool]:
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
        return lxml.html.document_fromstring(cleaned, parser=html_parser(encoding)), True
    except (etree.LxmlError, ValueError):
        return None, True


def local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def plain_text(el: etree._Element) -> str:
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
