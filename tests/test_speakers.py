"""Who spoke when: Resemblyzer's speaker encoder read without torch (sha256 checked, restricted
unpickling), its mel front end, clustering into "S1", "S2", …, and each speaker read against their own
voice in the recording."""

from __future__ import annotations

import csv
import io
import json
import pickle
import re
import shutil
import sys

import numpy as np
import pytest

from conftest import ROOT, require, speech
from ser_core.errors import ModelError
from ser_core.serving.speakers import (SpeakerEncoder, average_linkage, cluster, read_torch_legacy, shared_encoder,
    weights_path)

SR = 16000


@pytest.fixture(scope="module")
def model():
    from ser_core.serving.inference import load_model

    return load_model(ROOT / "models" / "emo-cnn-speaker")


def test_the_weights_are_checked_and_run_without_torch(tmp_path):
    prints = shared_encoder().embed([speech(2.0, seed=1), speech(0.5, seed=2)])
    assert prints.shape == (2, 256) and np.allclose(np.linalg.norm(prints, axis=1), 1.0)
    assert np.all(prints >= 0)  # a ReLU before the normalisation, as the network was trained
    assert "torch" not in sys.modules
    forged = tmp_path / "pretrained.pt"
    shutil.copy(weights_path(), forged)
    with forged.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="not the expected file"):
        SpeakerEncoder(forged)


