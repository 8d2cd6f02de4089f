"""Piper for real: `voxd render --engine piper` and the daemon with engine = "piper", each giving a
chaptered, tagged book in the voice the test extra installs; a book in a language no Piper voice
speaks fails at once, naming the language, while the daemon goes on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import av
import mutagen.mp4
import pytest

from tests.support import piper_voice
from voxd.samples import SAMPLE_CHAPTERS, build_epub, build_sample

pytestmark = pytest.mark.e2e


def _check_book(path, chapters):
    with av.open(str(path)) as container:
        seconds = container.duration / 1e6
        titles = [c["metadata"].get("title") for c in container.chapters()]
    assert titles == chapters
    tags = mutagen.mp4.MP4(path)
    assert tags["©wrt"] == ["Piper (en_US-joe-medium)"]  # the narrator tag names the voice that spoke
    return seconds


def test_voxd_render_with_piper_makes_a_chaptered_book(tmp_path):
    book = build_sample(tmp_path / "alice.epub")
    model, _ = piper_voice()
    env = {**os.environ, "VOXD_PIPER__VOICE": str(model), "VOXD_STATE_DIR": str(tmp_path / "state")}
    out = subprocess.run([sys.executable, "-m", "voxd", "render", str(book), "--engine", "piper",
                          "-o", str(tmp_path / "alice.m4b")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    seconds = _check_book(tmp_path / "alice.m4b", [title for title, _ in SAMPLE_CHAPTERS])
    assert 40 < seconds < 120  # about a minute of narration at the default pace (eSpeak would say ~50 s)


def test_the_daemon_speaks_with_piper_and_refuses_a_language_it_has_no_voice_for(daemon_factory, tmp_path):
    model, _ = piper_voice()
    d = daemon_factory(VOXD_ENGINE="piper", VOXD_PIPER__VOICE=str(model)).start()
    german = build_epub(tmp_path / "rotkaeppchen.epub", title="Rotkäppchen", authors=("Brüder Grimm",),
                        chapters=[("Erstes Kapitel", ["Es war einmal eine kleine süße Dirn."])], language="de")
    shutil.copy(german, d.inbox / "rotkaeppchen.epub")
    note = d.inbox / "failed" / "rotkaeppchen.epub.error.txt"
    d.wait_for(note.exists, 60, "the German book's error note")
    text = note.read_text()
    assert "Piper does not speak 'de'" in text and "en_US-joe-medium (en-US)" in text
    shutil.copy(build_sample(tmp_path / "alice.epub"), d.inbox / "alice.epub")
    [output] = d.wait_for(d.outputs, 180, "the English book's .m4b")
    _check_book(output, [title for title, _ in SAMPLE_CHAPTERS])
    d.wait_for(lambda: sorted(j["status"] for j in d.jobs()) == ["done", "failed"], 30, "both jobs settled")
    assert d.stop() == 0
