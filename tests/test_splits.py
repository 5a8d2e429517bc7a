"""Protocols: the speaker split shares no speaker (TESS: no word) between parts — checked on
synthetic clips and on the committed split files the shipped models were trained with."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from ser_core.labels import LABELS
from ser_core.training.corpora import Clip
from ser_core.training.splits import SPLITS, assign, make_split, write_split_file

ROOT = Path(__file__).resolve().parent.parent
SPLIT_DIR = ROOT / "models" / "splits"


def synthetic_clips() -> list[Clip]:
    clips = []
    for corpus, speakers in (("ravdess", 20), ("cremad", 30), ("savee", 4)):
        for s in range(speakers):
            for e, emotion in enumerate(LABELS):
                for take in range(3):
                    clips.append(Clip(Path(f"{corpus}/{s}_{e}_{take}.wav"), emotion, corpus, f"{corpus}{s}",
                                      f"{s}_{e}_{take}", f"sentence{take}"))
    for speaker in ("OAF", "YAF"):
        for w in range(50):
            for emotion in LABELS[2:]:
                clips.append(Clip(Path(f"tess/{speaker}_{w}_{emotion}.wav"), emotion, "tess", speaker,
                                  f"{speaker}_{w}_{emotion}", f"word{w}"))
    return clips


def groups_per_split(rows, key):
    seen = defaultdict(set)
    for row in rows:
        seen[row[key]].add(row["split"])
    return seen


def check_disjoint(rows):
    rows = list(rows)
    others = [r for r in rows if r["corpus"] != "tess"]
    tess = [r for r in rows if r["corpus"] == "tess"]
    assert all(len(s) == 1 for s in groups_per_split(others, "speaker").values())
    assert all(len(s) == 1 for s in groups_per_split(tess, "text").values())
    for corpus in {r["corpus"] for r in rows}:
        # speakers (TESS: words), not clips: a few BAVED speakers recorded ten times as much as most
        key = "text" if corpus == "tess" else "speaker"
        parts = Counter(r["split"] for r in {(r[key], r["split"]): r for r in rows if r["corpus"] == corpus}.values())
        assert parts["test"] > 0 and parts["train"] > parts["test"], (corpus, parts)


def as_rows(clips, splits):
    return [{"corpus": c.corpus, "speaker": c.speaker, "text": c.text, "split": s} for c, s in zip(clips, splits)]


def test_speaker_protocol_is_speaker_and_word_disjoint():
    clips = synthetic_clips()
    check_disjoint(as_rows(clips, make_split(clips, "speaker")))


def test_random_protocol_is_80_20_stratified_with_10_percent_validation():
    clips = synthetic_clips()
    splits = make_split(clips, "random")
    share = Counter(splits)
    assert share["test"] / len(clips) == pytest.approx(0.2, abs=0.01)
    assert share["val"] / (share["train"] + share["val"]) == pytest.approx(0.1, abs=0.01)
    for emotion in LABELS:
        of_label = [s for c, s in zip(clips, splits) if c.emotion == emotion]
        assert of_label.count("test") / len(of_label) == pytest.approx(0.2, abs=0.02)


def test_splits_are_reproducible_and_round_trip(tmp_path):
    clips = synthetic_clips()
    assert make_split(clips, "speaker", seed=3) == make_split(clips, "speaker", seed=3)
    write_split_file(clips, make_split(clips, "random"), tmp_path / "r.csv")
    parts = assign(clips, tmp_path / "r.csv")
    assert sum(len(parts[s]) for s in SPLITS) == len(clips)


@pytest.mark.skipif(not (SPLIT_DIR / "speaker.csv").exists(), reason="no committed speaker split file")
def test_committed_speaker_split_is_disjoint():
    with (SPLIT_DIR / "speaker.csv").open() as f:
        check_disjoint(csv.DictReader(f))


@pytest.mark.skipif(not (SPLIT_DIR / "random.csv").exists(), reason="no committed random split file")
def test_committed_split_files_name_clips_not_audio_paths():
    for name in ("random.csv", "speaker.csv"):
        header = (SPLIT_DIR / name).read_text().splitlines()[0].split(",")
        assert "path" not in header and {"corpus", "clip_id", "split"} <= set(header)


# --- new corpora appended to an existing split file, and leave-one-corpus-out ------------------------

def ased_clips(speakers: int = 30) -> list[Clip]:
    """ASED-like clips: five emotions, two sentences, speakers named as the parser names them."""
    clips = []
    for s in range(1, speakers + 1):
        for e, (letter, emotion) in enumerate(zip("nfhsa", ("neutral", "fearful", "happy", "sad", "angry"))):
            for sentence in (1, 2):
                clip_id = f"{letter}{e + 1}-{sentence:02d}-01-{1 + s % 2:02d}-{s:02d}"
                clips.append(Clip(Path(f"ased/{clip_id}.wav"), emotion, "ased", f"ased-{s:02d}", clip_id, f"{sentence:02d}"))
    return clips


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_extend_split_file_appends_only_new_corpora_and_never_moves_a_row(tmp_path):
    from ser_core.training.splits import extend_split_file

    old = synthetic_clips()
    split_file = tmp_path / "speaker.csv"
    write_split_file(old, make_split(old, "speaker"), split_file)
    before = split_file.read_bytes()
    new = ased_clips()

    added = extend_split_file(old + new, "speaker", split_file)
    assert added == len(new)
    after = split_file.read_bytes()
    assert after.startswith(before)  # existing rows byte for byte where they were
    rows = read_rows(split_file)
    assert len(rows) == len(old) + len(new)
    appended = rows[len(old):]
    assert {r["corpus"] for r in appended} == {"ased"}
    # the new corpus is split by the same protocol among itself
    assert [r["split"] for r in appended] == make_split(new, "speaker")
    check_disjoint(rows)  # every ASED speaker in one part, each corpus with a test set

    assert extend_split_file(old + new, "speaker", split_file) == 0  # idempotent
    assert split_file.read_bytes() == after
    # a clip of a corpus already named is not added (its corpus's split is fixed)
    extra = Clip(Path("ravdess/x.wav"), "happy", "ravdess", "ravdess99", "x", "s")
    assert extend_split_file(old + new + [extra], "speaker", split_file) == 0
    assert split_file.read_bytes() == after


def test_extended_split_file_assigns_every_clip(tmp_path):
    from ser_core.training.splits import extend_split_file

    old, new = synthetic_clips(), ased_clips()
    split_file = tmp_path / "random.csv"
    write_split_file(old, make_split(old, "random"), split_file)
    extend_split_file(old + new, "random", split_file)
    parts = assign(old + new, split_file)
    assert sum(len(parts[s]) for s in SPLITS) == len(old) + len(new)
    ased_test = [c for c in parts["test"] if c.corpus == "ased"]
    assert len(ased_test) / len(new) == pytest.approx(0.2, abs=0.02)


@pytest.fixture
def speaker_split_file(tmp_path) -> tuple[list[Clip], Path]:
    clips = synthetic_clips() + ased_clips()
    split_file = tmp_path / "speaker.csv"
    write_split_file(clips, make_split(clips, "speaker"), split_file)
    return clips, split_file


@pytest.mark.parametrize("held_out", ["ased", "ravdess", "tess"])
def test_leave_one_corpus_out_tests_on_the_whole_held_out_corpus(speaker_split_file, held_out):
    from ser_core.training.splits import read_split_file

    clips, split_file = speaker_split_file
    table = read_split_file(split_file)
    parts = assign(clips, split_file, held_out=held_out)
    held = [c for c in clips if c.corpus == held_out]
    assert sorted(c.clip_id for c in parts["test"]) == sorted(c.clip_id for c in held)  # all of it, only it
    assert {c.corpus for c in parts["test"]} == {held_out}
    assert not any(c.corpus == held_out for c in parts["train"] + parts["val"])
    others = [c for c in clips if c.corpus != held_out]
    # validation speakers stay validation speakers; the others' test speakers train
    assert {(c.corpus, c.clip_id) for c in parts["val"]} == {(c.corpus, c.clip_id) for c in others
                                                              if table[c.corpus, c.clip_id] == "val"}
    assert len(parts["train"]) + len(parts["val"]) == len(others)
    groups = {part: {(c.corpus, c.text if c.corpus == "tess" else c.speaker) for c in parts[part]}
              for part in ("train", "val")}
    assert not groups["train"] & groups["val"]  # no speaker (TESS: word) both trains and validates


def test_leave_one_corpus_out_leaves_unnamed_clips_out(speaker_split_file):
    clips, split_file = speaker_split_file
    stranger = Clip(Path("ased/n1-09-01-01-99.wav"), "neutral", "ased", "ased-99", "n1-09-01-01-99", "09")
    parts = assign(clips + [stranger], split_file, held_out="ased")
    assert stranger not in parts["test"] + parts["train"] + parts["val"]


def test_unknown_held_out_corpus_is_refused(speaker_split_file):
    from ser_core.errors import ManifestError

    clips, split_file = speaker_split_file
    with pytest.raises(ManifestError, match="emodb"):
        assign(clips, split_file, held_out="emodb")


def test_leave_one_language_out_holds_out_every_corpus_of_the_language(speaker_split_file):
    clips, split_file = speaker_split_file
    parts = assign(clips, split_file, held_out="english")
    assert {c.corpus for c in parts["test"]} == {c.corpus for c in clips} - {"ased"}
    assert {c.corpus for c in parts["train"] + parts["val"]} == {"ased"}
    assert len(parts["test"]) == sum(c.corpus != "ased" for c in clips)


def test_clips_of_unknown_speakers_only_ever_train():
    from ser_core.training.corpora import UNKNOWN_SPEAKER

    known = [Clip(Path(f"e/{s}-{i}.wav"), "calm", "emospeech", f"emospeech-{s}", f"{s}-{i}", "help")
             for s in range(20) for i in range(5)]
    unknown = [Clip(Path(f"e/u-{i}.wav"), "angry", "emospeech", UNKNOWN_SPEAKER, f"u-{i}", "stop") for i in range(300)]
    for seed in range(5):
        splits = make_split(known + unknown, "speaker", seed=seed)
        assert set(splits[len(known):]) == {"train"}
        assert {"train", "val", "test"} == set(splits[: len(known)])
