"""Voice activity detection with Silero VAD: where in a recording someone speaks.

The `silero-vad` package ships the model as ONNX (MIT); ser ships that file in ser_core/data/, reads
its 16 kHz network's weights from it (checked against a pinned sha256) and runs the network in numpy:
the package's own Python code imports torch, which ser does not install. The network hears 512
samples at 16 kHz (32 ms) preceded by the last 64 samples of the previous chunk: a magnitude STFT and four convolutions that
see only that chunk, then an LSTM cell that carries a state from chunk to chunk, then a logistic
read-out of the speech probability. Only the LSTM is sequential, so the convolutions run over many
chunks at once and each 32 ms step costs one small matrix product: a 3 s clip takes about 7 ms
where onnxruntime, one call per step, took 29 ms (tests check that both agree to 1e-5).

A long recording is cut into streams of `STREAM_S` that run side by side (one matrix product per
32 ms step for all of them). Each stream first hears the `WARMUP_S` before its start, so its state
has settled by the time its own audio begins.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import ModelError

if TYPE_CHECKING:
    from ..io.audio import Audio

SAMPLE_RATE = 16000
CHUNK = 512  # samples per step at 16 kHz: 32 ms
CONTEXT = 64  # samples of the previous chunk the model hears before each chunk
HIDDEN = 128  # LSTM state size
FRAME_S = CHUNK / SAMPLE_RATE
STREAM_S = 30.0  # audio per parallel stream
WARMUP_S = 2.0  # audio heard before a stream's own start, discarded
MAX_STREAMS = 32  # streams per batch: bounds memory (their LSTM input gates: 32 × 1,000 × 512 floats, 66 MB)
CONV_BLOCK = 128  # chunks per pass through the convolutions: small blocks stay in cache (fastest here)

ONNX_NAME = "silero_vad.onnx"
SILERO_VERSION = "6.2.3"  # the silero-vad release whose data/silero_vad.onnx ser_core/data/ holds
# silero-vad 6.2.3's data/silero_vad.onnx: a different file is refused, not silently trusted.
ONNX_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
# The 16 kHz network's tensors, by their PyTorch names in the ONNX graph.
WEIGHT_NAMES = ("stft.forward_basis_buffer",
                *(f"encoder.{i}.reparam_conv.{kind}" for i in range(4) for kind in ("weight", "bias")),
                "decoder.rnn.weight_ih", "decoder.rnn.weight_hh", "decoder.rnn.bias_ih", "decoder.rnn.bias_hh",
                "decoder.decoder.2.weight", "decoder.decoder.2.bias")
ENCODER_STRIDES = (1, 2, 2, 1)  # the four convolutions: kernel 3, padding 1; 4 STFT frames → 1
STFT_HOP, STFT_WINDOW = 128, 256


@dataclass(frozen=True)
class VadParams:
    """How probabilities become segments. The defaults were chosen on a recording built from
    validation clips (bench/segments.py); see bench/results/segments.md."""

    threshold: float = 0.5  # a 32 ms frame at or above this starts (or continues) speech
    neg_threshold: float = 0.35  # speech ends only once frames fall below this ...
    min_silence_s: float = 0.3  # ... for this long: shorter pauses stay inside one region
    # Turns in a conversation can follow each other within a tenth of a second, well inside one region:
    # where the probability stays under `turn_threshold` for `turn_pause_s` (`at_turns`), the next
    # speaker may take over, and a region is cut there where its voice changes
    # (`serving.speakers.split_at_voice_changes`). The detector's probability lags a short pause
    # (between two actors' turns 0.1 s apart it often dips only to 0.5-0.7), so a single 32 ms frame
    # under 0.9 may be one. Chosen on validation conversations whose turns follow 0.05-0.3 s apart
    # (bench/turn_taking.py, bench/results/turn_taking.md).
    turn_pause_s: float = 0.03
    turn_threshold: float = 0.9
    min_speech_s: float = 0.25  # shorter bursts (a click, a cough) are dropped
    speech_pad_s: float = 0.1  # added before and after each segment, never past the neighbours
    max_segment_s: float = 10.0  # longer speech is split into equal parts no longer than this
    # Regions closer than `join_gap_s` (between their padded edges) are one piece whatever the voice
    # (0: none are); pauses are bridged within one voice instead (`serving.segments.SAME_VOICE_GAP_S`),
    # since turns of a conversation can follow each other as closely as pauses inside a sentence. An
    # utterance shorter than `min_utterance_s` joins its nearer neighbour when that one is within
    # `burst_gap_s`, rather than being classified on its own. Chosen on validation
    # (bench/segments.py, joining and utterance grids; bench/results/segments.md).
    join_gap_s: float = 0.0
    min_utterance_s: float = 0.6
    burst_gap_s: float = 1.0  # a burst further than this from any speech stays an utterance of its own
    # A short clip in which nothing reaches `threshold` gets a second, softer look: sad, soft or
    # breathy acted speech can stay below it (19 of bench/speed.py's 2,000 corpus clips, 13 of them
    # ASED's sad; 14 found at 0.25, 16 at 0.2), while 30 s of synthetic music (peak 0.16), white
    # noise (0.11), brown noise and a square wave gave no segment at 0.2 either.
    soft_threshold: float = 0.25
    soft_max_clip_s: float = 30.0

    def softer(self) -> "VadParams":
        """The second look: a lower threshold, and bursts down to two frames kept."""
        return dataclasses.replace(self, threshold=self.soft_threshold, neg_threshold=self.soft_threshold - 0.1,
                                   min_speech_s=2 * FRAME_S)

    def at_turns(self) -> "VadParams":
        """The detector cutting at every pause of `turn_pause_s` under `turn_threshold`: where the
        pieces voices are told apart on are cut."""
        level = max(self.neg_threshold, self.turn_threshold)
        return dataclasses.replace(self, min_silence_s=min(self.min_silence_s, self.turn_pause_s),
                                   neg_threshold=level, threshold=max(self.threshold, level))

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_VAD = VadParams()


def model_path() -> Path:
    """silero_vad.onnx as ser ships it: package data (ser_core/data/, with its MIT licence), the same
    bytes as silero-vad's. Installing silero-vad itself would pull in torch, which it declares."""
    return Path(__file__).resolve().parents[1] / "data" / ONNX_NAME


