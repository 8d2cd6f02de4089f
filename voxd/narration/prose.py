"""Is a piece of text language at all, and in which script is it written?

A speech engine handed a string of random letters spells it out, letter by letter: a
192 KB file of them became 75 hours of audio. Real sentences in the languages voxd reads
have spaces between words, vowels among their letters and no word hundreds of letters
long, so text without those is left out before it reaches an engine (and `voxd plan`
shows what was left out). The script check lets the plan flag text written in another
script than the book's language (Greek in an English book, a Russian quotation).

Everything here is pure and cheap enough to run over every sentence of a book.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from voxd.tts.languages import primary_subtag

#: A token this long (no spaces) is no word in any language voxd reads: a hash, base64,
#: a run of letters. Germany's longest dictionary words stay below it.
LONG_TOKEN = 50
#: With at least this many letters of an alphabet, the vowel share is telling.
_MIN_LETTERS = 40
#: Sentences in the languages voxd reads have 28-50 % vowels; random letters about 23 %.
_MIN_VOWEL_SHARE = 0.3
#: ... and few of the letters j k q v w x z (English 5 %, German 6 %, Polish 16 %), where
#: random letters have 27 %: together the two tell consonant-heavy verse from noise.
_MAX_RARE_SHARE = 0.15
_RARE = frozenset("jkqvwxz")
#: Fewer vowels than this among 30 letters or more is no language at all.
_NO_VOWELS = 0.08
_VOWELS = frozenset(
    "aeiouyàáâãäåæèéêëìíîïòóôõöøœùúûüýÿāēīōūăęąėįųůőűı"
    "аеёиоуыэюяіїє"
    "αεηιουωάέήίόύώϊϋ"
)
_ALPHABETS = frozenset({"LATIN", "CYRILLIC", "GREEK"})
# Scripts written without spaces between words: a long token there is a sentence.
_UNSPACED = frozenset({"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "HANGUL", "THAI", "LAO", "KHMER"})

#: The scripts each language (primary tag) is written in; Latin for any other Latin-script tag.
_LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    "ru": frozenset({"CYRILLIC"}), "uk": frozenset({"CYRILLIC"}), "be": frozenset({"CYRILLIC"}),
    "bg": frozenset({"CYRILLIC"}), "sr": frozenset({"CYRILLIC", "LATIN"}), "mk": frozenset({"CYRILLIC"}),
    "zh": frozenset({"CJK"}), "ja": frozenset({"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA"}),
    "ko": frozenset({"HANGUL", "CJK"}), "el": frozenset({"GREEK"}), "ar": frozenset({"ARABIC"}),
    "fa": frozenset({"ARABIC"}), "he": frozenset({"HEBREW"}), "hi": frozenset({"DEVANAGARI"}),
    "th": frozenset({"THAI"}),
}  # fmt: skip
_THREE_LETTER = {"eng": "en", "deu": "de", "ger": "de", "fra": "fr", "fre": "fr", "spa": "es", "ita": "it",
                 "por": "pt", "rus": "ru", "zho": "zh", "chi": "zh", "cmn": "zh", "jpn": "ja", "kor": "ko"}
_LATIN_LANGUAGES = frozenset(
    {
        "en", "de", "fr", "es", "it", "pt", "nl", "da", "sv", "no", "nb", "nn", "fi", "is", "et", "lv", "lt",
        "pl", "cs", "sk", "sl", "hr", "bs", "hu", "ro", "ca", "gl", "eu", "ga", "cy", "mt", "sq", "tr", "az",
        "id", "ms", "vi", "tl", "sw", "af", "eo", "la",
    }
)  # fmt: skip


@lru_cache(maxsize=4096)
def script(ch: str) -> str | None:
    """The script of a letter, as the first word of its Unicode name ("LATIN", "CJK",
    "HIRAGANA"...); None for anything that is not a letter."""
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else None


def language_scripts(language: str | None) -> frozenset[str] | None:
    """The scripts a language tag is written in, or None when voxd cannot tell."""
    primary = primary_subtag(language)
    primary = _THREE_LETTER.get(primary, primary)
    if primary in _LANGUAGE_SCRIPTS:
        return _LANGUAGE_SCRIPTS[primary]
    if primary in _LATIN_LANGUAGES:
        return frozenset({"LATIN"})
    return None


def foreign_share(text: str, language: str | None) -> float:
    """The share of ``text``'s letters written in a script its language does not use
    (0 when the language is unknown or the text has no letters)."""
    expected = language_scripts(language)
    if expected is None:
        return 0.0
    letters = foreign = 0
    for ch in text:
        kind = script(ch)
        if kind is None:
            continue
        letters += 1
        if kind not in expected:
            foreign += 1
    return foreign / letters if letters else 0.0


def _spaced(token: str) -> bool:
    """Whether the token is in a script that puts spaces between words."""
    return not any(script(ch) in _UNSPACED for ch in token)


def nonsense(text: str) -> str | None:
    """Why ``text`` is not language (a reason for the log and the plan), or None if it may be.

    Not language: a token of :data:`LONG_TOKEN` or more characters with no space making up
    most of the text; 30 letters or more of the Latin, Cyrillic or Greek alphabet with
    almost no vowel; or 40 or more with few vowels and many of the letters rare in every
    language voxd reads (random letters). Short text is given the benefit of the doubt:
    it cannot cost hours.
    """
    tokens = text.split()
    visible = sum(len(t) for t in tokens)
    if not visible:
        return None
    long = [t for t in tokens if len(t) >= LONG_TOKEN and _spaced(t)]
    if long and sum(len(t) for t in long) * 2 >= visible:
        return f"one token of {max(len(t) for t in long)} characters without a space"
    letters = vowels = rare = 0
    for ch in text:
        if script(ch) in _ALPHABETS:
            low = ch.lower()
            letters += 1
            vowels += low in _VOWELS
            rare += low in _RARE
    if letters >= 30 and vowels < _NO_VOWELS * letters:
        return f"no vowels ({vowels} in {letters} letters)"
    if letters >= _MIN_LETTERS and vowels < _MIN_VOWEL_SHARE * letters and rare >= _MAX_RARE_SHARE * letters:
        return f"random letters ({round(100 * vowels / letters)} % vowels, {round(100 * rare / letters)} % of jkqvwxz)"
    return None


def split_nonsense(sentence: str) -> tuple[str, list[str]]:
    """``sentence`` without what is not language, and the pieces taken out.

    Tokens of :data:`LONG_TOKEN` characters or more go (a hash or a base64 blob inside a
    sentence, or a whole file of letters without a space); then what is left goes too
    if it is random letters (:func:`nonsense`).
    """
    tokens = sentence.split(" ")
    long = [t for t in tokens if len(t) >= LONG_TOKEN and _spaced(t)]
    kept = " ".join(t for t in tokens if not (len(t) >= LONG_TOKEN and _spaced(t))).strip() if long else sentence
    if kept and nonsense(kept):
        return "", [*long, kept]
    return kept, long
