"""Cleanup, sentence splitting, spoken titles and chunk planning (voxd.narration.text)."""

from __future__ import annotations

import random
import re

import pytest

from voxd.book import SECTION_BREAK, Book, Chapter, Chunk, Metadata, Pause
from voxd.narration.text import (
    Dropped,
    chunk_chapter,
    clean_for_speech,
    is_section_break,
    number_to_words,
    plan_chunks,
    speakable_title,
    split_sentences,
)

# --------------------------------------------------------------------------- sentences


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Smith met Dr. Jones at St. Paul's.",
        "Mrs. Brown and Ms. Green met Prof. White on Mt. Hood.",
        "Bob Jr. and Bob Sr. argued about Smith vs. Jones.",
        "They bought apples, pears, etc. And then they went home.",
        "Bring a hat, e.g. A straw one, i.e. The cheap kind.",
        "See No. 5 in Vol. II, Ch. 3 and Fig. 7 for details.",
        "We met at 7 a.m. Tuesday and left at 5 p.m. Wednesday.",
        "J. R. R. Tolkien wrote it.",
        "The value rose from 3.14 to 2.718 overnight.",
        "He served in the U.S. Army for years.",
    ],
)
def test_one_sentence(text: str) -> None:
    assert split_sentences(text) == [text]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It rained. Then it stopped.", ["It rained.", "Then it stopped."]),
        ('"Stop!" she said. Then she ran.', ['"Stop!" she said.', "Then she ran."]),
        ('He shouted "Stop!" Nobody listened.', ['He shouted "Stop!"', "Nobody listened."]),
        ("Really? Yes! Fine.", ["Really?", "Yes!", "Fine."]),
        ("It cost 3.50 dollars. 2 people paid.", ["It cost 3.50 dollars.", "2 people paid."]),
        ("(He left.) She stayed.", ["(He left.)", "She stayed."]),
        ("He paused... Then he spoke.", ["He paused...", "Then he spoke."]),
        ("He paused\u2026 Then he spoke.", ["He paused\u2026", "Then he spoke."]),
        ('She said "no." "Why?" he asked.', ['She said "no."', '"Why?" he asked.']),
        ("He said no. Then he left.", ["He said no.", "Then he left."]),
        ("\u4f60\u597d\u3002\u6211\u5f88\u597d\uff01", ["\u4f60\u597d\u3002", "\u6211\u5f88\u597d\uff01"]),
    ],
)
def test_sentence_ends(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_no_split_before_lowercase() -> None:
    assert split_sentences("Wait... what did you say? nothing.") == ["Wait... what did you say? nothing."]


def test_sentences_rejoin_to_text() -> None:
    text = "Mr. Smith arrived.  Dr. Jones\nwas late!  \"Why?\" asked J. Doe. It was 4.5 km."
    assert " ".join(split_sentences(text)) == " ".join(text.split())


def test_empty_text_has_no_sentences() -> None:
    assert split_sentences("") == []
    assert split_sentences("   \n ") == []


# --------------------------------------------------------------------------- cleanup


def test_soft_hyphens_and_zero_width_removed() -> None:
    text = "in\u00adcred\u00adible zero\u200bwidth\u200c non\u200djoiner\u2060 \ufeffbom"
    assert clean_for_speech(text) == "incredible zerowidth nonjoiner bom"


def test_soft_hyphen_at_line_break_joins() -> None:
    assert clean_for_speech("co\u00ad\noperate") == "cooperate"


def test_hyphenated_line_break_joined() -> None:
    assert clean_for_speech("an exam-\nple of it") == "an example of it"
    assert clean_for_speech("an exam- \n  ple") == "an example"
    # A capital after the break means the hyphen is real.
    assert clean_for_speech("the Anglo-\nSaxon kings") == "the Anglo-Saxon kings"
    # An ordinary hyphen stays.
    assert clean_for_speech("a well-known fact") == "a well-known fact"


def test_urls_are_said_by_their_host_so_the_sentence_keeps_its_words() -> None:
    assert (clean_for_speech("His professional website is at http://beezer.cotc.pugetsound.edu/home.html.")
            == "His professional website is at beezer dot cotc dot pugetsound dot edu.")
    assert clean_for_speech("See http://example.com/page?id=1 for more.") == "See example dot com for more."
    assert clean_for_speech("Visit https://example.org/a.html.") == "Visit example dot org."
    assert clean_for_speech("Or www.example.com, later.") == "Or example dot com, later."
    assert clean_for_speech("Links (https://x.example/y) go.") == "Links (x dot example) go."
    assert (clean_for_speech("A wiki https://en.wikipedia.org/wiki/Foo_(bar) page.")
            == "A wiki en dot wikipedia dot org page.")
    assert clean_for_speech("Write to jane.doe@example.com today.") == "Write to jane dot doe at example dot com today."
    assert (clean_for_speech("The router is at http://192.168.1.1:8080/setup.")
            == "The router is at 192 dot 168 dot 1 dot 1.")
    assert clean_for_speech("Sieh https://www.beispiel.de/x.", "de") == "Sieh beispiel Punkt de."
    assert clean_for_speech("Écrivez à marie@exemple.fr.", "fr") == "Écrivez à marie arobase exemple point fr."
    # A web address on its own is a list of links, not a sentence.
    assert clean_for_speech("https://example.com/page") == ""
    # Not a URL: "www." inside a word; not an address: a word with an @ in it.
    assert clean_for_speech("Awww. Sweet.") == "Awww. Sweet."
    assert clean_for_speech("Meet @noon at user@localhost.") == "Meet @noon at user@localhost."
    for text in ("No holes at http://example.com.", "(https://a.b/c)", "mail me@x.org"):
        assert clean_for_speech(clean_for_speech(text)) == clean_for_speech(text)
        assert not re.search(r"\bat \.|\(\s*\)", clean_for_speech(text))


def test_footnote_marks_removed() -> None:
    assert clean_for_speech("A claim[1] and another [12]. End.") == "A claim and another. End."
    assert clean_for_speech("Cited [3, 4] and [5-7] here.") == "Cited and here."
    assert clean_for_speech("The end. [2]Next") == "The end. Next"
    # Brackets with words are text.
    assert clean_for_speech("He [the king] spoke.") == "He [the king] spoke."


def test_superscript_footnotes_removed() -> None:
    assert clean_for_speech("word\u00b9 and end.\u00b2\u00b3 Next\u2074 one") == "word and end. Next one"


def test_whitespace_collapsed_and_unicode_normalised() -> None:
    text = "  \u201cHi,\u201d  she\u00a0said,\n\tthe \ufb01ne caf\u0065\u0301 don\u2019t\u2026  "
    assert clean_for_speech(text) == "\"Hi,\" she said, the fine caf\u00e9 don't..."


def test_clean_is_idempotent() -> None:
    text = "An exam-\nple[1] at http://x.example, \u201cquoted\u201d\u00b2 co\u00adop."
    once = clean_for_speech(text)
    assert clean_for_speech(once) == once


# --------------------------------------------------------------------------- titles


@pytest.mark.parametrize(
    ("title", "spoken"),
    [
        ("XIV: The Arrival", "Chapter Fourteen: The Arrival"),
        ("CHAPTER XII", "Chapter Twelve"),
        ("Chapter xii", "Chapter Twelve"),
        ("IV", "Chapter Four"),
        ("I", "Chapter One"),
        ("IX. The Storm", "Chapter Nine. The Storm"),
        ("XL - Forty Winks", "Chapter Forty - Forty Winks"),
        ("CHAPTER I. THE BOY WHO LIVED", "Chapter One. The Boy Who Lived"),
        ("PART II: HOME", "Part Two: Home"),
        ("Book iv", "Book Four"),
        ("Chapter MMXXIV", "Chapter Two Thousand Twenty-Four"),
        ("Chapter 3", "Chapter 3"),  # digits are read fine by every engine
        ("3", "3"),
        ("THE LONG WAY HOME", "The Long Way Home"),
        ("DON'T LOOK BACK", "Don't Look Back"),
        ("THE REIGN OF HENRY VIII", "The Reign Of Henry VIII"),
        ("A Quiet Evening", "A Quiet Evening"),
        ("  Spaced \n  Out ", "Spaced Out"),
    ],
)
def test_speakable_title(title: str, spoken: str) -> None:
    assert speakable_title(title) == spoken


@pytest.mark.parametrize(
    ("title", "spoken"),
    [
        ("I Remember", "I Remember"),  # "I" followed by a word is the pronoun
        ("MIX", "Mix"),  # valid numeral (1009) but bare numerals stop at 399: a word
        ("DID", "Did"),  # not a well-formed numeral
        ("MIX: A Recipe", "MIX: A Recipe"),  # not all caps, not a number: untouched
        ("CIVIL WAR", "Civil War"),
        ("I Am Legend", "I Am Legend"),
        ("VI Warshawski", "VI Warshawski"),  # numeral followed by a word: a name
        ("Chapter Mix", "Chapter Mix"),  # mixed case is not a numeral
        ("iv", "iv"),  # bare lowercase numerals are not chapter numbers
    ],
)
def test_speakable_title_leaves_words_alone(title: str, spoken: str) -> None:
    assert speakable_title(title) == spoken


def test_speakable_title_without_roman() -> None:
    assert speakable_title("XIV: The Arrival", roman=False) == "XIV: The Arrival"
    assert speakable_title("CHAPTER XII", roman=False) == "Chapter XII"


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "Zero"),
        (7, "Seven"),
        (19, "Nineteen"),
        (20, "Twenty"),
        (42, "Forty-Two"),
        (100, "One Hundred"),
        (104, "One Hundred Four"),
        (399, "Three Hundred Ninety-Nine"),
        (1000, "One Thousand"),
        (3999, "Three Thousand Nine Hundred Ninety-Nine"),
        (21_015, "Twenty-One Thousand Fifteen"),
    ],
)
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


