"""Train a model on a split file and write a complete, self-describing model directory.

The directory holds everything needed to use and to audit the model without the training data:
weights, feature parameters, normalisation statistics, label order, protocol and split file,
library versions, test metrics, training history and per-clip test predictions.
"""

from __future__ import annotations

import dataclasses
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
from .calibration import apply_temperature, clip_means, fit_temperature, reliability, uncertainty_threshold
from .dataset import ClipFeatures, extract_clips
from .encoder import ENCODER_LAYERS
from .errors import ManifestError
from .evaluate import evaluate, write_predictions
from .export import export_litert
from .features import FeatureParams, Normalizer
from .inference import METADATA_FILE, METRICS_FILE, MODEL_FILE, load_model, sha256_file
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
    cosine_schedule: bool = False  # AdamW with cosine decay instead of the original's plain Adam
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0  # 0: off
    spec_augment: bool = False  # random time and band masks on training windows
    class_weighted: bool = False  # rare classes (calm: RAVDESS only) weigh more in the loss
    augmented_copies: int = 0  # encoder models: randomly perturbed copies of each training clip (augment.py)
    encoder_layers: int = ENCODER_LAYERS  # encoder models: how many of the encoder's blocks run (see encoder.WhisperEncoder)
    # Encoder models: every speaker's embeddings moved onto the training mean (their own mean taken
    # off) in training, validation and test alike; served with a voice profile (ser_core.profile).
    speaker_normalised: bool = False


# 64 log-mel bands, 25 ms windows every 10 ms, over 3 s: what the newer architectures were designed on.
LOGMEL_FEATURES = FeatureParams(kind="logmel", n_mels=64, n_fft=512, win_length=400, hop_length=160, fmin=50.0,
                                window_s=3.0, window_hop_s=1.5)

# Whisper's own log-mel (80 bands, 25 ms every 10 ms) over 4 s windows every 2 s, each window's active
# speech brought to -26 dBFS first: the input of the pretrained encoder models.
WHISPER_FEATURES = FeatureParams(kind="whisper", n_mels=80, n_fft=400, win_length=400, hop_length=160, fmin=0.0,
                                 fmax=8000.0, window_s=4.0, offset_s=0.0, window_hop_s=2.0, target_level_dbfs=-26.0)

# Each architecture with the features and training recipe it was designed for.
RECIPES: dict[str, tuple[FeatureParams, TrainParams]] = {
    "seed-cnn": (FeatureParams(), TrainParams()),
    "emo-tdnn": (
        LOGMEL_FEATURES,
        TrainParams(architecture="emo-tdnn", epochs=30, learning_rate=2e-3, patience=8, cosine_schedule=True,
                    weight_decay=1e-4, label_smoothing=0.1, mixup_alpha=0.2, spec_augment=True,
                    class_weighted=True),
    ),
    "emo-cnn": (
        LOGMEL_FEATURES,
        TrainParams(architecture="emo-cnn", epochs=45, learning_rate=2e-3, patience=8, cosine_schedule=True,
                    weight_decay=1e-4, label_smoothing=0.1, mixup_alpha=0.2, spec_augment=True,
                    class_weighted=True),
    ),
    "emo-whisper": (
        WHISPER_FEATURES,
        TrainParams(architecture="whisper-head", epochs=40, batch_size=128, learning_rate=1e-3, patience=8,
                    cosine_schedule=True, weight_decay=1e-3, label_smoothing=0.1, mixup_alpha=0.2,
                    class_weighted=True, augmented_copies=1, encoder_layers=3),
    ),
}
# The same, trained to read every voice relative to the speaker's own (served with a voice profile).
RECIPES["emo-whisper-adapt"] = (WHISPER_FEATURES, dataclasses.replace(RECIPES["emo-whisper"][1], speaker_normalised=True))
# The same encoder read-out through a linear head: chosen on leave-one-corpus-out results
# (bench/results/loco_probe.json, then bench/results/compare_models.json), not on test clips.
RECIPES["emo-whisper-linear"] = (
    WHISPER_FEATURES,
    TrainParams(architecture="whisper-linear", epochs=40, batch_size=128, learning_rate=1e-3, patience=8,
                cosine_schedule=True, class_weighted=True, augmented_copies=1, encoder_layers=3),
)
RECIPES["emo-whisper-linear-adapt"] = (WHISPER_FEATURES, dataclasses.replace(RECIPES["emo-whisper-linear"][1],
                                                                             speaker_normalised=True))


