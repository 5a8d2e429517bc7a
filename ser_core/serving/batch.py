"""Many files on this machine: `map_local`, the one local engine, and `predict_files` built on it;
`predict_adapted`, the files read against a voice profile, each speaker's files or all of them.

`map_local` applies a function to batches of items (files to predict, clips to featurise), one row
per item in input order. A picklable factory builds the function once per worker (a model, a
feature extractor): in this process, or in each of `workers` spawned processes. A batch that raises
is retried item by item, so an unexpected exception costs only its own item a row (typed
`SerError`s are rows already). `ser predict`, `ser embed` and training's feature extraction and
perturbed evaluation run on it; the Ray engine (`ser_core.distributed.engine.map_files`) runs the
same factories on actors, with the same batches, isolation and one thread per worker."""

from __future__ import annotations

import functools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from ..errors import ModelError, SerError
from ..io.audio import Audio, load_audio

if TYPE_CHECKING:
    from .profile import VoiceProfile
    from .results import Analysis, SpeakerSummary
    from .segments import SpeakerOptions

Row = Any  # what a batch function returns per item: a dict, `predict_files`' `Result`, …
BatchFn = Callable[[list], list[Row]]  # a batch of items → one row per item
ErrorRow = Callable[[Any, str], Row]  # (item, message) → its row
# (path, probabilities, input warnings, error message, each speaker's summary where two or more
# voices were told apart: `Analysis.voices`, what the reading was adapted to: `Analysis.adaptation`)
Result = tuple[str, "dict[str, float] | None", "tuple[str, ...]", "str | None", "tuple[SpeakerSummary, ...]", str]
Analyzed = tuple["Analysis | None", "str | None"]

FILES_PER_BATCH = 16  # files per worker task or Ray actor call
BATCH_SAMPLES = 60 * 16000  # decoded audio held for one model batch
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
_worker: tuple[BatchFn, ErrorRow] | None = None  # in a worker process: its function and error rows


def each(fn: Callable[[Any], Row], items: list) -> list[Row]:
    """A per-item function as a batch function (`functools.partial(each, fn)`, picklable)."""
    return [fn(item) for item in items]


def error_row(item: str, message: str) -> dict:
    return {"path": item, "error": message}


def guarded(fn: BatchFn, items: list, on_error: ErrorRow) -> list[Row]:
    """fn over a batch; if it raises, each item alone, so that an unexpected exception costs only its
    own item a row (typed `SerError`s are already rows inside fn)."""
    try:
        return fn(items)
    except Exception:  # noqa: BLE001 - a bug or a library's own exception on one file: isolate it
        rows = []
        for item in items:
            try:
                rows += fn([item])
            except Exception as error:  # noqa: BLE001
                rows.append(on_error(item, f"{type(error).__name__}: {error}"))
        return rows


def _start_worker(factory: Callable[[], BatchFn], on_error: ErrorRow) -> None:
    global _worker
    _worker = factory(), on_error


def _run_batch(items: list) -> list[Row]:
    fn, on_error = _worker
    return guarded(fn, items, on_error)


def map_local(items: Sequence, factory: Callable[[], BatchFn], batch_size: int = FILES_PER_BATCH,
              workers: int = 1, on_error: ErrorRow = error_row, environment: Mapping[str, str] | None = None
              ) -> Iterator[Row]:
    """One row per item (a path, or any picklable job), in input order: in this process with one
    worker, else in `workers` spawned processes (at most one per item), each of which calls
    `factory()` once and runs one thread (`THREAD_VARIABLES`). `environment`: variables the workers
    start with (always spawned then, since this process's libraries may have read them already)."""
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    workers = min(workers, max(1, len(items)))
    if workers == 1 and not environment:
        fn = factory()
        for batch in batches:
            yield from guarded(fn, batch, on_error)
        return
    context = multiprocessing.get_context("spawn")  # no inherited TensorFlow or thread state
    # One worker per core: BLAS/OpenMP threads on top oversubscribe the cores (measured 2.2× slower
    # on 2 cores). Spawned workers take the environment as it is when they start, which is before
    # they import numpy, whatever the parent's main module imports.
    started_with = {name: "1" for name in THREAD_VARIABLES} | dict(environment or {})
    saved = {name: os.environ.get(name) for name in started_with}
    os.environ.update(started_with)
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                 initargs=(factory, on_error)) as pool:
            results = pool.map(_run_batch, batches)  # starts every worker now
            _restore(saved)
            for rows in results:
                yield from rows
    finally:
        _restore(saved)


