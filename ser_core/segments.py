"""Long recordings by utterance: voice activity detection finds the speech, each speech segment is
classified on its own, and the clip's answer is the duration-weighted mean over speech only.

A segment shorter than the model's window is classified in one window centred on it and filled
with the recording around it, the way the model's training clips held their speech among room tone;
but any other segment's speech is silenced, so that no neighbouring utterance speaks into it, and so
is any 50 ms of the surroundings louder than `CONTEXT_MAX_DBFS` (noise, music): only quiet room tone
stays (zero-padded where the recording ends). Chosen on 200 validation clips (emo-cnn,
bench/segments.py), UAR scored one by one / in a long recording with noise and music between them:
this way 78.7 / 76.2; all the surroundings kept 79.7 / 69.4; the speech zero-padded at the end
75.7 / 70.4; centred in zeros 71.2 / 73.0; whole clips through fixed windows 80.2 one by one. The
one utterance of a recording no longer than a window is heard as recorded, surroundings and all. A
longer segment is covered by windows every `window_hop_s` from its start (plus one aligned to its
end), and its probabilities are their mean. Pauses, music and noise are never classified on their
own: a segment's answer is the recording's only answer for that stretch of time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from .audio import Audio
from .errors import NoVoiceActivityError
from .features import FeatureParams, extract_many
from .vad import DEFAULT_VAD, SAMPLE_RATE, SileroVad, VadParams, shared_vad, speech_segments

if TYPE_CHECKING:
    from .inference import Analysis, SerModel
    from .profile import VoiceProfile

UNCERTAIN = "uncertain"  # the share of speaking time whose segments named no emotion
CONTEXT_MAX_DBFS = -45.0  # around a short segment, louder 50 ms frames are silenced (-35: 75.2 vs 76.2)
CONTEXT_FRAME_S = 0.05


@dataclass(frozen=True)
class Segment:
    """One stretch of speech and what the model heard in it."""

    start_s: float
    end_s: float
    probabilities: Mapping[str, float]
    uncertain: bool

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def emotion(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.emotion]


def weighted_probabilities(segments: Sequence[Segment], labels: Sequence[str]) -> dict[str, float]:
    """The duration-weighted mean of the segments' probabilities."""
    weights = np.array([s.duration_s for s in segments])
    rows = np.array([[s.probabilities[label] for label in labels] for s in segments])
    mean = weights @ rows / weights.sum()
    return {label: float(p) for label, p in zip(labels, mean)}


def speaking_time_shares(segments: Sequence[Segment], labels: Sequence[str]) -> dict[str, float]:
    """Share of the speaking time whose segment's top emotion is each label; segments under the
    model's uncertainty threshold count as `UNCERTAIN`. Sums to 1 (all zeros without segments)."""
    shares = dict.fromkeys([*labels, UNCERTAIN], 0.0)
    for segment in segments:
        shares[UNCERTAIN if segment.uncertain else segment.emotion] += segment.duration_s
    total = sum(shares.values())
    return {label: value / total for label, value in shares.items()} if total else shares


def no_speech_error(audio: Audio) -> NoVoiceActivityError:
    return NoVoiceActivityError(audio.duration_s, audio.loudest_dbfs)


def vad_samples(audio: Audio) -> np.ndarray:
    """The audio at the detector's 16 kHz (the shipped models all use 16 kHz already)."""
    if audio.sample_rate == SAMPLE_RATE:
        return audio.samples
    import soxr

    return soxr.resample(audio.samples, audio.sample_rate, SAMPLE_RATE).astype(np.float32)


def find_speech(audios: Sequence[Audio], params: VadParams = DEFAULT_VAD, vad: SileroVad | None = None
                ) -> list[list[tuple[float, float]]]:
    """Per recording, its speech segments [(start_s, end_s)]; a short clip in which none is found
    gets a second, softer look (`VadParams.softer`)."""
    probabilities = (vad or shared_vad()).probabilities_many([vad_samples(audio) for audio in audios])
    found = []
    for p, audio in zip(probabilities, audios):
        spans = speech_segments(p, audio.duration_s, params)
        if not spans and audio.duration_s <= params.soft_max_clip_s:
            spans = speech_segments(p, audio.duration_s, params.softer())
        found.append(spans)
    return found


