"""Corpora with partial label sets: the loss never teaches a class the corpus lacks as wrong, labels
that name a set of classes count any member right, and sources can weigh the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ser_core.labels import LABELS
from ser_core.training.corpora import Clip
from ser_core.training.dataset import ClipFeatures
from ser_core.training.metrics import label_recalls, label_uar
from ser_core.training.train import TrainParams, example_weights, packed_targets, set_loss


def clip(emotion: str, corpus: str = "ravdess", speaker: str = "a") -> Clip:
    return Clip(Path(f"{corpus}/{speaker}-{emotion}.wav"), emotion, corpus, speaker, f"{speaker}-{emotion}", "")


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def test_one_class_targets_over_every_class_are_keras_label_smoothed_cross_entropy():
    import keras

    rng = np.random.default_rng(0)
    p = softmax(rng.normal(size=(16, len(LABELS))))
    y = rng.integers(0, len(LABELS), 16)
    one_hot = np.eye(len(LABELS), dtype=np.float32)[y]
    ours = np.asarray(set_loss(0.1)(packed_targets(one_hot, np.ones_like(one_hot)), p))
    theirs = np.asarray(keras.losses.categorical_crossentropy(one_hot, p, label_smoothing=0.1))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_a_class_outside_the_label_space_costs_nothing():
    data = ClipFeatures([clip("happy", "turev")], [np.zeros((1, 4), np.float32)], [])
    _, target, space = data.stacked(LABELS, label_spaces=True)
    assert {LABELS[i] for i in np.flatnonzero(space[0])} == {"calm", "happy", "sad", "angry"}
    loss = set_loss(0.1)
    logits = np.zeros((1, len(LABELS)))
    base = np.asarray(loss(packed_targets(target, space), softmax(logits)))
    logits[0, LABELS.index("surprised")] = 5.0  # a class TurEV-DB never asked for
    moved = np.asarray(loss(packed_targets(target, space), softmax(logits)))
    np.testing.assert_allclose(moved, base, rtol=1e-5)
    logits[0, LABELS.index("angry")] = 5.0  # a class it has: now wrong, and costs
    assert np.asarray(loss(packed_targets(target, space), softmax(logits)))[0] > base[0] + 1.0


def test_a_label_naming_a_set_is_right_on_any_member():
    data = ClipFeatures([clip("high-arousal", "baved")], [np.zeros((1, 4), np.float32)], [])
    _, target, space = data.stacked(LABELS, label_spaces=True)
    loss = set_loss(0.0)
    for member in ("angry", "happy", "surprised"):
        logits = np.zeros((1, len(LABELS)))
        logits[0, LABELS.index(member)] = 8.0
        assert np.asarray(loss(packed_targets(target, space), softmax(logits)))[0] < 0.01
    logits = np.zeros((1, len(LABELS)))
    logits[0, LABELS.index("sad")] = 8.0
    assert np.asarray(loss(packed_targets(target, space), softmax(logits)))[0] > 3.0


def test_twins_teach_calm_or_neutral_only_where_a_corpus_has_one_of_them():
    data = ClipFeatures([clip("calm", "turev"), clip("neutral", "cremad"), clip("calm", "ravdess"),
                         clip("neutral", "ravdess"), clip("sad", "cremad")], [np.zeros((1, 4), np.float32)] * 5, [])
    taught = lambda twins: [{LABELS[i] for i in np.flatnonzero(row)} for row in data.stacked(LABELS, twins=twins)[1]]
    assert taught(True) == [{"calm", "neutral"}, {"calm", "neutral"}, {"calm"}, {"neutral"}, {"sad"}]
    assert taught(False) == [{"calm"}, {"neutral"}, {"calm"}, {"neutral"}, {"sad"}]


def test_balanced_sources_give_every_corpus_and_speaker_the_same_weight():
    clips = ([clip("happy", "emospeech", f"s{i % 2}") for i in range(90)]
             + [clip("sad", "banglaser", f"t{i % 3}") for i in range(10)])
    targets = np.ones((len(clips), len(LABELS)), np.float32)
    weights = example_weights(targets, clips, TrainParams(balanced_sources=True))
    assert weights.mean() == pytest.approx(1.0)
    by_corpus = {c: weights[[x.corpus == c for x in clips]].sum() for c in ("emospeech", "banglaser")}
    assert by_corpus["emospeech"] == pytest.approx(by_corpus["banglaser"])
    emospeech = [i for i, x in enumerate(clips) if x.corpus == "emospeech"]
    per_speaker = {s: weights[[i for i in emospeech if clips[i].speaker == s]].sum() for s in ("s0", "s1")}
    assert per_speaker["s0"] == pytest.approx(per_speaker["s1"])


def test_class_weights_share_a_set_label_among_its_members():
    targets = np.zeros((3, len(LABELS)), np.float32)
    targets[0, LABELS.index("sad")] = 1
    targets[1, LABELS.index("calm")] = 1
    targets[2, [LABELS.index("calm"), LABELS.index("sad")]] = 1
    weights = example_weights(targets, [clip("sad")] * 3, TrainParams(class_weighted=True))
    assert weights[0] == pytest.approx(weights[1]) == pytest.approx(weights[2])


def test_label_uar_counts_a_set_label_right_on_any_member_and_is_balanced_accuracy_otherwise():
    from sklearn.metrics import balanced_accuracy_score

    truth = ["neutral", "high-arousal", "high-arousal", "low-arousal"]
    predicted = ["neutral", "angry", "sad", "calm"]
    assert label_recalls(truth, predicted) == {"neutral": 1.0, "high-arousal": 0.5, "low-arousal": 1.0}
    assert label_uar(truth, predicted) == pytest.approx(2.5 / 3)
    rng = np.random.default_rng(1)
    t, p = rng.choice(LABELS, 200), rng.choice(LABELS, 200)
    assert label_uar(t, p) == pytest.approx(balanced_accuracy_score(t, p))
