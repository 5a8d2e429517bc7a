"""A model that names a reference head (`inference.REFERENCE_FIELD`): wherever a voice has a reference
(a voice profile, a batch of files, a conversation's speaker with enough speech), its reading is
mixed with the head's; where none has, the output is the model's own, unchanged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import edit_metadata, speech, wav_bytes
from ser_core.errors import ModelError
from ser_core.io.audio import to_mono_float32
from ser_core.serving.batch import predict_adapted
from ser_core.serving.inference import REFERENCE_FIELD, load_model
from ser_core.serving.profile import build_profile

SR = 16000
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def models(trained_encoder_model, tmp_path_factory):
    """(plain, head, mixed(weight)): the trained encoder model as it is; a copy of it marked as trained on
    speaker-normalised voices (so it reads a voice against its profile fully), the reference head;
    and a factory of copies of the plain model naming that head with a given weight."""
    root = tmp_path_factory.mktemp("reference")
    head_dir = root / "head"
    shutil.copytree(trained_encoder_model, head_dir)
    edit_metadata(head_dir, lambda m: m["front_end"].update(speaker_normalised=True))

    def mixed(weight: float):
        directory = root / f"mixed-{weight}"
        if not directory.exists():
            shutil.copytree(trained_encoder_model, directory)
            edit_metadata(directory, lambda m: m.update({REFERENCE_FIELD: {"model": "head", "weight": weight}}))
        return load_model(directory)

    return load_model(trained_encoder_model), load_model(head_dir), mixed


def voice(seconds: float, f0: float, seed: int):
    return to_mono_float32(speech(seconds, f0=f0, seed=seed), SR, SR)


def test_without_a_reference_the_output_is_the_models_own(models):
    plain, _, mixed = models
    model = mixed(0.4)
    assert plain.reference is None and model.reference[1] == 0.4
    clip = voice(6.0, 180, 1)
    for segmented in (True, False):
        ours = model.analyze_audio(clip, segmented=segmented)
        np.testing.assert_array_equal(ours.window_probabilities, plain.analyze_audio(clip, segmented=segmented).window_probabilities)
        assert ours.adaptation == ""


def test_weight_zero_is_the_models_own_reading_and_one_the_heads(models):
    plain, head, mixed = models
    profile = build_profile(plain, [voice(12.0, 110, 2)])
    clip = voice(4.0, 220, 3)
    own = plain.analyze_audio(clip, segmented=False, profile=profile).window_probabilities
    theirs = head.analyze_audio(clip, segmented=False, profile=profile).window_probabilities
    assert not np.allclose(own, theirs, atol=1e-3)  # the head reads the voice otherwise
    np.testing.assert_allclose(mixed(0.0).analyze_audio(clip, segmented=False, profile=profile).window_probabilities, own,
                               atol=1e-6)
    np.testing.assert_allclose(mixed(1.0).analyze_audio(clip, segmented=False, profile=profile).window_probabilities,
                               theirs, atol=1e-6)
    between = mixed(0.3).analyze_audio(clip, segmented=False, profile=profile)
    np.testing.assert_allclose(between.window_probabilities, 0.7 * own + 0.3 * theirs, atol=1e-6)
    np.testing.assert_allclose(between.window_probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert between.adaptation.startswith("Adapted to your voice profile")


def test_a_batch_of_files_is_read_against_its_mean_by_both(models, tmp_path):
    """`ser predict --adapt batch`: with weight 1 every file is the head's reading against the batch."""
    _, head, mixed = models
    paths = []
    for i, f0 in enumerate((100, 150, 230)):
        paths.append(str(tmp_path / f"clip{i}.wav"))
        (tmp_path / f"clip{i}.wav").write_bytes(wav_bytes(speech(3.0, f0=f0, seed=i)))
    for (_, ours, *_), (_, theirs, *_) in zip(predict_adapted(mixed(1.0), paths), predict_adapted(head, paths)):
        assert ours == pytest.approx(theirs, abs=1e-6)


def test_a_conversation_speaker_is_mixed_at_the_conversations_share(models, monkeypatch):
    """A speaker with enough speech: the model's own-voice reading and the head's, at the share chosen for
    conversations (`OWN_VOICE_REFERENCE_WEIGHT`, not the metadata's); a speaker with little speech and
    a share of 0 leave the model's own reading as it is."""
    import ser_core.serving.segments
    from ser_core.serving.profile import profile_from_windows
    from ser_core.serving.segments import CONTEXT_BEFORE_S, classify_segments, own_voice_settings

    plain, head, mixed = models
    model = mixed(0.3)
    monkeypatch.setattr(ser_core.serving.segments, "MIN_SPEAKER_SPEECH_S", 10.0)
    pause = np.zeros(SR, np.float32)
    low = [speech(4.0, f0=100, seed=i) for i in range(3)]  # S1: 12 s
    audio = to_mono_float32(np.concatenate([low[0], pause, speech(3.0, f0=240, seed=9), pause, low[1], pause, low[2]]),
                            SR, SR)
    spans, names = [(0.0, 4.0), (5.0, 8.0), (9.0, 13.0), (14.0, 18.0)], [["S1", "S2", "S1", "S1"]]
    [unadapted] = classify_segments(plain, [audio], [spans], speakers=names)
    times = unadapted.window_times_s
    second = (times >= 5.0 - CONTEXT_BEFORE_S - 1e-6) & (times < 8.0)
    cached = plain.to_cached(unadapted.features)
    own = profile_from_windows(plain, plain.representation(cached[~second]), 1)
    ours = plain.predict_cached(plain.shifted(cached[~second], own.shift(plain, *own_voice_settings(plain))))
    theirs = head.predict_cached(head.shifted(cached[~second], own.shift(head, 0.0, 1.0)))
    for share, expected in ((0.0, ours), (0.5, 0.5 * ours + 0.5 * theirs)):
        monkeypatch.setattr(ser_core.serving.segments, "OWN_VOICE_REFERENCE_WEIGHT", share)
        [adapted] = classify_segments(model, [audio], [spans], speakers=names, adapt_to_speakers=True)
        np.testing.assert_allclose(adapted.window_probabilities[second], unadapted.window_probabilities[second],
                                   atol=1e-6)
        np.testing.assert_allclose(adapted.window_probabilities[~second], expected, atol=1e-6)


