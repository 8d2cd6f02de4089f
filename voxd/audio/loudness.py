"""Loudness of a chapter, measured as it streams past, and the gain that levels it.

Why it looks like this:

* ITU-R BS.1770-4 integrated loudness: K-weighting (a high shelf, then a
  high-pass), mean square over 400 ms blocks that overlap by 75 %, an absolute
  gate at -70 LUFS and a relative gate 10 LU below the loudness of the blocks
  that passed the first. Mono, so the channel weight is 1.
* Streaming. A chapter can be an hour of audio, so nothing here keeps the
  signal: :class:`LoudnessMeter` carries the filters' state from one piece to the
  next and keeps one number per 100 ms (the sum of squares of that sub-block;
  36,000 floats an hour). A 400 ms block is four consecutive sub-blocks, so the
  gating can run at the end over those sums alone.
* Pure numpy, no scipy. Each biquad is split into its FIR half and an all-pole
  half; the all-pole half is a pair of first-order recursions (partial
  fractions over its two poles), and a first-order recursion
  ``y[n] = p*y[n-1] + u[n]`` is evaluated a block at a time with cumulative sums
  (:func:`_scan`), in float64. It agrees with ``scipy.signal.lfilter`` to about
  1e-10 and runs at tens of ns per sample.
* The filter coefficients are designed for any sample rate from the analogue
  prototypes that reproduce the 48 kHz coefficients printed in BS.1770 (the
  parameters libebur128 uses, Brecht De Man's derivation; pyloudnorm calls them
  "DeMan").
* Peaks: the sample peak, and a true-peak estimate with 4x oversampling (a
  12-tap-per-phase windowed-sinc interpolator, as BS.1770 Annex 2 suggests), so
  the level left for the AAC encoder accounts for peaks between samples.
* The gain (:func:`leveling`) moves the chapter to the target loudness. Speech
  is peaky (eSpeak NG's peaks sit about 19 dB over its loudness, and -18 LUFS
  under a -3 dBTP ceiling leaves room for 15), so peaks that the gain pushes over
  the ceiling are pulled back by :func:`limit`, a look-ahead limiter that works on
  one chunk in memory, by at most ``MAX_LIMITING_DB``. A chapter that would need
  more (a click in a quiet recording) gets less gain instead and stays quieter
  than the target: the ceiling always wins. The ceiling holds for the PCM handed
  to the AAC encoder; decoded AAC can land a few tenths of a dB above it, which
  is what the default -3 dBFS leaves room for. Limiting takes a little loudness
  with it (about 0.7 LU for eSpeak NG at the defaults).
"""

from __future__ import annotations

import functools
import math
from array import array
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ABSOLUTE_GATE = -70.0  # LUFS
RELATIVE_GATE = -10.0  # LU below the absolute-gated loudness
_OFFSET = -0.691  # BS.1770's constant: a 997 Hz sine at 0 dBFS reads -3.01 LUFS
_SUB_BLOCKS_PER_BLOCK = 4  # 400 ms blocks from 100 ms sub-blocks: 75 % overlap

# Analogue prototypes of the K-weighting stages (libebur128; De Man).
_SHELF_F0 = 1681.974450955533
_SHELF_GAIN_DB = 3.999843853973347
_SHELF_Q = 0.7071752369554196
_SHELF_VB_EXPONENT = 0.4996667741545416
_HIGHPASS_F0 = 38.13547087602444
_HIGHPASS_Q = 0.5003270373238773

# True peak: 4x oversampling, interpolation kernel sinc(t) * lanczos window over |t| < 6.
_TP_FACTOR = 4
_TP_HALF = 6
_TP_TAPS = 2 * _TP_HALF  # per phase

# The most a limiter may pull a peak down before the gain is lowered instead (dB), and
# how long it takes to do it and to let go.
MAX_LIMITING_DB = 6.0
LIMITER_RAMP_SECONDS = 0.02

_SCAN_MAX_BLOCK = 4096
_PIECE = 16384  # samples filtered at a time


