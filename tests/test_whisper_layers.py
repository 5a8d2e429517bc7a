"""The numpy Whisper encoder: its model.bin parser on a tiny file written here in CTranslate2's
format, its layer bookkeeping on a tiny random encoder, and (when the pinned weights and CTranslate2
are installed) its last layer against CTranslate2's own float32 encoder."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from conftest import require, voice
from ser_core.frontend.encoder import WEIGHTS_PACKAGES
from ser_core.frontend.whisper_layers import WhisperLayers, read_ctranslate2_model, truncated_encoder_model

TYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}
BFLOAT16 = 5


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<H", len(raw) + 1) + raw + b"\0"


def _variable(name: str, value: np.ndarray, type_id: int | None = None) -> bytes:
    """One variable as model_spec.py `_serialize` writes it; `type_id` overrides for bfloat16,
    whose bytes are passed as uint16."""
    raw = np.ascontiguousarray(value).tobytes()
    return (_string(name) + struct.pack("<B", value.ndim) + struct.pack(f"<{value.ndim}I", *value.shape)
            + struct.pack("<BI", TYPE_IDS[value.dtype.name] if type_id is None else type_id, len(raw)) + raw)


def model_bin(variables: dict[str, np.ndarray], aliases: tuple[tuple[str, str], ...] = (), version: int = 6,
              raw_variables: tuple[bytes, ...] = ()) -> bytes:
    """A model.bin as CTranslate2's converter writes it (binary version 6 unless told)."""
    body = b"".join(_variable(name, value) for name, value in sorted(variables.items())) + b"".join(raw_variables)
    header = struct.pack("<I", version) + _string("TestSpec") + struct.pack("<I", 1)
    return (header + struct.pack("<I", len(variables) + len(raw_variables)) + body
            + struct.pack("<I", len(aliases)) + b"".join(_string(a) + _string(t) for a, t in aliases))


def test_parser_round_trips_every_dtype_and_alias():
    rng = np.random.default_rng(0)
    f32 = rng.standard_normal((2, 3)).astype(np.float32)
    f16 = rng.standard_normal((4,)).astype(np.float16)
    bf16 = np.array([[1.5, -2.0], [0.15625, 24576.0]], np.float32)  # exactly representable in bfloat16
    q8 = rng.integers(-127, 128, (3, 4)).astype(np.int8)
    scale = np.array([10.0, 20.0, 40.0], np.float32)
    data = model_bin(
        {"enc/a/weight": f32, "enc/b/bias": f16, "enc/q/weight": q8, "enc/q/weight_scale": scale,
         "enc/num_heads": np.array(8, np.int16), "enc/flag": np.array(1, np.int8),
         "enc/ids": np.arange(5, dtype=np.int32), "dec/x/weight": f32},
        aliases=(("enc/tied/weight", "enc/q/weight"),),
        raw_variables=(_variable("enc/bf/weight", (bf16.view(np.uint32) >> 16).astype(np.uint16), BFLOAT16),))
    got = read_ctranslate2_model(data)

    assert set(got) == {"enc/a/weight", "enc/b/bias", "enc/q/weight", "enc/num_heads", "enc/flag", "enc/ids",
                        "dec/x/weight", "enc/bf/weight", "enc/tied/weight"}  # scales consumed by dequantizing
    np.testing.assert_array_equal(got["enc/a/weight"], f32)
    np.testing.assert_array_equal(got["enc/b/bias"], f16.astype(np.float32))
    np.testing.assert_array_equal(got["enc/bf/weight"], bf16)
    np.testing.assert_allclose(got["enc/q/weight"], q8 / scale[:, None], rtol=1e-6)
    assert got["enc/tied/weight"] is got["enc/q/weight"]
    for name in ("enc/a/weight", "enc/b/bias", "enc/bf/weight", "enc/q/weight"):
        assert got[name].dtype == np.float32 and got[name].flags.writeable  # owned, not views of `data`
    assert got["enc/num_heads"].shape == () and got["enc/num_heads"].dtype == np.int16 and got["enc/num_heads"] == 8
    assert got["enc/flag"].dtype == np.int8 and got["enc/ids"].dtype == np.int32
    np.testing.assert_array_equal(got["enc/ids"], np.arange(5))

    assert set(read_ctranslate2_model(data, prefix="dec/")) == {"dec/x/weight"}


