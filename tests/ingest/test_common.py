"""voxd.ingest.common: the text rules both book readers apply."""

from __future__ import annotations

import pytest
from lxml import etree

from voxd.ingest.common import SOFT_HYPHEN, check_toc_depth, describe, norm, strip_invisible
from voxd.ingest.matter import is_matter_title


def test_norm_folds_case_and_punctuation() -> None:
    assert norm("  Chapter 3: The STORM! ") == "chapter 3 the storm"
    assert norm("--") == ""


@pytest.mark.parametrize(
    "title",
    ["Contents", "Table of Contents", "TOC", "Copyright Page", "Imprint", "Colophon", "Uncopyright", "Index",
     "Title page", "Half-title", "Cover", "Back cover", "Dedication", "Landmarks", "Bibliography",
     "List of Figures", "Also by Jane Doe", "Other books by Jane Doe"],
)  # fmt: skip
def test_matter_titles(title: str) -> None:
    assert is_matter_title(title)


@pytest.mark.parametrize("title", ["Chapter 1", "Preface", "Introduction", "The Index of Souls", "Covered"])
def test_chapter_titles_are_not_matter(title: str) -> None:
    assert not is_matter_title(title)


def test_strip_invisible_keeps_soft_hyphens() -> None:
    text = "\ufeffin\u200bvis\u2060i\u180eble\ufffc ex" + SOFT_HYPHEN + "ample"
    assert strip_invisible(text) == "invisible ex\u00adample"


def test_describe_prefers_the_parsers_message() -> None:
    try:
        etree.fromstring(b"<a>")
    except etree.XMLSyntaxError as exc:
        assert describe(exc) == exc.msg and "<string>" not in describe(exc)
    assert describe(RuntimeError("  broken xref  ")) == "broken xref"
    assert describe(KeyError()) == "KeyError"


def test_toc_depth_starts_at_one() -> None:
    check_toc_depth(None)
    check_toc_depth(1)
    with pytest.raises(ValueError, match="toc_depth must be 1 or more, not 0"):
        check_toc_depth(0)