def test_number_to_words_range() -> None:
    with pytest.raises(ValueError):
        number_to_words(-1)
    with pytest.raises(ValueError):
        number_to_words(1_000_000)


# --------------------------------------------------------------------------- chunks

_WORDS = [
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "river", "mountain", "silver", "lantern",
    "whisper", "garden", "morning", "evening", "thunder", "quietly", "suddenly", "remembered", "nothing",
    "everything", "extraordinarily", "incomprehensible",
]


def _generated_paragraph(seed: int, sentences: int) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(sentences):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 40))]
        for i in range(len(words) - 1):
            if rng.random() < 0.08:
                words[i] += rng.choice([",", ";", ":"])
        words[0] = words[0].capitalize()
        out.append(" ".join(words) + rng.choice([".", ".", ".", "!", "?"]))
    return " ".join(out)


def _long_sentence(words: int, seed: int = 1, punctuate: bool = True) -> str:
    rng = random.Random(seed)
    parts = []
    for i in range(words):
        word = rng.choice(_WORDS)
        if punctuate and i and i % 17 == 0:
            word += ","
        parts.append(word)
    return "It " + " ".join(parts) + "."


def _chapter(*paragraphs: str, title: str = "Chapter One", **kw: str) -> Chapter:
    return Chapter(title=title, paragraphs=tuple(paragraphs), **kw)