def speaker_normalised(data: ClipFeatures, target: np.ndarray) -> ClipFeatures:
    """Each speaker's windows with that speaker's own mean replaced by `target`: what a voice profile
    built from all of the speaker's clips does to them (transductive; labels are not used)."""
    by_speaker: dict[tuple[str, str], list[int]] = {}
    for i, clip in enumerate(data.clips):
        by_speaker.setdefault((clip.corpus, clip.speaker), []).append(i)
    features = list(data.features)
    for members in by_speaker.values():
        shift = np.concatenate([data.features[i] for i in members]).mean(axis=0) - target
        for i in members:
            features[i] = (data.features[i] - shift).astype(np.float32)
    return ClipFeatures(data.clips, features, data.skipped)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            pass
    return versions


def _spec_augment(x, seed_stream, max_bands: int = 8, max_frames: int = 25, masks: int = 2):
    """Zero (the normalised mean) random bands and frame spans of one (bands, frames, 1) window."""
    import tensorflow as tf

    bands, frames = tf.shape(x)[0], tf.shape(x)[1]
    for axis, size, widest in ((0, bands, max_bands), (1, frames, max_frames)):
        for _ in range(masks):
            width = tf.random.uniform([], 0, widest + 1, dtype=tf.int32, seed=seed_stream())
            start = tf.random.uniform([], 0, tf.maximum(size - width, 1), dtype=tf.int32, seed=seed_stream())
            keep = tf.logical_or(tf.range(size) < start, tf.range(size) >= start + width)
            shape = [-1, 1, 1] if axis == 0 else [1, -1, 1]
            x = x * tf.reshape(tf.cast(keep, x.dtype), shape)
    return x


def _mixup(x, y, w, alpha: float, seed: int):
    """Blend each example with another of its batch (per-example Beta(α, α) weight)."""
    import tensorflow as tf

    n = tf.shape(x)[0]
    a = tf.random.gamma([n], alpha, seed=seed)
    b = tf.random.gamma([n], alpha, seed=seed + 1)
    lam = a / (a + b)
    order = tf.random.shuffle(tf.range(n), seed=seed + 2)
    mix = lambda t, l: l * t + (1 - l) * tf.gather(t, order)
    lam_x = tf.reshape(lam, tf.concat([[-1], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0))
    return mix(x, lam_x), mix(y, lam[:, None]), mix(w, lam)


def _training_dataset(x: np.ndarray, y: np.ndarray, params: TrainParams):
    import itertools

    import tensorflow as tf

    targets = np.eye(len(LABELS), dtype=np.float32)[y]
    counts = np.bincount(y, minlength=len(LABELS)).astype(np.float32)
    class_weights = np.where(counts > 0, counts.sum() / (len(LABELS) * np.maximum(counts, 1)), 0.0)
    weights = class_weights[y] if params.class_weighted else np.ones(len(y), np.float32)
    seeds = itertools.count(params.seed * 1000)
    ds = tf.data.Dataset.from_tensor_slices((x, targets, weights.astype(np.float32)))
    ds = ds.shuffle(len(x), seed=params.seed, reshuffle_each_iteration=True)
    if params.spec_augment:
        ds = ds.map(lambda a, b, c: (_spec_augment(a, lambda: next(seeds)), b, c), num_parallel_calls=2)
    ds = ds.batch(params.batch_size, drop_remainder=params.mixup_alpha > 0)
    if params.mixup_alpha > 0:
        ds = ds.map(lambda a, b, c: _mixup(a, b, c, params.mixup_alpha, params.seed))
    return ds.prefetch(2)


def _validation_dataset(x: np.ndarray, y: np.ndarray):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, np.eye(len(LABELS), dtype=np.float32)[y])).batch(256)


