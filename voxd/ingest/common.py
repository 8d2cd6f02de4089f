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


# Navigation of web pages, left in EPUBs made from them: "Previous topic: ...", "Next »",
# "Back to top", "Home » Guide » Install". A paragraph that is only this is never read.
_NAV_WORDS = (
    r"(?:previous|next) (?:topic|page|chapter|section)|previous|prev|next|up|home|contents|table of contents"
    r"|index|top|back|zurück|weiter|vorherige[rs]?"
    r"|nächste[rs]?|inhalt|précédent|suivant|sommaire|anterior|siguiente|precedente|successivo|próximo"
    r"|índice|назад|далее|вперёд|содержание"
)
_NAV_MARKS = "«‹<←↑→>›»|·•/\\-–—"
_NAV_ONLY = re.compile(rf"(?:[{_NAV_MARKS}\s]*(?:{_NAV_WORDS})[{_NAV_MARKS}\s]*)+", re.IGNORECASE)
_NAV_LABEL = re.compile(
    rf"(?P<word>previous|prev|next|up|parent|vorherige[rs]?|nächste[rs]?|précédent|suivant|anterior|siguiente"
    rf"|precedente|successivo|próximo|назад|далее)(?P<what>\s+(?:topic|page|chapter|section|article|post|entry"
    rf"|thema|seite|kapitel|abschnitt|sujet|chapitre|tema|página|capítulo|capitolo|pagina))?\s*[:{_NAV_MARKS}]",
    re.IGNORECASE,
)
_NAV_BACK = re.compile(
    r"(?:back|return|go|jump|skip) to (?:the )?(?:top|contents|index|main content|navigation)(?: of (?:the )?page)?"
    r"|top of (?:the )?page|nach oben|zurück nach oben|seitenanfang|haut de page|retour en haut|volver arriba"
    r"|torna su|voltar ao topo|наверх",
    re.IGNORECASE,
)
_NAV_SEPARATOR = re.compile(r"\s[»›>/|]\s|\s?[»›]\s?")


def is_navigation(text: str, link_share: float = 0.0) -> bool:
    """Whether a paragraph is web navigation rather than the book: only navigation words
    and arrows ("« Previous | Next »"), a "Previous topic: ..." label, a "Back to top", or
    a breadcrumb trail ("Home » Guide » Install") that is mostly links."""
    text = " ".join(text.split())
    if not text or len(text) > 200:
        return False
    if _NAV_ONLY.fullmatch(text) or _NAV_BACK.fullmatch(text.strip(" .↑^"+"«»")):
        return True
    label = _NAV_LABEL.match(text)
    if label and len(text) <= 120 and (label.group("what") or link_share >= 0.3):
        return True  # "Previous topic: ...", or "Next: ..." with a link in it
    return link_share >= 0.5 and len(_NAV_SEPARATOR.findall(text)) >= 2
