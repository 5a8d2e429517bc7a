"""Feature invariants on synthetic signals."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import voice, wav_bytes
from ser_core.io.audio import load_audio
from ser_core.frontend.features import (FeatureCache, FeatureParams, Normalizer, compute, extract, frame_windows,
    window_starts)

PARAMS = FeatureParams()


def test_the_original_input_shape_25_by_216():
    assert PARAMS.input_shape == (25, 216)
    _, features = extract(voice(3.0), PARAMS)
    assert features.shape[1:] == (25, 216) and features.dtype == np.float32


LOGMEL = FeatureParams(kind="logmel", n_mels=64, n_fft=512, win_length=400, hop_length=160, fmin=50.0, window_s=3.0)


@pytest.mark.parametrize("params", [PARAMS, LOGMEL], ids=["mfcc", "logmel"])
def test_features_are_librosas_own(params):
    """The fast path computes what librosa's melspectrogram → power_to_db → mfcc compute."""
    import librosa

    samples = voice(3.4)
    windows = frame_windows(samples, params, window_starts(len(samples), params))
    reference = []
    for window in windows:
        log_mel = librosa.power_to_db(librosa.feature.melspectrogram(
            y=window, sr=params.sample_rate, n_fft=params.n_fft, win_length=params.win_length,
            hop_length=params.hop_length, n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax))
        reference.append(librosa.feature.mfcc(S=log_mel, n_mfcc=params.n_mfcc) if params.kind == "mfcc" else log_mel)
    np.testing.assert_allclose(compute(windows, params), np.stack(reference), atol=1e-3)


def test_a_windows_features_do_not_depend_on_its_batch():
    loud, quiet = voice(2.5, seed=1), 0.001 * voice(2.5, seed=2)
    together = compute(np.stack([loud, quiet]), PARAMS)
    np.testing.assert_allclose(together[1], compute(quiet[None], PARAMS)[0], atol=1e-4)


@pytest.mark.parametrize("seconds", [0.3, 2.5, 3.0, 3.7, 7.3, 61.0])
def test_windows_cover_the_whole_clip(seconds):
    n = int(seconds * PARAMS.sample_rate)
    starts = window_starts(n, PARAMS)
    win = PARAMS.window_samples
    hop = round(PARAMS.window_hop_s * PARAMS.sample_rate)
    assert np.all(np.diff(starts) > 0) and starts[0] >= 0
    if n > win:
        assert starts[-1] + win <= n  # no padding when the audio is long enough
        assert n - (starts[-1] + win) <= hop // 2  # never silently cut: at most half a hop unheard
        assert np.all(np.diff(starts) <= win)  # no gaps between windows
    else:
        assert list(starts) == [0]


def test_features_are_finite_on_silence_and_on_short_audio():
    for samples in (np.zeros(3 * 16000, np.float32), voice(0.4)):
        _, features = extract(samples, PARAMS)
        assert np.all(np.isfinite(features))


def test_file_and_array_give_the_same_features(tmp_path):
    clip = voice(3.2)
    path = tmp_path / "clip.flac"
    path.write_bytes(wav_bytes(clip, 16000, "FLOAT", "WAV"))
    from_file = extract(load_audio(path).samples, PARAMS)[1]
    from_array = extract(clip, PARAMS)[1]
    np.testing.assert_allclose(from_file, from_array, atol=1e-4)


def test_different_signals_give_different_features():
    low = extract(voice(3.0, f0=100), PARAMS)[1]
    high = extract(voice(3.0, f0=260), PARAMS)[1]
    assert np.abs(low - high).mean() > 1.0


def test_normalizer_standardises_each_coefficient_and_round_trips():
    features = np.random.default_rng(0).normal(5, 3, size=(40, 25, 216)).astype(np.float32)
    normalizer = Normalizer.fit(features)
    out = normalizer(features)
    np.testing.assert_allclose(out.mean(axis=(0, 2)), 0, atol=1e-3)
    np.testing.assert_allclose(out.std(axis=(0, 2)), 1, atol=1e-3)
    again = Normalizer.from_dict(normalizer.to_dict())
    np.testing.assert_allclose(again(features), out, atol=1e-5)


