"""The numpy YIN serving uses for a voice profile's pitch range, against librosa.yin itself."""

import numpy as np
import pytest
from conftest import require

from ser_core.frontend.pitch import yin
from ser_core.io.signals import speech, voice
from ser_core.serving.profile import pitch_percentiles


def test_a_steady_tone_reads_as_its_frequency():
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 180.0 * t) + 0.1 * np.sin(2 * np.pi * 360.0 * t)).astype(np.float32)
    f0 = yin(tone, fmin=60.0, fmax=500.0, sr=sr, frame_length=1024, hop_length=320)
    assert len(f0) == 1 + sr // 320
    assert np.allclose(np.median(f0[5:-5]), 180.0, rtol=0.005)


@pytest.mark.parametrize("signal", [speech(4.0, 16000, seed=3), voice(3.0, 16000, f0=210.0),
                                    0.01 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)],
                         ids=["speech", "gliding-voice", "noise"])
def test_yin_is_librosa_s(signal):
    librosa = require("librosa")  # the app/train extras' dependency is the reference
    expected = librosa.yin(signal, fmin=60.0, fmax=500.0, sr=16000, frame_length=1024, hop_length=320)
    got = yin(signal, fmin=60.0, fmax=500.0, sr=16000, frame_length=1024, hop_length=320)
    assert got.shape == expected.shape
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-3)


def test_the_profile_s_pitch_range_follows_the_voice():
    low, high = (pitch_percentiles(voice(3.0, 16000, f0=f0), 16000) for f0 in (110.0, 220.0))
    assert low["p10"] <= low["p50"] <= low["p90"]
    assert 1.7 < high["p50"] / low["p50"] < 2.3
