"""voxd.verify.score: what was heard against what was said, each failure of a speech engine told
apart (another text, a runaway tail, a skipped clause, a loop), right readings let through."""

from __future__ import annotations

import pytest

from voxd.verify.score import Thresholds, judge, normalise, score

TEXT = "It was a bright cold day in April, and the clocks were striking thirteen over the town."


def test_both_sides_meet_in_whisper_s_normal_form() -> None:
    said, heard = "Mr. Bennet's colour: two (2) apples!", "Mister Bennet's color, 2 2 apples"
    assert normalise(said, "en") == normalise(heard, "en")
    # brackets are read aloud in a book: what they hold is kept, not dropped as "[music]" would be
    assert normalise("Alice (she was surprised) spoke.", "en") == ["alice", "she", "was", "surprised", "spoke"]
    assert normalise("Él dijo: ¡Hola!", "es") == ["él", "dijo", "hola"]


def test_a_right_reading_passes_with_a_recogniser_s_slips() -> None:
    heard = "It was a bright cold day in April and the clocks were striking 13 over the tone."
    s = score(TEXT, heard, "en")
    assert s.error < 0.1 and s.tail == 0 and s.missing == 0 and s.repeats == 0
    assert judge(s) is None


def test_another_text_is_heard_as_something_else() -> None:
    s = score(TEXT, "Call me Ishmael. Some years ago, never mind how long precisely, I went to sea.", "en")
    assert s.error > 0.7 and s.word_error > 0.9 and "heard something else" in (judge(s) or "")


def test_a_small_recogniser_s_mangled_rare_words_are_not_another_text() -> None:
    # tiny.en on a right take of Whitman: most words wrong, most letters right
    s = score("In the learn'd coterie sitting constrain'd and still, for learning inures not to me,",
              "and the Lauren Coder sitting constrained and still for learning your snot to me.", "en")
    assert s.word_error > 0.45 and s.error < 0.4 and judge(s) is None


def test_a_runaway_tail_is_words_heard_after_the_text() -> None:
    s = score(TEXT, TEXT + " and then the rain began to fall on every roof in the valley", "en")
    assert s.tail == 13 and s.missing == 0
    assert judge(s) == "13 words heard after the text ended"


def test_a_skipped_clause_is_a_run_of_missing_words() -> None:
    s = score(TEXT, "It was a bright cold day over the town.", "en")
    assert s.missing == 8 and judge(s) == "8 words in a row not heard"
    # a word or two a recogniser drops is not a skipped clause
    dropped = "It was a bright cold day in April, and the clocks were striking over the town."
    assert judge(score(TEXT, dropped, "en")) is None


def test_a_loop_is_a_phrase_heard_more_often_than_written() -> None:
    s = score(TEXT, TEXT + " striking thirteen over striking thirteen over striking thirteen over", "en")
    assert s.repeats >= 3
    assert judge(s, Thresholds(max_tail=100)) == f"phrases repeated {s.repeats} times more than written"


def test_a_short_text_is_judged_by_its_letters_too() -> None:
    assert judge(score("Bingley smiled.", "Bingly smiled.", "en")) is None  # a name's spelling is not a failure
    wrong = score("Bingley smiled.", "The weather was dreadful that day.", "en")
    assert wrong.error > 0.6 and "letters differ" in (judge(wrong) or "")


@pytest.mark.parametrize("heard", ["", "   "])
def test_nothing_heard_for_a_text_is_all_of_it_missing(heard: str) -> None:
    s = score(TEXT, heard, "en")
    assert s.error == 1.0 and s.missing == s.words and judge(s) is not None


def test_a_blank_text_is_never_failed() -> None:
    assert judge(score("...", "", "en")) is None