def analyze_chunk(model, sources: list, load: Callable[[object], Audio] | None = None,
                  profile: "VoiceProfile | None" = None, speakers: "SpeakerOptions | None" = None
                  ) -> list[Analyzed]:
    """(analysis, error message) per source, in order: errors are data, not exceptions. Decoded files
    go through the model together (one feature batch, one forward pass), gathered until they hold a
    minute of audio: a folder of long recordings never sits in memory at once. `load` turns a source
    into `Audio` (default: `load_audio` of a path or bytes at the model's rate); with `profile`, each
    file is read against it; `speakers` says how each file's voices are found and used (default:
    `segments.DEFAULT_SPEAKERS`)."""
    from .inference import native_stderr_silenced
    from .segments import DEFAULT_SPEAKERS

    load = load or (lambda source: load_audio(source, model.params.sample_rate))
    results: list[Analyzed] = []
    pending: dict[int, Audio] = {}  # index in results → decoded audio awaiting the model

    def flush() -> None:
        for i, analysis in zip(pending, model.analyze_many(list(pending.values()), profile=profile,
                                                                speakers=speakers or DEFAULT_SPEAKERS)):
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


@dataclass(frozen=True)
class _Predictor:
    """Factory for `map_local`: one model per worker, predicting a batch of paths."""

    model_dir: str
    backend: str

    def __call__(self) -> BatchFn:
        from .inference import load_model_quietly

        return functools.partial(_predict_chunk, load_model_quietly(self.model_dir, self.backend))


def as_result(path: str, analysis: "Analysis | None", error: str | None) -> Result:
    """A file's `Result` from its analysis, or from the error that left it without one."""
    if analysis is None:
        return path, None, (), error, (), ""
    return path, analysis.probabilities, analysis.warnings, None, analysis.voices, analysis.adaptation


def _predict_chunk(model, paths: list[str]) -> list[Result]:
    """A `Result` per path."""
    return [as_result(path, analysis, error) for path, (analysis, error) in zip(paths, analyze_chunk(model, paths))]


def _error_result(path: str, message: str) -> Result:
    return as_result(path, None, message)


def predict_files(
    paths: Iterable[str | Path], model_dir: str | Path, workers: int | None = None, backend: str = "auto"
) -> Iterator[Result]:
    """(path, probabilities, input warnings, error message, voices, adaptation) per path (`Result`), in order, on
    `workers` processes (default: one per core)."""
    from .inference import METADATA_FILE, MODEL_FILE

    if not (Path(model_dir) / METADATA_FILE).is_file() or not (Path(model_dir) / MODEL_FILE).is_file():
        raise ModelError(f"{model_dir} is not a model directory (needs {MODEL_FILE} and {METADATA_FILE})")
    yield from map_local([str(path) for path in paths], _Predictor(str(model_dir), backend), FILES_PER_BATCH,
                         workers or os.cpu_count() or 1, _error_result)


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def predict_adapted(model, paths: Sequence[str], speakers: Sequence[str] | None = None,
                    profile: "VoiceProfile | None" = None):
    """`Result`s (path, probabilities, warnings, error, voices, adaptation) per path, like `predict_files`
    (by utterance), each file read against a reference: with `profile`, that one profile for every file; with `speakers`
    (one id per path), `mean_profile` of that speaker's files; else `batch_profile` of all the files
    (transductive: no labels; speech found in fewer than two is a `ProfileError`). The files are read as the
    app and the API read them with a profile."""
    from tqdm import tqdm

    from .profile import ProfileError, batch_profile, mean_profile

    if profile is not None and not profile.fits(model):
        raise ProfileError("The voice profile was made for another model: build it again with this one.")
    groups: dict[str, list[int]] = {}
    for i in range(len(paths)):
        groups.setdefault(speakers[i] if speakers is not None else "", []).append(i)
    results: list[tuple] = [()] * len(paths)
    with tqdm(total=len(paths), desc="reading", disable=len(paths) < 16) as progress:
        for members in groups.values():
            files = [paths[i] for i in members]
            if profile is not None:
                reference = profile
            elif speakers is None:
                reference = batch_profile(model, files)  # speech in under two files: the sentence, as in the app
            else:
                try:
                    reference = mean_profile(model, files)
                except ProfileError:
                    reference = None  # none of the speaker's files is readable: each one's error says why
            for i, (analysis, error) in zip(members, analyze_chunk(model, files, profile=reference)):
                results[i] = as_result(paths[i], analysis, error)
            progress.update(len(members))
    return results
