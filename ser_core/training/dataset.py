"""MFCC windows for many clips at once: cached on disk, extracted in parallel, with progress."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from ..errors import SerError
from ..frontend.features import FeatureCache, FeatureParams, default_cache_dir, extract
from ..io.audio import load_audio
from ..serving.batch import each, map_local
from .corpora import Clip, corpus_labels, taught_as

JOBS_PER_BATCH = 8  # clips per worker task: small, so that progress moves and workers stay busy to the end


@dataclass(frozen=True)
class ClipFeatures:
    clips: list[Clip]  # the clips that decoded, in input order
    features: list[np.ndarray]  # per clip: (n_windows, n_mfcc, n_frames)
    skipped: list[tuple[str, str]]  # (path, reason) for clips that could not be used

    def stacked(self, labels: tuple[str, ...], label_spaces: bool = False,
                twins: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All windows, each with its target (the classes its label teaches, `corpora.taught_as`, 1 each)
        and its label space (the classes its corpus has with `label_spaces`, else all): the training examples."""
        targets = np.array([[label in taught_as(c.emotion, c.corpus, twins) for label in labels] for c in self.clips],
                           np.float32)
        spaces = np.array([[not label_spaces or label in corpus_labels(c.corpus) for label in labels]
                           for c in self.clips], np.float32)
        repeat = [len(f) for f in self.features]
        return np.concatenate(self.features), np.repeat(targets, repeat, axis=0), np.repeat(spaces, repeat, axis=0)


def clip_features(path: Path, params: FeatureParams, cache: FeatureCache) -> np.ndarray:
    if (cached := cache.get(path)) is not None:
        return cached
    features = extract(load_audio(path, params.sample_rate).samples, params)[1]
    cache.put(path, features)
    return features


def _worker(args) -> tuple[np.ndarray | None, str]:
    path, params, cache_root = args
    cache = FeatureCache(params, cache_root)
    try:
        return clip_features(path, params, cache), ""
    except SerError as error:
        return None, str(error)


@dataclass(frozen=True)
class PerClip:
    """Factory for the local engine: a per-clip job function (module level, picklable) as a batch one."""

    worker: Callable

    def __call__(self) -> Callable[[list], list]:
        return functools.partial(each, self.worker)


def skipped_clip(job, message: str) -> tuple[None, str]:
    """The row of a clip whose worker raised: skipped, with the reason."""
    return None, message


def map_clips(clips: list[Clip], worker: Callable, jobs: list, workers: int | None, desc: str,
              environment: dict[str, str] | None = None) -> ClipFeatures:
    """Run `worker` over one job per clip on the local engine (`serving.batch.map_local`: in `workers`
    processes when there are enough jobs, or an `environment` to start them with), with progress; a
    worker returns (array, "") or (None, reason), and the reasons become `skipped` (as does the
    exception of a job that raises)."""
    workers = workers or os.cpu_count() or 1
    rows = map_local(jobs, PerClip(worker), JOBS_PER_BATCH, workers if len(jobs) > 50 else 1, skipped_clip,
                     environment)
    results = list(tqdm(rows, total=len(jobs), desc=desc))
    kept, arrays, skipped = [], [], []
    for clip, (array, reason) in zip(clips, results):
        if array is None:
            skipped.append((str(clip.path), reason))
        else:
            kept.append(clip)
            arrays.append(array)
    return ClipFeatures(kept, arrays, skipped)


def extract_clips(
    clips: list[Clip],
    params: FeatureParams,
    cache_root: Path | None = None,
    workers: int | None = None,
    desc: str = "features",
) -> ClipFeatures:
    """Features for every clip, from the on-disk cache where present (default: ~/.cache/ser/features,
    or $SER_CACHE_DIR); undecodable or silent clips are skipped with their reason."""
    cache_root = Path(cache_root or default_cache_dir())
    return map_clips(clips, _worker, [(clip.path, params, cache_root) for clip in clips], workers, desc)
