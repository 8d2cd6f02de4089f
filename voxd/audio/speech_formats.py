"""A spoken wave in each ``response_format`` OpenAI's speech API names, for ``voxd serve``.

wav, pcm and flac are what voxd's own remote engine asks for (lossless, so a book rendered
through a server is the book rendered in-process). mp3, opus and aac are for the stock
clients of that API: its default format is mp3, and a client that never names one expects
mp3 bytes. They are encoded with PyAV (the same FFmpeg that writes the .m4b), each at a
sample rate its codec takes, in the container OpenAI sends: raw MP3, Ogg Opus, ADTS AAC.
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import cast

import numpy as np

from .wav import encode_flac, encode_pcm, encode_wav

MEDIA_TYPES = {
    "wav": "audio/wav", "pcm": "audio/pcm", "flac": "audio/flac",
    "mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac",
}

#: format -> (container, codec, the sample rates the codec takes, best first when resampling)
_LOSSY = {
    "mp3": ("mp3", "libmp3lame", (24000, 22050, 16000, 32000, 44100, 48000)),
    "opus": ("ogg", "libopus", (24000, 48000, 16000, 12000, 8000)),
    "aac": ("adts", "aac", (24000, 22050, 16000, 32000, 44100, 48000)),
}
_BITRATE = 64_000  # mono speech: transparent enough for a phone, a tenth of the WAV's size


def encode(wave: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """``wave`` (mono float32) as ``fmt``, one of :data:`MEDIA_TYPES`."""
    if fmt == "pcm":
        return encode_pcm(wave)
    samples = np.asarray(wave, dtype=np.float32)
    if samples.size == 0:  # a file of no audio is one players and decoders refuse: 10 ms of silence
        samples = np.zeros(max(1, sample_rate // 100), np.float32)
    if fmt == "flac":
        return encode_flac(samples, sample_rate)
    if fmt == "wav":
        return encode_wav(samples, sample_rate)
    return _lossy(samples, sample_rate, *_LOSSY[fmt])


def _lossy(wave: np.ndarray, rate: int, container_format: str, codec: str, rates: tuple[int, ...]) -> bytes:
    import av
    from av.audio.stream import AudioStream

    target = rate if rate in rates else rates[0]
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        stream = cast(AudioStream, container.add_stream(codec, rate=target, layout="mono"))
        stream.bit_rate = _BITRATE
        resampler = av.AudioResampler(format=stream.codec_context.format, layout="mono", rate=target)
        frame = av.AudioFrame.from_ndarray(np.clip(wave, -1.0, 1.0).reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        frame.pts = 0
        for piece in [*resampler.resample(frame), *resampler.resample(None)]:
            container.mux(stream.encode(piece))
        container.mux(stream.encode(None))
    return out.getvalue()
