"""What an analysis returns: the `Analysis` of one recording, its speech `Segment`s, summaries per
speaker and per emotion, and the rows `ser predict --segments` prints and `ser serve` answers.

Plain data and arithmetic on it: the modules that compute an analysis (`inference`, `segments`)
and those that show one (the CLI, the HTTP API, the app) import it; it imports neither."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np

from ..errors import ConfigError, NoVoiceActivityError
from ..io.audio import Audio
from ..labels import HIGH_AROUSAL, LOW_AROUSAL


UNCERTAIN = "uncertain"  # the share of speaking time whose segments named no emotion


def arousal(probabilities: Mapping[str, float]) -> float | None:
    """How aroused (activated) the voice sounds, from 0 (low: neutral, calm, sad) to 1 (high: happy, angry,
    fearful, surprised): the probability of a high-arousal emotion over that of an emotion of either group
    (`labels.HIGH_AROUSAL`, `LOW_AROUSAL`; disgust counts for neither). In languages the model never
    heard it is read right far more often than chance, where the emotion is often near it
    (bench/results/arousal.md). None when the probabilities give neither group any weight."""
    high = sum(probabilities.get(label, 0.0) for label in HIGH_AROUSAL)
    low = sum(probabilities.get(label, 0.0) for label in LOW_AROUSAL)
    return high / (high + low) if high + low > 0 else None


def arousal_word(level: float) -> str:
    """"high" from 0.5 (a high-arousal emotion more probable than a low one), else "low"."""
    return "high" if level >= 0.5 else "low"


def check_classes(classes: Sequence[str], labels: Sequence[str]) -> None:
    if unknown := sorted(set(classes) - set(labels)):
        raise ConfigError(f"Unknown emotion(s) {', '.join(unknown)}; choose from {', '.join(labels)}")


def listed(words: Sequence[str]) -> str:
    """["S1", "S2", "S3"] → "S1, S2 and S3": names in a sentence."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def named_classes(text: str) -> tuple[str, ...]:
    """A user's list of emotions, `"Angry, happy,sad"` → ("angry", "happy", "sad"), as `ser predict
    --classes` and the API's `classes` read it: a name given twice counts once; fewer than two names
    are refused, since over one emotion every reading would be that emotion at 100%."""
    names = tuple(dict.fromkeys(name.strip() for name in text.lower().split(",") if name.strip()))
    if len(names) < 2:
        raise ConfigError(f"Name two emotions or more, not {text!r}: over {'one' if names else 'none'} "
                          "there is nothing to choose between.")
    return names


def over_classes(probabilities: dict[str, float], classes: Sequence[str] | str | None) -> dict[str, float]:
    """Probabilities renormalised over the classes an application uses (all when `classes` is None;
    names, or one string of them as `--classes` takes it), in the model's order: what the model
    believes given that the speech shows one of them."""
    if isinstance(classes, str):
        classes = named_classes(classes)
    if not classes:
        return probabilities
    check_classes(classes, list(probabilities))
    chosen = {label: p for label, p in probabilities.items() if label in classes}  # a name given twice counts once
    total = sum(chosen.values())
    return {label: p / total for label, p in chosen.items()}


def judged(probabilities: Mapping[str, float], classes: tuple[str, ...] | None, uncertain_below: float) -> dict:
    """A reading as `ser predict` prints it and `ser serve` answers it: its emotion, confidence,
    uncertainty and probabilities over `classes` (all the model's when None), renormalised
    (`over_classes`; the calibrated threshold, fitted over all the classes, applies to the renormalised
    confidence), and its `arousal`, read from all the model's probabilities, so that a choice of
    classes does not move it."""
    level = arousal(probabilities)
    chosen = over_classes(dict(probabilities), classes)
    emotion = max(chosen, key=chosen.get)
    return {"emotion": emotion, "confidence": round(chosen[emotion], 6), "uncertain": bool(chosen[emotion] < uncertain_below),
            "arousal": None if level is None else round(level, 6),
            "probabilities": {k: round(v, 6) for k, v in chosen.items()}}


