"""The OPF package document (manifest, guide, metadata elements), parsed by us with the
hardened parser like every other piece of XML in the book. Also the encryption check:
a DRM-protected book is refused with a reason of its own, not read as noise.
"""

from __future__ import annotations

import lzma
import posixpath
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from lxml import etree

from voxd.errors import BookError
from voxd.ingest.epub.safexml import local, parse_xml

OPF = "http://www.idpf.org/2007/opf"
_DC = "http://purl.org/dc/elements/1.1/"
_CONTAINER = "urn:oasis:names:tc:opendocument:xmlns:container"

_FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})
# What zipfile raises for a member it cannot unpack (damaged data, a method it lacks).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, NotImplementedError, RuntimeError, OSError, EOFError)


@dataclass
class Package:
    """The OPF as we parse it ourselves: metadata, manifest and guide."""

    name: str
    opf_dir: str
    root: etree._Element
    manifest: dict[str, dict[str, str]]  # id -> {href (relative to the OPF dir), media-type, properties}

    @classmethod
    def load(cls, zf: zipfile.ZipFile, name: str) -> Package:
        container = parse_xml(zf.read("META-INF/container.xml"))
        rootfiles = [el for el in container.iter(f"{{{_CONTAINER}}}rootfile") if el.get("full-path")]
        if not rootfiles:
            raise BookError(f"{name}: not a readable EPUB (META-INF/container.xml names no package file)")
        chosen = next((el for el in rootfiles if el.get("media-type") == "application/oebps-package+xml"), rootfiles[0])
        opf_path = posixpath.normpath(unquote(chosen.get("full-path", "")))
        root = parse_xml(zf.read(opf_path))
        opf_dir = posixpath.dirname(opf_path)
        manifest: dict[str, dict[str, str]] = {}
        for item in root.iter(f"{{{OPF}}}item"):
            ident, href = item.get("id"), item.get("href")
            if ident and href:
                manifest[ident] = {
                    "href": posixpath.normpath(unquote(href)),
                    "media-type": (item.get("media-type") or "").lower(),
                    "properties": item.get("properties") or "",
                }
        return cls(name, opf_dir, root, manifest)

    def dc(self, tag: str) -> list[etree._Element]:
        return list(self._meta_root().iter(f"{{{_DC}}}{tag}"))

    def metas(self) -> Iterator[etree._Element]:
        for el in self._meta_root().iter():
            if local(el.tag) == "meta":
                yield el

    def _meta_root(self) -> etree._Element:
        found = self.root.find(f"{{{OPF}}}metadata")
        return found if found is not None else self.root

    def zip_path(self, href: str) -> str:
        return posixpath.normpath(posixpath.join(self.opf_dir, href))

    # -- guide

    def guide_types(self) -> dict[str, set[str]]:
        """href (relative to the OPF dir, with its #fragment if any) -> guide types."""
        found: dict[str, set[str]] = defaultdict(set)
        for ref in self.root.iter(f"{{{OPF}}}reference"):
            href, kind = ref.get("href"), (ref.get("type") or "").lower()
            if href and kind:
                path, _, frag = href.partition("#")
                key = posixpath.normpath(unquote(path)) + ("#" + unquote(frag) if frag else "")
                found[key].add(kind)
        return found


def check_encryption(zf: zipfile.ZipFile, name: str) -> None:
    try:
        data = zf.read("META-INF/encryption.xml")
    except KeyError:
        return
    try:
        root = parse_xml(data)
    except etree.XMLSyntaxError:
        raise BookError(f"{name}: has an unreadable META-INF/encryption.xml; it may be DRM-protected") from None
    for el in root.iter():
        if local(el.tag) == "encryptionmethod" and el.get("Algorithm") not in _FONT_OBFUSCATION:
            raise BookError(f"{name}: is DRM-protected (encrypted); voxd reads only DRM-free EPUBs")
