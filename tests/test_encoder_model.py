"""An encoder model end to end on the tiny synthetic corpus: train → artifacts → reload → the same
predictions from files, arrays and the CLI; its front end is checked when it loads."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import speech
from ser_core import LABELS, load_model
from ser_core.errors import ModelError
from ser_core.frontend.encoder import WEIGHTS_SHA256
from ser_core.serving.inference import EncoderModel


def test_training_writes_an_encoder_model(trained_encoder_model):
    metadata = json.loads((trained_encoder_model / "metadata.json").read_text())
    assert metadata["front_end"]["sha256"] == WEIGHTS_SHA256 and "normalization" not in metadata
    assert metadata["feature_params"]["kind"] == "whisper" and metadata["feature_params"]["target_level_dbfs"] == -26.0
    assert metadata["architecture"] == "whisper-head" and metadata["train_params"]["augmented_copies"] == 1
    # The augmented copy doubles the training windows; validation and test stay clean.
    assert metadata["data"]["train"]["windows"] > 0
    metrics = json.loads((trained_encoder_model / "metrics.json").read_text())
    assert np.sum(metrics["confusion_matrix"]) == metrics["n_test"] == metadata["data"]["test"]["clips"]
    assert (trained_encoder_model / "model.tflite").is_file() and "calibration" in metadata


def test_reloaded_encoder_model_reproduces_its_test_predictions(trained_encoder_model, tiny_dataset):
    model = load_model(trained_encoder_model)
    assert isinstance(model, EncoderModel) and model.backend == "litert"
    rows = list(csv.DictReader((trained_encoder_model / "predictions.csv").open()))
    for row in rows[:4]:
        probabilities = model.predict(tiny_dataset / row["path"], segmented=False)  # as evaluated
        # int8 encoding: float-identical log-mels computed in another process (other BLAS threads) can
        # differ by 1e-7, which moves int8 activations and the probabilities by up to ~1e-3.
        np.testing.assert_allclose([probabilities[k] for k in LABELS], [float(row[k]) for k in LABELS], atol=5e-3)


def test_encoder_model_timeline_and_level_invariance(trained_encoder_model):
    model = load_model(trained_encoder_model)
    clip = speech(9.5, f0=200)
    analysis = model.analyze(clip, sr=16000, segmented=False)
    # 4 s windows every 2 s (0, 2, 4) and one aligned to the end: 1.5 s would otherwise go unheard.
    np.testing.assert_allclose(analysis.window_times_s, [0.0, 2.0, 4.0, 5.5])
    assert analysis.window_probabilities.shape == (4, len(LABELS))
    np.testing.assert_allclose(analysis.window_probabilities.sum(axis=1), 1.0, atol=1e-5)
    # Active-speech level normalisation: 20 dB quieter (above the app's speech gate) changes little.
    loud, quiet = model.predict(clip, sr=16000), model.predict(clip * 10 ** (-20 / 20), sr=16000)  # by utterance
    assert max(abs(loud[k] - quiet[k]) for k in LABELS) < 0.02


def test_encoder_model_refuses_other_encoder_weights(trained_encoder_model, tmp_path):
    import shutil

    copy = tmp_path / "other"
    shutil.copytree(trained_encoder_model, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    metadata["front_end"]["sha256"] = "0" * 64
    (copy / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelError, match="other encoder weights"):
        load_model(copy)


def test_the_dropout_head_is_the_whisper_head_with_more_dropout():
    from ser_core.training.model import build

    plain, heavier = build("whisper-head", (12,), len(LABELS)), build("whisper-head-dropout", (12,), len(LABELS))
    rates = lambda m: [layer.rate for layer in m.layers if layer.__class__.__name__ == "Dropout"]  # noqa: E731
    assert rates(plain) == [0.1, 0.3] and rates(heavier) == [0.5, 0.5]
    assert [w.shape for w in plain.get_weights()] == [w.shape for w in heavier.get_weights()]
    heavier.set_weights(plain.get_weights())
    x = np.random.default_rng(0).normal(size=(5, 12)).astype(np.float32)
    # dropout acts only in training: served, the two read the same weights the same way
    np.testing.assert_allclose(heavier(x, training=False), plain(x, training=False), atol=1e-6)
    assert not np.allclose(heavier(x, training=True), plain(x, training=False), atol=1e-3)


def test_a_head_trained_on_loudness_pooling_is_served_with_it(tiny_dataset, tmp_path):
    """`TrainParams.pooling`: a head trained on frames pooled by loudness records it in its front end,
    and served it pools the same way: it reproduces its test predictions, which the even pooling does not."""
    import shutil

    from conftest import train_tiny

    out = train_tiny(tiny_dataset, tmp_path, "emo-whisper-f32-loud", epochs=2)
    front_end = json.loads((out / "metadata.json").read_text())["front_end"]
    assert front_end["pooling_weights"] == "loudness" and "loudness" in front_end["pooling"]
    rows = list(csv.DictReader((out / "predictions.csv").open()))[:4]

    def served(directory):
        model = load_model(directory)
        return [[model.predict(tiny_dataset / row["path"], segmented=False)[k] for k in LABELS] for row in rows]

    recorded = [[float(row[k]) for k in LABELS] for row in rows]
    np.testing.assert_allclose(served(out), recorded, atol=1e-4)  # float32 encoder: the same to rounding
    even = tmp_path / "even"
    shutil.copytree(out, even)
    metadata = json.loads((even / "metadata.json").read_text())
    del metadata["front_end"]["pooling_weights"]
    (even / "metadata.json").write_text(json.dumps(metadata))
    assert np.abs(np.array(served(even)) - np.array(recorded)).max() > 1e-3
