"""Training copies of each clip cut at its speech (`TrainParams.speech_cut_copies`, #22): embedded once
into a cache of their own beside the clean one, for the training split only, and recorded with the model."""

from __future__ import annotations

import json

from conftest import train_tiny
from ser_core.serving.inference import METADATA_FILE
from ser_core.training.corpora import read_manifest
from ser_core.training.embeddings import embedding_cache
from ser_core.training.splits import assign
from ser_core.training.train import RECIPES


def test_a_speech_cut_recipe_trains_on_cached_copies_of_its_training_clips(tiny_dataset, tmp_path):
    out = train_tiny(tiny_dataset, tmp_path, "emo-whisper-f32-cut", epochs=1)
    metadata = json.loads((out / METADATA_FILE).read_text())
    assert metadata["train_params"]["speech_cut_copies"] == 1 and metadata["train_params"]["augmented_copies"] == 0

    features, params = RECIPES["emo-whisper-f32-cut"]
    parts = assign(read_manifest(tiny_dataset / "manifest.csv"), tmp_path / "speaker.csv")
    cache = lambda seed, copy="augment": embedding_cache(features, seed, tmp_path / "cache", params.encoder_layers,  # noqa: E731
                                                         params.encoder_compute_type, copy=copy)
    cut, clean = cache(1, "speechcut"), cache(None)
    # one copy of every training clip and of nothing else; no random-chain copies for this recipe
    assert all(cut.get(clip.path) is not None for clip in parts["train"])
    assert not any(cut.get(clip.path) is not None for clip in parts["val"] + parts["test"])
    assert len(list(cut.dir.glob("*.npy"))) == len(parts["train"])
    assert all(clean.get(clip.path) is not None for clip in parts["train"] + parts["val"] + parts["test"])
    assert not cache(1).dir.exists()
