"""Look at a zip's directory before anything unpacks it.

EPUBs are zip files from strangers. ebooklib reads every member into memory with no
size or ratio limit, so :func:`check_zip` inspects ``infolist()`` first and refuses
archives that are corrupt, huge, zip bombs or that name paths outside the archive.
Nothing is ever extracted to disk.

Declared sizes can be trusted for this purpose: :mod:`zipfile` stops decompressing a
member at its declared ``file_size`` and then fails the CRC check, so a member cannot
expand beyond what the directory says.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from voxd.errors import BookError

MiB = 1024 * 1024

#: Members smaller than this are not checked for their compression ratio: tiny,
#: very repetitive files compress well and cannot exhaust memory anyway.
RATIO_MIN_BYTES = 1 * MiB

_ENCRYPTED_FLAG = 0x1
#: Compression methods zipfile can unpack: stored, deflate, bzip2, lzma.
_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_zip(
    path: Path,
    *,
    max_total_bytes: int = 512 * MiB,
    max_entries: int = 10_000,
    max_ratio: float = 100,
) -> None:
    """Raise :class:`BookError` unless ``path`` is a sane zip archive.

    Refuses: a file that is not a zip or is truncated, more than ``max_entries``
    members, more than ``max_total_bytes`` once unpacked, a member of at least
    :data:`RATIO_MIN_BYTES` that expands more than ``max_ratio`` times (zip bomb),
    a member whose name is absolute or contains ``..`` (path traversal), and
    password-protected members.
    """
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except FileNotFoundError:
        raise BookError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise BookError(f"{name}: is a directory, not a file") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise BookError(f"{name}: not a valid EPUB (zip) file ({_why_not_zip(path, exc)})") from None
    except NotImplementedError as exc:  # "zip file version 19.3": a damaged or exotic directory
        raise BookError(f"{name}: not a valid EPUB (zip) file (unsupported zip feature: {exc})") from None
    except OSError as exc:
        raise BookError(f"{name}: cannot read the file ({exc.strerror or exc})") from None

    if not infos:
        raise BookError(f"{name}: not a valid EPUB (zip) file (the archive is empty)")
    if len(infos) > max_entries:
        raise BookError(f"{name}: the zip holds {len(infos)} files, more than the limit of {max_entries}")

    total = 0
    for info in infos:
        member = ascii(info.filename)
        if _unsafe_name(info.filename):
            raise BookError(f"{name}: member {member} has an unsafe path (absolute or '..'); refusing the file")
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise BookError(f"{name}: member {member} is password-protected; voxd reads only unencrypted EPUBs")
        if info.compress_type not in _METHODS:
            raise BookError(
                f"{name}: not a valid EPUB (zip) file (member {member} uses unknown compression method "
                f"{info.compress_type})"
            )
        if info.header_offset + info.compress_size > size:
            raise BookError(f"{name}: not a valid EPUB (zip) file (member {member} is truncated)")
        total += info.file_size
        if total > max_total_bytes:
            raise BookError(
                f"{name}: unpacks to more than {_size(max_total_bytes)} (the limit); refusing a possible zip bomb"
            )
        if info.file_size >= RATIO_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise BookError(
                f"{name}: member {member} expands {ratio:.0f} times ({_size(info.file_size)}), "
                f"more than the limit of {max_ratio:g}; refusing a likely zip bomb"
            )


def _why_not_zip(path: Path, exc: Exception) -> str:
    """Say it in words where we can: an empty file, or a zip cut short (its directory is at the end)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError:
        head = b"?"
    if not head:
        return "the file is empty"
    if head == b"PK\x03\x04":
        return "the file is cut short or damaged: the zip directory at its end is missing or broken"
    return str(exc) or type(exc).__name__


def _unsafe_name(filename: str) -> bool:
    if not filename or "\x00" in filename:
        return True
    norm = filename.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        return True
    return ".." in norm.split("/")


def _size(n: int) -> str:
    if n >= MiB:
        return f"{n / MiB:.0f} MiB"
    return f"{n} bytes"
