"""Which of Whisper-base's encoder blocks carries emotion best? Exploratory, on validation only.

Every block's output comes from the numpy encoder (`ser_core.frontend.whisper_layers`, float32), pooled
(mean + std over time) per clip, for a seeded sample of 1,500 speaker-protocol training clips and
900 validation clips. Then, on validation: a logistic-regression probe per block, on all blocks
concatenated and on blocks 3-6 averaged; and a small MLP head (as `whisper-head`) on the last block,
on block 3 alone, and on a learned weighted sum of all blocks (the SUPERB recipe).

    python bench/encoder_layers.py      writes bench/results/encoder_layers.json (about 30 CPU-minutes)

What it decided: the encoder models run the first 3 blocks only (`TrainParams.encoder_layers`),
which CTranslate2 does by cutting model.bin after block 3 (`whisper_layers.truncated_encoder_model`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from provenance import provenance
from ser_core.errors import SerError
from ser_core.frontend.encoder import content_frames, pooled_statistics, whisper_model_bytes
from ser_core.frontend.features import extract
from ser_core.frontend.whisper_layers import WhisperLayers
from ser_core.io.audio import load_audio
from ser_core.labels import LABELS
from ser_core.training.corpora import find_clips
from ser_core.training.splits import assign
from ser_core.training.train import WHISPER_FEATURES

ROOT = Path(__file__).resolve().parent.parent


def pooled_blocks(encoder: WhisperLayers, clips) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per clip: (blocks + 1, 1024) pooled statistics, averaged over the clip's windows."""
    x, y, corpus = [], [], []
    for clip in clips:
        try:
            features = extract(load_audio(clip.path, 16000).samples, WHISPER_FEATURES)[1]
        except SerError:
            continue
        lengths = content_frames(features)
        per_window = [pooled_statistics(encoder(features[i : i + 1, :, : lengths[i]])[:, 0]) for i in range(len(features))]
        x.append(np.mean(per_window, axis=0))
        y.append(LABELS.index(clip.emotion))
        corpus.append(clip.corpus)
    return np.stack(x), np.array(y), np.array(corpus)


def scores(y: np.ndarray, predicted: np.ndarray, corpus: np.ndarray) -> dict:
    from sklearn.metrics import balanced_accuracy_score

    return {"uar": balanced_accuracy_score(y, predicted),
            **{c: balanced_accuracy_score(y[corpus == c], predicted[corpus == c]) for c in np.unique(corpus)}}


def probes(xt, yt, xv, yv, cv) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def probe(a, b):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced"))
        return scores(yv, model.fit(a, yt).predict(b), cv)

    out = {f"block{i}": probe(xt[:, i], xv[:, i]) for i in range(xt.shape[1])}
    out["all-concatenated"] = probe(xt.reshape(len(xt), -1), xv.reshape(len(xv), -1))
    out["blocks-3-to-6-averaged"] = probe(xt[:, 3:].mean(1), xv[:, 3:].mean(1))
    return out


def heads(xt, yt, xv, yv, cv) -> dict:
    import keras
    from keras import layers

    def head(shape, weighted: bool):
        inputs = keras.Input(shape=shape)
        x = layers.LayerNormalization(axis=-1)(inputs)  # per block: scales grow with depth
        if weighted:
            x = layers.Flatten()(layers.Dense(1, use_bias=False, kernel_initializer="ones")(layers.Permute((2, 1))(x)))
        x = layers.Dropout(0.3)(layers.Dense(256, activation="gelu")(layers.Dropout(0.1)(x)))
        return keras.Model(inputs, layers.Dense(len(LABELS), activation="softmax")(x))

    counts = np.bincount(yt, minlength=len(LABELS))
    class_weight = {i: len(yt) / (len(LABELS) * max(counts[i], 1)) for i in range(len(LABELS))}
    out = {}
    for name, a, b, weighted in (("last block", xt[:, -1], xv[:, -1], False),
                                 ("weighted sum of blocks", xt, xv, True), ("block 3", xt[:, 3], xv[:, 3], False)):
        keras.utils.set_random_seed(42)
        model = head(a.shape[1:], weighted)
        model.compile(keras.optimizers.AdamW(1e-3, weight_decay=1e-3), "sparse_categorical_crossentropy")
        model.fit(a, yt, epochs=40, batch_size=64, verbose=0, class_weight=class_weight)
        out[name] = scores(yv, model.predict(b, verbose=0).argmax(1), cv)
    return out


def main() -> None:
    threadpool_limits(1)
    run = provenance()  # no shipped model: probes and heads on the encoder's blocks
    clips = list(find_clips([ROOT.parent / "shared" / "corpora"]))
    parts = assign(clips, ROOT / "models" / "splits" / "speaker.csv")
    rng = np.random.default_rng(0)
    sample = lambda items, n: [items[i] for i in sorted(rng.choice(len(items), min(n, len(items)), replace=False))]
    encoder = WhisperLayers.from_model_bytes(whisper_model_bytes())
    xt, yt, _ = pooled_blocks(encoder, sample(parts["train"], 1500))
    xv, yv, cv = pooled_blocks(encoder, sample(parts["val"], 900))
    results = {"provenance": run, "train_clips": len(xt), "val_clips": len(xv), "metric": "validation UAR",
               "logistic_probes": probes(xt, yt, xv, yv, cv), "mlp_heads": heads(xt, yt, xv, yv, cv)}
    (ROOT / "bench" / "results" / "encoder_layers.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
