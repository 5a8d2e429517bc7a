"""Training copies of each clip (`TrainParams.speech_cut_copies`, #22: cut at its speech; `voice_copies`,
#21: in a shifted voice): embedded once into a cache of their own beside the clean one, for the training
split only, and recorded with the model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from conftest import train_tiny
from ser_core.serving.inference import METADATA_FILE
from ser_core.training.corpora import read_manifest
from ser_core.training.embeddings import embedding_cache
from ser_core.training.splits import assign
from ser_core.training.train import RECIPES


@pytest.mark.parametrize("copy, field", [("speechcut", "speech_cut_copies"), ("voice", "voice_copies")])
def test_a_recipe_with_copies_trains_on_cached_copies_of_its_training_clips(tiny_dataset, tmp_path, monkeypatch,
                                                                           copy, field):
    features, params = RECIPES["emo-whisper-f32"]
    params = dataclasses.replace(params, **{field: 1})
    monkeypatch.setitem(RECIPES, f"tiny-{copy}", (features, params))
    out = train_tiny(tiny_dataset, tmp_path, f"tiny-{copy}", epochs=1)
    metadata = json.loads((out / METADATA_FILE).read_text())
    recorded = metadata["train_params"]
    assert recorded[field] == 1 and all(recorded[other] == 0 for other in
                                        {"augmented_copies", "speech_cut_copies", "voice_copies"} - {field})

    parts = assign(read_manifest(tiny_dataset / "manifest.csv"), tmp_path / "speaker.csv")
    cache = lambda seed, kind="augment": embedding_cache(features, seed, tmp_path / "cache", params.encoder_layers,  # noqa: E731
                                                         params.encoder_compute_type, copy=kind)
    copies, clean = cache(1, copy), cache(None)
    # one copy of every training clip and of nothing else; no copies of the other kinds
    assert all(copies.get(clip.path) is not None for clip in parts["train"])
    assert not any(copies.get(clip.path) is not None for clip in parts["val"] + parts["test"])
    assert len(list(copies.dir.glob("*.npy"))) == len(parts["train"])
    assert all(clean.get(clip.path) is not None for clip in parts["train"] + parts["val"] + parts["test"])
    assert not any(cache(1, other).dir.exists() for other in {"augment", "speechcut", "voice"} - {copy})
    # a copy is not the clip itself
    assert not all(np.allclose(copies.get(clip.path), clean.get(clip.path)) for clip in parts["train"])
