"""Chapter titles as they should be spoken: roman numerals as words, shouting as title case.

A title is read aloud before its chapter, so "CHAPTER XIV. THE RETURN" must come out
as "Chapter Fourteen. The Return", not a letter-by-letter X-I-V in a raised voice;
and a section numbered in roman numerals is said as a number.
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")

_ONES = [
    "Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten", "Eleven", "Twelve",
    "Thirteen", "Fourteen", "Fifteen", "Sixteen", "Seventeen", "Eighteen", "Nineteen",
]
_TENS = ["_", "_", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety"]


def number_to_words(n: int) -> str:
    """English words in title case for 0 <= n < 1,000,000: 104 -> "One Hundred Four"."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number_to_words handles 0 to 999999, not {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} Hundred" + (f" {number_to_words(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    return f"{number_to_words(thousands)} Thousand" + (f" {number_to_words(rest)}" if rest else "")


_ROMAN_STRICT = re.compile(r"M{0,3}(CM|CD|D?C{0,3})(XC|XL|L?X{0,3})(IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
# "Chapter XII", "PART iv: ...", "Book I - ...": any well-formed numeral (1-3999).
_KEYWORD_NUMERAL = re.compile(
    r"(?P<kw>chapter|part|book)\s+(?P<num>[ivxlcdm]+)(?=$|[\s:.,;\u2013\u2014-])", re.IGNORECASE
)
# A bare numeral is a chapter number only when it is the whole title or is
# followed by ':' '.' or ' -'. Only uppercase I V X L C (1-399): "MIX" (1009)
# and "DIX" (509) are words far more often than chapter numbers, and no book
# we read has 400 chapters. "I" alone is "Chapter One"; "I Remember" is a title.
_BARE_NUMERAL = re.compile(r"(?P<num>[IVXLC]+)(?=$|\s*[:.]|\s+[-\u2013\u2014])")
_WORD = re.compile(r"\w[\w'\u2019]*")


def _roman_value(numeral: str) -> int | None:
    """Value of a well-formed roman numeral (either case, not mixed), else None."""
    if not numeral or not (numeral.isupper() or numeral.islower()):
        return None
    upper = numeral.upper()
    if not _ROMAN_STRICT.fullmatch(upper):
        return None
    total = 0
    for ch, nxt in zip(upper, upper[1:] + " "):
        value = _ROMAN_VALUES[ch]
        total += -value if nxt != " " and _ROMAN_VALUES[nxt] > value else value
    return total


def _is_all_caps(text: str) -> bool:
    return any(ch.isalpha() for ch in text) and not any(ch.islower() for ch in text)


def _title_word(m: re.Match[str]) -> str:
    word = m.group()
    value = _roman_value(word)
    if len(word) > 1 and value is not None and value < 400:  # "HENRY VIII" keeps VIII
        return word
    return word[0].upper() + word[1:].lower()


def _title_case(text: str) -> str:
    return _WORD.sub(_title_word, text)


def speakable_title(title: str, *, roman: bool = True) -> str:
    """Make a chapter title sound right when spoken.

    With ``roman`` a roman chapter number becomes English words:
    "XIV: The Arrival" -> "Chapter Fourteen: The Arrival", "CHAPTER XII" ->
    "Chapter Twelve", "IV" -> "Chapter Four". Arabic numbers are kept
    ("Chapter 3"): every engine reads digits. An ALL-CAPS title becomes Title
    Case, since some engines spell capitals letter by letter. Words that merely
    look like numerals stay words: "I Remember", "MIX" -> "Mix", "DID" -> "Did".
    Pass ``roman=False`` for books not in English, where English number words
    would be wrong.
    """
    text = _WHITESPACE.sub(" ", title).strip()
    caps = _is_all_caps(text)
    if roman:
        head, rest = _numbered_head(text)
        if head:
            return head + (_title_case(rest) if caps else rest)
    return _title_case(text) if caps else text


def _numbered_head(text: str) -> tuple[str, str]:
    """("Chapter Fourteen", rest of the title) if the title starts with a roman chapter number."""
    m = _KEYWORD_NUMERAL.match(text)
    if m:
        value = _roman_value(m.group("num"))
        if value is not None:
            return f"{m.group('kw').capitalize()} {number_to_words(value)}", text[m.end() :]
    m = _BARE_NUMERAL.match(text)
    if m:
        value = _roman_value(m.group("num"))
        if value is not None:
            return f"Chapter {number_to_words(value)}", text[m.end() :]
    return "", text