def _chunks(chapter: Chapter, **kw: object) -> list[Chunk]:
    return chunk_chapter(0, chapter, voice="ryan", language="en", **kw)  # type: ignore[arg-type]


def _assert_words_preserved(chunks: list[Chunk], paragraphs: list[str]) -> None:
    spoken = " ".join(c.text for c in chunks).split()
    source = " ".join(clean_for_speech(p) for p in paragraphs).split()
    assert spoken == source


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("target", "maximum"), [(300, 500), (200, 400), (80, 120)])
def test_chunks_of_long_paragraph_fit(seed: int, target: int, maximum: int) -> None:
    paragraph = _generated_paragraph(seed, sentences=60)
    chunks = _chunks(_chapter(paragraph), target_chars=target, max_chars=maximum, speak_title=False)
    assert len(chunks) > 5
    assert all(0 < len(c.text) <= maximum for c in chunks)
    _assert_words_preserved(chunks, [paragraph])
    # Packing actually packs: all but the last chunk are reasonably full.
    assert sum(len(c.text) for c in chunks[:-1]) / max(1, len(chunks) - 1) > target / 3


@pytest.mark.parametrize("punctuate", [True, False])
def test_long_single_sentence_split_without_breaking_words(punctuate: bool) -> None:
    sentence = _long_sentence(400, punctuate=punctuate)
    assert len(sentence) > 2000
    chunks = _chunks(_chapter(sentence), speak_title=False)
    assert len(chunks) > 4
    assert all(len(c.text) <= 500 for c in chunks)
    _assert_words_preserved(chunks, [sentence])


