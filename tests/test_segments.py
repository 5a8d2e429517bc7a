"""Voice activity detection (Silero's network, run in numpy) and analysis by utterance: speech segments
with start and end, each classified, the clip's answer weighted by speaking time, pauses never
classified, and recordings without a voice refused with a sentence."""

from __future__ import annotations

import dataclasses
import shutil
import sys

import numpy as np
import pytest

from conftest import ROOT, speech, voice
from ser_core.errors import ModelError, NoVoiceActivityError, SerError
from ser_core.serving.results import UNCERTAIN, Segment, speaking_time_shares, weighted_probabilities
from ser_core.serving.segments import CONTEXT_AFTER_S, CONTEXT_BEFORE_S, find_speech
from ser_core.serving.shipped import follow_pointer
from ser_core.frontend.vad import (FRAME_S, ONNX_SHA256, SileroVad, VadParams, model_path, shared_vad, speech_regions,
    speech_segments, utterances)

SR = 16000


@pytest.fixture(scope="module")
def model():
    from ser_core.serving.inference import load_model

    # The light shipped model: these tests' geometry is written for its 3 s windows (the logic is the
    # same for every model; the default's windows are 4 s).
    return load_model(ROOT / "models" / "emo-cnn-speaker")


def recording(*parts) -> np.ndarray:
    """('speech', seconds, seed) and ('pause', seconds) pieces, one after another; the pauses hold
    room noise at -70 dBFS."""
    rng = np.random.default_rng(0)
    pieces = []
    for kind, seconds, *seed in parts:
        if kind == "speech":
            pieces.append(speech(seconds, SR, seed=seed[0] if seed else 0))
        else:
            pieces.append((rng.standard_normal(int(seconds * SR)) * 10 ** (-70 / 20)).astype(np.float32))
    return np.concatenate(pieces)


def test_the_onnx_model_is_checked_and_runs_without_torch(tmp_path):
    path = model_path()
    assert path.name == "silero_vad.onnx" and path.is_file()
    shared_vad().probabilities(speech(1.0))
    assert "torch" not in sys.modules
    forged = tmp_path / "silero_vad.onnx"
    shutil.copy(path, forged)
    with forged.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="not the expected file"):
        SileroVad(forged)
    with pytest.raises(ModelError, match="missing"):
        SileroVad(tmp_path / "absent.onnx", ONNX_SHA256)


