"""Synthetic signals for tests, benchmarks and demos: no recordings needed, nothing to license."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf


def voice(seconds: float = 3.0, sr: int = 16000, f0: float = 140.0, level_db: float = -20.0, seed: int = 0):
    """A voice-like signal: harmonics of a gliding f0, syllable-rate envelope, a little breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0 < sr / 2.2)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
    x = harmonics * envelope + 0.02 * rng.standard_normal(len(t))
    return (x / np.max(np.abs(x)) * 10 ** (level_db / 20)).astype(np.float32)


# Formants (F1, F2, F3 in Hz) of five vowels, roughly an adult male's: the resonances that make a
# buzz sound like a voice to a voice activity detector.
VOWEL_FORMANTS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))
FORMANT_BANDWIDTHS = (80.0, 100.0, 120.0)
FORMANT_GAINS = (1.0, 0.6, 0.3)


def _resonator(x: np.ndarray, frequency: float, bandwidth: float, sr: int) -> np.ndarray:
    """A two-pole resonance at `frequency` (one formant)."""
    from scipy.signal import lfilter

    r = np.exp(-np.pi * bandwidth / sr)
    return lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * frequency / sr), r * r], x)


def speech(seconds: float = 3.0, sr: int = 16000, f0: float = 140.0, level_db: float = -20.0, seed: int = 0,
           pause_chance: float = 0.15):
    """Speech-like syllables: a noise burst (consonant), then a glottal pulse train through the
    formants of a random vowel, with short pauses now and then (after a syllable, at `pause_chance`). Voice activity detection (Silero)
    hears this as speech, which it does not for `voice`'s plain harmonics."""
    from scipy.signal import butter, lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = np.zeros(n)
    hiss = butter(2, [min(2500, 0.3 * sr) / (sr / 2), min(7000, 0.45 * sr) / (sr / 2)], "band")
    position = 0
    while position < n:
        consonant = lfilter(*hiss, 0.3 * rng.standard_normal(int(rng.uniform(0.02, 0.06) * sr)))
        length = int(rng.uniform(0.12, 0.28) * sr)
        t = np.arange(length) / sr
        pitch = f0 * (1 + rng.uniform(-0.1, 0.1)) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(2, 5) * t
                                                                       + rng.uniform(0, 2 * np.pi)))
        pulses = np.diff(np.floor(np.cumsum(pitch) / sr), prepend=0.0)
        source = np.diff(lfilter([1.0], [1.0, -0.97], pulses), prepend=0.0)  # the glottis' spectral tilt
        formants = VOWEL_FORMANTS[rng.integers(len(VOWEL_FORMANTS))]
        vowel = sum(gain * _resonator(source, f, bw, sr)
                    for f, bw, gain in zip(formants, FORMANT_BANDWIDTHS, FORMANT_GAINS))
        syllable = np.concatenate([consonant, 3 * vowel * np.sin(np.pi * t * sr / length) ** 0.5])
        take = min(len(syllable), n - position)
        out[position : position + take] += syllable[:take]
        position += len(syllable)
        if rng.random() < pause_chance:  # a short pause between words
            position += int(rng.uniform(0.05, 0.2) * sr)
    out += 0.003 * rng.standard_normal(n)
    return (out / np.max(np.abs(out)) * 10 ** (level_db / 20)).astype(np.float32)


def wav_bytes(samples: np.ndarray, sr: int = 16000, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    """Encode in memory with libsndfile (WAV, FLAC, OGG, MP3 by `fmt`)."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sr, format=fmt, subtype=subtype)
    return buffer.getvalue()
