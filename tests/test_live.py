"""ser_core.serving.live without a browser: WebRTC-shaped frames (48 kHz stereo s16, 20 ms) in, readings out."""

from __future__ import annotations

import threading
import time

import av
import numpy as np
import pytest
import soxr

from conftest import speech
from ser_core.serving.inference import load_model
from ser_core.serving.live import MIN_WINDOW_S, LiveClassifier, RollingBuffer, frame_to_array

BROWSER_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz, what browsers send over WebRTC


def browser_frames(mono: np.ndarray, sample_rate: int = 16000) -> list[av.AudioFrame]:
    """Mono float audio → the packed stereo s16 frames a browser's WebRTC track delivers."""
    pcm = soxr.resample(mono, sample_rate, BROWSER_RATE)
    pcm = np.clip(np.round(pcm * 32767), -32768, 32767).astype(np.int16)
    frames = []
    for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        chunk = pcm[start : start + FRAME_SAMPLES]
        interleaved = np.repeat(chunk, 2)[None, :]  # L R L R …: one row, as PyAV packs s16
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo")
        frame.sample_rate = BROWSER_RATE
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def model(trained_model):
    return load_model(trained_model)


def test_frame_to_array_reads_packed_and_planar_frames_alike():
    left = np.arange(FRAME_SAMPLES, dtype=np.int16)
    right = -left
    packed = av.AudioFrame.from_ndarray(np.stack([left, right], axis=1).reshape(1, -1), format="s16",
                                        layout="stereo")
    planar = av.AudioFrame.from_ndarray(np.stack([left, right]).astype(np.float32) / 32768, format="fltp",
                                        layout="stereo")
    for frame in (packed, planar):
        frame.sample_rate = BROWSER_RATE
        samples, rate = frame_to_array(frame)
        assert rate == BROWSER_RATE
        assert samples.shape == (FRAME_SAMPLES, 2) and samples.dtype == np.float32
        np.testing.assert_allclose(samples[:, 0], left / 32768)
        np.testing.assert_allclose(samples[:, 1], right / 32768)


