"""A trained model directory, loaded once, answering "which emotion?" for files, bytes or arrays.

Audio longer than one window is covered by several windows (see `features.window_starts`); the
clip's probabilities are the mean over its windows, and the per-window rows are the timeline.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import DEFAULT_LIMITS, Audio, AudioLimits, AudioSource, load_audio, to_mono_float32
from .errors import ModelError
from .features import FeatureParams, Normalizer, extract

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.json"
BATCH_WINDOWS = 256  # windows per forward pass: bounds memory on long audio


@dataclass(frozen=True)
class Analysis:
    """Everything one prediction computed, for display: the app draws its plots from this."""

    audio: Audio
    window_times_s: np.ndarray  # start of each window
    window_probabilities: np.ndarray  # (n_windows, n_labels)
    features: np.ndarray  # (n_windows, n_mfcc, n_frames), before normalisation
    labels: tuple[str, ...]

    @property
    def probabilities(self) -> dict[str, float]:
        mean = self.window_probabilities.mean(axis=0)
        return {label: float(p) for label, p in zip(self.labels, mean)}

    @property
    def emotion(self) -> str:
        probabilities = self.probabilities
        return max(probabilities, key=probabilities.get)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SerModel:
    """Thread-safe: Keras inference is not (tensorflow#61298), so forward passes take a lock."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        metadata_path = self.directory / METADATA_FILE
        model_path = self.directory / MODEL_FILE
        if not metadata_path.is_file() or not model_path.is_file():
            raise ModelError(f"{self.directory} is not a model directory (needs {MODEL_FILE} and {METADATA_FILE})")
        self.metadata = json.loads(metadata_path.read_text())
        self.labels = tuple(self.metadata["labels"])
        self.params = FeatureParams.from_dict(self.metadata["feature_params"])
        self.normalizer = Normalizer.from_dict(self.metadata["normalization"])
        import keras  # TensorFlow loads here, once per model

        self._keras = keras.models.load_model(model_path, safe_mode=True, compile=False)
        self._lock = threading.Lock()

    @property
    def metrics(self) -> dict | None:
        path = self.directory / METRICS_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """(n_windows, n_mfcc, n_frames) raw MFCC → (n_windows, n_labels) probabilities."""
        if features.shape[1:] != self.params.input_shape:
            raise ModelError(f"features of shape {features.shape[1:]}, model expects {self.params.input_shape}")
        x = self.normalizer(features)[..., None]
        out = []
        for start in range(0, len(x), BATCH_WINDOWS):
            with self._lock:
                out.append(np.asarray(self._keras.predict_on_batch(x[start : start + BATCH_WINDOWS])))
        return np.concatenate(out).astype(np.float64)

    def analyze_audio(self, audio: Audio) -> Analysis:
        times, features = extract(audio.samples, self.params)
        return Analysis(audio, times, self.predict_features(features), features, self.labels)

    def analyze(
        self, source: AudioSource | np.ndarray, sr: int | None = None, limits: AudioLimits = DEFAULT_LIMITS
    ) -> Analysis:
        """A path, bytes, file object, or a numpy array (with `sr`) → `Analysis`."""
        if isinstance(source, np.ndarray):
            if sr is None:
                raise ValueError("sr is required when predicting from a numpy array")
            audio = to_mono_float32(source, sr, self.params.sample_rate, limits=limits)
        else:
            audio = load_audio(source, self.params.sample_rate, limits)
        return self.analyze_audio(audio)

    def predict(self, source: AudioSource | np.ndarray, sr: int | None = None) -> dict[str, float]:
        """Label → probability, averaged over the windows that cover the audio."""
        return self.analyze(source, sr).probabilities


def load_model(directory: str | Path = "models/default") -> SerModel:
    return SerModel(directory)
