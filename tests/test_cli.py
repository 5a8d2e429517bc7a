"""The command line: models found by path or by shipped name, and argument mistakes reported as one
line on stderr with a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import re
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


# --- a user's mistakes: one sentence each, never a traceback ----------------------------------------


def _one_line(err: str, *words: str) -> None:
    lines = [line for line in err.strip().splitlines() if "it/s]" not in line]  # progress bars aside
    assert len(lines) == 1 and "Traceback" not in err and all(w in lines[0] for w in words), err


def test_predict_options_that_cannot_be_used_are_refused_with_a_sentence(tmp_path, capsys):
    from conftest import speech, wav_bytes

    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(speech(2.0), 16000))
    assert main(["predict", str(clip), "--profile", str(tmp_path / "nope.json")]) == 2
    _one_line(capsys.readouterr().err, "Cannot read the voice profile", "nope.json", "No such file")
    assert main(["predict", str(clip), "--segments", "--profile", str(tmp_path)]) == 2
    _one_line(capsys.readouterr().err, "Cannot read the voice profile", "Is a directory")
    for workers in ("0", "-1", "two"):
        with pytest.raises(SystemExit) as exited:
            main(["predict", str(clip), str(clip), "--workers", workers])
        assert exited.value.code == 2
        assert "--workers: must be a whole number of 1 or more" in capsys.readouterr().err
    assert main(["predict", str(tmp_path)]) == 1  # a folder is named as one, not as missing
    _one_line(capsys.readouterr().err, "is a folder")


def test_a_manifest_of_nothing_is_not_written(tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "my-recording.wav").write_bytes(b"RIFF")
    assert main(["manifest", str(tmp_path / "audio"), "--out", str(tmp_path / "m.csv")]) == 2
    _one_line(capsys.readouterr().err, "No clip of a known corpus")
    assert not (tmp_path / "m.csv").exists()


def test_export_takes_a_shipped_name_or_directory_and_says_what_is_missing(tmp_path, capsys):
    assert main(["export", "--model", "emo-nonexistent"]) == 2
    _one_line(capsys.readouterr().err, "No model", "emo-cnn-speaker")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "metadata.json").write_text("{}")
    assert main(["export", "--model", str(tmp_path / "model")]) == 2
    _one_line(capsys.readouterr().err, "has no model.keras to export")


def test_a_closed_pipe_ends_the_printout_quietly(tmp_path):
    """`ser predict … --json | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    import subprocess
    import sys

    from conftest import speech, wav_bytes

    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(speech(2.0), 16000))
    run = subprocess.Popen([sys.executable, "-m", "ser_core.cli", "predict", str(clip), str(clip), "--json",
                            "--model", "emo-cnn-speaker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run.stdout.close()  # before anything is printed: every write finds no reader
    err = run.stderr.read().decode()
    assert run.wait(timeout=300) == 1 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_split_takes_the_protocols_it_writes_and_warns_of_an_empty_part(tmp_path, capsys, tiny_dataset):
    rows = (tiny_dataset / "manifest.csv").read_text().splitlines()
    two_speakers = [rows[0], *(r for r in rows[1:] if r.split(",")[3] in ("spk0", "spk1"))]
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(r if r == rows[0] else f"{tiny_dataset}/{r}" for r in two_speakers) + "\n")
    with pytest.raises(SystemExit):  # loco and lolo read the speaker split: no file of their own
        main(["split", "--data", str(manifest), "--protocol", "loco", "--split-file", str(tmp_path / "s.csv")])
    capsys.readouterr()
    assert main(["split", "--data", str(manifest), "--protocol", "speaker", "--split-file", str(tmp_path / "s.csv")]) == 0
    err = capsys.readouterr().err
    assert "warning: these clips leave" in err and "empty" in err and "`ser train` needs all three" in err


def test_evaluate_adapting_to_speakers_scores_what_it_can_and_says_what_it_cannot(tmp_path, capsys, tiny_dataset,
                                                                                 trained_model):
    """`ser evaluate --adapt speaker` on speakers with few clips, a label the model does not read, and
    without a speaker column; `ser evaluate` on files that cannot be read."""
    rows = (tiny_dataset / "manifest.csv").read_text().splitlines()
    few = [rows[0], *(r for r in rows[1:] if r.split(",")[3] in ("spk0", "spk1") and r.endswith("t0"))]
    few.append(few[1].replace(",neutral,", ",contempt,").replace("_neutral_0", "_neutral_1"))
    manifest = tmp_path / "few.csv"
    manifest.write_text("\n".join(r if r == rows[0] else f"{tiny_dataset}/{r}" for r in few) + "\n")
    assert main(["evaluate", "--manifest", str(manifest), "--model", str(trained_model), "--adapt", "speaker"]) == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert results["10"]["n_scored"] == 0 and results["10"]["adapted"] is None  # 8 clips a speaker: none left
    assert results["all"]["n_scored"] == 16 and results["3"]["n_scored"] == 10
    assert re.search(r"profile from +10 clips: not measured", captured.err) and "Traceback" not in captured.err
    no_speakers = tmp_path / "no-speakers.csv"
    no_speakers.write_text("path,emotion\n" + "".join(f"{tiny_dataset}/s0_angry_{t}.wav,angry\n" for t in (0, 1)))
    assert main(["evaluate", "--manifest", str(no_speakers), "--model", str(trained_model), "--adapt", "speaker"]) == 2
    _one_line(capsys.readouterr().err, "speaker column")
    missing = tmp_path / "missing.csv"
    missing.write_text("path,emotion\nnope1.wav,angry\nnope2.wav,sad\n")
    assert main(["evaluate", "--manifest", str(missing), "--model", str(trained_model)]) == 2
    _one_line(capsys.readouterr().err, "None of the 2 clips could be read", "nope1.wav")
    assert main(["evaluate", "--manifest", str(missing), "--model", str(trained_model), "--adapt", "speaker"]) == 2
    _one_line(capsys.readouterr().err, "None of the 2 clips could be read", "nope1.wav")
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(manifest.read_text() + "nope1.wav,angry,synthetic,spk9,nope1,t0\n")
    assert main(["evaluate", "--manifest", str(mixed), "--model", str(trained_model)]) == 0
    err = capsys.readouterr().err
    assert "nope1.wav: skipped: File not found" in err
    assert "skipped 1 clip labelled with emotions this model does not read: contempt (1)" in err


def test_a_command_whose_extra_is_missing_names_the_extra(tmp_path, capsys, monkeypatch):
    """A wheel installed without extras (tests/test_package.py runs the real one): one sentence naming
    the extra instead of a ModuleNotFoundError."""
    import importlib.util

    from conftest import speech, wav_bytes

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("sklearn", "keras") else found(name, *a))
    (tmp_path / "labels.csv").write_text("path,emotion\nclip.wav,angry\n")
    assert main(["evaluate", "--manifest", str(tmp_path / "labels.csv")]) == 2
    _one_line(capsys.readouterr().err, "ser evaluate needs its extra: pip install 'ser[train]'.")
    assert main(["train", "--data", str(tmp_path / "labels.csv"), "--protocol", "speaker", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys.readouterr().err, "ser train needs its extra: pip install 'ser[train]'.")
    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(speech(2.0), 16000))
    assert main(["predict", str(clip), "--backend", "keras", "--model", "emo-cnn-speaker"]) == 2
    _one_line(capsys.readouterr().err, "The Keras backend needs its extra: pip install 'ser[train]'.")


def test_the_python_api_takes_classes_as_the_cli_writes_them():
    from conftest import speech
    from ser_core import load_model

    model = load_model("emo-cnn-speaker")
    clip = speech(2.0)
    assert model.predict(clip, sr=16000, classes="Angry, happy") == model.predict(clip, sr=16000, classes=("angry", "happy"))


def test_a_model_that_reads_voices_against_a_profile_warns_without_one(tmp_path, capsys):
    from conftest import speech, wav_bytes

    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(speech(2.0), 16000))
    assert main(["predict", str(clip), "--json", "--model", "emo-whisper-adapt-speaker"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["warnings"] and result["warnings"][0].startswith("Not adapted: this model reads each voice against")


def test_durations_just_over_the_limit_do_not_read_as_the_limit():
    from ser_core.errors import AudioTooLongError, format_duration

    assert format_duration(7260) == "2 h 1 min" and format_duration(7200) == "2 h"
    assert str(AudioTooLongError(7260, 7200)) == "The audio is too long: 2 h 1 min, at most 2 h allowed."
    assert str(AudioTooLongError(7210, 7200)) == "The audio is too long: 7,210 s, at most 7,200 s allowed."