def check_sha256(path: Path, expected: str = ONNX_SHA256, what: str = "voice activity model",
                 package: str = "ser") -> bytes:
    """The file's bytes, once they are known to be the pinned model (`what`, shipped in `package`)."""
    if not path.is_file():
        raise ModelError(f"The {what} is missing: {path}")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise ModelError(f"The {what} {path} is not the expected file (sha256 {digest[:12]}…, "
                         f"expected {expected[:12]}…); reinstall {package} with --no-deps.")
    return data


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if byte < 0x80:
            return value, i


def _fields(buf: memoryview) -> dict[int, list]:
    """One protobuf message's fields: number → values (ints, or memoryviews of length-delimited
    fields) in order. Enough of the wire format for the ONNX messages read below."""
    fields: dict[int, list] = {}
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire in (1, 2, 5):
            size, i = (8, i) if wire == 1 else (4, i) if wire == 5 else _varint(buf, i)
            value, i = buf[i : i + size], i + size
        else:
            raise ModelError(f"The voice activity model is not an ONNX file (protobuf wire type {wire})")
        fields.setdefault(key >> 3, []).append(value)
    return fields


def _text(fields: dict[int, list], number: int) -> str:
    return bytes(fields[number][0]).decode() if number in fields else ""


def _tensor(buf: memoryview) -> np.ndarray:
    """An ONNX TensorProto of floats (dims: 1, data_type: 2, float_data: 4, raw_data: 9)."""
    fields = _fields(buf)
    dims = []
    for value in fields.get(1, []):  # repeated int64: packed (bytes) or one varint each
        if isinstance(value, int):
            dims.append(value)
        else:
            at = 0
            while at < len(value):
                dim, at = _varint(value, at)
                dims.append(dim)
    if fields.get(2, [0])[0] != 1:
        raise ModelError("The voice activity model holds a tensor that is not float32")
    data = bytes(fields[9][0]) if 9 in fields else b"".join(bytes(v) for v in fields.get(4, []))
    return np.frombuffer(data, "<f4").reshape(dims).astype(np.float32)


