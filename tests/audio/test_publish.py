"""Names voxd makes for what it publishes: cut in bytes, as file systems count, whatever the script."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from voxd.audio.publish import MAX_MOVED_NAME, fitting_name, outbox_path, safe_name
from voxd.book import Metadata

NAME_MAX = 255

TITLES = {
    "japanese": "\u543e\u8f29\u306f\u732b\u3067\u3042\u308b" * 20,  # 140 characters, 3 bytes each
    "chinese": "\u7ea2\u697c\u68a6" * 50,
    "korean": "\ud55c\uad6d\uc5b4 \ucc45" * 30,
    "accented": "\u00c9l\u00e9gie \u00e0 l\u2019\u00e9t\u00e9 " * 12,
}


@pytest.mark.parametrize("script", sorted(TITLES))
def test_outbox_names_fit_with_room_for_what_voxd_adds(script: str, tmp_path: Path) -> None:
    path = outbox_path(tmp_path, Metadata(title=TITLES[script], authors=(TITLES[script],)))
    for part in (path.parent.parent.name, path.parent.name, path.name):
        assert 0 < len(os.fsencode(part)) <= NAME_MAX - 20  # " (12)" and the like still fit
    assert path.name == path.parent.name + ".m4b"
    assert TITLES[script].startswith(path.parent.name.rstrip(" ."))
    path.parent.mkdir(parents=True)  # the file system agrees
    path.write_bytes(b"")


def test_safe_name_keeps_short_names_and_cuts_on_a_character() -> None:
    assert safe_name("Emma", "X") == "Emma"
    cut = safe_name("\u543e" * 120, "X")
    assert cut == "\u543e" * 66  # 198 bytes, not 120 characters (360 bytes)
    assert safe_name("line\nbreak\tand\x7fdelete", "X") == "line break and delete"


def test_fitting_name_cuts_a_long_name_on_a_character() -> None:
    name = "\u00e9" * 125 + ".epub"
    fitted = fitting_name(name)
    assert fitted.endswith("\u2026.epub") and len(os.fsencode(fitted)) <= MAX_MOVED_NAME
    assert fitted.encode().decode() == fitted
