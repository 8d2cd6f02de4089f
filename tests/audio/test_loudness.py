"""The streaming BS.1770 meter against scipy and pyloudnorm (test-only references), and the gain rule."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm as pyln
import pytest
import scipy.signal as signal

from voxd.audio.loudness import MAX_LIMITING_DB, Biquad, LoudnessMeter, k_weighting, leveling, limit, measure, to_db

RATE = 24000


def noise(seconds: float, rms: float, seed: int = 1, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rms * rng.standard_normal(round(seconds * rate))).astype(np.float32)


def sine(seconds: float, freq: float, amplitude: float, rate: int = RATE, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def speechlike(seconds: float, level: float, seed: int = 3) -> np.ndarray:
    """A gliding 'voice' (harmonics of ~130 Hz plus a little breath noise) in syllables,
    with pauses between phrases; peak at ``level``."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = 130.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 12))
    voiced = voiced + 0.05 * rng.standard_normal(n)
    syllables = np.sin(np.pi * 4.0 * t) ** 2
    phrases = np.sin(2 * np.pi * 0.25 * t) > -0.6
    out = voiced * syllables * phrases
    return (level * out / np.max(np.abs(out))).astype(np.float32)


def reference(x: np.ndarray, rate: int = RATE) -> float:
    """pyloudnorm with the filters that reproduce BS.1770's 48 kHz coefficients."""
    return pyln.Meter(rate, filter_class="DeMan").integrated_loudness(x.astype(np.float64))


def fed_in_pieces(x: np.ndarray, rate: int = RATE, seed: int = 5) -> LoudnessMeter:
    rng = np.random.default_rng(seed)
    meter = LoudnessMeter(rate)
    at = 0
    while at < x.size:
        size = int(rng.choice([0, 1, 7, 333, 2400, 2401, 50_000]))
        meter.add(x[at : at + size])
        at += size
    return meter


# -- the filters -------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_k_weighting_stages_match_lfilter_across_pieces(rate: int) -> None:
    x = noise(3.0, 0.3, rate=rate).astype(np.float64)
    for b, a in k_weighting(rate):
        expected = signal.lfilter(b, a, x)
        stage = Biquad(b, a)
        got = np.concatenate([stage(x[:1]), stage(x[1:1000]), stage(x[1000:1000]), stage(x[1000:])])
        assert np.max(np.abs(got - expected)) <= 1e-9 * np.max(np.abs(expected))


def test_k_weighting_at_48k_is_the_bs1770_table() -> None:
    (shelf_b, shelf_a), (pass_b, pass_a) = k_weighting(48000)
    np.testing.assert_allclose(shelf_b, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-10)
    np.testing.assert_allclose(shelf_a, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-10)
    np.testing.assert_allclose(pass_b, [1.0, -2.0, 1.0])
    np.testing.assert_allclose(pass_a, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-10)


@pytest.mark.parametrize(
    "a",
    [
        [1.0, -1.5, 0.56],  # two real poles
        [1.0, -1.6, 0.64],  # one repeated pole
        [1.0, 0.1, 0.0],  # one pole, one at the origin
        [1.0, 0.0, 0.0001],  # poles so small the recursion is a short FIR
        [1.0, -1.99, 0.9901],  # complex poles close to the unit circle
    ],
)
def test_biquad_matches_lfilter_for_other_poles(a: list[float]) -> None:
    x = noise(1.0, 0.5).astype(np.float64)
    b = [0.3, -0.2, 0.1]
    expected = signal.lfilter(b, a, x)
    stage = Biquad(np.array(b), np.array(a))
    got = np.concatenate([stage(x[:5]), stage(x[5:20000]), stage(x[20000:])])
    assert np.max(np.abs(got - expected)) <= 1e-9 * np.max(np.abs(expected))


def test_unstable_biquad_is_refused() -> None:
    with pytest.raises(ValueError, match="unit circle"):
        Biquad(np.array([1.0, 0, 0]), np.array([1.0, -2.0, 1.0]))


# -- integrated loudness -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: noise(10.0, 0.1),
        lambda: noise(10.0, 0.003),
        lambda: noise(10.0, 0.5, seed=9),
        lambda: sine(10.0, 997.0, 0.5),
        lambda: sine(10.0, 100.0, 0.05),
        lambda: sine(10.0, 6000.0, 0.9),
        lambda: speechlike(20.0, 0.8),
        lambda: speechlike(20.0, 0.02, seed=4),
        # loud, then 60 dB down (under the relative gate), then loud again
        lambda: np.concatenate([noise(4.0, 0.1), noise(3.0, 0.0001, seed=2), noise(3.0, 0.2, seed=3)]),
    ],
    ids=["noise-20", "noise-50", "noise-6", "sine997", "sine100-quiet", "sine6k-loud", "speech", "speech-quiet",
         "gated"],
)
def test_streaming_meter_matches_pyloudnorm(make) -> None:
    x = make()
    expected = reference(x)
    assert measure(x, RATE).integrated() == pytest.approx(expected, abs=0.01)
    assert fed_in_pieces(x).integrated() == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_other_rates_match_pyloudnorm(rate: int) -> None:
    x = np.concatenate([noise(3.0, 0.05, rate=rate), sine(3.0, 440.0, 0.2, rate=rate)])
    assert fed_in_pieces(x, rate).integrated() == pytest.approx(reference(x, rate), abs=0.01)


