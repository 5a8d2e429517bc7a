"""Many files at once: worker processes, each with its own model (LiteRT loads in milliseconds),
decoding, extracting features and predicting in parallel. Results follow the input order."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator

from .errors import ModelError, SerError

Result = tuple[str, "dict[str, float] | None", "tuple[str, ...]", "str | None"]
_worker_model = None


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _init(model_dir: str, backend: str, single_threaded: bool = False) -> None:
    global _worker_model
    if single_threaded:
        # One worker per core: BLAS/OpenMP threads on top oversubscribe the cores (measured: 2.2×
        # slower on 2 cores). Set before numpy is first imported in this process.
        for variable in THREAD_VARIABLES:
            os.environ[variable] = "1"
    from .inference import load_model_quietly

    _worker_model = load_model_quietly(model_dir, backend)


def _predict(path: str) -> Result:
    """(path, probabilities, input warnings, error message): errors are data, not exceptions."""
    from .inference import native_stderr_silenced

    try:
        with native_stderr_silenced():  # decoders (libmpg123) print their own complaints to fd 2
            analysis = _worker_model.analyze(path)
        return path, analysis.probabilities, analysis.audio.warnings, None
    except SerError as error:
        return path, None, (), str(error)


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
        yield from map(_predict, paths)
        return
    context = multiprocessing.get_context("spawn")  # no inherited TensorFlow or thread state
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init,
                             initargs=(str(model_dir), backend, True)) as pool:
        yield from pool.map(_predict, paths, chunksize=8)
