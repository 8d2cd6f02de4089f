"""A book's cover, decoded under a pixel limit and made a JPEG every player can show.

Covers come out of strangers' files, and an image's size on disk says nothing of
its size decoded: a PNG of a few hundred kilobytes can hold 30000 x 30000 pixels,
2.7 GB for every player, phone and media server that shows it. So a cover is never
copied as found: its header is read first and an image of more than
:data:`MAX_PIXELS` is not decoded at all; one that decodes is scaled to at most
:data:`MAX_SIDE` pixels on its long side and encoded as a JPEG (what the m4b
embeds and ``cover.jpg`` holds). A JPEG that is already of that size is kept as
it is, so a cover read again (``voxd extract``, then the manifest) loses nothing.
A cover that cannot be decoded is left out with a warning: never a reason to fail
a book.

An SVG cover (Standard Ebooks ship ``cover.svg``: the painting embedded as a data URI,
the title drawn over it) is rasterised with PyMuPDF at :data:`MAX_SIDE` on its long side,
under the same limits: an embedded image of more than :data:`MAX_PIXELS` is not decoded,
and an SVG that names any file or URL outside itself is not rendered at all (it could make
the reader open a file of the machine's). MuPDF ignores ``<style>`` sheets, so their
simple rules (``path {fill: #fff}``, ``.title-box {...}``) are set on the elements first.

It runs where books are read (:func:`voxd.ingest.read_book`), so the daemon
decodes covers inside the isolated reader, under its memory and time limits.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import re
import warnings
from typing import TYPE_CHECKING

from ..book import Cover

if TYPE_CHECKING:
    from lxml import etree

log = logging.getLogger(__name__)

#: Larger images are not decoded: 64 million pixels is 8000 x 8000, more than any print scan of a cover needs.
MAX_PIXELS = 64_000_000
#: The long side of the cover voxd embeds; players show covers at a few hundred pixels.
MAX_SIDE = 2048
#: A JPEG within MAX_SIDE is kept as it is up to this size; a larger one is encoded again.
MAX_KEPT_BYTES = 2 * 2**20
JPEG_QUALITY = 88
SVG_MIME = "image/svg+xml"


_SVG_START = re.compile(rb"\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*|<!DOCTYPE[^>\[]*>\s*)*<svg[\s>]",
                        re.IGNORECASE | re.DOTALL)


def looks_like_svg(data: bytes) -> bool:
    """An SVG document, by its first element (after any XML declaration, comments, doctype)."""
    return _SVG_START.match(data[:4096]) is not None


def sane_cover(cover: Cover, name: str) -> Cover | None:
    """``cover`` decoded and, unless it is already a JPEG of sane size, scaled and
    encoded as one; None (with a warning naming ``name``, the book) when it cannot be."""
    from PIL import Image, ImageOps

    data = cover.data
    if cover.mime == SVG_MIME or looks_like_svg(data):
        raster = _rasterise_svg(data, name)
        if raster is None:
            return None
        data = raster
    try:
        with warnings.catch_warnings():  # past Pillow's own threshold; MAX_PIXELS decides here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            width, height = image.size
            if width < 1 or height < 1 or width * height > MAX_PIXELS:
                log.warning("%s: the cover image is %d x %d pixels, more than voxd decodes (%d million); "
                            "the audiobook has no cover", name, width, height, MAX_PIXELS // 1_000_000)
                return None
            kind = image.format
            if kind == "JPEG" and image.mode in ("RGB", "L"):
                image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # a large JPEG decodes at 1/2, 1/4 or 1/8 scale
            image.load()
            if (kind == "JPEG" and image.mode in ("RGB", "L") and max(width, height) <= MAX_SIDE
                    and len(data) <= MAX_KEPT_BYTES):
                return Cover(data=data, mime="image/jpeg")
            picture = ImageOps.exif_transpose(image)
            if picture.mode in ("RGBA", "LA", "P", "PA"):  # transparency over white, as a page shows it
                rgba = picture.convert("RGBA")
                picture = Image.new("RGB", rgba.size, "white")
                picture.paste(rgba, mask=rgba.getchannel("A"))
            else:
                picture = picture.convert("RGB")
            picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            picture.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    except Image.DecompressionBombError as exc:  # Pillow's own limit, far past MAX_PIXELS
        log.warning("%s: the cover image has more pixels than voxd decodes (%s); the audiobook has no cover",
                    name, exc)
        return None
    except (OSError, ValueError, SyntaxError, MemoryError) as exc:
        log.warning("%s: the cover image cannot be decoded (%s: %s); the audiobook has no cover",
                    name, type(exc).__name__, exc)
        return None
    return Cover(data=out.getvalue(), mime="image/jpeg")


_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][\w.-]*$")
_CSS_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_SIMPLE_SELECTOR = re.compile(r"^(?:[A-Za-z][\w-]*|\.[A-Za-z_][\w-]*|\*)$")
_DATA_URI = re.compile(r"^data:([\w/+.-]*)(;[^,]*)?,", re.IGNORECASE)


def _rasterise_svg(data: bytes, name: str) -> bytes | None:
    """The SVG as a PNG of at most MAX_SIDE on its long side; None, with a warning, when it
    cannot be (not SVG, a reference outside itself, an embedded image past MAX_PIXELS)."""
    from lxml import etree

    from .epub.safexml import local, parse_xml

    try:
        root = parse_xml(data)
    except (etree.XMLSyntaxError, ValueError) as exc:
        log.warning("%s: the cover is an SVG that cannot be read (%s); the audiobook has no cover", name, exc)
        return None
    if local(root.tag) != "svg":
        log.warning("%s: the cover is no SVG image; the audiobook has no cover", name)
        return None
    for el in root.iter():
        # every href, in any namespace: MuPDF reads "xlink:href" by its name, whatever the prefix is bound to
        for key, value in el.attrib.items():
            if etree.QName(key).localname != "href" and not str(key).endswith(":href"):
                continue
            ref = (value or "").strip()
            if not ref or ref.startswith("#"):
                continue
            problem = _embedded_problem(ref)
            if problem:
                log.warning("%s: the cover is an SVG %s; the audiobook has no cover", name, problem)
                return None
    try:
        _inline_styles(root)
        import pymupdf

        with pymupdf.open(stream=etree.tostring(root), filetype="svg") as doc:
            page = doc[0]
            long_side = max(page.rect.width, page.rect.height)
            if not long_side > 0:
                raise ValueError("it has no size")
            zoom = MAX_SIDE / long_side
            return bytes(page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False).tobytes("png"))
    except (RuntimeError, ValueError, MemoryError) as exc:  # pymupdf's errors are RuntimeErrors
        log.warning("%s: the cover is an SVG that cannot be drawn (%s); the audiobook has no cover", name, exc)
        return None


def _embedded_problem(ref: str) -> str | None:
    """Why an SVG's reference may not be followed (None: an embedded image within the limits)."""
    from PIL import Image

    found = _DATA_URI.match(ref)
    if not found:
        return f"that refers to {ref[:80]!r} outside itself"
    if not found.group(1).lower().startswith("image/"):
        return None  # not a picture (a font, say): nothing to decode here
    try:
        raw = base64.b64decode(ref[found.end():], validate=False) if "base64" in (found.group(2) or "") else b""
        if not raw:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as image:
                width, height = image.size
    except (OSError, ValueError, binascii.Error, SyntaxError, Image.DecompressionBombError):
        return "whose embedded image cannot be decoded"
    if width * height > MAX_PIXELS:
        return (f"whose embedded image is {width} x {height} pixels, more than voxd decodes "
                f"({MAX_PIXELS // 1_000_000} million)")
    return None


