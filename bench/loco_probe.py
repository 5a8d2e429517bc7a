"""Which encoder read-out and training weighting hold up on a corpus never heard? A fast probe.

Leave one corpus out over the five corpora, on the cached pooled Whisper embeddings (the same ones the
emo-whisper recipe trains on), with a multinomial logistic regression in place of the Keras head so
that many front-end choices can be compared in minutes. Clip probabilities are the mean over its
windows; the score is UAR over the held-out corpus's classes, its mean over the five folds and its
minimum. Used to choose recipe settings on LOCO, never on test clips (a LOCO fold's test corpus is
a whole corpus the fold's training never saw; the speaker-protocol test split is not consulted).

Compared:
- read-out: encoder block 3 (the recipe's, best on speaker-protocol validation), block 6 (the
  last), both concatenated; pooled mean only or std only;
- weighting: each window of a class weighs the same overall (the recipe's class weighting), or each
  corpus weighs the same and within it each of its classes ("corpus-balanced");
- regularisation: the inverse L2 strength C, and the recipe's augmented copy of every training clip;
- speaker normalisation (every speaker's mean moved onto the training mean, test speakers too):
  the emo-whisper-adapt recipe's reading, which a voice profile serves;
- nuisance projection, which needs nothing of the test speaker: the k directions along which the
  training speakers' means differ most (PCA of the per-speaker means, standardised) are projected
  out of every window, train and test, so that the head cannot lean on them.

    python bench/loco_probe.py [--rows N ...]     updates bench/results/loco_probe.json (a setting's
                                                  row replaced, the other settings' kept)
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler

from provenance import provenance

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ("ravdess", "cremad", "savee", "tess", "ased")


@functools.cache
def load(layers: int, augmentation: int | None) -> tuple[list, list[np.ndarray]]:
    """The speaker split's clips and their pooled windows (computed once, cached on disk by embed_clips)."""
    from ser_core.training.corpora import read_manifest
    from ser_core.training.embeddings import embed_clips
    from ser_core.training.splits import read_split_file
    from ser_core.training.train import WHISPER_FEATURES

    named = read_split_file(ROOT / "models" / "splits" / "speaker.csv")
    clips = [c for c in read_manifest(ROOT.parent / "shared" / "corpora" / "manifest.csv") if (c.corpus, c.clip_id) in named]
    data = embed_clips(clips, WHISPER_FEATURES, augmentation, layers=layers,
                       desc=f"embeddings (block {layers}, {augmentation or 'clean'})")
    return data.clips, data.features


def pooled(layers: int, augmentation: int | None = None) -> list[np.ndarray]:
    """One entry per clip of load(3), in its order, whatever the read-out."""
    clips, features = load(layers, augmentation)
    assert [c.clip_id for c in clips] == [c.clip_id for c in load(3, None)[0]]
    return features


def readout(name: str) -> list[np.ndarray]:
    """The named read-out of the clean clips; only the blocks it needs are loaded."""
    half = lambda: pooled(3)[0].shape[1] // 2
    return {
        "block3": lambda: pooled(3),
        "block6": lambda: pooled(6),
        "block3+6": lambda: [np.concatenate([a, b], axis=1) for a, b in zip(pooled(3), pooled(6))],
        "block3 mean": lambda: [f[:, :half()] for f in pooled(3)],
        "block3 std": lambda: [f[:, half():] for f in pooled(3)],
    }[name]()


def weights(clips, counts, weighting: str) -> np.ndarray:
    """One weight per window."""
    if weighting == "class":
        classes = [c.emotion for c in clips]
        totals = {k: sum(n for e, n in zip(classes, counts) if e == k) for k in set(classes)}
        per_clip = [1.0 / totals[c.emotion] for c in clips]
    else:
        cells = {}
        for clip, n in zip(clips, counts):
            cells[clip.corpus, clip.emotion] = cells.get((clip.corpus, clip.emotion), 0) + n
        per_corpus = {corpus: sum(1 for c, _ in cells if c == corpus) for corpus, _ in cells}
        per_clip = [1.0 / (cells[c.corpus, c.emotion] * per_corpus[c.corpus]) for c in clips]
    w = np.repeat(per_clip, counts)
    return w * len(w) / w.sum()


def nuisance_projection(clips, features: list[np.ndarray], dims: int):
    """A map removing the `dims` principal directions of the per-speaker mean windows (identity for 0)."""
    if not dims:
        return lambda x: x
    by_speaker: dict[tuple[str, str], list[np.ndarray]] = {}
    for clip, windows in zip(clips, features):
        by_speaker.setdefault((clip.corpus, clip.speaker), []).append(windows)
    means = np.stack([np.concatenate(group).mean(axis=0) for group in by_speaker.values()])
    basis = np.linalg.svd(means - means.mean(axis=0), full_matrices=False)[2][:dims]
    return lambda x: x - (x @ basis.T) @ basis


