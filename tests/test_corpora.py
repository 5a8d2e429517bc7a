"""Label parsing for every corpus from real file-name examples, in the layouts people download."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import voice, wav_bytes
from ser_core.cli import main
from ser_core.labels import LABELS
from ser_core.training.corpora import find_clips, parse_clip, read_manifest

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
    # nEMO (Polish): samples/SPEAKER_EMOTION_SENTENCE
    ("nEMO/samples/EB0_anger_10.wav", "nemo", "angry", "nemo-EB0"),
    ("samples/WR0_surprised_64.wav", "nemo", "surprised", "nemo-WR0"),
    ("KS0_happiness_3.flac", "nemo", "happy", "nemo-KS0"),
    # TurEV-DB (Turkish): Sound Source/<Emotion>/SPEAKER_CODE_WORD
    ("TurEV-DB/Sound Source/Angry/1157_kz_acik.wav", "turev", "angry", "turev-1157"),
    ("Sound Source/Calm/7895_sk_bugu.wav", "turev", "calm", "turev-7895"),
    ("Sound Source/Sad/1234_hl_beste.wav", "turev", "sad", "turev-1234"),
    # BAVED (Arabic): <word>/SPEAKER-GENDER-AGE-WORD-LEVEL-RECORD; level 1 is neutral
    ("BAVED/3/10-f-20-3-1-12.wav", "baved", "neutral", "baved-10"),
    # Indian EmoSpeech Command: <place>/KEYWORD-ENVIRONMENT-EMOTION-TIMESTAMP-USER
    ("Metro/help-safe-fearful-20190709085906-3d9d3e0eb86e940eb4b15e5b1fe903aa01080f176dffc7547c677ce3.wav",
     "emospeech", "fearful", "emospeech-3d9d3e0eb86e"),
    ("Near Lake/yes-glass break-angry-??-be5d8177fbf519ffda0603890062866b0408f7ed79c9a4d88cd43fac.wav",
     "emospeech", "angry", "emospeech-be5d8177fbf5"),
    ("House/bacho-safe-calm-1561964985.764769-d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f.wav",
     "emospeech", "calm", "unknown"),
    # BanglaSER Extended (Bengali): RAVDESS-like names, its own codes (06 disgust, 07 fear)
    ("complete/Actor - 35/03-01-06-01-04-01-35.wav", "banglaser", "disgust", "bangla-35"),
    ("complete/Actor - 44/03-01-07-02-01-03-44.wav", "banglaser", "fearful", "bangla-44"),
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
    # Indian EmoSpeech Command's background noise: no speech, no emotion
    "Roads/background-safe-None-20190701193438-d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f.wav",
    "Sound Source/Angry/9999_kz_acik.wav",  # not a TurEV-DB speaker
    "nEMO/samples/EB0_joy_1.wav",  # not a nEMO emotion
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


# --- ASED (Amharic): emotion letter + folder number, sentence, repetition, gender, speaker ----------------

ASED_EXAMPLES = [
    ("ased/01Neutral/n1-01-01-01-01.opus", "neutral", "ased-01", "n1-01-01-01-01", "01"),
    ("ased/02Fearful/f2-07-02-02-06.opus", "fearful", "ased-06", "f2-07-02-02-06", "07"),
    ("ased/03Happy/h3-03-01-02-40.wav", "happy", "ased-40", "h3-03-01-02-40", "03"),
    ("ased/04Sad/s4-05-01-01-27.opus", "sad", "ased-27", "s4-05-01-01-27", "05"),
    ("ased/04Sad/S4-04-02-01-29.opus", "sad", "ased-29", "s4-04-02-01-29", "04"),  # the one upper-case file
    ("ased/05Angry/A5-02-01-02-65.flac", "angry", "ased-65", "a5-02-01-02-65", "02"),
]


@pytest.mark.parametrize("path, emotion, speaker, clip_id, text", ASED_EXAMPLES)
def test_parse_ased_file_names(path, emotion, speaker, clip_id, text):
    clip = parse_clip(path)
    assert clip is not None
    assert (clip.corpus, clip.emotion, clip.speaker, clip.clip_id, clip.text) == ("ased", emotion, speaker, clip_id, text)


def test_ased_ids_do_not_depend_on_case_layout_or_format():
    assert parse_clip("04Sad/S4-04-02-01-29.opus").clip_id == parse_clip("x/s4-04-02-01-29.wav").clip_id
    # the speaker number alone names the speaker, whichever gender code the file carries
    assert parse_clip("n1-01-01-01-05.wav").speaker == parse_clip("n1-01-01-02-05.wav").speaker == "ased-05"


@pytest.mark.parametrize("path", [
    "ased/x1-01-01-01-01.wav",  # no such emotion letter
    "ased/n1-01-01-01.wav",  # a field short
    "ased/n1-01-01-01-01-01.wav",  # a field too many
    "ased/n12-01-01-01-01.wav",  # two-digit folder number
    "ased/n1_01_01_01_01.wav",  # other separators
])
def test_names_like_ased_that_are_not(path):
    assert parse_clip(path) is None


def test_every_ased_file_parses_as_its_folder_says(corpora):
    """The real files: every one recognised, the emotion its folder names, unique clip ids, and the
    speakers the corpus manifest lists."""
    clips = list(find_clips([corpora / "ased"]))
    assert len(clips) == 2474 and {c.corpus for c in clips} == {"ased"}
    for clip in clips:
        assert clip.path.parent.name[2:].lower() == clip.emotion, clip.path  # 04Sad → sad
    assert len({c.clip_id for c in clips}) == len(clips)
    with (corpora / "manifest.csv").open() as f:
        listed = {row["path"]: (row["speaker"], row["emotion"]) for row in csv.DictReader(f) if row["corpus"] == "ased"}
    assert {str(c.path.relative_to(corpora)): (c.speaker, c.emotion) for c in clips} == listed


@pytest.mark.parametrize("path, emotion, allowed", [
    ("BAVED/0/10-f-20-0-0-3.wav", "low-arousal", {"calm", "sad"}),
    ("BAVED/5/7-m-31-5-2-3.wav", "high-arousal", {"happy", "angry", "fearful", "disgust", "surprised"}),
    ("BAVED/5/7-m-31-5-1-3.wav", "neutral", {"neutral"}),
])
def test_baved_arousal_levels_name_sets_of_classes(path, emotion, allowed):
    from ser_core.training.corpora import candidates

    clip = parse_clip(path)
    assert (clip.corpus, clip.emotion) == ("baved", emotion)
    assert set(candidates(clip.emotion)) == allowed


def test_corpus_label_spaces_and_languages_cover_every_corpus():
    from ser_core.training.corpora import (CORPUS_LABELS, CORPUS_NAMES, LABEL_SETS, LANGUAGE_NAMES, LANGUAGES,
        corpus_labels, languages_of)

    assert set(CORPUS_LABELS) == set(CORPUS_NAMES) == {c for cs in LANGUAGES.values() for c in cs}
    assert set(LANGUAGE_NAMES) == set(LANGUAGES)
    assert languages_of(["tess", "ravdess", "nemo"]) == ["English", "Polish"]
    assert all(set(labels) <= set(LABELS) for labels in CORPUS_LABELS.values())
    assert corpus_labels("my-call-centre") == LABELS
    # the two arousal sets and neutral split our classes without overlap
    members = [label for group in LABEL_SETS.values() for label in group] + ["neutral"]
    assert sorted(members) == sorted(LABELS)


def test_banglaser_is_not_read_as_ravdess():
    # The same name in a RAVDESS folder is RAVDESS's fearful (06); in BanglaSER's, its disgust.
    assert parse_clip("Actor_05/03-01-06-01-01-01-05.wav").emotion == "fearful"
    assert parse_clip("Actor - 05/03-01-06-01-01-01-05.wav").emotion == "disgust"


MORE_CORPORA = Path(__file__).resolve().parents[1].parent / "corpora-more"


@pytest.mark.skipif(not MORE_CORPORA.is_dir(), reason="the five fetched corpora are not at ../corpora-more "
                    "(see the README's Data section; CI does not have them)")
def test_fetched_corpora_parse_with_the_published_counts():
    from collections import Counter

    counts = Counter(clip.corpus for clip in find_clips([MORE_CORPORA]))
    assert counts == {"nemo": 4481, "turev": 1735, "baved": 1935, "emospeech": 7577, "banglaser": 261}
