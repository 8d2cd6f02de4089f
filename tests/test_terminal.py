"""What voxd prints of a book's own text: controls and bidirectional overrides escaped."""

from __future__ import annotations

import json

from voxd.terminal import json_shown, one_line, shown

HOSTILE = "Book\x1b]0;pwned\x07 \u202eeman\u202c\x9b2J"


def test_shown_escapes_escape_sequences_bel_c1_and_bidi_overrides() -> None:
    out = shown(HOSTILE)
    assert out == "Book\\x1b]0;pwned\\x07 \\u202eeman\\u202c\\x9b2J"
    assert all(ch.isprintable() for ch in out)
    assert shown("plain text, ünïcode, 吾輩") == "plain text, ünïcode, 吾輩"


def test_shown_keeps_line_breaks_only_when_asked() -> None:
    assert shown("a\nb\x1b") == "a\\x0ab\\x1b"
    assert shown("a\nb\x1b", lines=True) == "a\nb\\x1b"


def test_one_line_makes_breaks_spaces_and_escapes_the_rest() -> None:
    assert one_line("two\nlines\tand\x1b[2J\u202e x\u200b") == "two lines and\\x1b[2J\\u202e x"


def test_json_shown_is_the_same_json_without_raw_controls() -> None:
    data = {"title": HOSTILE, "text": "line\nbreak"}
    dumped = json_shown(json.dumps(data, ensure_ascii=False, indent=2))
    assert json.loads(dumped) == data
    assert all(ch.isprintable() or ch == "\n" for ch in dumped)
