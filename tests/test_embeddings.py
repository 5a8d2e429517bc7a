"""The embedding cache of a front end: a cheaper encoder path (fewer blocks, int8, half the frame rate)
must never read or overwrite the teacher's cached embeddings, which every emo-whisper-f32 head and its
LOLO folds were trained on; nor may one int8 arithmetic's embeddings stand for the other's."""

from __future__ import annotations

import dataclasses
import os

from ser_core.frontend.encoder import int8_arithmetic
from ser_core.serving.batch import map_local
from ser_core.training.embeddings import embedding_cache
from ser_core.training.train import RECIPES, WHISPER_FEATURES


def front_end(recipe: str) -> tuple:
    features, params = RECIPES[recipe]
    return features, params.encoder_layers, params.encoder_compute_type


def test_every_front_end_has_its_own_embedding_cache(tmp_path):
    teacher = front_end("emo-whisper-f32")
    variants = {
        "teacher": teacher,
        "fast": front_end("emo-whisper-fast"),
        "int8": (WHISPER_FEATURES, 3, "int8"),
        "2 blocks": (WHISPER_FEATURES, 2, "float32"),
        "half rate": (dataclasses.replace(WHISPER_FEATURES, hop_length=320), 3, "float32"),
    }
    dirs = {name: embedding_cache(features, None, tmp_path, layers, compute).dir
            for name, (features, layers, compute) in variants.items()}
    assert len(set(dirs.values())) == len(dirs), dirs
    # clean and augmented copies apart too, for the new front end as for the teacher
    features, layers, compute = variants["fast"]
    assert embedding_cache(features, 1, tmp_path, layers, compute).dir != dirs["fast"]



def test_each_kind_of_copy_has_its_own_cache_and_the_older_caches_keep_their_names(tmp_path):
    features, layers, compute = front_end("emo-whisper-f32")
    clean = embedding_cache(features, None, tmp_path, layers, compute).dir
    augmented = embedding_cache(features, 1, tmp_path, layers, compute).dir
    cut = embedding_cache(features, 1, tmp_path, layers, compute, copy="speechcut").dir
    assert len({clean, augmented, cut}) == 3
    # pooled by loudness: caches of their own, clean and cut alike
    loud = {embedding_cache(features, seed, tmp_path, layers, compute, copy=copy, pooling="loudness").dir
            for seed, copy in ((None, "augment"), (1, "speechcut"))}
    assert len(loud) == 2 and loud.isdisjoint({clean, augmented, cut})
    # the augmented copies' caches built before speech-cut copies existed are still found where they were
    from ser_core.frontend.encoder import WEIGHTS_SHA256
    from ser_core.training.embeddings import EMBEDDING_VERSION

    assert augmented.parent.name == f"{WEIGHTS_SHA256[:12]}-l3-float32-e{EMBEDDING_VERSION}-augment1"
    assert cut.parent.name == f"{WEIGHTS_SHA256[:12]}-l3-float32-e{EMBEDDING_VERSION}-speechcut1"


def test_int8_embeddings_are_cached_by_the_arithmetic_that_computed_them(tmp_path):
    features, layers, compute = front_end("emo-whisper-fast")
    cache = embedding_cache(features, None, tmp_path, layers, compute).dir
    assert f"-int8{int8_arithmetic()}-" in cache.parent.name


class ReadVariable:
    """A map_local factory whose rows say what a worker's environment holds."""

    def __call__(self):
        return lambda items: [{"item": item, "value": os.environ.get("SER_TEST_VARIABLE")} for item in items]


def test_workers_start_with_the_environment_they_are_given_even_for_one_item():
    """The other int8 back end's embeddings run in workers started with CT2_USE_MKL set (CTranslate2
    reads it once, when it loads): a worker is spawned for a single item too, and the variable is
    this process's again afterwards."""
    assert "SER_TEST_VARIABLE" not in os.environ
    rows = list(map_local(["a"], ReadVariable(), environment={"SER_TEST_VARIABLE": "1"}))
    assert rows == [{"item": "a", "value": "1"}]
    assert "SER_TEST_VARIABLE" not in os.environ
    assert list(map_local(["a"], ReadVariable())) == [{"item": "a", "value": None}]
