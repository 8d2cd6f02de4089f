"""Turn chapter text into the utterances we hand to the speech engine.

Why chunks, and why this size: neural TTS models (Qwen3-TTS and friends) are
stable on utterances of roughly 200-400 characters. Longer inputs drift: in
another project 800-character chunks produced gibberish, skipped words and
runaway audio. So every paragraph is split into sentences, the sentences are
packed into chunks of about ``target_chars`` and no chunk is ever longer than
``max_chars``. A sentence that is longer than that is split at clause
boundaries and, as a last resort, between words - never inside a word.

Chunks carry no silence of their own: each one names the :class:`Pause` that
follows it (sentence, paragraph or chapter) and the assembler turns that into
silence from the settings, so pacing stays consistent whatever the engine does
at the edges of an utterance.

A paragraph that is only an ornament (``* * *``, ``⁂``), a rule the reader marked, or a
bare section number (``II``, ``3``) is a section break: never a word, it turns the pause
before it into a section pause (or, with ``section_breaks="spoken"``, is said as "Part
Two"). Text that is not language (random letters, one endless token) is left out and
reported (:func:`voxd.narration.prose.split_nonsense`), never spelt out letter by letter.

A lexicon (how to say a word) is applied to each chunk after the chunks are cut, so a
change to one entry changes only the chunks holding that word: the others keep their
text, their key and their cached audio.

Everything here is pure (no I/O, no randomness): the same book always gives the
same plan, which is what lets the cache reuse audio across runs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from voxd.book import Book, Chapter, Chunk, Pause
from voxd.narration.prose import split_nonsense
from voxd.narration.titles import _roman_value, number_to_words, speakable_title
from voxd.tts.languages import primary_subtag

__all__ = [
    "Dropped",
    "chunk_chapter",
    "clean_for_speech",
    "is_section_break",
    "number_to_words",
    "plan_chunks",
    "speakable_title",
    "split_sentences",
]

# --------------------------------------------------------------------------
# Cleanup
# --------------------------------------------------------------------------

# A soft hyphen marks where a word *may* break; if the break happened (soft
# hyphen then newline) the two halves are one word.
_SOFT_HYPHEN = re.compile(r"\u00ad(?:[ \t]*\r?\n[ \t]*)?")
# Zero-width space/non-joiner/joiner, word joiner, BOM, and C0 controls that are
# not whitespace, plus the object replacement character left by some converters.
_INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff\ufffc\x00-\x08\x0e-\x1f\x7f]")
# Superscript digits glued to the previous character are footnote references
# ("word¹", "end.²³"). Caveat: "m²" also loses its exponent; prose wins.
_SUPERSCRIPT_MARK = re.compile(r"(?<=\S)[\u00b9\u00b2\u00b3\u2070\u2074-\u2079]+")
# NFKC leaves curly quotes alone but turns primes into pairs (″ -> ′′); fold all
# quote-like marks to ASCII first so engines and the splitter see one form.
# Guillemets are left as they are: they are unambiguous and language-specific.
_QUOTE_FOLD = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
        "\u2032": "'", "\u02bc": "'", "\u2035": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
        "\u2033": '"', "\u2036": '"',
    }
)
# "exam-\nple" -> "example"; "Anglo-\nSaxon" -> "Anglo-Saxon" (capital after
# the break: the hyphen is real). Lowercase compounds split at their own
# hyphen ("well-\nknown") cannot be told apart without a dictionary.
_LINE_HYPHEN = re.compile(r"([^\W\d_])-[ \t]*\r?\n[ \t]*(?=([^\W\d_]))")
_WHITESPACE = re.compile(r"\s+")
# Bare URLs; the lookbehind keeps "awww." from matching mid-word.
_URL = re.compile(r"(?P<lead> ?)(?<![\w.@/])(?P<url>(?:https?://|ftp://|mailto:|www\.)\S+)", re.IGNORECASE)
# E-mail addresses, and the host of a URL (after its scheme and any user, before its port or path).
_LABEL = r"[^\W_](?:[\w-]*\w)?"  # one part of a host name: "pugetsound"
_EMAIL = re.compile(rf"(?<![\w.@/+-])(?P<user>[\w.+-]+)@(?P<host>{_LABEL}(?:\.{_LABEL})+)(?![\w@-])")
_HOST = re.compile(r"(?:[a-z][a-z0-9+.-]*:(?://)?)?(?:[^@/?#]*@)?(?:www\d?\.)?(?P<host>[^/:?#\s]+)", re.IGNORECASE)
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# "dot" and "at" as an address is read out, by language.
_DOT = {"de": "Punkt", "fr": "point", "es": "punto", "it": "punto", "pt": "ponto", "ru": "точка", "zh": "点",
        "ja": "ドット", "ko": "점"}
_AT = {"fr": "arobase", "es": "arroba", "it": "chiocciola", "pt": "arroba", "ru": "собака", "ja": "アットマーク",
       "ko": "골뱅이"}
_URL_TRAILING = ".,;:!?'\")]}>»"
# [1], [12], [3, 4], [5-7]: reference marks, not words.
_FOOTNOTE = re.compile(r"\s*\[\d{1,3}(?:\s*[,\u2013-]\s*\d{1,3})*\]")
# Brackets emptied by the removals above.
_EMPTY_BRACKETS = re.compile(r"\s*(?:\(\s*\)|\[\s*\])")


def _join_line_hyphen(m: re.Match[str]) -> str:
    return m.group(1) if m.group(2).islower() else m.group(1) + "-"


def spoken_host(address: str, language: str | None = None) -> str:
    """The site a URL names, as it is said: "beezer dot cotc dot pugetsound dot edu" for
    ``http://beezer.cotc.pugetsound.edu/home.html`` (no scheme, ``www``, port or path);
    an e-mail address as "jane at example dot com". Empty where there is no host name."""
    primary = primary_subtag(language, "en")
    dot = f" {_DOT.get(primary, 'dot')} "
    email = _EMAIL.fullmatch(address.removeprefix("mailto:").split("?")[0])
    if email:
        user = dot.join(part for part in email.group("user").split(".") if part)
        return f"{user} {_AT.get(primary, 'at')} {dot.join(email.group('host').split('.'))}"
    found = _HOST.match(address)
    host = found.group("host").strip(".") if found else ""
    if not _HOST_NAME.fullmatch(host):
        return ""
    return dot.join(host.split("."))


def _say_url(m: re.Match[str], language: str | None) -> str:
    """The URL's host in place of the URL (a sentence that named it still reads as one:
    "His website is at beezer dot cotc dot pugetsound dot edu."), punctuation that
    belongs to the sentence around it kept."""
    url = m.group("url")
    end = len(url)
    while end and url[end - 1] in _URL_TRAILING:
        ch = url[end - 1]
        # A ')' balancing a '(' inside the URL is part of it (wiki links).
        if ch == ")" and url[: end - 1].count("(") > url[: end - 1].count(")"):
            break
        end -= 1
    said = spoken_host(url[:end], language)
    return (m.group("lead") + said if said else "") + url[end:]


def _say_email(m: re.Match[str], language: str | None) -> str:
    return spoken_host(m.group(), language)


def _drop_footnote(m: re.Match[str]) -> str:
    # "word. [1]Next": keep a space so the neighbours do not fuse.
    following = m.string[m.end() : m.end() + 1]
    return " " if m.group().startswith((" ", "\t", "\n")) and following.isalnum() else ""


def clean_for_speech(text: str, language: str | None = None) -> str:
    """Return ``text`` as one line fit to be read aloud.

    Removes soft hyphens and zero-width characters, drops footnote superscripts
    glued to words, folds quote variants to ASCII ``'`` and ``"``, applies NFKC
    (ligatures, full-width forms, non-breaking spaces; "…" becomes "..."), joins
    words hyphenated across line breaks, says a URL by its host and an e-mail address as
    one is said (:func:`spoken_host`, in ``language``; a text that is nothing but a URL
    goes), drops bracketed footnote marks like ``[1]``, and collapses all whitespace to
    single spaces. Idempotent: cleaning cleaned text changes nothing.
    """
    text = _SOFT_HYPHEN.sub("", text)
    text = _INVISIBLE.sub("", text)
    text = _SUPERSCRIPT_MARK.sub("", text)
    text = text.translate(_QUOTE_FOLD)
    text = unicodedata.normalize("NFKC", text)
    text = _LINE_HYPHEN.sub(_join_line_hyphen, text)
    text = _WHITESPACE.sub(" ", text)
    if _URL.fullmatch(text.strip(" " + _URL_TRAILING)):
        return ""  # a web address on its own: a list of links, not a sentence
    text = _URL.sub(lambda m: _say_url(m, language), text)
    text = _EMAIL.sub(lambda m: _say_email(m, language), text)
    text = _FOOTNOTE.sub(_drop_footnote, text)
    text = _EMPTY_BRACKETS.sub("", text)
    return _WHITESPACE.sub(" ", text).strip()


# --------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------

# Latin-style end: terminator run, optional closing quotes/brackets, whitespace.
# CJK-style end: full-width terminator, optional closers, no space needed.
_BOUNDARY = re.compile(
    r"(?P<term>[.!?\u2026]+)(?P<close>[\"'\u201d\u2019\u00bb)\]]*)(?P<space>\s+)(?=\S)"
    r"|(?P<cjk>[\u3002\uff01\uff1f]+[\u300d\u300f\uff09\u3011\"'\u201d\u2019]*)\s*"
)
_OPENERS = "\"'\u201c\u2018\u00ab\u201e([\u00bf\u00a1"
# Never a sentence end when followed by an uppercase word (case-insensitive,
# without the final dot). "etc.", "a.m." and "p.m." do end sentences now and
# then; keeping them together only makes one chunk a little longer.
_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "mx", "dr", "st", "ste", "jr", "sr", "prof", "mt",
        "vs", "etc", "e.g", "i.e", "a.m", "p.m", "messrs", "mme", "mmes",
        "mlle", "rev", "gen", "capt", "col", "lt", "sgt", "gov", "hon", "cf",
        "viz", "approx",
    }
)
# Abbreviations only before a number ("No. 5", "Vol. II", "Fig. 3"), so that
# "He said no. Then..." still ends. The flag allows a roman numeral too; not for
# "No", because '"No. I won't."' is common dialogue.
_NUMBERED_ABBREVIATIONS = {"no": False, "nos": False, "vol": True, "vols": True,
                           "ch": True, "fig": True, "figs": True, "p": False, "pp": False}
_NUMBER_AHEAD = re.compile(r"\d")
_ROMAN_AHEAD = re.compile(r"[IVXLCDM]+\b|[ivxlcdm]+\b")
# Dotted single letters: "U.S", "e.g", "Ph" is not one.
_DOTTED_LETTERS = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")


def _starts_sentence(ch: str) -> bool:
    """Uppercase (or caseless script), digit, or an opening quote/bracket."""
    return ch.isdigit() or (ch.isalpha() and not ch.islower()) or ch in _OPENERS


def _word_before(text: str, end: int) -> str:
    """The whitespace-delimited token ending at ``end``, without opening punctuation."""
    start = max(text.rfind(" ", 0, end), text.rfind("\n", 0, end), text.rfind("\t", 0, end)) + 1
    return text[start:end].lstrip(_OPENERS)


def _is_abbreviation(word: str, text: str, ahead: int) -> bool:
    """Whether ``word.`` followed by ``text[ahead:]`` is an abbreviation or initial, not an end."""
    if not word:
        return False
    low = word.lower()
    if low in _ABBREVIATIONS:
        return True
    if low in _NUMBERED_ABBREVIATIONS:
        if _NUMBER_AHEAD.match(text, ahead):
            return True
        return _NUMBERED_ABBREVIATIONS[low] and bool(_ROMAN_AHEAD.match(text, ahead))
    if len(word) == 1 and word.isupper():  # an initial: "J. R. R. Tolkien"
        return True
    return bool(_DOTTED_LETTERS.fullmatch(word))


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences; joining them with spaces gives the text back.

    A sentence ends at ``. ! ? …`` (plus closing quotes/brackets) followed by
    whitespace and an uppercase letter, digit or opening quote/bracket - but not
    after common abbreviations (Mr. Dr. St. etc. e.g. a.m. ...), numbered
    abbreviations before a number (No. 5, Vol. II), initials (J. R. R. Tolkien)
    or dotted letters (U.S.). Decimals never split: there is no space after the
    dot. Full-width CJK terminators (。！？) end a sentence without a space.
    """
    text = _WHITESPACE.sub(" ", text).strip()
    sentences: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if m.group("cjk") is None:
            if not _starts_sentence(text[m.end()]):
                continue
            if (m.group("term") == "." and not m.group("close")
                    and _is_abbreviation(_word_before(text, m.start()), text, m.end())):
                continue
        piece = text[start : m.end()].strip()
        if piece:
            sentences.append(piece)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


