"""Evaluate a model on any list of labelled clips: the metrics schema and per-clip predictions."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .calibration import clip_means
from .corpora import Clip
from .dataset import ClipFeatures
from .errors import ManifestError
from .inference import SerModel
from .metrics import compute_metrics


def clip_probabilities(model: SerModel, data: ClipFeatures) -> np.ndarray:
    """Mean window probabilities per clip, with all windows of all clips in few forward passes."""
    window_probabilities = model.predict_features(np.concatenate(data.features))
    return clip_means(window_probabilities, [len(f) for f in data.features])


def evaluate(model: SerModel, data: ClipFeatures, protocol: str) -> tuple[dict, list[Clip], np.ndarray]:
    """Metrics on the clips whose label the model knows; other labels are counted and skipped."""
    known = [i for i, clip in enumerate(data.clips) if clip.emotion in model.labels]
    unknown: dict[str, int] = {}
    for clip in data.clips:
        if clip.emotion not in model.labels:
            unknown[clip.emotion] = unknown.get(clip.emotion, 0) + 1
    data = ClipFeatures([data.clips[i] for i in known], [data.features[i] for i in known], data.skipped)
    if not data.clips:
        raise ManifestError(f"No clip with a label this model knows ({', '.join(model.labels)}) could be read.")
    probabilities = clip_probabilities(model, data)
    y_true = [model.labels.index(clip.emotion) for clip in data.clips]
    metrics = {"protocol": protocol, **compute_metrics(y_true, probabilities, model.labels,
                                                        [clip.corpus for clip in data.clips])}
    metrics["skipped_unknown_labels"] = unknown
    metrics["skipped_unreadable"] = [{"path": p, "reason": r} for p, r in data.skipped]
    return metrics, data.clips, probabilities


def write_predictions(clips: list[Clip], probabilities: np.ndarray, labels: tuple[str, ...], out: Path) -> None:
    with Path(out).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "corpus", "clip_id", "true", "predicted", *labels])
        for clip, p in zip(clips, probabilities):
            writer.writerow([clip.path.name, clip.corpus, clip.clip_id, clip.emotion, labels[int(np.argmax(p))],
                             *(f"{v:.6f}" for v in p)])
