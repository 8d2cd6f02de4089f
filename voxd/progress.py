"""What ``voxd render`` shows while it works: a bar on stderr, with the log lines above it.

tqdm is imported when a bar is drawn, not before: ``voxd --help`` and the daemon never need it.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tqdm import tqdm


class ProgressBar:
    """A tqdm bar over a book's chunks, then over the chapters of its .m4b; silent when not wanted."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: tqdm[Any] | None = None

    def start(self, title: str, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=title, unit="chunk", file=sys.stderr, dynamic_ncols=True)

    def update(self, progress) -> None:
        if self._bar is None:
            return
        self._bar.n = progress.chunks_done
        speed = progress.speed
        self._bar.set_postfix_str(
            f"{progress.audio_seconds / 60:.1f} min audio" + (f", {speed:.1f}x" if speed else ""), refresh=False
        )
        self._bar.refresh()

    def logs_above(self) -> contextlib.AbstractContextManager[object]:
        """Log lines printed above the bar, not into it (a warning mid-render would otherwise
        be glued to the bar's line and the bar drawn again after it)."""
        if not self.enabled:
            return contextlib.nullcontext()
        from tqdm.contrib.logging import logging_redirect_tqdm

        return logging_redirect_tqdm()

    def assembling(self, done: int, total: int) -> None:
        """After the last chunk: the chapters still being encoded, not a bar stuck at 100 %."""
        if self._bar is not None:
            self._bar.set_postfix_str(f"writing the .m4b: {done} of {total} chapters")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