def test_long_sentence_prefers_clause_boundaries() -> None:
    clause = "and the river ran on past the silver lanterns of the quiet town"
    sentence = "; ".join([clause] * 12) + "."
    chunks = _chunks(_chapter(sentence), target_chars=200, max_chars=300, speak_title=False)
    assert all(len(c.text) <= 300 for c in chunks)
    # Every chunk but the last ends at a clause boundary.
    assert all(c.text.endswith(";") for c in chunks[:-1])
    _assert_words_preserved(chunks, [sentence])


def test_long_sentence_splits_at_dashes() -> None:
    clause = "she waited by the window for the letter that never came"
    sentence = " \u2014 ".join([clause] * 12) + "."
    chunks = _chunks(_chapter(sentence), target_chars=150, max_chars=200, speak_title=False)
    assert all(len(c.text) <= 200 for c in chunks)
    assert all(c.text.endswith("\u2014") or c.text.endswith(".") for c in chunks)
    _assert_words_preserved(chunks, [sentence])


def test_overlong_word_is_cut_as_last_resort() -> None:
    word = "Pneumonoultramicroscopicsilicovolcanoconiosis"  # 45 letters: a word, if a long one
    chunks = _chunks(_chapter(f"Say {word} now."), speak_title=False, target_chars=30, max_chars=40)
    assert all(len(c.text) <= 40 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == f"Say{word}now."
    assert any(c.cut for c in chunks)


def test_a_token_that_is_no_word_is_left_out_not_spelt() -> None:
    blob = "x" * 1200
    dropped: list[str] = []
    chunks = chunk_chapter(0, _chapter(f"Data {blob} end."), voice="v", language="en", speak_title=False,
                           dropped=dropped)
    assert [c.text for c in chunks] == ["Data end."]
    assert dropped == [blob]


def test_sentences_are_packed_up_to_target() -> None:
    paragraph = " ".join(f"Sentence number {i} is short." for i in range(30))
    chunks = _chunks(_chapter(paragraph), target_chars=100, max_chars=200, speak_title=False)
    assert all(len(c.text) <= 100 for c in chunks)
    assert all(len(c.text) > 60 for c in chunks[:-1])
    # Chunks hold whole sentences.
    assert all(c.text.endswith(".") for c in chunks)


def test_title_chunk_first_and_pauses() -> None:
    short = "A short paragraph. It has two sentences."
    long = _generated_paragraph(7, sentences=30)
    chapter = _chapter(short, "", "   ", long, "The end.", title="XIV: The Arrival")
    chunks = _chunks(chapter)

    assert chunks[0].text == "Chapter Fourteen: The Arrival"
    assert chunks[0].pause is Pause.PARAGRAPH
    assert chunks[1].text == short
    assert chunks[1].pause is Pause.PARAGRAPH
    long_chunks = chunks[2:-1]
    assert len(long_chunks) > 2
    assert [c.pause for c in long_chunks] == [Pause.SENTENCE] * (len(long_chunks) - 1) + [Pause.PARAGRAPH]
    assert chunks[-1].text == "The end."
    assert chunks[-1].pause is Pause.CHAPTER
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.chapter == 0 for c in chunks)
    assert all(c.key == "" for c in chunks)
    _assert_words_preserved(chunks[1:], [short, long, "The end."])