def k_weighting(rate: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two K-weighting biquads at ``rate`` as ``(b, a)`` pairs with ``a[0] == 1``."""
    if rate <= 2 * _SHELF_F0:
        raise ValueError(f"sample rate {rate} Hz is too low for K-weighting")
    k = math.tan(math.pi * _SHELF_F0 / rate)
    vh = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    vb = vh**_SHELF_VB_EXPONENT
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf_b = np.array(
        [(vh + vb * k / _SHELF_Q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / _SHELF_Q + k * k) / a0]
    )
    shelf_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _SHELF_Q + k * k) / a0])
    k = math.tan(math.pi * _HIGHPASS_F0 / rate)
    a0 = 1.0 + k / _HIGHPASS_Q + k * k
    pass_b = np.array([1.0, -2.0, 1.0])
    pass_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HIGHPASS_Q + k * k) / a0])
    return [(shelf_b, shelf_a), (pass_b, pass_a)]


@functools.lru_cache(maxsize=64)
def _powers(p: complex, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p**k, p**-k and p**(k+1) for k < length (read-only; shared between calls)."""
    powers = p ** np.arange(length)
    tables = (powers, 1.0 / powers, p * powers)
    for table in tables:
        table.flags.writeable = False
    return tables


def _scan(u: np.ndarray, p: complex, state: complex, scale: complex = 1.0) -> np.ndarray:
    """``y[n] = p*y[n-1] + scale*u[n]`` with ``y[-1] = state``, for a stable pole ``|p| < 1``.

    Inside a block of ``L`` samples, ``y[k] = p**k * cumsum(scale * u * p**-k)[k]``:
    exact, and safe as long as ``|p|**-L`` stays far from overflowing (``L`` is
    chosen so that it is at most e**100). The value each block hands to the next
    is the same recursion over the blocks' end values with pole ``p**L``, solved by
    calling this function again; ``|p**L|`` is much smaller, so that recursion
    ends within two or three levels. A pole so small that its impulse response is
    gone within a dozen samples is a short FIR.
    """
    n = u.size
    magnitude = abs(p)
    decay = -math.log(magnitude) if magnitude > 0 else math.inf
    if decay >= 4.0:  # |p| < 0.02
        taps = min(n, int(math.ceil(40.0 / decay)) + 1) if math.isfinite(decay) else min(n, 1)
        y = (scale * u).astype(np.complex128)
        power = complex(scale)
        for lag in range(1, taps):
            power *= p
            y[lag:] += power * u[: n - lag]
        y[:taps] += (p ** np.arange(1, taps + 1)) * state
        return y
    length = int(min(_SCAN_MAX_BLOCK, 100.0 / decay))
    powers, inverse, shifted = _powers(p, length)
    full = n // length
    rest = n - full * length
    out = np.empty(n, dtype=np.complex128)
    head = out[: full * length].reshape(full, length)
    np.multiply(u[: full * length].reshape(full, length), scale * inverse, out=head)
    np.cumsum(head, axis=1, out=head)
    head *= powers
    ends = head[:, -1].copy()
    if rest:
        tail = out[full * length :]
        np.multiply(u[full * length :], scale * inverse[:rest], out=tail)
        np.cumsum(tail, out=tail)
        tail *= powers[:rest]
        # as if the block were padded with zeros to its full length
        ends = np.append(ends, tail[-1] * p ** (length - rest))
    if ends.size == 1:
        before = np.array([state], dtype=np.complex128)
    else:
        before = np.empty(ends.size, dtype=np.complex128)
        before[0] = state
        before[1:] = _scan(ends[:-1], p**length, state)
    head += before[:full, None] * shifted[None, :]
    if rest:
        out[full * length :] += before[-1] * shifted[:rest]
    return out


class Biquad:
    """A second-order IIR section that keeps its state between calls (float64 inside).

    ``y = (b0 + b1 z^-1 + b2 z^-2) / (1 + a1 z^-1 + a2 z^-2) x``. The poles must be
    inside the unit circle.
    """

    def __init__(self, b: np.ndarray, a: np.ndarray) -> None:
        b = np.asarray(b, dtype=np.float64)
        a = np.asarray(a, dtype=np.float64)
        if b.shape != (3,) or a.shape != (3,):
            raise ValueError("a biquad needs three b and three a coefficients")
        self._b = b / a[0]
        a = a / a[0]
        poles = np.roots(a)
        if poles.size == 1:  # a2 == 0: one pole and one at the origin
            poles = np.append(poles, 0.0)
        elif poles.size == 0:
            poles = np.zeros(2)
        if np.any(np.abs(poles) >= 1.0):
            raise ValueError(f"biquad poles {poles} are not both inside the unit circle")
        p1, p2 = complex(poles[0]), complex(poles[1])
        self._repeated = abs(p1 - p2) < 1e-9
        self._conjugate = not self._repeated and p1.imag != 0 and abs(p1 - p2.conjugate()) < 1e-12
        self._p1, self._p2 = p1, p2
        self._c1 = self._c2 = 1.0 + 0j
        if not self._repeated:
            self._c1 = p1 / (p1 - p2)
            self._c2 = p2 / (p2 - p1)
        self._x_history = np.zeros(2)  # x[n-2], x[n-1]
        self._s1 = 0j  # state of each first-order recursion
        self._s2 = 0j

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if x.size <= _PIECE:
            return self._filter(x)
        # pieces that stay in the CPU cache: about twice as fast on long inputs
        return np.concatenate([self._filter(x[i : i + _PIECE]) for i in range(0, x.size, _PIECE)])

    def _filter(self, x: np.ndarray) -> np.ndarray:
        if x.size == 0:
            return x.copy()
        extended = np.concatenate((self._x_history, x))
        b0, b1, b2 = self._b
        v = b0 * extended[2:]
        v += b1 * extended[1:-1]
        v += b2 * extended[:-2]
        self._x_history = extended[-2:].copy()
        if self._repeated:  # cascade: 1/(1 - p q)^2
            w = _scan(v, self._p1, self._s1)
            y = _scan(w, self._p2, self._s2)
            self._s1, self._s2 = complex(w[-1]), complex(y[-1])
            return y.real.copy()
        w1 = _scan(v, self._p1, self._s1, self._c1)
        self._s1 = complex(w1[-1])
        if self._conjugate:  # the other recursion is this one's complex conjugate
            return 2.0 * w1.real
        w2 = _scan(v, self._p2, self._s2, self._c2)
        self._s2 = complex(w2[-1])
        return (w1 + w2).real


def _true_peak_kernels() -> np.ndarray:
    """Interpolation taps, one row per phase 1/4, 2/4, 3/4 (phase 0 is the sample itself).

    Row ``f`` applied to ``x[n-5 .. n+6]`` gives the signal at ``n + f/4``.
    """
    rows = []
    for phase in range(1, _TP_FACTOR):
        t = phase / _TP_FACTOR + (_TP_HALF - 1) - np.arange(_TP_TAPS)  # distance to each tap
        rows.append(np.sinc(t) * np.sinc(t / _TP_HALF))
    return np.array(rows, dtype=np.float32)


_TP_KERNELS_T = np.ascontiguousarray(_true_peak_kernels().T)  # (taps, phases)
# No interpolated value can exceed the largest sample by more than this factor.
_TP_MAX_OVERSHOOT = float(np.abs(_TP_KERNELS_T).sum(axis=0).max())


class LoudnessMeter:
    """Integrated loudness (BS.1770-4) and peaks of one mono signal fed in pieces.

    Feed it with :meth:`add` in any piece sizes; the result does not depend on
    how the signal was cut. Only complete 100 ms sub-blocks count, so a signal
    shorter than 400 ms has no loudness (``-inf``).
    """

    def __init__(self, rate: int, *, true_peak: bool = True) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self._filters = [Biquad(b, a) for b, a in k_weighting(rate)]
        self._sub = array("d")  # sum of squares of each complete 100 ms sub-block
        self._acc = 0.0  # sum of squares of the sub-block in progress
        self._samples = 0
        self._sample_peak = 0.0
        self._true_peak = 0.0 if true_peak else None
        self._tp_history = np.zeros(_TP_TAPS - 1, dtype=np.float32)

    @property
    def samples(self) -> int:
        return self._samples

    def add(self, pcm: np.ndarray) -> None:
        x = np.asarray(pcm).reshape(-1)
        n = x.size
        if n == 0:
            return
        self._sample_peak = max(self._sample_peak, float(np.max(np.abs(x))))
        if self._true_peak is not None:
            self._track_true_peak(x)
        y = x.astype(np.float64)
        for stage in self._filters:
            y = stage(y)
        squares = y * y
        start = self._samples
        end = start + n
        # boundaries of sub-blocks: sample (j * rate) // 10 for j = 1, 2, ...
        first = len(self._sub) + 1
        last = (10 * end) // self.rate + 1
        js = np.arange(first, last + 1, dtype=np.int64)
        cuts = (js * self.rate) // 10 - start
        cuts = cuts[(cuts > 0) & (cuts <= n)]
        if cuts.size == 0:
            self._acc += float(np.sum(squares))
        else:
            starts = np.concatenate(([0], cuts[cuts < n]))
            sums = np.add.reduceat(squares, starts)
            sums[0] += self._acc
            if cuts[-1] == n:
                self._sub.extend(sums.tolist())
                self._acc = 0.0
            else:
                self._sub.extend(sums[:-1].tolist())
                self._acc = float(sums[-1])
        self._samples = end

    def _track_true_peak(self, x: np.ndarray) -> None:
        buf = np.concatenate((self._tp_history, x.astype(np.float32, copy=False)))
        self._true_peak = max(self._true_peak or 0.0, _interpolated_peak(buf))
        self._tp_history = buf[-(_TP_TAPS - 1) :].copy()

    def block_loudness(self) -> np.ndarray:
        """Loudness of every complete 400 ms block (LUFS; -inf for digital silence)."""
        energies = self._block_energies()
        with np.errstate(divide="ignore"):
            return _OFFSET + 10.0 * np.log10(energies)

    def integrated(self) -> float:
        """Gated integrated loudness in LUFS; ``-inf`` when no block passes the gates."""
        energies = self._block_energies()
        if energies.size == 0:
            return -math.inf
        with np.errstate(divide="ignore"):
            loudness = _OFFSET + 10.0 * np.log10(energies)
        above_absolute = loudness > ABSOLUTE_GATE
        if not np.any(above_absolute):
            return -math.inf
        relative = _OFFSET + 10.0 * math.log10(float(np.mean(energies[above_absolute]))) + RELATIVE_GATE
        gated = above_absolute & (loudness > relative)
        if not np.any(gated):
            return -math.inf
        return _OFFSET + 10.0 * math.log10(float(np.mean(energies[gated])))

    @property
    def sample_peak(self) -> float:
        """Largest absolute sample value (linear)."""
        return self._sample_peak

    @property
    def true_peak(self) -> float:
        """Estimated largest absolute value between samples too (linear); the sample
        peak when the meter was made with ``true_peak=False``."""
        if self._true_peak is None:
            return self._sample_peak
        tail = np.concatenate((self._tp_history, np.zeros(_TP_TAPS - 1, dtype=np.float32)))
        return max(self._true_peak, self._sample_peak, _interpolated_peak(tail))

    def _block_energies(self) -> np.ndarray:
        sub = np.frombuffer(self._sub, dtype=np.float64) if len(self._sub) else np.zeros(0)
        count = sub.size - _SUB_BLOCKS_PER_BLOCK + 1
        if count <= 0:
            return np.zeros(0)
        summed = np.convolve(sub, np.ones(_SUB_BLOCKS_PER_BLOCK), mode="valid")
        j = np.arange(count, dtype=np.int64)
        lengths = ((j + _SUB_BLOCKS_PER_BLOCK) * self.rate) // 10 - (j * self.rate) // 10
        return summed / lengths


def _interpolated_peak(buf: np.ndarray) -> float:
    """Largest |value| at the three in-between phases of every sample of ``buf``
    that has all its taps in ``buf``."""
    if buf.size < _TP_TAPS:
        return 0.0
    best = 0.0
    for i in range(0, buf.size - _TP_TAPS + 1, _PIECE):
        windows = sliding_window_view(buf[i : i + _PIECE + _TP_TAPS - 1], _TP_TAPS)
        values = windows @ _TP_KERNELS_T
        best = max(best, float(values.max()), -float(values.min()))
    return best


def to_db(linear: float) -> float:
    """20 log10, with -inf for zero."""
    return 20.0 * math.log10(linear) if linear > 0 else -math.inf


@dataclass(frozen=True, slots=True)
class Leveling:
    """What the loudness pass decided for one stretch of audio."""

    loudness: float  # LUFS as measured; -inf when nothing passed the gates
    peak_db: float  # true peak before the gain, dBFS
    gain_db: float  # the gain for the whole stretch
    limiting_db: float  # how far the loudest peak is then pulled down by :func:`limit` (0: no limiting)
    peak_limited: bool  # the peak ceiling, not the target, set the gain: the stretch stays quieter

    @property
    def gain(self) -> float:
        return 10.0 ** (self.gain_db / 20.0)


def leveling(
    loudness: float,
    peak: float,
    *,
    target_lufs: float,
    peak_dbfs: float,
    max_limiting_db: float = MAX_LIMITING_DB,
) -> Leveling:
    """The gain that brings ``loudness`` to ``target_lufs``, with peaks (``peak`` is
    linear) that would pass ``peak_dbfs`` left to :func:`limit`, as long as no peak
    needs more than ``max_limiting_db`` of it; beyond that the gain is lowered and
    the stretch ends up quieter than the target. Audio with no measurable loudness
    (silence, or shorter than 400 ms) keeps its level, turned down only if its peak
    is over the ceiling."""
    peak_db = to_db(peak)
    if not math.isfinite(loudness):
        gain_db = min(0.0, peak_dbfs - peak_db) if math.isfinite(peak_db) else 0.0
        return Leveling(loudness, peak_db, gain_db, 0.0, gain_db < 0.0)
    gain_db = target_lufs - loudness
    over = peak_db + gain_db - peak_dbfs if math.isfinite(peak_db) else -math.inf
    limited = over > max_limiting_db
    if limited:
        gain_db -= over - max_limiting_db
        over = max_limiting_db
    return Leveling(loudness, peak_db, gain_db, max(0.0, over), limited)


def limit(pcm: np.ndarray, ceiling_dbfs: float, rate: int, *, ramp_seconds: float = LIMITER_RAMP_SECONDS) -> np.ndarray:
    """``pcm`` with every sample and inter-sample peak at or under ``ceiling_dbfs``.

    A look-ahead limiter for one chunk held in memory (so the look-ahead costs no
    delay): each sample's allowed gain is ``ceiling / peak`` (its own and the
    interpolated peaks beside it); the gain curve is the running minimum of that
    over ``ramp_seconds``, averaged over the next ``ramp_seconds``, so it ramps
    down before a peak, holds through it and ramps back up, never above what any
    sample allows. Chunks with nothing over the ceiling come back unchanged (the
    same array).
    """
    x = np.asarray(pcm, dtype=np.float32)
    if x.ndim != 1:
        x = x.reshape(-1)
    n = x.size
    ceiling = 10.0 ** (ceiling_dbfs / 20.0)
    if n == 0 or float(np.max(np.abs(x))) * _TP_MAX_OVERSHOOT <= ceiling:
        return x  # even the largest inter-sample overshoot could not reach the ceiling
    peaks = _local_peaks(x)
    if float(peaks.max()) <= ceiling:
        return x
    allowed = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-30))
    width = max(1, round(ramp_seconds * rate))
    padded = np.concatenate((np.ones(width - 1), allowed, np.ones(width - 1)))
    held = _sliding_min(padded, width)  # held[k] = min(allowed[k - width + 1 .. k])
    sums = np.concatenate(([0.0], np.cumsum(held)))
    gain = (sums[width : width + n] - sums[:n]) / width  # mean of held[k .. k + width - 1]
    out = (x * gain).astype(np.float32)
    np.clip(out, -ceiling, ceiling, out=out)  # rounding only: the curve already keeps under it
    return out


