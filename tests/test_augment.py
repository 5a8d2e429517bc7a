"""Waveform perturbations do what their names say, measured on synthetic signals: levels in dB, SNRs
against the active speech level, spectral slopes, band limits, decay times, codec round trips."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from conftest import speech, voice
from test_segments import FixedVad
from ser_core.training.augment import (COPIES, INT16_FULL_SCALE, PERTURBATIONS, SPEECH_CUT_MARGIN_S,
    VOICE_SHIFT_SEMITONES, add_noise, augment, codec, coloured_noise, cut_at_speech, gain, reverb, spectral_tilt,
    telephone, voice_shift)
from ser_core.io.levels import active_level_dbfs

SR = 16000


def level(samples: np.ndarray) -> float:
    return float(active_level_dbfs(np.asarray(samples, np.float64)[None, :], SR)[0])


def power_db(samples: np.ndarray) -> float:
    return 10.0 * np.log10(np.mean(np.square(samples, dtype=np.float64)))


def tone_amplitude(samples: np.ndarray, hz: float) -> float:
    """Amplitude of a tone with a whole number of cycles in `samples` (exact FFT bin)."""
    spectrum = np.fft.rfft(samples.astype(np.float64))
    return 2.0 * np.abs(spectrum[int(round(hz * len(samples) / SR))]) / len(samples)


def best_correlation(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[float, int]:
    """Highest correlation of b against a shifted by up to `max_lag` samples (normalised by both
    signals' energies), and its lag."""
    from scipy.signal import correlate

    a, b = a.astype(np.float64), b.astype(np.float64)
    full = correlate(b, a, mode="full", method="fft") / np.sqrt(np.dot(a, a) * np.dot(b, b))
    lags = np.arange(-len(a) + 1, len(b))
    near = np.abs(lags) <= max_lag
    best = int(np.argmax(full[near]))
    return float(full[near][best]), int(lags[near][best])


# --- gain ------------------------------------------------------------------------------------------

def test_gain_quantises_to_16_bit_steps():
    out = gain(voice(1.0), -6.0)
    steps = out.astype(np.float64) * INT16_FULL_SCALE
    np.testing.assert_array_equal(steps, np.round(steps))
    assert out.dtype == np.float32


def test_gain_clips_at_full_scale():
    x = voice(1.0, level_db=-1.0)
    out = gain(x, 20.0)
    assert out.max() == pytest.approx((INT16_FULL_SCALE - 1) / INT16_FULL_SCALE) and out.min() == -1.0
    assert np.mean(np.abs(out) >= 0.999) > 0.05  # a hot microphone: many samples flat at the rails


def test_gain_lowers_the_active_level_by_its_decibels():
    x = voice(2.0)
    assert level(x) - level(gain(x, -30.0)) == pytest.approx(30.0, abs=0.5)
    assert level(gain(x, 6.0)) - level(x) == pytest.approx(6.0, abs=0.5)


def test_a_voice_below_one_bit_is_lost():
    out = gain(voice(1.0, level_db=-20.0), -80.0)  # peak at -100 dBFS: a third of the 16-bit step
    assert np.all(out == 0.0)


# --- noise -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("snr_db", [20.0, 10.0, 5.0])
def test_add_noise_hits_the_snr_against_the_active_speech_level(snr_db):
    x = voice(2.0)
    out = add_noise(x, SR, snr_db, np.random.default_rng(1))
    noise = out.astype(np.float64) - x
    assert level(x) - power_db(noise) == pytest.approx(snr_db, abs=0.5)
    assert out.dtype == np.float32 and len(out) == len(x)


def test_pauses_do_not_lower_the_noise_added():
    x = voice(1.5)
    with_pause = np.concatenate([x, np.zeros(3 * SR, np.float32)])
    noise = add_noise(x, SR, 10.0, np.random.default_rng(2)) - x
    noise_with_pause = add_noise(with_pause, SR, 10.0, np.random.default_rng(2)) - with_pause
    assert power_db(noise_with_pause) == pytest.approx(power_db(noise), abs=0.5)


@pytest.mark.parametrize("exponent, name", [(0.0, "white"), (1.0, "pink"), (2.0, "brown")])
def test_coloured_noise_has_unit_rms_and_its_slope(exponent, name):
    """Power ∝ 1/f^exponent: 10·log10(2) ≈ 3 dB less per octave for each unit of exponent."""
    noise = coloured_noise(8 * SR, exponent, np.random.default_rng(0))
    assert noise.dtype == np.float32 and len(noise) == 8 * SR
    assert np.sqrt(np.mean(np.square(noise, dtype=np.float64))) == pytest.approx(1.0, abs=1e-4)
    f, p = welch(noise.astype(np.float64), SR, nperseg=4096)
    band = (f >= 200) & (f <= 3200)
    slope_db_per_octave = np.polyfit(np.log2(f[band]), 10 * np.log10(p[band]), 1)[0]
    assert slope_db_per_octave == pytest.approx(-3.01 * exponent, abs=1.0), name


# --- channel ---------------------------------------------------------------------------------------

def test_telephone_removes_everything_above_4khz_and_keeps_length():
    white = (0.1 * np.random.default_rng(0).standard_normal(2 * SR + 7)).astype(np.float32)
    out = telephone(white, SR)
    assert len(out) == len(white) and out.dtype == np.float32 and np.all(np.isfinite(out))
    f, p = welch(out.astype(np.float64), SR, nperseg=1024)
    assert 10 * np.log10(p[f > 4000].sum() / p.sum()) < -40
    assert 10 * np.log10(p[(f >= 300) & (f <= 3400)].sum() / p.sum()) > -0.5  # the voice band is what is left


def test_telephone_passes_the_voice_band_at_its_level():
    t = np.arange(SR) / SR
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = telephone(tone, SR)
    middle = slice(SR // 4, 3 * SR // 4)  # away from the filter's start-up
    assert power_db(out[middle]) == pytest.approx(power_db(tone[middle]), abs=1.0)


@pytest.mark.parametrize("name", ["opus", "mp3"])
def test_codec_round_trip_keeps_length_and_the_signal(name):
    x = voice(3.0)
    out = codec(x, SR, name, 16000)
    assert len(out) == len(x) and out.dtype == np.float32 and np.all(np.isfinite(out))
    correlation, lag = best_correlation(x, out, max_lag=800)  # codec delay: up to 50 ms
    assert correlation > 0.9, (correlation, lag)
    assert correlation < 0.99999  # it did go through a lossy codec
    assert level(out) == pytest.approx(level(x), abs=2.0)


def test_reverb_keeps_length_and_rms():
    x = voice(2.0)
    out = reverb(x, SR, 0.6, np.random.default_rng(0))
    assert len(out) == len(x) and out.dtype == np.float32
    assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) == pytest.approx(np.sqrt(np.mean(x.astype(np.float64) ** 2)), rel=1e-4)
    assert np.max(np.abs(out - x)) > 1e-3  # and it did something


def test_reverb_decays_60_db_in_rt60():
    burst = np.zeros(2 * SR, np.float32)
    burst[: SR // 10] = 0.1 * np.random.default_rng(3).standard_normal(SR // 10)
    rt60 = 0.5
    out = reverb(burst, SR, rt60, np.random.default_rng(0), direct_to_reverb_db=-6.0).astype(np.float64)
    assert np.mean(out[SR // 10 : SR // 10 + 800] ** 2) > 0  # a tail after the burst ends
    frame = SR // 50
    start, stop = int(0.15 * SR), int(0.45 * SR)
    frames = out[start:stop].reshape(-1, frame)
    times = (start + frame * (np.arange(len(frames)) + 0.5)) / SR
    slope_db_per_s = np.polyfit(times, 10 * np.log10(np.mean(frames**2, axis=1)), 1)[0]
    assert slope_db_per_s == pytest.approx(-60.0 / rt60, rel=0.2)
    assert np.max(np.abs(out[int(1.5 * SR):])) < 1e-3 * np.max(np.abs(out))  # long gone after 3 × RT60


def test_spectral_tilt_of_6_db_per_octave_raises_4khz_over_1khz_by_12_db():
    t = np.arange(SR) / SR
    x = (0.1 * np.sin(2 * np.pi * 1000 * t) + 0.1 * np.sin(2 * np.pi * 4000 * t)).astype(np.float32)
    out = spectral_tilt(x, SR, 6.0)
    assert len(out) == len(x) and out.dtype == np.float32
    gain_1k = 20 * np.log10(tone_amplitude(out, 1000) / tone_amplitude(x, 1000))
    gain_4k = 20 * np.log10(tone_amplitude(out, 4000) / tone_amplitude(x, 4000))
    assert gain_1k == pytest.approx(0.0, abs=0.1)  # the tilt turns around 1 kHz
    assert gain_4k - gain_1k == pytest.approx(12.0, abs=0.2)


def test_spectral_tilt_resonance_peaks_at_its_frequency():
    t = np.arange(SR) / SR
    x = (0.05 * (np.sin(2 * np.pi * 500 * t) + np.sin(2 * np.pi * 2000 * t) + np.sin(2 * np.pi * 4000 * t))).astype(np.float32)
    out = spectral_tilt(x, SR, 0.0, bump_hz=2000.0, bump_db=6.0)
    gains = {hz: 20 * np.log10(tone_amplitude(out, hz) / tone_amplitude(x, hz)) for hz in (500, 2000, 4000)}
    assert gains[2000] == pytest.approx(6.0, abs=0.1)
    assert gains[4000] == pytest.approx(6.0 * np.exp(-2.0), abs=0.1)  # one octave off: e^-2 of the peak
    assert abs(gains[500]) < 0.1


# --- chains and conditions -------------------------------------------------------------------------

def test_augment_is_deterministic_per_seed_and_returns_finite_float32():
    x = voice(1.5)
    original = x.copy()
    outputs = []
    for seed in range(8):
        a = augment(x, SR, np.random.default_rng(seed))
        b = augment(x, SR, np.random.default_rng(seed))
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32 and len(a) == len(x) and np.all(np.isfinite(a))
        outputs.append(a)
    np.testing.assert_array_equal(x, original)  # the input is left alone
    assert sum(not np.array_equal(out, x) for out in outputs) >= 6  # most chains change something
    assert len({out.tobytes() for out in outputs}) >= 6  # and different seeds, different chains


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_every_perturbation_keeps_length_and_finiteness(name):
    x = voice(1.3, seed=4)[:-3]  # an odd length, not a multiple of any frame size
    original = x.copy()
    out = PERTURBATIONS[name](x, SR, np.random.default_rng(0))
    assert len(out) == len(x) and out.dtype == np.float32 and np.all(np.isfinite(out))
    assert np.max(np.abs(out)) > 0  # nothing turns a voice into silence
    np.testing.assert_array_equal(x, original)


# --- speech-cut copies -----------------------------------------------------------------------------

def test_a_speech_cut_keeps_the_speech_and_a_random_margin_of_the_clips_own_audio():
    from ser_core.frontend.vad import FRAME_S, speech_regions

    # 1 s quiet, 2 s speech, a 0.5 s pause, 0.5 s speech, 1 s quiet: two regions, cut as one stretch.
    p = np.concatenate([np.full(round(s / FRAME_S), v, np.float32)
                        for v, s in ((0.05, 1.0), (0.9, 2.0), (0.05, 0.5), (0.9, 0.5), (0.05, 1.0))])
    n = len(p) * 512
    ramp = (np.arange(n) / n).astype(np.float32)  # every sample tells where it was
    regions = speech_regions(p, n / SR)
    assert len(regions) == 2
    befores, afters = [], []
    for seed in range(40):
        out = cut_at_speech(ramp, SR, np.random.default_rng(seed), vad=FixedVad(p))
        start = round(float(out[0]) * n)
        np.testing.assert_array_equal(out, ramp[start : start + len(out)])  # one stretch of the clip, as it was
        befores.append(regions[0][0] - start / SR)
        afters.append((start + len(out)) / SR - regions[-1][1])
    margins = np.array(befores + afters)
    assert margins.min() >= -1 / SR and margins.max() <= SPEECH_CUT_MARGIN_S + 1 / SR
    # random on each side: short and long margins both occur, and the two sides differ
    assert margins.min() < 0.05 and margins.max() > SPEECH_CUT_MARGIN_S - 0.05
    assert not np.allclose(befores, afters)
    assert cut_at_speech(ramp, SR, np.random.default_rng(3), vad=FixedVad(p)).tobytes() == \
        cut_at_speech(ramp, SR, np.random.default_rng(3), vad=FixedVad(p)).tobytes()


def test_a_speech_cut_keeps_a_clip_without_speech_whole_and_never_runs_past_its_ends():
    x = voice(2.0)
    assert cut_at_speech(x, SR, np.random.default_rng(0), vad=FixedVad(np.full(100, 0.05, np.float32))) is x
    # speech from the first frame to the last: nothing to cut, and no margin beyond the clip
    whole = cut_at_speech(x, SR, np.random.default_rng(0), vad=FixedVad(np.full(100, 0.9, np.float32)))
    np.testing.assert_array_equal(whole, x)


def test_the_detector_cuts_a_clip_at_its_speech():
    rng = np.random.default_rng(1)
    quiet = lambda s: (rng.standard_normal(int(s * SR)) * 10 ** (-60 / 20)).astype(np.float32)  # noqa: E731
    clip = np.concatenate([quiet(1.5), speech(2.0, SR, seed=2), quiet(1.5)])
    for seed in range(3):
        out = cut_at_speech(clip, SR, np.random.default_rng(seed))
        # the speech, its padding (0.1 s a side) and at most the margin a side; most of the quiet gone
        assert 1.9 <= len(out) / SR <= 2.0 + 2 * (0.1 + SPEECH_CUT_MARGIN_S) + 0.1
        assert np.sum(out.astype(np.float64) ** 2) > 0.99 * np.sum(clip.astype(np.float64) ** 2)


def test_every_kind_of_copy_has_a_name_and_the_random_chain_keeps_its_own():
    assert COPIES["augment"] is augment and COPIES["speechcut"] is cut_at_speech and COPIES["voice"] is voice_shift


def test_a_voice_copy_moves_the_pitch_by_its_semitones_and_keeps_the_timing():
    from ser_core.frontend.pitch import yin

    steady = voice(2.0, SR, f0=150.0)
    steady_f0 = np.median(yin(steady, 60.0, 600.0, SR)[4:-4])
    # 1.5 s of voice between two quiet halves of a second: the speech stays where it was
    onset = np.concatenate([np.zeros(SR // 2, np.float32), voice(1.5, SR, f0=150.0), np.zeros(SR // 2, np.float32)])
    directions = set()
    for seed in range(6):
        out = voice_shift(steady, SR, np.random.default_rng(seed))
        assert out.dtype == np.float32 and len(out) == len(steady)
        semitones = 12 * np.log2(np.median(yin(out, 60.0, 600.0, SR)[4:-4]) / steady_f0)
        assert VOICE_SHIFT_SEMITONES[0] - 0.15 <= abs(semitones) <= VOICE_SHIFT_SEMITONES[1] + 0.15
        directions.add(np.sign(semitones))
        moved = voice_shift(onset, SR, np.random.default_rng(seed))
        loud = np.flatnonzero(np.abs(moved) > 0.1 * np.abs(moved).max())
        assert abs(loud[0] / SR - 0.5) < 0.05 and abs(loud[-1] / SR - 2.0) < 0.05
    assert directions == {-1.0, 1.0}  # up and down
    assert voice_shift(steady, SR, np.random.default_rng(4)).tobytes() == voice_shift(steady, SR, np.random.default_rng(4)).tobytes()
