"""Importing qwen_tts without what it prints on the way in.

qwen_tts imports the ``sox`` package, which runs ``sox -h`` through a shell at import
time (``/bin/sh: sox: not found`` and a six-line warning where SoX is not installed),
and a module of its 25 Hz tokenizer prints a flash-attn banner to stdout. Neither
SoX nor flash-attn is used by the 12 Hz checkpoints voxd loads, and a person reading
``voxd render`` or the journal should not have to wonder about them. Whatever else
the import prints is passed on, and qwen_tts's own INFO lines stay out of voxd's log.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from typing import Any

_BANNER = "flash-attn is not installed"
#: The library's own decode loop grows every batch's cache step by step, in shapes that
#: vary from batch to batch, and fragments CUDA's caching allocator; expandable segments
#: do not fragment. voxd's loop allocates one static cache per batch shape and does not
#: need them: on an H200 they cost it 24 % at the first batch size measured (66x against
#: 87x real time at batch 128) and nothing after (150x against 152x at 384).
ALLOC_CONF = "expandable_segments:True"


def cuda_allocator_defaults() -> None:
    """For qwen_tts's loop, before torch first allocates on a GPU (the setting is read
    then), unless the user chose their own."""
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", ALLOC_CONF)


def import_qwen_tts() -> Any:
    """The ``qwen_tts`` module, imported once, quietly."""
    if "qwen_tts" in sys.modules:
        return sys.modules["qwen_tts"]
    logging.getLogger("sox").addFilter(_no_sox_warning)  # a filter: sox sets its logger's level itself
    logging.getLogger("qwen_tts").setLevel(logging.WARNING)
    if "sox" not in sys.modules:
        _import_sox_quietly()
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        import qwen_tts
    rest = "\n".join(line for line in captured.getvalue().splitlines()
                     if line.strip() and _BANNER not in line and set(line.strip()) != {"*"})
    if rest:
        print(rest)
    return qwen_tts


def _no_sox_warning(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("SoX could not be found")


def _import_sox_quietly() -> None:
    """``sox`` asks the shell for ``sox -h``; ask it with the shell's complaint sent nowhere."""
    real = os.popen

    def popen(cmd: str, *args: Any, **kwargs: Any) -> Any:
        return real(f"{cmd} 2>/dev/null" if cmd == "sox -h" else cmd, *args, **kwargs)

    os.popen = popen
    try:
        import sox  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:  # qwen_tts will say what is missing
        pass
    finally:
        os.popen = real
