"""Every level rule in dB, in one place: the power of short frames, the loudest frame, the level of
active speech, and the silence floor.

Two frame lengths, for two questions: `LOUDEST_FRAME_S` (50 ms) for "is there a voice at all?" (a
syllable lifts the loudest 50 ms, hiss and room tone do not), `ACTIVE_FRAME_S` (20 ms) for "how loud
is the speech?" (frames within `ACTIVE_RANGE_DB` of the loudest are speech, pauses are not).
"""

from __future__ import annotations

import numpy as np

SILENCE_DBFS = -60.0  # below this nothing is a voice: the decoder's speech gate, a profile's speech frames
LOUDEST_FRAME_S = 0.05
ACTIVE_FRAME_S = 0.02
ACTIVE_RANGE_DB = 30.0  # frames within this of the loudest count as active speech
POWER_FLOOR = 1e-20  # mean square of digital silence, so that its level is -200 dB rather than -inf


def frame_power(samples: np.ndarray, frame: int) -> np.ndarray:
    """Mean square of consecutive `frame`-sample frames along the last axis (float64); a tail
    shorter than a frame is left out."""
    n = samples.shape[-1] // frame
    frames = samples[..., : n * frame].reshape(*samples.shape[:-1], n, frame)
    return np.square(frames, dtype=np.float64).mean(axis=-1)


def power_db(power: np.ndarray) -> np.ndarray:
    """Mean square → dB (re full scale), digital silence at `POWER_FLOOR`."""
    return 10.0 * np.log10(np.maximum(power, POWER_FLOOR))


def active_frames(level_db: np.ndarray, range_db: float = ACTIVE_RANGE_DB) -> np.ndarray:
    """Frames (along the last axis) within `range_db` of the loudest: the active speech."""
    return level_db >= level_db.max(axis=-1, keepdims=True) - range_db


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level of the whole signal; -inf for silence or no samples."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def loudest_frame_dbfs(samples: np.ndarray, sample_rate: int) -> float:
    """RMS level of the loudest `LOUDEST_FRAME_S` frame (the whole signal when shorter); -inf for
    silence or no samples."""
    if len(samples) == 0:
        return float("-inf")
    frame = max(1, int(LOUDEST_FRAME_S * sample_rate))
    power = frame_power(samples, frame) if len(samples) >= frame else frame_power(samples, len(samples))
    rms = float(np.sqrt(np.max(power)))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def active_level_dbfs(windows: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per window (rows), the RMS level (dBFS) of its active frames. Pauses and zero padding do not
    pull the level down, so the same voice reads the same level whether it fills the window or not."""
    power = frame_power(windows, round(ACTIVE_FRAME_S * sample_rate))
    active = active_frames(power_db(power))
    return power_db((power * active).sum(axis=-1) / active.sum(axis=-1))


def speech_seconds(samples: np.ndarray, sample_rate: int) -> float:
    """Seconds of active speech: `ACTIVE_FRAME_S` frames within `ACTIVE_RANGE_DB` of the loudest and
    above `SILENCE_DBFS`."""
    level = power_db(frame_power(samples, round(ACTIVE_FRAME_S * sample_rate)))
    if level.size == 0:
        return 0.0
    return float((active_frames(level) & (level >= SILENCE_DBFS)).sum() * ACTIVE_FRAME_S)