# --------------------------------------------------------------------------
# Chunks
# --------------------------------------------------------------------------

# Split points for an over-long sentence, strongest first. Each is a space, so a
# split never lands inside a word: after ; : or a dash, before a spaced dash,
# then after a comma. CJK clause marks need no space.
_CLAUSE_LEVELS = (
    re.compile(r"(?<=[;:\u2014\u2013]) |(?<=\S) (?=[\u2014\u2013] )|(?<=[\uff1b\uff1a])"),
    re.compile(r"(?<=,) |(?<=[\uff0c\u3001])"),
)
# Full-width punctuation after which no space is wanted when joining pieces.
_NO_SPACE_AFTER = "\u3002\uff01\uff1f\uff0c\u3001\uff1b\uff1a\u300d\u300f\uff09\u3011"


def _joined_length(left: str, right: str) -> int:
    return len(left) + len(right) + (0 if left.endswith(tuple(_NO_SPACE_AFTER)) else 1)


def _join(left: str, right: str) -> str:
    return left + right if left.endswith(tuple(_NO_SPACE_AFTER)) else f"{left} {right}"


def _split_words(text: str, max_chars: int) -> list[str]:
    """Last resort: words, each one a piece; a single word longer than max_chars
    (base64, a run of symbols) is cut, because an over-long utterance is worse."""
    pieces: list[str] = []
    for word in text.split(" "):
        if not word:
            continue
        pieces.extend(word[i : i + max_chars] for i in range(0, len(word), max_chars))
    return pieces


