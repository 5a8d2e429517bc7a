"""Protocols: the speaker split shares no speaker (TESS: no word) between parts — checked on
synthetic clips and on the committed split files the shipped models were trained with."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from ser_core.corpora import LABELS, Clip
from ser_core.splits import SPLITS, assign, make_split, write_split_file

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
        parts = Counter(r["split"] for r in rows if r["corpus"] == corpus)
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
