"""voxd.verify.report: where a flagged chunk starts in the .m4b, and the lines people read."""

from __future__ import annotations

import numpy as np

from voxd.book import Chunk, Pause
from voxd.cache import ChunkCache
from voxd.config import Settings
from voxd.service.store import Store
from voxd.takes import Flag
from voxd.verify.report import clock, describe, flag_rows, summary


def test_a_flagged_chunk_starts_after_the_audio_and_pauses_before_it(tmp_path) -> None:
    cache = ChunkCache(tmp_path / "cache")
    settings = Settings(state_dir=tmp_path, pause_sentence=0.5, pause_chapter=2.0)
    chunks = [Chunk(0, 0, "One.", Pause.SENTENCE, "v", key="a" * 64),
              Chunk(0, 1, "Two.", Pause.CHAPTER, "v", key="b" * 64),
              Chunk(1, 0, "Three.", Pause.SENTENCE, "v", key="c" * 64),
              Chunk(1, 1, "One.", Pause.SENTENCE, "v", key="a" * 64)]
    for c, seconds in zip(chunks[:3], (3.0, 61.0, 4.0)):
        cache.put(c.key, np.full(int(seconds * 24000), 0.1, np.float32), 24000)
    flag = Flag(key="c" * 64, chapter=1, index=0, text="Three.", why="heard something else", heard="Tree.",
                error=0.2, takes=3)
    [row] = flag_rows(chunks, [flag], cache, settings)
    assert row["position"] == 3 and row["chapter"] == 2 and row["idx"] == 1
    assert row["start"] == 3.0 + 0.5 + 61.0 + 2.0 and clock(row["start"]) == "0:01:06"
    assert flag_rows(chunks, [], cache, settings) == []


def test_the_summary_and_the_report_say_what_was_heard(tmp_path) -> None:
    store = Store(tmp_path / "voxd.sqlite3")
    job, _ = store.put("d" * 64, tmp_path / "book.epub")
    assert summary(job) == ""  # not read back: nothing to say
    store.progress(job.id, title="A \x1b]0;owned\x07Book", chunks_total=120, chunks_checked=117,
                   chunks_flagged=2, chunks_unchecked=1, unchecked_why="Whisper tiny.en does not know 'de'")
    job = store.require(job.id)
    assert summary(job) == "checked 117 of 120, 2 flagged, 1 not checked (Whisper tiny.en does not know 'de')"
    row = {"position": 12, "chapter": 2, "idx": 4, "start": 3725.0, "key": "k", "text": "The\x1b[2J text.",
           "why": "heard something else", "heard": "The test.", "error": 0.7, "takes": 3}
    text = describe(job, [row])
    assert "chunk 12 (chapter 2, at 1:02:05), 3 takes: heard something else" in text
    assert "heard: The test." in text and f"voxd retry {job.id} --flagged" in text
    assert "\x1b" not in text and "\x07" not in text  # a book's text never drives the terminal
