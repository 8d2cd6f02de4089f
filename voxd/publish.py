"""Where finished work goes and what it is called.

A book's audiobook lands in ``outbox/<Author>/<Title>/<Title>.m4b``, the layout
Audiobookshelf expects; its source moves to ``inbox/done/`` or ``inbox/failed/``.
Every name voxd makes from a title or a file name passes through here, so every
one of them is one a file system and a player accept.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from .book import Metadata

#: Longest name (UTF-8 bytes) voxd gives a file it moves into done/ or failed/: 255 is the
#: usual limit, and room is left for " (2)", ".error.txt" and a temporary name's dressing.
MAX_MOVED_NAME = 200


def safe_name(text: str, fallback: str, limit: int = 120) -> str:
    """A file or folder name every filesystem and player accepts, still readable."""
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r'[\x00-\x1f/\\:*?"<>|]+', " ", text)
    text = re.sub(r"\s+", " ", text)
    while text != (stripped := text.strip(" .")):  # no leading dots (hidden, '..') or edge spaces
        text = stripped
    return text[:limit].rstrip(" .") or fallback


def outbox_path(outbox: Path, metadata: Metadata) -> Path:
    """outbox/<Author>/<Title>/<Title>.m4b, the layout Audiobookshelf expects."""
    author = safe_name(metadata.author, "Unknown Author")
    title = safe_name(metadata.title, "Untitled")
    return outbox / author / title / f"{title}.m4b"


def fitting_name(name: str, limit: int = MAX_MOVED_NAME) -> str:
    """``name``, its stem shortened (with "…") when it is longer than ``limit`` bytes."""
    if len(os.fsencode(name)) <= limit:
        return name
    suffix = "".join(Path(name).suffixes[-2:])
    if len(suffix) > 16:
        suffix = Path(name).suffix[:16]
    stem = name[: len(name) - len(suffix)] if suffix else name
    while stem and len(os.fsencode(f"{stem}…{suffix}")) > limit:
        stem = stem[:-1]
    return f"{stem}…{suffix}"
