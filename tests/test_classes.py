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
    assert over_classes(probabilities, ("sad", "neutral", "sad")) == chosen  # a name given twice counts once


def test_a_users_list_of_emotions_names_each_once_and_at_least_two():
    from ser_core.serving.results import named_classes

    assert named_classes("Angry, happy,sad,angry") == ("angry", "happy", "sad")
    for text in ("angry", "angry,angry", "", " , ,"):
        with pytest.raises(ConfigError, match="Name two emotions or more"):
            named_classes(text)


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
    assert main(["predict", str(path), "--json", "--model", str(trained_model), "--classes", "sad,angry,sad"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["probabilities"] == pytest.approx(
        over_classes(whole["probabilities"], ("sad", "angry")), abs=1e-5)
    with pytest.raises(SystemExit):  # argparse's refusal, one line on stderr
        main(["predict", str(path), "--model", str(trained_model), "--classes", "angry"])
    assert "Name two emotions or more" in capsys.readouterr().err


def test_an_analysis_read_over_chosen_classes_is_what_ser_predict_classes_answers(trained_model):
    """`Analysis.over_classes` (the app's sidebar choice): the file, each segment, each speaker and each
    window over the chosen emotions, as `judged(..., classes)` reads them; arousal from all of them."""
    from ser_core.serving.results import judged, speaker_summaries

    model = load_model(trained_model)
    clip = np.concatenate([speech(3.0, seed=1), np.zeros(32000, np.float32), speech(3.0, seed=2, f0=220)])
    whole = model.analyze(clip, sr=16000)
    chosen = ("sad", "angry", "neutral", "happy")
    read = whole.over_classes(chosen)
    assert read.labels == ("neutral", "happy", "sad", "angry")  # the model's order
    expected = judged(whole.probabilities, chosen, whole.uncertain_below)
    assert read.probabilities == pytest.approx(expected["probabilities"], abs=1e-6)
    assert (read.emotion, read.is_uncertain) == (expected["emotion"], expected["uncertain"])
    assert read.arousal == pytest.approx(whole.arousal) and read.all_probabilities == pytest.approx(whole.probabilities)
    assert len(read.segments) == len(whole.segments) == 2
    for before, after in zip(whole.segments, read.segments):
        expected = judged(before.probabilities, chosen, whole.uncertain_below)
        assert after.probabilities == pytest.approx(expected["probabilities"], abs=1e-6)
        assert (after.emotion, after.uncertain) == (expected["emotion"], expected["uncertain"])
        assert (after.start_s, after.end_s, after.speaker) == (before.start_s, before.end_s, before.speaker)
        assert after.arousal == pytest.approx(before.arousal)
    speakers = speaker_summaries(read.segments, read.labels, read.uncertain_below)
    for summary, over_all in zip(speakers, speaker_summaries(whole.segments, whole.labels, whole.uncertain_below),
                                 strict=True):
        assert summary.probabilities == pytest.approx(over_classes(dict(over_all.probabilities), chosen))
        assert summary.arousal == pytest.approx(over_all.arousal) and summary.speech_s == over_all.speech_s
    columns = [whole.labels.index(label) for label in read.labels]
    np.testing.assert_allclose(read.window_probabilities, whole.window_probabilities[:, columns]
                               / whole.window_probabilities[:, columns].sum(axis=1, keepdims=True), rtol=1e-6)
    assert whole.over_classes(None) is whole and whole.over_classes(whole.labels) is whole
    with pytest.raises(ConfigError, match="Unknown emotion.*bored"):
        whole.over_classes(("sad", "bored"))
