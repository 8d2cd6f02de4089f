"""A book's title, authors, language, description, publisher, date and series, and its
cover image, from the OPF: EPUB 3 refinements first, then EPUB 2 and calibre's
conventions, so that books from either generation of tools come out alike.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from urllib.parse import unquote

from voxd.book import Cover, Metadata, image_mime
from voxd.ingest.cover import SVG_MIME, looks_like_svg
from voxd.ingest.epub.package import OPF, ZIP_ERRORS, Package
from voxd.ingest.epub.safexml import local, parse_document, plain_text
from voxd.ingest.epub.text import clean, html_fragment_text

_XLINK = "http://www.w3.org/1999/xlink"


def read_metadata(package: Package, *, fallback_title: str) -> Metadata:
    refines: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    named: dict[str, str] = {}
    collections: list[tuple[str | None, str]] = []
    for m in package.metas():
        prop, text = m.get("property"), clean(plain_text(m))
        if prop and m.get("refines"):
            refines[m.get("refines", "").lstrip("#")][prop].append(text)
        elif prop == "belongs-to-collection" and text:
            collections.append((m.get("id"), text))
        elif m.get("name") and m.get("content") is not None:
            named.setdefault(m.get("name", ""), clean(m.get("content", "")))

    title = _title(package, refines) or fallback_title
    authors = _authors(package, refines)
    language = _first(package, "language")
    description = _description(package)
    publisher = _first(package, "publisher")
    date = _date(package)
    series, series_index = _series(named, collections, refines)
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


def _first(package: Package, tag: str) -> str | None:
    for el in package.dc(tag):
        text = clean(plain_text(el))
        if text:
            return text
    return None


def _title(package: Package, refines: dict[str, dict[str, list[str]]]) -> str | None:
    titles = [(el.get("id"), clean(plain_text(el))) for el in package.dc("title")]
    titles = [(i, t) for i, t in titles if t]
    for ident, text in titles:
        if ident and "main" in refines.get(ident, {}).get("title-type", []):
            return text
    return titles[0][1] if titles else None


def _authors(package: Package, refines: dict[str, dict[str, list[str]]]) -> tuple[str, ...]:
    everyone: list[str] = []
    authors: list[str] = []
    for el in package.dc("creator"):
        text = clean(plain_text(el))
        if not text or text in everyone:
            continue
        everyone.append(text)
        roles = {r.lower() for r in refines.get(el.get("id") or "", {}).get("role", [])}
        epub2_role = el.get(f"{{{OPF}}}role") or el.get("role")
        if epub2_role:
            roles.add(epub2_role.lower())
        if not roles or "aut" in roles:
            authors.append(text)
    return tuple(authors or everyone)


def _description(package: Package) -> str | None:
    for el in package.dc("description"):
        text = plain_text(el).strip()
        if not text:
            continue
        text = html_fragment_text(text) if "<" in text else clean(text)
        if text:
            return text
    return None


def _date(package: Package) -> str | None:
    dates = []
    for el in package.dc("date"):
        event = el.get(f"{{{OPF}}}event") or el.get("event") or ""
        text = clean(plain_text(el))
        if text:
            dates.append((event.lower(), text))
    for event, text in dates:
        if event == "publication":
            return text
    return dates[0][1] if dates else None


def _series(
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


def read_cover(package: Package, zf: zipfile.ZipFile) -> Cover | None:
    """The first cover candidate that is a JPEG, a PNG or an SVG (Standard Ebooks' ``cover.svg``);
    failing those, the first image of another kind (GIF, WebP...), which
    :func:`voxd.ingest.cover.sane_cover` converts if it can and warns about if it cannot: a
    book that names a cover never loses it without a word."""
    other: Cover | None = None
    for href in _cover_candidates(package, zf):
        try:
            data = zf.read(package.zip_path(href))
        except (KeyError, ValueError, *ZIP_ERRORS):
            continue  # a missing or damaged image is no cover, not a broken book
        mime = image_mime(data) or (SVG_MIME if looks_like_svg(data) else None)
        if mime:
            return Cover(data=data, mime=mime)
        if other is None and data:
            other = Cover(data=data, mime="application/octet-stream")
    return other


def _cover_candidates(package: Package, zf: zipfile.ZipFile) -> Iterator[str]:
    images = {i: it for i, it in package.manifest.items() if it["media-type"].startswith("image/")}
    for item in images.values():  # EPUB 3
        if "cover-image" in item["properties"].split():
            yield item["href"]
    for m in package.metas():  # EPUB 2: <meta name="cover" content="item-id"/>
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
    yield from _guide_cover_images(package, zf)


def _guide_cover_images(package: Package, zf: zipfile.ZipFile) -> Iterator[str]:
    for ref in package.root.iter(f"{{{OPF}}}reference"):
        if (ref.get("type") or "").lower() != "cover" or not ref.get("href"):
            continue
        page = posixpath.normpath(unquote(ref.get("href", "").partition("#")[0]))
        try:
            root, _ = parse_document(zf.read(package.zip_path(page)))
        except (KeyError, ValueError, *ZIP_ERRORS):
            continue
        if root is None:
            continue
        for el in root.iter():
            tag = local(el.tag)
            src = el.get("src") if tag == "img" else None
            if tag == "image":
                src = el.get(f"{{{_XLINK}}}href") or el.get("href")
            if src and "://" not in src:
                yield posixpath.normpath(posixpath.join(posixpath.dirname(page), unquote(src)))


def _series_index(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        return value or None
    return str(int(number)) if number.is_integer() else value
