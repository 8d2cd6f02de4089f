"""voxd.narration.lexicon: whole-word, case-aware pronunciations from the config directory, a manifest
and an EPUB's PLS lexicons; part of the chunk key, so an edited entry re-renders only the
chunks that hold its word."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ebooklib import epub

from voxd.book import Book, Chapter, Metadata
from voxd.config import load_settings
from voxd.errors import BookError, ConfigError
from voxd.ingest import read_book
from voxd.narration.lexicon import Lexicon, check_entries, load_lexicon_file, parse_pls
from voxd.narration.plan import speech_chunks
from voxd.render import with_keys

PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" alphabet="ipa" xml:lang="en">
  <lexeme><grapheme>Hermione</grapheme><alias>Her-my-oh-nee</alias></lexeme>
  <lexeme><grapheme>Sirius</grapheme><grapheme>SIRIUS</grapheme><alias>Sear-ee-us</alias></lexeme>
  <lexeme><grapheme>tomato</grapheme><phoneme>təˈmɑːtoʊ</phoneme></lexeme>
</lexicon>
"""


def test_whole_words_case_aware() -> None:
    say = Lexicon.of([("Hermione", "Her-my-oh-nee"), ("gif", "jif"), ("Mr Darcy", "Mister Darcy"), ("Mr", "Mister")])
    assert say("Hermione's wand, not Hermioneish.") == "Her-my-oh-nee's wand, not Hermioneish."
    assert say("hermione") == "hermione"  # an entry with capitals matches only itself
    assert say("A GIF, a gif. Gif!") == "A Jif, a jif. Jif!"  # lower case matches any case; a capital stays
    assert say("Mr Darcy met Mr Bingley.") == "Mister Darcy met Mister Bingley."
    assert Lexicon.of([("a", "b")], [("a", "c")])("a") == "c"  # later sources win
    assert Lexicon.of()("untouched") == "untouched"


def test_entries_are_checked() -> None:
    pairs, problems = check_entries({"ok": "fine", "!!": "bang", "empty": " ", "x" * 300: "long"})
    assert pairs == (("ok", "fine"),)
    assert len(problems) == 3


def test_pls_aliases_are_read_and_phonemes_counted() -> None:
    pairs, phonemes, problems = parse_pls(PLS.encode())
    assert pairs == (("Hermione", "Her-my-oh-nee"), ("Sirius", "Sear-ee-us"), ("SIRIUS", "Sear-ee-us"))
    assert phonemes == 1 and problems == []
    with pytest.raises(ValueError, match="PLS"):
        parse_pls(b"<html/>")


def test_global_lexicon_beside_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "voxd.toml").write_text('engine = "espeak"\n')
    (tmp_path / "lexicon.toml").write_text('Hermione = "Her-my-oh-nee"\n"Mr Darcy" = "Mister Darcy"\n')
    settings = load_settings(tmp_path / "voxd.toml")
    assert settings.lexicon_path == tmp_path / "lexicon.toml"
    assert load_lexicon_file(settings.lexicon_path) == (("Hermione", "Her-my-oh-nee"), ("Mr Darcy", "Mister Darcy"))
    (tmp_path / "names.pls").write_text(PLS)
    (tmp_path / "voxd.toml").write_text('lexicon_file = "names.pls"\n')
    assert load_settings(tmp_path / "voxd.toml").lexicon_path == tmp_path / "names.pls"


@pytest.mark.parametrize(
    ("content", "problem"),
    [("Hermione = ", "not valid TOML"), ('Hermione = ""', "what to say is empty"), ("Hermione = 3", "must be text")],
)
def test_bad_global_lexicon_names_the_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "lexicon.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=problem) as info:
        load_lexicon_file(path)
    assert str(path) in str(info.value)


def test_a_broken_lexicon_stops_voxd_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "voxd.toml").write_text('engine = "espeak"\n')
    (tmp_path / "lexicon.toml").write_text("Hermione = [\n")
    with pytest.raises(ConfigError, match=r"lexicon .*lexicon\.toml is not valid TOML"):
        load_settings(tmp_path / "voxd.toml")


