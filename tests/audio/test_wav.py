"""WAV bytes as servers send them (voxd/audio/wav.py), checked against files soundfile writes."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile

from voxd.audio.wav import WavError, decode_wav, encode_flac, encode_pcm, encode_wav

RATE = 24000


def tone(seconds: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def written(samples: np.ndarray, subtype: str, rate: int = RATE) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="WAV", subtype=subtype)
    return out.getvalue()


@pytest.mark.parametrize("subtype, tolerance", [("PCM_16", 1e-4), ("PCM_24", 1e-6), ("PCM_32", 1e-8),
                                                 ("FLOAT", 0), ("DOUBLE", 0), ("PCM_U8", 1e-2)])
def test_every_common_encoding_decodes_to_the_same_float_samples(subtype, tolerance):
    wave = tone()
    got = decode_wav(written(wave, subtype))
    assert got.sample_rate == RATE and not got.cut_short
    assert got.samples.dtype == np.float32 and got.samples.shape == wave.shape
    np.testing.assert_allclose(got.samples, wave, atol=tolerance + 1e-6)
    assert got.declared_seconds == pytest.approx(0.5)


def test_stereo_is_mixed_to_mono():
    left, right = tone(), np.zeros(int(0.5 * RATE), np.float32)
    got = decode_wav(written(np.stack([left, right], axis=1), "PCM_16"))
    np.testing.assert_allclose(got.samples, left / 2, atol=1e-4)


def test_what_we_encode_reads_back_and_soundfile_agrees():
    wave = tone()
    data = encode_wav(wave, RATE)
    assert decode_wav(data).samples.shape == wave.shape
    theirs, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == RATE
    np.testing.assert_allclose(theirs, wave, atol=1e-4)
    assert encode_pcm(wave) == data[44:]
    flac, rate = soundfile.read(io.BytesIO(encode_flac(wave, RATE)), dtype="float32")
    np.testing.assert_allclose(flac, wave, atol=1e-4)


def test_a_streamed_header_with_unknown_sizes_is_read_to_the_end():
    data = bytearray(encode_wav(tone(), RATE))
    struct.pack_into("<I", data, 4, 0xFFFFFFFF)
    struct.pack_into("<I", data, 40, 0xFFFFFFFF)
    got = decode_wav(bytes(data))
    assert got.samples.size == int(0.5 * RATE) and not got.cut_short and got.declared_seconds is None


def test_a_body_shorter_than_its_header_is_cut_short():
    data = encode_wav(tone(), RATE)
    got = decode_wav(data[: 44 + 1001])  # half a sample at the end, too
    assert got.cut_short and got.samples.size == 500
    assert got.declared_seconds == pytest.approx(0.5)


def test_chunks_before_the_data_are_skipped_with_their_padding():
    data = encode_wav(tone(), RATE)
    extra = b"LIST" + struct.pack("<I", 5) + b"abcde" + b"\0"  # odd size: one pad byte
    got = decode_wav(data[:36] + extra + data[36:])
    assert got.samples.size == int(0.5 * RATE) and not got.cut_short


@pytest.mark.parametrize("data, words", [
    (b"ID3\x04\x00" + b"\0" * 40, "not a WAV file"),
    (b"", "not a WAV file"),
    (b'{"error": "no"}', "not a WAV file"),
    (b"RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00abcd", "before its format chunk"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + struct.pack("<HHIIHH", 2, 1, 8000, 8000, 1, 4), "no audio data"),
])
def test_what_is_not_a_wav_says_why(data, words):
    with pytest.raises(WavError, match=words):
        decode_wav(data)


def test_an_encoding_we_cannot_read_is_named():
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 40, b"WAVE", b"fmt ", 16, 2, 1, 8000, 16000, 2, 16,
                         b"data", 4)
    with pytest.raises(WavError, match="format 2, 16 bits"):
        decode_wav(header + b"abcd")
