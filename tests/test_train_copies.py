"""Training copies of each clip (`TrainParams.speech_cut_copies`, #22: cut at its speech; `voice_copies`,
#21: in a shifted voice; `both_int8_arithmetics`, #21: from the other int8 arithmetic): embedded once into
a cache of their own beside the clean one, for the training split only, and recorded with the model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from conftest import train_tiny
from ser_core.errors import ConfigError
from ser_core.frontend import encoder
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


def test_a_head_taught_both_int8_arithmetics_reads_its_training_clips_from_both(tiny_dataset, tmp_path):
    if len({encoder.backend_arithmetic(backend) for backend in encoder.CT2_BACKENDS}) < 2:
        pytest.skip("this CPU computes one int8 arithmetic on both of CTranslate2's back ends")
    out = train_tiny(tiny_dataset, tmp_path, "emo-whisper-fast-both", epochs=1)
    front_end = json.loads((out / METADATA_FILE).read_text())["front_end"]
    assert front_end["int8_trained_on"] == list(encoder.INT8_ARITHMETICS)
    assert front_end["int8_arithmetic"] == encoder.int8_arithmetic()  # what its test predictions were read with

    features, params = RECIPES["emo-whisper-fast-both"]
    parts = assign(read_manifest(tiny_dataset / "manifest.csv"), tmp_path / "speaker.csv")
    here = embedding_cache(features, None, tmp_path / "cache", params.encoder_layers, "int8")
    other_arithmetic = next(a for a in encoder.INT8_ARITHMETICS if a != encoder.int8_arithmetic())
    root = here.dir.parent  # .../embeddings/<weights>-l3-int8<arithmetic>-e1-clean
    other = type(here)(features, root.with_name(root.name.replace(encoder.int8_arithmetic(), other_arithmetic)))
    assert all(other.get(clip.path) is not None for clip in parts["train"])
    assert not any(other.get(clip.path) is not None for clip in parts["val"] + parts["test"])
    assert all(here.get(clip.path) is not None for clip in parts["train"] + parts["val"] + parts["test"])
    assert not any(np.allclose(other.get(clip.path), here.get(clip.path), rtol=0.01) for clip in parts["train"])


def test_both_int8_arithmetics_are_refused_where_both_back_ends_compute_one(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(encoder, "backend_arithmetic", lambda backend: encoder.int8_arithmetic())
    with pytest.raises(ConfigError, match="both of CTranslate2's back ends"):  # `ser train` says it in a sentence
        train_tiny(tiny_dataset, tmp_path, "emo-whisper-fast-both", epochs=1)