def _split_long(text: str, max_chars: int, level: int = 0) -> list[str]:
    """Pieces of ``text`` none longer than ``max_chars``, split as gently as possible."""
    if len(text) <= max_chars:
        return [text]
    if level >= len(_CLAUSE_LEVELS):
        return _split_words(text, max_chars)
    parts = [p.strip() for p in _CLAUSE_LEVELS[level].split(text) if p.strip()]
    pieces: list[str] = []
    for part in parts:
        pieces.extend(_split_long(part, max_chars, level + 1))
    return pieces


Piece = tuple[str, bool]  # a chunk's text, and whether it holds part of a sentence that was cut


def _pack(pieces: list[Piece], target_chars: int) -> list[Piece]:
    """Greedily join consecutive pieces while the result stays within target_chars."""
    packed: list[Piece] = []
    current, cut = "", False
    for piece, piece_cut in pieces:
        if current and _joined_length(current, piece) <= target_chars:
            current, cut = _join(current, piece), cut or piece_cut
        else:
            if current:
                packed.append((current, cut))
            current, cut = piece, piece_cut
    if current:
        packed.append((current, cut))
    return packed


Lexicon = Callable[[str], str]


def _paragraph_texts(
    paragraph: str,
    target_chars: int,
    max_chars: int,
    *,
    lexicon: Lexicon | None = None,
    dropped: list[str] | None = None,
    language: str | None = None,
) -> list[Piece]:
    """The chunk texts of one paragraph, in order; what is not language goes to ``dropped``.

    The lexicon is applied to each packed chunk, so chunk boundaries never depend on it;
    a chunk it makes longer than ``max_chars`` is cut again on its own (:func:`_recut`).
    """
    cleaned = clean_for_speech(paragraph, language)
    if not cleaned:
        return []
    pieces: list[Piece] = []
    for sentence in split_sentences(cleaned):
        kept, nonsense = split_nonsense(sentence)
        if dropped is not None:
            dropped.extend(nonsense)
        if kept:
            split = _split_long(kept, max_chars)
            pieces.extend((piece, len(split) > 1) for piece in split)
    packed = _pack(pieces, target_chars)
    if lexicon is None:
        return packed
    out: list[Piece] = []
    for text, cut in packed:
        said = lexicon(text)
        if len(said) <= max_chars:
            out.append((said, cut))
        else:
            out.extend(_recut(text, cut, lexicon, target_chars, max_chars))
    return out


