"""How aroused the voice sounds (`results.arousal`): read from the emotions' probabilities, carried by
every answer (`ser predict`, its CSV, the API, the app's downloads), untouched by a choice of classes."""

from __future__ import annotations

import csv
import io
import json

import pytest

from conftest import speech, wav_bytes
from ser_core import load_model
from ser_core.labels import HIGH_AROUSAL, LABELS, LOW_AROUSAL
from ser_core.serving.results import arousal, arousal_word, judged


def test_the_two_levels_hold_every_emotion_but_disgust_once():
    assert set(HIGH_AROUSAL).isdisjoint(LOW_AROUSAL)
    assert set(LABELS) - set(HIGH_AROUSAL) - set(LOW_AROUSAL) == {"disgust"}


def test_arousal_is_the_high_emotions_share_of_both_levels():
    probabilities = dict.fromkeys(LABELS, 0.0)
    assert arousal({**probabilities, "angry": 0.6, "fearful": 0.2, "sad": 0.2}) == pytest.approx(0.8)
    assert arousal({**probabilities, "calm": 1.0}) == 0.0
    assert arousal({**probabilities, "surprised": 1.0}) == 1.0
    # Disgust weighs on neither side however probable it is.
    assert arousal({**probabilities, "happy": 0.05, "neutral": 0.05, "disgust": 0.9}) == pytest.approx(0.5)
    assert arousal({**probabilities, "disgust": 1.0}) is None
    assert (arousal_word(0.5), arousal_word(0.49)) == ("high", "low")


def test_a_choice_of_classes_does_not_move_arousal():
    probabilities = {"neutral": 0.05, "calm": 0.1, "happy": 0.3, "sad": 0.15, "angry": 0.2, "fearful": 0.1,
                     "disgust": 0.05, "surprised": 0.05}
    whole, chosen = judged(probabilities, None, 0.0), judged(probabilities, ("sad", "neutral"), 0.0)
    assert whole["arousal"] == chosen["arousal"] == pytest.approx(0.65 / 0.95, abs=1e-6)
    assert chosen["emotion"] == "sad" and set(chosen["probabilities"]) == {"neutral", "sad"}


def test_every_answer_carries_arousal(trained_encoder_model, tmp_path, capsys):
    """The CLI's JSON (per file and per segment) and CSV, and the API's analysis, read the same value
    from the same probabilities."""
    from ser_core.cli import main
    from ser_core.serving.http import analysis_json

    path = tmp_path / "clip.wav"
    path.write_bytes(wav_bytes(speech(3.0), 16000))
    model = str(trained_encoder_model)
    assert main(["predict", str(path), "--json", "--model", model]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert 0.0 <= entry["arousal"] <= 1.0
    assert entry["arousal"] == pytest.approx(arousal(entry["probabilities"]), abs=1e-5)
    assert main(["predict", str(path), "--csv", "--model", model]) == 0
    [row] = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert float(row["arousal"]) == pytest.approx(entry["arousal"], abs=1e-4)
    assert main(["predict", str(path), "--model", model]) == 0
    assert f"arousal {arousal_word(entry['arousal'])} ({entry['arousal']:.2f})" in capsys.readouterr().out
    assert main(["predict", str(path), "--json", "--segments", "--model", model]) == 0
    for segment in json.loads(capsys.readouterr().out):
        assert segment["arousal"] == pytest.approx(arousal(segment["probabilities"]), abs=1e-5)

    loaded = load_model(trained_encoder_model)
    answer = analysis_json("clip.wav", loaded, loaded.analyze(str(path)), segments=True, classes=("angry", "sad"))
    assert answer["arousal"] == pytest.approx(entry["arousal"], abs=1e-5)  # the classes chosen do not move it
    assert all(0.0 <= s["arousal"] <= 1.0 for s in answer["segments"])


def test_the_api_schema_describes_arousal():
    from ser_core.serving.http import OPENAPI

    schemas = OPENAPI["components"]["schemas"]
    for name in ("Analysis", "Segment"):
        assert schemas[name]["properties"]["arousal"]["maximum"] == 1


def test_the_default_hears_acted_anger_high_and_calm_speech_low(corpora):
    """Golden, on a RAVDESS actor of the default's test split: every angry sentence reads high, every
    neutral and calm one low."""
    model = load_model()
    actor = corpora / "ravdess" / "Actor_01"
    levels = {emotion: {arousal_word(arousal(model.predict(path))) for path in sorted(actor.glob(f"03-01-{code}-*"))}
              for code, emotion in (("05", "angry"), ("01", "neutral"), ("02", "calm"))}
    assert levels == {"angry": {"high"}, "neutral": {"low"}, "calm": {"low"}}
