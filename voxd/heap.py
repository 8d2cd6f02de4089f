"""Giving freed memory back to the system once a burst of work is over.

A burst of long requests leaves ``voxd serve`` holding what it no longer uses: the batch's
waves are freed, but glibc keeps the freed pages in its arenas (one per thread that allocated,
and large numpy buffers come from them too once its mmap threshold has grown), so an idle
server stayed at 885 MB after 64 requests at the text cap. ``malloc_trim`` hands the free
pages of every arena back. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)


#: mallopt's parameter for the size from which an allocation is a mapping of its own.
_M_MMAP_THRESHOLD = -3
#: Allocations this big or bigger (a second of audio is 88 KB) are mappings, unmapped when freed.
MMAP_THRESHOLD = 256 * 1024


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    return libc


_LIBC = _glibc()


def map_large_buffers() -> None:
    """Make every buffer of :data:`MMAP_THRESHOLD` or more (a wave, an encoded reply) a mapping of
    its own, given back the moment it is freed. glibc's threshold otherwise grows with the
    buffers freed, up to 32 MB, after which audio buffers stay in the arenas."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release() -> None:
    """Collect what only cycles keep alive, then give the free pages back to the system."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
