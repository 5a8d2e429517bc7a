"""A trained model directory, loaded once, answering "which emotion?" for files, bytes or arrays.

By default the audio is analysed by utterance (`segments`): voice activity detection finds the
speech, each speech segment is classified, and the clip's probabilities are the duration-weighted
mean over the segments: pauses, music and noise count for nothing. With `segmented=False` the whole
audio is covered by fixed windows (see `features.window_starts`) and the clip's probabilities are
the mean over them.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import ModelError
from ..frontend.encoder import ENCODER_LAYERS
from ..frontend.features import FeatureParams, Normalizer, extract, extract_many
from ..frontend.vad import DEFAULT_VAD, VadParams
from ..io.audio import DEFAULT_LIMITS, Audio, AudioLimits, AudioSource, load_audio, to_mono_float32
from .calibration import apply_temperature
from .results import Analysis, no_speech_error, over_classes
from .segments import DEFAULT_SPEAKERS, SpeakerOptions, analyze_segments

if TYPE_CHECKING:
    from .profile import VoiceProfile

MODEL_FILE = "model.keras"
LITERT_FILE = "model.tflite"  # the same weights for the LiteRT interpreter: serving without TensorFlow
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.json"
BATCH_WINDOWS = 256  # windows per forward pass: bounds memory on long audio
# A model's metadata may name a reference head, {"model": sibling directory, "weight": w}: a head
# trained on speaker-normalised voices that reads the same cached windows. Wherever a voice has a
# reference (a voice profile, a batch of files, a conversation's speaker), the reading is the model's
# own against it mixed with the head's (`SerModel.predict_against`); with none, the model alone.
REFERENCE_FIELD = "reference"
# A model's metadata may name an utterance reader, {"model": sibling directory}: heads that read the same
# cached windows, trained on clips cut at their speech too, which read the utterances cut out of a longer
# recording (`segments.reader_of`) and the speech of the live window (`live.LiveClassifier`); a file that
# is one utterance is still read by the model itself. The reader reads voices against the model's own
# reference head.
UTTERANCES_FIELD = "utterances"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _KerasRunner:
    """The reference path: the saved Keras model (imports TensorFlow, about 9 s)."""

    def __init__(self, path: Path):
        from ..errors import require_extra

        require_extra("The Keras backend", "train", "keras", "tensorflow")  # LiteRT, the default, needs no extra
        import keras

        self._model = keras.models.load_model(path, safe_mode=True, compile=False)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.predict_on_batch(x))


class _LiteRTRunner:
    """The serving path: LiteRT runs the converted model without importing TensorFlow."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(path), num_threads=1)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self._batch:
            self._interpreter.resize_tensor_input(self._input, list(x.shape))
            self._interpreter.allocate_tensors()
            self._batch = len(x)
        self._interpreter.set_tensor(self._input, np.ascontiguousarray(x, dtype=np.float32))
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


BACKENDS = ("auto", "litert", "keras")


