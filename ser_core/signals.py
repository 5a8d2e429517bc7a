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


def wav_bytes(samples: np.ndarray, sr: int = 16000, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    """Encode in memory with libsndfile (WAV, FLAC, OGG, MP3 by `fmt`)."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sr, format=fmt, subtype=subtype)
    return buffer.getvalue()
