"""Fundamental frequency by YIN (de Cheveigné & Kawahara, 2002), as librosa 0.11's `librosa.yin`
computes it, in plain numpy: serving draws a voice profile's pitch range with it, and importing
librosa (numba and scipy under it) would cost every install 400 MB for this one function.
tests/test_pitch.py holds it to librosa's own output."""

from __future__ import annotations

import numpy as np


def centred_frames(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """(frame_length, n_frames) strided view of `y` zero-padded by half a frame at both ends: the
    frames `yin` reads, one per f0 value."""
    padded = np.pad(np.asarray(y), frame_length // 2)
    return np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length].T


def _normalized_difference(frames: np.ndarray, min_period: int, max_period: int) -> np.ndarray:
    """The cumulative-mean-normalised difference function d'(τ) for τ in [min_period, max_period],
    (periods, n_frames), over whole frames: d(τ) = 2 (r(0) − r(τ)) − Σ_{m<τ} y(m)², r the frame's
    autocorrelation (by FFT, zero-padded against wrap-around)."""
    n = frames.shape[0]
    spectrum = np.fft.rfft(frames, 2 * n - 1, axis=0)
    acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, 2 * n - 1, axis=0)[: max_period + 1]
    energy = np.cumsum(frames**2, axis=0)
    difference = np.zeros((max_period + 1, frames.shape[1]), dtype=acf.dtype)
    difference[1:] = 2 * (acf[:1] - acf[1:]) - energy[:max_period]
    numerator = difference[min_period : max_period + 1]
    cumulative_mean = np.cumsum(difference[1:], axis=0) / np.arange(1, max_period + 1)[:, None]
    denominator = cumulative_mean[min_period - 1 : max_period]
    return numerator / (denominator + np.finfo(denominator.dtype).tiny)


def _parabolic_shifts(d: np.ndarray) -> np.ndarray:
    """Sub-sample offset of each point's parabola vertex through it and its neighbours (0 at the ends
    and where the parabola is too flat to trust)."""
    shifts = np.zeros_like(d)
    curvature = d[2:] + d[:-2] - 2 * d[1:-1]
    slope = (d[2:] - d[:-2]) / 2
    steep = np.abs(slope) < np.abs(curvature)
    shifts[1:-1] = np.where(steep, -slope / np.where(steep, curvature, 1), 0)
    return shifts


def yin(y: np.ndarray, fmin: float, fmax: float, sr: int, frame_length: int = 2048, hop_length: int | None = None,
        trough_threshold: float = 0.1) -> np.ndarray:
    """f0 in Hz per frame of mono `y` (frames centred, zero-padded at both ends), as librosa.yin:
    the first trough of d' below `trough_threshold`, else its minimum, refined by a parabola."""
    hop_length = hop_length or frame_length // 4
    frames = centred_frames(y, frame_length, hop_length)
    min_period = int(np.floor(sr / fmax))
    max_period = min(int(np.ceil(sr / fmin)), frame_length - 1)
    d = _normalized_difference(frames, min_period, max_period)
    shifts = _parabolic_shifts(d)
    # a trough: lower than the point before and not higher than the one after (librosa.util.localmin)
    is_trough = np.zeros_like(d, dtype=bool)
    is_trough[1:-1] = (d[1:-1] < d[:-2]) & (d[1:-1] <= d[2:])
    is_trough[-1] = d[-1] < d[-2]
    is_trough[0] = d[0] < d[1]
    below = is_trough & (d < trough_threshold)
    period = np.where(below.any(axis=0), np.argmax(below, axis=0), np.argmin(d, axis=0))
    columns = np.arange(d.shape[1])
    return sr / (min_period + period + shifts[period, columns])
