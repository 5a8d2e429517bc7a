"""Temperature scaling, ECE and the uncertainty threshold on constructed predictions."""

from __future__ import annotations

import numpy as np
import pytest

from ser_core.serving.calibration import apply_temperature, fit_temperature, reliability, uncertainty_threshold


def overconfident_predictions(n: int = 2000, seed: int = 0):
    """A classifier right 60% of the time that always claims 95%."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    correct = rng.random(n) < 0.6
    predicted = np.where(correct, y, (y + rng.integers(1, 4, n)) % 4)
    probabilities = np.full((n, 4), 0.05 / 3)
    probabilities[np.arange(n), predicted] = 0.95
    return y, probabilities


def test_temperature_one_is_the_identity_and_larger_softens():
    p = np.array([[0.7, 0.2, 0.1]])
    np.testing.assert_allclose(apply_temperature(p, 1.0), p, atol=1e-9)
    assert apply_temperature(p, 3.0).max() < 0.7 and apply_temperature(p, 0.5).max() > 0.7


def test_ece_of_overconfident_predictions_and_its_repair():
    y, p = overconfident_predictions()
    ece, table = reliability(y, p)
    assert ece == pytest.approx(0.95 - np.mean(p.argmax(1) == y), abs=1e-9)
    assert sum(row["count"] for row in table) == len(y) and len(table) == 15
    t = fit_temperature(p, [1] * len(y), y)
    assert t > 1.5
    assert reliability(y, apply_temperature(p, t))[0] < 0.03


def test_fitting_through_window_averaging():
    y, p = overconfident_predictions(600)
    windows = np.repeat(p, 2, axis=0)  # two identical windows per clip
    assert fit_temperature(windows, [2] * len(y), y) == pytest.approx(fit_temperature(p, [1] * len(y), y))


def test_uncertainty_threshold_sits_where_predictions_turn_mostly_wrong():
    # Calibrated by construction: the top class (confidence c, uniform in [0.25, 1]) is right with
    # probability c, so predictions in [t, t + 0.1) are right about t + 0.05 of the time.
    rng = np.random.default_rng(1)
    n = 20000
    confidence = rng.uniform(0.25, 1.0, n)
    y = rng.integers(0, 4, n)
    predicted = np.where(rng.random(n) < confidence, y, (y + rng.integers(1, 4, n)) % 4)
    p = np.repeat(((1 - confidence) / 3)[:, None], 4, axis=1)
    p[np.arange(n), predicted] = confidence
    assert 0.4 <= uncertainty_threshold(y, p) <= 0.5
