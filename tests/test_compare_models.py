"""bench/compare_models.py: sections run apart keep each other's results; the eGeMAPS baseline's
leave-one-corpus-out fold trains on the other corpora and scores the held-out one."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ser_core.labels import LABELS
from ser_core.training.corpora import Clip
from ser_core.training.splits import assign, write_split_file

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compare_models():
    spec = importlib.util.spec_from_file_location("compare_models", ROOT / "bench" / "compare_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(uar: float) -> dict:
    return {"n_test": 10, "accuracy": uar, "balanced_accuracy": uar, "macro_f1": uar, "per_corpus": {}}


def test_the_baseline_and_the_neural_rows_are_made_apart_and_both_kept(compare_models):
    results = {"protocols": {"speaker": {"emo-cnn": row(0.6)}}}
    compare_models.merge_section(results, "baseline", {"speaker": {"egemaps-svm": row(0.5)}, "random": {"egemaps-svm": row(0.7)}})
    compare_models.merge_section(results, "test", {"speaker": {"emo-cnn": row(0.61)}})
    assert results["protocols"]["speaker"] == {"emo-cnn": row(0.61), "egemaps-svm": row(0.5)}
    assert results["protocols"]["random"] == {"egemaps-svm": row(0.7)}


def test_a_loco_run_replaces_only_the_models_it_ran(compare_models):
    folds = lambda uar: {"folds": {c: {"balanced_accuracy": uar} for c in compare_models.CORPORA}, "mean_uar": uar, "min_uar": uar}
    results = {"loco": {"emo-whisper": folds(0.4), "egemaps-svm": folds(0.2)}}
    compare_models.merge_section(results, "loco", {"egemaps-svm": folds(0.25)})
    assert results["loco"] == {"emo-whisper": folds(0.4), "egemaps-svm": folds(0.25)}
    table = compare_models.markdown(results)
    assert "| egemaps-svm | 25.0 | 25.0 | 25.0 | 25.0 | 25.0 | 25.0 | 25.0 |" in table
    assert "| emo-whisper | 40.0 |" in table


def test_the_baseline_fold_trains_on_the_other_corpora_and_scores_every_clip_of_the_held_out_one(compare_models, tmp_path):
    """Features that separate the classes the same way in every corpus: a held-out corpus is read well."""
    rng = np.random.default_rng(0)
    clips, splits, table = [], [], {}
    for corpus in ("ravdess", "cremad", "ased"):
        for speaker in range(5):
            for emotion in ("angry", "sad", "happy"):
                for take in range(4):
                    clip = Clip(Path("unused.flac"), emotion, corpus, f"{corpus}{speaker}", f"{speaker}-{emotion}-{take}", "t")
                    clips.append(clip)
                    splits.append("val" if speaker == 0 else "test" if speaker == 1 else "train")
                    table[corpus, clip.clip_id] = np.eye(8)[LABELS.index(emotion)] * 3 + rng.normal(size=8)
    write_split_file(clips, splits, tmp_path / "speaker.csv")
    parts = assign(clips, tmp_path / "speaker.csv", held_out="ased")
    assert {c.corpus for c in parts["train"] + parts["val"]} == {"ravdess", "cremad"}
    metrics, best_c = compare_models.classical_baseline(parts, table)
    assert metrics["n_test"] == 60  # every ASED clip, its validation and test speakers too
    assert metrics["balanced_accuracy"] > 0.9
    assert best_c in compare_models.SVM_C


def test_a_fold_model_is_reused_only_when_finished_and_from_the_same_recipe(compare_models, tmp_path):
    import json
    import os

    from ser_core.training.train import RECIPES

    features, recipe = RECIPES["emo-cnn"]
    fold = tmp_path / "emo-cnn-ased"
    fold.mkdir()
    (fold / "model.keras").write_bytes(b"weights")
    (fold / "metadata.json").write_text(json.dumps({"protocol": "loco:ased", "train_params": dataclasses.asdict(recipe),
                                                    "feature_params": features.to_dict()}))
    assert compare_models.trained_fold(fold, "loco:ased", features, recipe) is None  # no metrics: unfinished
    (fold / "metrics.json").write_text(json.dumps({"balanced_accuracy": 0.3}))
    assert compare_models.trained_fold(fold, "loco:ased", features, recipe) == {"balanced_accuracy": 0.3}
    assert compare_models.trained_fold(fold, "loco:ravdess", features, recipe) is None
    assert compare_models.trained_fold(fold, "loco:ased", features, dataclasses.replace(recipe, epochs=3)) is None
    os.utime(fold / "metrics.json", ns=(0, 0))  # a later run rewrote the model, then stopped before its metrics
    assert compare_models.trained_fold(fold, "loco:ased", features, recipe) is None


def test_a_loco_run_in_parts_pools_the_folds_of_one_recipe_and_drops_another_recipes(compare_models):
    """Folds measured by earlier runs (other machines, no shared cache) join the row when their recipe
    is the same; a fold of a changed recipe is dropped, never averaged in."""
    from ser_core.training.train import RECIPES

    features, recipe = RECIPES["emo-cnn"]
    same = compare_models.recipe_id(features, recipe)
    other = compare_models.recipe_id(features, dataclasses.replace(recipe, epochs=recipe.epochs - 1))
    assert same != other
    fold = lambda uar, rid: {"balanced_accuracy": uar, "recipe_id": rid}
    results = {"loco": {"emo-cnn": {"folds": {"ravdess": fold(0.3, same), "savee": fold(0.9, other)}}}}
    compare_models.merge_section(results, "loco", {"emo-cnn": compare_models.loco_row({"cremad": fold(0.5, same)})})
    row = results["loco"]["emo-cnn"]
    assert list(row["folds"]) == ["ravdess", "cremad"]
    assert row["mean_uar"] == pytest.approx(0.4) and row["min_uar"] == pytest.approx(0.3)