def test_a_997_hz_sine_reads_as_the_standard_says() -> None:
    # BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS.
    for dbfs in (0.0, -20.0):
        x = sine(5.0, 997.0, 10 ** (dbfs / 20))
        assert measure(x, RATE).integrated() == pytest.approx(dbfs - 3.01, abs=0.05)


def test_pieces_do_not_change_the_result() -> None:
    x = speechlike(12.0, 0.5)
    whole = measure(x, RATE)
    pieces = fed_in_pieces(x)
    assert pieces.integrated() == pytest.approx(whole.integrated(), abs=1e-9)
    floor = -200.0  # digital silence: -inf or -3000 dB depending on rounding, both nothing
    np.testing.assert_allclose(
        np.maximum(pieces.block_loudness(), floor), np.maximum(whole.block_loudness(), floor), atol=1e-9
    )
    assert pieces.sample_peak == whole.sample_peak
    assert pieces.true_peak == pytest.approx(whole.true_peak, rel=1e-6)


def test_silence_and_short_signals_have_no_loudness() -> None:
    assert measure(np.zeros(RATE * 2, np.float32), RATE).integrated() == -math.inf
    assert measure(noise(0.39, 0.1), RATE).integrated() == -math.inf  # not one whole 400 ms block
    assert math.isfinite(measure(noise(0.4, 0.1), RATE).integrated())
    assert measure(noise(3.0, 1e-5), RATE).integrated() == -math.inf  # under the -70 LUFS gate
    assert LoudnessMeter(RATE).integrated() == -math.inf


def test_blocks_are_400_ms_every_100_ms() -> None:
    meter = measure(noise(2.05, 0.1), RATE)
    assert meter.block_loudness().size == 17  # 20 whole sub-blocks -> blocks 0..16


# -- peaks ---------------------------------------------------------------------------------


def test_true_peak_finds_the_peak_between_samples() -> None:
    # A quarter-rate sine at 45 degrees: every sample is at 0.707 of the real peak.
    x = sine(1.0, RATE / 4, 0.5, phase=math.pi / 4)
    meter = measure(x, RATE)
    assert to_db(meter.sample_peak) == pytest.approx(to_db(0.5) - 3.01, abs=0.01)
    assert to_db(meter.true_peak) == pytest.approx(to_db(0.5), abs=0.2)


@pytest.mark.parametrize("freq", [200.0, 1000.0, 3000.0, 5000.0])
def test_true_peak_of_plain_sines(freq: float) -> None:
    x = sine(1.0, freq, 0.25, phase=0.3)
    assert to_db(measure(x, RATE).true_peak) == pytest.approx(to_db(0.25), abs=0.15)


def test_without_true_peak_the_sample_peak_is_used() -> None:
    x = sine(1.0, RATE / 4, 0.5, phase=math.pi / 4)
    meter = LoudnessMeter(RATE, true_peak=False)
    meter.add(x)
    assert meter.true_peak == meter.sample_peak


# -- the gain and the limiter ---------------------------------------------------------------


def normalised(x: np.ndarray, target: float = -18.0, ceiling: float = -3.0, **options):
    """Both passes as assemble() runs them, on one signal: meter, then gain and limiter."""
    meter = fed_in_pieces(x)
    lev = leveling(meter.integrated(), meter.true_peak, target_lufs=target, peak_dbfs=ceiling, **options)
    y = (x * np.float32(lev.gain)).astype(np.float32)
    if lev.limiting_db > 0:
        y = limit(y, ceiling, RATE)
    return lev, y


def peak_db(x: np.ndarray) -> float:
    return to_db(float(np.max(np.abs(x))))


@pytest.mark.parametrize("level", [0.01, 0.1, 0.99])
def test_speech_is_brought_to_the_target(level: float) -> None:
    lev, y = normalised(speechlike(15.0, level))
    assert not lev.peak_limited and lev.limiting_db == 0.0
    assert reference(y) == pytest.approx(-18.0, abs=1.0)
    assert reference(y) == pytest.approx(-18.0, abs=0.01)  # a plain gain: exact, in fact
    assert peak_db(y) <= -3.0 + 1e-6


