"""Which language a recording sounds like, and whether the model heard it in training.

The emotion heads read languages they never heard far worse than those they did (leave one language
out, docs/evaluation.md), so a reading of speech in another language deserves a word of caution. The
guess comes from Whisper-base's own language identification: the same pinned weights as the emotion
encoder (`encoder.whisper_model_bytes`), all six blocks and one step of its decoder, through
CTranslate2's `detect_language`, int8 (its kernels may move a probability a little between CPUs; a
language guess is not recorded beside a model). It reads at most the first `MAX_SPEECH_S` of the
speech the voice activity detector found, without the padding to 30 s that faster-whisper adds: in a
one-off check (30 clips per corpus) the unpadded input named the language of sentences as the padded
one did at about a twentieth of the cost (some 30 ms against 600 ms on 2 threads), and did worse on
single words, which are not guessed: below `MIN_SPEECH_S` of speech there is no guess
(`python bench/language_id.py` measures how often it is right). Loaded, the identifier holds about
260 MB more in memory (measured once on this machine), so it is loaded on first use only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .encoder import whisper_files, whisper_model_bytes
from .features import FeatureParams, compute

SAMPLE_RATE = 16000
MAX_SPEECH_S = 30.0  # Whisper's own input length
MIN_SPEECH_S = 1.5  # below it, a guess is a coin toss (single words: bench/language_id.py)
SURE_ABOVE = 0.5  # a language is named only when Whisper gives it at least this probability
LOG_MEL = FeatureParams(kind="whisper", n_mels=80, n_fft=400, win_length=400, hop_length=160, fmin=0.0,
                        fmax=8000.0, window_s=MAX_SPEECH_S, offset_s=0.0, window_hop_s=MAX_SPEECH_S)

# Whisper's codes for the language of each training corpus (`training.corpora.LANGUAGES`, which the
# serving side may not import; tests/test_language.py holds the two to the same languages); the
# Indian EmoSpeech Command keywords are Hindi and English.
CODES_OF_CORPUS = {"ravdess": ("en",), "cremad": ("en",), "savee": ("en",), "tess": ("en",), "ased": ("am",),
                   "nemo": ("pl",), "turev": ("tr",), "baved": ("ar",), "emospeech": ("hi", "en"),
                   "banglaser": ("bn",)}

# Whisper's languages (its tokenizer's table), code → English name.
LANGUAGE_NAMES = {
    "en": "English", "zh": "Chinese", "de": "German", "es": "Spanish", "ru": "Russian", "ko": "Korean",
    "fr": "French", "ja": "Japanese", "pt": "Portuguese", "tr": "Turkish", "pl": "Polish", "ca": "Catalan",
    "nl": "Dutch", "ar": "Arabic", "sv": "Swedish", "it": "Italian", "id": "Indonesian", "hi": "Hindi",
    "fi": "Finnish", "vi": "Vietnamese", "he": "Hebrew", "uk": "Ukrainian", "el": "Greek", "ms": "Malay",
    "cs": "Czech", "ro": "Romanian", "da": "Danish", "hu": "Hungarian", "ta": "Tamil", "no": "Norwegian",
    "th": "Thai", "ur": "Urdu", "hr": "Croatian", "bg": "Bulgarian", "lt": "Lithuanian", "la": "Latin",
    "mi": "Maori", "ml": "Malayalam", "cy": "Welsh", "sk": "Slovak", "te": "Telugu", "fa": "Persian",
    "lv": "Latvian", "bn": "Bengali", "sr": "Serbian", "az": "Azerbaijani", "sl": "Slovenian",
    "kn": "Kannada", "et": "Estonian", "mk": "Macedonian", "br": "Breton", "eu": "Basque", "is": "Icelandic",
    "hy": "Armenian", "ne": "Nepali", "mn": "Mongolian", "bs": "Bosnian", "kk": "Kazakh", "sq": "Albanian",
    "sw": "Swahili", "gl": "Galician", "mr": "Marathi", "pa": "Punjabi", "si": "Sinhala", "km": "Khmer",
    "sn": "Shona", "yo": "Yoruba", "so": "Somali", "af": "Afrikaans", "oc": "Occitan", "ka": "Georgian",
    "be": "Belarusian", "tg": "Tajik", "sd": "Sindhi", "gu": "Gujarati", "am": "Amharic", "yi": "Yiddish",
    "lo": "Lao", "uz": "Uzbek", "fo": "Faroese", "ht": "Haitian Creole", "ps": "Pashto", "tk": "Turkmen",
    "nn": "Nynorsk", "mt": "Maltese", "sa": "Sanskrit", "lb": "Luxembourgish", "my": "Myanmar",
    "bo": "Tibetan", "tl": "Tagalog", "mg": "Malagasy", "as": "Assamese", "tt": "Tatar", "haw": "Hawaiian",
    "ln": "Lingala", "ha": "Hausa", "ba": "Bashkir", "jw": "Javanese", "su": "Sundanese", "yue": "Cantonese",
}


@dataclass(frozen=True)
class LanguageGuess:
    """What the speech sounds like: Whisper's most likely language (`code`, `name`) and its probability,
    and whether the model that reads the emotions heard that language in training (None: the model
    does not record its training languages). `sure` is False when no language reached `SURE_ABOVE`, or
    there was too little speech to guess (`code` "")."""

    code: str
    name: str
    probability: float
    heard: bool | None
    speech_s: float

    @property
    def sure(self) -> bool:
        return bool(self.code) and self.probability >= SURE_ABOVE

    @property
    def unheard(self) -> bool:
        """A language named with confidence that the model never heard: its reading deserves caution."""
        return self.sure and self.heard is False

    def to_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "probability": round(self.probability, 4),
                "heard_in_training": self.heard, "sure": self.sure, "speech_s": round(self.speech_s, 2)}

    def sentence(self, adapted: bool = False, classes_named: bool = False) -> str:
        """One line for a person: what it sounds like, and what that means for the reading, with what
        helps where the model never heard it, the most helpful first (leave one language out,
        docs/evaluation.md: naming each corpus's emotions lifted UAR more than reading its files
        together). Advice already taken is left out: `adapted`, the reading was adapted to a batch or
        to the recording; `classes_named`, it was made among the emotions the user named."""
        if not self.code:
            return (f"Language not guessed: {self.speech_s:.1f} s of speech, {MIN_SPEECH_S:g} s are needed.")
        if not self.sure:
            return f"Language unclear (perhaps {self.name}, {self.probability:.0%})."
        if self.heard is None:
            return f"Sounds like {self.name} ({self.probability:.0%})."
        if self.heard:
            return f"Sounds like {self.name} ({self.probability:.0%}), a language the model heard in training."
        advice = "" if classes_named else "; keeping only the emotions your recordings can hold helps most"
        if not adapted:
            advice += f"; reading several files together, or the recording against itself, helps{' too' if advice else ''}"
        return (f"Sounds like {self.name} ({self.probability:.0%}), a language the model never heard: its "
                f"emotions are read less reliably there, how aroused the voice sounds far less so{advice}.")


def heard_codes(metadata: dict | None) -> frozenset[str] | None:
    """Whisper's codes of the languages a model's training corpora were spoken in (metadata.json);
    None when it does not record them, or names a corpus of unknown language."""
    corpora = (metadata or {}).get("data", {}).get("train", {}).get("per_corpus", {})
    if not corpora or not set(corpora) <= set(CODES_OF_CORPUS):
        return None
    return frozenset(code for corpus in corpora for code in CODES_OF_CORPUS[corpus])


def whisper_log_mel(speech: np.ndarray) -> np.ndarray:
    """Whisper's log-mel (80, frames) of 16 kHz speech padded to 30 s, but only the frames that hold the
    speech (even, as the encoder needs; its first `MAX_SPEECH_S` read). Computed over the speech and
    one FFT's worth of zeros, which gives those frames as the whole padded window would (the padding
    adds no energy, so the floor, 8 decades below the loudest frame, is the same) at a fraction of
    the memory and time."""
    speech = np.asarray(speech, np.float32)[: LOG_MEL.window_samples]
    frames = min(LOG_MEL.n_frames, 2 * (len(speech) // (2 * LOG_MEL.hop_length) + 1))
    window = np.zeros(frames * LOG_MEL.hop_length + LOG_MEL.n_fft, np.float32)
    window[: len(speech)] = speech
    return compute(window[None], LOG_MEL)[0, :, :frames]


class LanguageIdentifier:
    """Whisper-base's language identification (int8, all six blocks and the decoder). Thread-safe:
    CTranslate2 queues concurrent calls."""

    def __init__(self, threads: int = 1):
        import ctranslate2

        self._model = ctranslate2.models.Whisper("whisper-base-language", device="cpu", compute_type="int8",
                                                 intra_threads=threads, files=whisper_files(whisper_model_bytes()))

    def probabilities(self, speech: np.ndarray) -> list[tuple[str, float]]:
        """16 kHz speech (its first `MAX_SPEECH_S` read) → [(code, probability)], most likely first."""
        import ctranslate2

        log_mel = np.ascontiguousarray(whisper_log_mel(speech)[None])
        ranked = self._model.detect_language(ctranslate2.StorageView.from_array(log_mel))[0]
        return [(token.strip("<|>"), float(p)) for token, p in ranked]


_shared: LanguageIdentifier | None = None
_shared_lock = threading.Lock()


def shared_identifier() -> LanguageIdentifier:
    """One identifier per process, loaded on first use under a lock: the app's sessions ask at once,
    and each would otherwise load its own copy of some 260 MB (an lru_cache computes every concurrent miss)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LanguageIdentifier()
        return _shared


