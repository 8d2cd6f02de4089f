"""Text from a book, made safe to print on a terminal.

Titles, chapter names and a book's own text come from strangers' files, and what voxd
prints of them goes to a terminal: an ESC sequence there can set the window's title,
rewrite the screen or (on some terminals) answer back as if typed, BEL rings, and a
bidirectional override makes a line read backwards. Such characters are shown escaped
(``\\x1b``, ``\\u202e``), never sent raw, so a person sees that they are there.
``voxd plan``, ``render``, ``extract`` and ``jobs`` print through :func:`shown`.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["json_shown", "one_line", "shown"]

# Bidirectional formatting characters: marks, embeddings, overrides and isolates.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# C0 and C1 controls, DEL, and the bidirectional formatting characters.
_UNSAFE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}]")
_UNSAFE_KEEP_LINES = re.compile(f"[\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str, *, lines: bool = False) -> str:
    """``text`` with every control character and bidirectional override escaped; with
    ``lines`` a line break stays a line break (a multi-line message)."""
    return (_UNSAFE_KEEP_LINES if lines else _UNSAFE).sub(_escape, text)


def one_line(text: str) -> str:
    """``text`` on one line: line breaks, tabs and other spaces become single spaces,
    other controls and overrides are escaped, invisible format characters go."""
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85" or category in ("Zl", "Zp") or ch.isspace():
            out.append(" ")
        elif category in ("Cs", "Co", "Cn") or (category == "Cf" and ch not in _BIDI):
            continue
        else:
            out.append(ch)
    return shown(" ".join("".join(out).split()))


def json_shown(dumped: str) -> str:
    """JSON text (``json.dumps(..., ensure_ascii=False)``) with the characters a terminal
    would obey written as ``\\uXXXX`` escapes: still the same JSON to a parser."""
    return _UNSAFE_KEEP_LINES.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)