def _local_peaks(x: np.ndarray) -> np.ndarray:
    """Per sample: the largest of |x[n]| and the interpolated values on either side of it."""
    n = x.size
    padded = np.concatenate((np.zeros(_TP_HALF - 1, np.float32), x, np.zeros(_TP_HALF, np.float32)))
    between = np.zeros(n, dtype=np.float32)  # largest |value| strictly between n and n + 1
    acc = np.empty(min(n, _PIECE), dtype=np.float32)
    tmp = np.empty_like(acc)
    for i in range(0, n, _PIECE):  # in pieces that stay in the CPU cache
        count = min(_PIECE, n - i)
        a, t = acc[:count], tmp[:count]
        for phase in range(_TP_KERNELS_T.shape[1]):
            taps = _TP_KERNELS_T[:, phase]
            np.multiply(padded[i : i + count], taps[0], out=a)
            for m in range(1, _TP_TAPS):
                np.multiply(padded[i + m : i + m + count], taps[m], out=t)
                a += t
            np.abs(a, out=a)
            np.maximum(between[i : i + count], a, out=between[i : i + count])
    peaks = np.abs(x)
    np.maximum(peaks, between, out=peaks)
    np.maximum(peaks[1:], between[:-1], out=peaks[1:])
    return peaks


def _sliding_min(a: np.ndarray, width: int) -> np.ndarray:
    """``out[j] = min(a[j : j + width])`` for every whole window (van Herk / Gil-Werman, O(n))."""
    count = a.size - width + 1
    blocks = -(-a.size // width)
    padded = np.full(blocks * width, np.inf)
    padded[: a.size] = a
    grid = padded.reshape(blocks, width)
    prefix = np.minimum.accumulate(grid, axis=1).reshape(-1)
    suffix = np.minimum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].reshape(-1)
    j = np.arange(count)
    return np.minimum(suffix[j], prefix[j + width - 1])


def measure(pcm: np.ndarray, rate: int) -> LoudnessMeter:
    """Meter a whole signal at once (tests, short clips)."""
    meter = LoudnessMeter(rate)
    meter.add(pcm)
    return meter
