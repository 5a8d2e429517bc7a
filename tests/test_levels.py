"""ser_core.io.levels, the one home of the dB rules: levels of known signals, and pauses that do not count."""

import numpy as np
import pytest

from ser_core.io.levels import (ACTIVE_FRAME_S, LOUDEST_FRAME_S, SILENCE_DBFS, active_level_dbfs, frame_power,
                                loudest_frame_dbfs, power_db, rms_dbfs, speech_seconds)

SR = 16000


def tone(seconds: float, dbfs: float, hz: float = 220.0) -> np.ndarray:
    """A sine whose RMS level is `dbfs`."""
    t = np.arange(round(seconds * SR)) / SR
    return (np.sqrt(2) * 10 ** (dbfs / 20) * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_a_tone_reads_its_level_by_every_measure():
    x = tone(1.0, -20.0)
    assert rms_dbfs(x) == pytest.approx(-20.0, abs=0.01)
    assert loudest_frame_dbfs(x, SR) == pytest.approx(-20.0, abs=0.05)
    assert active_level_dbfs(x[None, :], SR)[0] == pytest.approx(-20.0, abs=0.05)


def test_pauses_lower_the_rms_but_not_the_active_level():
    x = np.concatenate([tone(1.0, -20.0), np.zeros(3 * SR, np.float32)])
    assert rms_dbfs(x) == pytest.approx(-20.0 + 10 * np.log10(1 / 4), abs=0.05)  # a quarter of the time
    assert active_level_dbfs(x[None, :], SR)[0] == pytest.approx(-20.0, abs=0.05)
    assert loudest_frame_dbfs(x, SR) == pytest.approx(-20.0, abs=0.05)


def test_speech_seconds_counts_active_frames_above_silence():
    speech_then_pause = np.concatenate([tone(1.0, -20.0), np.zeros(SR, np.float32)])
    assert speech_seconds(speech_then_pause, SR) == pytest.approx(1.0, abs=ACTIVE_FRAME_S)
    assert speech_seconds(tone(1.0, SILENCE_DBFS - 10), SR) == 0.0  # a faint hum is no voice
    assert speech_seconds(np.zeros(SR // 100, np.float32), SR) == 0.0  # shorter than one frame


def test_the_loudest_frame_finds_a_short_burst_and_reads_a_short_signal_whole():
    x = np.zeros(2 * SR, np.float32)
    burst = tone(LOUDEST_FRAME_S * 2, -10.0)
    x[SR : SR + len(burst)] = burst
    assert loudest_frame_dbfs(x, SR) == pytest.approx(-10.0, abs=0.1)
    short = tone(LOUDEST_FRAME_S / 2, -30.0, hz=1000.0)
    assert loudest_frame_dbfs(short, SR) == pytest.approx(rms_dbfs(short))
    assert loudest_frame_dbfs(np.zeros(0, np.float32), SR) == float("-inf")
    assert rms_dbfs(np.zeros(SR, np.float32)) == float("-inf")


def test_frame_power_drops_the_partial_tail_and_silence_stays_finite():
    power = frame_power(np.ones(25, np.float32), 10)
    assert power.shape == (2,) and np.all(power == 1.0)
    assert np.isfinite(power_db(np.zeros(3))).all()
