"""How to say words: a lexicon of whole-word replacements, from the config directory, a
manifest or an EPUB's own pronunciation lexicons (PLS).

Speech models guess names from their spelling, and guess "Hermione" wrong. A lexicon
entry ``Hermione = "Her-my-oh-nee"`` makes every chunk say it right. Entries match whole
words only ("Hermione's" yes, "Hermioneish" no). An entry written in lower case matches
the word in any case ("gif" matches "GIF" and "Gif"), and a capital at the start of the
word stays a capital; an entry with capitals matches only that spelling, so "Reading"
the town can differ from "reading".

The chunker applies the lexicon to each chunk after the chunks are cut
(:mod:`voxd.narration.text`), so an entry changes the text, and with it the cache key, of the
chunks that hold its word and of no other: editing the lexicon re-renders only those.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from voxd.errors import ConfigError

__all__ = ["Lexicon", "check_entries", "load_lexicon_file", "parse_pls"]

_PLS = "http://www.w3.org/2005/01/pronunciation-lexicon"
#: Larger lexicon files are refused: a lexicon is a list of names, not a book.
MAX_LEXICON_BYTES = 4 * 1024 * 1024
#: Longer entries are refused (a word or a short phrase, and what to say instead).
MAX_ENTRY_CHARS = 200

Pairs = tuple[tuple[str, str], ...]


def check_entries(entries: Mapping[str, Any] | Iterable[tuple[Any, Any]]) -> tuple[Pairs, list[str]]:
    """The usable (written, spoken) pairs, and a problem in words for each entry that is not.

    A written form must hold a letter or digit and neither form may be empty or longer
    than :data:`MAX_ENTRY_CHARS` characters.
    """
    items = entries.items() if isinstance(entries, Mapping) else entries
    pairs: list[tuple[str, str]] = []
    problems: list[str] = []
    for written, spoken in items:
        if not isinstance(written, str) or not isinstance(spoken, str):
            problems.append(f"{written!r}: both the word and what to say must be text")
            continue
        word, said = " ".join(written.split()), " ".join(spoken.split())
        if not any(ch.isalnum() for ch in word):
            problems.append(f"{written!r}: the word to replace has no letter or digit")
        elif not said:
            problems.append(f"{written!r}: what to say is empty")
        elif len(word) > MAX_ENTRY_CHARS or len(said) > MAX_ENTRY_CHARS:
            problems.append(f"{written[:40]!r}: longer than {MAX_ENTRY_CHARS} characters")
        else:
            pairs.append((word, said))
    return tuple(pairs), problems


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Whole-word replacements, applied by calling the lexicon on a text.

    Later entries win over earlier ones for the same word, so
    ``Lexicon.of(global_pairs, book_pairs)`` lets a book override the global lexicon.
    """

    exact: Mapping[str, str]
    folded: Mapping[str, str]
    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, *sources: Iterable[tuple[str, str]]) -> Lexicon:
        exact: dict[str, str] = {}
        folded: dict[str, str] = {}
        for source in sources:
            for written, spoken in source:
                if written == written.lower():
                    folded[written.casefold()] = spoken
                else:
                    exact[written] = spoken
        if not exact and not folded:
            return cls({}, {}, None)

        # Longest first, so "Mr Darcy" wins over "Mr"; lower-case entries ignore case.
        words = [(w, False) for w in exact] + [(w, True) for w in folded]
        words.sort(key=lambda item: len(item[0]), reverse=True)
        alternatives = "|".join(f"(?i:{re.escape(w)})" if fold else re.escape(w) for w, fold in words)
        return cls(exact, folded, re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)"))

    def __len__(self) -> int:
        return len(self.exact) + len(self.folded)

    def __call__(self, text: str) -> str:
        if self.pattern is None:
            return text
        return self.pattern.sub(self._say, text)

    def _say(self, m: re.Match[str]) -> str:
        word = m.group()
        if word in self.exact:
            return self.exact[word]
        spoken = self.folded.get(word.casefold(), word)
        if word[:1].isupper() and spoken[:1].islower():
            return spoken[0].upper() + spoken[1:]
        return spoken


def parse_pls(data: bytes) -> tuple[Pairs, int]:
    """The ``<alias>`` entries of a W3C pronunciation lexicon (PLS), and how many lexemes
    had none (only ``<phoneme>`` transcriptions, which no engine voxd drives can read).

    Raises ``ValueError`` for a file that is not a PLS lexicon.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not well-formed XML ({exc.msg})") from None
    if root.tag not in (f"{{{_PLS}}}lexicon", "lexicon"):
        raise ValueError("its root element is not a PLS <lexicon>")
    ns = f"{{{_PLS}}}" if root.tag.startswith("{") else ""
    pairs: list[tuple[str, str]] = []
    skipped = 0
    for lexeme in root.iter(f"{ns}lexeme"):
        graphemes = [g.text or "" for g in lexeme.iter(f"{ns}grapheme")]
        alias = next((a.text or "" for a in lexeme.iter(f"{ns}alias") if (a.text or "").strip()), "")
        if not alias:
            skipped += 1
            continue
        pairs.extend((g, alias) for g in graphemes if g.strip())
    usable, _ = check_entries(pairs)
    return usable, skipped


def load_lexicon_file(path: Path) -> Pairs:
    """The entries of the global lexicon: a TOML table of ``word = "what to say"``, or a
    ``.pls`` lexicon. Raises :class:`ConfigError` naming the file and what is wrong."""
    try:
        data = path.read_bytes()[: MAX_LEXICON_BYTES + 1]
    except OSError as exc:
        raise ConfigError(f"lexicon {path} cannot be read ({exc.strerror or exc}); fix or unset lexicon_file") from None
    if len(data) > MAX_LEXICON_BYTES:
        raise ConfigError(f"lexicon {path} is larger than {MAX_LEXICON_BYTES // 2**20} MiB")
    if path.suffix.lower() in (".pls", ".xml"):
        try:
            pairs, _ = parse_pls(data)
        except ValueError as exc:
            raise ConfigError(f"lexicon {path} is not a pronunciation lexicon: {exc}") from None
        return pairs
    try:
        table = tomllib.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f'lexicon {path} is not valid TOML ({exc}); write one entry a line: Word = "how to say it"'
        ) from None
    pairs, problems = check_entries(table)
    if problems:
        raise ConfigError(f"lexicon {path}: " + "; ".join(problems))
    return pairs
