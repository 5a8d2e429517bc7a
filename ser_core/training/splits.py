"""Train/validation/test protocols, written as split files that name clips, never audio.

- `random`: the original's stratified 80/20 split by file (fixed seed), 10% of train for validation.
  Speakers and sentences appear on both sides: it measures memory of voices as much as emotion.
- `speaker`: no speaker of RAVDESS, SAVEE, CREMA-D or ASED in more than one part (about 20% of
  speakers in test, 10% in validation). TESS has two speakers only, so it is split by word instead.
- `loco` (leave one corpus out): every clip of the held-out corpus is test; the other corpora train
  on their speaker-protocol train and test clips and keep their validation speakers for validation.
  A new language, new microphones, new speakers: the closest we can measure to a user's voice.
- `lolo` (leave one language out): the same with every corpus of one language held out
  (`corpora.LANGUAGES`): the English fold trains on Amharic, Polish, Turkish, Arabic, Hindi/English
  and Bengali only. What the default is chosen on.

Clips whose speaker is unknown (most of Indian EmoSpeech Command) are always training clips: they
could be anyone, so no held-out part can be sure not to share their voices.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import ManifestError
from .corpora import LANGUAGES, UNKNOWN_SPEAKER, Clip

PROTOCOLS = ("random", "speaker", "loco", "lolo")
SPLITS = ("train", "val", "test")
TEST_SHARE, VAL_SHARE = 0.2, 0.1  # of speakers, for the speaker protocol
VAL_SHARE_OF_TRAIN = 0.1  # random protocol: as the original, 10% of the training files
SPLIT_COLUMNS = ("corpus", "clip_id", "speaker", "text", "emotion", "split")
# Corpora too small in speakers for a speaker-independent split: split by what they say instead.
GROUP_BY_TEXT = frozenset({"tess"})


def _stratified(clips: list[Clip], share: float, rng: np.random.Generator) -> set[int]:
    """Indices of a share of `clips`, drawn per emotion so proportions are kept."""
    chosen: set[int] = set()
    by_label: dict[str, list[int]] = {}
    for i, clip in enumerate(clips):
        by_label.setdefault(clip.emotion, []).append(i)
    for indices in by_label.values():
        indices = rng.permutation(indices)
        chosen.update(int(i) for i in indices[: round(len(indices) * share)])
    return chosen


def random_split(clips: list[Clip], seed: int = 42) -> list[str]:
    rng = np.random.default_rng(seed)
    test = _stratified(clips, TEST_SHARE, rng)
    rest = [i for i in range(len(clips)) if i not in test]
    val = {rest[j] for j in _stratified([clips[i] for i in rest], VAL_SHARE_OF_TRAIN, rng)}
    return ["test" if i in test else "val" if i in val else "train" for i in range(len(clips))]


def speaker_split(clips: list[Clip], seed: int = 42) -> list[str]:
    """Whole groups (speakers, or TESS words) to one part each, per corpus."""
    rng = np.random.default_rng(seed)
    group_split: dict[tuple[str, str], str] = {}
    for corpus in sorted({c.corpus for c in clips}):
        key = "text" if corpus in GROUP_BY_TEXT else "speaker"
        groups = sorted({getattr(c, key) for c in clips if c.corpus == corpus} - {UNKNOWN_SPEAKER})
        group_split[corpus, UNKNOWN_SPEAKER] = "train"
        groups = [groups[i] for i in rng.permutation(len(groups))]
        n_test = max(1, round(len(groups) * TEST_SHARE)) if len(groups) > 1 else 0
        n_val = round(len(groups) * VAL_SHARE)
        for i, group in enumerate(groups):
            group_split[corpus, group] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return [group_split[c.corpus, c.text if c.corpus in GROUP_BY_TEXT else c.speaker] for c in clips]


def make_split(clips: list[Clip], protocol: str, seed: int = 42) -> list[str]:
    if protocol == "random":
        return random_split(clips, seed)
    if protocol == "speaker":
        return speaker_split(clips, seed)
    raise ManifestError(f"Unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def write_split_file(clips: Iterable[Clip], splits: Iterable[str], out: str | Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SPLIT_COLUMNS)
        for clip, split in zip(clips, splits):
            writer.writerow([clip.corpus, clip.clip_id, clip.speaker, clip.text, clip.emotion, split])


def extend_split_file(clips: list[Clip], protocol: str, split_file: str | Path, seed: int = 42) -> int:
    """Append rows for the clips of corpora the split file does not name yet (ASED, say), split by the
    same protocol among themselves. Rows already there never move, so earlier models' test sets stay
    their test sets. Returns how many rows were added."""
    known = {corpus for corpus, _ in read_split_file(split_file)}
    new = [clip for clip in clips if clip.corpus not in known]
    if not new:
        return 0
    with Path(split_file).open("a", newline="") as f:
        writer = csv.writer(f)
        for clip, split in zip(new, make_split(new, protocol, seed)):
            writer.writerow([clip.corpus, clip.clip_id, clip.speaker, clip.text, clip.emotion, split])
    return len(new)


def read_split_file(path: str | Path) -> dict[tuple[str, str], str]:
    """(corpus, clip_id) → split."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"Split file not found: {path}")
    with path.open(newline="") as f:
        return {(row["corpus"], row["clip_id"]): row["split"] for row in csv.DictReader(f)}


def held_out_corpora(held_out: str) -> tuple[str, ...]:
    """The corpora a held-out name stands for: a language's (`corpora.LANGUAGES`), or one corpus."""
    return LANGUAGES.get(held_out, (held_out,))


def assign(clips: list[Clip], split_file: str | Path, held_out: str | None = None) -> dict[str, list[Clip]]:
    """Clips grouped by split as the split file says; clips it does not name are left out. With
    `held_out` (a corpus, or a language of `corpora.LANGUAGES`), the leave-one-corpus-out or
    leave-one-language-out protocol built on that split file."""
    table = read_split_file(split_file)
    tested = held_out_corpora(held_out) if held_out is not None else ()
    if held_out is not None and not set(tested) & {corpus for corpus, _ in table}:
        raise ManifestError(f"{split_file} names no clip of {held_out!r}")
    parts: dict[str, list[Clip]] = {name: [] for name in SPLITS}
    for clip in clips:
        if (split := table.get((clip.corpus, clip.clip_id))) is None:
            continue
        if held_out is not None:
            split = "test" if clip.corpus in tested else "val" if split == "val" else "train"
        parts[split].append(clip)
    return parts
