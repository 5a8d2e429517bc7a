"""Shared fixtures: every test makes its own audio; nothing depends on files outside the repository
except the corpus-backed tests, which skip with a reason when ../shared/corpora is absent.

Under CI=true (`.ci/run`), Hypothesis draws its examples from a fixed seed, and a missing optional
dependency fails the test that needs it instead of skipping it (`require`, `missing`)."""

from __future__ import annotations

import importlib
import io
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import settings

CI = os.environ.get("CI") == "true"
# CI installs every requirement: a skip there would hide a broken install.


def missing(reason: str) -> None:
    """Skip for `reason`; under CI, fail."""
    if CI:
        pytest.fail(reason)
    pytest.skip(reason)


def require(module: str) -> ModuleType:
    """`pytest.importorskip`, except that under CI a module that cannot be imported is a failure."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing(f"{module} cannot be imported: {error}")


# Under CI the same examples every run: a red run then means the change, not a new draw (`make fuzz`
# and local runs keep exploring; an example found there becomes a regression case). Hypothesis's own
# "ci" profile follows any CI variable; this one follows CI=true, as the rest of the suite does.
settings.register_profile("ser-ci", derandomize=True, database=None, print_blob=True)
if CI:
    settings.load_profile("ser-ci")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Feature caches written by the code under test go to a throw-away folder, not ~/.cache.
os.environ.setdefault("SER_CACHE_DIR", tempfile.mkdtemp(prefix="ser-test-cache-"))

from ser_core.io.signals import speech, voice, wav_bytes  # noqa: F401  (tests import them from here)

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"


def edit_metadata(directory: Path, change) -> None:
    """Apply `change` to a model directory's metadata.json (a copied model made into a variant)."""
    import json

    path = directory / "metadata.json"
    metadata = json.loads(path.read_text())
    change(metadata)
    path.write_text(json.dumps(metadata))


def pyav_bytes(samples: np.ndarray, sr: int, container: str, codec: str, rate: int = 48000) -> bytes:
    """Encode with PyAV (FFmpeg): m4a/AAC, webm/Opus, mp4 — formats libsndfile cannot write."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        import soxr

        pcm = soxr.resample(samples, sr, rate).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def corpora() -> Path:
    if not (CORPORA / "manifest.csv").is_file():
        pytest.skip(f"corpus-backed test: {CORPORA} is absent (see README, Data)")
    return CORPORA


EMOTION_PITCH = {"neutral": 110, "calm": 95, "happy": 220, "sad": 85, "angry": 180, "fearful": 260,
                 "disgust": 125, "surprised": 300}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A synthetic corpus: 10 speakers × 8 emotions × 2 takes, one pitch per emotion, with a manifest."""
    root = tmp_path_factory.mktemp("tiny")
    rows = ["path,emotion,corpus,speaker,clip_id,text"]
    for speaker in range(10):
        for emotion, f0 in EMOTION_PITCH.items():
            for take in range(2):
                name = f"s{speaker}_{emotion}_{take}.wav"
                seconds = 1.5 + 0.9 * take  # one and two windows
                clip = voice(seconds, f0=f0 * (1 + 0.03 * speaker), seed=speaker * 100 + take)
                (root / name).write_bytes(wav_bytes(clip, 16000))
                rows.append(f"{name},{emotion},synthetic,spk{speaker},{name[:-4]},t{take}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def trained_model(tiny_dataset, tmp_path_factory) -> Path:
    """A seed-cnn trained for a few epochs on the tiny corpus through the real training entry point."""
    from ser_core.training.corpora import read_manifest
    from ser_core.training.splits import make_split, write_split_file
    from ser_core.training.train import TrainParams, train

    clips = read_manifest(tiny_dataset / "manifest.csv")
    work = tmp_path_factory.mktemp("trained")
    split_file = work / "speaker.csv"
    write_split_file(clips, make_split(clips, "speaker"), split_file)
    out = work / "tiny-seed-cnn"
    train(clips, split_file, "speaker", out, train_params=TrainParams(epochs=3, batch_size=16),
          cache_root=work / "cache", verbose=0)
    return out


@pytest.fixture(scope="session", autouse=True)
def webrtc_loaded_before_tensorflow():
    """aiortc's pylibsrtp (imported by streamlit-webrtc, so by the app's pages) crashes the process
    with a segfault when it is imported after TensorFlow. The app imports it before any model loads
    (ser_core.ui); tests that train a model in-process and then run a page need the same order."""
    import pylibsrtp  # noqa: F401


@pytest.fixture(autouse=True)
def main_module_kept():
    """Streamlit's AppTest leaves `sys.modules["__main__"]` pointing at the temporary script it ran, and
    a process pool started later in the same pytest process (ser predict --workers 2) then re-runs that
    script in each worker, which dies (`__args` is not defined there): put the real one back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


def train_tiny(tiny_dataset: Path, work: Path, recipe_name: str, epochs: int) -> Path:
    """`recipe_name` trained for `epochs` on the tiny corpus's speaker split, through the real training
    entry point, into work/tiny-<recipe_name>."""
    import dataclasses

    from ser_core.training.corpora import read_manifest
    from ser_core.training.splits import make_split, write_split_file
    from ser_core.training.train import RECIPES, train

    clips = read_manifest(tiny_dataset / "manifest.csv")
    split_file = work / "speaker.csv"
    write_split_file(clips, make_split(clips, "speaker"), split_file)
    features, recipe = RECIPES[recipe_name]
    out = work / f"tiny-{recipe_name}"
    train(clips, split_file, "speaker", out, features, dataclasses.replace(recipe, epochs=epochs, batch_size=32),
          cache_root=work / "cache", verbose=0)
    return out


@pytest.fixture(scope="session")
def trained_encoder_model(tiny_dataset, tmp_path_factory) -> Path:
    """An emo-whisper head (frozen Whisper-base encoder) trained for a few epochs on the tiny corpus,
    with one augmented copy, through the real training entry point."""
    return train_tiny(tiny_dataset, tmp_path_factory.mktemp("trained-encoder"), "emo-whisper", epochs=3)
