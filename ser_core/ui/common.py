"""What every page shares: the model picker and the served model, cached analyses, model
directories, and the small formatting helpers the views use."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from ..errors import ModelError, SerError
from ..frontend.features import FeatureParams
from ..serving.inference import METADATA_FILE, SerModel, load_model
from ..serving.profile import VoiceProfile
from ..serving.results import Analysis
from ..serving.segments import DEFAULT_SPEAKERS, SpeakerOptions
from ..serving.shipped import MODELS_ROOT, resolve_model

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
# What the browser's audio player is told each upload is; a wrong type can leave it silent.
AUDIO_MIME_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "opus": "audio/ogg",
                    "mp3": "audio/mpeg", "m4a": "audio/mp4", "webm": "audio/webm"}
UPLOAD_TYPES = list(AUDIO_MIME_TYPES)
SERVED_KEY = "served-model"  # the picker's choice, kept while pages without the picker are shown
PICKER_KEY = "model-picker"


# --- model directories ----------------------------------------------------------------------------


def resolve_model_dir(path: Path) -> Path:
    """A model directory, through `models/default`'s symlink, or through a pointer file holding the
    directory's name (what a checkout without symlinks makes of the link)."""
    if path.is_file() and path.stat().st_size < 256:
        return (path.parent / path.read_text().strip()).resolve()
    return path.resolve()


def model_directory() -> Path:
    """The default model by the rule of every entry point (`ser_core.serving.shipped`: SER_MODEL as a name or
    a directory, else the shipped default); where none is found, the path looked at, for the page to say so."""
    try:
        return resolve_model()
    except ModelError:
        return Path(os.environ.get("SER_MODEL") or MODELS_ROOT / "default")


def models_root() -> Path:
    """Where the pages look for model directories: SER_MODELS_DIR, else the shipped models."""
    return Path(os.environ.get("SER_MODELS_DIR", MODELS_ROOT))


def model_directories(required_file: str) -> list[Path]:
    """Directories under `models_root()` holding `required_file` (each once, however many names
    point at it), plus the default model's."""
    root = models_root()
    found: dict[Path, Path] = {}
    for path in sorted(root.glob(f"*/{required_file}")) if root.is_dir() else []:
        found.setdefault(path.parent.resolve(), path.parent.resolve())
    default = resolve_model_dir(model_directory())
    if (default / required_file).is_file():
        found.setdefault(default, default)
    return list(found.values())


def model_label(directory: Path) -> str:
    return f"{directory.name} (default)" if directory == resolve_model_dir(model_directory()) else directory.name


def choose_model_directory(required_file: str, key: str) -> Path | None:
    """A model picker, the default model preselected; None (after saying why) when there is none."""
    directories = model_directories(required_file)
    if not directories:
        st.info(f"No model directory with {required_file} yet under {models_root()}. Train one with "
                "`ser train` (see the README); its test results appear here.")
        return None
    default = resolve_model_dir(model_directory())
    index = next((i for i, d in enumerate(directories) if d == default), 0)
    return st.selectbox("Model", directories, index=index, key=key, format_func=model_label)


# --- the served model -----------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the model (once per server)…", max_entries=8)
def warm_model(directory: str) -> SerModel:
    """One model per directory and process, shared by every session: `SerModel` serialises its
    forward passes, and the voice activity detector's session is thread-safe."""
    model = load_model(directory)
    model.warm_up()
    return model


def picked_directory() -> Path:
    """The sidebar's model picker (every directory under models/ with metadata.json); the choice
    holds on every page that serves a model, and across the pages that do not."""
    default = str(resolve_model_dir(model_directory()))
    options = [str(d) for d in model_directories(METADATA_FILE)] or [default]
    chosen = st.session_state.get(SERVED_KEY, default)
    if st.session_state.get(PICKER_KEY) not in options:  # first visit, or back from another page
        st.session_state[PICKER_KEY] = chosen if chosen in options else (default if default in options else options[0])
    chosen = st.sidebar.selectbox("Model", options, key=PICKER_KEY, format_func=lambda d: model_label(Path(d)),
                                  help="Every model directory under models/; the default is preselected.")
    st.session_state[SERVED_KEY] = chosen
    return Path(chosen)


def served_model() -> SerModel | None:
    """The model picked in the sidebar, or None after telling the user why there is none."""
    try:
        return warm_model(str(picked_directory()))
    except SerError as error:
        st.error(f"No model can be served: {error}")
        st.info("Train one with `ser train` (see the README) or point SER_MODEL at a model directory.")
        return None


# --- analysing audio ------------------------------------------------------------------------------


# --- the voice profile (My voice page): this session's only, never stored on the server ------------

PROFILE_KEY = "voice-profile"  # the profile's JSON text
USE_PROFILE_KEY = "use-voice-profile"