def onnxruntime_reference(streams: np.ndarray) -> np.ndarray:
    """Silero's own graph under onnxruntime, one call per 32 ms step, as its authors run it."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model_path()), providers=["CPUExecutionProvider"])
    state = np.zeros((2, len(streams), 128), np.float32)
    context = np.zeros((len(streams), 64), np.float32)
    out = []
    for step in range(streams.shape[1] // 512):
        chunk = streams[:, step * 512 : (step + 1) * 512]
        feed = {"input": np.concatenate([context, chunk], axis=1), "state": state, "sr": np.array(SR, np.int64)}
        probability, state = session.run(None, feed)
        out.append(probability[:, 0])
        context = chunk[:, -64:]
    return np.stack(out, axis=1)


def test_the_numpy_network_matches_silero_under_onnxruntime(monkeypatch):
    import ser_core.frontend.vad

    rng = np.random.default_rng(7)
    n = 150 * 512  # 4.8 s
    streams = np.stack([
        recording(("pause", 1.0), ("speech", 2.5, 1), ("pause", 1.3))[:n],
        speech(4.8, SR, seed=2)[:n],
        (rng.standard_normal(n) * 0.1).astype(np.float32),  # loud white noise
        np.zeros(n, np.float32),
        np.clip(speech(4.8, SR, seed=3)[:n] * 30, -1, 1),  # clipped
    ])
    reference = onnxruntime_reference(streams)
    assert reference.max() > 0.9 and reference.min() < 0.1  # both speech and non-speech frames compared
    vad = SileroVad()
    assert np.abs(vad._run(streams) - reference).max() < 1e-5
    monkeypatch.setattr(ser_core.frontend.vad, "CONV_BLOCK", 7)  # the convolutions in blocks of 7 chunks
    assert np.abs(vad._run(streams) - reference).max() < 1e-5


def frames(*runs) -> np.ndarray:
    """(probability, seconds) runs → one probability per 32 ms frame."""
    return np.concatenate([np.full(round(seconds / FRAME_S), p, np.float32) for p, seconds in runs])


def test_hysteresis_pauses_short_bursts_padding_and_long_splits():
    params = VadParams(threshold=0.5, neg_threshold=0.35, min_silence_s=0.3, min_speech_s=0.25,
                       speech_pad_s=0.1, max_segment_s=10.0)
    # 1 s speech, a 0.16 s dip (kept inside), 1 s speech, 0.4 (between the thresholds: still speech),
    # a 1 s pause, a 0.1 s click (dropped), a 1 s pause, 25 s of speech (split in 3).
    p = frames((0.0, 1.0), (0.9, 1.0), (0.1, 0.16), (0.9, 1.0), (0.4, 0.5), (0.0, 1.0), (0.9, 0.1), (0.0, 1.0),
               (0.9, 25.0), (0.0, 0.5))
    duration = len(p) * FRAME_S
    segments = speech_segments(p, duration, params)
    assert len(segments) == 4
    (a0, b0), *rest = segments
    assert a0 == pytest.approx(1.0 - 0.1, abs=FRAME_S) and b0 == pytest.approx(3.66 + 0.1, abs=2 * FRAME_S)
    lengths = [b - a for a, b in rest]
    assert lengths == pytest.approx([(25.0 + 0.2) / 3] * 3, abs=2 * FRAME_S) and max(lengths) <= 10.0
    assert all(b <= a for (_, b), (a, _) in zip(segments, segments[1:]))  # in order, never overlapping
    assert speech_segments(np.zeros(100, np.float32), 100 * FRAME_S, params) == []
    # Padding stops halfway to the neighbour.
    close = speech_regions(frames((0.9, 1.0), (0.0, 0.32), (0.9, 1.0)), 2.32, VadParams(speech_pad_s=1.0))
    assert close[0][1] == pytest.approx(close[1][0]) and close[0][0] == 0.0 and close[1][1] == pytest.approx(2.32)


def test_speech_is_cut_at_turn_pauses_without_losing_any():
    """Inside one region (a dip of one frame is no pause to the detector) the speech is cut in the
    middle of every dip of `turn_pause_s`, where the next speaker may take over; the pieces cover the
    region exactly, a piece too short to be a region of its own included."""
    from ser_core.frontend.vad import cut_at_turns

    params = VadParams(speech_pad_s=0.1, turn_pause_s=0.03, turn_threshold=0.5)
    p = frames((0.0, 1.0), (0.9, 0.096), (0.1, 0.032), (0.9, 2.0), (0.45, 0.064), (0.9, 1.5), (0.0, 1.0), (0.9, 1.0),
               (0.0, 1.0))
    duration = len(p) * FRAME_S
    regions = speech_regions(p, duration, params)
    assert len(regions) == 2  # the dips are inside the first region
    first, second = cut_at_turns(regions, p, duration, params)  # each region's pieces
    assert len(first) == 3 and second == [regions[1]]
    pieces = first
    assert pieces[0][0] == regions[0][0] and pieces[2][1] == regions[0][1]
    assert all(b == c for (_, b), (c, _) in zip(pieces[:2], pieces[1:3]))  # no speech between them dropped
    lengths = [round(s / FRAME_S) for s in (1.0, 0.096, 0.032, 2.0, 0.064)]  # frames of the first runs
    assert pieces[0][1] == pytest.approx((sum(lengths[:2]) + 0.5) * FRAME_S)  # the middle of the one-frame dip
    assert pieces[1][1] == pytest.approx((sum(lengths[:4]) + 1) * FRAME_S)  # and of the shallow two-frame dip
    assert pieces[0][1] - pieces[0][0] < params.min_speech_s  # kept, though shorter than a region may be
    # A dip above `turn_threshold` is no turn pause; cut only at the detector's own pause (`at_turns`
    # never lengthens it), the pieces are the regions themselves.
    assert [len(r) for r in cut_at_turns(regions, p, duration, dataclasses.replace(params, turn_threshold=0.35))] == [2, 1]
    assert cut_at_turns(regions, p, duration, dataclasses.replace(params, turn_pause_s=0.3)) == [[r] for r in regions]


def test_utterances_join_pauses_inside_a_sentence_and_absorb_short_bursts():
    params = VadParams(join_gap_s=0.6, min_utterance_s=1.0, burst_gap_s=1.0, max_segment_s=10.0)
    # Two halves of a sentence 0.4 s apart: one utterance. Then 1.5 s of silence: a new one.
    assert utterances([(0.0, 1.2), (1.6, 2.8), (4.3, 6.0)], params) == [(0.0, 2.8), (4.3, 6.0)]
    # A 0.3 s burst 0.8 s after a sentence joins it (its nearer neighbour); one 3 s from anything stays.
    assert utterances([(0.0, 2.0), (2.8, 3.1), (6.0, 8.0), (11.0, 11.3)], params) == [
        (0.0, 3.1), (6.0, 8.0), (11.0, 11.3)]
    # Bursts join the nearer side; the shortest first.
    assert utterances([(0.0, 2.0), (2.9, 3.2), (3.9, 6.0)], params) == [(0.0, 2.0), (2.9, 6.0)]
    # Long speech is still windowed: 25 s of sentences joined, then split into equal parts.
    long = utterances([(0.0, 12.0), (12.3, 25.0)], params)
    assert len(long) == 3 and long[0][0] == 0.0 and long[-1][1] == 25.0
    assert utterances([], params) == []
    assert utterances([(0.0, 1.0), (1.2, 2.0)], VadParams(join_gap_s=0.0, min_utterance_s=0.0)) == [
        (0.0, 1.0), (1.2, 2.0)]


def test_a_sentence_with_a_pause_is_one_segment_and_sentences_apart_are_three(model):
    """The detector's regions stay on the analysis (the waveform view draws them); the segments are
    sentences: a 0.45 s pause inside one does not cut it, 1.2 s of silence between them does."""
    sentence = [("speech", 1.3, 1), ("pause", 0.45), ("speech", 1.1, 2)]
    one = model.analyze(recording(("pause", 0.5), *sentence, ("pause", 0.5)), sr=SR)
    assert len(one.speech_regions) == 2 and len(one.segments) == 1
    three = model.analyze(recording(("pause", 0.5), *sentence, ("pause", 1.2), *sentence, ("pause", 1.2), *sentence,
                                    ("pause", 0.5)), sr=SR)
    assert len(three.speech_regions) == 6 and len(three.segments) == 3
    assert np.ravel([(s.start_s, s.end_s) for s in three.segments]) == pytest.approx(
        [0.5, 3.35, 4.55, 7.4, 8.6, 11.45], abs=0.3)


def test_corpus_sentences_stay_whole(corpora):
    """Real acted sentences (RAVDESS, whose natural mid-sentence pauses cut them in two before): each
    clip alone is one segment, and three of them with 1 s of silence between are three."""
    from ser_core.io.audio import load_audio, to_mono_float32
    from ser_core.training.corpora import read_manifest

    clips = [c for c in read_manifest(corpora / "manifest.csv") if c.corpus == "ravdess"][:24:8]
    audios = [load_audio(c.path, SR) for c in clips]
    assert [len(spans) for spans in find_speech(audios)] == [1, 1, 1]
    silence = np.zeros(SR, np.float32)
    joined = np.concatenate([x for a in audios for x in (a.samples, silence)])
    assert len(find_speech([to_mono_float32(joined, SR, SR)])[0]) == 3


def test_pieces_join_within_one_voice_only():
    """Neighbours of one voice closer than the gap join (never past the longest segment); neighbours of
    two voices never do, however close."""
    from ser_core.serving.segments import join_same_voice

    spans = [(0.0, 1.0), (1.3, 2.0), (2.2, 3.0), (3.2, 4.0), (5.0, 6.0), (6.3, 9.5), (9.8, 12.0)]
    names = ["S1", "S1", "S2", "S1", "S1", "S1", "S1"]
    joined, voices = join_same_voice(spans, names, max_segment_s=10.0, gap_s=0.45)
    assert joined == [(0.0, 2.0), (2.2, 3.0), (3.2, 4.0), (5.0, 12.0)] and voices == ["S1", "S2", "S1", "S1"]
    joined, _ = join_same_voice(spans, names, max_segment_s=5.0, gap_s=0.45)
    assert joined[-2:] == [(5.0, 9.5), (9.8, 12.0)]  # 7 s would pass the 5 s limit
    assert join_same_voice(spans, names, max_segment_s=10.0, gap_s=0.0) == (spans, names)
    assert join_same_voice([], [], max_segment_s=10.0) == ([], [])


class FixedVad:
    """A detector that hears what it is told: one probability per 32 ms frame."""

    def __init__(self, probabilities: np.ndarray):
        self.p = probabilities

    def probabilities_many(self, clips):
        return [self.p[: -(-len(clip) // 512)] for clip in clips]


def test_a_short_clip_below_the_threshold_gets_a_softer_second_look():
    from ser_core.io.audio import to_mono_float32

    # Soft speech: 0.3 s at 0.4, under the 0.5 threshold, over the 0.25 of the second look.
    p = frames((0.05, 1.0), (0.4, 0.3), (0.05, 1.7))
    short = to_mono_float32(speech(3.0), SR, SR)
    [spans] = find_speech([short], vad=FixedVad(p))
    assert len(spans) == 1 and spans[0][0] == pytest.approx(1.0 - 0.1, abs=2 * FRAME_S)
    # Nothing reaches the softer threshold either (music and noise peaked at 0.16): still no speech.
    assert find_speech([short], vad=FixedVad(frames((0.16, 3.0)))) == [[]]
    # A long recording gets no second look: an hour of music must stay "no speech".
    long = to_mono_float32(speech(40.0), SR, SR)
    assert find_speech([long], vad=FixedVad(frames((0.05, 20.0), (0.4, 0.3), (0.05, 20.0)))) == [[]]


def test_parallel_streams_find_what_one_stream_finds():
    """A long recording runs as 30 s streams side by side, each warmed up on the 2 s before it."""
    audio = recording(("pause", 3.0), ("speech", 20.0, 1), ("pause", 4.0), ("speech", 15.0, 2), ("pause", 2.0),
                      ("speech", 31.0, 3), ("pause", 1.0))
    vad = shared_vad()
    batched = vad.probabilities(audio)
    n = len(batched) * 512
    one_stream = vad._run(np.pad(audio, (0, n - len(audio)))[None, :])[0]
    assert len(batched) == len(one_stream)
    assert np.mean(np.abs(batched - one_stream)) < 0.01
    duration = len(audio) / SR
    for (a, b), (c, d) in zip(speech_segments(batched, duration), speech_segments(one_stream, duration), strict=True):
        assert abs(a - c) <= 2 * FRAME_S and abs(b - d) <= 2 * FRAME_S


def test_analysis_by_utterance_weights_speech_and_skips_pauses(model):
    audio = recording(("pause", 1.0), ("speech", 4.0, 1), ("pause", 2.0), ("speech", 2.0, 2), ("pause", 1.5))
    analysis = model.analyze(audio, sr=SR)
    starts_ends = [(s.start_s, s.end_s) for s in analysis.segments]
    assert np.ravel(starts_ends) == pytest.approx([1.0, 5.0, 7.0, 9.0], abs=0.35)
    for segment in analysis.segments:
        assert set(segment.probabilities) == set(model.labels)
        assert segment.uncertain == (segment.confidence < model.uncertain_below)
    weights = np.array([s.duration_s for s in analysis.segments])
    expected = sum(w * np.array(list(s.probabilities.values())) for w, s in zip(weights, analysis.segments))
    np.testing.assert_allclose(list(analysis.probabilities.values()), expected / weights.sum(), atol=1e-9)
    # Each segment's windows start CONTEXT_BEFORE_S before it and run to CONTEXT_AFTER_S after it: 4.2 s
    # → 5.0 s, two windows of 3 s every 1.5 s (the last 0.5 s is under half a hop: no window aligned to
    # the end); 2.2 s → 3.0 s, one.
    (a0, b0), (a1, b1) = starts_ends
    window, hop = model.params.window_s, model.params.window_hop_s
    assert window + hop <= (b0 + CONTEXT_AFTER_S) - (a0 - CONTEXT_BEFORE_S) < window + 1.5 * hop
    np.testing.assert_allclose(analysis.window_times_s, [a0 - CONTEXT_BEFORE_S, a0 - CONTEXT_BEFORE_S + hop,
                                                         a1 - CONTEXT_BEFORE_S], atol=1e-3)


def test_a_segment_is_heard_with_its_surroundings_but_not_its_neighbours(model):
    from ser_core.serving.segments import segment_piece

    samples = np.full(10 * SR, 1e-4, np.float32) * np.arange(10 * SR) / (10 * SR)  # quiet: kept as context
    spans = [(1.0, 1.8), (2.0, 3.0), (3.2, 8.0)]
    piece, start = segment_piece(samples, model.params, spans, 1)
    assert start == pytest.approx(2.0 - CONTEXT_BEFORE_S) and len(piece) == round((1.0 + CONTEXT_BEFORE_S + CONTEXT_AFTER_S) * SR)
    before, after = round((1.8 - start) * SR), round((3.2 - start) * SR)
    assert np.all(piece[:before] == 0) and np.all(piece[after:] == 0)  # the neighbours' speech silenced
    np.testing.assert_array_equal(piece[before:after], samples[round(1.8 * SR) : round(3.2 * SR)])
    music = np.zeros(10 * SR, np.float32)
    music[: 2 * SR] = 1e-4  # room tone (-80 dBFS) ...
    music[round(1.7 * SR) : round(1.8 * SR)] = 0.1  # ... and a loud bar of music (-20 dBFS) before the segment
    music[round(2.0 * SR) : 3 * SR] = 0.1  # the segment itself, as loud
    quiet, quiet_start = segment_piece(music, model.params, [(2.0, 3.0)], 0)
    bar, segment = round((1.7 - quiet_start) * SR), round((2.0 - quiet_start) * SR)  # 50 ms frames from its start
    assert np.all(quiet[:bar] == 1e-4) and np.all(quiet[bar : bar + SR // 10] == 0)
    assert np.all(quiet[bar + SR // 10 : segment] == 1e-4) and np.all(quiet[segment : segment + SR] == 0.1)
    long_piece, long_start = segment_piece(samples, model.params, spans, 2)
    assert long_start == pytest.approx(3.2 - CONTEXT_BEFORE_S)
    assert len(long_piece) == round((4.8 + CONTEXT_BEFORE_S + CONTEXT_AFTER_S) * SR)
    assert np.all(long_piece[: round((3.0 - long_start) * SR)] == 0)  # the end of the previous segment
    edge, edge_start = segment_piece(samples[: 2 * SR], model.params, [(0.2, 1.8)], 0)
    assert edge_start == 0.0 and len(edge) == 2 * SR  # a recording shorter than a window: all of it


@pytest.mark.parametrize("what, samples", [
    ("room noise", (np.random.default_rng(1).standard_normal(10 * SR) * 10 ** (-50 / 20)).astype(np.float32)),
    ("loud noise", (np.random.default_rng(2).standard_normal(5 * SR) * 0.1).astype(np.float32)),
    ("a tone", (0.3 * np.sin(2 * np.pi * 440 * np.arange(5 * SR) / SR)).astype(np.float32)),
    # A short voice-like buzz (harmonics, syllable-rate envelope, no formants) gets the softer second
    # look and is classified: the detector alone cannot tell it from soft speech. A long one cannot.
    ("40 s of a harmonic buzz", voice(40.0)),
])
def test_no_voice_is_a_sentence_not_an_emotion(model, what, samples):
    with pytest.raises(NoVoiceActivityError) as raised:
        model.analyze(samples, sr=SR)
    message = str(raised.value)
    assert message.startswith("No speech found") and "\n" not in message and message.endswith(".")


def test_a_clip_without_voice_in_a_batch_fails_alone(model):
    from ser_core.io.audio import to_mono_float32

    loud_noise = (np.random.default_rng(3).standard_normal(3 * SR) * 0.1).astype(np.float32)
    audios = [to_mono_float32(x, SR, SR) for x in (speech(3.0, seed=4), loud_noise, speech(2.0, seed=5))]
    analyses = model.analyze_many(audios)
    assert analyses[1].segments == () and len(analyses[1].window_times_s) == 0
    with pytest.raises(SerError, match="No speech found"):
        analyses[1].probabilities
    for i in (0, 2):
        alone = model.analyze_audio(audios[i])
        np.testing.assert_allclose(list(analyses[i].probabilities.values()), list(alone.probabilities.values()),
                                   atol=1e-6)
    assert [len(x) for x in find_speech(audios)] == [len(a.segments) for a in analyses]


def test_speaking_time_shares():
    labels = ("happy", "sad")
    segments = [Segment(0.0, 3.0, {"happy": 0.9, "sad": 0.1}, False),
                Segment(4.0, 5.0, {"happy": 0.2, "sad": 0.8}, False),
                Segment(6.0, 8.0, {"happy": 0.55, "sad": 0.45}, True)]
    assert speaking_time_shares(segments, labels) == pytest.approx({"happy": 0.5, "sad": 1 / 6, UNCERTAIN: 1 / 3})
    assert speaking_time_shares([], labels) == {"happy": 0.0, "sad": 0.0, UNCERTAIN: 0.0}
    assert weighted_probabilities(segments, labels)["happy"] == pytest.approx((2.7 + 0.2 + 1.1) / 6)


def test_cli_predict_segments_writes_one_row_per_segment(tmp_path):
    import csv
    import io
    import json
    import subprocess

    from conftest import wav_bytes

    talk = tmp_path / "talk.flac"
    talk.write_bytes(wav_bytes(recording(("pause", 1.0), ("speech", 3.0, 4), ("pause", 2.0), ("speech", 2.0, 5)),
                               fmt="FLAC"))
    hum = tmp_path / "hum.wav"
    hum.write_bytes(wav_bytes((0.2 * np.sin(2 * np.pi * 100 * np.arange(3 * SR) / SR)).astype(np.float32)))
    model = ROOT / "models" / "default"

    def ser(*args):
        return subprocess.run([sys.executable, "-m", "ser_core.cli", "predict", str(talk), str(hum), "--segments",
                               "--model", str(model), *args], capture_output=True, text=True, timeout=300)

    as_json, as_csv = ser("--json"), ser("--csv")
    for result in (as_json, as_csv):
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines() == [f"{hum}: " + result.stderr.split(": ", 1)[1].strip()]
        assert "No speech found" in result.stderr
    rows = json.loads(as_json.stdout)
    assert [r["segment"] for r in rows] == [1, 2] and {r["file"] for r in rows} == {str(talk)}
    assert np.ravel([(r["start_s"], r["end_s"]) for r in rows]) == pytest.approx([1.0, 4.0, 6.0, 8.0], abs=0.35)
    uncertain_below = json.loads((follow_pointer(model) / "metadata.json").read_text())["calibration"]["uncertain_below"]
    for r in rows:
        assert r["emotion"] == max(r["probabilities"], key=r["probabilities"].get)
        assert r["confidence"] == pytest.approx(r["probabilities"][r["emotion"]])
        assert r["uncertain"] == (r["confidence"] < uncertain_below) and r["speaker"] in ("S1", "S2")
    assert rows[0]["speaker"] == "S1"
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(t["segment"], t["speaker"], t["emotion"], t["uncertain"]) for t in table] == [
        (str(r["segment"]), r["speaker"], r["emotion"], str(r["uncertain"])) for r in rows]
    # Per file too: the confidence and whether the app would call it uncertain, not a bare percentage.
    [per_file] = json.loads(subprocess.run([sys.executable, "-m", "ser_core.cli", "predict", str(talk), "--json",
                                            "--model", str(model)], capture_output=True, text=True,
                                           timeout=300).stdout)
    assert per_file["confidence"] == pytest.approx(max(per_file["probabilities"].values()))
    assert per_file["uncertain"] == (per_file["confidence"] < uncertain_below)