def test_a_signal_made_loud_on_purpose_is_turned_down_under_the_ceiling() -> None:
    loud = np.clip(noise(10.0, 0.7), -1.0, 1.0)  # about -3 LUFS, peaks at full scale
    assert reference(loud) > -5.0
    lev, y = normalised(loud)
    assert lev.gain_db < -10 and not lev.peak_limited
    assert reference(y) == pytest.approx(-18.0, abs=1.0)
    assert peak_db(y) <= -3.0 + 1e-6
    assert to_db(measure(y, RATE).true_peak) <= -3.0 + 0.05


def test_peaky_speech_reaches_the_target_with_its_peaks_limited() -> None:
    # every fourth syllable is 8 dB hotter: reaching -18 LUFS puts those peaks over -3 dBFS
    x = speechlike(15.0, 0.1)
    t = np.arange(x.size) / RATE
    x = (x * np.where((t % 1.0) < 0.25, 2.5, 1.0)).astype(np.float32)
    lev, y = normalised(x)
    assert 0 < lev.limiting_db <= MAX_LIMITING_DB and not lev.peak_limited
    assert reference(y) == pytest.approx(-18.0, abs=1.0)
    assert peak_db(y) <= -3.0 + 1e-6
    assert to_db(measure(y, RATE).true_peak) <= -3.0 + 0.1
    # only the hot syllables were touched
    quiet = (t % 1.0 > 0.3) & (t % 1.0 < 0.95)
    np.testing.assert_allclose(y[quiet], (x * np.float32(lev.gain))[quiet], rtol=1e-6, atol=1e-7)


def test_peaks_beyond_the_limiters_reach_cap_the_gain() -> None:
    # quiet speech with a few loud clicks: reaching -18 LUFS would need ~20 dB of limiting
    x = speechlike(10.0, 0.05)
    x[[RATE, 3 * RATE, 7 * RATE]] = 0.9
    lev, y = normalised(x)
    assert lev.peak_limited and lev.limiting_db == pytest.approx(MAX_LIMITING_DB)
    assert lev.peak_db + lev.gain_db == pytest.approx(-3.0 + MAX_LIMITING_DB)
    assert peak_db(y) <= -3.0 + 1e-6
    assert reference(y) < -18.0 - 1.0  # quieter than the target: the ceiling won


def test_without_a_limiter_the_gain_alone_keeps_the_ceiling() -> None:
    x = speechlike(10.0, 0.05)
    x[[RATE, 3 * RATE, 7 * RATE]] = 0.9
    lev, y = normalised(x, max_limiting_db=0.0)
    assert lev.peak_limited and lev.limiting_db == 0.0
    assert lev.peak_db + lev.gain_db == pytest.approx(-3.0)
    assert to_db(measure(y, RATE).true_peak) == pytest.approx(-3.0, abs=1e-3)
    assert peak_db(y) <= -3.0 + 1e-6


def test_unmeasurable_audio_keeps_its_level_unless_too_hot() -> None:
    quiet = leveling(-math.inf, 0.01, target_lufs=-18.0, peak_dbfs=-3.0)
    assert quiet.gain_db == 0.0 and not quiet.peak_limited and quiet.gain == 1.0
    hot = leveling(-math.inf, 1.0, target_lufs=-18.0, peak_dbfs=-3.0)
    assert hot.gain_db == pytest.approx(-3.0) and hot.peak_limited and hot.limiting_db == 0.0
    silent = leveling(-math.inf, 0.0, target_lufs=-18.0, peak_dbfs=-3.0)
    assert silent.gain == 1.0


def test_limiter_ramps_around_a_peak_and_leaves_the_rest() -> None:
    x = sine(1.0, 220.0, 0.3)
    x[RATE // 2 - 200 : RATE // 2 + 200] *= 3.0  # a 0.9 burst
    y = limit(x, -6.0, RATE)
    assert y.shape == x.shape and y.dtype == np.float32
    assert peak_db(y) <= -6.0 + 1e-6
    assert to_db(measure(y, RATE).true_peak) <= -6.0 + 0.05
    ramp = round(0.02 * RATE)
    far = np.r_[0 : RATE // 2 - 200 - ramp - 10, RATE // 2 + 200 + ramp + 10 : RATE]
    np.testing.assert_array_equal(y[far], x[far])
    gain = y[RATE // 2 - 400 : RATE // 2 + 400] / np.where(np.abs(x) > 1e-3, x, 1)[RATE // 2 - 400 : RATE // 2 + 400]
    steps = np.abs(np.diff(gain[np.abs(x[RATE // 2 - 400 : RATE // 2 + 400]) > 0.05]))
    assert steps.max() < 0.05  # no sudden gain jumps: a ramp, not clipping


def test_limiter_returns_quiet_chunks_unchanged() -> None:
    x = sine(0.5, 440.0, 0.2)
    assert limit(x, -3.0, RATE) is x
    assert limit(np.zeros(0, np.float32), -3.0, RATE).size == 0
