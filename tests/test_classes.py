"""Fewer emotions for an application that uses fewer (`ser predict --classes`, `SerModel.predict(classes=)`):
the model's probabilities renormalised over the chosen ones, nothing else changed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import speech, wav_bytes
from ser_core import load_model
from ser_core.errors import ConfigError
from ser_core.serving.results import over_classes


def test_probabilities_are_renormalised_over_the_chosen_classes_in_the_models_order():
    probabilities = {"neutral": 0.4, "calm": 0.3, "happy": 0.2, "sad": 0.1}
    chosen = over_classes(probabilities, ("sad", "neutral"))
    assert list(chosen) == ["neutral", "sad"]
    assert chosen["neutral"] == pytest.approx(0.8) and chosen["sad"] == pytest.approx(0.2)
    assert over_classes(probabilities, None) is probabilities
    with pytest.raises(ConfigError, match="Unknown emotion.*bored"):
        over_classes(probabilities, ("sad", "bored"))


def test_the_api_and_the_cli_answer_over_the_chosen_classes(trained_model, tmp_path, capsys):
    from ser_core.cli import main

    clip = speech(3.0)
    model = load_model(trained_model)
    everything = model.predict(clip, sr=16000)
    chosen = model.predict(clip, sr=16000, classes=("angry", "happy", "sad", "neutral"))
    assert list(chosen) == ["neutral", "happy", "sad", "angry"]
    total = sum(everything[label] for label in chosen)
    np.testing.assert_allclose([chosen[label] for label in chosen], [everything[label] / total for label in chosen],
                               rtol=1e-6)

    path = tmp_path / "clip.wav"
    path.write_bytes(wav_bytes(clip, 16000))
    assert main(["predict", str(path), "--json", "--model", str(trained_model)]) == 0
    [whole] = json.loads(capsys.readouterr().out)
    assert main(["predict", str(path), "--json", "--model", str(trained_model), "--classes", "Angry, happy,sad,neutral"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    # Both printed to 6 digits (as the API answers), the whole ones renormalised here from their rounding.
    assert entry["probabilities"] == pytest.approx(over_classes(whole["probabilities"], tuple(chosen)), abs=1e-5)
    assert entry["emotion"] == max(entry["probabilities"], key=entry["probabilities"].get)
    assert entry["confidence"] == pytest.approx(max(entry["probabilities"].values()), abs=1e-6)
    assert main(["predict", str(path), "--json", "--segments", "--model", str(trained_model), "--classes", "sad,angry"]) == 0
    for row in json.loads(capsys.readouterr().out):
        assert set(row["probabilities"]) == {"sad", "angry"} and sum(row["probabilities"].values()) == pytest.approx(1.0)
        assert row["emotion"] == max(row["probabilities"], key=row["probabilities"].get)
    assert main(["predict", str(path), "--model", str(trained_model), "--classes", "sad,bored"]) != 0
    assert "Unknown emotion(s) bored" in capsys.readouterr().err