def test_params_round_trip_and_key_the_cache(tmp_path):
    assert FeatureParams.from_dict(PARAMS.to_dict()) == PARAMS
    other = FeatureParams(n_mfcc=40)
    assert other.digest() != PARAMS.digest()
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(voice(1.0), 16000))
    cache = FeatureCache(PARAMS, tmp_path / "cache")
    assert cache.get(path) is None
    cache.put(path, np.ones((1, 25, 216), np.float32))
    assert cache.get(path).shape == (1, 25, 216)
    assert FeatureCache(other, tmp_path / "cache").get(path) is None
    moved = tmp_path / "copied corpus" / "a.wav"  # a corpus copied or unpacked again: new place, new mtime
    moved.parent.mkdir()
    moved.write_bytes(path.read_bytes())
    assert cache.get(moved) is not None
    assert cache.get(moved.rename(moved.with_name("b.wav"))) is None  # another clip, seeded by its own id
    path.write_bytes(wav_bytes(voice(1.1), 16000))
    assert cache.get(path) is None  # the file changed


def test_long_audio_is_extracted_in_chunks_with_the_same_result():
    from ser_core.frontend import features as features_module

    clip = voice(100.0)
    _, whole = extract(clip, PARAMS)
    chunk = features_module.EXTRACT_CHUNK_WINDOWS
    try:
        features_module.EXTRACT_CHUNK_WINDOWS = 7
        _, chunked = extract(clip, PARAMS)
    finally:
        features_module.EXTRACT_CHUNK_WINDOWS = chunk
    assert len(whole) > 7
    np.testing.assert_array_equal(whole, chunked)


def test_extracting_clips_fills_the_cache_and_reuses_it(tmp_path, monkeypatch):
    from ser_core.training import dataset
    from ser_core.training.corpora import Clip

    clips = []
    for i in range(3):
        path = tmp_path / f"c{i}.wav"
        path.write_bytes(wav_bytes(voice(1.0 + i, seed=i), 16000))
        clips.append(Clip(path, "happy", "x", "s", f"c{i}", ""))
    first = dataset.extract_clips(clips, PARAMS, cache_root=tmp_path / "cache", workers=1)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 3

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached clip was decoded again")

    monkeypatch.setattr(dataset, "load_audio", no_decoding)
    second = dataset.extract_clips(clips, PARAMS, cache_root=tmp_path / "cache", workers=1)
    for a, b in zip(first.features, second.features):
        np.testing.assert_array_equal(a, b)


# --- Whisper's log-mel and level normalisation -------------------------------------------------------

def whisper_params(**changes):
    import dataclasses

    from ser_core.training.train import WHISPER_FEATURES

    return dataclasses.replace(WHISPER_FEATURES, **changes)


def test_whisper_features_are_80_by_400_for_a_4_s_window():
    params = whisper_params()
    assert params.input_shape == (80, 400)
    _, features = extract(voice(4.0), params)
    assert features.shape == (1, 80, 400) and features.dtype == np.float32 and np.all(np.isfinite(features))
    starts, longer = extract(voice(9.0), params)  # windows every 2 s, each 80 × 400
    assert starts.tolist() == [0.0, 2.0, 4.0] and longer.shape == (3, 80, 400)


def test_whisper_features_are_whispers_log_mel():
    """librosa's STFT (25 ms Hann every 10 ms, last frame dropped) → 80 Slaney mel bands → log10, 8
    decades below the window's maximum, (x + 4) / 4: Whisper's log_mel_spectrogram."""
    import librosa

    params = whisper_params(target_level_dbfs=None)
    window = voice(4.0, seed=5)
    power = np.abs(librosa.stft(window, n_fft=400, hop_length=160, window="hann", center=True, pad_mode="constant")) ** 2
    mel = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80) @ power[:, :-1]
    log_mel = np.log10(np.maximum(mel, 1e-10))
    reference = (np.maximum(log_mel, log_mel.max() - 8.0) + 4.0) / 4.0
    np.testing.assert_allclose(compute(window[None], params)[0], reference, atol=1e-4)