def read_weights(data: bytes) -> dict[str, np.ndarray]:
    """silero_vad.onnx → its 16 kHz network's tensors. The graph's first `If` chooses the network by
    sample rate (`sr == 16000`: then-branch); each tensor is a Constant named after its PyTorch name.
    The protobuf is read here (ModelProto.graph: 7, GraphProto.node: 1, NodeProto.output: 2, op_type: 4,
    attribute: 5, AttributeProto.name: 1, t: 5, g: 6) rather than with the onnx package, whose import
    alone took 1.4 s of every cold start."""
    model = _fields(memoryview(data))
    graph = _fields(model[7][0]) if 7 in model else {}
    nodes = [_fields(node) for node in graph.get(1, [])]
    switch = next((node for node in nodes if _text(node, 4) == "If"), None)
    attributes = [_fields(a) for a in switch.get(5, [])] if switch else []
    branch = next((_fields(a[6][0]) for a in attributes if _text(a, 1) == "then_branch" and 6 in a), {})
    found = {}
    for node in map(_fields, branch.get(1, [])):
        name = _text(node, 2).rpartition("__")[2]
        if _text(node, 4) == "Constant" and name in WEIGHT_NAMES:
            found[name] = _tensor(_fields(node[5][0])[5][0])
    missing = [name for name in WEIGHT_NAMES if name not in found]
    if missing:
        raise ModelError(f"The voice activity model lacks {', '.join(missing)}: not Silero VAD {SILERO_VERSION}'s graph")
    return found


def _conv_taps(x: np.ndarray, stride: int) -> np.ndarray:
    """(n, frames, channels) → (n × out frames, 3 × channels): the inputs of a kernel-3, padding-1
    convolution at each output frame, tap by tap."""
    n, frames, channels = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    out_frames = (frames - 1) // stride + 1
    taps = [padded[:, k : k + stride * (out_frames - 1) + 1 : stride] for k in range(3)]
    return np.concatenate(taps, axis=2).reshape(n * out_frames, 3 * channels)


