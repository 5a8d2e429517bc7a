"""Voice activity detection with Silero VAD: where in a recording someone speaks.

The `silero-vad` package ships the model as ONNX (MIT); it is run here with onnxruntime alone (the
package's own Python code imports torch, which ser does not install). The model takes 512 samples
at 16 kHz (32 ms) preceded by the last 64 samples of the previous chunk, plus a recurrent state, and
returns the probability that the chunk holds speech and the next state.

A long recording is cut into streams of `STREAM_S` that run side by side as one batch (one ONNX call
per 32 ms step for all of them): an hour costs seconds instead of half a minute. Each stream first
hears the `WARMUP_S` before its start, so its state has settled by the time its own audio begins.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError

SAMPLE_RATE = 16000
CHUNK = 512  # samples per step at 16 kHz: 32 ms
CONTEXT = 64  # samples of the previous chunk the model hears before each chunk
STATE_SHAPE = (2, 128)  # (2, batch, 128) recurrent state
FRAME_S = CHUNK / SAMPLE_RATE
STREAM_S = 30.0  # audio per parallel stream
WARMUP_S = 2.0  # audio heard before a stream's own start, discarded
MAX_STREAMS = 256  # streams per batch: bounds memory (256 × 32 s of float32 is 33 MB)

ONNX_NAME = "silero_vad.onnx"
SILERO_VERSION = "6.2.3"  # as pinned in requirements-nodeps.txt
# silero-vad 6.2.3's data/silero_vad.onnx: a different file is refused, not silently trusted.
ONNX_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"


@dataclass(frozen=True)
class VadParams:
    """How probabilities become segments. The defaults were chosen on a recording built from
    validation clips (bench/segments.py); see bench/results/segments.md."""

    threshold: float = 0.5  # a 32 ms frame at or above this starts (or continues) speech
    neg_threshold: float = 0.35  # speech ends only once frames fall below this ...
    min_silence_s: float = 0.3  # ... for this long: shorter pauses stay inside one utterance
    min_speech_s: float = 0.25  # shorter bursts (a click, a cough) are dropped
    speech_pad_s: float = 0.1  # added before and after each segment, never past the neighbours
    max_segment_s: float = 10.0  # longer speech is split into equal parts no longer than this
    # A short clip in which nothing reaches `threshold` gets a second, softer look: sad, soft or
    # breathy acted speech can stay below it (19 of bench/speed.py's 2,000 corpus clips, 13 of them
    # ASED's sad; 14 found at 0.25, 16 at 0.2), while 30 s of synthetic music, white, brown noise
    # and a square wave peaked at 0.16 and gave no segment at 0.2 either.
    soft_threshold: float = 0.25
    soft_max_clip_s: float = 30.0

    def softer(self) -> "VadParams":
        """The second look: a lower threshold, and bursts down to two frames kept."""
        return dataclasses.replace(self, threshold=self.soft_threshold, neg_threshold=self.soft_threshold - 0.1,
                                   min_speech_s=2 * FRAME_S)

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_VAD = VadParams()


def model_path() -> Path:
    """silero_vad.onnx inside the installed silero-vad package. Located without importing the
    package (its __init__ imports torch): `find_spec` of a top-level package only reads its path."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("Voice activity detection needs the silero-vad package: "
                         "pip install --no-deps -r requirements-nodeps.txt")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / ONNX_NAME


