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

import logging
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from voxd.errors import ConfigError

__all__ = ["MAX_ENTRIES", "Lexicon", "check_entries", "load_lexicon_file", "parse_pls"]

log = logging.getLogger(__name__)

_PLS = "http://www.w3.org/2005/01/pronunciation-lexicon"
#: Larger lexicon files are refused: a lexicon is a list of names, not a book.
MAX_LEXICON_BYTES = 4 * 1024 * 1024
#: Longer entries are refused (a word or a short phrase, and what to say instead).
MAX_ENTRY_CHARS = 200
#: Entries past this many in one lexicon are refused (a manifest's, the global file) or left
#: out with a warning (an EPUB's): a lexicon is a list of names. Applying one costs about the
#: same whatever its size (see :class:`Lexicon`); building it, about 0.4 s and 90 MB per
#: 100,000 short entries, in the reader's process (under ``ingest_memory_mb``).
MAX_ENTRIES = 200_000

Pairs = tuple[tuple[str, str], ...]


def check_entries(entries: Mapping[str, Any] | Iterable[tuple[Any, Any]]) -> tuple[Pairs, list[str]]:
    """The usable (written, spoken) pairs, and a problem in words for each entry that is not.

    A written form must hold a letter or digit and neither form may be empty or longer
    than :data:`MAX_ENTRY_CHARS` characters; entries past :data:`MAX_ENTRIES` are refused.
    """
    items = entries.items() if isinstance(entries, Mapping) else entries
    pairs: list[tuple[str, str]] = []
    problems: list[str] = []
    for n, (written, spoken) in enumerate(items):
        if n >= MAX_ENTRIES:
            problems.append(f"more than {MAX_ENTRIES} entries: {written!r} and those after it")
            break
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


_END = ""  # the key that marks, in a trie node, where an entry ends
Trie = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Whole-word replacements, applied by calling the lexicon on a text.

    Later entries win over earlier ones for the same word, so
    ``Lexicon.of(global_pairs, book_pairs)`` lets a book override the global lexicon.

    The entries make one trie, keyed by lower-case characters: where a word starts with
    the first character of some entry (one small pattern finds those places), the trie is
    followed character by character to the longest entry that ends there at a word's end.
    The cost is that of the text, whatever the number of entries: a lexicon of 100,000
    entries is applied about as fast as one of ten, and built in a fraction of a second.
    A match is then held to its entry (an entry with capitals matches only as written);
    where it is not one, the longest shorter entry is.
    """

    exact: Mapping[str, str]
    folded: Mapping[str, str]
    trie: Trie
    starts: re.Pattern[str] | None

    @classmethod
    def of(cls, *sources: Iterable[tuple[str, str]]) -> Lexicon:
        exact: dict[str, str] = {}
        folded: dict[str, str] = {}
        trie: Trie = {}
        for source in sources:
            for written, spoken in source:
                if written == written.lower():
                    folded[written.casefold()] = spoken
                else:
                    exact[written] = spoken
                node = trie
                for ch in written:
                    node = node.setdefault(_key(ch), {})
                node[_END] = True
        if not trie:
            return cls({}, {}, {}, None)
        firsts = "".join(re.escape(ch) for ch in sorted(trie))
        return cls(exact, folded, trie, re.compile(rf"(?<!\w)[{firsts}]", re.IGNORECASE))

    def __len__(self) -> int:
        return len(self.exact) + len(self.folded)

    def __call__(self, text: str) -> str:
        return self.say(text)

    def say(self, text: str, *, joiner: str = " ") -> str:
        """``text`` with each word of the lexicon said as it says; with ``joiner`` the spaces
        inside what an entry says are that character, so a splitter can keep it whole."""
        if self.starts is None:
            return text
        out: list[str] = []
        pos = 0
        for m in self.starts.finditer(text):
            start = m.start()
            if start < pos:
                continue  # inside what was just replaced
            found = self._entry(text, start)
            if found is None:
                continue
            end, spoken = found
            out.append(text[pos:start])
            out.append(spoken if joiner == " " else spoken.replace(" ", joiner))
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def _entry(self, text: str, start: int) -> tuple[int, str] | None:
        """The longest entry that matches ``text`` from ``start`` to a word's end, and what it says."""
        node = self.trie
        ends = []
        i, n = start, len(text)
        while i < n:
            child = node.get(_key(text[i]))
            if child is None:
                break
            node = child
            i += 1
            if _END in node and (i == n or not _is_word(text[i])):
                ends.append(i)
        for stop in reversed(ends):
            word = text[start:stop]
            if word in self.exact:
                return stop, self.exact[word]
            spoken = self.folded.get(word.casefold())
            if spoken is not None:
                if word[:1].isupper() and spoken[:1].islower():
                    spoken = spoken[0].upper() + spoken[1:]
                return stop, spoken
        return None


def _is_word(ch: str) -> bool:
    """What ``\\w`` matches: a letter, a digit or an underscore."""
    return ch.isalnum() or ch == "_"


def _key(ch: str) -> str:
    """A trie edge for a character: its lower case where that is one character."""
    low = ch.lower()
    return low if len(low) == 1 else ch


def parse_pls(data: bytes) -> tuple[Pairs, int, list[str]]:
    """The ``<alias>`` entries of a W3C pronunciation lexicon (PLS), how many lexemes had
    none (only ``<phoneme>`` transcriptions, which no engine voxd drives can read), and a
    problem in words, naming the entry, for each one left out (:func:`check_entries`).

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
    usable, problems = check_entries(pairs)
    return usable, skipped, problems


def warn_left_out(source: str, problems: list[str], shown: int = 20) -> None:
    """Name each entry of a publisher's lexicon that was left out (the first ``shown`` of them)."""
    for problem in problems[:shown]:
        log.warning("%s: left out the lexicon entry %s", source, problem)
    if len(problems) > shown:
        log.warning("%s: left out %d more lexicon entries", source, len(problems) - shown)


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
            pairs, _, problems = parse_pls(data)
        except ValueError as exc:
            raise ConfigError(f"lexicon {path} is not a pronunciation lexicon: {exc}") from None
        warn_left_out(str(path), problems)
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
