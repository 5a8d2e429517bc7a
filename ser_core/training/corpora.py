"""Recognise clips of the ten training corpora by file name (and folder), in the layouts people download.

RAVDESS, CREMA-D, SAVEE, TESS (English), ASED (Amharic), nEMO (Polish), TurEV-DB (Turkish), BAVED
(Arabic), Indian EmoSpeech Command (Hindi/English keywords) and BanglaSER Extended (Bengali). Each
parser maps a file to its emotion, speaker and a corpus-wide clip id that does not depend on folder
layout or audio format, so split files can name clips without naming paths.

An emotion is one of `LABELS`, or the name of a set of them (`LABEL_SETS`) where a corpus labels
something coarser than our classes (BAVED's arousal levels). `CORPUS_LABELS` says which classes each
corpus asked its speakers for: a class a corpus lacks is never taught as wrong on its clips.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import ManifestError
from ..io.audio import AUDIO_EXTENSIONS
from ..labels import LABELS

MANIFEST_COLUMNS = ("path", "emotion", "corpus", "speaker", "clip_id", "text")
# Coarser labels that name a set of our classes: BAVED's levels 0 ("low: tired, down") and 2 ("high:
# strong emotion, positive or negative"); its level 1 is neutral.
LABEL_SETS = {
    "low-arousal": ("calm", "sad"),
    "high-arousal": ("happy", "angry", "fearful", "disgust", "surprised"),
}
# The classes each corpus's speakers were asked for (BanglaSER Extended: the two it adds to BanglaSER).
CORPUS_LABELS = {
    "ravdess": LABELS,
    "cremad": ("neutral", "happy", "sad", "angry", "fearful", "disgust"),
    "savee": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
    "tess": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
    "ased": ("neutral", "happy", "sad", "angry", "fearful"),
    "nemo": ("neutral", "happy", "sad", "angry", "fearful", "surprised"),
    "turev": ("calm", "happy", "sad", "angry"),
    "baved": LABELS,  # neutral, and every other class inside one of its two arousal sets
    "emospeech": ("calm", "happy", "angry", "fearful"),
    "banglaser": ("fearful", "disgust"),
}
# Leave-one-language-out folds: each language with the corpora that speak it.
LANGUAGES = {
    "english": ("ravdess", "cremad", "savee", "tess"), "amharic": ("ased",), "polish": ("nemo",),
    "turkish": ("turev",), "arabic": ("baved",), "hindi-english": ("emospeech",), "bengali": ("banglaser",),
}
CORPUS_NAMES = {
    "ravdess": "RAVDESS", "cremad": "CREMA-D", "savee": "SAVEE", "tess": "TESS", "ased": "ASED",
    "nemo": "nEMO", "turev": "TurEV-DB", "baved": "BAVED", "emospeech": "Indian EmoSpeech Command",
    "banglaser": "BanglaSER Extended",
}
# Indian EmoSpeech Command's name for files whose speaker is unknown (most of the corpus): no speaker.
EMOSPEECH_UNKNOWN_USER = "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f"
UNKNOWN_SPEAKER = "unknown"


LANGUAGE_NAMES = {"english": "English", "amharic": "Amharic", "polish": "Polish", "turkish": "Turkish",
                  "arabic": "Arabic", "hindi-english": "Hindi/English", "bengali": "Bengali"}


def languages_of(corpora: Iterable[str]) -> list[str]:
    """The languages (display names, in `LANGUAGES` order) that these corpora speak."""
    corpora = set(corpora)
    return [LANGUAGE_NAMES[language] for language, members in LANGUAGES.items() if corpora & set(members)]


def candidates(emotion: str) -> tuple[str, ...]:
    """The classes a label allows: itself, or the members of its set."""
    return LABEL_SETS.get(emotion, (emotion,))


# Two classes one corpus may have asked for under the other's name: a corpus with calm and no neutral
# (TurEV-DB, Indian EmoSpeech Command) or neutral and no calm (CREMA-D, SAVEE, TESS, ASED, nEMO) has
# no way to say which of the two its quiet, unemotional clips are.
TWIN_CLASSES = ("neutral", "calm")


def taught_as(emotion: str, corpus: str, twins: bool = False) -> tuple[str, ...]:
    """The classes a training label teaches: those it allows (`candidates`), and with `twins` either
    twin class for a label of a corpus that has only one of them."""
    if twins and emotion in TWIN_CLASSES and not set(TWIN_CLASSES) <= set(corpus_labels(corpus)):
        return TWIN_CLASSES
    return candidates(emotion)


def corpus_labels(corpus: str) -> tuple[str, ...]:
    """The classes a corpus has (all of them for a corpus we do not know, such as a user's manifest)."""
    return CORPUS_LABELS.get(corpus, LABELS)


@dataclass(frozen=True)
class Clip:
    path: Path
    emotion: str
    corpus: str
    speaker: str
    clip_id: str  # unique within its corpus, e.g. "03-01-05-01-02-01-12" or "DC_a01"
    text: str  # sentence or word code: TESS is split by it


_RAVDESS = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_RAVDESS_EMOTIONS = dict(zip(("01", "02", "03", "04", "05", "06", "07", "08"), LABELS))
_CREMAD = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_(LO|MD|HI|XX|X)$", re.I)
_CREMAD_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy",
                    "NEU": "neutral", "SAD": "sad"}
_SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")
_SAVEE = re.compile(r"^(?:(DC|JE|JK|KL)_)?(sa|su|a|d|f|h|n)(\d\d)$", re.I)
_SAVEE_EMOTIONS = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral",
                   "sa": "sad", "su": "surprised"}
_TESS = re.compile(r"^(OAF|YAF|OA)_([a-z]+)_(angry|disgust|fear|happy|neutral|ps|sad)$", re.I)
_TESS_EMOTIONS = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy",
                  "neutral": "neutral", "ps": "surprised", "sad": "sad"}
# ASED (Amharic): emotion letter + folder number, sentence, repetition, gender, speaker ("n1-01-01-01-01").
_ASED = re.compile(r"^([nfhsa])(\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$", re.I)
_ASED_EMOTIONS = {"n": "neutral", "f": "fearful", "h": "happy", "s": "sad", "a": "angry"}
# nEMO (Polish): SPEAKER_EMOTION_SENTENCE, as its data.tsv says ("EB0_anger_10").
_NEMO = re.compile(r"^([A-Z]{2}\d)_(anger|fear|happiness|neutral|sadness|surprised)_(\d+)$")
_NEMO_EMOTIONS = {"anger": "angry", "fear": "fearful", "happiness": "happy", "neutral": "neutral",
                  "sadness": "sad", "surprised": "surprised"}
# TurEV-DB (Turkish single words): SPEAKER_CODE_WORD ("1157_kz_acik").
_TUREV = re.compile(r"^(1157|1234|1358|1984|6783|7895)_(kz|sk|mt|hl)_(\w+)$", re.I)
_TUREV_EMOTIONS = {"kz": "angry", "sk": "calm", "mt": "happy", "hl": "sad"}
# BAVED (Arabic single words): SPEAKER-GENDER-AGE-WORD-LEVEL-RECORD ("10-f-20-0-1-0").
_BAVED = re.compile(r"^(\d+)-([mf])-(\d+)-([0-6])-([012])-(\d+)$", re.I)
_BAVED_LEVELS = {"0": "low-arousal", "1": "neutral", "2": "high-arousal"}
# Indian EmoSpeech Command: KEYWORD-ENVIRONMENT-EMOTION-TIMESTAMP-USERHASH; "None" marks background.
_EMOSPEECH = re.compile(r"^([a-z]+)-([a-z ]+)-(angry|calm|fearful|happy)-([^-]+)-([0-9a-f]{56})$", re.I)
# BanglaSER (Bengali): RAVDESS-like names with its own emotion codes, in "Actor - NN" folders.
_BANGLASER_FOLDER = re.compile(r"^Actor - (\d\d)$")
_BANGLASER_EMOTIONS = {"01": "happy", "02": "sad", "03": "angry", "04": "surprised", "05": "neutral",
                       "06": "disgust", "07": "fearful"}


