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

It runs where books are read (:func:`voxd.ingest.read_book`), so the daemon
decodes covers inside the isolated reader, under its memory and time limits.
"""

from __future__ import annotations

import io
import logging
import warnings

from ..book import Cover

log = logging.getLogger(__name__)

#: Larger images are not decoded: 64 million pixels is 8000 x 8000, more than any print scan of a cover needs.
MAX_PIXELS = 64_000_000
#: The long side of the cover voxd embeds; players show covers at a few hundred pixels.
MAX_SIDE = 2048
#: A JPEG within MAX_SIDE is kept as it is up to this size; a larger one is encoded again.
MAX_KEPT_BYTES = 2 * 2**20
JPEG_QUALITY = 88


def sane_cover(cover: Cover, name: str) -> Cover | None:
    """``cover`` decoded and, unless it is already a JPEG of sane size, scaled and
    encoded as one; None (with a warning naming ``name``, the book) when it cannot be."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():  # past Pillow's own threshold; MAX_PIXELS decides here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(cover.data))
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
                    and len(cover.data) <= MAX_KEPT_BYTES):
                return Cover(data=cover.data, mime="image/jpeg")
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