def _optimizer(params: TrainParams, steps_per_epoch: int):
    import keras

    if not params.cosine_schedule:
        return keras.optimizers.Adam(params.learning_rate)
    schedule = keras.optimizers.schedules.CosineDecay(
        params.learning_rate * 0.1, decay_steps=params.epochs * steps_per_epoch,
        warmup_target=params.learning_rate, warmup_steps=steps_per_epoch,
    )
    return keras.optimizers.AdamW(schedule, weight_decay=params.weight_decay)


def _calibrate(out_dir: Path, val: ClipFeatures) -> None:
    """Fit the temperature and the uncertainty threshold on validation clips; store them in metadata."""
    model = load_model(out_dir)
    model.temperature = 1.0  # fit on the raw outputs, whatever an earlier calibration stored
    window_probabilities = model.predict_cached(np.concatenate(val.features))
    counts = [len(f) for f in val.features]
    y_val = np.array([LABELS.index(c.emotion) for c in val.clips])
    temperature = fit_temperature(window_probabilities, counts, y_val)
    calibrated = clip_means(apply_temperature(window_probabilities, temperature), counts)
    metadata_path = out_dir / METADATA_FILE
    metadata = json.loads(metadata_path.read_text())
    metadata["calibration"] = {
        "temperature": temperature,
        "uncertain_below": uncertainty_threshold(y_val, calibrated),
        "val_ece_before": reliability(y_val, clip_means(window_probabilities, counts))[0],
        "val_ece_after": reliability(y_val, calibrated)[0],
        "fitted_on": "validation split",
    }
    metadata_path.write_text(json.dumps(metadata, indent=2))


def model_inputs(parts: dict[str, list[Clip]], params: FeatureParams, cache_root: Path | None = None,
                 encoder_layers: int = ENCODER_LAYERS) -> dict[str, ClipFeatures]:
    """What each split's clips give the trainable part of a model: feature windows for the
    spectrogram CNNs, pooled encoder embeddings for encoder models. Cached on disk either way."""
    if params.kind == "whisper":
        from .embeddings import embed_clips

        return {name: embed_clips(part, params, None, cache_root, desc=f"embeddings ({name})", layers=encoder_layers)
                for name, part in parts.items()}
    return {name: extract_clips(part, params, cache_root, desc=f"features ({name})") for name, part in parts.items()}


def cached_inputs(model, clips: list[Clip]) -> ClipFeatures:
    """A loaded model's cached inputs (feature windows or pooled embeddings) for these clips."""
    front_end = getattr(model, "front_end", None) or {}
    return model_inputs({"clips": clips}, model.params, encoder_layers=front_end.get("layers", ENCODER_LAYERS))["clips"]


def encoder_front_end(layers: int) -> dict:
    """What an encoder model's metadata records of its frozen front end (checked when it loads)."""
    from .encoder import WEIGHTS_SHA256, WEIGHTS_SOURCE
    from .embeddings import EMBEDDING_VERSION

    return {"encoder": "whisper-base", "source": WEIGHTS_SOURCE, "sha256": WEIGHTS_SHA256, "compute_type": "int8",
            "layers": layers, "pooling": "mean+std over time", "embedding_version": EMBEDDING_VERSION}