def voice_profile() -> VoiceProfile | None:
    """This session's voice profile when the sidebar switch (drawn here: call once per page) says to
    use it."""
    text = st.session_state.get(PROFILE_KEY)
    if text is None:
        return None
    st.session_state.setdefault(USE_PROFILE_KEY, True)
    use = st.sidebar.toggle("Use my voice profile", key=USE_PROFILE_KEY,
                            help="Read predictions relative to the voice recorded on the My voice page. "
                                 "Switch off to compare with the unadapted prediction.")
    return VoiceProfile.from_json(text) if use else None


SPEAKER_ADAPTATION_KEY = "speaker-adaptation"


def speaker_options() -> SpeakerOptions:
    """The sidebar switch (drawn here: call once per page) for reading each speaker of a recording
    against their own voice in it."""
    adapt = st.sidebar.toggle("Adapt to each speaker's voice", value=False, key=SPEAKER_ADAPTATION_KEY,
                              help="Read each speaker who talks long enough against their own voice in the "
                                   "recording (your voice profile still goes to the voice nearest to it). Off by "
                                   "default: on validation conversations it helped a voice alone, and hurt where "
                                   "voices were mixed up.")
    return SpeakerOptions(adapt=adapt)


@st.cache_data(max_entries=32, show_spinner=False)
def _analyze_cached(content_sha256: str, model_dir: str, profile_json: str | None, speaker_count: int | None,
                    adapt_to_speakers: bool, _audio: bytes) -> Analysis:
    """Keyed on the content hash, the model, the voice profile and the speaker options: the same
    recording is analysed once per setting. The bytes themselves are left out of the key (leading
    underscore) so they are not hashed twice."""
    profile = VoiceProfile.from_json(profile_json) if profile_json else None
    return warm_model(model_dir).analyze(_audio, profile=profile,
                                         speakers=SpeakerOptions(speaker_count, adapt_to_speakers))


def analyze(model: SerModel, audio: bytes, profile: VoiceProfile | None = None,
            speakers: SpeakerOptions = DEFAULT_SPEAKERS) -> Analysis:
    """Bytes (any supported format) → `Analysis` with `model` (and the voice profile); raises `SerError`."""
    return _analyze_cached(hashlib.sha256(audio).hexdigest(), str(model.directory),
                           profile.to_json() if profile else None, speakers.count, speakers.adapt, audio)


@dataclass(frozen=True)
class Result:
    """One input's outcome: an analysis, or the message saying why there is none."""

    name: str
    audio: bytes
    analysis: Analysis | None
    error: str | None


def analyze_named(model: SerModel, name: str, audio: bytes, profile: VoiceProfile | None = None,
                  speakers: SpeakerOptions = DEFAULT_SPEAKERS) -> Result:
    try:
        return Result(name, audio, analyze(model, audio, profile, speakers), None)
    except SerError as error:
        return Result(name, audio, None, str(error))


# --- formatting -----------------------------------------------------------------------------------


def audio_mime_type(name: str) -> str:
    """From the file name; recordings from `st.audio_input` are WAV."""
    return AUDIO_MIME_TYPES.get(Path(name).suffix.lower().lstrip("."), "audio/wav")


def feature_name(params: FeatureParams | dict) -> str:
    """'25 MFCC', '64 log-mel bands' or '80 Whisper log-mel bands', from `FeatureParams` or a
    metadata.json `feature_params`."""
    values = params.to_dict() if isinstance(params, FeatureParams) else params
    kind = values.get("kind", "mfcc")
    if kind == "mfcc":
        return f"{values['n_mfcc']} MFCC"
    return f"{values['n_mels']} {'Whisper ' if kind == 'whisper' else ''}log-mel bands"


def headline(emotion: str, confidence: float, uncertain: bool) -> str:
    """'Angry · 81%', or 'Uncertain (angry? 34%)' under the model's calibrated uncertainty threshold."""
    if uncertain:
        return f"Uncertain ({emotion}? {confidence:.0%})"
    return f"{emotion.capitalize()} · {confidence:.0%}"


def uncertainty_note(uncertain_below: float) -> str:
    return (f"Below {uncertain_below:.0%} confidence this model was wrong more often than right on its "
            "validation clips, so it names no emotion.")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def read_json(path: Path) -> dict | None:
    """A model file's contents; None when it is missing, or after an `st.error` when it is unreadable."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        st.error(f"{path} cannot be read: {error}")
        return None


def heard_languages(metadata: dict | None) -> list[str]:
    """The languages a model's training clips were spoken in (from metadata.json), in `LANGUAGES` order."""
    from ..training.corpora import languages_of

    return languages_of(((metadata or {}).get("data", {}).get("train", {}).get("per_corpus", {})))


def data_description(metadata: dict | None) -> str:
    """'RAVDESS + TESS, 11,550 clips (train 8,000 / val 1,000 / test 2,550)' from metadata.json."""
    data = (metadata or {}).get("data")
    if not data:
        return "not recorded"
    corpora = sorted({corpus for split in data.values() for corpus in split.get("per_corpus", {})})
    total = sum(split["clips"] for split in data.values())
    splits = " / ".join(f"{name} {split['clips']:,}" for name, split in data.items())
    return f"{' + '.join(corpora)}, {total:,} clips ({splits})"