def speech_of(samples: np.ndarray, regions: Sequence[tuple[float, float]], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The speech regions [(start_s, end_s)] of a recording joined, up to `MAX_SPEECH_S`."""
    pieces, total = [], 0
    for start, end in regions:
        piece = samples[round(start * sample_rate) : round(end * sample_rate)]
        pieces.append(piece[: LOG_MEL.window_samples - total])
        total += len(pieces[-1])
        if total >= LOG_MEL.window_samples:
            break
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


def guess_language(speech: np.ndarray, heard: frozenset[str] | None = None,
                   identifier: LanguageIdentifier | None = None) -> LanguageGuess:
    """16 kHz speech (the voice activity detector's regions, `speech_of`) → a `LanguageGuess`; `heard`:
    Whisper's codes of the model's training languages (`heard_codes`), None when unknown."""
    seconds = len(speech) / SAMPLE_RATE
    if seconds < MIN_SPEECH_S:
        return LanguageGuess("", "", 0.0, None, seconds)
    code, probability = (identifier or shared_identifier()).probabilities(speech)[0]
    return LanguageGuess(code, LANGUAGE_NAMES.get(code, code), probability,
                         None if heard is None else code in heard, seconds)


def guess_analysis(analysis, heard: frozenset[str] | None = None) -> LanguageGuess:
    """The language of an `Analysis`'s speech (its detector's regions, at its own sample rate)."""
    audio = analysis.audio
    speech = speech_of(audio.samples, analysis.speech_regions or (), audio.sample_rate)
    if audio.sample_rate != SAMPLE_RATE:
        import soxr

        speech = soxr.resample(speech, audio.sample_rate, SAMPLE_RATE).astype(np.float32)
    return guess_language(speech, heard)


def guess_file(source, heard: frozenset[str] | None = None, limits=None) -> LanguageGuess:
    """A file (a path, bytes or a binary file object) decoded, its speech found, its language guessed."""
    from ..io.audio import DEFAULT_LIMITS, load_audio
    from .vad import find_regions

    audio = load_audio(source, SAMPLE_RATE, limits or DEFAULT_LIMITS)
    return guess_language(speech_of(audio.samples, find_regions([audio])[0]), heard)