def _manifest(path: Path, lexicon: object) -> Path:
    data = {
        "voxd_manifest": 1, "title": "Names", "language": "en", "lexicon": lexicon,
        "chapters": [{"title": "One", "text": "Hermione waved. Ron laughed.\n\nNobody else came."}],
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return path


def test_manifest_lexicon(tmp_path: Path) -> None:
    book = read_book(_manifest(tmp_path / "names.voxd.json", {"Hermione": "Her-my-oh-nee"}))
    assert book.lexicon == (("Hermione", "Her-my-oh-nee"),)
    settings = load_settings(None, engine="espeak")
    assert [c.text for c in speech_chunks(book, settings).chunks][1] == "Her-my-oh-nee waved. Ron laughed."


def test_bad_manifest_lexicon_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(BookError, match=r"names\.voxd\.json.*lexicon.*what to say is empty"):
        read_book(_manifest(tmp_path / "names.voxd.json", {"Hermione": ""}))
    with pytest.raises(BookError, match=r"names\.voxd\.json.*lexicon"):
        read_book(_manifest(tmp_path / "names.voxd.json", ["Hermione"]))


def test_epub_pronunciation_lexicon_is_honoured(tmp_path: Path) -> None:
    book = epub.EpubBook()
    book.set_identifier("urn:uuid:voxd-pls")
    book.set_title("Spelled")
    book.set_language("en")
    book.add_author("Ada Author")
    book.add_item(epub.EpubItem(uid="pls", file_name="lexicon.pls", media_type="application/pls+xml",
                                content=PLS.encode()))
    chapter = epub.EpubHtml(title="One", file_name="one.xhtml", lang="en")
    chapter.content = "<html><head><title>One</title></head><body><h1>One</h1><p>Hermione met Sirius.</p></body></html>"
    chapter.add_link(href="lexicon.pls", rel="pronunciation", type="application/pls+xml")
    book.add_item(chapter)
    book.toc = [epub.Link("one.xhtml", "One", "one")]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", chapter]
    path = tmp_path / "spelled.epub"
    epub.write_epub(str(path), book)
    read = read_book(path)
    assert ("Hermione", "Her-my-oh-nee") in read.lexicon
    chunks = speech_chunks(read, load_settings(None, engine="espeak")).chunks
    assert chunks[1].text == "Her-my-oh-nee met Sear-ee-us."


def test_an_entry_changes_only_the_keys_of_chunks_with_its_word(tmp_path: Path) -> None:
    paragraphs = tuple(
        f"Paragraph {n} tells of the garden, the lane and the pond, as every paragraph here does."
        + (" Hermione walked by." if n in (3, 7) else "")
        for n in range(12)
    )
    book = Book(metadata=Metadata(title="Garden", language="en"), chapters=(Chapter("One", paragraphs),))

    def keys(entry: str) -> list[str]:
        (tmp_path / "lexicon.toml").write_text(f'Hermione = "{entry}"\n')
        settings = load_settings(None, engine="espeak", lexicon_file=str(tmp_path / "lexicon.toml"))
        return [c.key for c in with_keys(speech_chunks(book, settings).chunks, "model")]

    before, after = keys("Her-my-oh-nee"), keys("Hermy-oh-nee")
    assert len(before) == len(after)
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert changed == [4, 8]  # the title is chunk 0


# -- a lexicon that lengthens words, a large one, one with entries left out ------------------

NASA = "the National Aeronautics and Space Administration"
SPACE = ("NASA said NASA would fly, and NASA did: NASA built it, NASA tested it and NASA flew it; NASA, NASA "
         "and NASA again. Then NASA rested while NASA planned what NASA would do next for NASA and NASA.")


# One long sentence with no clause mark in it: only a cut between words is left.
RUN_ON = ("When NASA asked NASA whether NASA could help NASA the answer from NASA was that NASA would ask NASA "
          "and NASA agreed so NASA and NASA and NASA went on with what NASA had planned before NASA began it all")


@pytest.mark.parametrize("paragraph", [SPACE, RUN_ON], ids=["clauses", "run-on"])
def test_a_lexicon_that_lengthens_words_never_recuts_the_text_into_words(paragraph: str) -> None:
    from voxd.narration.text import chunk_chapter

    chapter = Chapter(title="Space", paragraphs=(paragraph,))
    chunks = chunk_chapter(0, chapter, voice="v", language="en", speak_title=False,
                           lexicon=Lexicon.of([("NASA", NASA)]))
    texts = [c.text for c in chunks]
    assert 2 <= len(texts) <= 5, texts
    assert all(len(t) <= 500 and len(t.split()) >= 10 for t in texts), texts
    # every entry said whole, in one chunk, and nothing lost or added
    assert " ".join(texts) == paragraph.replace("NASA", NASA)
    assert sum(t.count(NASA) for t in texts) == paragraph.count("NASA")
    if paragraph is SPACE:
        assert texts[-1].startswith("Then") and not chunks[-1].cut  # a sentence that fits is not marked cut


def _reference(pairs: list[tuple[str, str]], text: str) -> str:
    """What a lexicon says, as one alternation tried entry by entry, longest first (the old way)."""
    import re

    exact = {w: s for w, s in pairs if w != w.lower()}
    folded = {w.casefold(): s for w, s in pairs if w == w.lower()}
    written = [w for w, _ in pairs if w == w.lower()]  # as written: "straße", not its casefold "strasse"
    words = sorted([(w, False) for w in exact] + [(w, True) for w in written], key=lambda i: len(i[0]), reverse=True)
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(f"(?i:{re.escape(w)})" if f else re.escape(w) for w, f in words)
                         + r")(?!\w)")

    def say(m: re.Match[str]) -> str:
        word = m.group()
        if word in exact:
            return exact[word]
        spoken = folded[word.casefold()]
        return spoken[0].upper() + spoken[1:] if word[:1].isupper() and spoken[:1].islower() else spoken

    return pattern.sub(say, text)


