"""Test-set metrics in one schema for every model: class-averaged scores from scikit-learn, plus the
original project's Keras 0.5-threshold precision/recall so its numbers can be compared like for like."""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from ..serving.calibration import reliability
from .corpora import candidates


def uar(y_true, y_pred) -> float:
    """Unweighted average recall over the classes `y_true` holds. A prediction of a class the test set
    lacks is simply wrong, which scikit-learn scores right but warns about on every corpus."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        warnings.filterwarnings("ignore", message="A single label was found")  # a test set of one emotion
        return float(balanced_accuracy_score(y_true, y_pred))


def keras_threshold_scores(y_true: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5):
    """Keras' `Precision()`/`Recall()` on one-hot targets: every (clip, class) pair above the threshold
    is a positive. Not class averages: the original reported these as its precision and recall."""
    one_hot = np.eye(probabilities.shape[1], dtype=bool)[y_true]
    predicted = probabilities > threshold
    true_positives = np.sum(predicted & one_hot)
    precision = true_positives / predicted.sum() if predicted.sum() else 0.0
    recall = true_positives / one_hot.sum() if one_hot.sum() else 0.0
    return float(precision), float(recall)


def compute_metrics(
    y_true: Sequence[int],
    probabilities: np.ndarray,
    labels: Sequence[str],
    corpora: Sequence[str] | None = None,
) -> dict:
    """y_true: label indices; probabilities: (n, len(labels)). Rows true, columns predicted."""
    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_pred = probabilities.argmax(axis=1)
    all_labels = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=all_labels, zero_division=0
    )
    present = support > 0  # macro averages over the classes the test set has
    keras_precision, keras_recall = keras_threshold_scores(y_true, probabilities)
    metrics = {
        "n_test": int(len(y_true)),
        "labels": list(labels),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": uar(y_true, y_pred),
        "macro_precision": float(precision[present].mean()),
        "macro_recall": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "keras_precision": keras_precision,
        "keras_recall": keras_recall,
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=all_labels).tolist(),
    }
    metrics["ece"], metrics["reliability"] = reliability(y_true, probabilities)
    if corpora is not None:
        corpora = np.asarray(corpora)
        metrics["per_corpus"] = {
            corpus: {
                "accuracy": float(accuracy_score(y_true[mask], y_pred[mask])),
                "balanced_accuracy": uar(y_true[mask], y_pred[mask]),
                "n": int(mask.sum()),
            }
            for corpus in sorted(set(corpora))
            for mask in [corpora == corpus]
        }
    return metrics


def label_recalls(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Per label of the test set: the share of its clips whose predicted class the label allows (a
    label naming a set of classes, such as BAVED's "high-arousal", allows any of them)."""
    hits: dict[str, list[bool]] = {}
    for label, guess in zip(truth, predicted):
        hits.setdefault(label, []).append(guess in candidates(label))
    return {label: float(np.mean(h)) for label, h in hits.items()}


def label_uar(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Unweighted average recall over the labels the test set has, sets of classes included; with
    one-class labels only, scikit-learn's balanced accuracy."""
    return float(np.mean(list(label_recalls(truth, predicted).values())))
