"""A voice profile: what one speaker's ordinary voice looks like to a model, from a few unlabelled
recordings, so that predictions can be read relative to that voice rather than to the average one.

Much of what tells emotions apart is relative to the speaker: their pitch range, loudness and voice
quality. The profile holds the mean of the model's own per-window representation over the
speaker's speech (pooled encoder embeddings for encoder models, per-band log-mel means for the
spectrogram CNNs). Adapting moves that mean onto the training data's mean: each window is shifted
by `strength × n / (n + prior_windows) × (profile mean − training mean)`, where n is the number of
windows the profile saw. The shrinkage keeps a profile of a few seconds from moving much, and the
strength below 1 limits what a one-sided profile (all of it angry, say) can take away: such a profile
describes the emotion as much as the voice, which is why the app asks for speech in an everyday tone.
A model whose metadata names a reference head (`inference.REFERENCE_FIELD`) mixes that reading with the
head's, trained on speaker-normalised voices and reading them against the profile fully
(`SerModel.predict_against`).

Profiles are small JSON files. They hold no audio and nothing that could rebuild it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import numpy as np

from ..errors import SerError
from ..frontend.features import extract
from ..frontend.pitch import centred_frames, yin
from ..io.audio import DEFAULT_LIMITS, Audio, AudioLimits, AudioSource, load_audio
from ..io.levels import active_frames, active_level_dbfs, power_db, speech_seconds

PROFILE_VERSION = 1
MAX_PROFILE_SECONDS = 600.0  # ten minutes of a voice is plenty; a 2-hour file is refused, not averaged
MIN_SPEECH_SECONDS = 10.0  # what the app asks for at least; below it the profile is built, with a note
# Chosen on validation speakers (bench/compare_models.py, adaptation section).
PRIOR_WINDOWS = 4.0
STRENGTH = 0.75


class ProfileError(SerError):
    """A profile could not be built or read; predictions go on without it."""


def representation_id(model) -> str:
    """Which representation a profile describes: profiles are valid for every model sharing it."""
    front_end = getattr(model, "front_end", None)
    encoder = front_end["sha256"][:12] if front_end else "features"
    return f"{encoder}-{model.params.digest()}"


@dataclass(frozen=True)
class VoiceProfile:
    representation: str  # `representation_id` of the models it fits
    mean: np.ndarray  # mean per-window representation over the speaker's speech
    windows: int  # how many model windows it averaged
    clips: int
    seconds: float  # of audio given
    speech_seconds: float  # of it, frames that were speech (within 30 dB of the loudest, above -60 dBFS)
    level_dbfs: float  # active speech level
    pitch_hz: dict = field(default_factory=dict)  # 10th, 50th and 90th percentile of voiced f0
    notes: tuple[str, ...] = ()
    batch: bool = False  # the mean of a batch of files read together (`batch_profile`), not one voice

    def shift(self, model, prior_windows: float = PRIOR_WINDOWS, strength: float = STRENGTH) -> np.ndarray:
        """The representation offset to take off every window of this speaker."""
        weight = strength * self.windows / (self.windows + prior_windows)
        return weight * (self.mean - model.representation_mean)

    def to_json(self) -> str:
        values = asdict(self)
        values["mean"] = [round(float(v), 6) for v in self.mean]
        values["notes"] = list(self.notes)
        return json.dumps({"ser_voice_profile": PROFILE_VERSION, **values})

    @classmethod
    def from_json(cls, text: str | bytes) -> "VoiceProfile":
        """A profile file, checked: anything else is a `ProfileError` with a sentence saying why."""
        try:
            values = json.loads(text)
        except (ValueError, UnicodeDecodeError) as error:
            raise ProfileError("This is not a voice profile file (not valid JSON).") from error
        if not isinstance(values, dict) or values.pop("ser_voice_profile", None) != PROFILE_VERSION:
            raise ProfileError("This is not a voice profile file made by this version of ser.")
        try:
            mean = np.asarray(values.pop("mean"), dtype=np.float32)
            profile = cls(mean=mean, notes=tuple(values.pop("notes", ())), **values)
        except (KeyError, TypeError, ValueError) as error:
            raise ProfileError("The voice profile file is damaged (fields missing or of the wrong kind).") from error
        if mean.ndim != 1 or not np.all(np.isfinite(mean)) or profile.windows < 1:
            raise ProfileError("The voice profile file is damaged (its statistics are not usable).")
        return profile

    def fits(self, model) -> bool:
        return self.representation == representation_id(model) and len(self.mean) == len(model.representation_mean)


PITCH_FMIN, PITCH_FMAX = 60.0, 500.0  # Hz: the range of speaking voices
PITCH_FRAME, PITCH_HOP = 1024, 320  # 64 ms frames every 20 ms at 16 kHz


def pitch_percentiles(samples: np.ndarray, sr: int) -> dict:
    """f0 (YIN) over the loudest frames: a rough picture of the speaker's range, for display."""
    f0 = yin(samples, fmin=PITCH_FMIN, fmax=PITCH_FMAX, sr=sr, frame_length=PITCH_FRAME, hop_length=PITCH_HOP)
    level = power_db(np.square(centred_frames(samples, PITCH_FRAME, PITCH_HOP), dtype=np.float64).mean(axis=0))
    voiced = f0[active_frames(level, range_db=20.0) & (f0 > PITCH_FMIN) & (f0 < PITCH_FMAX)]
    if len(voiced) < 10:
        return {}
    return {name: round(float(np.percentile(voiced, q)), 1) for name, q in (("p10", 10), ("p50", 50), ("p90", 90))}


