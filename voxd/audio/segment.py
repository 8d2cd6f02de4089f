"""Find the best stretch of clean speech in a recording, to clone a narrator from.

A person drops whatever they have: a podcast clip with music, a phone memo with
room noise, an audiobook sample with a beep. The clone reference should be 5-15 s
of one continuous speaker, with no music, noise, tones or clipping. This module
labels 20 ms frames as speech or not from a few cheap features, closes short
pauses, and picks the longest clean region (trimmed to the most speech-dense
15 s), or joins a few shorter ones.

Features per frame, and why:
* energy above the recording's noise floor: silence is not speech;
* spectral flatness: broadband noise is flat, speech is not;
* peak concentration: a steady tone or a hum puts most energy in one bin;
* clipping: samples at full scale ruin a clone reference;
* energy modulation over ~0.5 s: speech rises and falls at syllable rate
  (2-8 Hz), music and drones much less.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PermanentError

FRAME_S = 0.02
MIN_SPEECH_S = 3.0
BEST_MIN_S = 5.0
BEST_MAX_S = 15.0


class RecordingError(PermanentError):
    """The recording cannot serve as a voice reference (silent, too short, unreadable)."""


@dataclass(frozen=True, slots=True)
class Segment:
    start: float  # seconds
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Choice:
    segments: tuple[Segment, ...]  # one, or a few joined
    speech_seconds: float  # all speech found in the recording

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)


def frame_features(audio: np.ndarray, rate: int) -> dict[str, np.ndarray]:
    """Per-frame energy (dB), flatness, peak concentration and clipping fraction."""
    hop = max(1, int(FRAME_S * rate))
    n = len(audio) // hop
    if n == 0:
        return {k: np.zeros(0) for k in ("db", "flatness", "peak", "clipped")}
    frames = audio[: n * hop].reshape(n, hop).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    db = 20 * np.log10(rms + 1e-12)
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(hop), axis=1)) ** 2 + 1e-12
    spectrum = spectrum[:, 1:]  # drop DC
    flatness = np.exp(np.mean(np.log(spectrum), axis=1)) / np.mean(spectrum, axis=1)
    peak = np.max(spectrum, axis=1) / np.sum(spectrum, axis=1)
    clipped = np.mean(np.abs(frames) >= 0.99, axis=1)
    return {"db": db, "flatness": flatness, "peak": peak, "clipped": clipped}


def speech_frames(audio: np.ndarray, rate: int) -> np.ndarray:
    """A boolean per 20 ms frame: does it look like clean speech?"""
    f = frame_features(audio, rate)
    db = f["db"]
    if db.size == 0:
        return np.zeros(0, bool)
    floor = np.percentile(db, 10)
    loud = (db > floor + 12) & (db > -55)
    clean = (f["flatness"] < 0.35) & (f["peak"] < 0.5) & (f["clipped"] < 0.001)
    # Syllabic modulation: the spread of energy over ~0.5 s around each frame.
    window = max(1, int(0.5 / FRAME_S))
    padded = np.pad(db, window // 2, mode="edge")
    spread = np.array([np.ptp(padded[i : i + window]) for i in range(db.size)])
    modulated = spread > 10
    raw = loud & clean & modulated
    return _close_gaps(raw, max_gap=int(0.5 / FRAME_S))


def _close_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill pauses shorter than max_gap frames between speech frames (breaths, stops)."""
    out = mask.copy()
    idx = np.flatnonzero(mask)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_gap:
            out[a:b] = True
    return out


def regions(mask: np.ndarray) -> list[Segment]:
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [Segment(s * FRAME_S, e * FRAME_S) for s, e in zip(starts, ends)]


def choose_reference(audio: np.ndarray, rate: int, *, name: str = "recording") -> Choice:
    """The best 5-15 s of speech; raises RecordingError when there is not enough of it."""
    if audio.size == 0:
        raise RecordingError(f"{name}: the recording is empty")
    mask = speech_frames(audio, rate)
    found = regions(mask)
    total = sum(r.duration for r in found)
    if total == 0:
        raise RecordingError(f"{name}: no speech found (silence, noise or music only)")
    if total < MIN_SPEECH_S:
        raise RecordingError(
            f"{name}: only {total:.1f} s of clean speech; a voice needs at least {MIN_SPEECH_S:.0f} s "
            f"(5-15 s of one speaker is best)"
        )
    by_length = sorted(found, key=lambda r: -r.duration)
    longest = by_length[0]
    if longest.duration >= BEST_MIN_S:
        return Choice((_densest_window(longest, mask),), total)
    picked: list[Segment] = []
    for r in by_length:  # join the longest few, in time order, up to the best length
        if sum(p.duration for p in picked) >= BEST_MIN_S:
            break
        if r.duration >= 1.0:
            picked.append(r)
    if sum(p.duration for p in picked) < MIN_SPEECH_S:
        picked = by_length[:5]
    return Choice(tuple(sorted(picked, key=lambda r: r.start)), total)


def _densest_window(region: Segment, mask: np.ndarray) -> Segment:
    if region.duration <= BEST_MAX_S:
        return region
    width = int(BEST_MAX_S / FRAME_S)
    a, b = int(round(region.start / FRAME_S)), int(round(region.end / FRAME_S))
    sums = np.convolve(mask[a:b].astype(float), np.ones(width), mode="valid")
    best = a + int(np.argmax(sums))
    return Segment(best * FRAME_S, (best + width) * FRAME_S)


def extract(audio: np.ndarray, rate: int, choice: Choice, *, gap_s: float = 0.25) -> np.ndarray:
    """The chosen audio, segments joined with short silences."""
    gap = np.zeros(int(gap_s * rate), np.float32)
    parts: list[np.ndarray] = []
    for seg in choice.segments:
        if parts:
            parts.append(gap)
        parts.append(audio[int(seg.start * rate) : int(seg.end * rate)].astype(np.float32))
    return np.concatenate(parts)