# Holds the words of what a lexicon entry says together while a chunk it lengthened is cut
# again: not a space, so neither the sentence splitter nor a clause or word split sees one.
_KEEP = "\u2060"


def _recut(text: str, cut: bool, lexicon: Lexicon, target_chars: int, max_chars: int) -> list[Piece]:
    """A chunk the lexicon made longer than ``max_chars``, said and cut again as the chunker
    cuts a paragraph: at sentence ends, then at clause marks, packed back up to
    ``target_chars``, each entry's words kept in one piece ("the National Aeronautics and
    Space Administration" is never cut)."""
    say = getattr(lexicon, "say", None)
    said = say(text, joiner=_KEEP) if say is not None else lexicon(text)
    pieces: list[Piece] = []
    for sentence in split_sentences(said):
        split = _split_long(sentence, max_chars)
        pieces.extend((piece, cut or len(split) > 1) for piece in split)
    return [(piece.replace(_KEEP, " "), piece_cut) for piece, piece_cut in _pack(pieces, target_chars)]


def _speaks_english(language: str | None) -> bool:
    return language is None or primary_subtag(language) in ("en", "eng")


def _check_sizes(target_chars: int, max_chars: int) -> int:
    """Validate the sizes; returns the effective target (never above max_chars)."""
    if max_chars < 1 or target_chars < 1:
        raise ValueError(f"chunk sizes must be positive (target_chars={target_chars}, max_chars={max_chars})")
    return min(target_chars, max_chars)