def fold(job) -> dict:
    clips, features, augmented, config, corpus = job
    from ser_core.labels import LABELS
    from ser_core.training.dataset import ClipFeatures
    from ser_core.training.train import speaker_normalised

    train_mask = [c.corpus != corpus for c in clips]
    if config["speaker_normalised"]:
        target = np.concatenate([f for f, m in zip(features, train_mask) if m]).mean(axis=0)
        features = speaker_normalised(ClipFeatures(clips, features, []), target).features
    train = [i for i, m in enumerate(train_mask) if m]
    test = [i for i, m in enumerate(train_mask) if not m]
    sources = [features] + ([augmented] if config.get("augmented") else [])
    counts = [len(source[i]) for source in sources for i in train]
    x = np.concatenate([source[i] for source in sources for i in train])
    y = np.repeat([LABELS.index(clips[i].emotion) for _ in sources for i in train], counts)
    scaler = StandardScaler().fit(x)
    project = nuisance_projection([clips[i] for i in train], [scaler.transform(features[i]) for i in train],
                                  config.get("nuisance_dims", 0))
    head = LogisticRegression(C=config["C"], max_iter=300)
    head.fit(project(scaler.transform(x)), y,
             sample_weight=weights([clips[i] for _ in sources for i in train], counts, config["weighting"]))
    probabilities = np.stack([head.predict_proba(project(scaler.transform(features[i]))).mean(axis=0) for i in test])
    predicted = head.classes_[probabilities.argmax(axis=1)]
    truth = [LABELS.index(clips[i].emotion) for i in test]
    return {"corpus": corpus, "uar": float(balanced_accuracy_score(truth, predicted)), "n_test": len(test)}


def setting(**changes) -> dict:
    """One probe setting: block 3's mean and std, classes weighted alike, C = 0.01, voices as recorded,
    changed where named."""
    return {"readout": "block3", "weighting": "class", "C": 0.01, "speaker_normalised": False, **changes}


CONFIGS = [
    setting(),
    setting(C=0.1),
    setting(C=1.0),
    setting(readout="block6"),
    setting(readout="block3+6"),
    setting(readout="block3 mean"),
    setting(readout="block3 std"),
    setting(weighting="corpus"),
    setting(speaker_normalised=True),
    setting(weighting="corpus", speaker_normalised=True),
    setting(C=0.003),
    setting(C=0.001),
    setting(C=0.003, augmented=True),
    setting(augmented=True),
    setting(C=0.003, speaker_normalised=True),
    setting(C=0.003, nuisance_dims=8),
    setting(C=0.003, nuisance_dims=32),
    setting(C=0.003, nuisance_dims=96),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows", type=int, nargs="*", help="only these rows of CONFIGS (0-based)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "loco_probe.json"))
    args = parser.parse_args()

    run = provenance()  # no shipped model: probes on cached encoder embeddings
    clips = load(3, None)[0]
    started = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        for config in [CONFIGS[i] for i in args.rows] if args.rows else CONFIGS:
            chosen = readout(config["readout"])
            copy = pooled(3, augmentation=1) if config.get("augmented") else None  # the recipe's augmented copy, block 3
            folds = list(pool.map(fold, [(clips, chosen, copy, config, corpus) for corpus in CORPORA]))
            uars = [f["uar"] for f in folds]
            rows.append({**config, "folds": {f["corpus"]: f["uar"] for f in folds},
                         "mean_uar": float(np.mean(uars)), "min_uar": float(np.min(uars))})
            print(json.dumps(rows[-1]), flush=True)
    # Rows of this run replace the stored rows of the same setting; the others stay.
    out = Path(args.out)
    stored = json.loads(out.read_text()) if out.is_file() else {"runs": [], "seconds": {}, "rows": []}
    setting_of = lambda row: {k: v for k, v in row.items() if k not in ("folds", "mean_uar", "min_uar")}
    made = [setting_of(row) for row in rows]
    run = "python bench/loco_probe.py" + (" --rows " + " ".join(map(str, args.rows)) if args.rows else "")
    stored.update({
        "provenance": run,
        "probe": "multinomial logistic regression on standardised pooled embeddings, clip = mean of window probabilities",
        "clips": len(clips),
        "rows": [row for row in stored["rows"] if setting_of(row) not in made] + rows,
        "runs": [*stored["runs"], run],
        "seconds": {**stored["seconds"], run: time.perf_counter() - started},
    })
    out.write_text(json.dumps(stored, indent=2))


if __name__ == "__main__":
    main()