def check_sha256(path: Path, expected: str = ONNX_SHA256) -> None:
    if not path.is_file():
        raise ModelError(f"The voice activity model is missing: {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise ModelError(f"The voice activity model {path} is not the expected file (sha256 {digest[:12]}…, "
                         f"expected {expected[:12]}…); reinstall silero-vad=={SILERO_VERSION} with --no-deps.")


class SileroVad:
    """Thread-safe: onnxruntime sessions may run concurrently, and every call keeps its own state."""

    def __init__(self, path: Path | None = None, expected_sha256: str = ONNX_SHA256):
        import onnxruntime

        path = path or model_path()
        check_sha256(path, expected_sha256)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # the serving path shares the cores with other requests
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def _run(self, streams: np.ndarray) -> np.ndarray:
        """(n_streams, n_steps × CHUNK) → (n_streams, n_steps) speech probabilities."""
        n_streams, n_samples = streams.shape
        state = np.zeros((STATE_SHAPE[0], n_streams, STATE_SHAPE[1]), np.float32)
        context = np.zeros((n_streams, CONTEXT), np.float32)
        out = np.empty((n_streams, n_samples // CHUNK), np.float32)
        for step in range(n_samples // CHUNK):
            chunk = streams[:, step * CHUNK : (step + 1) * CHUNK]
            probability, state = self._session.run(
                None, {"input": np.concatenate([context, chunk], axis=1), "state": state, "sr": self._sr})
            out[:, step] = probability[:, 0]
            context = chunk[:, -CONTEXT:]
        return out

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Mono float32 at 16 kHz → one speech probability per 32 ms frame (the last frame padded)."""
        return self.probabilities_many([samples])[0]

    def probabilities_many(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Several recordings' frames computed together: all their streams share each ONNX call."""
        stream_steps = round(STREAM_S / FRAME_S)
        warmup_steps = round(WARMUP_S / FRAME_S)
        pieces = []  # (clip index, first frame, frames, warm-up frames, samples)
        for index, samples in enumerate(clips):
            samples = np.asarray(samples, np.float32)
            n_frames = -(-len(samples) // CHUNK)
            padded = np.zeros(n_frames * CHUNK, np.float32)
            padded[: len(samples)] = samples
            for first in range(0, n_frames, stream_steps):
                warm = min(warmup_steps, first)
                frames = min(stream_steps, n_frames - first)
                pieces.append((index, first, frames, warm, padded[(first - warm) * CHUNK : (first + frames) * CHUNK]))
        out = [np.zeros(-(-len(samples) // CHUNK), np.float32) for samples in clips]
        pieces.sort(key=lambda piece: len(piece[4]))  # similar lengths share a batch: little padding
        for start in range(0, len(pieces), MAX_STREAMS):
            batch = pieces[start : start + MAX_STREAMS]
            streams = np.zeros((len(batch), max(len(piece[4]) for piece in batch)), np.float32)
            for row, piece in zip(streams, batch):
                row[: len(piece[4])] = piece[4]
            probabilities = self._run(streams)
            for row, (index, first, frames, warm, _) in zip(probabilities, batch):
                out[index][first : first + frames] = row[warm : warm + frames]
        return out


_shared: SileroVad | None = None
_shared_lock = threading.Lock()


def shared_vad() -> SileroVad:
    """One detector per process, loaded on first use (the session is thread-safe)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SileroVad()
        return _shared


def speech_segments(probabilities: np.ndarray, duration_s: float, params: VadParams = DEFAULT_VAD
                    ) -> list[tuple[float, float]]:
    """Frame probabilities → [(start_s, end_s)] of speech, in order and not overlapping.

    Hysteresis: speech starts at a frame ≥ `threshold` and ends where frames stay below
    `neg_threshold` for `min_silence_s`; segments shorter than `min_speech_s` are dropped; each is
    padded by `speech_pad_s` (half the gap at most, so neighbours never overlap), and one longer than
    `max_segment_s` is split into equal parts.
    """
    min_silence = max(1, round(params.min_silence_s / FRAME_S))
    raw, start, quiet_since = [], None, None
    for frame, probability in enumerate(probabilities):
        if probability >= params.threshold:
            start = frame if start is None else start
            quiet_since = None
        elif start is not None and probability < params.neg_threshold:
            quiet_since = frame if quiet_since is None else quiet_since
            if frame + 1 - quiet_since >= min_silence:
                raw.append((start, quiet_since))
                start = quiet_since = None
    if start is not None:
        raw.append((start, quiet_since if quiet_since is not None else len(probabilities)))
    spans = [(a * FRAME_S, min(b * FRAME_S, duration_s)) for a, b in raw if (b - a) * FRAME_S >= params.min_speech_s]

    padded = []
    for i, (a, b) in enumerate(spans):
        before = (a - spans[i - 1][1]) / 2 if i else a
        after = (spans[i + 1][0] - b) / 2 if i + 1 < len(spans) else duration_s - b
        padded.append((a - min(params.speech_pad_s, before), b + min(params.speech_pad_s, after)))

    segments = []
    for a, b in padded:
        parts = max(1, int(np.ceil((b - a) / params.max_segment_s - 1e-9)))
        edges = np.linspace(a, b, parts + 1)
        segments.extend((float(x), float(y)) for x, y in zip(edges[:-1], edges[1:]))
    return segments