def test_a_weights_file_cannot_run_code():
    """Only an ordered dict and tensors may be named in the file; os.system (say) is refused."""
    header = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))

    class Evil:
        def __reduce__(self):
            import os

            return os.system, ("echo pwned",)

    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        read_torch_legacy(header + pickle.dumps({"model_state": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        read_torch_legacy(pickle.dumps(Evil(), protocol=2))


def test_the_mel_front_end_is_librosas():
    import librosa

    loud = speech(3.0, seed=3) * 4  # above -30 dBFS: no level change
    reference = librosa.feature.melspectrogram(y=loud, sr=SR, n_fft=400, hop_length=160, n_mels=40).T
    mine = shared_encoder().mel_frames(loud)
    assert mine.shape == reference.shape
    assert np.abs(mine - reference).max() <= 1e-4 * reference.max()


def test_a_partial_is_read_to_its_own_last_frame(monkeypatch):
    """An utterance shorter than 1.6 s is not read through trailing zeros: padding it changes nothing;
    nor does running the partials in smaller batches."""
    import ser_core.serving.speakers

    encoder = shared_encoder()
    short = speech(0.8, seed=4)
    alone = encoder.embed([short])
    together = encoder.embed([speech(6.0, seed=5), short])
    np.testing.assert_allclose(alone[0], together[1], atol=1e-5)
    monkeypatch.setattr(ser_core.serving.speakers, "PARTIAL_BATCH", 1)
    np.testing.assert_allclose(encoder.embed([speech(6.0, seed=5), short]), together, atol=1e-5)


def test_inside_prints_remembered_a_partial_is_read_once_and_forgotten_after(monkeypatch):
    """A piece printed to find a voice change and printed again to name its voice (one that starts at
    the same moment: a print reads only its first 1.2 s) is read once inside the block, with the same
    print; outside it, or on another thread, nothing is kept."""
    import threading

    from ser_core.serving.speakers import prints_remembered

    encoder = SpeakerEncoder()
    read: list[int] = []
    real = encoder._embed_partials
    monkeypatch.setattr(encoder, "_embed_partials", lambda partials: read.append(len(partials)) or real(partials))
    recording = speech(6.0, seed=7)
    pieces = [recording[: 2 * SR], recording[SR : 3 * SR]]
    afresh = encoder.embed(pieces)
    with prints_remembered():
        first = encoder.embed(pieces)
        # the same starts, longer stretches: the same first 1.2 s, so nothing new is read
        again = encoder.embed([recording[: 4 * SR], recording[SR:], recording[: 2 * SR]])
        elsewhere = threading.Thread(target=lambda: encoder.embed(pieces))
        elsewhere.start()
        elsewhere.join()
    assert read == [2, 2, 0, 2]  # afresh, first, again (nothing), the other thread (its own)
    np.testing.assert_allclose(first, afresh, atol=1e-6)
    np.testing.assert_array_equal(again, first[[0, 1, 0]])
    encoder.embed(pieces)
    assert read[-1] == 2  # after the block, read afresh


def test_clusters_are_named_by_first_appearance():
    a, b, c = np.eye(3)
    near = lambda v, k: (v + 0.05 * np.roll(v, k)) / np.linalg.norm(v + 0.05 * np.roll(v, k))  # noqa: E731
    prints = np.stack([b, near(b, 1), a, near(b, 2), c, near(a, 1)])
    assert cluster(prints, durations=[12.0] * 6) == ["S1", "S1", "S2", "S1", "S3", "S2"]
    assert len(set(cluster(prints, n_speakers=2))) == 2 and len(set(cluster(prints, n_speakers=4))) == 4
    assert cluster(prints[:1]) == ["S1"] and cluster(np.zeros((0, 3))) == []
    assert cluster(prints, n_speakers=1) == ["S1"] * 6


def test_a_voice_heard_too_briefly_joins_the_nearest_and_pieces_settle_by_the_mean():
    """A group with less than `MIN_VOICE_S` of speech in all is not a speaker of its own: its pieces go
    to the nearest voice; every piece then sits with the nearest group mean."""
    from ser_core.serving.speakers import MIN_VOICE_S

    rng = np.random.default_rng(0)
    first, second = np.eye(8)[0], np.eye(8)[1]
    odd = (first + 0.45 * np.eye(8)[2]) / np.linalg.norm(first + 0.45 * np.eye(8)[2])  # a shout of the first voice
    prints = np.stack([first, second, odd, first, second, first]) + 0.01 * rng.standard_normal((6, 8))
    prints /= np.linalg.norm(prints, axis=1, keepdims=True)
    long_enough = [4.0, 4.0, 6.0, 4.0, 4.0, 4.0]  # 12 s, 8 s and 6 s: three voices from 5 s
    assert cluster(prints, distance=0.05, durations=long_enough, min_voice_s=5.0) == [
        "S1", "S2", "S3", "S1", "S2", "S1"]
    brief = [4.0, 4.0, 1.5, 4.0, 4.0, 4.0]
    assert cluster(prints, distance=0.05, durations=brief, min_voice_s=5.0) == ["S1", "S2", "S1", "S1", "S2", "S1"]
    # From MIN_VOICE_S (10 s) the second voice's 8 s are brief too, but in two pieces, over a fifth of the
    # recording's speech and far from the first voice: still a voice. The shout, one piece, is not.
    assert cluster(prints, distance=0.05, durations=brief, min_voice_s=MIN_VOICE_S) == ["S1", "S2", "S1", "S1", "S2", "S1"]


def test_a_brief_group_is_a_voice_only_in_two_pieces_with_a_share_of_the_speech_and_far_from_the_rest():
    """Under `MIN_VOICE_S` a group is a voice of its own (two people trading a few sentences) only when
    it holds `MIN_VOICE_SHARE` of the recording's speech in `MIN_VOICE_PIECES` pieces or more and lies
    `DISTINCT_VOICE_DISTANCE` or more from every other group; otherwise (one voice read two ways, a
    passing remark in a long talk) it joins the nearest voice."""
    from ser_core.serving.speakers import DISTINCT_VOICE_DISTANCE, MIN_VOICE_PIECES, MIN_VOICE_S, MIN_VOICE_SHARE, is_voice

    assert MIN_VOICE_PIECES == 2 and 0 < MIN_VOICE_SHARE < 0.5 and DISTINCT_VOICE_DISTANCE > 0
    rng = np.random.default_rng(2)

    def voices(distance: float, pattern: list[int]) -> np.ndarray:
        """Unit prints of two voices `distance` apart (cosine), one per piece as `pattern` says."""
        first = np.eye(8)[0]
        second = (1 - distance) * first + np.sqrt(1 - (1 - distance) ** 2) * np.eye(8)[1]
        prints = np.stack([(first, second)[k] for k in pattern]) + 0.005 * rng.standard_normal((len(pattern), 8))
        return prints / np.linalg.norm(prints, axis=1, keepdims=True)

    turns = [0, 1, 0, 1, 0, 1, 0, 1]  # two people, four sentences each, 2.2 s a sentence: 8.8 s a voice
    far = voices(0.5, turns)
    assert cluster(far, durations=[2.2] * 8) == ["S1", "S2"] * 4
    groups = average_linkage(far, distance=0.35)
    assert 4 * 2.2 < MIN_VOICE_S and is_voice(far, groups, np.full(8, 2.2), groups[1], MIN_VOICE_S)
    # The same voices closer than DISTINCT_VOICE_DISTANCE (one actor read two ways): one speaker.
    assert cluster(voices(DISTINCT_VOICE_DISTANCE - 0.03, turns), durations=[2.2] * 8) == ["S1"] * 8
    # A second voice in one piece, or with too small a share of a long talk: folded.
    assert cluster(voices(0.5, [0, 0, 0, 1, 0, 0]), durations=[2.2] * 3 + [8.0] + [2.2] * 2) == ["S1"] * 6
    long_talk = [0] * 12 + [1, 1]
    assert cluster(voices(0.5, long_talk), durations=[4.0] * 12 + [4.0, 4.0]) == ["S1"] * 14
    # Heard for MIN_VOICE_S, a voice whatever its share.
    assert cluster(voices(0.5, long_talk), durations=[4.0] * 12 + [5.0, 5.0]) == ["S1"] * 12 + ["S2"] * 2


def test_a_given_number_of_speakers_counts_voices_not_a_shout():
    """Told there are two speakers, the clustering finds the two voices: a brief piece unlike both (a
    shout, a laugh) joins the nearer voice instead of taking a speaker of its own, which would leave
    the two real voices merged (as cutting the tree at two groups does)."""
    rng = np.random.default_rng(1)
    first = np.eye(8)[0]
    second = (first + np.sqrt(3) * np.eye(8)[1]) / 2  # cosine distance 0.5 from the first voice
    shout = np.eye(8)[3]  # far from both voices
    prints = np.stack([first, second, first, second, shout, first, second, first, second])
    prints = prints + 0.01 * rng.standard_normal(prints.shape)
    prints /= np.linalg.norm(prints, axis=1, keepdims=True)
    seconds = [4.0, 4.0, 4.0, 4.0, 1.0, 4.0, 4.0, 4.0, 4.0]
    names = cluster(prints, n_speakers=2, durations=seconds)
    assert names[:4] == ["S1", "S2", "S1", "S2"] and names[5:] == ["S1", "S2", "S1", "S2"]
    assert names[4] in ("S1", "S2")
    tree_cut = average_linkage(prints, n_clusters=2)  # what a count used to mean: the shout alone
    assert len(set(tree_cut[[0, 1, 2, 3, 5, 6, 7, 8]])) == 1
    # Fewer voices found than the user says: the tree is cut further rather than a voice left out.
    assert len(set(cluster(prints, n_speakers=3, durations=seconds))) == 3


def test_a_change_of_voice_without_a_pause_is_found_by_sliding_prints():
    """Where one voice follows another with no pause (or over its end), there is no piece boundary to
    judge: moments whose before and after prints lie far apart are cuts, the farthest first, none within
    a window of another; the product's split finds the change between two synthetic voices sharing one
    region, and leaves one voice of the same length whole."""
    from ser_core.serving.speakers import SLIDE_DISTANCE, SLIDE_WINDOW_S, sliding_changes, split_at_voice_changes

    times = np.arange(1.5, 6.6, 0.25)
    apart = np.full(len(times), 0.1)
    apart[times == 3.0], apart[times == 3.25], apart[times == 5.5] = 0.6, 0.5, SLIDE_DISTANCE
    # 3.25 lies within a window of the farther 3.0; 5.5 is far enough away and just far enough apart.
    assert sliding_changes(times, apart) == [3.0, 5.5]
    assert sliding_changes(times, apart, distance=0.55) == [3.0]
    assert sliding_changes(times, np.full(len(times), 0.1)) == []

    low, high = speech(4.0, f0=90, seed=1, pause_chance=0), speech(4.0, f0=300, seed=2, pause_chance=0)
    parts = split_at_voice_changes(np.concatenate([low, high]), SR, [[(0.0, 8.0)]])
    assert len(parts) == 2 and parts[0][0] == 0.0 and parts[-1][1] == 8.0
    assert abs(parts[0][1] - 4.0) <= SLIDE_WINDOW_S / 2
    one = np.concatenate([low, speech(4.0, f0=90, seed=3, pause_chance=0)])
    assert split_at_voice_changes(one, SR, [[(0.0, 8.0)]]) == [(0.0, 8.0)]


def test_a_region_is_cut_where_its_voice_changes():
    """Between pieces cut at turn pauses, a change of voice is where the speech either side (up to the
    window) sounds like two voices; the voice of one speaker across its pauses is left whole, and a side
    too short to be heard is not judged."""
    from ser_core.serving.speakers import VOICE_CHANGE_DISTANCE, VOICE_CHANGE_MIN_SIDE_S, voice_changes

    rng = np.random.default_rng(3)
    first = np.eye(8)[0]
    second = (1 - 0.5) * first + np.sqrt(1 - 0.5 ** 2) * np.eye(8)[1]  # cosine distance 0.5 from the first

    def prints(pattern):
        noisy = np.stack([(first, second)[k] for k in pattern]) + 0.01 * rng.standard_normal((len(pattern), 8))
        return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)

    assert VOICE_CHANGE_DISTANCE < 0.5
    # Turns of two voices in one region, each turn cut into two pieces at a pause of its own.
    pattern = [0, 0, 1, 1, 0, 0, 1]
    assert voice_changes(prints(pattern), np.full(7, 0.8)) == [2, 4, 6]
    assert voice_changes(prints([0] * 6), np.full(6, 0.8)) == []  # one voice: whole
    # A first piece shorter than a side must be: the boundary after it is not judged.
    assert voice_changes(prints([1, 0, 0]), [VOICE_CHANGE_MIN_SIDE_S / 2, 1.0, 1.0]) == []
    # The window: up to 2 s of speech either side, the nearest piece always.
    assert voice_changes(prints([0, 0, 0, 1, 1, 1]), np.full(6, 0.6), window_s=2.0) == [3]
    assert voice_changes(prints([0, 1]), [3.0, 3.0], window_s=1.0) == [1]


@pytest.mark.parametrize("gap_s", [0.6, 0.1])
def test_two_voices_taking_turns_close_together_are_told_apart(corpora, gap_s):
    """Two RAVDESS actors (a man and a woman) taking eight turns each, 0.6 s apart, as close as the
    pauses inside a sentence (joined regardless of voice, they ran together), or 0.1 s apart, inside
    one speech region of the detector (they shared segments until the speech was cut at turn pauses):
    every utterance is one turn, and the turns alternate between two speakers. (Eight turns give each
    voice more than `MIN_VOICE_S` of speech.)"""
    from ser_core.io.audio import load_audio, to_mono_float32
    from ser_core.serving.segments import find_utterances
    from ser_core.training.corpora import read_manifest

    clips = [c for c in read_manifest(corpora / "manifest.csv") if c.corpus == "ravdess"]
    first, second = sorted({c.speaker for c in clips})[:2]
    turns = [c for pair in zip([c for c in clips if c.speaker == first][:8],
                               [c for c in clips if c.speaker == second][:8]) for c in pair]
    pieces, truth, position = [], [], 0.0
    for clip in turns:
        samples = load_audio(clip.path, SR).samples
        loud = np.flatnonzero(np.abs(samples) > 0.05 * np.abs(samples).max())
        speech_only = samples[loud[0] : loud[-1] + 1]  # the clip's leading and trailing silence off
        pieces += [speech_only, np.zeros(round(gap_s * SR), np.float32)]
        truth.append((position, position + len(speech_only) / SR))
        position += len(speech_only) / SR + gap_s
    _, [spans], [names] = find_utterances([to_mono_float32(np.concatenate(pieces), SR, SR)])
    overlaps = np.array([[max(0.0, min(b, t1) - max(a, t0)) for t0, t1 in truth] for a, b in spans])
    assert len(spans) == len(turns)
    # No utterance runs into the next turn beyond the detector's lag, a few frames.
    assert np.all(overlaps.sum(axis=1) - overlaps.max(axis=1) <= 0.2)
    assert list(overlaps.argmax(axis=1)) == list(range(len(turns)))
    assert names == ["S1", "S2"] * 8


def test_each_speaker_is_read_against_their_own_voice(model, monkeypatch):
    """A speaker with enough speech gets a profile of their own windows (shrunk and scaled as chosen
    for a voice in a recording); one with little speech is read as before; the user's profile goes to
    the nearest voice."""
    import ser_core.serving.segments
    from ser_core.io.audio import to_mono_float32
    from ser_core.serving.profile import profile_from_windows
    from ser_core.serving.segments import CONTEXT_BEFORE_S, classify_segments, own_voice_settings

    monkeypatch.setattr(ser_core.serving.segments, "MIN_SPEAKER_SPEECH_S", 10.0)
    low = [speech(4.0, f0=100, seed=i) for i in range(3)]  # S1: 12 s
    high = speech(3.0, f0=240, seed=9)  # S2: 3 s
    pause = np.zeros(SR, np.float32)
    audio = to_mono_float32(np.concatenate([low[0], pause, high, pause, low[1], pause, low[2]]), SR, SR)
    spans = [(0.0, 4.0), (5.0, 8.0), (9.0, 13.0), (14.0, 18.0)]
    names = [["S1", "S2", "S1", "S1"]]
    [plain] = classify_segments(model, [audio], [spans], speakers=names)
    [adapted] = classify_segments(model, [audio], [spans], speakers=names, adapt_to_speakers=True)
    assert [s.speaker for s in adapted.segments] == ["S1", "S2", "S1", "S1"]
    assert adapted.segments[1].probabilities == pytest.approx(plain.segments[1].probabilities)
    assert "S1 read against their own voice in this recording (12 s)" in adapted.adaptation
    # S2's too brief a voice is said to be read as heard, a warning in every output
    assert "S2 not adapted: 3 s of speech, 10 s needed" in adapted.adaptation and adapted.adaptation_refused
    times = plain.window_times_s
    # S2's windows: they start with the context heard before its segment
    second = (times >= 5.0 - CONTEXT_BEFORE_S - 1e-6) & (times < 8.0)
    assert second.sum() >= 1 and (~second).sum() >= 3
    cached = model.to_cached(plain.features)
    profile = profile_from_windows(model, model.representation(cached[~second]), 1)
    expected = model.predict_cached(model.shifted(cached[~second], profile.shift(model, *own_voice_settings(model))))
    np.testing.assert_allclose(adapted.window_probabilities[~second], expected, atol=1e-6)
    # The user's profile (made from S2's voice here) goes to S2; S1 keeps their own.
    users = profile_from_windows(model, model.representation(cached[second]), 1)
    [with_profile] = classify_segments(model, [audio], [spans], users, speakers=names, adapt_to_speakers=True)
    assert "S2: adapted to your voice profile" in with_profile.adaptation
    assert "S1 read against their own voice" in with_profile.adaptation


def test_the_whole_recording_is_read_against_itself(model, monkeypatch, tmp_path, capsys):
    """`SpeakerOptions(recording=True)` (`ser predict --adapt recording`): every window against the mean of
    all the recording's windows, whoever speaks, with the model's own settings; under
    `RECORDING_MIN_SPEECH_S` of speech, read as heard with a note saying why. Not with per-speaker
    adaptation at once."""
    import ser_core.serving.segments
    from conftest import wav_bytes
    from ser_core.cli import main
    from ser_core.errors import ConfigError
    from ser_core.io.audio import to_mono_float32
    from ser_core.serving.profile import profile_from_windows
    from ser_core.serving.segments import SpeakerOptions, classify_segments

    pause = np.zeros(SR, np.float32)
    samples = np.concatenate([speech(4.0, f0=100, seed=1), pause, speech(3.0, f0=240, seed=2), pause,
                              speech(4.0, f0=110, seed=3)])
    audio = to_mono_float32(samples, SR, SR)
    spans = [(0.0, 4.0), (5.0, 8.0), (9.0, 13.0)]
    names = [["S1", "S2", "S1"]]
    [plain] = classify_segments(model, [audio], [spans], speakers=names)
    [whole] = classify_segments(model, [audio], [spans], speakers=names, adapt_to_recording=True)
    assert whole.adaptation == "Read against this recording's own speech (11 s, every voice in it; no labels used)."
    cached = model.to_cached(plain.features)
    mean = profile_from_windows(model, model.representation(cached), 1)
    expected = model.predict_cached(model.shifted(cached, mean.shift(model, *model.adaptation_settings)))
    np.testing.assert_allclose(whole.window_probabilities, expected, atol=1e-6)
    assert not np.allclose(whole.window_probabilities, plain.window_probabilities)

    monkeypatch.setattr(ser_core.serving.segments, "RECORDING_MIN_SPEECH_S", 12.0)
    [short] = classify_segments(model, [audio], [spans], speakers=names, adapt_to_recording=True)
    np.testing.assert_allclose(short.window_probabilities, plain.window_probabilities, atol=1e-6)
    assert short.adaptation == "Not adapted to the recording: it holds 11 s of speech, 12 s are needed."
    with pytest.raises(ConfigError, match="not both"):
        SpeakerOptions(adapt=True, recording=True)

    monkeypatch.undo()
    path = tmp_path / "talk.wav"
    path.write_bytes(wav_bytes(samples))
    model_dir = str(ROOT / "models" / "emo-cnn-speaker")
    assert main(["predict", str(path), "--segments", "--json", "--model", model_dir]) == 0
    as_heard = json.loads(capsys.readouterr().out)
    assert main(["predict", str(path), "--segments", "--json", "--adapt", "recording", "--model", model_dir]) == 0
    against_itself = json.loads(capsys.readouterr().out)
    assert [r["start_s"] for r in as_heard] == [r["start_s"] for r in against_itself]
    assert [r["probabilities"] for r in as_heard] != [r["probabilities"] for r in against_itself]
    short = tmp_path / "short.wav"  # too little speech to be read against itself: the user is told
    short.write_bytes(wav_bytes(speech(3.0, f0=120, seed=4)))
    assert main(["predict", str(short), "--adapt", "recording", "--model", model_dir]) == 0
    assert f"{short}: warning: Not adapted to the recording: it holds" in capsys.readouterr().err


def test_cli_speaker_options(tmp_path, capsys):
    from conftest import wav_bytes
    from ser_core.cli import main

    talk = tmp_path / "talk.wav"
    pause = np.zeros(SR, np.float32)
    # Each synthetic voice speaks without a pause between words: the speaker model tells these voices
    # apart over a whole utterance, not word by word (their words are cut apart at turn pauses).
    talk.write_bytes(wav_bytes(np.concatenate([pause, speech(2.0, f0=100, seed=1, pause_chance=0), pause,
                                               speech(2.0, f0=240, seed=2, pause_chance=0), pause])))
    model = str(ROOT / "models" / "emo-cnn-speaker")
    assert main(["predict", str(talk), "--segments", "--json", "--speakers", "1", "--model", model]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["speaker"] for r in rows] == ["S1", "S1"]
    assert main(["predict", str(talk), "--segments", "--json", "--speakers", "2", "--speaker-adaptation",
                 "--model", model]) == 0
    assert [r["speaker"] for r in json.loads(capsys.readouterr().out)] == ["S1", "S2"]
    assert main(["predict", str(talk), "--json", "--speaker-adaptation", "--model", model]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert "not adapted" in result["adaptation"] and result["adaptation"] in result["warnings"]
    assert main(["predict", str(talk), "--json", "--speakers", "5", "--model", model]) == 0  # more than there are
    [result] = json.loads(capsys.readouterr().out)
    assert "5 speakers were asked for, and only 2 utterances found: each is a voice of its own." in result["warnings"]
    assert main(["predict", str(talk), "--segments", "--json", "--speakers", "2", "--no-speaker-adaptation",
                 "--model", model]) == 0
    assert [r["speaker"] for r in json.loads(capsys.readouterr().out)] == ["S1", "S2"]
    assert main(["predict", str(talk), "--json", "--speakers", "2", "--model", model]) == 0
    [per_file] = json.loads(capsys.readouterr().out)
    assert set(per_file) >= {"emotion", "confidence", "uncertain"}
    # Two voices: each one's answer beside the mean over everyone, which describes no one.
    first, second = per_file["speakers"]
    assert (first["speaker"], second["speaker"]) == ("S1", "S2")
    assert first["share"] + second["share"] == pytest.approx(1.0, abs=1e-3)
    assert first["speech_s"] > 1.5 and second["speech_s"] > 1.5
    for voice in (first, second):
        assert voice["emotion"] == max(voice["probabilities"], key=voice["probabilities"].get)
        assert sum(voice["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert main(["predict", str(talk), "--speakers", "2", "--model", model]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{talk}: 2 speakers: S1 ({first['share']:.0%} of the speech) ")
    assert f"; S2 ({second['share']:.0%} of the speech) " in line
    assert main(["predict", str(talk), "--csv", "--speakers", "2", "--model", model]) == 0
    [row] = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert json.loads(row["speakers"]) == [{k: v for k, v in s.items() if k != "probabilities"}
                                           for s in (first, second)]
    assert main(["predict", str(talk), "--json", "--speakers", "1", "--model", model]) == 0
    assert "speakers" not in json.loads(capsys.readouterr().out)[0]  # one voice: the file's answer is theirs
    assert main(["predict", str(talk), "--csv", "--speakers", "1", "--model", model]) == 0
    assert list(csv.DictReader(io.StringIO(capsys.readouterr().out)))[0]["speakers"] == ""

    # With files read together (or against a profile) the speaker options still hold: they used to be dropped.
    other = tmp_path / "other.wav"
    other.write_bytes(wav_bytes(np.concatenate([pause, speech(3.0, f0=150, seed=3), pause])))
    for count, voices in (("2", ["S1", "S2"]), ("1", [])):
        assert main(["predict", str(talk), str(other), "--adapt", "batch", "--speakers", count, "--json",
                     "--model", model]) == 0
        together = json.loads(capsys.readouterr().out)[0]
        assert [s["speaker"] for s in together.get("speakers", [])] == voices
        assert main(["predict", str(talk), "--speakers", count, "--json", "--model", model]) == 0
        assert together["probabilities"] != json.loads(capsys.readouterr().out)[0]["probabilities"]  # read together
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,speaker\n{talk},a\n{other},a\n")
    assert main(["predict", str(manifest), "--speaker-column", "speaker", "--speakers", "2", "--model", model]) == 2
    assert "--speaker-column goes without" in capsys.readouterr().err


def test_the_timeline_has_a_lane_per_speaker_and_each_speaker_a_summary():
    from ser_core.serving.results import UNCERTAIN, Segment, speaker_summaries
    from ser_core.ui import plots

    labels = ("happy", "sad")
    segments = [Segment(0.0, 2.0, {"happy": 0.9, "sad": 0.1}, False, "S1"),
                Segment(3.0, 4.0, {"happy": 0.2, "sad": 0.8}, False, "S2"),
                Segment(5.0, 7.0, {"happy": 0.55, "sad": 0.45}, True, "S1")]
    # Each span's lane (tests/test_plots.py reads the whole drawing).
    timeline = plots.segment_timeline(np.zeros(8 * SR, np.float32), SR, segments)
    top, bottom, again = (float(y) for y in re.findall(r'class="ser-span"[^>]*top:([0-9.]+)%', timeline))
    assert top == again < bottom  # S1's lane above S2's
    first, second = speaker_summaries(segments, labels, uncertain_below=0.5)
    assert (first.speaker, first.speech_s, first.share) == ("S1", 4.0, pytest.approx(0.8))
    assert first.shares == pytest.approx({"happy": 0.5, "sad": 0.0, UNCERTAIN: 0.5})
    assert first.emotion == "happy" and first.confidence == pytest.approx(0.725) and not first.uncertain
    assert (second.speaker, second.emotion, second.share) == ("S2", "sad", pytest.approx(0.2))

    from ser_core.serving.results import Analysis, speaker_rows

    def analysis(of):
        return Analysis(None, np.zeros(0), np.zeros((0, 2)), np.zeros(0), labels, 0.5, segments=tuple(of))

    assert analysis(segments).voices == (first, second)
    assert analysis([s for s in segments if s.speaker == "S1"]).voices == ()  # one voice: the file's answer
    rows = speaker_rows(analysis(segments).voices, None, 0.5)
    assert rows[0] == {"speaker": "S1", "speech_s": 4.0, "share": 0.8, "emotion": "happy", "confidence": 0.725,
                       "uncertain": False, "arousal": rows[0]["arousal"], "probabilities": {"happy": 0.725, "sad": 0.275}}
    assert speaker_rows(analysis(segments).voices, ("sad",), 0.5)[0]["emotion"] == "sad"


def test_without_the_encoder_package_voices_are_not_told_apart(monkeypatch):
    """A wheel install lacks the --no-deps package: segments get no speaker, the analysis goes on."""
    import ser_core.serving.speakers
    from ser_core.io.audio import to_mono_float32
    from ser_core.serving.segments import SpeakerOptions, name_speakers

    monkeypatch.setattr(ser_core.serving.speakers, "encoder_installed", lambda: False)
    audio = to_mono_float32(np.concatenate([speech(2.0, seed=1), np.zeros(SR, np.float32), speech(2.0, seed=2)]),
                            SR, SR)
    spans = [[(0.0, 2.0), (3.0, 5.0)]]
    assert name_speakers([audio], spans) == [["", ""]]
    assert name_speakers([audio], spans, SpeakerOptions(count=1)) == [["S1", "S1"]]


def test_average_linkage_partitions_as_scipy_does():
    """The numpy clustering serving uses against scipy's linkage + fcluster (the dev extra's)."""
    hierarchy, distance = require("scipy.cluster.hierarchy"), require("scipy.spatial.distance")

    def same_partition(a, b):
        return len(set(zip(a, b))) == len(set(a)) == len(set(b))

    rng = np.random.default_rng(7)
    for _ in range(60):
        voices, n = int(rng.integers(1, 5)), int(rng.integers(2, 40))
        prints = rng.standard_normal((voices, 16))[rng.integers(voices, size=n)] + 0.6 * rng.standard_normal((n, 16))
        tree = hierarchy.linkage(distance.pdist(prints, "cosine").clip(0.0), method="average")
        for cut in (0.2, 0.35, 0.5):
            assert same_partition(hierarchy.fcluster(tree, t=cut, criterion="distance"),
                                  average_linkage(prints, distance=cut))
        k = min(3, n)
        assert same_partition(hierarchy.fcluster(tree, t=k, criterion="maxclust"), average_linkage(prints, n_clusters=k))