def test_rolling_buffer_keeps_the_newest_samples_in_order():
    buffer = RollingBuffer(10)
    buffer.push(np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(buffer.latest(), [0, 1, 2, 3])
    buffer.push(np.arange(4, 13, dtype=np.float32))  # wraps around
    np.testing.assert_array_equal(buffer.latest(), np.arange(3, 13))
    np.testing.assert_array_equal(buffer.latest(3), [10, 11, 12])
    buffer.push(np.arange(100, 125, dtype=np.float32))  # more than the capacity at once
    np.testing.assert_array_equal(buffer.latest(), np.arange(115, 125))
    assert buffer.total == 38 and buffer.filled == 10


def test_voice_frames_are_classified_with_a_sane_level(model):
    classifier = LiveClassifier(model)
    try:
        assert classifier.classify() is None  # nothing heard yet
        for frame in browser_frames(speech(3.0, level_db=-15.0)):
            classifier.push_frame(frame)
        classifier.stop()  # the worker's own readings must not land after this one
        reading = classifier.classify()
    finally:
        classifier.stop()
    assert reading is not None and reading.probabilities is not None
    assert set(reading.probabilities) == set(model.labels)
    assert sum(reading.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert reading.emotion in model.labels and 0 < reading.confidence <= 1
    assert not reading.pause and 1.0 < reading.speech_s <= model.params.window_s
    state = classifier.snapshot()
    assert state.latest == reading
    assert state.audio_s == pytest.approx(3.0, abs=0.1)  # 48 kHz stereo became 16 kHz mono
    assert len(classifier.window()) == model.params.window_samples
    assert -45.0 < state.level_dbfs < -15.0  # the last 100 ms of a voice peaking at -15 dBFS


def test_silence_is_no_speech(model):
    classifier = LiveClassifier(model)
    quiet_room = 10 ** (-75 / 20) * np.random.default_rng(0).standard_normal(3 * 16000).astype(np.float32)
    try:
        for frame in browser_frames(quiet_room):
            classifier.push_frame(frame)
        reading = classifier.classify()
    finally:
        classifier.stop()
    assert reading is not None
    assert reading.probabilities is None and reading.emotion is None
    assert reading.level_dbfs < classifier.speech_threshold_dbfs
    assert classifier.snapshot().level_dbfs < -60


def test_a_loud_pause_is_a_pause(model):
    """Above the level threshold (a hum, a fan) but no voice in it: voice activity detection says pause."""
    classifier = LiveClassifier(model)
    hum = (0.05 * np.sin(2 * np.pi * 120 * np.arange(3 * 16000) / 16000)).astype(np.float32)
    try:
        for frame in browser_frames(np.concatenate([speech(3.0, level_db=-15.0), hum])):
            classifier.push_frame(frame)
        reading = classifier.classify()
    finally:
        classifier.stop()
    assert reading.level_dbfs > classifier.speech_threshold_dbfs
    assert reading.pause and reading.probabilities is None and reading.speech_s == 0.0


def test_worker_classifies_twice_a_second_while_frames_arrive_then_stops(model):
    classifier = LiveClassifier(model, idle_stop_s=0.5)
    frames = browser_frames(speech(3.0, level_db=-15.0))
    started = time.monotonic()
    for number, frame in enumerate(frames):  # in real time, as a browser sends them
        classifier.push_frame(frame)
        time.sleep(max(0.0, started + (number + 1) * 0.02 - time.monotonic()))
    elapsed = time.monotonic() - started
    readings = classifier.snapshot().history
    # The worker starts with the first frame and reads every 0.5 s once MIN_WINDOW_S has arrived;
    # allow one late reading on a loaded machine.
    assert len(readings) >= int((elapsed - MIN_WINDOW_S) / classifier.interval_s) - 1
    assert all(r.probabilities is not None for r in readings)
    deadline = time.monotonic() + 5
    while classifier.running:
        assert time.monotonic() < deadline, "the worker should stop once frames stop"
        time.sleep(0.05)


def test_no_reading_is_made_without_new_audio(model):
    """Once frames stop (STOP, a closed tab), the worker reads nothing more while it waits to end:
    reading the same window again showed an emotion nobody was voicing for a few seconds."""
    classifier = LiveClassifier(model, idle_stop_s=2.0)
    frames = browser_frames(speech(2.0, level_db=-15.0))
    started = time.monotonic()
    for number, frame in enumerate(frames):
        classifier.push_frame(frame)
        time.sleep(max(0.0, started + (number + 1) * 0.02 - time.monotonic()))
    time.sleep(classifier.interval_s + 0.1)  # a reading of the last frames may still come
    after_audio = len(classifier.snapshot().history)
    assert after_audio >= 2
    time.sleep(1.2)  # still within idle_stop_s: the worker runs, but reads nothing
    assert classifier.running and len(classifier.snapshot().history) == after_audio
    classifier.stop()


def test_the_live_chart_breaks_where_readings_stopped():
    from ser_core.ui.plots import live_timeline

    reading = {"neutral": 0.2, "angry": 0.8}
    fig = live_timeline([0.5, 1.0, 1.5, 6.0, 6.5], [reading, reading, None, reading, reading], ["neutral", "angry"])
    angry = next(trace for trace in fig.data if trace.name == "angry")
    assert list(angry.x) == [0.5, 1.0, 1.5, 3.75, 6.0, 6.5]  # a break between 1.5 s and 6 s
    assert list(angry.y) == [0.8, 0.8, None, None, 0.8, 0.8] and angry.connectgaps is False


def test_pushing_and_reading_from_different_threads(model):
    """A counter signal at the model's rate: any torn read shows up as a break in the count."""
    classifier = LiveClassifier(model, idle_stop_s=0.2)
    chunks = [np.arange(start, start + 320, dtype=np.float32) for start in range(0, 40 * 16000, 320)]
    errors: list[BaseException] = []
    pushing = threading.Event()
    pushing.set()

    def push_all():
        try:
            for chunk in chunks:
                classifier.push(chunk, model.params.sample_rate)
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            pushing.clear()

    def read_while_pushing():
        try:
            while pushing.is_set():
                window = classifier.window()
                if len(window) > 1:
                    assert np.all(np.diff(window) == 1), "a window mixed old and new samples"
                classifier.snapshot()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=push_all), *(threading.Thread(target=read_while_pushing) for _ in range(2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    classifier.stop()
    assert not errors, errors
    state = classifier.snapshot()
    assert state.audio_s == pytest.approx(40.0)
    np.testing.assert_array_equal(classifier.window()[-3:], [40 * 16000 - 3, 40 * 16000 - 2, 40 * 16000 - 1])
    times = [reading.time_s for reading in state.history]
    assert times == sorted(times)


def test_without_background_no_worker_starts_and_classify_still_reads(model):
    """`background=False` (benchmarks on a simulated clock): frames start no worker thread; the
    caller's `classify()` reads the window."""
    classifier = LiveClassifier(model, clock=lambda: 0.0, background=False)
    classifier.push(speech(2.0, level_db=-15.0), 16000)
    assert not classifier.running
    reading = classifier.classify()
    assert reading is not None and not reading.pause and not classifier.running


def test_a_window_with_speech_is_read_whole_or_as_its_speech_joined(model):
    """`WINDOW_READING` (chosen in bench/live_reading.py): the whole window, its pause included, is what
    the model reads; "speech" reads only the regions voice activity detection heard, joined."""
    from ser_core.frontend.features import extract
    from ser_core.serving.live import WINDOW_READING

    assert WINDOW_READING == "window"
    sr = model.params.sample_rate
    audio = np.concatenate([speech(1.2, sr, level_db=-15.0, seed=3), np.zeros(sr, np.float32),
                            speech(1.2, sr, level_db=-15.0, seed=4)])

    def read(window_reading):
        live = LiveClassifier(model, clock=lambda: 0.0, background=False, window_reading=window_reading)
        live.push(audio, sr)
        return live, live.classify()

    live, whole = read("window")
    window = live.window()
    expected = live.reader.predict_windows(extract(window, live.reader.params)[1])[0].mean(axis=0)
    np.testing.assert_allclose(list(whole.probabilities.values()), expected, atol=1e-6)
    live, joined = read("speech")
    expected = live.reader.predict_windows(extract(live.speech(window), live.reader.params)[1])[0].mean(axis=0)
    np.testing.assert_allclose(list(joined.probabilities.values()), expected, atol=1e-6)
    assert whole.speech_s == joined.speech_s < len(window) / sr  # the same speech heard, read two ways
    with pytest.raises(ValueError, match="window_reading"):
        LiveClassifier(model, window_reading="words")
