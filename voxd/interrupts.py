"""Ctrl-C and SIGTERM as a flag that ``voxd render`` reads at its checkpoints.

A handler that raises (KeyboardInterrupt, SystemExit) raises wherever Python happens to be
when the signal arrives, and a render spends much of its time in C code that calls back into
Python: eSpeak NG's synthesis callback (ctypes), soundfile's virtual file callbacks (cffi)
while the cache writes FLAC. An exception raised in such a callback is printed and ignored by
ctypes and cffi, so the stop was lost and the render went on. Here the handler only records
the signal; the render's checkpoints (before each batch or request, while the book is read
and while it is assembled) raise :class:`~voxd.errors.Interrupted` from plain Python, where
it unwinds through the clean-up (the assembly's temp file dropped). A second signal raises at
once, for a render stuck where no checkpoint comes.
"""

from __future__ import annotations

import signal
from types import FrameType, TracebackType
from typing import Any

from .errors import Interrupted

#: The signals that stop a render: Ctrl-C, and ``kill``/``timeout``/a service manager.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """While entered, SIGINT and SIGTERM set :attr:`signum`; :meth:`check` raises for it."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._before: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            self._before[signum] = signal.signal(signum, self._received)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for signum, handler in self._before.items():
            signal.signal(signum, handler)
        self._before.clear()

    def _received(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # asked twice: the render may be stuck where no checkpoint comes
            raise Interrupted(signum)
        self.signum = signum

    def check(self) -> None:
        """The checkpoint: raise :class:`Interrupted` once a stop signal came."""
        if self.signum is not None:
            raise Interrupted(self.signum)
