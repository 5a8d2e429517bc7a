"""What every page shares: the model picker and the served model, cached analyses, model
directories, and the small formatting helpers the views use."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

import streamlit as st

from ..errors import ModelError, NoSpeechError, SerError
from ..frontend.features import FeatureParams
from ..frontend.language import LanguageGuess, guess_analysis, heard_codes
from ..serving.inference import METADATA_FILE, SerModel, load_model
from ..serving.pool import PoolFull, app_pool
from ..serving.profile import VoiceProfile, batch_profile
from ..serving.results import Analysis
from ..serving.segments import DEFAULT_SPEAKERS, SpeakerOptions
from ..serving.shipped import MODELS_ROOT, follow_pointer, resolve_model

if TYPE_CHECKING:
    import plotly.graph_objects as go

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
# What the browser's audio player is told each upload is; a wrong type can leave it silent.
AUDIO_MIME_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "opus": "audio/ogg",
                    "mp3": "audio/mpeg", "m4a": "audio/mp4", "webm": "audio/webm"}
UPLOAD_TYPES = list(AUDIO_MIME_TYPES)
PICKER_KEY = "model-picker"


# --- model directories ----------------------------------------------------------------------------


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
    point at it), plus the default model's: the default first, then the speaker-independent models,
    then those tested on a random file split, each group by name."""
    root = models_root()
    found: dict[Path, Path] = {}
    for path in sorted(root.glob(f"*/{required_file}")) if root.is_dir() else []:
        found.setdefault(path.parent.resolve(), path.parent.resolve())
    default = follow_pointer(model_directory())
    if (default / required_file).is_file():
        found.setdefault(default, default)
    return sorted(found.values(), key=lambda d: (d != default, model_protocol(d) == "random", model_name(d)))