def test_no_title_when_not_spoken() -> None:
    chunks = _chunks(_chapter("Only text.", title="IV"), speak_title=False)
    assert [(c.text, c.pause) for c in chunks] == [("Only text.", Pause.CHAPTER)]


def test_title_only_chapter_ends_with_chapter_pause() -> None:
    chunks = _chunks(_chapter("", title="Interlude"))
    assert [(c.text, c.pause) for c in chunks] == [("Interlude", Pause.CHAPTER)]


def test_empty_chapter_has_no_chunks() -> None:
    assert _chunks(_chapter("", " "), speak_title=False) == []
    assert _chunks(_chapter(title=""), speak_title=True) == []


def test_roman_title_kept_for_other_languages() -> None:
    chapter = _chapter("Es war einmal.", title="XIV: Die Ankunft")
    chunks = chunk_chapter(0, chapter, voice="v", language="de")
    assert chunks[0].text == "XIV: Die Ankunft"


def test_voice_style_language() -> None:
    plain = _chunks(_chapter("Text."))
    assert {(c.voice, c.language, c.style) for c in plain} == {("ryan", "en", None)}
    custom = _chunks(_chapter("Text.", voice="vivian", language="fr", style="whisper"))
    assert {(c.voice, c.language, c.style) for c in custom} == {("vivian", "fr", "whisper")}
    unknown = chunk_chapter(3, _chapter("Text."), voice="ryan", language=None)
    assert {(c.chapter, c.language) for c in unknown} == {(3, None)}


def test_paragraphs_are_cleaned() -> None:
    chunks = _chunks(_chapter("An exam-\nple[1] at http://x.example today."), speak_title=False)
    assert [c.text for c in chunks] == ["An example at x dot example today."]


def test_invalid_sizes() -> None:
    with pytest.raises(ValueError):
        _chunks(_chapter("Text."), max_chars=0)
    # A target above the maximum is capped, never exceeded.
    chunks = _chunks(_chapter(_generated_paragraph(3, 40)), target_chars=900, max_chars=250)
    assert all(len(c.text) <= 250 for c in chunks)


def _book() -> Book:
    return Book(
        metadata=Metadata(title="A Book", authors=("A. Writer",), language="en"),
        chapters=(
            _chapter(_generated_paragraph(1, 20), "Second paragraph here.", title="I"),
            _chapter("Short one.", title="II: The Middle", voice="vivian"),
            _chapter(_generated_paragraph(2, 25), title="CHAPTER III"),
        ),
    )


def test_plan_chunks_orders_chapters() -> None:
    chunks = plan_chunks(_book(), voice="ryan", language="en")
    chapters = [c.chapter for c in chunks]
    assert chapters == sorted(chapters)
    assert set(chapters) == {0, 1, 2}
    titles = [c.text for c in chunks if c.index == 0]
    assert titles == ["Chapter One", "Chapter Two: The Middle", "Chapter Three"]
    assert [c.pause for c in chunks].count(Pause.CHAPTER) == 3
    assert {c.voice for c in chunks if c.chapter == 1} == {"vivian"}
    for chapter in (0, 1, 2):
        indexes = [c.index for c in chunks if c.chapter == chapter]
        assert indexes == list(range(len(indexes)))


def test_plan_chunks_without_titles() -> None:
    chunks = plan_chunks(_book(), voice="ryan", language="en", speak_titles=False)
    assert not any(c.text.startswith("Chapter") for c in chunks)