# Ornaments that mark a section break on their own: asterisks, asterisms, fleurons, dashes.
_ORNAMENT_MAX = 40
_SECTION_NUMERAL = re.compile(r"(?:\d{1,3}|[IVXLC]+|[ivxlc]+)")
_NUMERAL_TRIM = " .:()[]*\u2013\u2014-~\u00b7\u2022\u00a7"
_PART_WORD = {"de": "Teil", "fr": "Partie", "es": "Parte", "it": "Parte", "pt": "Parte", "ru": "Часть",
              "nl": "Deel", "sv": "Del", "da": "Del", "no": "Del", "pl": "Część"}
_PART_CJK = {"zh": "第{n}部分", "ja": "第{n}部", "ko": "제{n}부"}


def _section_number(text: str) -> int | None:
    """The number of a section heading that is only a number ("II", "3.", "- iv -"), else None."""
    core = text.strip(_NUMERAL_TRIM)
    if not core or not _SECTION_NUMERAL.fullmatch(core):
        return None
    if core.isdigit():
        return int(core)
    value = _roman_value(core)
    return value if value is not None and value < 400 else None


def is_section_break(paragraph: str) -> bool:
    """Whether a paragraph marks a section break: only an ornament (no letter or digit:
    ``* * *``, ``⁂``, ``~``) or only a section number (``I``, ``II.``, ``3``)."""
    text = _WHITESPACE.sub(" ", paragraph).strip()
    if not text or len(text) > _ORNAMENT_MAX:
        return False
    if not any(ch.isalnum() for ch in text):
        return True
    return _section_number(text) is not None


def _spoken_section(number: int, language: str | None) -> str:
    """How a section break is said with ``section_breaks="spoken"``: "Part Two." in English."""
    primary = primary_subtag(language, "en")
    if _speaks_english(language):
        return f"Part {number_to_words(number)}." if number < 1_000_000 else f"Part {number}."
    if primary in _PART_CJK:
        return _PART_CJK[primary].format(n=number) + "\u3002"
    return f"{_PART_WORD.get(primary, 'Part')} {number}."


