"""Many files at once: worker processes, each with its own model (LiteRT loads in milliseconds),
decoding, extracting features and predicting in parallel. Results follow the input order."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from ..errors import ModelError, SerError
from ..io.audio import Audio

if TYPE_CHECKING:
    from .results import Analysis

Result = tuple[str, "dict[str, float] | None", "tuple[str, ...]", "str | None"]
Analyzed = tuple["Analysis | None", "str | None"]
_worker_model = None


FILES_PER_TASK = 16  # files per worker task
BATCH_SAMPLES = 60 * 16000  # decoded audio held for one model batch
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _init(model_dir: str, backend: str) -> None:
    global _worker_model
    from .inference import load_model_quietly

    _worker_model = load_model_quietly(model_dir, backend)


def analyze_chunk(model, sources: list, load: Callable[[object], Audio] | None = None) -> list[Analyzed]:
    """(analysis, error message) per source, in order: errors are data, not exceptions. Decoded files
    go through the model together (one feature batch, one forward pass), gathered until they hold a
    minute of audio: a folder of long recordings never sits in memory at once. `load` turns a source
    into `Audio` (default: `load_audio` of a path or bytes at the model's rate)."""
    from ..io.audio import load_audio
    from .inference import native_stderr_silenced

    load = load or (lambda source: load_audio(source, model.params.sample_rate))
    results: list[Analyzed] = []
    pending: dict[int, Audio] = {}  # index in results → decoded audio awaiting the model

    def flush() -> None:
        for i, analysis in zip(pending, model.analyze_many(list(pending.values()))):
            try:  # by utterance: a file in which no speech is found has no probabilities
                analysis.probabilities
                results[i] = (analysis, None)
            except SerError as error:
                results[i] = (None, str(error))
        pending.clear()

    for source in sources:
        results.append((None, None))
        try:
            with native_stderr_silenced():  # decoders (libmpg123) print their own complaints to fd 2
                pending[len(results) - 1] = load(source)
        except SerError as error:
            results[-1] = (None, str(error))
        if sum(audio.samples.size for audio in pending.values()) >= BATCH_SAMPLES:
            flush()
    if pending:
        flush()
    return results


def _predict_chunk(paths: list[str]) -> list[Result]:
    """(path, probabilities, input warnings, error message) per path."""
    return [(path, None, (), error) if analysis is None
            else (path, analysis.probabilities, analysis.audio.warnings, None)
            for path, (analysis, error) in zip(paths, analyze_chunk(_worker_model, paths))]


def predict_files(
    paths: Iterable[str | Path], model_dir: str | Path, workers: int | None = None, backend: str = "auto"
) -> Iterator[Result]:
    from .inference import METADATA_FILE, MODEL_FILE

    if not (Path(model_dir) / METADATA_FILE).is_file() or not (Path(model_dir) / MODEL_FILE).is_file():
        raise ModelError(f"{model_dir} is not a model directory (needs {MODEL_FILE} and {METADATA_FILE})")
    paths = [str(p) for p in paths]
    workers = min(workers or os.cpu_count() or 1, max(1, len(paths)))
    if workers == 1:
        _init(str(model_dir), backend)
        for chunk in _chunks(paths):
            yield from _predict_chunk(chunk)
        return
    context = multiprocessing.get_context("spawn")  # no inherited TensorFlow or thread state
    # One worker per core: BLAS/OpenMP threads on top oversubscribe the cores (measured 2.2× slower
    # on 2 cores). Spawned workers take the environment as it is when they start, which is before
    # they import numpy, whatever the parent's main module imports.
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init,
                                 initargs=(str(model_dir), backend)) as pool:
            results = pool.map(_predict_chunk, _chunks(paths))  # starts every worker now
            _restore(saved)
            for chunk in results:
                yield from chunk
    finally:
        _restore(saved)


def _chunks(paths: list[str]) -> list[list[str]]:
    return [paths[i : i + FILES_PER_TASK] for i in range(0, len(paths), FILES_PER_TASK)]


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