class SerModel:
    """Thread-safe: neither Keras inference (tensorflow#61298) nor a LiteRT interpreter is, so forward
    passes take a lock. `backend="auto"` serves with LiteRT when the directory has model.tflite.

    `threads` caps the BLAS threads of each analysis (the mel and DCT matrix products): on a busy
    2-core machine two threads fighting over the cores made a 3 s clip 5× slower than one."""

    def __init__(self, directory: str | Path, backend: str = "auto", threads: int = 1):
        from threadpoolctl import ThreadpoolController

        self.threads = threads
        self._threadpools = ThreadpoolController()
        self.directory = Path(directory)
        metadata_path = self.directory / METADATA_FILE
        model_path = self.directory / MODEL_FILE
        if not metadata_path.is_file() or not model_path.is_file():
            raise ModelError(f"{self.directory} is not a model directory (needs {MODEL_FILE} and {METADATA_FILE})")
        if backend not in BACKENDS:
            raise ModelError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.metadata = json.loads(metadata_path.read_text())
        self.labels = tuple(self.metadata["labels"])
        self.params = FeatureParams.from_dict(self.metadata["feature_params"])
        normalization = self.metadata.get("normalization")  # encoder models standardise inside the head
        self.normalizer = Normalizer.from_dict(normalization) if normalization else None
        calibration = self.metadata.get("calibration", {})
        self.temperature = float(calibration.get("temperature", 1.0))
        self.uncertain_below = float(calibration.get("uncertain_below", 0.0))
        litert_path = self.directory / LITERT_FILE
        if backend == "litert" or (backend == "auto" and litert_path.is_file()):
            self.backend, self._run = "litert", _LiteRTRunner(litert_path)
        else:
            self.backend, self._run = "keras", _KerasRunner(model_path)
        self._lock = threading.Lock()
        self.reference = self._reference_head(backend, threads)
        self.utterance_reader = self._utterance_reader(backend, threads)

    def _sibling(self, field: str, backend: str, threads: int) -> "SerModel | None":
        """The sibling model directory the metadata's `field` names, loaded, when it names one: it must
        read the same cached windows (same front end, features and labels) and name no sibling of its own."""
        spec = self.metadata.get(field)
        if spec is None:
            return None
        directory = self.directory.parent / spec["model"]
        if not (directory / METADATA_FILE).is_file():
            raise ModelError(f"{self.directory.name} reads with {spec['model']}, which is not beside it "
                             f"in {self.directory.parent}: install the models together.")
        sibling = load_model(directory, backend, threads)
        ours, theirs = self.metadata.get("front_end", {}), sibling.metadata.get("front_end", {})
        same = (sibling.params == self.params and sibling.labels == self.labels and all(
            ours.get(k) == theirs.get(k) for k in ("sha256", "compute_type", "layers", "fused_blocks", "pooling", "pooling_weights",
                                                 "embedding_version")))
        if not same or any(sibling.metadata.get(f) is not None for f in (REFERENCE_FIELD, UTTERANCES_FIELD)):
            raise ModelError(f"{spec['model']} cannot be {self.directory.name}'s {field} model: it reads other "
                             "windows or labels, or names a sibling of its own.")
        return sibling

    def _reference_head(self, backend: str, threads: int) -> "tuple[SerModel, float] | None":
        """(the model a voice is read against when it has a reference, its weight) when the metadata's
        `REFERENCE_FIELD` names one (`predict_against`)."""
        head = self._sibling(REFERENCE_FIELD, backend, threads)
        return None if head is None else (head, float(self.metadata[REFERENCE_FIELD]["weight"]))

    def _utterance_reader(self, backend: str, threads: int) -> "SerModel | None":
        """The model that reads utterances cut out of a longer recording when the metadata's
        `UTTERANCES_FIELD` names one; it shares this model's reference head."""
        reader = self._sibling(UTTERANCES_FIELD, backend, threads)
        if reader is not None:
            reader.reference = self.reference
        return reader

    @property
    def metrics(self) -> dict | None:
        path = self.directory / METRICS_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    def _check_features(self, features: np.ndarray) -> None:
        if features.shape[1:] != self.params.input_shape:
            raise ModelError(f"features of shape {features.shape[1:]}, model expects {self.params.input_shape}")

    def prepare(self, features: np.ndarray) -> np.ndarray:
        """Raw feature windows → what the network takes (and what training caches): normalised here."""
        self._check_features(features)
        return self.normalizer(features)[..., None]

    def predict_inputs(self, x: np.ndarray) -> np.ndarray:
        """Network inputs (from `prepare`) → (n_windows, n_labels) calibrated probabilities."""
        out = []
        for start in range(0, len(x), BATCH_WINDOWS):
            with self._lock:
                out.append(self._run(x[start : start + BATCH_WINDOWS]))
        return apply_temperature(np.concatenate(out).astype(np.float64), self.temperature)

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """(n_windows, n_bands, n_frames) raw features → (n_windows, n_labels) calibrated probabilities."""
        return self.predict_inputs(self.prepare(features))

    def with_threads(self, threads: int) -> "SerModel":
        """This model with its heavy engine on `threads` threads, sharing everything loaded: what the
        thread policy (`serving.threads`) gives each analysis. Here the model itself: its head (LiteRT)
        and its features (BLAS) take milliseconds on one thread."""
        return self

    def warm_up(self) -> None:
        """One dummy window through feature extraction and the network: the first call builds the
        filterbank and the first forward pass sets the network up. A server pays for both when it
        loads the model, not on a user's first clip or first live reading."""
        _, features = extract(np.zeros(self.params.window_samples, dtype=np.float32), self.params)
        self.predict_features(features)

    def to_cached(self, features: np.ndarray) -> np.ndarray:
        """Raw feature windows → what the training cache holds for this model (the windows themselves)."""
        return features

    def predict_cached(self, cached: np.ndarray) -> np.ndarray:
        """What the training cache holds for this model (raw feature windows here) → probabilities."""
        return self.predict_features(cached)

    def representation(self, cached: np.ndarray) -> np.ndarray:
        """Per window, the vector a voice profile averages: each band's mean over the window's frames."""
        return cached.mean(axis=2)

    @property
    def representation_mean(self) -> np.ndarray:
        """The training data's mean of `representation`: where an adapted voice is moved to."""
        return self.normalizer.mean

    def shifted(self, cached: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """Cached windows with `delta` (one value per band) taken off every frame."""
        return cached - delta.astype(np.float32)[None, :, None]

    def predict_windows(self, features: np.ndarray, profile: "VoiceProfile | None" = None) -> tuple[np.ndarray, str]:
        """Raw feature windows → (calibrated probabilities, what the voice profile did). With a profile
        (`ser_core.serving.profile`) that fits this model, each window is read relative to that voice."""
        with self._threadpools.limit(limits=self.threads, user_api="blas"):
            cached = self.to_cached(features)
            note = self.adaptation_note(profile)
            if profile is None or not profile.fits(self):
                return self.predict_cached(cached), note
            return self.predict_against(cached, profile), note

    def predict_against(self, cached: np.ndarray, profile: "VoiceProfile", settings: tuple[float, float] | None = None,
                        weight: float | None = None) -> np.ndarray:
        """Cached windows of one voice read against a profile of that voice: the windows shifted by the
        profile (`settings`: prior windows and strength, the model's own `adaptation_settings` unless
        given) through this model; with a reference head (`REFERENCE_FIELD`), that reading mixed with
        the head's own reading of the windows against the same profile, `weight` of it the head's (the
        metadata's unless given). The one place every reading against a voice goes through: voice
        profiles, `ser predict --adapt batch` and `--speaker-column`, and each speaker of a conversation."""
        probabilities = self.predict_cached(self.shifted(cached, profile.shift(self, *(settings or self.adaptation_settings))))
        if self.reference is None:
            return probabilities
        head, default_weight = self.reference
        weight = default_weight if weight is None else weight
        if weight == 0.0:
            return probabilities
        theirs = head.predict_cached(head.shifted(cached, profile.shift(head, *head.adaptation_settings)))
        return (1.0 - weight) * probabilities + weight * theirs

    def analyze_audio(self, audio: Audio, segmented: bool = True, vad: VadParams = DEFAULT_VAD,
                      profile: "VoiceProfile | None" = None, speakers: SpeakerOptions = DEFAULT_SPEAKERS) -> Analysis:
        """Raises `NoVoiceActivityError` when analysed by utterance and no speech is found."""
        analysis = self.analyze_many([audio], segmented, vad, profile, speakers)[0]
        if analysis.segments == ():
            raise no_speech_error(audio)
        return analysis

    def analyze_many(self, audios: list[Audio], segmented: bool = True, vad: VadParams = DEFAULT_VAD,
                     profile: "VoiceProfile | None" = None, speakers: SpeakerOptions = DEFAULT_SPEAKERS
                     ) -> list[Analysis]:
        """Several clips through one feature batch and one model batch: the same results as one at
        a time, with the fixed cost of each step paid once. By utterance (`segmented`), a clip in
        which no speech is found gets an `Analysis` without segments, whose `probabilities` raise;
        each segment names its speaker, and `speakers` says how voices are found and used."""
        if segmented:
            # Features, speaker embeddings and the rest on `threads` BLAS threads too: unpinned, their
            # features took 35 ms of a 3 s clip beside a busy core, against 11 ms on one thread.
            with self._threadpools.limit(limits=self.threads, user_api="blas"):
                return analyze_segments(self, audios, vad, profile=profile, speakers=speakers)
        with self._threadpools.limit(limits=self.threads, user_api="blas"):
            extracted = extract_many([audio.samples for audio in audios], self.params)
        probabilities, adaptation = self.predict_windows(np.concatenate([features for _, features in extracted]), profile)
        bounds = np.cumsum([0] + [len(features) for _, features in extracted])
        return [Analysis(audio, times, probabilities[a:b], features, self.labels, self.uncertain_below, adaptation)
                for audio, (times, features), a, b in zip(audios, extracted, bounds[:-1], bounds[1:])]

    def adaptation_note(self, profile: "VoiceProfile | None") -> str:
        """What a voice profile does to this model's reading, in a sentence for the user ("" without one)."""
        if profile is None:
            return ""
        if not profile.fits(self):
            return ("The voice profile was made for another model's representation, so this prediction "
                    "is not adapted: build the profile again with this model.")
        if profile.batch:
            return (f"Adapted to the {profile.clips} files in which speech was found, read together (their mean; "
                    "no labels used).")
        return f"Adapted to your voice profile ({profile.speech_seconds:.0f} s of speech)."

    @property
    def adaptation_settings(self) -> tuple[float, float]:
        """(prior windows, strength) for voice profiles: shrunk and partial for a model trained on
        voices as recorded; full for one trained on speaker-normalised voices."""
        from .profile import PRIOR_WINDOWS, STRENGTH

        return PRIOR_WINDOWS, STRENGTH

    def analyze(
        self, source: AudioSource | np.ndarray, sr: int | None = None, limits: AudioLimits = DEFAULT_LIMITS,
        segmented: bool = True, vad: VadParams = DEFAULT_VAD, profile: "VoiceProfile | None" = None,
        speakers: SpeakerOptions = DEFAULT_SPEAKERS,
    ) -> Analysis:
        """A path, bytes, file object, or a numpy array (with `sr`) → `Analysis`, by utterance unless
        `segmented=False`."""
        if isinstance(source, np.ndarray):
            if sr is None:
                raise ValueError("sr is required when predicting from a numpy array")
            audio = to_mono_float32(source, sr, self.params.sample_rate, limits=limits)
        else:
            audio = load_audio(source, self.params.sample_rate, limits)
        return self.analyze_audio(audio, segmented, vad, profile, speakers)

    def predict(self, source: AudioSource | np.ndarray, sr: int | None = None, segmented: bool = True,
                profile: "VoiceProfile | None" = None, classes: Sequence[str] | str | None = None) -> dict[str, float]:
        """Label → probability: over the speech segments weighted by duration (or over fixed windows);
        with `classes` (names, or "angry,happy,sad" as `--classes` takes them), over those emotions only
        (`over_classes`)."""
        return over_classes(self.analyze(source, sr, segmented=segmented, profile=profile).probabilities, classes)


class EncoderModel(SerModel):
    """A small head on a frozen pretrained speech encoder (`metadata["front_end"]`): each window's
    Whisper log-mel goes through the encoder once, its frames are pooled (mean and standard
    deviation), and the head (LiteRT) maps that to emotions. `threads` pins the encoder's threads."""

    def __init__(self, directory: str | Path, backend: str = "auto", threads: int = 1):
        super().__init__(directory, backend, threads)
        from ..frontend.encoder import WEIGHTS_SHA256

        self.front_end = self.metadata["front_end"]
        if self.front_end.get("sha256") != WEIGHTS_SHA256:
            raise ModelError(f"{self.directory} was trained on other encoder weights "
                             f"(sha256 {self.front_end.get('sha256')}); this ser ships {WEIGHTS_SHA256}.")
        self.encoder = self._encoder(threads)

    def _encoder(self, threads: int):
        """The process's engine for this model's encoder on `threads` threads per encode. The one-thread
        engine runs as many encodes at once as the process has cores (concurrent analyses, one thread
        each); a wider one runs one at a time, for an analysis that has the cores to itself. A head that
        reads the blocks fused gets the stem and every block up to its own in one numpy pass, whose
        threads are BLAS's (`self.threads`)."""
        from ..frontend.encoder import shared_blocks_encoder, shared_encoder
        from .threads import process_cores

        if self.front_end.get("fused_blocks"):
            return shared_blocks_encoder(self.front_end["layers"])
        return shared_encoder(self.front_end.get("compute_type", "int8"), threads,
                              self.front_end.get("layers", ENCODER_LAYERS), process_cores() if threads == 1 else 1)

    def with_threads(self, threads: int) -> "EncoderModel":
        """The same model whose Whisper blocks (nearly all of an analysis's time) run on `threads`
        threads. BLAS stays at `self.threads`: its share is milliseconds, and threadpoolctl's limits
        are process-wide, so concurrent analyses setting different ones would overwrite each other."""
        pinned = copy.copy(self)
        pinned.encoder = self._encoder(threads)
        if self.utterance_reader is not None:
            pinned.utterance_reader = self.utterance_reader.with_threads(threads)
        return pinned

    def prepare(self, features: np.ndarray) -> np.ndarray:
        """Whisper log-mel windows → pooled encoder embeddings (n_windows, 1024; fused, 1024 per layer)."""
        from ..frontend.encoder import embed

        self._check_features(features)
        return embed(self.encoder, features, pooling=self.front_end.get("pooling_weights", "even"))

    def to_cached(self, features: np.ndarray) -> np.ndarray:
        """Whisper log-mel windows → pooled embeddings: the encoder is the expensive, frozen part."""
        return self.prepare(features)

    def predict_cached(self, cached: np.ndarray) -> np.ndarray:
        """Cached pooled embeddings → probabilities."""
        return self.predict_inputs(cached)

    def representation(self, cached: np.ndarray) -> np.ndarray:
        return cached

    @property
    def speaker_normalised(self) -> bool:
        return bool(self.front_end.get("speaker_normalised"))

    @property
    def adaptation_settings(self) -> tuple[float, float]:
        return (0.0, 1.0) if self.speaker_normalised else super().adaptation_settings

    def adaptation_note(self, profile: "VoiceProfile | None") -> str:
        if profile is None and self.speaker_normalised:
            # Said as a refusal ("not adapted"), so that every output warns of it: the model's numbers
            # were measured with each voice read against itself.
            return ("Not adapted: this model reads each voice against a voice profile and was given none, so its "
                    "reading is not what its numbers describe: build one on the My voice page (--profile), read "
                    "files together (--adapt batch) or a recording against itself (--adapt recording), or pick "
                    "a model trained on voices as recorded.")
        return super().adaptation_note(profile)

    @property
    def representation_mean(self) -> np.ndarray:
        return np.asarray(self.front_end["train_embedding_mean"], dtype=np.float32)

    def shifted(self, cached: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return cached - delta.astype(np.float32)[None, :]


def load_model(directory: str | Path | None = None, backend: str = "auto", threads: int = 1) -> SerModel:
    """A model directory as the right class: an encoder model where its metadata names a front end.
    `directory` may also be a shipped model's name; None means SER_MODEL, else the shipped default."""
    from .shipped import resolve_model

    if directory is None or not Path(directory).is_dir():  # a name, or the `default` pointer file
        directory = resolve_model(directory)
    metadata_path = Path(directory) / METADATA_FILE
    if metadata_path.is_file() and "front_end" in json.loads(metadata_path.read_text()):
        return EncoderModel(directory, backend, threads)
    return SerModel(directory, backend, threads)


@contextlib.contextmanager
def native_stderr_silenced():
    """TensorFlow's and LiteRT's C++ start-up logging writes to fd 2 whatever TF_CPP_MIN_LOG_LEVEL says."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_model_quietly(directory: str | Path, backend: str = "auto") -> SerModel:
    """Load a model and run it once with native logging swallowed, for command-line output that
    holds only results and one line per problem."""
    with native_stderr_silenced():
        model = load_model(directory, backend)
        model.warm_up()
    return model
