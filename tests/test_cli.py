"""The command line: models found by path or by shipped name, and argument mistakes reported as one
line on stderr with a non-zero exit, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ser_core.cli import main, resolve_model
from ser_core.errors import ModelError

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
SHIPPED = sorted(p.name for p in MODELS.iterdir() if (p / "metadata.json").is_file())


@pytest.mark.parametrize("name", ["emo-cnn", "emo-cnn-speaker"])
def test_shipped_model_by_short_or_full_name(name):
    assert resolve_model(name).resolve() == MODELS / "emo-cnn-speaker"


@pytest.mark.parametrize("name", ["seed-cnn", "emo-tdnn"])
def test_short_names_mean_the_speaker_protocol_model(name):
    assert resolve_model(name).resolve() == MODELS / f"{name}-speaker"


def test_model_by_directory_path(tmp_path, monkeypatch):
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "metadata.json").write_text(json.dumps({}))
    assert resolve_model(str(model)) == model
    assert resolve_model(str(MODELS / "emo-cnn-random")) == MODELS / "emo-cnn-random"
    monkeypatch.chdir(tmp_path)  # a relative path, from wherever ser runs
    assert resolve_model("my-model").resolve() == model


def test_unknown_model_lists_the_shipped_ones(tmp_path):
    with pytest.raises(ModelError) as caught:
        resolve_model("emo-transformer")
    message = str(caught.value)
    assert "emo-transformer" in message and "\n" not in message
    assert "emo-cnn-speaker" in message and all(name in message for name in SHIPPED)
    (tmp_path / "empty").mkdir()  # a folder that is not a model is not accepted either
    with pytest.raises(ModelError):
        resolve_model(str(tmp_path / "empty"))


@pytest.mark.parametrize("arguments", [
    ["--protocol", "loco"],  # loco without the corpus to hold out
    ["--protocol", "speaker", "--held-out", "ravdess"],  # a held-out corpus without loco
    ["--protocol", "lolo", "--held-out", "ravdess"],  # a corpus where a language is asked for
    ["--protocol", "lolo"],  # lolo without the language to hold out
], ids=["loco-without-held-out", "held-out-without-loco", "lolo-with-a-corpus", "lolo-without-held-out"])
def test_train_held_out_mistakes_are_one_line_on_stderr(tmp_path, capsys, arguments):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,emotion\n")
    code = main(["train", "--data", str(manifest), "--out", str(tmp_path / "out"), *arguments])
    captured = capsys.readouterr()
    assert code != 0
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ser: ") and "--held-out" in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "out").exists()


def test_an_ensemble_refuses_epochs_its_members_recipes_set(tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,emotion\n")
    code = main(["train", "--data", str(manifest), "--out", str(tmp_path / "out"), "--protocol", "speaker",
                 "--model", "emo-whisper-ens", "--epochs", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("ser: ") and "--epochs" in err[0]
    assert not (tmp_path / "out").exists()