def test_parser_refuses_what_it_cannot_read():
    data = model_bin({"a/weight": np.ones((2, 2), np.float32)})
    with pytest.raises(ValueError, match="truncated"):
        read_ctranslate2_model(data[:-10])
    with pytest.raises(ValueError, match="unexpected bytes"):
        read_ctranslate2_model(data + b"\0")
    with pytest.raises(ValueError, match="binary version 3"):
        read_ctranslate2_model(model_bin({"a/weight": np.ones(2, np.float32)}, version=3))


def tiny_encoder(n_mels: int = 6, dim: int = 16, heads: int = 2, layers: int = 2, positions: int = 10) -> WhisperLayers:
    """A random Whisper-shaped encoder, stored as float16 in model.bin and read back."""
    rng = np.random.default_rng(1)
    w = lambda *shape: (0.3 * rng.standard_normal(shape)).astype(np.float16)  # noqa: E731
    variables = {"encoder/conv1/weight": w(dim, n_mels, 3), "encoder/conv1/bias": w(dim),
                 "encoder/conv2/weight": w(dim, dim, 3), "encoder/conv2/bias": w(dim),
                 "encoder/position_encodings/encodings": w(positions, dim),
                 "encoder/layer_norm/gamma": np.ones(dim, np.float16),
                 "encoder/layer_norm/beta": np.zeros(dim, np.float16),
                 "encoder/num_heads": np.array(heads, np.int16), "decoder/embeddings/weight": w(7, dim)}
    linears = {"self_attention/linear_0": (3 * dim, dim), "self_attention/linear_1": (dim, dim),
               "ffn/linear_0": (4 * dim, dim), "ffn/linear_1": (dim, 4 * dim)}
    for i in range(layers):
        for scope, shape in linears.items():
            variables[f"encoder/layer_{i}/{scope}/weight"] = w(*shape)
            variables[f"encoder/layer_{i}/{scope}/bias"] = w(shape[0])
        for norm in ("self_attention/layer_norm", "ffn/layer_norm"):
            variables[f"encoder/layer_{i}/{norm}/gamma"] = 1 + w(dim)
            variables[f"encoder/layer_{i}/{norm}/beta"] = w(dim)
    return WhisperLayers.from_model_bytes(model_bin(variables))


def test_every_layer_is_returned_and_the_last_is_normalised():
    encoder = tiny_encoder()
    assert (encoder.n_layers, encoder.n_heads, encoder.n_mels, encoder.dim, encoder.max_frames) == (2, 2, 6, 16, 20)
    log_mel = np.random.default_rng(2).standard_normal((3, 6, 12)).astype(np.float32)
    states = encoder(log_mel)
    assert states.shape == (3, 3, 6, 16) and states.dtype == np.float32
    # The top entry went through the final LayerNorm (gamma 1, beta 0): each frame has mean 0, variance 1.
    np.testing.assert_allclose(states[-1].mean(axis=-1), 0, atol=1e-5)
    np.testing.assert_allclose(states[-1].var(axis=-1), 1, atol=1e-3)
    # Stopping early returns the same lower layers, and a window's states do not depend on its batch.
    np.testing.assert_allclose(encoder(log_mel, max_layer=1), states[:2], atol=1e-6)
    np.testing.assert_allclose(encoder(log_mel[1:2]), states[:, 1:2], atol=1e-5)
    assert encoder(log_mel, max_layer=0).shape == (1, 3, 6, 16)


@pytest.mark.parametrize("shape", [(1, 6, 11), (1, 5, 12), (6, 12), (1, 6, 22)])
def test_bad_inputs_are_refused(shape):
    with pytest.raises(ValueError, match="expected"):
        tiny_encoder()(np.zeros(shape, np.float32))


def test_max_layer_must_exist():
    with pytest.raises(ValueError, match="max_layer"):
        tiny_encoder()(np.zeros((1, 6, 12), np.float32), max_layer=3)


