"""voxd.narration.plan and ``voxd plan``: the chunks exactly as the engine will be asked to say them,
lengths, the render time from past jobs, flags, what was skipped or left out, languages."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ingest.test_epub import build_epub
from voxd.book import Book, Chapter, Metadata
from voxd.config import load_settings
from voxd.errors import VoiceError
from voxd.ingest import read_book
from voxd.narration.plan import chunk_flags, describe, plan_book, speech_chunks
from voxd.narration.text import chunk_chapter
from voxd.service.store import Store

REPO = Path(__file__).resolve().parents[2]
RANDOM_LETTERS = "".join(random.Random(5).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3000))
LONG_SENTENCE = "He walked " + ", and then he walked on ".join(f"past house number {n}" for n in range(40)) + "."


def story(path: Path) -> Path:
    body = (
        "<h1>The Walk</h1><h2>I</h2><p>It was a fine morning in the village.</p>"
        "<p>Table 3: 12.5 / 17.25 / 3.1416 / 2.718 (kg/m3)</p>"
        "<p>THE END OF THE WORLD IS NOT NEAR, he read on the poster.</p>"
        "<p>See &lt;b&gt;this&lt;/b&gt; for details.</p>"
        "<p>Он сказал: «Добрый вечер, дорогие друзья».</p>"
        f"<p>{LONG_SENTENCE}</p>"
        f"<h2>II</h2><p>{RANDOM_LETTERS}</p><p>The walk ended at the pond.</p>"
    )
    docs = [
        ("contents.xhtml", "Contents", "<h1>Contents</h1><p>The Walk</p>"),
        ("walk.xhtml", "The Walk", body),
        ("index.xhtml", "Index", "<h1>Index</h1>" + "".join(f"<p>word {n}, {n * 3}</p>" for n in range(1, 9))),
    ]
    return build_epub(path, docs, title="A Walk", language="en")


@pytest.fixture
def settings(tmp_path: Path):
    return load_settings(None, engine="qwen", state_dir=str(tmp_path / "state"))


def _plan_cli(path: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``voxd plan`` in a process of its own, which must never import torch."""
    code = (
        "import sys; from voxd.cli import main; rc = main(sys.argv[1:]); "
        "assert 'torch' not in sys.modules, 'voxd plan imported torch'; sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "VOXD_STATE_DIR": str(tmp_path / "state"), "VOXD_ENGINE": "qwen"}
    return subprocess.run(
        [sys.executable, "-c", code, "plan", str(path), *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_plan_json_shows_what_the_engine_will_say(tmp_path: Path, settings) -> None:
    path = story(tmp_path / "walk.epub")
    done = _plan_cli(path, tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert [ch["title"] for ch in plan["chapters"]] == ["The Walk"]
    texts = [c["text"] for ch in plan["chapters"] for c in ch["chunks"]]
    # exactly the chunks the render asks for: same reading, same chunking
    assert texts == [c.text for c in speech_chunks(read_book(path), settings).chunks]
    assert "I" not in texts and not [t for t in texts if RANDOM_LETTERS[:50] in t]
    by_text = {c["text"]: c for ch in plan["chapters"] for c in ch["chunks"]}
    assert "symbols" in by_text["Table 3: 12.5 / 17.25 / 3.1416 / 2.718 (kg/m3)"]["flags"]
    assert "caps" in by_text["THE END OF THE WORLD IS NOT NEAR, he read on the poster."]["flags"]
    assert "markup" in by_text["See <b>this</b> for details."]["flags"]
    assert "script" in by_text["Он сказал: «Добрый вечер, дорогие друзья»."]["flags"]
    assert [c["flags"] for c in by_text.values() if c["text"].startswith("He walked")][0] == ["long-sentence"]
    assert by_text["It was a fine morning in the village."]["flags"] == []
    assert [c["pause"] for c in plan["chapters"][0]["chunks"]].count("section") == 1
    left_out = plan["chapters"][0]["left_out"]
    assert len(left_out) == 1 and left_out[0]["chars"] == len(RANDOM_LETTERS)
    assert {s["title"]: s["reason"] for s in plan["skipped"]} == {"Contents": "contents", "Index": "index"}
    assert plan["seconds"] == pytest.approx(sum(c["seconds"] for c in by_text.values()), abs=1)
    assert plan["render_seconds"] is None and plan["unsupported_languages"] == []


def test_plan_for_people(tmp_path: Path) -> None:
    done = _plan_cli(story(tmp_path / "walk.epub"), tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "1 chapters," in out and "of audio; render time unknown" in out
    assert "skipped as front or back matter: Contents (contents); Index (index)" in out
    assert "left out as not language: 1 pieces" in out
    assert "! THE END OF THE WORLD IS NOT NEAR, he read on the poster.  [caps]" in out
    flagged = _plan_cli(tmp_path / "walk.epub", tmp_path, "--flagged").stdout
    assert "It was a fine morning" not in flagged and "[caps]" in flagged


def test_render_time_from_finished_jobs(tmp_path: Path, settings) -> None:
    store = Store(settings.db_path)
    for n, (audio, render) in enumerate([(3600.0, 300.0), (1800.0, 300.0)]):
        job, _ = store.put(f"{n:064d}", tmp_path / f"b{n}.epub")
        store.claim(60)
        store.progress(job.id, audio_seconds=audio, render_seconds=render, rendered_audio_seconds=audio,
                       chunks_rendered=10)
        store.finish(job.id, "out.m4b")
    job, _ = store.put(f"{9:064d}", tmp_path / "cached.epub")  # found whole in the cache: no pace to learn from
    store.claim(60)
    store.progress(job.id, audio_seconds=7200.0, render_seconds=0.5, chunks_done=10)
    store.finish(job.id, "cached.m4b")
    store.close()
    book = read_book(story(tmp_path / "walk.epub"))
    plan = plan_book(book, settings, source="walk.epub")
    assert plan.speed is not None and plan.speed.jobs == 2 and plan.speed.factor == pytest.approx(9.0)
    assert plan.render_seconds == pytest.approx(plan.seconds / 9.0)
    assert plan.as_json()["speed"] == 9.0


def _dutch(lang_of_chapter: str | None = None) -> Book:
    return Book(
        metadata=Metadata(title="Boek", language="nl"),
        chapters=(Chapter("Een", ("Het was een mooie dag in het dorp.",), language=lang_of_chapter),),
    )


def test_unsupported_language_fails_at_once_and_shows_in_the_plan(settings) -> None:
    from voxd.narration.plan import check_languages

    chunks = speech_chunks(_dutch(), settings).chunks
    with pytest.raises(VoiceError, match=r"does not speak 'nl'.*English \(en\).*\"language\""):
        check_languages(chunks, "qwen", "boek.epub")
    plan = plan_book(_dutch(), settings, source="boek.epub")
    assert plan.unspoken == ["nl"] and plan.as_json()["supported_languages"]
    assert all("language" in c["flags"] for c in plan.chapters[0].chunks)
    # the way out: the chapter's own language, as a manifest sets it
    check_languages(speech_chunks(_dutch("de"), settings).chunks, "qwen", "boek.epub")
    check_languages(chunks, "espeak", "boek.epub")  # eSpeak speaks Dutch
    # a speech server decides for itself, as the render lets it: the plan does not say otherwise
    check_languages(chunks, "remote", "boek.epub")
    remote = plan_book(_dutch(), settings.model_copy(update={"engine": "remote"}), source="boek.epub")
    assert remote.unspoken == [] and remote.as_json()["supported_languages"] is None
    assert not any("language" in c["flags"] for c in remote.chapters[0].chunks)
    assert "NOT SPOKEN" not in describe(remote)


def test_piper_speaks_the_languages_of_the_voices_installed(settings) -> None:
    from voxd.narration.plan import check_languages

    piper = settings.model_copy(update={"engine": "piper"})
    chunks = speech_chunks(_dutch(), piper).chunks
    with pytest.raises(VoiceError, match=r"Piper does not speak 'nl'.*en_US-joe-medium \(en-US\)"):
        check_languages(chunks, "piper", "boek.epub", piper)
    check_languages(speech_chunks(_dutch("en-GB"), piper).chunks, "piper", "boek.epub", piper)  # a voice of en
    plan = plan_book(_dutch(), piper, source="boek.epub")
    assert plan.unspoken == ["nl"] and all("language" in c["flags"] for c in plan.chapters[0].chunks)
    assert "NOT SPOKEN: piper does not speak nl; the Piper voices installed are en_US-joe-medium" in describe(plan)


def test_flags_of_a_clean_chunk_are_empty() -> None:
    (chunk,) = chunk_chapter(0, Chapter("t", ("A plain sentence.",)), voice="v", language="en", speak_title=False)
    assert chunk_flags(chunk, "qwen") == []


def test_a_book_over_max_book_hours_is_said_to_be_too_long(tmp_path: Path) -> None:
    """The plan agrees with the daemon: the length voxd.narration.length holds to max_book_hours."""
    from voxd.narration import length

    book = read_book(story(tmp_path / "walk.epub"))
    for hours, too_long in ((0.01, True), (24.0, False), (0.0, False)):
        settings = load_settings(None, engine="qwen", state_dir=str(tmp_path / "state"), max_book_hours=hours)
        plan = plan_book(book, settings, source="walk.epub")
        assert plan.too_long is too_long and plan.as_json()["too_long"] is too_long
        assert plan.seconds == pytest.approx(length.expected_seconds(speech_chunks(book, settings).chunks, settings))


def test_plan_lists_a_section_of_links_under_skipped_with_the_reason(tmp_path: Path) -> None:
    from tests.ingest.test_epub import linear_algebra

    path = linear_algebra(tmp_path / "la.epub")
    plan = json.loads(_plan_cli(path, tmp_path, "--json").stdout)
    reason = "navigation: links into the book"
    assert {s["title"]: s["reason"] for s in plan["skipped"]} == {"Theorems": reason, "Notation": reason}
    assert [ch["title"] for ch in plan["chapters"]] == ["Systems", "Matrices"]
    out = _plan_cli(path, tmp_path).stdout
    assert f"skipped as front or back matter: Theorems ({reason}); Notation ({reason})" in out


def test_a_books_lexicon_is_applied_in_the_readers_process(tmp_path: Path) -> None:
    from voxd.narration.plan import read_speech

    manifest = tmp_path / "names.voxd.json"
    manifest.write_text(json.dumps({"voxd_manifest": 1, "title": "Names", "language": "en",
                                    "lexicon": {"Hermione": "Her-my-oh-nee"},
                                    "chapters": [{"title": "One", "text": "Hermione waved."}]}))
    settings = load_settings(None, engine="espeak", state_dir=str(tmp_path / "state"))
    book, speech = read_speech(manifest, settings)
    assert [c.text for c in speech.chunks] == ["One", "Her-my-oh-nee waved."] and speech.lexicon_entries == 1
    assert book.lexicon == (("Hermione", "Her-my-oh-nee"),)
    slow = settings.model_copy(update={"ingest_timeout_seconds": 0.01})
    with pytest.raises(Exception, match="reading it and cutting it into chunks took longer than 0.01 s"):
        read_speech(manifest, slow)


def _flags_of(text: str, language: str) -> list[str]:
    (chunk,) = chunk_chapter(0, Chapter("t", (text,)), voice="v", language=language, speak_title=False)
    return chunk_flags(chunk, "espeak")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("قال الرجل العجوز إن البحر كان هادئا في ذلك الصباح الجميل.", "ar"),  # Arabic has no case
        ("он сказал что вечер был тихим и тёплым.", "ru"),  # lowercase Cyrillic
        ("吾輩は猫である名前はまだ無いどこで生れたか頓と見当がつかぬ。", "ja"),  # a long CJK run
        ("他说今天的天气非常好我们一起去公园散步吧。", "zh"),
        ("Il disait: c'est déjà l'été, à côté de la mer.", "fr"),
    ],
)
def test_caps_only_for_letters_that_have_case(text: str, language: str) -> None:
    assert "caps" not in _flags_of(text, language)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("ОН СКАЗАЛ: ВЕЧЕР БЫЛ ТИХИМ, и всё.", "ru"),  # capitals of another script shout too
        ("Il criait ÉTÉ, ÉCOLE, ÂME au vent.", "fr"),
        ("The word was ANTIDISESTABLISHMENT, he said.", "en"),
    ],
)
def test_caps_for_runs_of_capitals_in_any_cased_script(text: str, language: str) -> None:
    assert "caps" in _flags_of(text, language)