def build_profile(model, recordings: Sequence[AudioSource | Audio], limits: AudioLimits = DEFAULT_LIMITS) -> VoiceProfile:
    """A profile of one speaker from one or more recordings of their voice (any tone, no labels)."""
    if not recordings:
        raise ProfileError("A voice profile needs at least one recording of the voice.")
    audios = [r if isinstance(r, Audio) else load_audio(r, model.params.sample_rate, limits) for r in recordings]
    seconds = sum(len(a.samples) for a in audios) / model.params.sample_rate
    if seconds > MAX_PROFILE_SECONDS:
        raise ProfileError(f"{seconds / 60:.0f} minutes of audio is more than a voice profile needs: "
                           f"give at most {MAX_PROFILE_SECONDS / 60:.0f} minutes (10-30 seconds is enough).")
    sr = model.params.sample_rate
    representations = [model.representation(model.to_cached(extract(a.samples, model.params)[1])) for a in audios]
    stacked = np.concatenate(representations)
    speech = sum(speech_seconds(a.samples, sr) for a in audios)
    joined = np.concatenate([a.samples for a in audios])
    notes = []
    if speech < MIN_SPEECH_SECONDS:
        notes.append(f"Only {speech:.1f} s of speech was heard (in {seconds:.1f} s of audio); "
                     f"{MIN_SPEECH_SECONDS:g}-30 s of everyday speech works best. This profile is used, but it "
                     "describes the voice less surely: record again, speaking longer, to replace it.")
    return VoiceProfile(
        representation=representation_id(model),
        mean=stacked.mean(axis=0).astype(np.float32),
        windows=len(stacked),
        clips=len(audios),
        seconds=round(seconds, 2),
        speech_seconds=round(speech, 2),
        level_dbfs=round(float(active_level_dbfs(joined[None, :], sr)[0]), 1),
        pitch_hz=pitch_percentiles(joined, sr),
        notes=tuple(notes),
    )


def profile_from_windows(model, representations: np.ndarray, clips: int) -> VoiceProfile:
    """A profile from representations already computed (cached training or test windows): what the
    benchmarks and transductive batch adaptation use. Level and pitch are not known here."""
    return VoiceProfile(representation=representation_id(model), mean=representations.mean(axis=0).astype(np.float32),
                        windows=len(representations), clips=clips, seconds=0.0, speech_seconds=0.0, level_dbfs=float("nan"))


def mean_profile(model, recordings: Sequence[AudioSource | Audio], limits: AudioLimits = DEFAULT_LIMITS,
                 minimum: int = 1) -> VoiceProfile:
    """A profile of the mean of every window of these recordings, whatever their voices and emotions
    (transductive; no labels): what a batch of files, or one speaker's files, is read against. The
    windows are the whole files' fixed windows, as the benchmarks' batch reading takes them. Files that
    cannot be read, or in which the voice activity detector finds no speech (their noise would pull
    everyone's reading), are left out (their own analysis says why); fewer than `minimum` left is a
    `ProfileError`. One file at a time: only its windows' representations are kept."""
    from ..frontend.vad import find_regions

    representations = []
    for recording in recordings:
        try:
            audio = recording if isinstance(recording, Audio) else load_audio(recording, model.params.sample_rate, limits)
        except SerError:
            continue
        if find_regions([audio])[0]:
            representations.append(model.representation(model.to_cached(extract(audio.samples, model.params)[1])))
    if len(representations) < max(1, minimum):
        raise ProfileError("Reading files together needs at least two files in which speech is found." if minimum > 1
                           else "Speech is found in none of these files.")
    return profile_from_windows(model, np.concatenate(representations), len(representations))


def batch_profile(model, recordings: Sequence[AudioSource | Audio], limits: AudioLimits = DEFAULT_LIMITS) -> VoiceProfile:
    """What each file of a batch is read against when the files are read together (`ser predict --adapt
    batch`, the Upload page's switch, the API's `/v1/analyze/batch`): `mean_profile` of two files or
    more in which speech is found. It helps where the files share what the model has not heard (a
    language, a room) and hold a mix of emotions."""
    return replace(mean_profile(model, recordings, limits, minimum=2), batch=True)