class SileroVad:
    """Silero VAD's 16 kHz network in numpy. Thread-safe: weights are read-only and every call keeps
    its own state; each call pins BLAS to `threads` (the serving path shares the cores)."""

    def __init__(self, path: Path | None = None, expected_sha256: str = ONNX_SHA256, threads: int = 1):
        from threadpoolctl import ThreadpoolController

        w = read_weights(check_sha256(path or model_path(), expected_sha256))
        self.threads = threads
        self._threadpools = ThreadpoolController()
        # STFT as one product: (256 samples) → (129 real, 129 imaginary) per frame.
        self._stft = np.ascontiguousarray(w["stft.forward_basis_buffer"][:, 0, :].T)
        # Each convolution as one product over its taps: (3 taps × in channels) → out channels.
        self._convs = []
        for i, stride in enumerate(ENCODER_STRIDES):
            weight = w[f"encoder.{i}.reparam_conv.weight"]  # (out, in, 3)
            self._convs.append((np.ascontiguousarray(weight.transpose(2, 1, 0).reshape(-1, weight.shape[0])),
                                w[f"encoder.{i}.reparam_conv.bias"], stride))
        # LSTM cell, gates in PyTorch's order (input, forget, cell, output). The sigmoid gates are
        # computed as 0.5 + 0.5·tanh(z/2), so their columns are halved here (exact in floating point)
        # and one tanh serves all four gates.
        half = np.repeat(np.array([0.5, 0.5, 1.0, 0.5], np.float32), HIDDEN)
        self._input_gates = np.ascontiguousarray(w["decoder.rnn.weight_ih"].T * half)
        self._recurrent_gates = np.ascontiguousarray(w["decoder.rnn.weight_hh"].T * half)
        self._gate_bias = (w["decoder.rnn.bias_ih"] + w["decoder.rnn.bias_hh"]) * half
        self._readout = w["decoder.decoder.2.weight"][0, :, 0]
        self._readout_bias = float(w["decoder.decoder.2.bias"][0])

    def _encode(self, windows: np.ndarray) -> np.ndarray:
        """(n, CONTEXT + CHUNK) samples → (n, 4 × HIDDEN) LSTM input gates: everything before the
        recurrence, which sees one chunk at a time."""
        padded = np.pad(windows, ((0, 0), (0, CONTEXT)), mode="reflect")
        n_frames = (padded.shape[1] - STFT_WINDOW) // STFT_HOP + 1
        frames = padded[:, np.arange(n_frames)[:, None] * STFT_HOP + np.arange(STFT_WINDOW)]
        spectrum = frames.reshape(-1, STFT_WINDOW) @ self._stft
        bins = spectrum.shape[1] // 2
        x = np.sqrt(spectrum[:, :bins] ** 2 + spectrum[:, bins:] ** 2).reshape(len(windows), n_frames, bins)
        for weight, bias, stride in self._convs:
            x = np.maximum(_conv_taps(x, stride) @ weight + bias, 0.0).reshape(len(windows), -1, len(bias))
        return x[:, 0] @ self._input_gates + self._gate_bias

    def _run(self, streams: np.ndarray) -> np.ndarray:
        """(n_streams, n_steps × CHUNK) → (n_streams, n_steps) speech probabilities."""
        n_streams, n_samples = streams.shape
        n_steps = n_samples // CHUNK
        # Step t hears samples [t·CHUNK − CONTEXT, (t + 1)·CHUNK); before the first, zeros.
        heard = np.concatenate([np.zeros((n_streams, CONTEXT), np.float32), streams], axis=1)
        windows = np.lib.stride_tricks.sliding_window_view(heard, CONTEXT + CHUNK, axis=1)[:, : n_steps * CHUNK : CHUNK]
        gates = np.empty((n_streams, n_steps, 4 * HIDDEN), np.float32)
        for stream in range(n_streams):
            for first in range(0, n_steps, CONV_BLOCK):
                gates[stream, first : first + CONV_BLOCK] = self._encode(windows[stream, first : first + CONV_BLOCK])
        h = np.zeros((n_streams, HIDDEN), np.float32)
        c = np.zeros((n_streams, HIDDEN), np.float32)
        hidden = np.empty((n_streams, n_steps, HIDDEN), np.float32)
        for step in range(n_steps):
            z = np.tanh(gates[:, step] + h @ self._recurrent_gates)
            sigmoid = 0.5 + 0.5 * z
            c = sigmoid[:, HIDDEN : 2 * HIDDEN] * c + sigmoid[:, :HIDDEN] * z[:, 2 * HIDDEN : 3 * HIDDEN]
            h = sigmoid[:, 3 * HIDDEN :] * np.tanh(c)
            hidden[:, step] = h
        logits = np.maximum(hidden, 0.0) @ self._readout + self._readout_bias
        return 0.5 + 0.5 * np.tanh(0.5 * logits)

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Mono float32 at 16 kHz → one speech probability per 32 ms frame (the last frame padded)."""
        return self.probabilities_many([samples])[0]

    def probabilities_many(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Several recordings' frames computed together: all their streams share each step."""
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
        with self._threadpools.limit(limits=self.threads, user_api="blas"):
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


