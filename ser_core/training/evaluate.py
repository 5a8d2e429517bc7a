"""Evaluate a model on any list of labelled clips: the metrics schema and per-clip predictions, on
the clips as recorded or under perturbations (gain, noise, phone line, codecs, room)."""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import ManifestError
from ..serving.batch import each, map_local
from ..serving.calibration import clip_means
from ..serving.inference import SerModel
from .corpora import Clip, candidates
from .dataset import JOBS_PER_BATCH, ClipFeatures
from .metrics import compute_metrics, label_uar


def clip_probabilities(model: SerModel, data: ClipFeatures) -> np.ndarray:
    """Mean window probabilities per clip, with all windows of all clips in few forward passes."""
    window_probabilities = model.predict_cached(np.concatenate(data.features))
    return clip_means(window_probabilities, [len(f) for f in data.features])


def check_readable(data: ClipFeatures) -> None:
    """Refuse a set of clips none of which could be read, naming the first reason (not the labels)."""
    if not data.clips and data.skipped:
        path, reason = data.skipped[0]
        first = reason if path in reason else f"{path}: {reason}"
        raise ManifestError(f"None of the {len(data.skipped)} clips could be read (the first: {first}).")


def evaluate(model: SerModel, data: ClipFeatures, protocol: str) -> tuple[dict, list[Clip], np.ndarray]:
    """Metrics on the clips whose label the model knows; other labels are counted and skipped. Clips
    labelled with a set of classes (BAVED's arousal levels) are scored only by `label_set_uar`: UAR
    over every label of the test set, a prediction right when its label allows it."""
    scorable = lambda clip: set(candidates(clip.emotion)) <= set(model.labels)
    known = [i for i, clip in enumerate(data.clips) if scorable(clip)]
    unknown: dict[str, int] = {}
    for clip in data.clips:
        if not scorable(clip):
            unknown[clip.emotion] = unknown.get(clip.emotion, 0) + 1
    check_readable(data)
    data = ClipFeatures([data.clips[i] for i in known], [data.features[i] for i in known], data.skipped)
    single = [i for i, clip in enumerate(data.clips) if clip.emotion in model.labels]
    if not single:
        raise ManifestError(f"No clip has one emotion this model knows ({', '.join(model.labels)}); "
                            f"the labels read were {', '.join(sorted(unknown)) or 'none'}.")
    probabilities = clip_probabilities(model, data)
    y_true = [model.labels.index(data.clips[i].emotion) for i in single]
    metrics = {"protocol": protocol, **compute_metrics(y_true, probabilities[single], model.labels,
                                                        [data.clips[i].corpus for i in single])}
    predicted = [model.labels[i] for i in probabilities.argmax(axis=1)]
    truth = [clip.emotion for clip in data.clips]
    metrics["label_set_uar"] = label_uar(truth, predicted)
    metrics["n_scored"] = len(truth)
    corpora = np.array([clip.corpus for clip in data.clips])
    for corpus, scores in metrics["per_corpus"].items():
        rows = np.flatnonzero(corpora == corpus)
        scores["label_set_uar"] = label_uar([truth[i] for i in rows], [predicted[i] for i in rows])
    metrics["skipped_unknown_labels"] = unknown
    metrics["skipped_unreadable"] = [{"path": p, "reason": r} for p, r in data.skipped]
    return metrics, data.clips, probabilities


def write_predictions(clips: list[Clip], probabilities: np.ndarray, labels: tuple[str, ...], out: Path) -> None:
    with Path(out).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "corpus", "clip_id", "true", "predicted", *labels])
        for clip, p in zip(clips, probabilities):
            writer.writerow([clip.path.name, clip.corpus, clip.clip_id, clip.emotion, labels[int(np.argmax(p))],
                             *(f"{v:.6f}" for v in p)])


CLEAN = "clean"


