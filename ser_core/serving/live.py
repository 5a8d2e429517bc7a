"""Live microphone emotion: audio frames in, the latest window classified twice a second.

A window too quiet to hold a voice, or in which voice activity detection hears none, is a pause: it
is marked as such and never classified. When it holds speech, the whole window is read, its pauses
included, as a file is heard (`WINDOW_READINGS`; chosen in bench/live_reading.py).

The frame callback runs on the WebRTC event loop, which carries every session's media, so it only
downmixes, resamples and appends to a lock-protected ring buffer. A worker thread classifies the
latest window every `interval_s`; it starts with the first frame and ends by itself once frames stop
arriving, so a closed browser tab leaves no thread behind. Nothing here touches Streamlit: the page
only draws `LiveClassifier.snapshot()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import soxr

from ..frontend.features import FeatureParams, extract
from ..frontend.vad import DEFAULT_VAD, SAMPLE_RATE as VAD_RATE, SileroVad, VadParams, shared_vad, speech_regions
from ..io.levels import loudest_frame_dbfs, rms_dbfs

logger = logging.getLogger(__name__)

# A microphone's room noise sits far above the digital silence that `AudioLimits` rejects in files,
# so live audio needs a higher bar before the window counts as speech.
LIVE_SPEECH_THRESHOLD_DBFS = -50.0
LEVEL_WINDOW_S = 0.1  # the level meter shows the last 100 ms: fast enough to follow syllables
MIN_WINDOW_S = 0.5  # less audio than this says nothing about emotion
IDLE_STOP_S = 3.0  # the worker stops when no frame came for this long (stream stopped, tab closed)
# What is read of a window that holds speech: all of it ("window"), or its speech regions joined
# ("speech"). Streamed validation clips (bench/results/live_reading.md) chose the whole window: 69.8
# UAR per reading against 62.3 for the speech joined, and 69.4 against 64.0 with the clips cut at their
# speech first, so that the only quiet around them was the stream's own.
WINDOW_READINGS = ("window", "speech")
WINDOW_READING = "window"


class FeatureModel(Protocol):
    """What the live classifier needs from `inference.SerModel`."""

    params: FeatureParams
    labels: tuple[str, ...]
    uncertain_below: float  # calibrated confidence under which the model is more often wrong

    def predict_windows(self, features: np.ndarray, profile=None) -> tuple[np.ndarray, str]: ...


def frame_to_array(frame) -> tuple[np.ndarray, int]:
    """An `av.AudioFrame` (packed or planar, integer or float) → (samples × channels float32, rate)."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    # Planar frames are (channels, samples); packed ones are one interleaved row.
    samples = data.T if frame.format.is_planar else data.reshape(-1, channels)
    return to_float32(samples), frame.sample_rate


def to_float32(samples: np.ndarray) -> np.ndarray:
    if np.issubdtype(samples.dtype, np.integer):
        full_scale = float(-np.iinfo(samples.dtype).min)  # 32768 for s16: maps exactly onto [-1, 1)
        return samples.astype(np.float32) / full_scale
    return samples.astype(np.float32, copy=False)


class RollingBuffer:
    """The last `capacity` mono samples. Not locked itself: `LiveClassifier` holds the lock."""

    def __init__(self, capacity: int):
        self._data = np.zeros(capacity, dtype=np.float32)
        self._end = 0  # where the next sample goes
        self.filled = 0
        self.total = 0  # samples ever pushed

    def push(self, samples: np.ndarray) -> None:
        capacity = len(self._data)
        self.total += len(samples)
        samples = samples[-capacity:]  # only the newest can stay
        n = len(samples)
        first = min(n, capacity - self._end)
        self._data[self._end : self._end + first] = samples[:first]
        self._data[: n - first] = samples[first:]
        self._end = (self._end + n) % capacity
        self.filled = min(capacity, self.filled + n)

    def latest(self, n: int | None = None) -> np.ndarray:
        """The newest `n` samples (all held if None), oldest first, as a copy."""
        n = self.filled if n is None else min(n, self.filled)
        start = (self._end - n) % len(self._data)
        if start + n <= len(self._data):
            return self._data[start : start + n].copy()
        return np.concatenate([self._data[start:], self._data[: self._end]])