def chunk_chapter(
    chapter_index: int,
    chapter: Chapter,
    *,
    voice: str,
    language: str | None,
    target_chars: int = 300,
    max_chars: int = 500,
    speak_title: bool = True,
    section_breaks: str = "pause",
    lexicon: Lexicon | None = None,
    dropped: list[str] | None = None,
) -> list[Chunk]:
    """The chunks of one chapter, title first (when ``speak_title``).

    Each paragraph is cleaned, split into sentences and packed into chunks of
    up to ``target_chars``; no chunk exceeds ``max_chars``. The last chunk of a
    paragraph (and the title) is followed by a paragraph pause, the last chunk
    before a section break (:func:`is_section_break`) by a section pause, the
    chapter's last chunk by a chapter pause, every other chunk by a sentence pause.
    With ``section_breaks="spoken"`` a break is also said ("Part Two."). Breaks
    before the first paragraph or after the last are dropped.
    The chapter's voice and language override the given ones. The title's roman
    numerals become English words only when the language is English or unknown.
    ``lexicon`` says words as the book wants them said; sentences that are not
    language are left out and appended to ``dropped``.
    """
    target_chars = _check_sizes(target_chars, max_chars)
    voice = chapter.voice or voice
    language = chapter.language or language

    texts: list[tuple[str, Pause, bool]] = []

    def add(group: list[Piece]) -> None:
        for i, (text, cut) in enumerate(group):
            texts.append((text, Pause.PARAGRAPH if i == len(group) - 1 else Pause.SENTENCE, cut))

    if speak_title:
        title = speakable_title(clean_for_speech(chapter.title, language), roman=_speaks_english(language))
        add(_paragraph_texts(title, target_chars, max_chars, lexicon=lexicon, language=language))
    body_start = len(texts)
    section = 1
    pending: int | None = None  # a break waits for the next paragraph with something to say
    for paragraph in chapter.paragraphs:
        if is_section_break(paragraph):
            number = _section_number(paragraph)
            pending = number if number is not None else (pending or section + 1)
            if len(texts) == body_start:  # a number heading the first section: nothing to end yet
                section = number if number is not None else section
                pending = None
            continue
        group = _paragraph_texts(paragraph, target_chars, max_chars, lexicon=lexicon, dropped=dropped,
                                 language=language)
        if not group:
            continue
        if pending is not None:
            section = pending if pending > section else section + 1
            text, _, cut = texts[-1]
            texts[-1] = (text, Pause.SECTION, cut)
            if section_breaks == "spoken":
                texts.append((_spoken_section(section, language), Pause.PARAGRAPH, False))
            pending = None
        add(group)
    if texts:
        texts[-1] = (texts[-1][0], Pause.CHAPTER, texts[-1][2])

    return [
        Chunk(
            chapter=chapter_index,
            index=index,
            text=text,
            pause=pause,
            voice=voice,
            language=language,
            style=chapter.style,
            cut=cut,
        )
        for index, (text, pause, cut) in enumerate(texts)
    ]


@dataclass(frozen=True, slots=True)
class Dropped:
    """Text left out because it is not language, and the chapter it was in."""

    chapter: int
    text: str


def plan_chunks(
    book: Book,
    *,
    voice: str,
    language: str | None,
    target_chars: int = 300,
    max_chars: int = 500,
    speak_titles: bool = True,
    section_breaks: str = "pause",
    lexicon: Lexicon | None = None,
    dropped: list[Dropped] | None = None,
) -> list[Chunk]:
    """Every chunk of the book, chapter by chapter (chapters numbered from 0); text that
    is not language is left out and, when ``dropped`` is given, listed there."""
    chunks: list[Chunk] = []
    for index, chapter in enumerate(book.chapters):
        left_out: list[str] = []
        chunks.extend(
            chunk_chapter(
                index,
                chapter,
                voice=voice,
                language=language,
                target_chars=target_chars,
                max_chars=max_chars,
                speak_title=speak_titles,
                section_breaks=section_breaks,
                lexicon=lexicon,
                dropped=left_out,
            )
        )
        if dropped is not None:
            dropped.extend(Dropped(index, text) for text in left_out)
    return chunks