def analyze_segments(model: "SerModel", audios: Sequence[Audio], params: VadParams = DEFAULT_VAD,
                     vad: SileroVad | None = None, profile: "VoiceProfile | None" = None) -> list["Analysis"]:
    """`model.analyze_many` by utterance: one `Analysis` per recording, with its `segments`. The
    windows it holds are the speech segments' windows (their starts in the recording's time)."""
    return classify_segments(model, audios, find_speech(audios, params, vad), profile)


def segment_piece(samples: np.ndarray, params: FeatureParams, spans: Sequence[tuple[float, float]], index: int
                  ) -> tuple[np.ndarray, float]:
    """(the audio the model hears for segment `index`, where it starts in s): the segment itself when
    it fills a window; else one window centred on it, the other segments' speech in it silenced."""
    sr, win = params.sample_rate, params.window_samples
    a, b = round(spans[index][0] * sr), round(spans[index][1] * sr)
    if b - a >= win:
        return samples[a:b], a / sr
    if len(spans) == 1 and len(samples) <= win:
        # One utterance in a recording no longer than a window: heard as recorded, as the model's
        # training clips were; nothing else speaks into it. bench/segments.py's `one_by_one` on its 200
        # validation clips, emo-whisper (a one-off run): UAR 85.0 this way, 84.0 with the loud
        # surroundings silenced.
        return samples, 0.0
    start = min(max(0, (a + b - win) // 2), max(0, len(samples) - win))
    piece = samples[start : start + win].copy()
    for other, (c, d) in enumerate(spans):
        if other != index:
            piece[max(0, round(c * sr) - start) : max(0, round(d * sr) - start)] = 0.0
    frame = round(CONTEXT_FRAME_S * sr)
    n = -(-len(piece) // frame)
    power = np.zeros(n * frame, np.float64)
    power[: len(piece)] = piece.astype(np.float64) ** 2
    loud = 10 * np.log10(power.reshape(n, frame).mean(axis=1) + 1e-20) > CONTEXT_MAX_DBFS
    mask = np.repeat(loud, frame)[: len(piece)]
    mask[a - start : b - start] = False  # the segment itself is never touched
    piece[mask] = 0.0
    return piece, start / sr


def classify_segments(model: "SerModel", audios: Sequence[Audio], spans: Sequence[Sequence[tuple[float, float]]],
                      profile: "VoiceProfile | None" = None) -> list["Analysis"]:
    """Each recording's given segments [(start_s, end_s)] through `model`, all in one batch (read
    relative to the speaker's voice with a fitting `profile`)."""
    from .inference import Analysis

    pieces = [segment_piece(audio.samples, model.params, clip, i) for audio, clip in zip(audios, spans)
              for i in range(len(clip))]
    # Windows from the piece's own start: the 0.5 s offset skips leading silence in whole clips, and
    # a long segment starts where speech does.
    extracted = extract_many([samples for samples, _ in pieces], dataclasses.replace(model.params, offset_s=0.0))
    counts = [len(features) for _, features in extracted]
    features = (np.concatenate([f for _, f in extracted]) if extracted
                else np.zeros((0, *model.params.input_shape), np.float32))
    probabilities, adaptation = (model.predict_windows(features, profile) if len(features)
                                 else (np.zeros((0, len(model.labels))), ""))
    window_bounds = np.cumsum([0, *counts])

    analyses, piece = [], 0
    for audio, clip in zip(audios, spans):
        segments, times, first_window = [], [], window_bounds[piece]
        for start_s, end_s in clip:
            a, b = window_bounds[piece], window_bounds[piece + 1]
            mean = probabilities[a:b].mean(axis=0)
            segments.append(Segment(start_s, end_s, {label: float(p) for label, p in zip(model.labels, mean)},
                                    bool(mean.max() < model.uncertain_below)))
            times.append(pieces[piece][1] + extracted[piece][0])
            piece += 1
        last_window = window_bounds[piece]
        analyses.append(Analysis(
            audio,
            np.concatenate(times) if times else np.zeros(0),
            probabilities[first_window:last_window],
            features[first_window:last_window],
            model.labels,
            model.uncertain_below,
            adaptation,
            segments=tuple(segments),
        ))
    return analyses
