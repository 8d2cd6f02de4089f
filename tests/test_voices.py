"""The voice library with real recordings: files written by soundfile and PyAV, decoded back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from voxd.audio.segment import RecordingError
from voxd.errors import PermanentError, VoiceError
from voxd.tts.base import Utterance
from voxd.tts.espeak import EspeakEngine
from voxd.voices import SAMPLE_RATE, VoiceLibrary, import_recording, read_audio


@pytest.fixture(scope="module")
def speech():
    out = EspeakEngine().synthesize([Utterance(
        "I am reading this sentence so that a voice can be made from it. It has to be long enough, "
        "so here is another one, spoken at an easy pace.", "en-us")])
    return out.waveforms[0], out.sample_rate


def write_recording(path, speech, lead=1.0):
    audio, rate = speech
    rec = np.concatenate([np.zeros(int(lead * rate), np.float32), audio, np.zeros(rate, np.float32)])
    soundfile.write(path, rec, rate)
    return path


def test_recording_becomes_a_cloned_voice(tmp_path, speech):
    lib = VoiceLibrary(tmp_path / "voices")
    info = import_recording(lib, write_recording(tmp_path / "Narrator.flac", speech))
    assert info.name == "Narrator" and info.kind == "cloned" and info.source == "Narrator.flac"
    assert info.transcript is None
    audio, rate = lib.reference("Narrator")
    assert rate == SAMPLE_RATE and 5 <= len(audio) / rate <= 15
    assert [v.name for v in lib.list()] == ["Narrator"]
    assert json.loads((lib.folder("Narrator") / "voice.json").read_text())["kind"] == "cloned"
    assert not [p for p in (tmp_path / "voices").iterdir() if p.name.startswith(".")]


def test_transcript_beside_recording_is_kept(tmp_path, speech):
    lib = VoiceLibrary(tmp_path / "voices")
    rec = write_recording(tmp_path / "ann.wav", speech)
    (tmp_path / "ann.txt").write_text("I am reading this sentence so that a voice can be made from it.\n")
    info = import_recording(lib, rec)
    assert info.transcript.startswith("I am reading")


def test_other_formats_decode(tmp_path, speech):
    import av

    audio, rate = speech
    path = tmp_path / "memo.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    decoded = read_audio(path)
    assert abs(len(decoded) / SAMPLE_RATE - len(audio) / rate) < 0.1


def test_bad_recordings_fail_clearly(tmp_path):
    lib = VoiceLibrary(tmp_path / "voices")
    silent = tmp_path / "quiet.wav"
    soundfile.write(silent, np.zeros(22050 * 8, np.float32), 22050)
    with pytest.raises(RecordingError, match="quiet.wav: no speech"):
        import_recording(lib, silent)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\x00\x01 not audio" * 100)
    with pytest.raises(RecordingError, match="junk.mp3: cannot be read as audio"):
        import_recording(lib, junk)
    with pytest.raises(PermanentError, match="not a recording"):
        import_recording(lib, tmp_path / "notes.pdf")
    assert lib.list() == []


def test_designed_voice_and_names(tmp_path):
    lib = VoiceLibrary(tmp_path / "voices")
    info = lib.add_design("Warm Baritone", "a warm,  low, unhurried male voice")
    assert lib.get("Warm Baritone") == info and info.source == "a warm, low, unhurried male voice"
    with pytest.raises(VoiceError):
        lib.add_design("../escape", "x")
    with pytest.raises(VoiceError):
        lib.add_design("ok", "   ")
    assert lib.remove("Warm Baritone") and lib.list() == []


def test_replacing_a_voice_is_atomic(tmp_path, speech):
    lib = VoiceLibrary(tmp_path / "voices")
    lib.add_design("v", "first")
    lib.add_design("v", "second")
    assert lib.get("v").source == "second"
    assert [p.name for p in (tmp_path / "voices").iterdir()] == ["v"]
