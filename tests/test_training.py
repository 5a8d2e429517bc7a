"""End to end on a synthetic corpus: train → every artifact → reload → identical predictions → CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import speech, wav_bytes
from ser_core import LABELS, load_model
from ser_core.serving.inference import sha256_file

METRIC_KEYS = {"protocol", "n_test", "labels", "accuracy", "balanced_accuracy", "macro_precision",
               "macro_recall", "macro_f1", "keras_precision", "keras_recall", "per_class", "per_corpus",
               "confusion_matrix"}


def test_training_writes_every_artifact(trained_model):
    for name in ("model.keras", "metadata.json", "metrics.json", "history.json", "predictions.csv"):
        assert (trained_model / name).is_file(), name
    metadata = json.loads((trained_model / "metadata.json").read_text())
    assert metadata["labels"] == list(LABELS)
    assert metadata["param_count"] == 56040 and metadata["trainable_param_count"] == 55656
    assert metadata["weights_sha256"] == sha256_file(trained_model / "model.keras")
    assert metadata["feature_params"]["n_mfcc"] == 25 and metadata["protocol"] == "speaker"
    assert len(metadata["normalization"]["mean"]) == 25
    assert {"keras", "tensorflow-cpu", "librosa"} <= set(metadata["libraries"])

    metrics = json.loads((trained_model / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert np.array(metrics["confusion_matrix"]).shape == (8, 8)
    assert np.sum(metrics["confusion_matrix"]) == metrics["n_test"] == metadata["data"]["test"]["clips"]
    history = json.loads((trained_model / "history.json").read_text())
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history)
    assert len(history["loss"]) == metadata["training"]["epochs_run"]


def test_reloaded_model_reproduces_its_test_predictions(trained_model, tiny_dataset):
    model = load_model(trained_model)
    rows = list(csv.DictReader((trained_model / "predictions.csv").open()))
    assert len(rows) == json.loads((trained_model / "metrics.json").read_text())["n_test"]
    for row in rows[:6]:
        probabilities = model.predict(tiny_dataset / row["path"], segmented=False)  # as evaluated
        np.testing.assert_allclose([probabilities[k] for k in LABELS], [float(row[k]) for k in LABELS], atol=1e-5)
        assert max(probabilities, key=probabilities.get) == row["predicted"]


def test_predict_array_and_file_agree_and_long_audio_is_averaged_over_windows(trained_model, tmp_path):
    model = load_model(trained_model)
    clip = speech(7.0, f0=220)
    path = tmp_path / "long.wav"
    path.write_bytes(wav_bytes(clip, 16000, "FLOAT"))
    from_file, from_array = model.predict(path), model.predict(clip, sr=16000)
    assert from_file.keys() == set(LABELS) and sum(from_file.values()) == pytest.approx(1, abs=1e-5)
    np.testing.assert_allclose(list(from_file.values()), list(from_array.values()), atol=1e-5)
    windows = model.analyze(clip, sr=16000, segmented=False)
    assert windows.segments is None and len(windows.window_times_s) >= 4  # 7 s is never cut to the first 2.5 s
    np.testing.assert_allclose(windows.window_probabilities.mean(axis=0), list(windows.probabilities.values()),
                               atol=1e-6)
    by_utterance = model.analyze(clip, sr=16000)  # the default: speech segments, weighted by duration
    assert by_utterance.segments and by_utterance.segments[-1].end_s > 6.0
    np.testing.assert_allclose(list(by_utterance.probabilities.values()), list(from_array.values()), atol=1e-6)


def test_cli_predict_json_and_one_line_errors(trained_model, tmp_path):
    good = tmp_path / "good.mp3"
    import soundfile as sf

    sf.write(good, speech(3.0), 16000, format="MP3")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 50)
    result = subprocess.run(
        [sys.executable, "-m", "ser_core.cli", "predict", str(good), str(bad), str(tmp_path / "missing.wav"),
         "--json", "--model", str(trained_model)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    [entry] = json.loads(result.stdout)
    assert entry["file"] == str(good) and entry["emotion"] in LABELS
    assert set(entry["probabilities"]) == set(LABELS)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 2 and "not an audio file" in errors[0] and "not found" in errors[1]


def test_cli_evaluate_any_manifest_skipping_unknown_labels(trained_model, tiny_dataset, tmp_path):
    from ser_core.cli import main

    lines = (tiny_dataset / "manifest.csv").read_text().splitlines()
    manifest = tmp_path / "m.csv"
    names = [line.split(",")[0] for line in lines[1:20]]
    manifest.write_text("path,emotion\n" + "".join(f"{tiny_dataset / line.split(',')[0]},{line.split(',')[1]}\n"
                                                   for line in lines[1:20]) + f"{tiny_dataset / names[0]},bored\n")
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(trained_model), "--manifest", str(manifest), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["n_test"] == 19 and metrics["skipped_unknown_labels"] == {"bored": 1}
    assert METRIC_KEYS <= set(metrics)


def test_litert_serving_path_matches_the_keras_reference(trained_model):
    from ser_core.serving.inference import SerModel

    assert (trained_model / "model.tflite").is_file()
    served, reference = SerModel(trained_model), SerModel(trained_model, backend="keras")
    assert served.backend == "litert" and reference.backend == "keras"
    features = np.stack([np.random.default_rng(i).normal(-5, 20, size=(25, 216)) for i in range(5)]).astype(np.float32)
    np.testing.assert_allclose(served.predict_features(features), reference.predict_features(features), atol=1e-4)
    metadata = json.loads((trained_model / "metadata.json").read_text())
    assert metadata["litert_sha256"] == sha256_file(trained_model / "model.tflite")


def test_concurrent_predictions_each_get_their_own_answer(trained_model):
    from concurrent.futures import ThreadPoolExecutor

    model = load_model(trained_model)
    clips = [speech(2.0 + 0.7 * i, f0=90 + 40 * i, seed=i) for i in range(6)]
    serial = [model.predict(clip, sr=16000) for clip in clips]
    with ThreadPoolExecutor(6) as pool:
        parallel = list(pool.map(lambda clip: model.predict(clip, sr=16000), clips * 3))
    for i, result in enumerate(parallel):
        np.testing.assert_allclose(list(result.values()), list(serial[i % 6].values()), atol=1e-6)


@pytest.mark.parametrize("architecture", ["emo-cnn", "emo-tdnn"])
def test_the_new_architectures_train_with_their_augmentation_recipe(architecture, tiny_dataset, tmp_path):
    """Log-mel models with SpecAugment, mixup, class weights, label smoothing, AdamW + cosine: each
    trains, is calibrated on validation, and serves through LiteRT."""
    import dataclasses

    from ser_core.training.corpora import read_manifest
    from ser_core.training.splits import make_split, write_split_file
    from ser_core.training.train import RECIPES, train

    clips = read_manifest(tiny_dataset / "manifest.csv")
    split_file = tmp_path / "speaker.csv"
    write_split_file(clips, make_split(clips, "speaker"), split_file)
    feature_params, train_params = RECIPES[architecture]
    train(clips, split_file, "speaker", tmp_path / "m", feature_params,
          dataclasses.replace(train_params, epochs=2, batch_size=16), cache_root=tmp_path / "cache", verbose=0)
    metadata = json.loads((tmp_path / "m" / "metadata.json").read_text())
    assert metadata["feature_params"]["kind"] == "logmel" and metadata["architecture"] == architecture
    assert metadata["calibration"]["temperature"] > 0 and 0 < metadata["calibration"]["uncertain_below"] < 1
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert 0 <= metrics["ece"] <= 1 and len(metrics["reliability"]) == 15
    model = load_model(tmp_path / "m")
    analysis = model.analyze(speech(4.0), sr=16000)
    assert model.backend == "litert" and analysis.features.shape[1:] == (64, 301)
    assert analysis.is_uncertain == (analysis.confidence < metadata["calibration"]["uncertain_below"])


def test_batch_prediction_in_worker_processes_matches_in_process(trained_model, tmp_path):
    from ser_core.serving.batch import predict_files

    paths = []
    for i in range(5):
        path = tmp_path / f"clip{i}.wav"
        path.write_bytes(wav_bytes(speech(2.0 + i, f0=100 + 30 * i, seed=i), 16000))
        paths.append(path)
    (tmp_path / "bad.wav").write_bytes(b"RIFF....garbage")
    paths.insert(2, tmp_path / "bad.wav")
    serial = list(predict_files(paths, trained_model, workers=1))
    parallel = list(predict_files(paths, trained_model, workers=2))
    assert [r[0] for r in parallel] == [str(p) for p in paths]
    assert parallel[2][1] is None and "not an audio file" in parallel[2][3]
    for (_, a, *_), (_, b, *_) in zip(serial, parallel):
        if a is not None:
            np.testing.assert_allclose(list(a.values()), list(b.values()), atol=1e-6)
