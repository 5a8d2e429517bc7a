"""Pooled encoder embeddings for many clips: computed once in parallel, cached on disk, with progress.

The encoder is frozen, so its pass over every clip (and every augmented copy) is the expensive,
reusable part of training an encoder model. The cache is keyed by the encoder's weights sha256,
the feature parameters, EMBEDDING_VERSION and the augmentation (None, or a kind of copy in
`augment.COPIES` with its seed: "augment1", "speechcut1"); it lives under ~/.cache/ser (or
$SER_CACHE_DIR), never in the repository.

int8 embeddings are cached by the int8 arithmetic that computed them (`encoder.int8_arithmetic`:
"-int8coarse", "-int8precise"), which depends on the CPU and on CTranslate2's back end (`int8_backend`).

Embeddings pooled by loudness (`encoder.POOLINGS`, `TrainParams.pooling`) are cached apart ("-loudness").

Heads that read the encoder's blocks fused (`TrainParams.fused_blocks`) take, beside block k's
embedding, the pooled stem and blocks 1…k−1: cached apart (`lower=True`, "-lower" in the cache name),
so the block-k cache every other head reads is reused as it is.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ..errors import SerError
from ..frontend.encoder import CT2_BACKENDS, ENCODER_LAYERS
from ..frontend.features import FeatureCache, FeatureParams, default_cache_dir, extract
from ..io.audio import load_audio
from .corpora import Clip
from .dataset import ClipFeatures, map_clips

EMBEDDING_VERSION = 1  # of encoder.embed and the augmentation chain: bump to rebuild caches


def embedding_cache(params: FeatureParams, augmentation: int | None, cache_root: Path | None = None,
                    layers: int = ENCODER_LAYERS, compute_type: str = "int8", lower: bool = False,
                    copy: str = "augment", pooling: str = "even") -> FeatureCache:
    """`augmentation`: None (the clips as they are) or the seed of a copy of kind `copy` (`augment.COPIES`).
    `lower`: the pooled stem and blocks 1…layers−1 (numpy, float32) instead of block `layers`'s.
    `pooling`: how frames are pooled over time (`encoder.POOLINGS`)."""
    from ..frontend.encoder import WEIGHTS_SHA256, int8_arithmetic

    kind = "clean" if augmentation is None else f"{copy}{augmentation}"
    depth = "" if layers == ENCODER_LAYERS else f"-l{layers}"
    precision = ("-float32-lower" if lower else f"-int8{int8_arithmetic()}" if compute_type == "int8"
                 else f"-{compute_type}")
    root = (Path(cache_root or default_cache_dir()).parent / "embeddings"
            / f"{WEIGHTS_SHA256[:12]}{depth}{precision}{'' if pooling == 'even' else '-' + pooling}"
              f"-e{EMBEDDING_VERSION}-{kind}")
    return FeatureCache(params, root)


def clip_rng(clip_id: str, seed: int) -> np.random.Generator:
    """The same random augmentation for a clip on every run and in every worker."""
    return np.random.default_rng([seed, zlib.crc32(clip_id.encode())])


def clip_embeddings(clip: Clip, params: FeatureParams, augmentation: int | None, cache: FeatureCache,
                    layers: int = ENCODER_LAYERS, compute_type: str = "int8", lower: bool = False,
                    copy: str = "augment", pooling: str = "even") -> np.ndarray:
    from ..frontend.encoder import embed, shared_blocks_encoder, shared_encoder
    from .augment import COPIES

    if (cached := cache.get(clip.path)) is not None:
        return cached
    samples = load_audio(clip.path, params.sample_rate).samples
    if augmentation is not None:
        samples = COPIES[copy](samples, params.sample_rate, clip_rng(clip.clip_id, augmentation))
    log_mel = extract(samples, params)[1]
    encoder = shared_blocks_encoder(layers - 1, cut=False) if lower else shared_encoder(compute_type, 1, layers)
    embeddings = embed(encoder, log_mel, pooling=pooling)
    cache.put(clip.path, embeddings)
    return embeddings


def _worker(args) -> tuple[np.ndarray | None, str]:
    clip, params, augmentation, cache_root, layers, compute_type, lower, copy, pooling = args
    try:
        cache = embedding_cache(params, augmentation, cache_root, layers, compute_type, lower, copy, pooling)
        return clip_embeddings(clip, params, augmentation, cache, layers, compute_type, lower, copy, pooling), ""
    except SerError as error:
        return None, str(error)


def embed_clips(
    clips: list[Clip],
    params: FeatureParams,
    augmentation: int | None = None,
    cache_root: Path | None = None,
    workers: int | None = None,
    desc: str = "embeddings",
    layers: int = ENCODER_LAYERS,
    compute_type: str = "int8",
    lower: bool = False,
    fused: bool = False,
    copy: str = "augment",
    pooling: str = "even",
    int8_backend: str | None = None,
) -> ClipFeatures:
    """Pooled embeddings (n_windows, 1024) for every clip, from the cache where present; clips that
    cannot be decoded or are silent are skipped with their reason. Each worker runs one
    single-threaded encoder: on 2 cores, two processes beat one process with two threads. `lower`:
    the pooled stem and blocks 1…layers−1 instead, (n_windows, (layers) × 1024), see `embedding_cache`;
    `fused`: those and block `layers`'s side by side, (n_windows, (layers + 1) × 1024), from both caches.
    `copy`: the kind of copy `augmentation` seeds (`augment.COPIES`); `pooling`: `encoder.POOLINGS`;
    `int8_backend`: a key of `encoder.CT2_BACKENDS`, which the workers' CTranslate2 then runs on."""
    if fused:
        if pooling != "even":
            raise ValueError("the fused blocks are pooled evenly only")
        top = embed_clips(clips, params, augmentation, cache_root, workers, desc, layers, compute_type, copy=copy)
        below = embed_clips(top.clips, params, augmentation, cache_root, workers, f"{desc}, lower blocks", layers,
                            compute_type, lower=True, copy=copy)
        tops = {id(clip): f for clip, f in zip(top.clips, top.features)}
        return ClipFeatures(below.clips, [np.concatenate([f, tops[id(clip)]], axis=1)
                                          for clip, f in zip(below.clips, below.features)], top.skipped + below.skipped)
    jobs = [(clip, params, augmentation, cache_root, layers, compute_type, lower, copy, pooling) for clip in clips]
    environment = None if int8_backend is None else {"CT2_USE_MKL": CT2_BACKENDS[int8_backend]}
    return map_clips(clips, _worker, jobs, workers, desc, environment)