def _inline_styles(root: etree._Element) -> None:
    """``<style>`` rules with a plain selector (``path``, ``.title-box``, ``*``) set on the elements
    as attributes, in the cascade's order (element, then class, then the element's own
    ``style``), since MuPDF draws presentation attributes but reads no style sheet."""
    from .epub.safexml import local

    rules: list[tuple[int, str, list[tuple[str, str]]]] = []
    for el in root.iter():
        if local(el.tag) == "style" and el.text:
            css = re.sub(r"/\*.*?\*/", "", el.text, flags=re.DOTALL)
            for selectors, body in _CSS_RULE.findall(css):
                declarations = [(k.strip(), v.strip()) for k, _, v in
                                (d.partition(":") for d in body.split(";")) if k.strip() and v.strip()]
                for selector in (x.strip() for x in selectors.split(",")):
                    if _SIMPLE_SELECTOR.match(selector):
                        rules.append((1 if selector.startswith(".") else 0, selector, declarations))
    if not rules:
        return
    rules.sort(key=lambda rule: rule[0])  # stable: the sheet's order within each specificity
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        tag, classes = local(el.tag), (el.get("class") or "").split()
        for _, selector, declarations in rules:
            if selector in ("*", tag) or (selector.startswith(".") and selector[1:] in classes):
                for key, value in declarations:
                    _set(el, key, value)
        own = el.get("style")
        if own:
            for key, _, value in (d.partition(":") for d in own.split(";")):
                if key.strip() and value.strip():
                    _set(el, key.strip(), value.strip())


def _set(el: etree._Element, key: str, value: str) -> None:
    """A CSS declaration as an attribute, where its name can be one (not ``-webkit-...``, ``--x``
    or ``a b``: MuPDF would not read those anyway)."""
    if _ATTRIBUTE_NAME.match(key):
        el.set(key, value)
