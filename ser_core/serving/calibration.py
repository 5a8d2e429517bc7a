"""Confidence that means what it says: temperature scaling fitted on validation, expected calibration
error and reliability-diagram data, and the confidence below which a prediction is shown as uncertain."""

from __future__ import annotations

import numpy as np

ECE_BINS = 15
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(8.0), 121))
UNCERTAINTY_GRID = np.round(np.arange(0.20, 0.805, 0.05), 2)


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of log-probabilities divided by the temperature (> 1 softens, < 1 sharpens)."""
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def clip_means(window_probabilities: np.ndarray, counts: list[int]) -> np.ndarray:
    bounds = np.cumsum([0, *counts])
    return np.stack([window_probabilities[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])


def fit_temperature(window_probabilities: np.ndarray, counts: list[int], y_true: np.ndarray) -> float:
    """The temperature minimising the validation clips' negative log-likelihood, through the same
    window averaging that prediction uses."""
    y_true = np.asarray(y_true)

    def nll(t: float) -> float:
        clips = clip_means(apply_temperature(window_probabilities, t), counts)
        return float(-np.mean(np.log(np.clip(clips[np.arange(len(y_true)), y_true], 1e-12, 1.0))))

    return float(min(TEMPERATURES, key=nll))


def reliability(y_true: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> tuple[float, list[dict]]:
    """ECE (equal-width confidence bins) and, per bin, mean confidence, accuracy and count."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        mask = which == b
        if mask.any():
            gap = abs(confidence[mask].mean() - correct[mask].mean())
            ece += mask.mean() * gap
        table.append({
            "low": float(edges[b]), "high": float(edges[b + 1]), "count": int(mask.sum()),
            "confidence": float(confidence[mask].mean()) if mask.any() else None,
            "accuracy": float(correct[mask].mean()) if mask.any() else None,
        })
    return float(ece), table


def uncertainty_threshold(y_true: np.ndarray, probabilities: np.ndarray, band: float = 0.1,
                          min_count: int = 20) -> float:
    """The lowest confidence from which validation predictions (in a band of `band` above it) were
    right at least half of the time: under it a prediction is more likely wrong than right, and the
    app says "uncertain" rather than naming an emotion."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(y_true)
    for t in UNCERTAINTY_GRID:
        in_band = (confidence >= t) & (confidence < t + band)
        if in_band.sum() >= min_count and correct[in_band].mean() >= 0.5:
            return float(t)
    return float(UNCERTAINTY_GRID[-1])
