"""Small file operations with the promises the rest of voxd relies on.

Whatever another program may read (an error note, a manifest) is written to a
temporary name in the same directory and renamed into place, so a reader sees
the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def unique_path(folder: Path, name: str) -> Path:
    """folder/name, or folder/'stem (2).ext' and so on when that name is taken."""
    candidate = folder / name
    if not candidate.exists():
        return candidate
    stem, dot, ext = name.partition(".")
    for n in range(2, 10_000):
        candidate = folder / f"{stem} ({n}){dot}{ext}"
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
