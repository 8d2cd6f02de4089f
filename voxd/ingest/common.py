"""Text rules the EPUB and PDF readers share, kept in one place so they cannot drift apart.

A book's titles, its invisible characters and a parser's error message look the same
whichever format they came in; the readers differ only in where they find them. Front and
back matter has its own module, :mod:`voxd.ingest.matter`.
"""

from __future__ import annotations

import re

#: Never spoken and never a word break: zero-width spaces and joiners, direction marks,
#: the word joiner and invisible operators, byte order marks, the Mongolian vowel
#: separator and the object replacement character. Soft hyphens are not among them: a
#: reader joins lines at them first, then drops them with :data:`SOFT_HYPHEN`.
INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\ufffc"
SOFT_HYPHEN = "\u00ad"
_INVISIBLE_TABLE = dict.fromkeys(map(ord, INVISIBLE), None)


def norm(text: str) -> str:
    """``text`` for comparing titles: case-folded words, punctuation gone."""
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


def strip_invisible(text: str) -> str:
    """``text`` without the :data:`INVISIBLE` characters (soft hyphens stay)."""
    return text.translate(_INVISIBLE_TABLE)


def describe(exc: BaseException) -> str:
    """A parser's error in words: its ``msg`` where it has one (lxml's and json's, without
    the source they name), else what it says, else its type."""
    msg = getattr(exc, "msg", None)
    text = msg if isinstance(msg, str) and msg else str(exc)
    return text.strip() or type(exc).__name__


def check_toc_depth(toc_depth: int | None) -> None:
    if toc_depth is not None and toc_depth < 1:
        raise ValueError(f"toc_depth must be 1 or more, not {toc_depth}")
