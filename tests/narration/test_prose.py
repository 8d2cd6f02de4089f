"""voxd.narration.prose: what is language and what is not, and in which script."""

from __future__ import annotations

import random

import pytest

from voxd.narration.prose import LONG_TOKEN, foreign_share, language_scripts, nonsense, script, split_nonsense

SENTENCES = [
    "It was the best of times, it was the worst of times, it was the age of wisdom.",
    "Es war einmal ein Müller, der war arm, aber er hatte eine schöne Tochter.",
    "Longtemps, je me suis couché de bonne heure, et parfois je lisais encore.",
    "En un lugar de la Mancha, de cuyo nombre no quiero acordarme, vivía un hidalgo.",
    "Nel mezzo del cammin di nostra vita mi ritrovai per una selva oscura.",
    "Все счастливые семьи похожи друг на друга, каждая несчастливая семья несчастлива по-своему.",
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    "Strengths and rhythms: twelfths of the angstrom, in the crypts of Glynn.",
]


@pytest.mark.parametrize("sentence", SENTENCES)
def test_real_sentences_are_language(sentence: str) -> None:
    assert nonsense(sentence) is None
    assert split_nonsense(sentence) == (sentence, [])


def test_random_letters_are_not_language() -> None:
    rng = random.Random(1)
    letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(400))
    assert nonsense(letters)  # one long token
    words = " ".join(letters[i : i + 5] for i in range(0, 400, 5))
    assert nonsense(words)  # random letters, with spaces
    assert split_nonsense(words) == ("", [words])


def test_a_long_token_in_a_sentence_goes_alone() -> None:
    blob = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo" * 3
    assert len(blob) >= LONG_TOKEN
    assert split_nonsense(f"The key is {blob} and nothing else.") == ("The key is and nothing else.", [blob])
    cjk = "吾輩は猫である" * 10  # no spaces is how Japanese is written
    assert split_nonsense(cjk) == (cjk, [])


def test_scripts() -> None:
    assert script("a") == "LATIN" and script("ж") == "CYRILLIC" and script("猫") == "CJK"
    assert script("1") is None and script(" ") is None
    assert language_scripts("en-GB") == {"LATIN"} and language_scripts("zho") == {"CJK"}
    assert language_scripts("xx") is None
    assert foreign_share("Hello world", "en") == 0
    assert foreign_share("Привет мир", "en") == 1
    assert foreign_share("Привет мир", None) == 0
