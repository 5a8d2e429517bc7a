"""Recognise clips of RAVDESS, CREMA-D, SAVEE, TESS and ASED by file name, in the layouts people download.

Each parser maps a file to its emotion (one of `LABELS`), speaker and a corpus-wide clip id that does
not depend on folder layout or audio format, so split files can name clips without naming paths.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .errors import ManifestError

LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
AUDIO_EXTENSIONS = frozenset(
    ".wav .flac .ogg .opus .mp3 .m4a .aac .webm .mp4 .aiff .aif".split()
)
MANIFEST_COLUMNS = ("path", "emotion", "corpus", "speaker", "clip_id", "text")


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


def parse_clip(path: str | Path) -> Clip | None:
    """The clip a file is, from its name (and for SAVEE's Surrey layout, its folder); else None."""
    path = Path(path)
    stem = path.stem
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
