"""voxd.verify.remote against a real ``voxd serve`` answering /v1/audio/transcriptions with its
Whisper (the read-back of a daemon elsewhere), and that endpoint's edges."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from tests.servers import free_port
from tests.support import ServeProcess
from voxd.audio.wav import encode_wav
from voxd.config import Settings
from voxd.tts.base import Utterance
from voxd.tts.registry import load_engine
from voxd.verify.listener import Listener
from voxd.verify.remote import RecognisersAway, RemoteRecogniser

SAID = "The old keeper climbed the narrow stairs each evening and counted every step."
OTHER = "Nobody in the village remembered a winter as long as that one had been."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with ServeProcess(tmp_path_factory.mktemp("serve-whisper"), env={"VOXD_VERIFY__MODE": "all"}) as s:
        yield s


@pytest.fixture(scope="module")
def takes(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[np.ndarray], int]:
    engine = load_engine(Settings(engine="piper", state_dir=tmp_path_factory.mktemp("piper"),
                                  piper={"noise_scale": 0.0, "noise_w": 0.0}))
    try:
        result = engine.synthesize([Utterance(SAID, "default", "en"), Utterance(OTHER, "default", "en")])
    finally:
        engine.close()
    return result.waveforms, result.sample_rate


def test_a_daemon_elsewhere_reads_its_takes_back_through_voxd_serve(server: ServeProcess, takes) -> None:
    (said, other), rate = takes
    listener = Listener(RemoteRecogniser([server.url], model="whisper-1", api_key=server.key))
    right = listener.hear(SAID, said, rate, "en")
    assert right.status == "passed" and right.score is not None and "keeper" in right.score.heard.lower()
    wrong = listener.hear(SAID, other, rate, "en")
    assert wrong.failed and wrong.score is not None and "village" in wrong.score.heard.lower()


def test_a_server_that_is_down_is_passed_over_and_none_left_is_not_checked(server: ServeProcess, takes) -> None:
    (said, _), rate = takes
    dead = f"http://127.0.0.1:{free_port()}/v1"
    both = RemoteRecogniser([dead, server.url], model="whisper-1", api_key=server.key)
    assert "keeper" in both.transcribe(said, rate, "en").text.lower()
    assert "keeper" in both.transcribe(said, rate, "en").text.lower()  # the dead one now backs off
    alone = Listener(RemoteRecogniser([dead], model="whisper-1"))
    verdict = alone.hear(SAID, said, rate, "en")
    assert verdict.status == "unchecked" and "no transcription server answered" in (verdict.why or "")
    with pytest.raises(RecognisersAway):
        RemoteRecogniser([dead], model="whisper-1").transcribe(said, rate, "en")


def post(server: ServeProcess, *, key: str | None = None, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.key if key is None else key}"}
    return httpx.post(f"{server.url}/audio/transcriptions", headers=headers, timeout=60, **kwargs)


@pytest.mark.slow
def test_the_endpoint_speaks_openai_s_formats(server: ServeProcess, takes) -> None:
    (said, _), rate = takes
    flac = io.BytesIO()
    soundfile.write(flac, said, rate, format="FLAC")
    text = post(server, files={"file": ("a.flac", flac.getvalue(), "audio/flac")},
                data={"model": "whisper-1", "response_format": "text"})
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert "keeper" in text.text.lower()
    verbose = post(server, files={"file": ("a.wav", encode_wav(said, rate), "audio/wav")},
                   data={"model": "whisper-1", "response_format": "verbose_json", "language": "en"})
    body = verbose.json()
    assert body["language"] == "en" and body["duration"] == pytest.approx(said.size / rate, abs=0.01)


@pytest.mark.parametrize("case, status, words", [
    ("no-key", 401, "API key"),
    ("no-file", 400, "multipart field 'file'"),
    ("not-multipart", 400, "no audio"),
    ("garbage", 400, "could not be decoded"),
    ("format", 400, "response_format"),
    ("language", 400, "does not know 'de'"),
])
def test_a_bad_transcription_request_is_an_error_envelope(server: ServeProcess, takes, case: str, status: int,
                                                          words: str) -> None:
    (said, _), rate = takes
    wav = encode_wav(said, rate)
    if case == "no-key":
        r = post(server, key="wrong", files={"file": ("a.wav", wav, "audio/wav")})
    elif case == "no-file":
        r = post(server, data={"model": "whisper-1"}, files={"other": ("a.txt", b"x", "text/plain")})
    elif case == "not-multipart":
        r = post(server, json={"file": "a.wav"})
    elif case == "garbage":
        r = post(server, files={"file": ("a.wav", b"\x00not audio at all" * 50, "audio/wav")})
    elif case == "format":
        r = post(server, files={"file": ("a.wav", wav, "audio/wav")}, data={"response_format": "srt"})
    else:
        r = post(server, files={"file": ("a.wav", wav, "audio/wav")}, data={"language": "de"})
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"]


def test_a_server_without_a_recogniser_says_so(tmp_path: Path, serve_espeak) -> None:
    r = post(serve_espeak, files={"file": ("a.wav", encode_wav(np.zeros(1600, np.float32), 16000), "audio/wav")})
    assert r.status_code == 404 and "reads back nothing" in r.json()["error"]["message"]


@pytest.mark.parametrize("kind", ["flac", "wav", "mp3"])
def test_audio_that_would_decode_to_hours_is_refused_before_it_is_decoded(server: ServeProcess, kind: str) -> None:
    # a few hundred kilobytes of compressed silence are half an hour of samples
    rate, minutes = 8000, 11
    silence = np.zeros(rate * 60 * minutes, np.float32)
    if kind == "flac":
        out = io.BytesIO()
        soundfile.write(out, silence, rate, format="FLAC")
        payload = out.getvalue()
    elif kind == "wav":
        payload = encode_wav(silence, rate)
    else:
        from voxd.audio.speech_formats import encode

        payload = encode(silence, rate, "mp3")
    r = post(server, files={"file": (f"long.{kind}", payload, "application/octet-stream")})
    assert r.status_code == 413, r.text
    assert "transcribes at most 600 s" in r.json()["error"]["message"]


def test_a_chunked_upload_is_refused_once_it_passes_the_cap(server: ServeProcess) -> None:
    def parts():  # no Content-Length: the server must count what it reads
        yield b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
        for _ in range(20):
            yield b"\0" * (1 << 20)
    r = httpx.post(f"{server.url}/audio/transcriptions", content=parts(), timeout=60,
                   headers={"Authorization": f"Bearer {server.key}", "Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413 and "over" in r.json()["error"]["message"]


def test_a_server_that_refuses_the_take_is_passed_over_for_one_that_hears_it(server: ServeProcess, serve_espeak,
                                                                             takes) -> None:
    (said, _), rate = takes
    # serve_espeak has no recogniser (404) and takes another key: both refusals, neither the end
    both = RemoteRecogniser([serve_espeak.url, server.url], model="whisper-1", api_key=server.key)
    for _ in range(2):  # whichever server the turn starts with
        assert "keeper" in both.transcribe(said, rate, "en").text.lower()
