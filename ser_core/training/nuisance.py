"""Directions along which the training corpora differ for the same emotion, taken out of a head's input.

Each corpus asks for its own classes (`corpora.CORPUS_LABELS`) and has its own rooms, microphones,
language and actors. A head that can tell corpora apart can learn "sounds like the Hindi/English
keywords, so calm", and an unheard language then lands on whichever corpus it sounds like. Nuisance
attribute projection (Solomonoff, Campbell and Boardman, 2005; corpora as the nuisance): in the
standardised embedding space, for every emotion the mean of each corpus's clips of it minus the
mean over corpora; the `k` leading directions of those differences are projected out of every
window before the head sees it. Emotion contrasts that every corpus shares are kept.

The projection is affine in the raw embedding, so after training it is folded into the head's first
dense layer (`fold_into`): the saved model reads raw embeddings and has the head's own shape and cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..labels import LABELS
from .dataset import ClipFeatures


@dataclass(frozen=True)
class CorpusProjection:
    mean: np.ndarray  # (d,) of the training windows: the centre of the standardised space
    scale: np.ndarray  # (d,) their standard deviations
    directions: np.ndarray  # (d, k) orthonormal, in the standardised space

    @classmethod
    def fit(cls, data: ClipFeatures, k: int) -> "CorpusProjection":
        """The `k` leading directions of the (corpus, emotion) cell means' deviations from each
        emotion's mean over corpora; only single-emotion labels (not BAVED's arousal sets), and only
        emotions that two or more corpora have."""
        windows = np.concatenate(data.features).astype(np.float64)
        mean, scale = windows.mean(axis=0), np.maximum(windows.std(axis=0), 1e-6)
        cells: dict[str, dict[str, list[np.ndarray]]] = {}
        for clip, features in zip(data.clips, data.features):
            if clip.emotion in LABELS:
                cells.setdefault(clip.emotion, {}).setdefault(clip.corpus, []).append(features)
        deviations = []
        for by_corpus in cells.values():
            if len(by_corpus) < 2:
                continue
            means = np.stack([(np.concatenate(f) - mean).mean(axis=0) / scale for f in by_corpus.values()])
            deviations.append(means - means.mean(axis=0))
        _, _, vt = np.linalg.svd(np.concatenate(deviations), full_matrices=False)
        return cls(mean, scale, vt[:k].T)

    def _along(self, v: np.ndarray) -> np.ndarray:
        """v M for row vectors v, M = diag(1/scale) U Uᵀ diag(scale): the part of a raw centred
        embedding that lies along the directions."""
        return ((v / self.scale) @ self.directions) @ self.directions.T * self.scale

    def _times(self, w: np.ndarray) -> np.ndarray:
        """M w for a matrix w of d rows."""
        return (self.directions @ (self.directions.T @ (w * self.scale[:, None]))) / self.scale[:, None]

    def project(self, x: np.ndarray) -> np.ndarray:
        """Raw embeddings (n, d) with the directions taken out (about the training mean)."""
        return (x - self._along(x - self.mean)).astype(np.float32)

    def fold_into(self, model) -> None:
        """Make `model`, trained on `project(x)`, read raw `x` with the same outputs: its first dense
        layer absorbs the projection (its standardising layer keeps its statistics)."""
        import keras

        norm = model.get_layer("standardise")
        centre = keras.ops.convert_to_numpy(norm.mean).reshape(-1).astype(np.float64)
        spread = np.sqrt(np.maximum(keras.ops.convert_to_numpy(norm.variance).reshape(-1).astype(np.float64),
                                    keras.backend.epsilon()))
        dense = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
        kernel, bias = (w.astype(np.float64) for w in dense.get_weights())
        # The dense layer sees (project(x) - centre) / spread = z - ((z·spread + centre - mean) M) / spread
        # with z the raw embedding standardised by the same layer; M is linear, so it moves into the kernel.
        through_kernel = self._times(kernel / spread[:, None])
        new_kernel = kernel - spread[:, None] * through_kernel
        new_bias = bias - (centre - self.mean) @ through_kernel
        dense.set_weights([new_kernel.astype(np.float32), new_bias.astype(np.float32)])