def test_the_trie_says_what_the_entry_by_entry_pattern_said() -> None:
    import random

    rng = random.Random(3)
    words = ["mr", "Mr", "mr darcy", "Mr Darcy", "darcy", "US", "us", "U.S.", "AT&T", "at", "gif", "GIF", "ab",
             "abc", "abcd", "Abc", "x-ray", "x", "éclair", "Éclair", "straße", "naïve"]
    for _ in range(200):
        pairs = [(w, f"<{w.upper()}>") for w in rng.sample(words, rng.randint(1, len(words)))]
        text = " ".join(rng.choice([*words, "and", "the", "Abcd", "ABC", "Darcy", "mr.", "(us)", "gifs"])
                        for _ in range(30))
        assert Lexicon.of(pairs)(text) == _reference(pairs, text), (pairs, text)


def test_entries_past_the_cap_are_refused_and_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from voxd.narration import lexicon

    monkeypatch.setattr(lexicon, "MAX_ENTRIES", 3)
    pairs, problems = check_entries({"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"})
    assert pairs == (("a", "1"), ("b", "2"), ("c", "3"))
    assert problems == ["more than 3 entries: 'd' and those after it"]
    with pytest.raises(BookError, match=r"names\.voxd\.json.*more than 3 entries"):
        read_book(_manifest(tmp_path / "names.voxd.json", {"a": "1", "b": "2", "c": "3", "d": "4"}))


def test_an_epub_lexicon_entry_left_out_is_named_in_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    long = "Aldous" * 40
    pls = PLS.replace("</lexicon>", f"<lexeme><grapheme>{long}</grapheme><alias>too long</alias></lexeme></lexicon>")
    book = epub.EpubBook()
    book.set_identifier("urn:uuid:voxd-pls-long")
    book.set_title("Spelled")
    book.set_language("en")
    book.add_item(epub.EpubItem(uid="pls", file_name="lexicon.pls", media_type="application/pls+xml",
                                content=pls.encode()))
    chapter = epub.EpubHtml(title="One", file_name="one.xhtml", lang="en")
    chapter.content = "<html><head><title>One</title></head><body><h1>One</h1><p>Hermione met Sirius.</p></body></html>"
    book.add_item(chapter)
    book.toc = [epub.Link("one.xhtml", "One", "one")]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", chapter]
    epub.write_epub(str(tmp_path / "long.epub"), book)
    with caplog.at_level("WARNING"):
        read = read_book(tmp_path / "long.epub")
    assert ("Hermione", "Her-my-oh-nee") in read.lexicon and all(w != long for w, _ in read.lexicon)
    [warning] = [r.getMessage() for r in caplog.records if "left out the lexicon entry" in r.getMessage()]
    assert "long.epub: lexicon.pls" in warning and long[:30] in warning and "longer than 200" in warning
