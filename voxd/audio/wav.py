"""WAV bytes in and out, as speech servers send and take them.

Why not soundfile: servers that stream write WAV headers before they know the
length, with 0xFFFFFFFF (or 0) in the size fields, and a server that dies while
sending leaves a body shorter than its header says. libsndfile rejects the first
and silently reads the second. A client needs both told apart: a streamed header
is fine, a short body is a bad take to be asked for again. So the parser here
is small and strict about what it reports, lenient about what it accepts (PCM
8/16/24/32-bit, float 32/64-bit, WAVE_FORMAT_EXTENSIBLE, any channel count,
mixed down to mono).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


class WavError(ValueError):
    """The bytes are not a WAV file voxd can read; the message says why."""


@dataclass(frozen=True, slots=True)
class Wav:
    samples: np.ndarray  # float32, mono, in [-1, 1]
    sample_rate: int
    #: The body held fewer bytes than the header promised: the sender stopped early.
    cut_short: bool = False
    #: Seconds the header promised, when it said (a streamed header does not).
    declared_seconds: float | None = None


def decode_wav(data: bytes) -> Wav:
    """Read a WAV file from memory; :class:`WavError` when it is not one."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        start = data[:16]
        raise WavError(f"not a WAV file (it starts with {start!r})")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise WavError("the WAV header's format chunk is cut short")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == _EXTENSIBLE and size >= 40 and body + 26 <= len(data):
                (tag,) = struct.unpack_from("<H", data, body + 24)  # the sub-format GUID starts with the tag
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                raise WavError("the WAV data comes before its format chunk")
            available = len(data) - body
            if size in _UNKNOWN_SIZES:  # written before the length was known (a stream)
                return _samples(data[body:], *fmt, cut_short=False, declared=None)
            cut = size > available
            return _samples(data[body : body + min(size, available)], *fmt, cut_short=cut, declared=size)
        if size in _UNKNOWN_SIZES and cid != b"data":
            break
        pos = body + size + (size & 1)  # chunks are padded to even sizes
    raise WavError("the WAV file has no audio data" if fmt else "the WAV file has no format chunk")


def _samples(raw: bytes, tag: int, channels: int, rate: int, bits: int, *, cut_short: bool,
             declared: int | None) -> Wav:
    if channels < 1 or not 1000 <= rate <= 384_000:
        raise WavError(f"the WAV header is implausible ({channels} channels at {rate} Hz)")
    width = bits // 8
    frame = width * channels
    if frame == 0:
        raise WavError(f"the WAV header says {bits} bits per sample")
    if len(raw) % frame:
        cut_short = True
        raw = raw[: len(raw) - len(raw) % frame]
    if tag == _PCM and bits == 16:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif tag == _PCM and bits == 8:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif tag == _PCM and bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = ints.astype(np.float32) / float(1 << 23)
    elif tag == _PCM and bits == 32:
        samples = (np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    elif tag == _FLOAT and bits in (32, 64):
        samples = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float32)
    else:
        raise WavError(f"unsupported WAV encoding (format {tag}, {bits} bits)")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    samples = np.clip(np.nan_to_num(samples), -1.0, 1.0).astype(np.float32, copy=False)
    seconds = declared / frame / rate if declared is not None else None
    return Wav(samples=samples, sample_rate=rate, cut_short=cut_short, declared_seconds=seconds)


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """Mono 16-bit PCM WAV: what every client reads."""
    pcm = encode_pcm(samples)
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, _PCM, 1, sample_rate, sample_rate * 2, 2, 16,
        b"data", len(pcm),
    )
    return header + pcm


def encode_pcm(samples: np.ndarray) -> bytes:
    """Raw little-endian 16-bit mono samples (OpenAI's ``pcm`` format), no header."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return (np.round(clipped * 32767.0)).astype("<i2").tobytes()


def encode_flac(samples: np.ndarray, sample_rate: int) -> bytes:
    import soundfile

    out = io.BytesIO()
    soundfile.write(out, np.asarray(samples, dtype=np.float32), sample_rate, format="FLAC", subtype="PCM_16")
    return out.getvalue()
