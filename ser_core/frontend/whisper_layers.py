"""Whisper's encoder in plain numpy, returning every layer's hidden states.

CTranslate2's `Whisper.encode` only returns the last layer, which is shaped for the decoder's words;
paralinguistic cues such as emotion often sit lower, so a SUPERB-style head learns a weighted sum
over every layer instead. This
module reads the same `model.bin` that CTranslate2 runs (its binary format, parsed below) and
recomputes the encoder in float32 numpy: conv stem, position table, pre-LayerNorm transformer
blocks, final LayerNorm, exactly as CTranslate2's `WhisperEncoder` does. Its last output matches
CTranslate2's float32 `encode` to float32 rounding (tests/test_whisper_layers.py holds it there).

Threads: numpy's BLAS decides; wrap calls in `threadpoolctl.threadpool_limits` to pin them.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# CTranslate2's DataType enum order (include/ctranslate2/types.h), which model.bin stores as one byte.
# bfloat16 has no numpy dtype: it is read as uint16 and widened (it is float32's top half).
_TYPE_IDS = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
# Version 4 introduced the dtype byte; 6 is what CTranslate2 4.x writes.
_BINARY_VERSIONS = range(4, 7)
LAYER_NORM_EPSILON = 1e-5  # CTranslate2's LayerNorm default when config.json sets none (Whisper's doesn't)


class _Reader:
    """Little-endian cursor over model.bin (CTranslate2 writes native order: x86 and ARM are little)."""

    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ValueError(f"model.bin is truncated: needed {n} bytes at offset {self.pos}, "
                             f"only {len(self.data) - self.pos} left")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def uint(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        """uint16 length counting a trailing NUL, then the UTF-8 bytes and the NUL."""
        return bytes(self.take(self.uint("H"))).rstrip(b"\0").decode("utf-8")


def _to_array(raw: memoryview, type_name: str, shape: tuple[int, ...]) -> np.ndarray:
    """An owned array (never a view into `data`, so the caller may drop the 145 MB bytes):
    floats widened to float32, integers kept as stored."""
    if type_name == "bfloat16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    array = np.frombuffer(raw, np.dtype(type_name).newbyteorder("<")).reshape(shape)
    return array.astype(np.float32 if array.dtype.kind == "f" else array.dtype.newbyteorder("="))


def read_ctranslate2_model(data: bytes, prefix: str = "") -> dict[str, np.ndarray]:
    """Parse CTranslate2's model.bin (binary versions 4-6) into {variable name: array}.

    Layout (python/ctranslate2/specs/model_spec.py `_serialize`, src/models/model.cc `load`):
    uint32 binary version, string spec name, uint32 spec revision, uint32 count, then per variable:
    string name, uint8 rank, uint32 × rank shape, uint8 dtype id, uint32 byte count, the bytes; then
    uint32 count of aliases, each (string alias, string target). Strings are uint16 length + UTF-8 + NUL.

    Only names starting with `prefix` are converted (e.g. "encoder/": the decoder's 100 MB is skipped
    without a copy). Float weights come back float32; quantized int8/int16 "…weight" variables are
    dequantized with their "…weight_scale" (which is then dropped), as CTranslate2 does for float32
    compute; other integers (num_heads, flags) keep their dtype. Aliases point at the same array.
    """
    reader = _Reader(data)
    version = reader.uint("I")
    if version not in _BINARY_VERSIONS:
        raise ValueError(f"unsupported model.bin binary version {version} (this reader handles "
                         f"{_BINARY_VERSIONS.start}-{_BINARY_VERSIONS.stop - 1})")
    reader.string()  # spec name, e.g. "WhisperSpec"
    reader.uint("I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.uint("I")):
        name = reader.string()
        shape = tuple(reader.uint("I") for _ in range(reader.uint("B")))
        type_id = reader.uint("B")
        raw = reader.take(reader.uint("I"))
        if not name.startswith(prefix):
            continue
        if type_id >= len(_TYPE_IDS):
            raise ValueError(f"variable {name!r} has unknown dtype id {type_id}")
        variables[name] = _to_array(raw, _TYPE_IDS[type_id], shape)
    variables = _dequantize(variables)
    for _ in range(reader.uint("I")):
        alias, target = reader.string(), reader.string()
        if alias.startswith(prefix) and target in variables:
            variables[alias] = variables[target]  # shared, not copied (e.g. Whisper's tied projection)
    if reader.pos != len(data):
        raise ValueError(f"model.bin has {len(data) - reader.pos} unexpected bytes after its aliases")
    return variables


def truncated_encoder_model(data: bytes, n_layers: int) -> bytes:
    """The same model.bin with only the encoder's first `n_layers` blocks: CTranslate2 counts the
    blocks it finds, so its `encode` then returns block `n_layers`'s output through the encoder's
    final LayerNorm, at the cost of `n_layers` blocks instead of all. The decoder keeps its first
    block only (CTranslate2's Whisper needs a decoder to load, `encode` never runs it): loaded as
    float32, an engine of 3 encoder blocks then holds 270 MB instead of 400. Every other record is
    copied byte for byte."""
    dropped = re.compile(r"^encoder/layer_(\d+)/")
    unused = re.compile(r"^decoder/layer_[1-9]\d*/")
    reader = _Reader(data)
    reader.uint("I")
    reader.string()
    reader.uint("I")
    count_at = reader.pos
    count = reader.uint("I")
    kept, removed, cut_blocks = [bytes(data[:count_at])], 0, 0
    for _ in range(count):
        start = reader.pos
        name = reader.string()
        reader.take(4 * reader.uint("B"))
        reader.uint("B")
        reader.take(reader.uint("I"))
        if (m := dropped.match(name)) and int(m.group(1)) >= n_layers:
            removed += 1
            cut_blocks += 1
        elif unused.match(name):
            removed += 1
        else:
            kept.append(bytes(data[start:reader.pos]))
    if cut_blocks == 0:
        raise ValueError(f"the model has no encoder block past {n_layers}")
    kept.insert(1, struct.pack("<I", count - removed))
    return b"".join(kept) + bytes(data[reader.pos:])


def _dequantize(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """int8 weights carry one scale per output row, int16 one per tensor: float = int / scale."""
    out = dict(variables)
    for name, value in variables.items():
        scale = variables.get(name + "_scale")
        if scale is not None and value.dtype.kind == "i" and value.ndim:
            scale = np.asarray(scale, np.float32)
            out[name] = value.astype(np.float32) / scale.reshape(scale.shape + (1,) * (value.ndim - scale.ndim))
            del out[name + "_scale"]
    return out


@dataclass(frozen=True)
class _Block:
    """One pre-LayerNorm transformer block, weights transposed once for `x @ w`."""

    attn_norm: tuple[np.ndarray, np.ndarray]  # (gamma, beta)
    qkv_w: np.ndarray  # (dim, 3·dim): linear_0 is q, k, v stacked by rows
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ffn_norm: tuple[np.ndarray, np.ndarray]
    ffn_w1: np.ndarray
    ffn_b1: np.ndarray
    ffn_w2: np.ndarray
    ffn_b2: np.ndarray


def _linear_t(weights: Mapping[str, np.ndarray], scope: str) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(weights[scope + "/weight"].T), weights[scope + "/bias"]


def _norm(weights: Mapping[str, np.ndarray], scope: str) -> tuple[np.ndarray, np.ndarray]:
    return weights[scope + "/gamma"], weights[scope + "/beta"]


def _conv_t(weight: np.ndarray) -> np.ndarray:
    """(out, in, k) → (k·in, out), matching patches laid out tap-major (see `_conv1d`)."""
    out_ch, in_ch, k = weight.shape
    return np.ascontiguousarray(weight.transpose(2, 1, 0).reshape(k * in_ch, out_ch))


def _conv1d(x: np.ndarray, weight_t: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """Time-major (batch, time, in) → (batch, ceil(time / stride), out): kernel 3, padding 1,
    as one matmul over the three taps side by side."""
    batch, time, channels = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    out_time = (time - 1) // stride + 1
    patches = np.concatenate([padded[:, tap:tap + stride * (out_time - 1) + 1:stride] for tap in range(3)], axis=-1)
    return (patches.reshape(-1, 3 * channels) @ weight_t + bias).reshape(batch, out_time, -1)


# Abramowitz & Stegun 7.1.26: erf(x) = 1 − (a1·t + … + a5·t⁵)·exp(−x²), t = 1 / (1 + p·x), x ≥ 0;
# absolute error ≤ 1.5e-7, below float32's rounding of GELU's inputs. Numpy, not scipy's erf: serving
# runs these layers for heads that read the blocks fused, and scipy is not among its dependencies.
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(a) for a in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))


def _erf(x: np.ndarray) -> np.ndarray:
    z = np.abs(x)
    t = 1.0 / (1.0 + _ERF_P * z)
    poly = _ERF_A[0]
    for a in _ERF_A[1:]:
        poly = poly * t + a
    return np.copysign(1.0 - poly * t * np.exp(-z * z), x)


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, CTranslate2's ActivationType::GELU for Whisper (not the tanh variant)."""
    return 0.5 * x * (1.0 + _erf(x * np.float32(1 / np.sqrt(2))))


def _layer_norm(x: np.ndarray, gamma_beta: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = np.mean(np.square(centred), axis=-1, keepdims=True)
    return centred / np.sqrt(variance + np.float32(LAYER_NORM_EPSILON)) * gamma_beta[0] + gamma_beta[1]


class WhisperLayers:
    """Whisper's encoder with every hidden state, from `read_ctranslate2_model(..., "encoder/")`.

    Output index i of `__call__` (shape (depth, batch, frames // 2, dim)):
      0          the convolutional stem (conv1 → GELU → conv2 stride 2 → GELU) plus the position table;
      1 … n−1    the residual stream after block i;
      n          after block n AND the final LayerNorm: exactly what CTranslate2's `encode` returns.
    With `max_layer=k < n`, only blocks 1…k run and index k is block k's raw residual stream (no final
    LayerNorm, which belongs to the top only). Residual-stream magnitudes grow with depth, so a head
    mixing layers should normalise each one (as SUPERB's weighted sum does) before weighting.
    """

    def __init__(self, weights: Mapping[str, np.ndarray]):
        self.n_layers = 1 + max(int(m.group(1)) for name in weights
                                if (m := re.match(r"encoder/layer_(\d+)/", name)))
        self.n_heads = int(weights.get("encoder/num_heads", 8))  # CTranslate2's default when absent
        conv1_w, conv2_w = weights["encoder/conv1/weight"], weights["encoder/conv2/weight"]
        self.n_mels = conv1_w.shape[1]
        self.dim = conv2_w.shape[0]
        self._conv1 = (_conv_t(conv1_w), weights["encoder/conv1/bias"])
        self._conv2 = (_conv_t(conv2_w), weights["encoder/conv2/bias"])
        self._positions = weights["encoder/position_encodings/encodings"]
        self._final_norm = _norm(weights, "encoder/layer_norm")
        self._blocks: list[_Block] = []
        for i in range(self.n_layers):
            scope = f"encoder/layer_{i}"
            qkv_w, qkv_b = _linear_t(weights, scope + "/self_attention/linear_0")
            out_w, out_b = _linear_t(weights, scope + "/self_attention/linear_1")
            ffn_w1, ffn_b1 = _linear_t(weights, scope + "/ffn/linear_0")
            ffn_w2, ffn_b2 = _linear_t(weights, scope + "/ffn/linear_1")
            self._blocks.append(_Block(_norm(weights, scope + "/self_attention/layer_norm"), qkv_w, qkv_b,
                                       out_w, out_b, _norm(weights, scope + "/ffn/layer_norm"),
                                       ffn_w1, ffn_b1, ffn_w2, ffn_b2))

    @classmethod
    def from_model_bytes(cls, data: bytes) -> WhisperLayers:
        """From CTranslate2's Whisper model.bin (e.g. `encoder.whisper_model_bytes()`)."""
        return cls(read_ctranslate2_model(data, prefix="encoder/"))

    @property
    def max_frames(self) -> int:
        """Input frames the position table covers (3000 = 30 s for Whisper)."""
        return 2 * len(self._positions)

    def __call__(self, log_mel: np.ndarray, max_layer: int | None = None) -> np.ndarray:
        """(batch, n_mels, frames) Whisper log-mel, frames even → (k + 1, batch, frames // 2, dim)
        float32, k = `max_layer` (default: all n blocks). See the class docstring for the indices."""
        depth = self.n_layers if max_layer is None else max_layer
        x = np.asarray(log_mel, dtype=np.float32)
        if x.ndim != 3 or x.shape[1] != self.n_mels or x.shape[2] % 2 or not 2 <= x.shape[2] <= self.max_frames:
            raise ValueError(f"expected (batch, {self.n_mels}, even frames ≤ {self.max_frames}), got {x.shape}")
        if not 0 <= depth <= self.n_layers:
            raise ValueError(f"max_layer must be in 0…{self.n_layers}, got {max_layer}")
        batch, frames = x.shape[0], x.shape[2] // 2
        hidden = _gelu(_conv1d(x.transpose(0, 2, 1), *self._conv1, stride=1))
        hidden = _gelu(_conv1d(hidden, *self._conv2, stride=2)) + self._positions[:frames]
        states = np.empty((depth + 1, batch, frames, self.dim), np.float32)
        states[0] = hidden
        hidden = hidden.reshape(batch * frames, self.dim)
        for i, block in enumerate(self._blocks[:depth], start=1):
            hidden = self._block(hidden, block, batch)
            states[i] = (_layer_norm(hidden, self._final_norm) if i == self.n_layers else hidden).reshape(
                batch, frames, self.dim)
        return states

    def _block(self, x: np.ndarray, block: _Block, batch: int) -> np.ndarray:
        """(batch·frames, dim) → same: x + attention(LN(x)), then + MLP(LN(·))."""
        rows = x.shape[0]
        head_dim = self.dim // self.n_heads
        qkv = (_layer_norm(x, block.attn_norm) @ block.qkv_w + block.qkv_b).reshape(
            batch, rows // batch, 3, self.n_heads, head_dim).transpose(2, 0, 3, 1, 4)  # (3, batch, heads, frames, hd)
        scores = (qkv[0] * np.float32(head_dim ** -0.5)) @ qkv[1].transpose(0, 1, 3, 2)
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(rows, self.dim)
        x = x + (context @ block.out_w + block.out_b)
        return x + (_gelu(_layer_norm(x, block.ffn_norm) @ block.ffn_w1 + block.ffn_b1) @ block.ffn_w2 + block.ffn_b2)