def train(
    clips: list[Clip],
    split_file: Path,
    protocol: str,
    out_dir: Path,
    params: FeatureParams = FeatureParams(),
    train_params: TrainParams = TrainParams(),
    cache_root: Path | None = None,
    verbose: int = 2,
    held_out: str | None = None,
) -> dict:
    """Train, save, calibrate on validation, reload from disk and evaluate on the test split
    (with `held_out`, on that whole corpus, trained without it). Returns the test metrics."""
    parts = assign(clips, split_file, held_out)
    if not parts["train"] or not parts["val"] or not parts["test"]:
        sizes = {k: len(v) for k, v in parts.items()}
        raise ManifestError(f"{split_file} leaves a split empty for this data: {sizes}")
    data = model_inputs(parts, params, cache_root, train_params.encoder_layers)
    copies = []
    for copy in range(1, train_params.augmented_copies + 1):
        from .embeddings import embed_clips

        copies.append(embed_clips(parts["train"], params, copy, cache_root, desc=f"augmented copy {copy}",
                                  layers=train_params.encoder_layers))
    if train_params.speaker_normalised:
        target = np.concatenate(data["train"].features).mean(axis=0)
        data = {name: speaker_normalised(d, target) for name, d in data.items()}
        copies = [speaker_normalised(d, target) for d in copies]
    x_train, y_train = data["train"].stacked(LABELS)
    x_val, y_val = data["val"].stacked(LABELS)
    for copy in copies:
        x_copy, y_copy = copy.stacked(LABELS)
        x_train, y_train = np.concatenate([x_train, x_copy]), np.concatenate([y_train, y_copy])

    import keras  # after feature extraction: its worker processes need no TensorFlow

    from .model import build

    keras.utils.set_random_seed(train_params.seed)
    if params.kind == "whisper":
        # Pooled embeddings: the head standardises them itself (a Normalization layer fitted here).
        normalizer, front_end = None, encoder_front_end(train_params.encoder_layers)
        front_end["speaker_normalised"] = train_params.speaker_normalised
        model = build(train_params.architecture, x_train.shape[1:], len(LABELS))
        model.get_layer("standardise").adapt(x_train)
        clean_mean = np.concatenate(data["train"].features).mean(axis=0)  # where voice profiles move a voice
        front_end["train_embedding_mean"] = [round(float(v), 6) for v in clean_mean]
        x_train_in, x_val_in = x_train, x_val
    else:
        normalizer, front_end = Normalizer.fit(x_train), None
        model = build(train_params.architecture, params.input_shape, len(LABELS))
        x_train_in, x_val_in = normalizer(x_train)[..., None], normalizer(x_val)[..., None]
    model.compile(
        optimizer=_optimizer(train_params, len(x_train) // train_params.batch_size),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=train_params.label_smoothing),
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=train_params.patience, restore_best_weights=True
    )
    started = time.perf_counter()
    history = model.fit(
        _training_dataset(x_train_in, y_train, train_params),
        validation_data=_validation_dataset(x_val_in, y_val),
        epochs=train_params.epochs,
        callbacks=[stop],
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    epochs_run = len(history.history["loss"])

    out_dir.mkdir(parents=True, exist_ok=True)
    # Saved without the optimizer's state: users need the weights only (a third of the size).
    inference_model = keras.models.clone_model(model)
    inference_model.set_weights(model.get_weights())
    inference_model.save(out_dir / MODEL_FILE)
    metadata = {
        "name": out_dir.name,
        "architecture": train_params.architecture,
        "labels": list(LABELS),
        "feature_params": params.to_dict(),
        **({"normalization": normalizer.to_dict()} if normalizer else {"front_end": front_end}),
        "protocol": protocol,
        "split_file": f"models/splits/{Path(split_file).name}",
        **({"held_out_corpus": held_out} if held_out else {}),
        "train_params": train_params.__dict__,
        "param_count": int(inference_model.count_params()),
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
    (out_dir / "history.json").write_text(json.dumps(
        {key: [float(v) for v in values] for key, values in history.history.items()}, indent=2))
    return finalize(out_dir, data["val"], data["test"], protocol)


def finalize(out_dir: Path, val: ClipFeatures, test: ClipFeatures, protocol: str) -> dict:
    """From a saved Keras model: LiteRT export, calibration on validation, then the test metrics and
    predictions of the artifact as users load it (LiteRT), not of the in-memory model."""
    export_litert(out_dir)
    _calibrate(out_dir, val)
    saved = load_model(out_dir)
    metrics, test_clips, probabilities = evaluate(saved, test, protocol)
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    write_predictions(test_clips, probabilities, saved.labels, out_dir / "predictions.csv")
    return metrics
