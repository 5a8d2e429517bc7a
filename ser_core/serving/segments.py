"""Long recordings by utterance: voice activity detection finds the speech, each speech segment is
classified on its own, and the clip's answer is the duration-weighted mean over speech only.

The model was trained on whole clips: speech that starts a little way into the window, after the
recording's own quiet, and ends before the window does (zero-padded). So a segment is heard the same
way: from `CONTEXT_BEFORE_S` before its speech to `CONTEXT_AFTER_S` after it, its windows starting
there (a short one zero-padded at the end). Any other segment's speech in that stretch is silenced, so
that no neighbouring utterance speaks into it, and so is any 50 ms louder than `CONTEXT_MAX_DBFS`
(noise, music): only quiet room tone stays. Chosen on the validation recording of bench/segments.py
(191 validation clips between room noise, loud noise and music; per-clip UAR on the detector's
segments; before/after in s), with the default model, regions cut where their voice changes: 0/0
73.2; 0.2/0.3 79.6; 0.35/0 77.5; 0.35/0.3 81.4; 0.5/0.3 82.2; and on validation conversations (per-turn
UAR) 0.35/0.3 80.7 against 77.7 for 0.5/0.3: the best mean of the two is chosen (bench/results/segments.md).
With the previous default (emo-whisper-ens), a segment
centred in a window filled with its surroundings, as before, scored 70.1, and the same clips cut at
their speech and classified alone 75.9 against 80.7 as whole files: the rest of the gap to files is
mostly the corpora's own silence around each sentence, which a recording made of them does not hold.
The one utterance of a recording no longer than a window is heard as recorded, surroundings and all.
A model may name an utterance reader (`inference.UTTERANCES_FIELD`): heads also taught their training
clips cut at their speech (`augment.cut_at_speech`), which read every utterance cut out of a longer
recording, while a file that is one utterance stays with the model (`reader_of`; the default's choice:
docs/models.md). A segment longer than a window is covered by
windows every `window_hop_s` (plus one aligned to its end), and its probabilities are their mean.
Pauses, music and noise are never classified on their own: a segment's answer is the recording's
only answer for that stretch of time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import ConfigError
from ..frontend.features import FeatureParams, extract_many
from ..frontend.vad import DEFAULT_VAD, SileroVad, VadParams, find_regions_and_turns, utterances
from ..io.audio import Audio
from ..io.levels import frame_power, power_db
from .results import Analysis, Segment, listed

if TYPE_CHECKING:
    from .inference import SerModel
    from .profile import VoiceProfile

CONTEXT_BEFORE_S = 0.35  # of the recording heard before a segment's speech (the module docstring says why)
CONTEXT_AFTER_S = 0.3  # and after it
CONTEXT_MAX_DBFS = -45.0  # around a segment, louder 50 ms frames are silenced (-35: 75.2 vs 76.2, emo-cnn)
CONTEXT_FRAME_S = 0.05
# Neighbouring pieces of speech of one voice closer than this (between their padded edges) are one
# utterance; pieces of different voices never are. Chosen on validation speakers' synthetic
# conversations (bench/segments.py, joining grid): of the gaps that bridge a 0.5 s pause inside a
# sentence, the best per-turn UAR (73.6; 71.0 joining any voice under 0.45 s as before; 74.2
# joining nothing, which would cut sentences at such pauses: every turn there is another emotion).
SAME_VOICE_GAP_S = 0.45
# With speaker adaptation on, a speaker who spoke at least this long in a recording is read against
# their own voice there (`SerModel.predict_against`), shifted by `OWN_VOICE_STRENGTH × n / (n +
# OWN_VOICE_PRIOR_WINDOWS)` of the way (n: their windows), `OWN_VOICE_REFERENCE_WEIGHT` of the reading
# the model's reference head's. Chosen on validation conversations (bench/segments.py, adaptation grid,
# bench/results/segments.md), their turns read by the default's utterance reader: per-turn UAR 79.5
# against 80.8 without (strength 1.0: 79.4); off by default, as it costs the reader. (The default read
# its turns itself before: 78.2 adapted against 76.7.)
MIN_SPEAKER_SPEECH_S = 20.0
OWN_VOICE_PRIOR_WINDOWS = 16.0
OWN_VOICE_STRENGTH = 0.75
# Not the share the default's reference head has with a voice profile or a batch (chosen on leave one
# language out, whole clips): in conversations the head, trained on whole clips each read against its
# speaker, lost at every share tried (with the reader: 0.3: 78.5, alone: 73.5, against 79.5 without it).
OWN_VOICE_REFERENCE_WEIGHT = 0.0
# Read against the whole recording (`SpeakerOptions.recording`): every utterance against the mean of
# the recording's speech, all its voices together, exactly as a batch of files is read against its
# own mean (`SerModel.predict_against` with the model's own settings and reference head), once it
# holds this much speech. For a language the model never heard: measured on leave-one-language-out
# conversations (bench/lolo_conversations.py) it gains more than each voice read against itself, and
# on validation conversations of languages it heard it costs (docs/benchmarks.md).
RECORDING_MIN_SPEECH_S = 8.0


@dataclass(frozen=True)
class SpeakerOptions:
    """How the voices in a recording are used."""

    count: int | None = None  # how many speakers there are, when the user knows (else found by clustering)
    # Each speaker with enough speech read against their own voice in the recording: off by default,
    # as validation conversations chose (see `MIN_SPEAKER_SPEECH_S`).
    adapt: bool = False
    # Every utterance read against the whole recording's speech (`RECORDING_MIN_SPEECH_S`): for a
    # language the model never heard; off by default.
    recording: bool = False

    def __post_init__(self):
        if self.adapt and self.recording:
            raise ConfigError("Read each speaker against their own voice or the whole recording against itself, "
                              "not both.")


DEFAULT_SPEAKERS = SpeakerOptions()


# A count far beyond any conversation is a typo (22 for 2) that would leave every utterance a speaker
# of its own; the app offers up to 8.
MAX_SPEAKERS = 20


def speaker_count(text: str) -> int:
    """How many speakers a user says a recording holds (`ser predict --speakers`, the API's
    `speakers=`), as a whole number from 1 to `MAX_SPEAKERS`."""
    try:
        count = int(str(text).strip())
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_SPEAKERS:
        raise ConfigError(f"The number of speakers must be a whole number from 1 to {MAX_SPEAKERS}, not {text!r}.")
    return count


def pieces_of(audios: Sequence[Audio], heard: Sequence[tuple[list[tuple[float, float]], list[list[tuple[float, float]]]]],
              params: VadParams = DEFAULT_VAD, speakers: SpeakerOptions = DEFAULT_SPEAKERS
              ) -> list[list[tuple[float, float]]]:
    """Per recording, given its speech regions and their pieces cut at turn pauses (`heard`, from
    `find_regions_and_turns`): the pieces of speech its voices are told apart on. A region is cut where
    its voice changes (`voice_parts`: turns that follow within the detector's pause share a region),
    then joined across the shortest pauses and short bursts absorbed (`utterances`, with `params`)."""
    return [utterances(voice_parts(audio, regions, cut, speakers), params) for audio, (regions, cut) in zip(audios, heard)]


def voices_of(audios: Sequence[Audio], heard: Sequence[tuple[list[tuple[float, float]], list[list[tuple[float, float]]]]],
              params: VadParams = DEFAULT_VAD, speakers: SpeakerOptions = DEFAULT_SPEAKERS
              ) -> tuple[list[list[tuple[float, float]]], list[list[str]]]:
    """Per recording, its pieces of speech (`pieces_of`) and who spoke each (`name_speakers`): the
    speaker step. A piece is printed to cut where the voice changes and again to name its voice; each
    stretch's print is read once for both (`speakers.prints_remembered`)."""
    from .speakers import prints_remembered

    with prints_remembered():
        pieces = pieces_of(audios, heard, params, speakers)
        return pieces, name_speakers(audios, pieces, speakers)


def voice_parts(audio: Audio, regions: list[tuple[float, float]], cut: list[list[tuple[float, float]]],
                speakers: SpeakerOptions = DEFAULT_SPEAKERS) -> list[tuple[float, float]]:
    """A recording's speech `regions`, each cut where its voice changes between its pieces `cut` at turn
    pauses, and inside long parts where it changes without one (`speakers.split_at_voice_changes`); the
    regions as they are for one voice (as the user says), without the speaker model, or where no region
    has a turn pause at all (a file that is one utterance: what the benchmarks chose the cuts on)."""
    from .speakers import encoder_installed, split_at_voice_changes

    if speakers.count == 1 or all(len(pieces) == 1 for pieces in cut) or not encoder_installed():
        return regions
    return split_at_voice_changes(audio.samples, audio.sample_rate, cut)


def find_utterances(audios: Sequence[Audio], params: VadParams = DEFAULT_VAD, vad: SileroVad | None = None,
                    speakers: SpeakerOptions = DEFAULT_SPEAKERS
                    ) -> tuple[list[list[tuple[float, float]]], list[list[tuple[float, float]]], list[list[str]]]:
    """Per recording: its speech regions, its utterances [(start_s, end_s)] and who spoke each.

    The pieces of speech are told apart by voice (`voices_of`); then neighbouring pieces of one voice
    less than `SAME_VOICE_GAP_S` apart are one utterance. Joining only within a voice keeps a sentence
    whole across its pauses without running one speaker's turn into the next's."""
    heard = find_regions_and_turns(audios, params, vad)
    pieces, named = voices_of(audios, heard, params, speakers)
    joined = [join_same_voice(clip, names, params.max_segment_s) for clip, names in zip(pieces, named)]
    return [regions for regions, _ in heard], [spans for spans, _ in joined], [names for _, names in joined]


def find_speech(audios: Sequence[Audio], params: VadParams = DEFAULT_VAD, vad: SileroVad | None = None,
                speakers: SpeakerOptions = DEFAULT_SPEAKERS) -> list[list[tuple[float, float]]]:
    """Per recording, its utterances [(start_s, end_s)] (`find_utterances`)."""
    return find_utterances(audios, params, vad, speakers)[1]


def join_same_voice(spans: Sequence[tuple[float, float]], names: Sequence[str], max_segment_s: float,
                    gap_s: float | None = None) -> tuple[list[tuple[float, float]], list[str]]:
    """Neighbouring spans of one speaker less than `gap_s` (`SAME_VOICE_GAP_S`) apart joined, as long
    as the result is no longer than `max_segment_s` (the detector's limit for one segment)."""
    gap_s = SAME_VOICE_GAP_S if gap_s is None else gap_s
    out: list[tuple[float, float]] = []
    voices: list[str] = []
    for (a, b), name in zip(spans, names):
        if out and voices[-1] == name and a - out[-1][1] < gap_s and b - out[-1][0] <= max_segment_s:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
            voices.append(name)
    return out, voices


def analyze_segments(model: "SerModel", audios: Sequence[Audio], params: VadParams = DEFAULT_VAD,
                     vad: SileroVad | None = None, profile: "VoiceProfile | None" = None,
                     speakers: SpeakerOptions = DEFAULT_SPEAKERS) -> list["Analysis"]:
    """`model.analyze_many` by utterance: one `Analysis` per recording, with its `segments` (the
    utterances, each with its speaker) and its `speech_regions`. The windows it holds are the
    segments' windows (their starts in the recording's time)."""
    from .speakers import NOT_INSTALLED

    regions, spans, names = find_utterances(audios, params, vad, speakers)
    # "" is `name_speakers`'s answer without the speaker model: the user is told how to add it
    audios = [dataclasses.replace(audio, warnings=(*audio.warnings, NOT_INSTALLED)) if "" in voices else audio
              for audio, voices in zip(audios, names)]
    if speakers.count is not None:  # more voices asked for than there are utterances to hold them: said
        audios = [dataclasses.replace(audio, warnings=(
                      *audio.warnings, f"{speakers.count} speakers were asked for, and only {len(voices)} "
                                       f"utterance{'s' * (len(voices) != 1)} found: each is a voice of its own."))
                  if 0 < len(voices) < speakers.count else audio
                  for audio, voices in zip(audios, names)]
    return classify_segments(model, audios, spans, profile, regions, names, adapt_to_speakers=speakers.adapt,
                             adapt_to_recording=speakers.recording)


def heard_as_recorded(samples: np.ndarray, params: FeatureParams, spans: Sequence[tuple[float, float]]) -> bool:
    """One utterance in a recording no longer than a window: a file like the model's training clips,
    heard as recorded; nothing else speaks into it. bench/segments.py's `one_by_one` on its 200
    validation clips, emo-whisper (a one-off run): UAR 85.0 this way, 84.0 with the loud surroundings
    silenced."""
    return len(spans) == 1 and len(samples) <= params.window_samples


def reader_of(model: "SerModel", audio: Audio, spans: Sequence[tuple[float, float]]) -> "SerModel":
    """The model that reads a recording's utterances: the model's utterance reader (`inference.
    UTTERANCES_FIELD`) for utterances cut out of a longer recording, the model itself for a file that is
    one utterance heard as recorded, or when it names no reader."""
    reader = getattr(model, "utterance_reader", None)
    return model if reader is None or heard_as_recorded(audio.samples, model.params, spans) else reader


def segment_piece(samples: np.ndarray, params: FeatureParams, spans: Sequence[tuple[float, float]], index: int
                  ) -> tuple[np.ndarray, float]:
    """(the audio the model hears for segment `index`, where it starts in s): the recording from
    `CONTEXT_BEFORE_S` before the segment to `CONTEXT_AFTER_S` after it (as far as the recording
    goes), the other segments' speech and any loud surroundings silenced."""
    sr = params.sample_rate
    a, b = round(spans[index][0] * sr), round(spans[index][1] * sr)
    if heard_as_recorded(samples, params, spans):
        return samples, 0.0
    start = max(0, a - round(CONTEXT_BEFORE_S * sr))
    piece = samples[start : min(len(samples), b + round(CONTEXT_AFTER_S * sr))].copy()
    for other, (c, d) in enumerate(spans):
        if other != index:
            piece[max(0, round(c * sr) - start) : max(0, round(d * sr) - start)] = 0.0
    frame = round(CONTEXT_FRAME_S * sr)
    n = -(-len(piece) // frame)
    padded = np.zeros(n * frame, piece.dtype)
    padded[: len(piece)] = piece
    loud = power_db(frame_power(padded, frame)) > CONTEXT_MAX_DBFS
    mask = np.repeat(loud, frame)[: len(piece)]
    mask[a - start : b - start] = False  # the segment itself is never touched
    piece[mask] = 0.0
    return piece, start / sr


def name_speakers(audios: Sequence[Audio], spans: Sequence[Sequence[tuple[float, float]]],
                  options: SpeakerOptions = DEFAULT_SPEAKERS) -> list[list[str]]:
    """Per recording, who spoke each segment ("S1", … by first appearance; `ser_core.serving.speakers`). A
    recording of one segment, or one the user says holds one voice, is not embedded at all. Without
    the speaker encoder's package (an install from the wheel alone: it is installed with --no-deps),
    voices are not told apart (speaker "") unless the user asked for a number of speakers."""
    from .speakers import encoder_installed, speakers_of

    names = []
    for audio, clip in zip(audios, spans):
        if len(clip) <= 1 or options.count == 1:
            names.append(["S1"] * len(clip))
        elif options.count is None and not encoder_installed():
            names.append([""] * len(clip))
        else:
            names.append(speakers_of(audio.samples, audio.sample_rate, clip, options.count))
    return names


def classify_segments(model: "SerModel", audios: Sequence[Audio], spans: Sequence[Sequence[tuple[float, float]]],
                      profile: "VoiceProfile | None" = None,
                      regions: Sequence[Sequence[tuple[float, float]]] | None = None,
                      speakers: Sequence[Sequence[str]] | None = None, adapt_to_speakers: bool = False,
                      adapt_to_recording: bool = False) -> list["Analysis"]:
    """Each recording's given segments [(start_s, end_s)] through the model that reads them (`reader_of`),
    one batch per reader (read relative to the speaker's voice with a fitting `profile`); `regions`,
    the detector's speech regions, are kept on each `Analysis` for display (the segments themselves
    when not given). `speakers` names each segment's speaker; with `adapt_to_speakers`, each speaker
    with enough speech is read against their own voice in the recording (`predict_by_speaker`); with
    `adapt_to_recording`, every segment against the whole recording's speech."""
    speakers = speakers if speakers is not None else [[""] * len(clip) for clip in spans]
    regions = spans if regions is None else regions
    readers = [reader_of(model, audio, clip) for audio, clip in zip(audios, spans)]
    analyses: list["Analysis | None"] = [None] * len(audios)
    for reader in {id(r): r for r in readers}.values():
        group = [i for i, r in enumerate(readers) if r is reader]
        pick = lambda values: [values[i] for i in group]
        for i, analysis in zip(group, _classify(reader, pick(audios), pick(spans), profile, pick(regions), pick(speakers),
                                                adapt_to_speakers, adapt_to_recording)):
            analyses[i] = analysis
    return analyses


def _classify(model: "SerModel", audios: Sequence[Audio], spans: Sequence[Sequence[tuple[float, float]]],
              profile: "VoiceProfile | None", regions: Sequence[Sequence[tuple[float, float]]],
              speakers: Sequence[Sequence[str]], adapt_to_speakers: bool, adapt_to_recording: bool = False
              ) -> list["Analysis"]:
    """`classify_segments` for recordings that one model reads."""
    pieces = [segment_piece(audio.samples, model.params, clip, i) for audio, clip in zip(audios, spans)
              for i in range(len(clip))]
    # Windows from the piece's own start: the 0.5 s offset skips leading silence in whole clips, and
    # a piece starts with the context chosen for it.
    extracted = extract_many([samples for samples, _ in pieces], dataclasses.replace(model.params, offset_s=0.0))
    counts = [len(features) for _, features in extracted]
    features = (np.concatenate([f for _, f in extracted]) if extracted
                else np.zeros((0, *model.params.input_shape), np.float32))
    window_bounds = np.cumsum([0, *counts])
    if not len(features):
        probabilities, adaptations = np.zeros((0, len(model.labels))), [""] * len(audios)
    elif adapt_to_speakers or adapt_to_recording:
        probabilities, adaptations = predict_by_speaker(model, features, window_bounds, spans, speakers, profile,
                                                        whole_recording=adapt_to_recording)
    else:
        probabilities, adaptation = model.predict_windows(features, profile)
        adaptations = [adaptation] * len(audios)

    analyses, piece = [], 0
    for audio, clip, heard, names, adaptation in zip(audios, spans, regions, speakers, adaptations):
        segments, times, first_window = [], [], window_bounds[piece]
        for (start_s, end_s), name in zip(clip, names):
            a, b = window_bounds[piece], window_bounds[piece + 1]
            mean = probabilities[a:b].mean(axis=0)
            segments.append(Segment(start_s, end_s, {label: float(p) for label, p in zip(model.labels, mean)},
                                    bool(mean.max() < model.uncertain_below), name))
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
            speech_regions=tuple(heard),
        ))
    return analyses