def model_metadata(directory: Path) -> dict:
    """A model directory's metadata.json ({} when it has none or it cannot be read)."""
    try:
        return json.loads((directory / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return {}


def model_protocol(directory: Path) -> str | None:
    return model_metadata(directory).get("protocol")


def model_name(directory: Path) -> str:
    """The name `ser predict --model` takes: a speaker-protocol model's directory without its
    "-speaker" (`emo-cnn` is `emo-cnn-speaker`), unless a directory of that name exists beside it."""
    short = directory.name.removesuffix("-speaker")
    return short if short == directory.name or not (directory.parent / short).exists() else directory.name


def model_label(directory: Path) -> str:
    name = model_name(directory)
    return f"{name} (default)" if directory == follow_pointer(model_directory()) else name


# How each architecture in metadata.json reads in the picker.
ARCHITECTURE_WORDS = {
    "whisper-head": "a small head",
    "whisper-linear": "a linear head",
    "seed-cnn": "the original project's CNN",
    "emo-cnn": "a compact CNN",
    "emo-tdnn": "a time-delay network (an experiment)",
}


def model_description(directory: Path) -> str:
    """One line from a model's metadata.json: what it hears with, what it learned from, and what its
    test protocol means for choosing it."""
    metadata = model_metadata(directory)
    architecture = metadata.get("architecture", "unknown architecture")
    head = (f"{len(metadata['members'])} heads averaged" if metadata.get("members")
            else ARCHITECTURE_WORDS.get(architecture, architecture))
    if (metadata.get("train_params") or {}).get("speaker_normalised"):
        head += " that reads each voice against its voice profile"
    front_end = metadata.get("front_end")
    if front_end:
        what = f"{front_end['encoder'].capitalize()} encoder + {head}"
    else:
        params = metadata.get("feature_params")
        what = f"light (no speech encoder): {head}" + (f" on {feature_name(params)}" if params else "")
    per_corpus = (metadata.get("data") or {}).get("train", {}).get("per_corpus", {})
    languages = heard_languages(metadata)
    spoken = ", ".join(languages) if len(languages) <= 2 else f"{len(languages)} languages"
    heard = (f"{len(per_corpus)} {'corpus' if len(per_corpus) == 1 else 'corpora'}" + (f" in {spoken}" if languages else "")
             if per_corpus else "training data not recorded")
    protocol = {"speaker": "tested on speakers it never heard",
                "random": "random file split: its test speakers were also in training (to compare with the "
                          "original project, not to choose)"}.get(metadata.get("protocol"), "test protocol not recorded")
    return f"{what}; {heard}; {protocol}."


def models_help(directories: list[Path]) -> str:
    """The picker's help: every model with its line, so that the list says which to choose."""
    return "Every model directory under models/, the default first:\n\n" + "\n".join(
        f"- **{model_label(d)}**: {model_description(d)}" for d in directories)


def choose_model_directory(required_file: str, key: str) -> Path | None:
    """A model picker, the model the sidebar serves preselected (the default where that one lacks
    `required_file`); None (after saying why) when there is none."""
    directories = model_directories(required_file)
    if not directories:
        st.info(f"No model directory with {required_file} yet under {models_root()}. Train one with "
                "`ser train` (see the README); its test results appear here.")
        return None
    served, default = Path(served_directory()).resolve(), follow_pointer(model_directory())
    index = next((i for i, d in enumerate(directories) if d == served),
                 next((i for i, d in enumerate(directories) if d == default), 0))
    chosen = st.selectbox("Model", directories, index=index, key=key, format_func=model_label,
                          help=models_help(directories))
    st.caption(model_description(chosen))
    return chosen


# --- the served model -----------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the model (once per server)…", max_entries=8)
def warm_model(directory: str) -> SerModel:
    """One model per directory and process, shared by every session: `SerModel` serialises its
    forward passes, and the voice activity detector's session is thread-safe."""
    model = load_model(directory)
    model.warm_up()
    return model


# --- sidebar choices that hold on every page ------------------------------------------------------


def _chosen_key(key: str) -> str:
    return f"{key}-chosen"


def chosen(key: str, default: T) -> T:
    """What the user last chose in the widget `key`, on any page; `default` until they choose."""
    return st.session_state.get(_chosen_key(key), default)


def choose(key: str, value) -> None:
    """Choose `value` for the widget `key` on the user's behalf (the next time it is drawn)."""
    st.session_state[_chosen_key(key)] = value


def held(key: str, value) -> dict:
    """The widget arguments that make the widget `key` show `value` (the caller's `chosen(key, …)`,
    made valid) and keep what the user chooses in it. Another page's script draws a new widget (its
    id names the page), which starts from its default and drops the old one's value, so the choice
    lives under a key of its own, written by the widget's `on_change`, and is given to the widget
    before it is drawn, on every run. Pass no default value (`index`, `value`) beside it."""
    st.session_state[key] = value
    return {"key": key, "on_change": lambda: choose(key, st.session_state[key])}


def served_directory() -> str:
    """The model the sidebar's picker serves: the user's choice, else the default model."""
    return chosen(PICKER_KEY, str(follow_pointer(model_directory())))


def picked_directory() -> Path:
    """The sidebar's model picker (every directory under models/ with metadata.json); the choice
    holds on every page that serves a model, and across the pages that do not."""
    default = str(follow_pointer(model_directory()))
    options = [str(d) for d in model_directories(METADATA_FILE)] or [default]
    picked = served_directory()
    if picked not in options:  # a model directory gone since it was chosen
        picked = default if default in options else options[0]
    picked = st.sidebar.selectbox("Model", options, format_func=lambda d: model_label(Path(d)),
                                  help=models_help([Path(d) for d in options]), **held(PICKER_KEY, picked))
    st.sidebar.caption(model_description(Path(picked)))
    return Path(picked)


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
    use = st.sidebar.toggle("Use my voice profile", **held(USE_PROFILE_KEY, chosen(USE_PROFILE_KEY, True)),
                            help="Read predictions relative to the voice recorded on the My voice page. "
                                 "Switch off to compare with the unadapted prediction.")
    return VoiceProfile.from_json(text) if use else None


ADAPTATION_KEY = "adaptation"
# What each recording's utterances are read against, beside a voice profile: the sidebar's choices.
ADAPTATIONS = {"none": "As heard", "speaker": "Each speaker against their own voice",
               "recording": "The whole recording against itself"}
SPEAKER_COUNT_KEY = "speaker-count"
SPEAKER_COUNTS = (None, 1, 2, 3, 4, 5, 6, 7, 8)  # None: found by clustering the voices


def speaker_options() -> SpeakerOptions:
    """The sidebar's speaker settings (drawn here: call once per page): how many speakers the
    recordings hold, when the user knows, and what the utterances are read against: as heard, each
    speaker against their own voice, or everything against the whole recording."""
    count = st.sidebar.selectbox("Speakers in each recording", SPEAKER_COUNTS,
                                 **held(SPEAKER_COUNT_KEY, chosen(SPEAKER_COUNT_KEY, None)),
                                 format_func=lambda n: "Find them" if n is None else str(n),
                                 help="Who spoke when is found by grouping the utterances by voice. If you know "
                                      "how many people speak, say so: their voices are then grouped into that many. "
                                      "Voices heard at once are not separated: overlapping talk goes to one of them.")
    adapt = st.sidebar.radio("Read the utterances", list(ADAPTATIONS), format_func=ADAPTATIONS.get,
                             **held(ADAPTATION_KEY, chosen(ADAPTATION_KEY, "none")),
                             help="Each speaker: everyone who talks long enough is read against their own voice in "
                                  "the recording (your voice profile still goes to the voice nearest to it). The whole "
                                  "recording: every utterance against the mean of all its speech, for a language "
                                  "the model never heard (Home lists those it heard): in conversations of languages "
                                  "left out of training it gained nearly five points on average, more than each speaker; "
                                  "in languages it heard it costs. Both are off by default: neither passed what a "
                                  "default must (4 points gained, no single speaker more than a point worse).")
    return SpeakerOptions(count=count, adapt=adapt == "speaker", recording=adapt == "recording")


CLASSES_KEY = "emotion-classes"


def emotion_choice(labels: tuple[str, ...]) -> tuple[str, ...] | None:
    """The sidebar's choice of the emotions the recordings can hold (drawn here: call once per page):
    None for all of `labels`, as at first; fewer than two chosen are refused with a note and all read."""
    # A choice made with another model keeps only the emotions this one has.
    kept = [label for label in chosen(CLASSES_KEY, labels) if label in labels]
    picked = st.sidebar.multiselect(
        "Emotions your recordings can hold", list(labels), **held(CLASSES_KEY, kept),
        help="If your recordings can only hold some of the emotions (a task with four, say), keep those: each "
             "reading is then made among them, renormalised, as `ser predict --classes` does; how aroused "
             "the voice sounds is still read from all of them. In languages the model never heard this "
             "helps most (Home lists those it heard), and more with several files read together (Upload).")
    if len(picked) < 2:
        st.sidebar.warning("Keep two emotions or more: every emotion is read.")
        return None
    return None if len(picked) == len(labels) else tuple(label for label in labels if label in picked)  # the model's order


TOGETHER_KEY = "read-together"
BATCH_PROFILE_KEY = "batch-profile"


def read_together_switch(files: int, profile: VoiceProfile | None, speakers: SpeakerOptions = DEFAULT_SPEAKERS) -> bool:
    """The Upload page's switch (drawn only for two files or more): every file read against the mean
    of all of them, as `ser predict --adapt batch` does; a voice profile in use takes its place, and
    so does each recording read against itself (the sidebar), as the API refuses both at once."""
    if files < 2:
        return False
    refused = profile is not None or speakers.recording
    together = st.toggle("Read the files together", **held(TOGETHER_KEY, chosen(TOGETHER_KEY, False)), disabled=refused,
                         help="Each file is read against the mean of all the files (no labels used). It helps "
                              "when the files share what the model has not heard, such as a language or a room, "
                              "and hold a mix of emotions: on languages the models never heard, reading each "
                              "language's files together raised the default recipe's mean UAR by four to seven "
                              "points over five training seeds (Metrics, unheard languages). Files that all carry "
                              "one emotion lose it. Off while your voice profile is in use or each recording is "
                              "read against itself (sidebar).")
    return together and not refused


def files_read_together(model: SerModel, contents: list[bytes]) -> VoiceProfile:
    """The batch profile of these files (`profile.batch_profile`), kept in this session for the last
    batch and model: reruns do not read the files again. Raises `SerError` (speech found in fewer than two)."""
    key = (str(model.directory), tuple(hashlib.sha256(c).hexdigest() for c in contents))
    kept = st.session_state.get(BATCH_PROFILE_KEY)
    if kept is None or kept[0] != key:
        kept = (key, batch_profile(model, contents))
        st.session_state[BATCH_PROFILE_KEY] = kept
    return kept[1]


ANALYSES_KEY = "analyses"  # this session's analyses (or the error each gave), by content and settings
LANGUAGES_KEY = "languages"  # the language each kept analysis's speech sounds like, by the same keys
# Per session, the least recently shown dropped first: a rerun redraws, it never analyses again. At
# least this many, and never fewer than a page shows at once (`batch`).
KEPT_ANALYSES = 16
FIGURES_KEY = "figures"
OVER_CLASSES_KEY = "analyses-over-classes"  # analyses read over the sidebar's emotions
KEPT_FIGURES = 64
QUICK_ANSWER_AFTER_S = 3.0  # a longer expected wait shows the light model's answer meanwhile
QUICK_ANSWER_MAX_S = 30.0  # audio the light model reads in a few ms per second on the page's own thread
LIGHT_MODEL = "emo-cnn-speaker"
POLL_S = 0.25


def analyze(model: SerModel, audio: bytes, profile: VoiceProfile | None = None,
            speakers: SpeakerOptions = DEFAULT_SPEAKERS) -> Analysis:
    """Bytes (any supported format) → `Analysis` with `model` (and the voice profile); raises `SerError`.
    Kept in this session by content, model, profile and speaker options: the same recording is
    analysed once per setting, in the server's one analysis pool (`serving.pool`)."""
    return _analysed(model, audio, profile, speakers)[0]


def kept_analyses(batch: int) -> int:
    """How many analyses a session keeps while a page shows `batch` of them."""
    return max(KEPT_ANALYSES, batch)


def _analysed(model: SerModel, audio: bytes, profile: VoiceProfile | None, speakers: SpeakerOptions,
              batch: int = 1) -> tuple[Analysis, LanguageGuess | None]:
    """`analyze`'s analysis and, guessed in the same pool job, the language its speech sounds like;
    `batch`: how many recordings the page shows with this one."""
    key = (hashlib.sha256(audio).hexdigest(), str(model.directory), profile.to_json() if profile else None, speakers)
    kept = st.session_state.setdefault(ANALYSES_KEY, {})
    languages = st.session_state.setdefault(LANGUAGES_KEY, {})
    if key in kept:
        kept[key] = kept.pop(key)  # shown again: the last to be dropped
    else:
        def work(threads: int) -> tuple[Analysis, LanguageGuess]:
            analysis = model.with_threads(threads).analyze(audio, profile=profile, speakers=speakers)
            return analysis, guess_analysis(analysis, heard_codes(model.metadata))

        try:
            kept[key], languages[key] = wait_in_line(model, audio, work)
        except PoolFull:
            raise  # the server is full now: not this recording's answer, the next rerun tries again
        except SerError as error:
            kept[key] = error
        while len(kept) > kept_analyses(batch):
            languages.pop(next(iter(kept)), None)
            kept.pop(next(iter(kept)))
    if isinstance(kept[key], SerError):
        raise kept[key]
    return kept[key], languages.get(key)


def wait_in_line(model: SerModel, audio: bytes, work: Callable[[int], T]) -> T:
    """`work` run in the server's analysis pool, showing this session's place in the line while it
    waits and, when the wait would pass `QUICK_ANSWER_AFTER_S`, the light model's answer meanwhile.
    A job still waiting when the user leaves (the script is stopped) is withdrawn."""
    job = app_pool().submit(work)
    notice, quick, shown = st.empty(), None, None
    try:
        while True:
            try:
                return job.future.result(timeout=POLL_S)
            except TimeoutError:
                pass
            position, wait_s = job.position(), job.expected_wait_s()
            if quick is None and wait_s > QUICK_ANSWER_AFTER_S:
                quick = quick_answer(model, audio)
            text = (f"The server is busy: you are number {position} in line, about {wait_s:.0f} s to go."
                    if position else f"Analysing… about {wait_s:.0f} s to go.")
            if (text, quick) != shown:  # every redraw is sent to the browser and laid out again there
                shown = text, quick
                with notice.container():
                    st.info(text)
                    if quick:
                        st.markdown(quick)
    finally:
        job.cancel()
        notice.empty()


def quick_answer(model: SerModel, audio: bytes) -> str:
    """The light model's reading of a short clip, as a sentence that says what it is; "" when there is
    no light model, the served model is the light one, or the clip is long."""
    from ..io.audio import load_audio
    from ..serving.shipped import shipped_models

    light_dir = shipped_models().get(LIGHT_MODEL)
    if light_dir is None or light_dir.resolve() == Path(model.directory).resolve():
        return ""
    light = warm_model(str(light_dir))
    try:
        clip = load_audio(audio, light.params.sample_rate)
        if clip.duration_s > QUICK_ANSWER_MAX_S:
            return ""
        reading = light.analyze_audio(clip)
    except SerError:
        return ""
    return (f"Meanwhile, the light model {LIGHT_MODEL} (less accurate) hears: "
            f"**{headline(reading.emotion, reading.confidence, reading.is_uncertain)}**. "
            f"{Path(model.directory).name}'s analysis replaces it when its turn comes.")


def figure(analysis: Analysis, name: str, build: Callable[[], "go.Figure"]) -> "go.Figure":
    """`build()`, once per analysis and figure in this session: a rerun (a click, a toggle) draws the
    figures again without computing them again."""
    return _kept_for(analysis, name, build, FIGURES_KEY, KEPT_FIGURES)


def over_chosen_classes(analysis: Analysis, classes: tuple[str, ...] | None, batch: int = 1) -> Analysis:
    """`analysis.over_classes(classes)`, once per analysis and choice in this session: the same object
    on every rerun, so that its figures are not drawn again (`figure`)."""
    if classes is None:
        return analysis
    return _kept_for(analysis, classes, lambda: analysis.over_classes(classes), OVER_CLASSES_KEY, kept_analyses(batch))


def _kept_for(analysis: Analysis, name, build: Callable[[], T], store: str, limit: int) -> T:
    """`build()` kept in the session's `store` by analysis and `name` (at most `limit`, the least recently
    used dropped)."""
    kept = st.session_state.setdefault(store, {})
    key = (id(analysis), name)
    entry = kept.pop(key, None)  # put back last: the last to be dropped
    if entry is None or entry[0] is not analysis:  # an id is reused once its analysis is gone
        entry = (analysis, build())
    kept[key] = entry
    while len(kept) > limit:
        kept.pop(next(iter(kept)))
    return entry[1]


@dataclass(frozen=True)
class Result:
    """One input's outcome: an analysis, or the message saying why there is none."""

    name: str
    audio: bytes
    analysis: Analysis | None
    error: str | None
    # A failed input that was audio all the same, with no speech in it (music, a hum): a player lets the
    # user hear why. Anything else (not audio, empty, too long) would get a dead player and the
    # browser an HTTP 416.
    audio_decoded: bool = False
    # What language the speech sounds like, and whether the model heard it (`frontend.language`).
    language: LanguageGuess | None = None

    @property
    def playable(self) -> bool:
        return self.analysis is not None or self.audio_decoded


def analyze_named(model: SerModel, name: str, audio: bytes, profile: VoiceProfile | None = None,
                  speakers: SpeakerOptions = DEFAULT_SPEAKERS, classes: tuple[str, ...] | None = None,
                  batch: int = 1) -> Result:
    """`classes`: the emotions the recording can hold (`Analysis.over_classes`), all when None; `batch`:
    how many recordings the page shows with this one, all kept for the next rerun."""
    try:
        analysis, language = _analysed(model, audio, profile, speakers, batch)
        return Result(name, audio, over_chosen_classes(analysis, classes, batch), None, language=language)
    except SerError as error:
        return Result(name, audio, None, str(error), isinstance(error, NoSpeechError))


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


def data_description(metadata: dict | None, metrics: dict | None = None) -> str:
    """'RAVDESS + TESS, 11,550 clips (train 8,000 / val 1,000 / test 2,550)' from metadata.json; with
    the model's metrics.json, what of the test split its numbers count (`scored_test_clips`)."""
    data = (metadata or {}).get("data")
    if not data:
        return "not recorded"
    corpora = sorted({corpus for split in data.values() for corpus in split.get("per_corpus", {})})
    total = sum(split["clips"] for split in data.values())
    scored = scored_test_clips(metadata, metrics)
    splits = " / ".join(f"{name} {split['clips']:,}" + (f" ({scored})" if name == "test" and scored else "")
                        for name, split in data.items())
    return f"{' + '.join(corpora)}, {total:,} clips ({splits})"


def scored_test_clips(metadata: dict | None, metrics: dict | None) -> str:
    """Where a test split holds more clips than the test numbers count, which do: '4,912 with one
    emotion, as the test numbers count them; 633 labelled with a set of emotions, from BAVED, scored
    as such by the label-set UAR'; "" where the two agree or either is unknown."""
    test = ((metadata or {}).get("data") or {}).get("test")
    if not test or not metrics or metrics.get("n_test", test["clips"]) >= test["clips"]:
        return ""
    from ..training.corpora import CORPUS_NAMES

    single, scored = metrics["n_test"], metrics.get("n_scored", metrics["n_test"])
    note = f"{single:,} with one emotion, as the test numbers count them"
    if scored > single:
        counted = metrics.get("per_corpus", {})
        sets = {CORPUS_NAMES.get(corpus, corpus): n - counted.get(corpus, {}).get("n", 0)
                for corpus, n in test.get("per_corpus", {}).items()}
        sets = {name: n for name, n in sets.items() if n > 0}
        where = ", ".join(sets) if len(sets) == 1 else ", ".join(f"{name} {n:,}" for name, n in sets.items())
        note += f"; {scored - single:,} labelled with a set of emotions, from {where}, scored as such by the label-set UAR"
    if test["clips"] > scored:
        note += f"; {test['clips'] - scored:,} not scored (unreadable, or an emotion the model does not know)"
    return note