def slaney_mel(sr: int = 16000, n_fft: int = 400, n_mels: int = 80) -> np.ndarray:
    """librosa.filters.mel's default (Slaney scale and area norm), which Whisper's filters are,
    without librosa's import cost: triangles over mel-spaced edges, each scaled to unit area."""
    f_sp, log_start, log_step = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    top_mel = log_start / f_sp + np.log(sr / 2 / log_start) / log_step  # sr / 2 is above 1 kHz: log part
    mels = np.linspace(0.0, top_mel, n_mels + 2)
    edges = np.where(mels < log_start / f_sp, mels * f_sp, log_start * np.exp(log_step * (mels - log_start / f_sp)))
    bins = np.linspace(0.0, sr / 2, 1 + n_fft // 2)
    rising = (bins - edges[:-2, None]) / np.diff(edges)[:-1, None]
    falling = (edges[2:, None] - bins) / np.diff(edges)[1:, None]
    return np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def whisper_log_mel(samples: np.ndarray) -> np.ndarray:
    """Whisper's recipe: 400-point periodic Hann, hop 160, centred (reflect), last frame dropped,
    power → 80 Slaney mel bands → log10 (floor 1e-10) → 8 decades below the max → (x + 4) / 4."""
    padded = np.pad(samples.astype(np.float64), 200, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, 400)[::160][:-1]
    power = np.abs(np.fft.rfft(frames * np.hanning(401)[:-1], axis=-1)) ** 2
    log_mel = np.log10(np.maximum(slaney_mel() @ power.T, 1e-10))
    return ((np.maximum(log_mel, log_mel.max() - 8.0) + 4.0) / 4.0).astype(np.float32)


def test_last_layer_matches_ctranslate2_float32():
    """Measured: max |Δ| 1e-4 for one 3 s window, 6e-4 over a batch of 16 (values up to ~23),
    cosine 1 − 3e-12; CTranslate2 int8 sits at cosine 0.993 from both."""
    for name in (*WEIGHTS_PACKAGES, "ctranslate2"):  # the Whisper-base weights and CTranslate2
        require(name)
    from ser_core.frontend.encoder import WhisperEncoder, whisper_model_bytes

    log_mel = np.stack([whisper_log_mel(voice(3.0, f0=f0, seed=seed)) for seed, f0 in ((1, 150.0), (2, 230.0))])
    assert log_mel.shape == (2, 80, 300)
    with threadpool_limits(1):  # as the reference; two BLAS threads on a busy 2-core box thrash
        encoder = WhisperLayers.from_model_bytes(whisper_model_bytes())
        ours = encoder(log_mel)
    reference = WhisperEncoder(compute_type="float32", threads=1)(log_mel)
    assert ours.shape == (7, 2, 150, 512)
    np.testing.assert_allclose(ours[-1], reference, atol=2e-3, rtol=0)
    a, b = ours[-1].ravel().astype(np.float64), reference.ravel().astype(np.float64)
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 1 - 1e-8

    # The encoder cut after block 3 (what CTranslate2 runs for `layers=3`) returns block 3 through the
    # final LayerNorm: measured max |Δ| 1.6e-5 against this numpy path.
    block3 = ours[3]
    weights = read_ctranslate2_model(whisper_model_bytes(), "encoder/")
    normalised = (block3 - block3.mean(-1, keepdims=True)) / np.sqrt(block3.var(-1, keepdims=True) + 1e-5)
    expected = normalised * weights["encoder/layer_norm/gamma"] + weights["encoder/layer_norm/beta"]
    cut = WhisperEncoder(compute_type="float32", threads=1, layers=3)(log_mel)
    np.testing.assert_allclose(cut, expected, atol=2e-3, rtol=0)


def test_truncated_model_keeps_every_other_record():
    """The cut model.bin drops exactly the encoder blocks past the cut and the decoder's blocks past its
    first; all else parses as before."""
    data = model_bin({"encoder/layer_0/w": np.ones(3, np.float32), "encoder/layer_1/w": np.zeros(3, np.float32),
                      "encoder/layer_norm/gamma": np.ones(3, np.float32), "decoder/x": np.arange(4, dtype=np.int32),
                      "decoder/layer_0/w": np.ones(2, np.float32), "decoder/layer_1/w": np.ones(2, np.float32),
                      "decoder/layer_10/w": np.ones(2, np.float32)},
                     aliases=(("decoder/y", "decoder/x"),))
    cut = read_ctranslate2_model(truncated_encoder_model(data, 1))
    assert sorted(cut) == ["decoder/layer_0/w", "decoder/x", "decoder/y", "encoder/layer_0/w", "encoder/layer_norm/gamma"]
    with pytest.raises(ValueError, match="no encoder block past 2"):
        truncated_encoder_model(data, 2)