@dataclass(frozen=True)
class PerturbedClip:
    cached: np.ndarray | None  # what the model's training cache would hold for the perturbed clip
    loudest_dbfs: float  # of the perturbed audio: below the speech gate the app would refuse it
    error: str


@dataclass(frozen=True)
class Perturber:
    """Factory for the local engine: one model per worker, turning (clip, condition, seed) jobs into
    `PerturbedClip`s."""

    model_dir: str
    backend: str

    def __call__(self):
        from ..serving.inference import load_model

        return functools.partial(each, functools.partial(_perturbed_clip, load_model(self.model_dir, self.backend)))


def _unreadable(job, message: str) -> PerturbedClip:
    return PerturbedClip(None, float("-inf"), message)


def _perturbed_clip(model: SerModel, job: tuple[Clip, str, int]) -> PerturbedClip:
    from ..errors import SerError
    from ..frontend.features import extract
    from ..io.audio import load_audio
    from ..io.levels import loudest_frame_dbfs
    from .augment import PERTURBATIONS
    from .embeddings import clip_rng

    clip, condition, seed = job
    sr = model.params.sample_rate
    try:
        samples = load_audio(clip.path, sr, check_speech=False).samples
    except SerError as error:
        return PerturbedClip(None, float("-inf"), str(error))
    if condition != CLEAN:
        samples = PERTURBATIONS[condition](samples, sr, clip_rng(clip.clip_id, seed))
    cached = model.to_cached(extract(samples, model.params)[1])
    return PerturbedClip(cached, float(loudest_frame_dbfs(samples, sr)), "")


def evaluate_perturbed(model_dir: str | Path, clips: list[Clip], conditions: list[str], protocol: str,
                       backend: str = "auto", workers: int | None = None, seed: int = 0) -> dict[str, dict]:
    """Metrics per condition (`clean` and names of `augment.PERTURBATIONS`) on the same clips, with
    the same random noise and room per clip for every model. Clips are scored whatever their level
    (the app's speech gate is bypassed); `below_speech_gate` counts the clips the app would refuse."""
    from ..errors import ConfigError
    from ..io.audio import DEFAULT_LIMITS
    from ..serving.inference import load_model
    from .augment import PERTURBATIONS

    unknown = [c for c in conditions if c != CLEAN and c not in PERTURBATIONS]
    if unknown:
        raise ConfigError(f"Unknown perturbation {', '.join(unknown)}; choose from {CLEAN}, {', '.join(PERTURBATIONS)}")
    model = load_model(model_dir, backend)
    jobs = [(clip, condition, seed) for condition in conditions for clip in clips]
    # One run of the local engine for every condition: each worker loads the model once.
    rows = map_local(jobs, Perturber(str(model_dir), backend), JOBS_PER_BATCH, workers or os.cpu_count() or 1,
                     _unreadable)
    done = list(tqdm(rows, total=len(jobs), desc=f"{len(conditions)} conditions"))
    results = {}
    for i, condition in enumerate(conditions):
        perturbed = done[i * len(clips) : (i + 1) * len(clips)]
        kept = [(clip, r) for clip, r in zip(clips, perturbed) if r.cached is not None]
        data = ClipFeatures([c for c, _ in kept], [r.cached for _, r in kept],
                            [(str(c.path), r.error) for c, r in zip(clips, perturbed) if r.cached is None])
        metrics, _, _ = evaluate(model, data, f"{protocol}, {condition}")
        metrics["below_speech_gate"] = sum(r.loudest_dbfs < DEFAULT_LIMITS.speech_threshold_dbfs for _, r in kept)
        results[condition] = metrics
    return results


ONE_EMOTION = "angry"  # the one-sided profile measured: a speaker recorded only while angry