def test_level_normalisation_makes_quiet_and_loud_voices_alike():
    quiet, loud = voice(4.0, seed=2, level_db=-45.0), voice(4.0, seed=2, level_db=-10.0)
    normalised = compute(np.stack([quiet, loud]), whisper_params())
    np.testing.assert_allclose(normalised[0], normalised[1], atol=1e-3)
    as_recorded = compute(np.stack([quiet, loud]), whisper_params(target_level_dbfs=None))
    assert np.abs(as_recorded[0] - as_recorded[1]).mean() > 0.5  # 35 dB apart: 3.5 decades / 4


def test_normalise_level_brings_active_speech_to_the_target():
    from ser_core.frontend.features import normalise_level
    from ser_core.io.levels import active_level_dbfs

    params = whisper_params()
    windows = np.stack([voice(4.0, level_db=-45.0), voice(4.0, level_db=-3.0)])
    out = normalise_level(windows, params)
    np.testing.assert_allclose(active_level_dbfs(out, 16000), params.target_level_dbfs, atol=0.01)


def test_level_gain_is_capped():
    from ser_core.frontend.features import MAX_LEVEL_GAIN_DB, normalise_level
    from ser_core.io.levels import active_level_dbfs

    params = whisper_params()
    faint = voice(4.0, level_db=-100.0)[None]  # would need ~77 dB to reach -26 dBFS
    before = active_level_dbfs(faint, 16000)[0]
    after = active_level_dbfs(normalise_level(faint, params), 16000)[0]
    assert params.target_level_dbfs - before > MAX_LEVEL_GAIN_DB
    assert after - before == pytest.approx(MAX_LEVEL_GAIN_DB, abs=0.01)
    silent = normalise_level(np.zeros((1, 64000), np.float32), params)
    assert np.all(silent == 0.0)


def test_active_level_ignores_pauses_and_padding():
    from ser_core.io.levels import active_level_dbfs

    t = np.arange(32000) / 16000
    sine = (0.1 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    padded = np.concatenate([sine, np.zeros(32000, np.float32)])
    levels = active_level_dbfs(np.stack([np.concatenate([sine, sine]), padded]), 16000)
    np.testing.assert_allclose(levels, 20 * np.log10(0.1 / np.sqrt(2)), atol=0.01)  # -23.0 dBFS either way


def test_librosa_is_compiled_by_one_process_at_a_time(tmp_path):
    """librosa's numba functions are compiled and cached only under a machine-wide lock, and what one
    process cached there, the next can call. Unguarded, two processes compiling at once on a fresh
    install (spawned workers) could cache one's gufunc kernel beside the other's wrapper, and localmin
    (YIN, the voice profile) then crashed every later process with a segmentation fault (numba issue
    10128)."""
    import fcntl
    import os
    import subprocess
    import sys
    import time

    from ser_core.frontend.features import LIBROSA_IMPORT_LOCK

    cache = tmp_path / "numba"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    importing = "from ser_core.frontend.features import import_librosa; import_librosa('librosa.core.pitch')"
    with open(LIBROSA_IMPORT_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiting = subprocess.Popen([sys.executable, "-c", importing], env=env)
        time.sleep(8.0)  # long enough for librosa to import and start compiling, were it not waiting
        assert waiting.poll() is None and not list(cache.rglob("*.nbc")), "compiled while another process held the lock"
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert waiting.wait(timeout=600) == 0
    assert list(cache.rglob("guf-*localmin*.nbc")), "nothing was compiled: the test tested nothing"
    calling = ("import numpy as np, librosa; x = np.random.default_rng(0).standard_normal((64, 40)); "
               "print(int(librosa.util.localmin(x, axis=0).sum()))")
    called = subprocess.run([sys.executable, "-c", calling], env=env, capture_output=True, text=True, timeout=600)
    assert called.returncode == 0, called.stderr[-2000:]
    assert int(called.stdout) > 0
