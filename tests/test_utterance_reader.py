"""A model that names an utterance reader (`inference.UTTERANCES_FIELD`): the utterances cut out of a
longer recording are read by the reader, a file that is one utterance by the model itself, each
recording of a batch by its own, in the batch's order."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import edit_metadata, speech
from ser_core.errors import ModelError
from ser_core.io.audio import to_mono_float32
from ser_core.serving.inference import REFERENCE_FIELD, UTTERANCES_FIELD, load_model
from ser_core.serving.segments import classify_segments

SR = 16000


@pytest.fixture(scope="module")
def models(trained_encoder_model, tmp_path_factory):
    """(plain, reader, with_reader): the trained encoder model; a copy of it calibrated otherwise (so
    that it reads the same windows to other probabilities), the reader; and a copy of the plain model
    that names the reader."""
    root = tmp_path_factory.mktemp("utterances")
    shutil.copytree(trained_encoder_model, root / "reader")
    edit_metadata(root / "reader", lambda m: m.setdefault("calibration", {}).update(temperature=3.0))
    shutil.copytree(trained_encoder_model, root / "model")
    edit_metadata(root / "model", lambda m: m.update({UTTERANCES_FIELD: {"model": "reader"}}))
    return load_model(trained_encoder_model), load_model(root / "reader"), load_model(root / "model")


def recording():
    """Three utterances 1 s apart (10 s: longer than a window) and their spans."""
    pause = np.zeros(SR, np.float32)
    parts = [speech(2.5, f0=f0, seed=i) for i, f0 in enumerate((110, 180, 240))]
    samples = np.concatenate([parts[0], pause, parts[1], pause, parts[2]])
    return to_mono_float32(samples, SR, SR), [(0.0, 2.5), (3.5, 6.0), (7.0, 9.5)]


def test_a_recordings_utterances_are_read_by_the_reader_and_a_one_utterance_file_by_the_model(models):
    plain, reader, model = models
    assert model.utterance_reader is not None and plain.utterance_reader is None
    long_audio, long_spans = recording()
    short_audio = to_mono_float32(speech(2.5, f0=150, seed=7), SR, SR)  # one utterance, shorter than a window
    short_spans = [(0.0, 2.5)]
    # one batch holding both kinds, in an order that interleaves them
    ours = classify_segments(model, [short_audio, long_audio, short_audio], [short_spans, long_spans, short_spans])
    [read_by_reader] = classify_segments(reader, [long_audio], [long_spans])
    [read_by_plain] = classify_segments(plain, [short_audio], [short_spans])
    [long_by_plain] = classify_segments(plain, [long_audio], [long_spans])
    np.testing.assert_allclose(ours[1].window_probabilities, read_by_reader.window_probabilities, atol=1e-6)
    assert not np.allclose(ours[1].window_probabilities, long_by_plain.window_probabilities, atol=1e-3)
    for analysis in (ours[0], ours[2]):
        np.testing.assert_allclose(analysis.window_probabilities, read_by_plain.window_probabilities, atol=1e-6)
    assert [len(a.segments) for a in ours] == [1, 3, 1]
    np.testing.assert_allclose(ours[1].window_times_s, long_by_plain.window_times_s)


def test_the_reader_is_pinned_with_the_model_and_shares_its_reference(models):
    _, _, model = models
    pinned = model.with_threads(2)
    assert pinned.utterance_reader is not model.utterance_reader
    assert pinned.utterance_reader.encoder is pinned.encoder
    assert model.utterance_reader.reference is model.reference


def test_a_reader_that_is_missing_or_names_a_sibling_is_refused(trained_encoder_model, tmp_path):
    shutil.copytree(trained_encoder_model, tmp_path / "model")
    edit_metadata(tmp_path / "model", lambda m: m.update({UTTERANCES_FIELD: {"model": "absent"}}))
    with pytest.raises(ModelError, match="not beside it"):
        load_model(tmp_path / "model")
    shutil.copytree(trained_encoder_model, tmp_path / "reader")
    shutil.copytree(trained_encoder_model, tmp_path / "head")
    edit_metadata(tmp_path / "reader", lambda m: m.update({REFERENCE_FIELD: {"model": "head", "weight": 0.3}}))
    edit_metadata(tmp_path / "model", lambda m: m.update({UTTERANCES_FIELD: {"model": "reader"}}))
    with pytest.raises(ModelError, match="cannot be model's utterances model"):
        load_model(tmp_path / "model")


def test_the_shipped_reader_is_the_defaults_heads_and_one_taught_speech_cut_clips():
    """The default names its utterance reader, shipped beside it: the default's own heads (same weights)
    and one more taught its training clips cut at their speech; loading checks it reads the same windows."""
    default = load_model("default")
    reader = default.utterance_reader
    if reader is None:
        pytest.skip("the default names no utterance reader")
    ours = {member["weights_sha256"] for member in default.metadata["members"]}
    theirs = {member["weights_sha256"]: member for member in reader.metadata["members"]}
    assert ours < set(theirs)
    assert all(member["train_params"]["speech_cut_copies"] > 0 for sha, member in theirs.items() if sha not in ours)
    assert reader.reference is default.reference


def test_the_live_window_is_read_by_the_reader(models):
    """The Live page's window holds speech cut out of a stream: a model's reader reads it."""
    from ser_core.serving.live import LiveClassifier

    plain, reader, model = models
    samples = speech(3.0, f0=160, seed=11)

    def reading(served):
        live = LiveClassifier(served, clock=lambda: 0.0, background=False)  # classified here, not by a worker
        live.push(samples, SR)
        return np.array(list(live.classify().probabilities.values()))

    live = LiveClassifier(model)
    assert live.model is model and live.reader is model.utterance_reader
    np.testing.assert_allclose(reading(model), reading(reader), atol=1e-6)
    assert not np.allclose(reading(model), reading(plain), atol=1e-3)
