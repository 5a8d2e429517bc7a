"""Domain-adversarial training (`TrainParams.corpus_adversarial`, `speaker_adversarial`, #21): the
gradient reversal is the identity forward and −weight backward, mixup carries the corpus targets, a
clip of an unknown speaker teaches a speaker adversary nothing, and the saved model is the emotion head
alone."""

from __future__ import annotations

import json

import numpy as np

from conftest import speech, train_tiny
from ser_core.labels import LABELS
from ser_core.serving.inference import METADATA_FILE, load_model
from ser_core.training.model import build, with_adversary
from ser_core.training.train import (RECIPES, _mixup, adversarial_loss, adversary_group, adversary_of,
                                    packed_targets, set_loss)


def test_the_reversal_passes_values_and_turns_the_gradient():
    import tensorflow as tf

    head = build("whisper-head", (6,), len(LABELS))
    trained = with_adversary(head, groups=3, weight=0.3)
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 6)), tf.float32)
    out = trained(x, training=False)
    assert out.shape == (4, len(LABELS) + 3)
    np.testing.assert_allclose(out[:, :len(LABELS)], head(x, training=False), atol=1e-6)  # the head's own output
    hidden = head.get_layer("hidden")
    reversal = trained.get_layer("gradient_reversal")
    probe = tf.Variable(np.ones((4, hidden.units), np.float32))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(reversal(probe) * 2.0)
    np.testing.assert_allclose(reversal(probe), probe, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(y, probe), -0.6 * np.ones((4, hidden.units)), atol=1e-6)


def test_the_loss_adds_the_corpus_cross_entropy_and_mixup_mixes_the_corpora():
    k = len(LABELS)
    targets = np.eye(k, dtype=np.float32)[[0, 3]]
    spaces = np.ones((2, k), np.float32)
    corpora = np.eye(2, dtype=np.float32)
    y = packed_targets(targets, spaces, corpora)
    assert y.shape == (2, 4 * k + 1 + 2)
    emotion = np.full((2, k), 1.0 / k, np.float32)
    corpus = np.array([[0.8, 0.2], [0.5, 0.5]], np.float32)
    plain = np.asarray(set_loss(0.0)(y, emotion))
    both = np.asarray(adversarial_loss(set_loss(0.0))(y, np.concatenate([emotion, corpus], axis=1)))
    np.testing.assert_allclose(both - plain, -np.log([0.8, 0.5]), rtol=1e-5)
    # Eight examples of eight corpora, each input its corpus's position: mixed as the inputs are, the
    # corpus columns read back the mixed input, and still sum to one. (Any shuffle but the identity,
    # one in 40,320, blends some pair.)
    n = 8
    corpora = np.eye(n, dtype=np.float32)
    positions = np.arange(1.0, n + 1, dtype=np.float32)
    y = packed_targets(np.eye(k, dtype=np.float32)[np.arange(n) % k], np.ones((n, k), np.float32), corpora)
    x = (corpora @ positions)[:, None]
    mixed_x, mixed_y, _ = (np.asarray(t) for t in _mixup(x, y, np.ones(n, np.float32), 0.4, seed=1))
    mixed_corpora = mixed_y[:, 4 * k + 1:]
    np.testing.assert_allclose(mixed_corpora @ positions, mixed_x[:, 0], atol=1e-4)
    np.testing.assert_allclose(mixed_corpora.sum(axis=1), 1.0, atol=1e-6)
    assert not np.allclose(mixed_x, x)


def test_an_adversarial_recipe_saves_the_emotion_head_alone(tiny_dataset, tmp_path):
    out = train_tiny(tiny_dataset, tmp_path, "emo-whisper-dann", epochs=2)
    metadata = json.loads((out / METADATA_FILE).read_text())
    assert metadata["train_params"]["corpus_adversarial"] == 0.3
    assert "val_emotion_loss" in json.loads((out / "history.json").read_text())
    model = load_model(out)
    assert list(model.labels) == list(LABELS)
    probabilities = model.predict(speech(2.0), sr=16000, segmented=False)
    assert set(probabilities) == set(LABELS) and abs(sum(probabilities.values()) - 1) < 1e-4


def test_a_speaker_adversary_groups_clips_by_speaker_and_skips_unknown_ones(tiny_dataset, tmp_path):
    from ser_core.training.corpora import UNKNOWN_SPEAKER, Clip

    assert adversary_of(RECIPES["emo-whisper-sann"][1]) == ("speaker", 0.3)
    assert adversary_of(RECIPES["emo-whisper-dann"][1]) == ("corpus", 0.3)
    assert adversary_of(RECIPES["emo-whisper-f32"][1]) is None
    group = adversary_group("speaker")
    clip = Clip(path=tmp_path / "a.wav", emotion="sad", corpus="cremad", speaker="1001", clip_id="x", text="")
    assert group(clip) == "cremad/1001" and adversary_group("corpus")(clip) == "cremad"
    assert group(Clip(path=tmp_path / "b.wav", emotion="sad", corpus="emospeech", speaker=UNKNOWN_SPEAKER,
                      clip_id="y", text="")) is None
    # An all-zero group row (an unknown speaker, a validation speaker) adds nothing to the loss.
    k = len(LABELS)
    y = packed_targets(np.eye(k, dtype=np.float32)[[1]], np.ones((1, k), np.float32), np.zeros((1, 3), np.float32))
    emotion = np.full((1, k), 1.0 / k, np.float32)
    both = adversarial_loss(set_loss(0.0))(y, np.concatenate([emotion, np.full((1, 3), 1 / 3, np.float32)], axis=1))
    np.testing.assert_allclose(np.asarray(both), np.asarray(set_loss(0.0)(y, emotion)), rtol=1e-6)
    out = train_tiny(tiny_dataset, tmp_path / "sann", "emo-whisper-sann", epochs=2)
    assert json.loads((out / METADATA_FILE).read_text())["train_params"]["speaker_adversarial"] == 0.3
    assert list(load_model(out).labels) == list(LABELS)


def test_a_conditional_adversary_reads_the_hidden_layer_by_emotion():
    """`conditional` (CDAN): the corpus classifier reads each hidden unit once per emotion, weighted by the
    head's own softmax; the head's output is unchanged, and the reversal still turns the gradient."""
    import tensorflow as tf

    head = build("whisper-head", (6,), len(LABELS))
    trained = with_adversary(head, groups=3, weight=0.3, conditional=True)
    x = tf.constant(np.random.default_rng(1).normal(size=(5, 6)), tf.float32)
    np.testing.assert_allclose(trained(x, training=False)[:, :len(LABELS)], head(x, training=False), atol=1e-6)
    hidden_units = head.get_layer("hidden").units
    product = trained.get_layer("hidden_by_emotion")
    assert product.output.shape[-1] == hidden_units * len(LABELS)
    probe = tf.keras.Model(head.input, [head.get_layer("hidden").output, head.output, product.output])
    h, p, m = (np.asarray(v) for v in probe(x, training=False))
    np.testing.assert_allclose(m, (h[:, :, None] * p[:, None, :]).reshape(5, -1), atol=1e-6)