def own_voice_settings(model: "SerModel") -> tuple[float, float]:
    """(prior windows, strength) of a profile of a speaker's own voice in a recording: a model trained
    on speaker-normalised voices needs them normalised fully (its own settings); any other gets the
    shrinkage chosen on validation conversations."""
    if getattr(model, "speaker_normalised", False):
        return model.adaptation_settings
    return OWN_VOICE_PRIOR_WINDOWS, OWN_VOICE_STRENGTH


def predict_by_speaker(model: "SerModel", features: np.ndarray, window_bounds: np.ndarray,
                       spans: Sequence[Sequence[tuple[float, float]]], speakers: Sequence[Sequence[str]],
                       profile: "VoiceProfile | None" = None, whole_recording: bool = False
                       ) -> tuple[np.ndarray, list[str]]:
    """(probabilities of every window, what adaptation did per recording): each speaker's windows read
    against a voice profile of that speaker's own utterances in the recording (`own_voice_settings`)
    when they spoke for `MIN_SPEAKER_SPEECH_S` or more; the user's `profile` instead for the speaker
    whose voice is nearest to it. With `whole_recording`, the recording's voices are read as one: every
    window against the mean of all of them, from `RECORDING_MIN_SPEECH_S` of speech (the user's
    profile, if any, for all of them)."""
    from threadpoolctl import threadpool_limits

    from .profile import profile_from_windows

    with threadpool_limits(limits=model.threads, user_api="blas"):
        cached = model.to_cached(features)
        representation = model.representation(cached)
        probabilities = np.zeros((len(cached), len(model.labels)))
        adaptations, piece = [], 0
        for clip, names in zip(spans, speakers):
            windows: dict[str, list[int]] = {}
            speech_s: dict[str, float] = {}
            for (start_s, end_s), name in zip(clip, names):
                name = "" if whole_recording else name
                windows.setdefault(name, []).extend(range(window_bounds[piece], window_bounds[piece + 1]))
                speech_s[name] = speech_s.get(name, 0.0) + end_s - start_s
                piece += 1
            users = None  # the speaker the user's profile describes: the one whose voice is nearest to it
            if profile is not None and profile.fits(model) and windows:
                users = min(windows, key=lambda n: float(np.linalg.norm(
                    representation[windows[n]].mean(axis=0) - profile.mean)))
            notes, brief = [], []  # brief: the voices heard too briefly to be read against themselves
            for name, rows in windows.items():
                if profile is not None and (name == users or users is None):
                    # The user's own profile (or the sentence saying why it cannot be used).
                    note = model.adaptation_note(profile)
                    notes.append(f"{name}: {note[0].lower()}{note[1:]}" if len(windows) > 1 else note)
                    probabilities[rows] = (model.predict_against(cached[rows], profile) if profile.fits(model)
                                           else model.predict_cached(cached[rows]))
                elif whole_recording:
                    if speech_s[name] >= RECORDING_MIN_SPEECH_S:
                        mean = profile_from_windows(model, representation[rows], clips=1)
                        probabilities[rows] = model.predict_against(cached[rows], mean)
                        notes.append(f"Read against this recording's own speech ({speech_s[name]:.0f} s, every "
                                     "voice in it; no labels used).")
                    else:
                        probabilities[rows] = model.predict_cached(cached[rows])
                        notes.append(f"Not adapted to the recording: it holds {speech_s[name]:.0f} s of speech, "
                                     f"{RECORDING_MIN_SPEECH_S:.0f} s are needed.")
                elif speech_s[name] >= MIN_SPEAKER_SPEECH_S:
                    own = profile_from_windows(model, representation[rows], clips=1)
                    probabilities[rows] = model.predict_against(cached[rows], own, own_voice_settings(model),
                                                                OWN_VOICE_REFERENCE_WEIGHT)
                    notes.append(f"{name} read against their own voice in this recording ({speech_s[name]:.0f} s).")
                else:
                    probabilities[rows] = model.predict_cached(cached[rows])
                    brief.append(name)
            if brief:  # said, so that an adaptation asked for is never silently not made
                notes.append(f"{listed(brief)} not adapted: {listed([f'{speech_s[n]:.0f}' for n in brief])} s of speech, "
                             f"{MIN_SPEAKER_SPEECH_S:.0f} s needed to read a voice against itself.")
            adaptations.append(" ".join(notes))
    return probabilities, adaptations
