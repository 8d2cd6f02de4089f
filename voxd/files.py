"""Small file operations with the promises the rest of voxd relies on.

Whatever another program may read (a cache entry, an audiobook, an error note, a
manifest) is written to a temporary name in the same directory and renamed into
place, so a reader sees the old file or the new one, never half of one. This
module holds the one way voxd does that:

* :func:`atomic_path` is the primitive: a temp path beside the target, renamed
  over it when the block succeeds, removed when it fails.
* :func:`atomic_write`, :func:`write_bytes_atomic` and :func:`write_text_atomic`
  are thin helpers on it for content at hand; they fsync before the rename.
* :func:`new_temp`, :func:`rename_into_place` and :func:`remove_temp` are the
  pieces it is made of, for a writer whose temp file outlives one block (the M4B
  writer streams into it for hours and renames it on close); :func:`temp_beside`
  is the primitive without the rename, for a caller that picks the final name
  only once the content is there. :func:`remove_temps_of` clears what a killed
  writer of one target left.

Temp names are ``.<name>.<random>.tmp``: unique (``mkstemp``), hidden from the
inbox watcher and media scanners, and found again at start-up by
:func:`remove_stale_temps`. File systems count a name's bytes, not its characters
(255 on ext4, btrfs, XFS, ZFS): a name that fits may not fit with that dressing, so
the ``<name>`` in a temp name is cut to :data:`TEMP_STEM_BYTES` (:func:`fit_bytes`).
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

#: The most bytes one file name may hold (NAME_MAX on Linux's file systems).
NAME_MAX = 255
#: The most bytes of the target's name a temp name carries: '.', this, '.', mkstemp's
#: eight random characters and '.tmp' stay well inside NAME_MAX.
TEMP_STEM_BYTES = 200

# Characters that belong to the one before them: a cut never separates them from it.
_JOINING_CATEGORIES = ("Mn", "Mc", "Me")
_ZWJ = "\u200d"


def fit_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, between whole characters.

    Never inside a character's bytes, and never between a letter and the accents or
    joiners that go with it (a cut "é" written as e + U+0301 would become "e").
    Undecodable bytes kept in a name (surrogate escapes) count as one byte each.
    """
    size = 0
    cut = len(text)
    for i, ch in enumerate(text):
        size += len(ch.encode("utf-8", "surrogateescape"))
        if size > limit:
            cut = i
            break
    else:
        return text
    while cut > 0 and (_joins(text[cut]) or text[cut - 1] == _ZWJ):
        cut -= 1
    return text[:cut]


def _joins(ch: str) -> bool:
    return unicodedata.category(ch) in _JOINING_CATEGORIES or ch == _ZWJ or "\ufe00" <= ch <= "\ufe0f"


def _temp_prefix(path: Path) -> str:
    return f".{fit_bytes(path.name, TEMP_STEM_BYTES)}."


def new_temp(path: Path, *, mode: int | None = None) -> Path:
    """A new, empty file beside ``path`` that no other writer has: '.<name>.<random>.tmp'.

    Same directory, so the rename into place is atomic. It is private (0600, as
    ``mkstemp`` makes it) unless ``mode`` is given; a rename keeps the mode, so a
    file other users must read (an audiobook for a media server) passes
    :func:`new_file_mode`.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    tmp = Path(name)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
    except BaseException:
        remove_temp(tmp)
        raise
    finally:
        os.close(fd)
    return tmp


def rename_into_place(tmp: Path, path: Path) -> None:
    """Put a finished temp file at ``path``, replacing what is there, in one step."""
    os.replace(tmp, path)


def remove_temp(tmp: Path) -> None:
    """Drop a temp file that will not be renamed; gone already is fine."""
    Path(tmp).unlink(missing_ok=True)


@contextmanager
def temp_beside(path: Path, *, mode: int | None = None) -> Iterator[Path]:
    """:func:`new_temp` for one block, removed if the block fails; the block renames it
    itself (:func:`rename_into_place`), to ``path`` or to a name it chose meanwhile."""
    tmp = new_temp(path, mode=mode)
    try:
        yield tmp
    except BaseException:
        remove_temp(tmp)
        raise


@contextmanager
def atomic_path(path: Path, *, mode: int | None = None) -> Iterator[Path]:
    """A temp path beside ``path`` to write, by any means, in the block; renamed over
    ``path`` when the block ends, removed if it (or the rename) fails.

    Readers of ``path`` see the old file or the complete new one. No fsync: the
    caller that needs the bytes on disk before the rename syncs them (see
    :func:`atomic_write`).
    """
    with temp_beside(path, mode=mode) as tmp:
        yield tmp
        rename_into_place(tmp, path)


@contextmanager
def atomic_write(path: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """:func:`atomic_path` with the temp file open for writing, flushed and fsynced
    before the rename: after a power cut the name holds the old content or the
    whole new one, never an empty file."""
    with atomic_path(path, mode=mode) as tmp, open(tmp, "wb") as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """``data`` at ``path`` (its folder made if missing), all of it or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, mode=mode) as fh:
        fh.write(data)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def new_file_mode() -> int:
    """0666 less the process umask: the mode open() would have given a new file."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no /proc: read it the racy way, and put it back
    os.umask(mask)
    return 0o666 & ~mask


def unique_path(folder: Path, name: str) -> Path:
    """folder/name, or folder/'stem (2).ext' and so on when that name is taken (the stem
    cut, if need be, so that the longer name still fits in :data:`NAME_MAX` bytes)."""
    candidate = folder / name
    if not candidate.exists():
        return candidate
    stem, dot, ext = name.partition(".")
    for n in range(2, 10_000):
        tail = f" ({n}){dot}{ext}"
        candidate = folder / f"{fit_bytes(stem, NAME_MAX - len(tail.encode('utf-8', 'surrogateescape')))}{tail}"
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"no free name for {name} in {folder}")


def move_into(path: Path, folder: Path, name: str | None = None) -> Path:
    """Move a file into folder without overwriting anything there; returns the new path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = unique_path(folder, name or path.name)
    shutil.move(str(path), str(target))
    return target


def remove_stale_temps(*roots: Path) -> list[Path]:
    """Delete our temporary files ('.name.*.tmp') left by a process that was killed mid-write.

    Only called at start-up, under the daemon's lock, when no writer of ours is alive.
    """
    removed = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in root.rglob(".*.tmp"):
            if path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """The file's content identity (a job is its source's sha256)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def remove_temps_of(path: Path) -> list[Path]:
    """Delete the temp files (:func:`new_temp`) for ``path`` that a killed writer left."""
    removed = []
    for tmp in path.parent.glob(f"{glob.escape(_temp_prefix(path))}*.tmp"):
        remove_temp(tmp)
        removed.append(tmp)
    return removed
