"""A wave made faster or slower without changing its pitch: FFmpeg's ``atempo`` filter,
through PyAV's filter graph (PyAV is voxd's encoder already).

For ``voxd serve``'s ``speed`` (0.25 to 4.0, as OpenAI's API takes it) with an engine that
has no rate of its own (Qwen3-TTS, a speech server), and for what lies beyond eSpeak's own
rate range. ``atempo`` takes 0.5 to 2.0 in older FFmpeg builds, so a larger change is a chain
of them.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

#: The speeds OpenAI's /v1/audio/speech takes.
SPEED_MIN = 0.25
SPEED_MAX = 4.0


def _steps(factor: float) -> list[float]:
    """``factor`` as atempo factors each within 0.5 to 2.0, whose product it is."""
    steps = []
    while factor < 0.5:
        steps.append(0.5)
        factor /= 0.5
    while factor > 2.0:
        steps.append(2.0)
        factor /= 2.0
    return [*steps, factor]


def stretch(wave: np.ndarray, rate: int, speed: float) -> np.ndarray:
    """``wave`` (float32, mono, at ``rate``) played ``speed`` times as fast, at the same pitch:
    about ``len(wave) / speed`` samples. A speed of 1 returns it as it is."""
    if not SPEED_MIN <= speed <= SPEED_MAX:
        raise ValueError(f"speed must be from {SPEED_MIN} to {SPEED_MAX}, not {speed}")
    if abs(speed - 1.0) < 1e-6 or wave.size == 0:
        return wave
    import av
    import av.filter

    graph = av.filter.Graph()
    chain = [graph.add_abuffer(sample_rate=rate, format="flt", layout="mono", time_base=Fraction(1, rate))]
    chain += [graph.add("atempo", f"{step:.6f}") for step in _steps(speed)]
    chain.append(graph.add("abuffersink"))
    for upstream, downstream in zip(chain, chain[1:]):
        upstream.link_to(downstream)
    graph.configure()
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave, dtype=np.float32).reshape(1, -1), format="flt",
                                       layout="mono")
    frame.sample_rate = rate
    frame.pts = 0
    frame.time_base = Fraction(1, rate)
    graph.push(frame)
    graph.push(None)
    out: list[np.ndarray] = []
    while True:
        try:
            done = graph.pull()
        except (av.BlockingIOError, av.EOFError):
            break
        out.append(done.to_ndarray().reshape(-1))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)