def speech_regions(probabilities: np.ndarray, duration_s: float, params: VadParams = DEFAULT_VAD
                   ) -> list[tuple[float, float]]:
    """Frame probabilities → [(start_s, end_s)] of speech as the detector hears it, in order and not
    overlapping: what the waveform view draws.

    Hysteresis: speech starts at a frame ≥ `threshold` and ends where frames stay below
    `neg_threshold` for `min_silence_s`; regions shorter than `min_speech_s` are dropped; each is
    padded by `speech_pad_s` (half the gap at most, so neighbours never overlap).
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
    return padded


def utterances(regions: list[tuple[float, float]], params: VadParams = DEFAULT_VAD) -> list[tuple[float, float]]:
    """Speech regions → the utterances that are classified: regions joined across pauses shorter than
    `join_gap_s`, bursts shorter than `min_utterance_s` joined to their nearer neighbour (within
    `burst_gap_s`), and an utterance longer than `max_segment_s` split into equal parts."""
    joined: list[tuple[float, float]] = []
    for a, b in regions:
        if joined and a - joined[-1][1] < params.join_gap_s:
            joined[-1] = (joined[-1][0], b)
        else:
            joined.append((a, b))
    while True:
        mergeable = []  # (burst length, index of the pair to join: the burst and its nearer neighbour)
        for i, (a, b) in enumerate(joined):
            if b - a >= params.min_utterance_s:
                continue
            neighbours = ([(a - joined[i - 1][1], i - 1)] if i else []) + (
                [(joined[i + 1][0] - b, i)] if i + 1 < len(joined) else [])
            gap, pair = min(neighbours, default=(np.inf, -1))
            if gap <= params.burst_gap_s:
                mergeable.append((b - a, pair))
        if not mergeable:
            break
        _, pair = min(mergeable)  # the shortest burst first: joining it may lengthen another one
        joined[pair : pair + 2] = [(joined[pair][0], joined[pair + 1][1])]

    segments = []
    for a, b in joined:
        parts = max(1, int(np.ceil((b - a) / params.max_segment_s - 1e-9)))
        edges = np.linspace(a, b, parts + 1)
        segments.extend((float(x), float(y)) for x, y in zip(edges[:-1], edges[1:]))
    return segments


def speech_segments(probabilities: np.ndarray, duration_s: float, params: VadParams = DEFAULT_VAD
                    ) -> list[tuple[float, float]]:
    """Frame probabilities → the utterances to classify [(start_s, end_s)] (`speech_regions`, then
    `utterances`)."""
    return utterances(speech_regions(probabilities, duration_s, params), params)


def vad_samples(audio: "Audio") -> np.ndarray:
    """The audio at the detector's 16 kHz (the shipped models all use 16 kHz already)."""
    if audio.sample_rate == SAMPLE_RATE:
        return audio.samples
    import soxr

    return soxr.resample(audio.samples, audio.sample_rate, SAMPLE_RATE).astype(np.float32)


def find_regions(audios: "Sequence[Audio]", params: VadParams = DEFAULT_VAD, vad: SileroVad | None = None
                 ) -> list[list[tuple[float, float]]]:
    """Per recording, its speech regions [(start_s, end_s)] as the detector heard them; a short clip
    in which none is found gets a second, softer look (`VadParams.softer`)."""
    return [_heard_regions(p, audio.duration_s, params)[0] for p, audio in zip(_probabilities(audios, vad), audios)]


def find_regions_and_turns(audios: "Sequence[Audio]", params: VadParams = DEFAULT_VAD, vad: SileroVad | None = None
                           ) -> list[tuple[list[tuple[float, float]], list[list[tuple[float, float]]]]]:
    """Per recording, (its speech regions, each region's pieces cut at turn pauses (`cut_at_turns`)),
    from one pass of the detector."""
    found = []
    for p, audio in zip(_probabilities(audios, vad), audios):
        regions, heard = _heard_regions(p, audio.duration_s, params)
        found.append((regions, cut_at_turns(regions, p, audio.duration_s, heard)))
    return found


def _probabilities(audios: "Sequence[Audio]", vad: SileroVad | None) -> list[np.ndarray]:
    return (vad or shared_vad()).probabilities_many([vad_samples(audio) for audio in audios])


def _heard_regions(probabilities: np.ndarray, duration_s: float, params: VadParams = DEFAULT_VAD
                  ) -> tuple[list[tuple[float, float]], VadParams]:
    """(the speech regions, the settings that found them): a short clip in which `params` find none
    gets a second, softer look (`VadParams.softer`)."""
    regions = speech_regions(probabilities, duration_s, params)
    if regions or duration_s > params.soft_max_clip_s:
        return regions, params
    softer = params.softer()
    return speech_regions(probabilities, duration_s, softer), softer


def cut_at_turns(regions: list[tuple[float, float]], probabilities: np.ndarray, duration_s: float,
                 params: VadParams = DEFAULT_VAD) -> list[list[tuple[float, float]]]:
    """Each of `regions` (`speech_regions` with `params`) as its pieces: cut in the middle of every pause
    of `turn_pause_s` under `turn_threshold` inside it (`VadParams.at_turns`), the same speech, none
    dropped."""
    finer = speech_regions(probabilities, duration_s, dataclasses.replace(params.at_turns(), min_speech_s=0.0))
    cuts = [(b + c) / 2 for (_, b), (c, _) in zip(finer, finer[1:])]  # the padding stops halfway: the pause's middle
    pieces = []
    for a, b in regions:
        edges = [a, *(x for x in cuts if a + 1e-6 < x < b - 1e-6), b]
        pieces.append(list(zip(edges[:-1], edges[1:])))
    return pieces