class TopEmotion:
    """The most probable emotion of anything with `probabilities`, its probability, and how aroused
    the voice sounds. Read over chosen classes (`Analysis.over_classes`), `all_probabilities` keeps the
    model's over all its classes, which arousal is read from, as `judged` reads it."""

    probabilities: Mapping[str, float]
    all_probabilities: Mapping[str, float] | None = None

    @property
    def emotion(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def confidence(self) -> float:
        return self.probabilities[self.emotion]

    @property
    def arousal(self) -> float | None:
        return arousal(self.all_probabilities if self.all_probabilities is not None else self.probabilities)


@dataclass(frozen=True)
class Segment(TopEmotion):
    """One stretch of speech and what the model heard in it."""

    start_s: float
    end_s: float
    probabilities: Mapping[str, float]
    uncertain: bool
    speaker: str = ""  # "S1", "S2", … in order of first appearance, when voices were told apart
    all_probabilities: Mapping[str, float] | None = None  # read over chosen classes: the model's over all

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def weighted_probabilities(segments: Sequence[Segment], labels: Sequence[str], over_all: bool = False) -> dict[str, float]:
    """The duration-weighted mean of the segments' probabilities (`over_all`: of their
    `all_probabilities`, the model's over all its classes, where they were read over chosen ones)."""
    weights = np.array([s.duration_s for s in segments])
    rows = np.array([[(s.all_probabilities if over_all else s.probabilities)[label] for label in labels]
                     for s in segments])
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


@dataclass(frozen=True)
class SpeakerSummary(TopEmotion):
    """One speaker of a recording: how long they spoke and how."""

    speaker: str
    speech_s: float
    share: float  # of the recording's speaking time
    probabilities: Mapping[str, float]  # duration-weighted over their segments
    shares: Mapping[str, float]  # their speaking time by top emotion (`speaking_time_shares`)
    uncertain: bool
    all_probabilities: Mapping[str, float] | None = None  # read over chosen classes: the model's over all


def speaker_summaries(segments: Sequence[Segment], labels: Sequence[str], uncertain_below: float
                      ) -> list[SpeakerSummary]:
    """Per speaker, in order of first appearance: speaking time, share, emotion mix and summary."""
    total = sum(s.duration_s for s in segments)
    out = []
    for speaker in dict.fromkeys(s.speaker for s in segments):
        theirs = [s for s in segments if s.speaker == speaker]
        speech_s = sum(s.duration_s for s in theirs)
        every = None  # segments read over chosen classes: their speaker's mean over all, then over those
        if theirs[0].all_probabilities is None:
            probabilities = weighted_probabilities(theirs, labels)
        else:
            every = weighted_probabilities(theirs, list(theirs[0].all_probabilities), over_all=True)
            probabilities = over_classes(every, tuple(labels))
        out.append(SpeakerSummary(speaker, speech_s, speech_s / total if total else 0.0, probabilities,
                                  speaking_time_shares(theirs, labels),
                                  max(probabilities.values()) < uncertain_below, every))
    return out


def no_speech_error(audio: Audio) -> NoVoiceActivityError:
    return NoVoiceActivityError(audio.duration_s, audio.loudest_dbfs)


@dataclass(frozen=True)
class Analysis(TopEmotion):
    """Everything one prediction computed, for display: the app draws its plots from this."""

    audio: Audio
    window_times_s: np.ndarray  # start of each window
    window_probabilities: np.ndarray  # (n_windows, n_labels)
    features: np.ndarray  # (n_windows, n_mfcc, n_frames), before normalisation
    labels: tuple[str, ...]
    uncertain_below: float = 0.0  # calibrated confidence under which the model is more often wrong
    adaptation: str = ""  # what a voice profile did: "" without one, else a sentence for the user
    # The speech segments, when analysed by utterance (None: fixed windows over the whole audio).
    segments: tuple[Segment, ...] | None = None
    # The detector's speech regions (the segments are these joined into utterances), for display.
    speech_regions: tuple[tuple[float, float], ...] | None = None
    # Read over chosen classes (`over_classes`): the mean over all the model's classes (None without speech).
    all_probabilities: Mapping[str, float] | None = None

    @property
    def adaptation_refused(self) -> bool:
        """Whether a reading asked for could not be adapted (a profile of another model's, a recording
        too short to be read against itself): every such sentence says "not adapted" and why."""
        return "not adapted" in self.adaptation.lower()

    @property
    def probabilities(self) -> dict[str, float]:
        """The duration-weighted mean over the speech segments (raises `NoVoiceActivityError` when
        there are none), or the mean over the fixed windows; read over chosen classes, that mean over
        all the model's classes renormalised over them (as `ser predict --classes`)."""
        if self.all_probabilities is not None:
            return over_classes(dict(self.all_probabilities), self.labels)
        if self.segments is not None:
            if not self.segments:
                raise no_speech_error(self.audio)
            return weighted_probabilities(self.segments, self.labels)
        mean = self.window_probabilities.mean(axis=0)
        return {label: float(p) for label, p in zip(self.labels, mean)}

    @property
    def is_uncertain(self) -> bool:
        return self.confidence < self.uncertain_below

    @property
    def warnings(self) -> tuple[str, ...]:
        """What a user is warned of: the input's warnings, and why a reading asked for was not adapted
        (`adaptation_refused`), as `ser predict` prints them and the Ray engine's rows hold them."""
        return (*self.audio.warnings, *((self.adaptation,) if self.adaptation_refused else ()))

    @property
    def voices(self) -> tuple[SpeakerSummary, ...]:
        """Each speaker's summary (`speaker_summaries`) where two or more voices were told apart, else
        none: the mean over everyone in a conversation describes no one, so `ser predict` and the API
        answer per speaker beside it, as the app does."""
        if not self.segments or len({s.speaker for s in self.segments}) < 2:
            return ()
        return tuple(speaker_summaries(self.segments, self.labels, self.uncertain_below))

    def over_classes(self, classes: Sequence[str] | str | None) -> Analysis:
        """This analysis read over `classes` only, the emotions an application's recordings can hold
        (all the model's when None or all of them), as `ser predict --classes` and the API's `classes`
        read: the file, each segment, each window and each speaker's probabilities renormalised over
        them, each emotion and its uncertainty judged among them; arousal still read from all the
        model's classes, so that the choice does not move it. In languages the model never heard,
        naming the emotions a corpus has lifts UAR the most of any reading (docs/evaluation.md). Of an
        analysis over all the model's classes."""
        if isinstance(classes, str):
            classes = named_classes(classes)
        if not classes or set(classes) >= set(self.labels):
            return self
        check_classes(classes, self.labels)
        chosen_set = set(classes)
        keep = tuple(label for label in self.labels if label in chosen_set)
        columns = [self.labels.index(label) for label in keep]
        windows = self.window_probabilities[:, columns]
        windows = windows / np.maximum(windows.sum(axis=1, keepdims=True), np.finfo(np.float64).tiny)
        segments = None
        if self.segments is not None:
            segments = []
            for s in self.segments:
                chosen = over_classes(dict(s.probabilities), keep)
                segments.append(replace(s, probabilities=chosen, all_probabilities=s.probabilities,
                                        uncertain=max(chosen.values()) < self.uncertain_below))
            segments = tuple(segments)
        every = None if self.segments == () else self.probabilities  # no speech: nothing to keep
        return replace(self, labels=keep, window_probabilities=windows, segments=segments, all_probabilities=every)


def speaker_rows(voices: Sequence[SpeakerSummary], classes: tuple[str, ...] | None, uncertain_below: float
                 ) -> list[dict]:
    """What `ser predict --json` and the API answer per speaker (`Analysis.voices`): speech in s, share
    of the speaking time, and their duration-weighted reading judged as a file's is (`judged`)."""
    return [{"speaker": v.speaker, "speech_s": round(v.speech_s, 3), "share": round(v.share, 4),
             **judged(v.probabilities, classes, uncertain_below)} for v in voices]


def segment_rows(file: str, analysis, classes: tuple[str, ...] | None = None) -> list[dict]:
    """One dict per speech segment: what `--segments` prints, and what `ser serve` answers; with
    `classes`, each segment judged over those (`judged`, as `--classes`)."""
    return [{"file": file, "segment": i, "start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3),
             "speaker": s.speaker, **judged(s.probabilities, classes, analysis.uncertain_below)}
            for i, s in enumerate(analysis.segments, start=1)]
