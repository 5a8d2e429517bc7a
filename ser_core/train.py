"""Train a model on a split file and write a complete, self-describing model directory.

The directory holds everything needed to use and to audit the model without the training data:
weights, feature parameters, normalisation statistics, label order, protocol and split file,
library versions, test metrics, training history and per-clip test predictions.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np

from .corpora import LABELS, Clip
from .dataset import extract_clips
from .errors import ManifestError
from .evaluate import evaluate, write_predictions
from .export import export_litert
from .features import FeatureParams, Normalizer
from .inference import METADATA_FILE, METRICS_FILE, MODEL_FILE, SerModel, sha256_file
from .splits import assign

LIBRARIES = ("tensorflow-cpu", "keras", "librosa", "numpy", "soundfile", "soxr", "scikit-learn")


@dataclass(frozen=True)
class TrainParams:
    architecture: str = "seed-cnn"
    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 12  # epochs without a better validation loss before stopping
    seed: int = 42


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return versions


def _dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x[..., None], np.eye(len(LABELS), dtype=np.float32)[y]))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(2)


def train(
    clips: list[Clip],
    split_file: Path,
    protocol: str,
    out_dir: Path,
    params: FeatureParams = FeatureParams(),
    train_params: TrainParams = TrainParams(),
    cache_root: Path | None = None,
    verbose: int = 2,
) -> dict:
    """Train, save, reload from disk and evaluate on the test split. Returns the test metrics."""
    parts = assign(clips, split_file)
    if not parts["train"] or not parts["val"] or not parts["test"]:
        sizes = {k: len(v) for k, v in parts.items()}
        raise ManifestError(f"{split_file} leaves a split empty for this data: {sizes}")
    data = {name: extract_clips(part, params, cache_root, desc=f"features ({name})") for name, part in parts.items()}
    x_train, y_train = data["train"].stacked(LABELS)
    x_val, y_val = data["val"].stacked(LABELS)
    normalizer = Normalizer.fit(x_train)

    import keras  # after feature extraction: its worker processes need no TensorFlow

    from .model import build

    keras.utils.set_random_seed(train_params.seed)
    model = build(train_params.architecture, params.input_shape, len(LABELS))
    model.compile(
        optimizer=keras.optimizers.Adam(train_params.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=train_params.patience, restore_best_weights=True
    )
    started = time.perf_counter()
    history = model.fit(
        _dataset(normalizer(x_train), y_train, train_params.batch_size, train_params.seed),
        validation_data=_dataset(normalizer(x_val), y_val, 256, None),
        epochs=train_params.epochs,
        callbacks=[stop],
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    epochs_run = len(history.history["loss"])

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / MODEL_FILE)
    metadata = {
        "name": out_dir.name,
        "architecture": train_params.architecture,
        "labels": list(LABELS),
        "feature_params": params.to_dict(),
        "normalization": normalizer.to_dict(),
        "protocol": protocol,
        "split_file": f"models/splits/{Path(split_file).name}",
        "train_params": train_params.__dict__,
        "param_count": int(model.count_params()),
        "trainable_param_count": int(sum(int(np.prod(w.shape)) for w in model.trainable_weights)),
        "weights_sha256": sha256_file(out_dir / MODEL_FILE),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "libraries": library_versions(),
        "data": {
            name: {
                "clips": len(d.clips),
                "windows": int(sum(len(f) for f in d.features)),
                "per_corpus": {c: sum(clip.corpus == c for clip in d.clips) for c in sorted({x.corpus for x in d.clips})},
                "skipped": [{"path": p, "reason": r} for p, r in d.skipped],
            }
            for name, d in data.items()
        },
        "training": {
            "epochs_run": epochs_run,
            "best_epoch": int(np.argmin(history.history["val_loss"])) + 1,
            "seconds": round(train_seconds, 1),
            "samples_per_second": round(len(x_train) * epochs_run / train_seconds, 1),
            "cpu_count": os.cpu_count(),
        },
    }
    (out_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    export_litert(out_dir)
    (out_dir / "history.json").write_text(json.dumps(
        {key: [float(v) for v in values] for key, values in history.history.items()}, indent=2))

    # Evaluate the artifact as users will load it (LiteRT), not the in-memory model.
    saved = SerModel(out_dir)
    metrics, test_clips, probabilities = evaluate(saved, data["test"], protocol)
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    write_predictions(test_clips, probabilities, saved.labels, out_dir / "predictions.csv")
    return metrics
