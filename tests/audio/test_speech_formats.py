"""Each response_format voxd serve offers, decoded again by FFmpeg (PyAV)."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from voxd.audio.speech_formats import MEDIA_TYPES, encode
from voxd.audio.wav import decode_wav


def tone(rate: int, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def decoded(data: bytes) -> tuple[str, str, np.ndarray, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
        if samples.dtype.kind == "i":  # 16-bit WAV and FLAC
            samples = samples / 32768.0
        return container.format.name, stream.codec_context.name, samples, stream.rate


@pytest.mark.parametrize(("fmt", "container", "codec"), [
    ("mp3", "mp3", "mp3"), ("opus", "ogg", "opus"), ("aac", "aac", "aac"), ("flac", "flac", "flac"),
    ("wav", "wav", "pcm"),
])
@pytest.mark.parametrize("rate", [24000, 22050])  # Qwen3-TTS's rate; eSpeak NG's, which Opus does not take
def test_each_format_decodes_to_the_same_sound(fmt, container, codec, rate):
    wave = tone(rate)
    name, codec_name, samples, out_rate = decoded(encode(wave, rate, fmt))
    assert container in name and codec_name.startswith(codec)
    seconds = samples.size / out_rate
    assert seconds == pytest.approx(1.5, abs=0.12)  # encoders add a few ms of priming
    level = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert level == pytest.approx(0.4 / np.sqrt(2), rel=0.15)  # the tone, not silence or noise
    spectrum = np.abs(np.fft.rfft(samples[: out_rate]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=3)  # at its pitch: no rate mix-up


def test_pcm_is_the_bare_samples_and_every_format_has_a_media_type():
    wave = tone(24000, 0.5)
    assert len(encode(wave, 24000, "pcm")) == wave.size * 2
    assert decode_wav(encode(wave, 24000, "wav")).sample_rate == 24000
    assert set(MEDIA_TYPES) == {"wav", "pcm", "flac", "mp3", "opus", "aac"}


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "wav", "flac"])
def test_an_empty_wave_is_a_valid_file_too(fmt):
    _, _, samples, rate = decoded(encode(np.zeros(0, np.float32), 24000, fmt))
    assert samples.size / rate < 0.1 and not np.any(np.abs(samples) > 0.01)


def test_lossy_formats_are_a_fraction_of_the_wav():
    wave = tone(24000, 4.0)
    wav = len(encode(wave, 24000, "wav"))
    for fmt in ("mp3", "opus", "aac"):
        assert len(encode(wave, 24000, fmt)) < wav / 4, fmt
