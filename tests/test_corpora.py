"""Label parsing for every corpus from real file-name examples, in the layouts people download."""

from __future__ import annotations

import csv

import pytest

from conftest import voice, wav_bytes
from ser_core.cli import main
from ser_core.corpora import LABELS, find_clips, parse_clip, read_manifest

EXAMPLES = [
    # RAVDESS, Zenodo "Audio_Speech_Actors_01-24" and Kaggle layouts
    ("Audio_Speech_Actors_01-24/Actor_01/03-01-01-01-01-01-01.wav", "ravdess", "neutral", "Actor_01"),
    ("Actor_12/03-01-02-02-01-02-12.wav", "ravdess", "calm", "Actor_12"),
    ("Actor_05/03-01-05-01-02-01-05.flac", "ravdess", "angry", "Actor_05"),
    ("Actor_24/03-01-08-02-02-02-24.wav", "ravdess", "surprised", "Actor_24"),
    ("ravdess/Actor_07/03-01-07-01-01-01-07.wav", "ravdess", "disgust", "Actor_07"),
    # CREMA-D
    ("AudioWAV/1001_DFA_ANG_XX.wav", "cremad", "angry", "1001"),
    ("AudioWAV/1091_WSI_SAD_LO.wav", "cremad", "sad", "1091"),
    ("AudioWAV/1040_ITH_SAD_X.wav", "cremad", "sad", "1040"),
    ("1012_IEO_FEA_HI.opus", "cremad", "fearful", "1012"),
    ("1050_TAI_DIS_MD.mp3", "cremad", "disgust", "1050"),
    ("1023_IOM_NEU_XX.wav", "cremad", "neutral", "1023"),
    ("1023_IOM_HAP_XX.wav", "cremad", "happy", "1023"),
    # SAVEE: Kaggle "ALL" names and the Surrey AudioData/<speaker>/ layout
    ("ALL/DC_a01.wav", "savee", "angry", "DC"),
    ("ALL/JK_sa15.wav", "savee", "sad", "JK"),
    ("ALL/KL_su03.wav", "savee", "surprised", "KL"),
    ("ALL/JE_n30.wav", "savee", "neutral", "JE"),
    ("AudioData/JE/f07.wav", "savee", "fearful", "JE"),
    ("AudioData/DC/h12.wav", "savee", "happy", "DC"),
    ("AudioData/KL/d04.wav", "savee", "disgust", "KL"),
    # TESS, including its misspelt OA_bite_neutral and the "ps" pleasant surprise
    ("TESS Toronto emotional speech set data/OAF_angry/OAF_back_angry.wav", "tess", "angry", "OAF"),
    ("YAF_pleasant_surprised/YAF_chair_ps.wav", "tess", "surprised", "YAF"),
    ("OAF_Fear/OAF_food_fear.wav", "tess", "fearful", "OAF"),
    ("OAF_neutral/OA_bite_neutral.wav", "tess", "neutral", "OAF"),
    ("YAF_sad/YAF_youth_sad.ogg", "tess", "sad", "YAF"),
]


@pytest.mark.parametrize("path, corpus, emotion, speaker", EXAMPLES)
def test_parse_real_file_names(path, corpus, emotion, speaker):
    clip = parse_clip(path)
    assert clip is not None and (clip.corpus, clip.emotion, clip.speaker) == (corpus, emotion, speaker)
    assert clip.emotion in LABELS


def test_clip_ids_do_not_depend_on_layout_or_format():
    assert parse_clip("ALL/DC_a01.wav").clip_id == parse_clip("AudioData/DC/a01.flac").clip_id == "DC_a01"
    assert parse_clip("x/1040_ITH_SAD_XX.opus").clip_id == parse_clip("1040_ITH_SAD_XX.wav").clip_id


@pytest.mark.parametrize("path", [
    "Actor_01/03-02-01-01-01-01-01.wav",  # RAVDESS song: another data set
    "Actor_01/01-01-01-01-01-01-01.mp4",  # RAVDESS video
    "AudioData/XX/a01.wav",  # unknown SAVEE speaker
    "notes/readme.wav",
])
def test_unknown_names_are_not_guessed(path):
    assert parse_clip(path) is None


def test_manifest_command_finds_clips_in_nested_folders(tmp_path):
    for name in ("Actor_03/03-01-04-01-01-01-03.wav", "AudioWAV/1001_DFA_ANG_XX.wav", "x/readme.txt",
                 "OAF_angry/OAF_back_angry.wav"):
        path = tmp_path / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(wav_bytes(voice(0.5), 16000))
    out = tmp_path / "manifest.csv"
    assert main(["manifest", str(tmp_path / "data"), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["emotion"] for r in rows] == ["sad", "angry", "angry"]
    assert {"path", "emotion", "corpus", "speaker"} <= set(rows[0])
    clips = read_manifest(out)
    assert [c.corpus for c in clips] == ["ravdess", "cremad", "tess"]


def test_user_manifest_with_only_path_and_emotion_and_relative_paths(tmp_path):
    (tmp_path / "a.wav").write_bytes(wav_bytes(voice(0.5), 16000))
    (tmp_path / "m.csv").write_text("path,emotion\na.wav,Happy\n")
    [clip] = read_manifest(tmp_path / "m.csv")
    assert clip.path == tmp_path / "a.wav" and clip.emotion == "happy" and clip.corpus == "other"
    assert len(list(find_clips([tmp_path]))) == 0  # "a.wav" names no corpus clip