def parse_clip(path: str | Path) -> Clip | None:
    """The clip a file is, from its name (and for SAVEE's Surrey layout, its folder); else None."""
    path = Path(path)
    stem = path.stem
    if _BANGLASER_FOLDER.match(path.parent.name) and (m := _RAVDESS.match(stem)):
        emotion, actor = m.group(3), m.group(7)
        if emotion not in _BANGLASER_EMOTIONS:
            return None
        return Clip(path, _BANGLASER_EMOTIONS[emotion], "banglaser", f"bangla-{actor}", stem, m.group(5))
    if m := _RAVDESS.match(stem):
        modality, channel, emotion, actor = m.group(1), m.group(2), m.group(3), m.group(7)
        # 03 = audio only, 01 = speech; song and video files are other data sets.
        if modality != "03" or channel != "01" or emotion not in _RAVDESS_EMOTIONS:
            return None
        return Clip(path, _RAVDESS_EMOTIONS[emotion], "ravdess", f"Actor_{actor}", stem, m.group(5))
    if m := _CREMAD.match(stem):
        actor, sentence, emotion, _ = m.groups()
        clip_id = f"{actor}_{sentence.upper()}_{emotion.upper()}_{m.group(4).upper()}"
        return Clip(path, _CREMAD_EMOTIONS[emotion.upper()], "cremad", actor, clip_id, sentence.upper())
    if m := _SAVEE.match(stem):
        speaker = m.group(1) or path.parent.name
        if speaker.upper() not in _SAVEE_SPEAKERS:
            return None
        speaker, code = speaker.upper(), m.group(2).lower()
        return Clip(path, _SAVEE_EMOTIONS[code], "savee", speaker, f"{speaker}_{code}{m.group(3)}",
                    f"{code}{m.group(3)}")
    if m := _TESS.match(stem):
        speaker = "OAF" if m.group(1).upper() == "OA" else m.group(1).upper()  # OA_bite_neutral
        word, emotion = m.group(2).lower(), m.group(3).lower()
        return Clip(path, _TESS_EMOTIONS[emotion], "tess", speaker, f"{speaker}_{word}_{emotion}", word)
    if m := _ASED.match(stem):
        # The speaker number alone names the speaker: five numbers occur with both gender codes.
        return Clip(path, _ASED_EMOTIONS[m.group(1).lower()], "ased", f"ased-{m.group(6)}", stem.lower(), m.group(3))
    if m := _NEMO.match(stem):
        return Clip(path, _NEMO_EMOTIONS[m.group(2)], "nemo", f"nemo-{m.group(1)}", stem, m.group(3))
    if m := _TUREV.match(stem):
        speaker, code, word = m.group(1), m.group(2).lower(), m.group(3).lower()
        return Clip(path, _TUREV_EMOTIONS[code], "turev", f"turev-{speaker}", f"{speaker}_{code}_{word}", word)
    if m := _BAVED.match(stem):
        speaker, word, level = m.group(1), m.group(4), m.group(5)
        return Clip(path, _BAVED_LEVELS[level], "baved", f"baved-{speaker}", stem.lower(), word)
    if m := _EMOSPEECH.match(stem):
        keyword, emotion, user = m.group(1).lower(), m.group(3).lower(), m.group(5).lower()
        speaker = UNKNOWN_SPEAKER if user == EMOSPEECH_UNKNOWN_USER else f"emospeech-{user[:12]}"
        return Clip(path, emotion, "emospeech", speaker, stem.lower(), keyword)
    return None


def find_clips(roots: Iterable[str | Path]) -> Iterator[Clip]:
    """Every recognised audio file under the given folders (or files), in a stable order."""
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise ManifestError(f"Data folder not found: {root}")
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in files:
            if path.suffix.lower() in AUDIO_EXTENSIONS and (clip := parse_clip(path)):
                yield clip


def write_manifest(clips: Iterable[Clip], out: str | Path) -> int:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(MANIFEST_COLUMNS)
        for clip in clips:
            writer.writerow([clip.path.resolve(), clip.emotion, clip.corpus, clip.speaker, clip.clip_id,
                             clip.text])
            n += 1
    return n


def read_manifest(path: str | Path) -> list[Clip]:
    """A CSV with at least `path,emotion`; paths may be relative to the CSV's folder.

    Missing corpus/speaker columns are filled from the file name where it is recognised.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"Manifest not found: {path}")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "emotion"} <= set(reader.fieldnames):
            raise ManifestError(f"{path} needs at least the columns path,emotion")
        rows = list(reader)
    clips = []
    for row in rows:
        audio = Path(row["path"])
        if not audio.is_absolute():
            audio = path.parent / audio
        parsed = parse_clip(audio)
        clips.append(Clip(
            path=audio,
            emotion=row["emotion"].strip().lower(),
            corpus=row.get("corpus") or (parsed.corpus if parsed else "other"),
            speaker=row.get("speaker") or (parsed.speaker if parsed else ""),
            clip_id=row.get("clip_id") or (parsed.clip_id if parsed else audio.stem),
            text=row.get("text") or (parsed.text if parsed else ""),
        ))
    return clips