def test_a_recording_read_against_itself_mixes_the_reference_as_a_batch_does(models):
    """`SpeakerOptions(recording=True)`: every window against the whole recording's mean, through
    `predict_against` with the model's own settings and its reference head at the metadata's weight, as
    files read together are (not at the conversations' per-speaker share)."""
    from ser_core.serving.profile import profile_from_windows
    from ser_core.serving.segments import classify_segments

    plain, head, mixed = models
    model = mixed(0.3)
    pause = np.zeros(SR, np.float32)
    audio = to_mono_float32(np.concatenate([speech(4.0, f0=100, seed=1), pause, speech(3.0, f0=240, seed=2), pause,
                                            speech(4.0, f0=110, seed=3)]), SR, SR)
    spans, names = [(0.0, 4.0), (5.0, 8.0), (9.0, 13.0)], [["S1", "S2", "S1"]]
    [unadapted] = classify_segments(plain, [audio], [spans], speakers=names)
    cached = plain.to_cached(unadapted.features)
    mean = profile_from_windows(plain, plain.representation(cached), 1)
    ours = plain.predict_cached(plain.shifted(cached, mean.shift(plain, *plain.adaptation_settings)))
    theirs = head.predict_cached(head.shifted(cached, mean.shift(head, *head.adaptation_settings)))
    [whole] = classify_segments(model, [audio], [spans], speakers=names, adapt_to_recording=True)
    np.testing.assert_allclose(whole.window_probabilities, 0.7 * ours + 0.3 * theirs, atol=1e-6)


def test_a_reference_that_is_missing_or_reads_other_windows_is_refused(trained_encoder_model, trained_model, tmp_path):
    lonely = tmp_path / "lonely"
    shutil.copytree(trained_encoder_model, lonely)
    edit_metadata(lonely, lambda m: m.update({REFERENCE_FIELD: {"model": "absent", "weight": 0.3}}))
    with pytest.raises(ModelError, match="not beside it"):
        load_model(lonely)
    shutil.copytree(trained_model, tmp_path / "cnn")  # spectrogram windows, not encoder embeddings
    edit_metadata(lonely, lambda m: m.update({REFERENCE_FIELD: {"model": "cnn", "weight": 0.3}}))
    with pytest.raises(ModelError, match="cannot be"):
        load_model(lonely)


def test_the_shipped_reference_reads_the_defaults_windows():
    """The default names its reference head, shipped beside it, trained on speaker-normalised voices with
    the same encoder read-out (checked fully when the model loads)."""
    default = load_model("default").metadata
    reference = default.get(REFERENCE_FIELD)
    if reference is None:
        pytest.skip("the default names no reference head")
    head = json.loads((ROOT / "models" / reference["model"] / "metadata.json").read_text())
    assert 0.0 < reference["weight"] < 1.0 and head["front_end"]["speaker_normalised"]
    assert head["labels"] == default["labels"] and head["feature_params"] == default["feature_params"]
    for key in ("sha256", "compute_type", "layers", "pooling", "embedding_version", "fused_blocks"):
        assert head["front_end"].get(key) == default["front_end"].get(key)


def test_evaluate_adaptation_reads_clips_as_the_product_does(models):
    """`ser evaluate --adapt speaker` and the benchmarks go through `predict_against`: a reference head at
    weight 0 is the plain model's reading, at weight 1 the head's; the clips without a profile stay the plain model's."""
    from ser_core.frontend.features import extract
    from ser_core.training.corpora import Clip
    from ser_core.training.dataset import ClipFeatures
    from ser_core.training.evaluate import evaluate_adaptation

    plain, head, mixed = models
    clips, features = [], []
    for speaker, f0 in (("a", 110), ("b", 230)):
        for i, emotion in enumerate(("angry", "sad", "happy", "neutral") * 3):
            clips.append(Clip(Path(f"{speaker}{i}.wav"), emotion, "synthetic", speaker, f"{speaker}{i}", ""))
            features.append(plain.to_cached(extract(voice(2.0 + 0.1 * i, f0 + 7 * i, 10 + i).samples, plain.params)[1]))
    data = ClipFeatures(clips, features, [])
    adapted = lambda model: {k: r["adapted"] for k, r in evaluate_adaptation(model, data, ks=(3, None)).items()}
    assert adapted(mixed(0.0)) == adapted(plain)
    assert adapted(mixed(1.0)) == adapted(head)
    between = evaluate_adaptation(mixed(0.5), data, ks=(None,))["all"]
    assert between["n_scored"] == len(clips) and between["unadapted"] == evaluate_adaptation(plain, data, ks=(None,))["all"]["unadapted"]
