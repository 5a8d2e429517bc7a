"""Corpus directions taken out of a head's input (training.nuisance): the fitted directions are the
ones corpora differ along for the same emotion, folding the projection into the saved head changes
nothing it outputs, and fold models recorded before the parameter existed are still reused."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser_core.training.corpora import Clip
from ser_core.training.dataset import ClipFeatures
from ser_core.training.nuisance import CorpusProjection


def corpora_with_an_offset(rng: np.random.Generator, d: int = 12) -> tuple[ClipFeatures, np.ndarray]:
    """Two corpora with the same two emotions; corpus "b" sits `offset` away from "a" whatever the emotion."""
    offset = np.zeros(d)
    offset[3] = 5.0
    emotion_axis = np.zeros(d)
    emotion_axis[7] = 4.0
    clips, features = [], []
    for corpus, shift in (("a", 0.0), ("b", 1.0)):
        for emotion, sign in (("happy", 1.0), ("sad", -1.0)):
            for i in range(30):
                clips.append(Clip(Path(f"{corpus}{emotion}{i}.wav"), emotion, corpus, corpus, f"{emotion}{i}", ""))
                features.append((rng.normal(size=(2, d)) + shift * offset + sign * emotion_axis).astype(np.float32))
    return ClipFeatures(clips, features, []), offset


def test_the_leading_direction_is_the_corpus_offset_and_projection_removes_it_keeping_emotion():
    data, offset = corpora_with_an_offset(np.random.default_rng(0))
    projection = CorpusProjection.fit(data, 1)
    standardised_offset = offset / projection.scale
    cosine = abs(projection.directions[:, 0] @ standardised_offset) / np.linalg.norm(standardised_offset)
    assert cosine > 0.95
    x = np.concatenate(data.features)
    corpus_b = np.repeat([c.corpus == "b" for c in data.clips], 2)
    projected = projection.project(x)
    gap = lambda v, axis: abs(v[corpus_b, axis].mean() - v[~corpus_b, axis].mean())
    assert gap(x, 3) > 4.0 and gap(projected, 3) < 0.5  # the corpora no longer differ along the offset
    happy = np.repeat([c.emotion == "happy" for c in data.clips], 2)
    assert projected[happy, 7].mean() - projected[~happy, 7].mean() > 7.0  # the emotion contrast is kept


def test_a_head_trained_on_projected_inputs_reads_raw_inputs_the_same_once_folded():
    from ser_core.training.model import build

    rng = np.random.default_rng(1)
    data, _ = corpora_with_an_offset(rng)
    projection = CorpusProjection.fit(data, 2)
    x = np.concatenate(data.features)
    for architecture in ("whisper-head", "whisper-linear"):
        model = build(architecture, x.shape[1:], 8)
        model.get_layer("standardise").adapt(projection.project(x))
        for layer in model.layers:  # weights away from their initial values, as after training
            if layer.get_weights() and layer.name != "standardise":
                layer.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in layer.get_weights()])
        fresh = rng.normal(size=(20, x.shape[1])).astype(np.float32) * 3
        expected = np.asarray(model(projection.project(fresh), training=False))
        projection.fold_into(model)
        np.testing.assert_allclose(np.asarray(model(fresh, training=False)), expected, atol=2e-5)


def test_a_model_recorded_before_a_parameter_existed_matches_the_recipe_at_its_default():
    import dataclasses

    from ser_core.training.train import RECIPES, recorded_train_params

    params = RECIPES["emo-whisper-f32"][1]
    older = {key: value for key, value in dataclasses.asdict(params).items() if key != "corpus_directions_removed"}
    assert recorded_train_params({"train_params": older}) == dataclasses.asdict(params)
    assert recorded_train_params({"train_params": older}) != dataclasses.asdict(RECIPES["emo-whisper-nap"][1])
