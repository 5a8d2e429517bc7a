"""Voice profiles: built from unlabelled recordings, saved and read back as JSON, refused with a
sentence when broken, and applied (or visibly not applied) to predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import speech, voice, wav_bytes
from ser_core import load_model
from ser_core.io.audio import to_mono_float32
from ser_core.serving.batch import predict_adapted
from ser_core.serving.profile import MAX_PROFILE_SECONDS, ProfileError, VoiceProfile, batch_profile, build_profile


@pytest.fixture(scope="module", params=["seed-cnn", "encoder"])
def model(request, trained_model, trained_encoder_model):
    return load_model(trained_model if request.param == "seed-cnn" else trained_encoder_model)


def speaker(seconds: float, f0: float = 140.0, level_db: float = -20.0):
    return to_mono_float32(speech(seconds, f0=f0, level_db=level_db, seed=7), 16000, 16000)


def test_profile_describes_the_voice_and_round_trips_as_json(model):
    profile = build_profile(model, [speaker(12.0), wav_bytes(speech(8.0, f0=150, seed=3))])
    assert profile.clips == 2 and profile.seconds == pytest.approx(20.0, abs=0.01)
    assert 10.0 < profile.speech_seconds <= 20.0 and -45 < profile.level_dbfs < -15  # peaks at -20 dBFS
    assert 120 < profile.pitch_hz["p50"] < 170  # the synthetic voices glide around 140-150 Hz
    assert profile.fits(model) and profile.mean.shape == model.representation_mean.shape
    again = VoiceProfile.from_json(profile.to_json())
    np.testing.assert_allclose(again.mean, profile.mean, atol=1e-5)
    assert again.windows == profile.windows and again.pitch_hz == profile.pitch_hz


def test_adapted_prediction_differs_and_says_so(model):
    clip = speech(3.0, f0=220)
    profile = build_profile(model, [speaker(20.0, f0=100)])
    plain, adapted = model.analyze(clip, sr=16000), model.analyze(clip, sr=16000, profile=profile)
    assert plain.adaptation == "" and adapted.adaptation.startswith("Adapted to your voice profile")
    assert not np.allclose(plain.window_probabilities, adapted.window_probabilities)
    np.testing.assert_allclose(adapted.window_probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_a_profile_of_the_average_voice_changes_nothing(model):
    profile = build_profile(model, [speaker(6.0)])
    neutral = VoiceProfile(**{**profile.__dict__, "mean": model.representation_mean.copy()})
    clip = speech(3.0, f0=180)
    np.testing.assert_allclose(model.predict(clip, sr=16000, profile=neutral)["angry"],
                               model.predict(clip, sr=16000)["angry"], atol=1e-6)


def test_a_profile_for_another_model_is_not_applied_and_says_why(model, trained_model, trained_encoder_model):
    other = load_model(trained_encoder_model if model.directory == trained_model else trained_model)
    profile = build_profile(other, [speaker(6.0)])
    analysis = model.analyze(speech(3.0), sr=16000, profile=profile)
    assert "not adapted" in analysis.adaptation
    np.testing.assert_allclose(analysis.window_probabilities, model.analyze(speech(3.0), sr=16000).window_probabilities)


@pytest.mark.parametrize("text, reason", [
    (b"\x89PNG\r\n", "not valid JSON"), ("[1, 2]", "not a voice profile"), ('{"ser_voice_profile": 1}', "damaged"),
    ('{"ser_voice_profile": 1, "mean": [1, NaN], "representation": "x", "windows": 3, "clips": 1, "seconds": 1,'
     ' "speech_seconds": 1, "level_dbfs": -20}', "damaged"),
])
def test_broken_profile_files_are_refused_with_a_sentence(text, reason):
    with pytest.raises(ProfileError, match=reason):
        VoiceProfile.from_json(text)


def test_bad_profile_recordings_get_a_clear_error(trained_model):
    from ser_core.errors import NoSpeechError

    model = load_model(trained_model)
    with pytest.raises(NoSpeechError):
        build_profile(model, [wav_bytes(np.zeros(16000 * 3, np.float32))])
    with pytest.raises(ProfileError, match="minutes"):
        build_profile(model, [to_mono_float32(voice(MAX_PROFILE_SECONDS + 5), 16000, 16000)])
    with pytest.raises(ProfileError, match="at least one"):
        build_profile(model, [])
    thin = build_profile(model, [speaker(2.0)])
    assert thin.notes and "Only" in thin.notes[0]


def test_transductive_batch_adaptation_per_speaker(trained_model, tmp_path):
    model = load_model(trained_model)
    paths = []
    for i, f0 in enumerate((100, 110, 220, 230)):
        paths.append(str(tmp_path / f"clip{i}.wav"))
        (tmp_path / f"clip{i}.wav").write_bytes(wav_bytes(speech(3.0, f0=f0, seed=i)))
    paths.append(str(tmp_path / "broken.wav"))
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    outcomes = predict_adapted(model, paths, speakers=["a", "a", "b", "b", "b"])
    assert [o[0] for o in outcomes] == paths and outcomes[-1][1] is None and outcomes[-1][3]
    plain = [model.predict(p) for p in paths[:4]]  # by utterance, as predict_adapted reads
    for (_, adapted, _, error, _, adaptation), unadapted in zip(outcomes[:4], plain):
        assert error is None and abs(sum(adapted.values()) - 1) < 1e-5
        assert adapted != unadapted  # each speaker's files were read relative to that speaker
        assert adaptation.startswith("Adapted")  # what `ser predict --speaker-column --json` says


def test_predict_adapt_batch_reads_every_file_against_all_of_them(trained_model, tmp_path, capsys):
    import json

    from ser_core.cli import main

    paths = []
    for i, f0 in enumerate((100, 140, 220)):
        paths.append(str(tmp_path / f"clip{i}.wav"))
        (tmp_path / f"clip{i}.wav").write_bytes(wav_bytes(speech(3.0, f0=f0, seed=i)))
    assert main(["predict", *paths, "--adapt", "batch", "--json", "--model", str(trained_model)]) == 0
    printed = json.loads(capsys.readouterr().out)
    model = load_model(trained_model)
    expected = predict_adapted(model, paths)  # one group: the batch's own mean
    for path, (_, probabilities, *_) in zip(paths, expected):
        row = next(r for r in printed if r["file"] == path)
        assert row["probabilities"] == pytest.approx(probabilities, abs=1e-6)
    assert [r["probabilities"] for r in printed] != [model.predict(p) for p in paths]


def test_files_read_together_share_the_batch_profile_the_cli_reads_them_against(trained_model):
    """`batch_profile` (the Upload page's "Read the files together") is the mean of the windows of every
    file in which speech is found, as `ser predict --adapt batch` reads them; an unreadable file and one
    of room noise alone are left out, a single file with speech is refused with a sentence, and the
    note says what the files were read against."""
    model = load_model(trained_model)
    clips = [wav_bytes(speech(3.0, f0=f0, seed=i)) for i, f0 in enumerate((100, 140, 220))]
    noise = wav_bytes((np.random.default_rng(0).standard_normal(3 * 16000) * 1e-3).astype(np.float32))
    profile = batch_profile(model, [*clips, b"not audio", noise])
    assert profile.batch and profile.clips == 3 and profile.fits(model)
    windows = np.concatenate([model.representation(model.to_cached(extract_windows(model, c))) for c in clips])
    np.testing.assert_allclose(profile.mean, windows.mean(axis=0), atol=1e-5)
    assert VoiceProfile.from_json(profile.to_json()).batch
    assert model.analyze(clips[0], profile=profile).adaptation == "Adapted to the 3 files in which speech was found, read together (their mean; no labels used)."
    with pytest.raises(ProfileError, match="at least two files"):
        batch_profile(model, [clips[0], b"not audio", noise])


def extract_windows(model, content: bytes) -> np.ndarray:
    from ser_core.frontend.features import extract
    from ser_core.io.audio import load_audio

    return extract(load_audio(content, model.params.sample_rate).samples, model.params)[1]