@dataclass(frozen=True)
class LiveReading:
    """One classification of the rolling window."""

    time_s: float  # since the first frame arrived
    level_dbfs: float  # loudest 50 ms of the window, as `levels.loudest_frame_dbfs`
    probabilities: dict[str, float] | None  # None: a pause (no voice in the window)
    uncertain: bool = False  # confidence below the model's `uncertain_below`
    speech_s: float = 0.0  # how much of the window voice activity detection heard as speech

    @property
    def pause(self) -> bool:
        return self.probabilities is None

    @property
    def emotion(self) -> str | None:
        if self.probabilities is None:
            return None
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def confidence(self) -> float | None:
        return None if self.probabilities is None else self.probabilities[self.emotion]


@dataclass(frozen=True)
class LiveState:
    """What the page draws, copied under the lock so the page never sees half an update."""

    level_dbfs: float  # the last 100 ms, for the input meter
    audio_s: float  # audio received so far
    latest: LiveReading | None
    history: tuple[LiveReading, ...]
    receiving: bool  # a frame arrived within the classifier's `idle_stop_s`


class LiveClassifier:
    """Thread-safe: frames may be pushed from one thread while others classify and read."""

    def __init__(
        self,
        model: FeatureModel,
        interval_s: float = 0.5,
        history_s: float = 60.0,
        speech_threshold_dbfs: float = LIVE_SPEECH_THRESHOLD_DBFS,
        idle_stop_s: float = IDLE_STOP_S,
        clock: Callable[[], float] = time.monotonic,
        vad: SileroVad | None = None,
        vad_params: VadParams = DEFAULT_VAD,
        background: bool = True,
        window_reading: str = WINDOW_READING,
    ):
        if window_reading not in WINDOW_READINGS:
            raise ValueError(f"window_reading must be one of {WINDOW_READINGS}, not {window_reading!r}")
        self.model = model
        self.window_reading = window_reading
        self.background = background  # False: only the caller's `classify()` reads (benchmarks on a simulated clock)
        # The window is cut out of a stream: read by the model's utterance reader where it names one
        # (`inference.UTTERANCES_FIELD`), as validation clips streamed through this classifier chose
        # (bench/results/live_reading.md).
        self.reader = getattr(model, "utterance_reader", None) or model
        self.profile = None  # a `VoiceProfile` to read the voice against, set by the app as it changes
        self.vad = vad or shared_vad()
        self.vad_params = vad_params
        self.sample_rate = model.params.sample_rate
        self.interval_s = interval_s
        self.speech_threshold_dbfs = speech_threshold_dbfs
        self.idle_stop_s = idle_stop_s
        self._clock = clock
        self._lock = threading.Lock()
        self._buffer = RollingBuffer(model.params.window_samples)
        self._resampler: soxr.ResampleStream | None = None
        self._input_rate: int | None = None
        self._history: deque[LiveReading] = deque(maxlen=max(1, round(history_s / interval_s)))
        self._started_at: float | None = None
        self._last_push_at = float("-inf")
        self._read_total = 0  # the buffer's `total` when the worker last read it
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()

    def push_frame(self, frame) -> None:
        """The WebRTC sink callback: one `av.AudioFrame` (48 kHz stereo s16, 20 ms from browsers)."""
        samples, sample_rate = frame_to_array(frame)
        self.push(samples, sample_rate)

    def push(self, samples: np.ndarray, sample_rate: int) -> None:
        """Append audio: (samples,) or (samples, channels), integer or float, at any rate."""
        samples = to_float32(np.asarray(samples))
        mono = samples.mean(axis=1) if samples.ndim == 2 else samples
        with self._lock:
            if sample_rate != self._input_rate:  # first frame, or the browser changed its rate
                self._input_rate = sample_rate
                self._resampler = None
                if sample_rate != self.sample_rate:
                    self._resampler = soxr.ResampleStream(sample_rate, self.sample_rate, 1, dtype="float32")
            if self._resampler is not None:
                mono = self._resampler.resample_chunk(mono)
            self._buffer.push(mono)
            now = self._clock()
            if self._started_at is None:
                self._started_at = now
            self._last_push_at = now
            self._ensure_worker()

    def window(self) -> np.ndarray:
        """The latest `window_s` of audio (less until that much arrived), oldest sample first."""
        with self._lock:
            return self._buffer.latest()

    def classify(self) -> LiveReading | None:
        """Classify the current window now; None until there is enough audio."""
        with self._lock:
            window = self._buffer.latest()
            time_s = self._clock() - (self._started_at or 0.0)
        if len(window) < MIN_WINDOW_S * self.sample_rate:
            return None
        level = loudest_frame_dbfs(window, self.sample_rate)
        probabilities, speech = None, self.speech(window) if level >= self.speech_threshold_dbfs else None
        if speech is not None:
            _, features = extract(window if self.window_reading == "window" else speech, self.reader.params)
            row = self.reader.predict_windows(features, self.profile)[0].mean(axis=0)
            probabilities = {label: float(p) for label, p in zip(self.reader.labels, row)}
        uncertain = probabilities is not None and max(probabilities.values()) < self.reader.uncertain_below
        speech_s = 0.0 if speech is None else len(speech) / self.sample_rate
        reading = LiveReading(time_s, level, probabilities, uncertain, speech_s)
        with self._lock:
            self._history.append(reading)
        return reading

    def speech(self, window: np.ndarray) -> np.ndarray | None:
        """The window's speech regions joined (pauses left out), or None when voice activity detection hears none."""
        heard = window if self.sample_rate == VAD_RATE else soxr.resample(window, self.sample_rate, VAD_RATE)
        duration = len(window) / self.sample_rate
        spans = speech_regions(self.vad.probabilities(heard), duration, self.vad_params)
        if not spans:
            return None
        return np.concatenate([window[round(a * self.sample_rate) : round(b * self.sample_rate)] for a, b in spans])

    def snapshot(self) -> LiveState:
        with self._lock:
            level = rms_dbfs(self._buffer.latest(round(LEVEL_WINDOW_S * self.sample_rate)))
            history = tuple(self._history)
            return LiveState(
                level_dbfs=level,
                audio_s=self._buffer.total / self.sample_rate,
                latest=history[-1] if history else None,
                history=history,
                receiving=self._clock() - self._last_push_at < self.idle_stop_s,
            )

    @property
    def running(self) -> bool:
        """Whether the worker is classifying (it runs while frames arrive)."""
        with self._lock:
            return self._worker is not None

    def stop(self) -> None:
        """Stop the worker now (it also stops by itself once frames stop)."""
        with self._lock:
            worker = self._worker
            self._stop.set()
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    def _ensure_worker(self) -> None:
        """Called with the lock held: one worker at a time, started by the frames themselves."""
        if self._worker is not None or not self.background:
            return
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, args=(self._stop,), name="ser-live", daemon=True)
        self._worker.start()

    def _run(self, stop: threading.Event) -> None:
        # Deadlines on a fixed grid: a slow classification shortens the next wait instead of
        # drifting, so the rate stays at 1 / interval_s while a classification takes less than that.
        deadline = self._clock()
        while True:
            deadline = max(deadline + self.interval_s, self._clock())
            stopped = stop.wait(deadline - self._clock())
            # Deciding to end and clearing `_worker` under one lock: a frame pushed meanwhile
            # either sees this worker still running or starts a new one, never neither.
            with self._lock:
                if stopped or self._clock() - self._last_push_at > self.idle_stop_s:
                    if self._worker is threading.current_thread():
                        self._worker = None
                    return
                # No audio since the last reading (the stream stopped, the tab went away): reading the
                # same window again would show an emotion nobody is voicing.
                fresh, self._read_total = self._buffer.total != self._read_total, self._buffer.total
            if not fresh:
                continue
            try:
                self.classify()
            except Exception:  # a failed window must not end the stream's classifications
                logger.exception("live classification failed")