def evaluate_adaptation(model: SerModel, data: ClipFeatures, ks: tuple[int | None, ...] = (1, 3, 10, None),
                        seed: int = 0, prior_windows: float | None = None, strength: float | None = None) -> dict:
    """UAR with and without a voice profile per speaker, built from k of that speaker's clips (None:
    all of them, scored transductively), over the clips with one emotion the model knows and a
    speaker; None (n_scored 0) where no speaker has more than k clips. With k clips the profile's clips are not scored, and the
    unadapted UAR is taken on the same scored clips. Labels are never used to build a profile, except
    to pick the one-sided profile (`one_emotion`): only that speaker's angry clips, scored on the rest.
    Clips are read against the profile as the product reads them (`SerModel.predict_against`, with the
    model's reference head where it has one); `prior_windows` and `strength`, where given, replace
    the model's own adaptation settings."""
    from ..serving.profile import profile_from_windows
    from .metrics import compute_metrics, label_uar

    check_readable(data)
    # A clip counts with one emotion the model knows and a speaker to build a profile from.
    usable = [i for i, clip in enumerate(data.clips) if clip.emotion in model.labels and clip.speaker]
    if not usable:
        raise ManifestError("No clip has both one emotion this model knows and a speaker: adapting to each "
                            "speaker needs the manifest's speaker column (or file names the corpus loaders recognise).")
    data = ClipFeatures([data.clips[i] for i in usable], [data.features[i] for i in usable], data.skipped)
    by_speaker: dict[tuple[str, str], list[int]] = {}
    for i, clip in enumerate(data.clips):
        by_speaker.setdefault((clip.corpus, clip.speaker), []).append(i)
    y = np.array([model.labels.index(c.emotion) for c in data.clips])
    corpora = [c.corpus for c in data.clips]
    plain = clip_probabilities(model, data)
    default_prior, default_strength = model.adaptation_settings
    settings = (default_prior if prior_windows is None else prior_windows, default_strength if strength is None else strength)

    def scores(scored: list[int], adapted: dict[int, np.ndarray]) -> dict:
        if not scored:  # no speaker has more clips than the profile takes (or no angry clip and others)
            return {"n_scored": 0, "adapted": None, "unadapted": None, "per_corpus": {}}
        order = sorted(scored)
        with_profile = np.stack([adapted[i] for i in order])
        metrics = lambda p: compute_metrics(y[order], p, model.labels, [corpora[i] for i in order])
        a, u = metrics(with_profile), metrics(plain[order])
        return {"n_scored": len(order), "adapted": a["balanced_accuracy"], "unadapted": u["balanced_accuracy"],
                "per_corpus": {c: {"adapted": a["per_corpus"][c]["balanced_accuracy"],
                                   "unadapted": u["per_corpus"][c]["balanced_accuracy"]} for c in a["per_corpus"]}}

    def run(choose) -> dict:
        scored, adapted = [], {}
        for key, members in by_speaker.items():
            chosen = choose(members)
            if chosen is None:
                continue
            profile_clips, score_clips = chosen
            profile = profile_from_windows(
                model, np.concatenate([model.representation(data.features[i]) for i in profile_clips]), len(profile_clips))
            read = [i for i in members if i in score_clips]
            windows = model.predict_against(np.concatenate([data.features[i] for i in read]), profile, settings)
            adapted.update(zip(read, clip_means(windows, [len(data.features[i]) for i in read])))
            scored.extend(read)
        return scores(scored, adapted)

    rng = np.random.default_rng(seed)
    results = {}
    for k in ks:
        def choose(members, k=k):
            if k is None:
                return members, set(members)
            if len(members) <= k:
                return None
            picked = [members[j] for j in rng.choice(len(members), k, replace=False)]
            return picked, set(members) - set(picked)
        results["all" if k is None else str(k)] = run(choose)

    def one_emotion(members):
        angry = [i for i in members if data.clips[i].emotion == ONE_EMOTION]
        others = set(members) - set(angry)
        return (angry[:10], others) if angry and others else None

    results["one_emotion"] = run(one_emotion)
    return results