def test_plan_is_deterministic() -> None:
    first = plan_chunks(_book(), voice="ryan", language="en", target_chars=200, max_chars=350)
    second = plan_chunks(_book(), voice="ryan", language="en", target_chars=200, max_chars=350)
    assert first == second
    assert [c.text for c in first] == [c.text for c in second]


# --------------------------------------------------------------------------- section breaks

STORY = (
    "I",
    "The house stood empty all winter. Nobody came up the lane.",
    "In spring the swallows returned to the barn.",
    "II",
    "Then one morning a cart arrived with a family and their dog.",
    "* * *",
    "By summer the garden was full of beans.",
    "\u2042",
    "In autumn they left again, as quietly as they had come.",
    SECTION_BREAK,
)


@pytest.mark.parametrize(
    "paragraph", ["I", "II.", "iv", "3", "12.", "- XIV -", "* * *", "***", "\u2042", "~", "\u2766", SECTION_BREAK]
)
def test_section_breaks(paragraph: str) -> None:
    assert is_section_break(paragraph)


@pytest.mark.parametrize("paragraph", ["I went home.", "Chapter II", "A", "MIX", "1984 was a year.", "I think so"])
def test_not_section_breaks(paragraph: str) -> None:
    assert not is_section_break(paragraph)


def test_section_breaks_are_pauses_never_words() -> None:
    chunks = _chunks(_chapter(*STORY, title="The Empty House"))
    texts = [c.text for c in chunks]
    assert not [t for t in texts if t in ("I", "I.", "II", "II.", "* * *", "\u2042")]
    assert texts[0] == "The Empty House"
    assert texts[1].startswith("The house stood empty")  # the "I" heading is not read before it
    sections = [c.text for c in chunks if c.pause is Pause.SECTION]
    assert sections == [
        "In spring the swallows returned to the barn.",
        "Then one morning a cart arrived with a family and their dog.",
        "By summer the garden was full of beans.",
    ]
    assert chunks[-1].pause is Pause.CHAPTER  # a break at the end is no section


def test_section_breaks_can_be_spoken() -> None:
    chunks = _chunks(_chapter(*STORY, title="The Empty House"), section_breaks="spoken")
    assert [c.text for c in chunks if c.text.startswith("Part")] == ["Part Two.", "Part Three.", "Part Four."]
    german = chunk_chapter(0, _chapter(*STORY), voice="v", language="de", section_breaks="spoken")
    assert [c.text for c in german if c.text.startswith("Teil")] == ["Teil 2.", "Teil 3.", "Teil 4."]


# --------------------------------------------------------------------------- text that is not language


def test_random_letters_are_left_out_not_spelt() -> None:
    rng = random.Random(7)
    letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20_000))
    spaced = " ".join(letters[i : i + rng.randint(2, 9)] for i in range(0, 3000, 6))
    book = Book(
        metadata=Metadata(title="Noise"),
        chapters=(
            _chapter(letters, title="One"),
            _chapter("A real sentence comes first.", spaced, "And a real one after.", title="Two"),
        ),
    )
    dropped: list[Dropped] = []
    chunks = plan_chunks(book, voice="v", language="en", dropped=dropped)
    assert [c.text for c in chunks] == ["One", "Two", "A real sentence comes first.", "And a real one after."]
    assert {d.chapter for d in dropped} == {0, 1}
    assert sum(len(d.text) for d in dropped) >= len(letters) + 2000


def test_lexicon_is_applied_to_each_chunk_without_moving_boundaries() -> None:
    paragraph = _generated_paragraph(3, sentences=40) + " Hermione smiled."
    plain = _chunks(_chapter(paragraph), speak_title=False)
    said = _chunks(_chapter(paragraph), speak_title=False, lexicon=lambda t: t.replace("Hermione", "Her-my-oh-nee"))
    assert len(plain) == len(said)
    changed = [(a.text, b.text) for a, b in zip(plain, said) if a.text != b.text]
    assert changed == [(plain[-1].text, plain[-1].text.replace("Hermione", "Her-my-oh-nee"))]
