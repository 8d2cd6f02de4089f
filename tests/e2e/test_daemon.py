"""The daemon as a person runs it: files dropped into a real inbox, .m4b out, kills and restarts."""

from __future__ import annotations

import shutil
import time

import av
import mutagen.mp4
import pytest

from tests.support import long_book
from voxd.samples import SAMPLE_CHAPTERS, build_sample

pytestmark = pytest.mark.e2e


def chapter_titles(path):
    with av.open(str(path)) as container:
        return [c["metadata"].get("title") for c in container.chapters()]


def test_slow_copy_becomes_chaptered_m4b(daemon_factory, tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    d = daemon_factory(VOXD_SETTLE_SECONDS="3").start()
    data = book.read_bytes()
    target = d.inbox / "alice.epub"
    pieces = 4
    size = len(data) // pieces + 1
    with target.open("wb") as fh:  # several writes with pauses, each well shorter than settle_seconds
        for i in range(pieces):
            fh.write(data[i * size:(i + 1) * size])
            fh.flush()
            time.sleep(0.4)
            assert d.store().jobs() == [], "queued while still being written"
    [output] = d.wait_for(d.outputs, 120, "an .m4b in the outbox")
    assert output.relative_to(d.outbox).parts == ("Lewis Carroll", "Down the Rabbit-Hole", "Down the Rabbit-Hole.m4b")

    with av.open(str(output)) as container:
        [audio] = [s for s in container.streams if s.type == "audio"]
        assert audio.codec_context.name == "aac"
        assert container.duration / 1e6 > 10
    assert chapter_titles(output) == [title for title, _ in SAMPLE_CHAPTERS]
    tags = mutagen.mp4.MP4(output)
    assert tags["©nam"] == ["Down the Rabbit-Hole"] and tags["©ART"] == ["Lewis Carroll"]
    assert [c.title for c in tags.chapters] == [title for title, _ in SAMPLE_CHAPTERS]

    d.wait_for(lambda: (d.inbox / "done" / "alice.epub").exists(), 10, "source moved to done/")
    [job] = d.wait_for(lambda: [j for j in d.jobs() if j["status"] == "done"], 10, "job done")
    assert job["output"] == str(output)
    assert job["chunks_done"] == job["chunks_total"] > 0
    assert not [p for p in d.outbox.rglob("*") if p.name.startswith(".")], "temp file left in the outbox"
    assert d.stop() == 0


def test_same_book_twice_is_one_job_one_output(daemon_factory, tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    d = daemon_factory().start()
    shutil.copy(book, d.inbox / "alice.epub")
    shutil.copy(book, d.inbox / "alice (copy).epub")
    d.wait_for(lambda: [j for j in d.jobs() if j["status"] == "done"], 120, "job done")
    time.sleep(1.5)  # a late duplicate would show up as a second job by now
    assert len(d.jobs()) == 1
    assert len(d.outputs()) == 1
    assert sorted(p.name for p in (d.inbox / "done").iterdir()) == ["alice (copy).epub", "alice.epub"]
    kinds = [e.kind for e in d.store().events()]
    assert kinds.count("duplicate") == 1
    assert d.stop() == 0


def test_bad_file_fails_with_reason_and_daemon_keeps_serving(daemon_factory, tmp_path):
    d = daemon_factory().start()
    (d.inbox / "broken.epub").write_bytes(b"this is not a zip file at all")
    d.wait_for(lambda: (d.inbox / "failed" / "broken.epub.error.txt").exists(), 60, "error note")
    note = (d.inbox / "failed" / "broken.epub.error.txt").read_text()
    assert "broken.epub" in note and "EPUB" in note
    assert not (d.inbox / "broken.epub").exists()
    shutil.copy(build_sample(tmp_path / "alice.epub"), d.inbox / "alice.epub")
    d.wait_for(d.outputs, 120, "the next good book")
    # the .m4b is renamed in before the job is marked done: wait for that too
    d.wait_for(lambda: sorted(j["status"] for j in d.jobs()) == ["done", "failed"], 30, "the job marked done")
    assert d.stop() == 0


@pytest.mark.slow
def test_kill_mid_render_resumes_without_rendering_again(daemon_factory, tmp_path):
    book = long_book(tmp_path / "long.epub")
    d = daemon_factory(VOXD_ESPEAK__BATCH_SIZE="1", VOXD_CHUNK_TARGET_CHARS="60", VOXD_CHUNK_MAX_CHARS="120").start()
    shutil.copy(book, d.inbox / "long.epub")

    def some_progress():
        jobs = d.store().jobs()
        return jobs and jobs[0].chunks_total and 5 <= jobs[0].chunks_done < jobs[0].chunks_total // 2

    d.wait_for(some_progress, 120, "render under way")
    d.kill()
    cache = d.state / "cache"
    before = {p: p.stat().st_ino for p in cache.rglob("*.vxa")}
    assert before, "nothing cached before the kill"
    [job] = d.store().jobs()
    assert job.status.value == "running"  # as the killed daemon left it

    d.start()
    d.wait_for(d.outputs, 180, "the .m4b after restart")
    d.wait_for(lambda: d.store().jobs()[0].status.value == "done", 30, "the job marked done")
    after = {p: p.stat().st_ino for p in cache.rglob("*.vxa")}
    assert all(after[p] == ino for p, ino in before.items()), "a chunk rendered before the kill was rendered again"
    assert len(after) > len(before)
    [job] = d.store().jobs()
    assert job.status.value == "done" and job.attempts == 2
    assert "recovered" in [e.kind for e in d.store().events(job.id)]
    assert chapter_titles(d.outputs()[0]) == ["Part 1", "Part 2", "Part 3"]
    assert not [p for p in d.outbox.rglob("*") if p.name.startswith(".")]
    assert d.stop() == 0


def test_recording_dropped_in_voices_becomes_a_voice(daemon_factory, tmp_path):
    import numpy as np
    import soundfile

    from voxd.tts.base import Utterance
    from voxd.tts.espeak import EspeakEngine
    from voxd.voices import VoiceLibrary

    d = daemon_factory().start()
    speech = EspeakEngine().synthesize([Utterance(
        "My own voice, read into a phone in a quiet room, long enough to be cloned by the model.", "en-us")])
    rec = np.concatenate([np.zeros(speech.sample_rate, np.float32), speech.waveforms[0], speech.waveforms[0]])
    soundfile.write(d.inbox / "voices" / "Me.flac", rec, speech.sample_rate)
    soundfile.write(d.inbox / "voices" / "silence.wav", np.zeros(22050 * 5, np.float32), 22050)
    library = VoiceLibrary(d.state / "voices")
    d.wait_for(lambda: library.get("Me"), 30, "the voice in the library")
    d.wait_for(lambda: (d.inbox / "failed" / "silence.wav.error.txt").exists(), 30, "the bad recording's note")
    assert "no speech" in (d.inbox / "failed" / "silence.wav.error.txt").read_text()
    assert (d.inbox / "voices" / "done" / "Me.flac").exists()
    assert library.get("Me").kind == "cloned" and 5 <= library.get("Me").seconds <= 15
    assert d.jobs() == []  # recordings are never book jobs
    assert d.stop() == 0


def test_the_daemon_says_which_engine_auto_chose_and_why(daemon_factory):
    """No GPU here: the default engine is Piper (a voice is installed), said at start."""
    from voxd.tts.cuda_check import gather_proc

    if gather_proc()[0]:
        pytest.skip("this machine has NVIDIA hardware")
    d = daemon_factory(PATH="/usr/bin:/bin")  # no nvidia-smi
    d.config.write_text(d.config.read_text().replace('engine = "espeak"\n', ""))  # the default: auto
    d.start()
    try:
        assert 'engine = "auto" chose piper: Piper (en_US-joe-medium) on the CPU, since Qwen3-TTS cannot run fast ' \
               "here (no NVIDIA GPU on this machine)" in d.log()
    finally:
        assert d.stop() == 0
