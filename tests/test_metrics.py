"""Metrics checked against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ser_core.training.metrics import compute_metrics, keras_threshold_scores

LABELS = ("a", "b", "c")


def test_metrics_match_hand_computed_values():
    # true: a a a b b c ; predicted: a a b b c c
    y_true = [0, 0, 0, 1, 1, 2]
    probabilities = np.array([
        [0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.3, 0.4, 0.3],
        [0.2, 0.7, 0.1], [0.1, 0.4, 0.5], [0.1, 0.1, 0.8],
    ])
    m = compute_metrics(y_true, probabilities, LABELS, corpora=["x", "x", "y", "y", "y", "y"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recalls a 2/3, b 1/2, c 1/1 → UAR 13/18
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["macro_recall"] == pytest.approx(m["balanced_accuracy"])
    # precisions a 2/2, b 1/2, c 1/2
    assert m["macro_precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    f1 = [2 * p * r / (p + r) for p, r in ((1, 2 / 3), (0.5, 0.5), (0.5, 1))]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["per_class"]["c"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["per_corpus"]["x"] == {"accuracy": 1.0, "balanced_accuracy": 1.0, "n": 2}
    assert m["per_corpus"]["y"]["accuracy"] == pytest.approx(2 / 4)
    # above 0.5: (0,a) (1,a) (3,b) (5,c) → 4 positives, all true; 6 true pairs
    assert m["keras_precision"] == pytest.approx(4 / 4)
    assert m["keras_recall"] == pytest.approx(4 / 6)


def test_keras_threshold_scores_with_no_confident_prediction():
    assert keras_threshold_scores(np.array([0, 1]), np.full((2, 3), 1 / 3)) == (0.0, 0.0)
