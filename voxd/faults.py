"""Named crash points, so the crash tests can kill voxd at exact places.

``VOXD_CRASH_AT=name[:n]`` makes the process SIGKILL itself the n-th time (default
1st) it passes ``crash_point(name)``: a real kill -9, at a place chosen by the
test rather than by timing luck. Unset (always, outside tests), a crash point is
one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_name, _, _nth = os.environ.get("VOXD_CRASH_AT", "").partition(":")
_TARGET = (_name, int(_nth or 1)) if _name else None
_seen: Counter[str] = Counter()
_also: list[int] = []  # processes that die with this one at a crash point

POINTS = (
    "ingest",            # the book was read
    "render.batch",      # a batch is in the cache
    "assemble.chunk",    # a chunk went into the encoder
    "assemble.closed",   # the .m4b was renamed into the outbox
    "publish.finished",  # the job is done in the store, its notification in the outbox
    "publish.moved",     # the source moved to inbox/done/
    "notify.delivered",  # a URL has the message, not yet marked sent
)


def crash_point(name: str) -> None:
    if _TARGET is None or _TARGET[0] != name:
        return
    _seen[name] += 1
    if _seen[name] == _TARGET[1]:
        for pid in _also:
            os.kill(pid, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


def kill_also(pid: int) -> None:
    """A crash point here kills ``pid`` too: the assembler process takes the daemon with it,
    as a power cut would take both."""
    _also.append(pid)
