"""The models the app ships with: complete, consistent with their metadata, and — where the corpora
are present — reproducing their committed test predictions."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from ser_core.frontend.encoder import int8_arithmetic, recorded_int8_arithmetic
from ser_core.labels import LABELS
from ser_core.serving.inference import sha256_file
from ser_core.training.corpora import find_clips

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.parent for p in (ROOT / "models").glob("*/metadata.json") if p.parent.name != "default")
METRIC_KEYS = {"protocol", "n_test", "labels", "accuracy", "balanced_accuracy", "macro_precision", "macro_recall",
               "macro_f1", "keras_precision", "keras_recall", "per_class", "per_corpus", "confusion_matrix"}

pytestmark = pytest.mark.skipif(not SHIPPED, reason="no trained model committed under models/")


def test_default_model_is_a_shipped_model():
    """`models/default` is a pointer file naming a shipped model directory (a symlink would be packed
    into the wheel as a second copy of the model)."""
    from ser_core.serving.shipped import follow_pointer

    pointer = ROOT / "models" / "default"
    assert pointer.is_file() and not pointer.is_symlink()
    default = follow_pointer(pointer)
    assert default in SHIPPED and (default / "model.keras").is_file() and (default / "metadata.json").is_file()


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: p.name)
def test_shipped_model_is_complete_and_consistent(model_dir):
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metadata["weights_sha256"] == sha256_file(model_dir / "model.keras")
    assert metadata["labels"] == list(LABELS) == metrics["labels"]
    assert (ROOT / metadata["split_file"]).is_file()
    assert METRIC_KEYS <= set(metrics) and metrics["protocol"] == metadata["protocol"]
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (8, 8) and matrix.sum() == metrics["n_test"]
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    with (model_dir / "predictions.csv").open() as f:  # with clips labelled by a set of classes (BAVED)
        assert sum(1 for _ in csv.DictReader(f)) == metrics.get("n_scored", metrics["n_test"])
    if metadata["architecture"] == "seed-cnn":
        assert metadata["param_count"] == 56040
    assert (model_dir / "model.keras").stat().st_size < 5 * 2**20


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: p.name)
def test_shipped_model_test_clips_come_from_its_test_split_only(model_dir):
    metadata = json.loads((model_dir / "metadata.json").read_text())
    with (ROOT / metadata["split_file"]).open() as f:
        split = {(r["corpus"], r["clip_id"]): r["split"] for r in csv.DictReader(f)}
    with (model_dir / "predictions.csv").open() as f:
        assert {split[r["corpus"], r["clip_id"]] for r in csv.DictReader(f)} == {"test"}


def speaker_normalised(model_dir: Path) -> bool:
    return bool(json.loads((model_dir / "metadata.json").read_text()).get("front_end", {}).get("speaker_normalised"))


def skip_unless_reproducible_here(model) -> None:
    """int8 encoder products come out two ways (`encoder.int8_arithmetic`), by CPU and CTranslate2 back
    end, and the probabilities read from them up to 0.43 apart; float32 embeddings differed by at most
    4e-6 between the back ends. An int8 model is checked where its recorded arithmetic is computed."""
    front_end = model.metadata.get("front_end", {})
    if front_end.get("compute_type") == "int8" and int8_arithmetic() != recorded_int8_arithmetic(front_end):
        pytest.skip(f"an int8 encoder model recorded with {recorded_int8_arithmetic(front_end)} int8 products: this CPU "
                    f"computes {int8_arithmetic()} ones (probabilities up to 0.43 apart), so they cannot be reproduced "
                    "here; bench/int8_arithmetic.py measures it on both. float32 encoder models are checked everywhere")


AS_RECORDED = [d for d in SHIPPED if not speaker_normalised(d)]
ADAPTIVE = [d for d in SHIPPED if speaker_normalised(d)]


@pytest.mark.parametrize("model_dir", AS_RECORDED, ids=lambda p: p.name)
def test_shipped_model_reproduces_its_test_predictions_on_the_corpora(model_dir, corpora):
    from ser_core import load_model

    model = load_model(model_dir)
    skip_unless_reproducible_here(model)
    with (model_dir / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    paths = {(c.corpus, c.clip_id): c.path for c in find_clips([corpora])}
    sample = random.Random(0).sample([r for r in rows if (r["corpus"], r["clip_id"]) in paths], 24)
    encoder = "front_end" in model.metadata
    agree = 0
    for row in sample:
        analysis = model.analyze(paths[row["corpus"], row["clip_id"]], segmented=False)  # as evaluated
        # The seed-cnn predictions predate the 80 dB floor being taken per window rather than per
        # clip, which moves clips of several windows by up to 2e-3. The encoder's int8 products
        # depend on the CPU's MKL kernels even on the pinned AVX2 path (ser_core.frontend.encoder): on
        # another CPU than the training one, probabilities moved by up to 0.022 (measured).
        atol = 3e-2 if encoder else 1e-4 if len(analysis.window_times_s) == 1 else 5e-3
        probabilities = analysis.probabilities
        np.testing.assert_allclose([probabilities[k] for k in LABELS], [float(row[k]) for k in LABELS], atol=atol)
        agree += analysis.emotion == row["predicted"]
    assert agree >= len(sample) - 1


@pytest.mark.parametrize("model_dir", SHIPPED, ids=lambda p: p.name)
def test_litert_serving_path_matches_keras_for_every_shipped_model(model_dir):
    from ser_core import load_model

    served, reference = load_model(model_dir), load_model(model_dir, backend="keras")
    assert served.backend == "litert"
    rng = np.random.default_rng(0)
    if served.normalizer is not None:  # spectrogram CNNs: feature windows around the training statistics
        mean, std = served.normalizer.mean[:, None], served.normalizer.std[:, None]
        cached = (mean + std * rng.standard_normal((6, *served.params.input_shape))).astype(np.float32)
    else:  # encoder models: pooled embeddings around the training mean (the encoder itself is shared)
        mean = served.representation_mean
        cached = (mean + 0.5 * np.abs(mean).mean() * rng.standard_normal((6, len(mean)))).astype(np.float32)
    np.testing.assert_allclose(served.predict_cached(cached), reference.predict_cached(cached), atol=1e-4)


@pytest.mark.parametrize("model_dir", ADAPTIVE, ids=lambda p: p.name)
def test_speaker_normalised_model_reproduces_its_test_predictions_with_a_profile(model_dir, corpora):
    """Its test predictions read each speaker against a profile of all of that speaker's test clips:
    rebuilt here for one test speaker, from the audio."""
    from ser_core import load_model
    from ser_core.frontend.features import extract
    from ser_core.io.audio import load_audio
    from ser_core.serving.profile import profile_from_windows

    model = load_model(model_dir)
    skip_unless_reproducible_here(model)
    with (model_dir / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    clips = {(c.corpus, c.clip_id): c for c in find_clips([corpora])}
    speakers = {}
    for row in rows:
        clip = clips.get((row["corpus"], row["clip_id"]))
        if clip is not None and clip.corpus == "savee":  # one SAVEE test speaker: 120 clips, all of them test
            speakers.setdefault(clip.speaker, []).append((clip, row))
    speaker_rows = min(speakers.values(), key=len)
    cached = [model.to_cached(extract(load_audio(c.path, model.params.sample_rate).samples, model.params)[1])
              for c, _ in speaker_rows]
    profile = profile_from_windows(model, np.concatenate([model.representation(c) for c in cached]), len(cached))
    agree = 0
    for (clip, row), windows in zip(speaker_rows[:12], cached):
        probabilities = model.predict_against(windows, profile).mean(axis=0)
        # int8 encoding: BLAS threads differ between the training workers and this process, which moves
        # the log-mel by 1e-7, int8 activations by a step, and probabilities by up to ~2e-2 (measured).
        np.testing.assert_allclose(probabilities, [float(row[k]) for k in LABELS], atol=3e-2)
        agree += LABELS[int(np.argmax(probabilities))] == row["predicted"]
    assert agree >= 11

