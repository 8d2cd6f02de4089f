"""Where finished work goes and what it is called.

A book's audiobook lands in ``outbox/<Author>/<Title>/<Title>.m4b``, the layout
Audiobookshelf expects; its source moves to ``inbox/done/`` or ``inbox/failed/``.
Every name voxd makes from a title or a file name passes through here, so every
one of them is one a file system and a player accept.

File systems count a name's bytes (255 of UTF-8), not its characters: a title of
120 Chinese or Japanese characters is 360 bytes, one of 120 accented letters 240,
and the temporary name the audiobook is written under is longer still. So names are
cut in bytes, between whole characters (:func:`voxd.files.fit_bytes`), with room
left for what voxd adds to them: " (2)", ".m4b", ".error.txt" (temporary names cut
their own copy of the name, see :mod:`voxd.files`).
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from ..book import Metadata
from ..files import NAME_MAX, fit_bytes

#: Longest name (UTF-8 bytes) voxd gives a file it moves into done/ or failed/: room is
#: left in NAME_MAX for " (2)" and ".error.txt".
MAX_MOVED_NAME = 200
#: Longest folder or file name voxd makes from a title or an author, in characters (what
#: a player shows) and in bytes (what the file system counts): "<Title> (12).m4b" fits.
MAX_TITLE_CHARS = 120
MAX_TITLE_BYTES = 200


def safe_name(text: str, fallback: str, limit: int = MAX_TITLE_CHARS, max_bytes: int = MAX_TITLE_BYTES) -> str:
    """A file or folder name every filesystem and player accepts, still readable: at most
    ``limit`` characters and ``max_bytes`` bytes of UTF-8, whatever the script."""
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]+', " ", text)
    text = re.sub(r"\s+", " ", text)
    while text != (stripped := text.strip(" .")):  # no leading dots (hidden, '..') or edge spaces
        text = stripped
    return fit_bytes(text[:limit], max_bytes).rstrip(" .") or fallback


def outbox_path(outbox: Path, metadata: Metadata) -> Path:
    """outbox/<Author>/<Title>/<Title>.m4b, the layout Audiobookshelf expects."""
    author = safe_name(metadata.author, "Unknown Author")
    title = safe_name(metadata.title, "Untitled")
    return outbox / author / title / f"{title}.m4b"


def fitting_name(name: str, limit: int = MAX_MOVED_NAME) -> str:
    """``name``, its stem shortened (with "…") when it is longer than ``limit`` bytes."""
    limit = min(limit, NAME_MAX)
    if len(os.fsencode(name)) <= limit:
        return name
    suffix = "".join(Path(name).suffixes[-2:])
    if len(suffix) > 16:
        suffix = Path(name).suffix[:16]
    stem = name[: len(name) - len(suffix)] if suffix else name
    return f"{fit_bytes(stem, limit - len(os.fsencode('…' + suffix)))}…{suffix}"
