"""Past one machine: the batch map over files on Ray (an optional extra: `pip install -e .[ray]`).

`map_files` is the engine: one object per actor, built once by a picklable factory (a model, a
feature extractor), applied to batches of files that the actors read themselves (local paths, or
URIs such as `s3://…`, `gs://…`, `file:///…` through pyarrow filesystems). Every input gives exactly
one output row, in input order; a file that cannot be used is a row with an `error`, never a failed
job. A killed actor is restarted by Ray (`max_restarts`) and its batches are retried
(`max_task_retries`); a batch whose actor still dies is split into single files so that one file
that crashes its process becomes an error row and the rest go through.

Two uses are built on it:

- `predict_rows` (`ser predict --engine ray`): one prediction row per file, written by `write_rows`
  as Parquet or CSV. Schema in `prediction_schema` and docs/scaling.md.
- `FeatureShards` (`ser embed --engine ray`): the training feature cache (`FeatureCache` windows)
  as Parquet shards written by the actors; `import_feature_shards` puts them into the local
  cache, which `ser train --features-from DIR` does before training. Schema in `SHARD_SCHEMA_DOC`.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import numpy as np

from .errors import ManifestError, ModelError, SerError

if TYPE_CHECKING:
    from .audio import Audio
    from .features import FeatureParams
    from .inference import Analysis

Row = dict
ErrorRow = Callable[[str, str], Row]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
PREDICT_BATCH_FILES = 16  # files per actor call, as `ser_core.batch`'s worker tasks
EMBED_BATCH_FILES = 64  # files per feature shard (about 4 MB of log-mel windows)
IN_FLIGHT_PER_ACTOR = 2  # batches queued per actor: the next one is there when one finishes


# ---------------------------------------------------------------------------------------------- inputs

def is_uri(source: str) -> bool:
    return "://" in str(source)


def _filesystem(uri: str):
    from pyarrow import fs

    return fs.FileSystem.from_uri(uri)  # (filesystem, path inside it)


def read_bytes(uri: str, max_bytes: int) -> bytes:
    """A file's bytes through pyarrow's filesystems (S3, GCS, HDFS, file://), refusing oversize
    files from their size before reading, as `load_audio` does for local paths."""
    from pyarrow import fs as pafs

    from .audio import AudioFileNotFoundError
    from .errors import AudioTooLargeError

    filesystem, path = _filesystem(uri)
    info = filesystem.get_file_info(path)
    if info.type != pafs.FileType.File:
        raise AudioFileNotFoundError(uri)
    if info.size is not None and info.size > max_bytes:
        raise AudioTooLargeError(info.size, max_bytes)
    with filesystem.open_input_stream(path) as stream:
        return stream.read(max_bytes + 1)


def load_source(source: str, sample_rate: int) -> "Audio":
    """A local path or a URI → `Audio`, decoded in the process that calls it (the actor)."""
    from .audio import DEFAULT_LIMITS, load_audio

    data = read_bytes(source, DEFAULT_LIMITS.max_bytes) if is_uri(source) else source
    return load_audio(data, sample_rate)


def _audio_under(directory: str) -> list[str]:
    from .corpora import AUDIO_EXTENSIONS

    if is_uri(directory):
        from pyarrow import fs as pafs

        filesystem, path = _filesystem(directory)
        scheme = directory.split("://", 1)[0]
        infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
        names = sorted(i.path for i in infos if i.type == pafs.FileType.File)
        return [f"{scheme}://{name}" for name in names if Path(name).suffix.lower() in AUDIO_EXTENSIONS]
    return [str(p) for p in sorted(Path(directory).rglob("*")) if p.suffix.lower() in AUDIO_EXTENSIONS]


def _read_text(source: str) -> str:
    if is_uri(source):
        filesystem, path = _filesystem(source)
        with filesystem.open_input_stream(path) as stream:
            return stream.read().decode()
    return Path(source).read_text()


def _relative_to(listing: str, entry: str) -> str:
    """A listed path as given when absolute or a URI, else relative to the listing's folder."""
    if is_uri(entry) or Path(entry).is_absolute():
        return entry
    if is_uri(listing):
        return f"{listing.rsplit('/', 1)[0]}/{entry}"
    return str(Path(listing).parent / entry)


def list_inputs(sources: Iterable[str]) -> list[str]:
    """Expand inputs into audio files, in order: a manifest CSV (its `path` column), a text file
    (one path per line), a directory (its audio files, recursively, sorted), or a file itself. Paths
    inside a CSV or text list may be relative to it. Local paths and URIs both work."""
    files: list[str] = []
    for source in map(str, sources):
        lower = source.lower()
        if (is_uri(source) and source.endswith("/")) or (not is_uri(source) and Path(source).is_dir()):
            files += _audio_under(source)
        elif lower.endswith(".csv"):
            try:
                rows = csv.DictReader(io.StringIO(_read_text(source)))
                if "path" not in (rows.fieldnames or ()):
                    raise ManifestError(f"{source} needs a path column")
                files += [_relative_to(source, row["path"]) for row in rows if row["path"].strip()]
            except FileNotFoundError:
                raise ManifestError(f"Manifest not found: {source}") from None
        elif lower.endswith((".txt", ".lst", ".list")):
            try:
                lines = [line.strip() for line in _read_text(source).splitlines()]
            except FileNotFoundError:
                raise ManifestError(f"File list not found: {source}") from None
            files += [_relative_to(source, line) for line in lines if line and not line.startswith("#")]
        else:
            files.append(source)  # an audio file: a missing one becomes an error row
    return files


# ---------------------------------------------------------------------------------------------- engine

def error_row(item: str, message: str) -> Row:
    return {"path": item, "error": message}


def _guarded(fn: Callable[[list[str]], list[Row]], items: list[str], on_error: ErrorRow) -> list[Row]:
    """fn over a batch; if it raises, each file alone, so that an unexpected exception costs only its
    own file a row (typed `SerError`s are already rows inside fn)."""
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


class _FileWorker:
    """The actor: builds its object once, then applies it to batches; also reports on itself."""

    def __init__(self, factory: Callable[[], Callable[[list[str]], list[Row]]], on_error: ErrorRow):
        self._fn = factory()
        self._on_error = on_error
        self._busy_s = 0.0
        self._files = 0
        self._span: list[float] = []  # wall clock at the first batch's start and the last one's end

    def run(self, items: list[str]) -> list[Row]:
        started, wall = time.perf_counter(), time.time()
        rows = _guarded(self._fn, items, self._on_error)
        self._busy_s += time.perf_counter() - started
        self._files += len(items)
        self._span[:] = [self._span[0] if self._span else wall, time.time()]
        return rows

    def report(self) -> dict:
        status = Path("/proc/self/status")
        memory = {}
        if status.is_file():
            for line in status.read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    memory[key] = int(value.split()[0]) / 1024  # MiB
        span = self._span[1] - self._span[0] if self._span else 0.0
        return {"pid": os.getpid(), "busy_s": self._busy_s, "files": self._files, "working_span_s": span,
                "cpu_s": time.process_time(),  # the whole process: imports and the model's load included
                "rss_mib": memory.get("VmRSS"), "peak_rss_mib": memory.get("VmHWM")}


@dataclass
class MapStats:
    """What one `map_files` run did, filled as it goes (for benchmarks and logs)."""

    actors: int = 0
    batches: int = 0
    replaced_actors: int = 0  # actors that failed beyond Ray's own retries and were replaced
    first_result_s: float | None = None
    actor_reports: list[dict] = field(default_factory=list)


def map_local(items: Sequence[str], factory, batch_size: int, on_error: ErrorRow = error_row) -> Iterator[Row]:
    """The same map in this process, one batch at a time: no Ray, for small jobs and tests."""
    fn = factory()
    for start in range(0, len(items), batch_size):
        yield from _guarded(fn, list(items[start : start + batch_size]), on_error)


def map_files(
    items: Sequence[str],
    factory: Callable[[], Callable[[list[str]], list[Row]]],
    *,
    batch_size: int = PREDICT_BATCH_FILES,
    actors: int | None = None,
    max_restarts: int = 3,
    max_task_retries: int = 3,
    on_error: ErrorRow = error_row,
    stats: MapStats | None = None,
) -> Iterator[Row]:
    """One row per item, in input order, from actors on the Ray instance this process is connected
    to (`ray_session`). `factory()` runs once per actor (and again if Ray restarts it) and returns a
    function from a batch of items to one row per item."""
    import ray
    from ray.exceptions import RayError

    stats = stats if stats is not None else MapStats()
    items = [str(item) for item in items]
    if not items:
        return
    n_actors = actors or max(1, int(ray.available_resources().get("CPU", 1)))
    n_actors = min(n_actors, -(-len(items) // batch_size))
    actor_class = ray.remote(_FileWorker).options(
        num_cpus=1, max_restarts=max_restarts, max_task_retries=max_task_retries,
        # One thread per actor: BLAS/OpenMP threads on top oversubscribe the cores (as in ser_core.batch).
        runtime_env={"env_vars": {name: "1" for name in THREAD_VARIABLES}},
    )
    pool = [actor_class.remote(factory, on_error) for _ in range(n_actors)]
    stats.actors = n_actors
    # (start offset, items, isolated): a batch whose actor died is retried file by file, each alone on
    # its actor, so that only a file that kills its process every time becomes an error row.
    todo = deque((start, items[start : start + batch_size], False) for start in range(0, len(items), batch_size))
    in_flight: dict = {}  # ObjectRef → (actor, slot, start, items, isolated)
    load = [0] * n_actors  # batches queued on each slot's current actor; an isolated one fills it
    done: dict[int, list[Row]] = {}  # start offset → rows, until they can be yielded in order
    next_start, started = 0, time.perf_counter()
    failures_in_a_row = 0  # actor failures with no batch done in between: the actors cannot start
    try:
        while todo or in_flight:
            for slot in sorted(range(n_actors), key=load.__getitem__):
                while todo and load[slot] < IN_FLIGHT_PER_ACTOR and not (todo[0][2] and load[slot]):
                    start, batch, isolated = todo.popleft()
                    in_flight[pool[slot].run.remote(batch)] = (pool[slot], slot, start, batch, isolated)
                    load[slot] += IN_FLIGHT_PER_ACTOR if isolated else 1
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            actor, slot, start, batch, isolated = in_flight.pop(ready[0])
            if actor is pool[slot]:
                load[slot] -= IN_FLIGHT_PER_ACTOR if isolated else 1
            try:
                done[start] = ray.get(ready[0])
                stats.batches += 1
                failures_in_a_row = 0
            except RayError as error:  # the actor died beyond Ray's retries, or a file kills it each time
                failures_in_a_row += 1
                if failures_in_a_row > 2 * n_actors + 2:
                    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
                    raise ModelError(f"the Ray actors keep failing without finishing any batch: {first_line}") from None
                if isolated:
                    done[start] = [on_error(batch[0], f"the worker died on this file ({type(error).__name__})")]
                else:
                    todo.extendleft(reversed([(start + i, [item], True) for i, item in enumerate(batch)]))
                if actor is pool[slot]:
                    ray.kill(actor, no_restart=True)
                    pool[slot], load[slot] = actor_class.remote(factory, on_error), 0
                    stats.replaced_actors += 1
            while next_start in done:
                rows = done.pop(next_start)
                if stats.first_result_s is None:
                    stats.first_result_s = time.perf_counter() - started
                next_start += len(rows)
                yield from rows
        stats.actor_reports = ray.get([actor.report.remote() for actor in pool])
    finally:
        for actor in pool:
            ray.kill(actor, no_restart=True)


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None):
    """Connect to a running cluster (`address`: "auto", "HOST:6379" after `ray start --head`, or
    "ray://HOST:10001"), or start a local Ray instance on this machine's cores, logging to a
    temporary folder and without the dashboard. Shuts down what it started; reuses an instance this
    process already has. Joining a cluster sends this ser_core with the job."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    temp_dir = None
    if address:
        try:
            # This ser_core goes with the job (Ray's py_modules): nodes need its dependencies
            # installed, not this version of ser_core.
            ray.init(address=address, log_to_driver=False,
                     runtime_env={"py_modules": [str(Path(__file__).resolve().parent)]})
        except (ConnectionError, RuntimeError) as error:
            from .errors import ConfigError

            detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ConfigError(f"Cannot join the Ray cluster at {address} ({detail}). A cluster with token "
                              "authentication needs RAY_AUTH_MODE=token and its token (~/.ray/auth_token or "
                              "RAY_AUTH_TOKEN) here too.") from None
    else:
        temp_dir = tempfile.mkdtemp(prefix="ser-ray-")
        # Ray runs its workers 15 steps nicer than the driver by default; on a machine shared with
        # other work that halved the actors' share against the local engine's workers (measured).
        try:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, _temp_dir=temp_dir,
                     log_to_driver=False, configure_logging=False, _system_config={"worker_niceness": 0})
        except Exception:
            ray.shutdown()  # what did start (GCS, raylet) stops; the caller sees Ray's own error
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise
    try:
        yield ray
    finally:
        ray.shutdown()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------- predict

def _model_files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class Predictor:
    """Factory for one model per actor. With `model_files` (the directory's files as bytes, sent
    once through Ray's object store) the actor loads the model from a copy, for cluster nodes that do
    not have `model_dir`; otherwise it loads `model_dir` where it runs."""

    model_dir: str
    backend: str = "auto"
    timeline: bool = False
    model_files: object = None  # ObjectRef of dict[str, bytes], or None

    def __call__(self) -> "_PredictTask":
        return _PredictTask(self)


class _PredictTask:
    def __init__(self, spec: Predictor):
        from .inference import load_model_quietly

        directory = spec.model_dir
        if spec.model_files is not None:
            import ray

            directory = tempfile.mkdtemp(prefix="ser-model-")
            for name, data in ray.get(spec.model_files).items():
                (Path(directory) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(directory) / name).write_bytes(data)
        self.model = load_model_quietly(directory, spec.backend)
        self.timeline = spec.timeline

    def __call__(self, items: list[str]) -> list[Row]:
        from .batch import analyze_chunk

        rate = self.model.params.sample_rate
        analyzed = analyze_chunk(self.model, items, lambda item: load_source(item, rate))
        return [prediction_row(item, analysis, error, self.model.labels, self.timeline)
                for item, (analysis, error) in zip(items, analyzed)]


def prediction_row(path: str, analysis: "Analysis | None", error: str | None, labels: Sequence[str],
                   timeline: bool = False) -> Row:
    """One output row (see `prediction_schema`): probabilities, top emotion, uncertain flag."""
    row: Row = {"path": path, "emotion": None, "confidence": None, "uncertain": None,
                **{f"p_{label}": None for label in labels}, "duration_s": None, "n_windows": None,
                "warnings": [], "error": error}
    if timeline:
        row["window_start_s"] = row["window_probabilities"] = None
    if analysis is not None:
        row.update(emotion=analysis.emotion, confidence=analysis.confidence, uncertain=analysis.is_uncertain,
                   duration_s=analysis.audio.duration_s, n_windows=len(analysis.window_times_s),
                   warnings=list(analysis.audio.warnings), error=None)
        row.update({f"p_{label}": p for label, p in analysis.probabilities.items()})
        if timeline:
            row["window_start_s"] = [float(t) for t in analysis.window_times_s]
            row["window_probabilities"] = analysis.window_probabilities.tolist()
    return row


def prediction_schema(labels: Sequence[str], timeline: bool = False, metadata: dict | None = None):
    """The output table, one row per input file:

    | column | type | |
    |---|---|---|
    | path | string | the input as listed (local path or URI) |
    | emotion | string | top emotion; null when `error` |
    | confidence | double | its calibrated probability |
    | uncertain | bool | confidence below the model's `uncertain_below` (fitted on validation) |
    | p_LABEL | double | one column per label, in the model's order: mean over windows |
    | duration_s | double | decoded duration |
    | n_windows | int32 | analysis windows covering the audio |
    | warnings | list<string> | input warnings (clipping, telephone band, …) |
    | error | string | why the file could not be used; null otherwise |
    | window_start_s | list<double> | with --timeline: start of each window |
    | window_probabilities | list<list<double>> | with --timeline: per window, per label |

    In CSV, list columns are JSON text. Parquet files carry `ser.*` metadata: model directory,
    weights sha256, labels, uncertain_below, engine."""
    import pyarrow as pa

    fields = [("path", pa.string()), ("emotion", pa.string()), ("confidence", pa.float64()),
              ("uncertain", pa.bool_()), *((f"p_{label}", pa.float64()) for label in labels),
              ("duration_s", pa.float64()), ("n_windows", pa.int32()), ("warnings", pa.list_(pa.string())),
              ("error", pa.string())]
    if timeline:
        fields += [("window_start_s", pa.list_(pa.float64())), ("window_probabilities", pa.list_(pa.list_(pa.float64())))]
    return pa.schema(fields, metadata={f"ser.{k}": str(v) for k, v in (metadata or {}).items()})


def predict_rows(
    sources: Sequence[str],
    model_dir: str | Path,
    *,
    backend: str = "auto",
    timeline: bool = False,
    actors: int | None = None,
    ship_model: bool = False,
    batch_size: int = PREDICT_BATCH_FILES,
    stats: MapStats | None = None,
) -> Iterator[Row]:
    """Prediction rows for files on the connected Ray instance (see `ray_session`), in input order.
    Actors get absolute paths (their working directory is not ours); rows name the inputs as given."""
    import ray

    model_files = ray.put(_model_files(Path(model_dir))) if ship_model else None
    predictor = Predictor(str(Path(model_dir).resolve()), backend, timeline, model_files)
    sources = [str(source) for source in sources]
    absolute = [source if is_uri(source) else os.path.abspath(source) for source in sources]
    rows = map_files(absolute, predictor, batch_size=batch_size, actors=actors, stats=stats)
    for row, source in zip(rows, sources):  # rows first: map_files runs to its end (actor reports)
        row["path"] = source
        yield row


def model_summary(model_dir: str | Path, backend: str = "auto") -> dict:
    """Labels and provenance of a model directory, checked on the driver before any actor starts."""
    from .inference import load_model_quietly

    model = load_model_quietly(model_dir, backend)
    metadata = getattr(model, "metadata", {}) or {}
    return {"model": str(model_dir), "weights_sha256": metadata.get("weights_sha256", ""),
            "labels": json.dumps(list(model.labels)), "uncertain_below": model.uncertain_below}


def _open_output(out: str):
    if is_uri(out):
        filesystem, path = _filesystem(out)
        return filesystem.open_output_stream(path)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return open(out, "wb")


def write_rows(rows: Iterable[Row], out: str, schema, rows_per_group: int = 10_000) -> int:
    """Rows → Parquet (`.parquet`) or CSV (anything else), streamed in groups; returns the count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = schema.names
    n = 0
    with _open_output(out) as sink:
        if out.endswith(".parquet"):
            with pq.ParquetWriter(sink, schema) as writer:
                for group in _groups(rows, rows_per_group):
                    writer.write_table(pa.Table.from_pylist([_complete(r, names) for r in group], schema=schema))
                    n += len(group)
            return n
        text = io.TextIOWrapper(sink, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(names)
        for row in rows:
            writer.writerow(["" if row.get(k) is None else json.dumps(row[k]) if isinstance(row[k], list)
                             else row[k] for k in names])
            n += 1
        text.flush()
        text.detach()
    return n


def _complete(row: Row, names: Sequence[str]) -> Row:
    return {name: row.get(name) for name in names}


def _groups(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    group: list[Row] = []
    for row in rows:
        group.append(row)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


# ----------------------------------------------------------------------------------- feature shards

SHARD_SCHEMA_DOC = """Feature shard (Parquet, one file per batch of clips, `part-<sha1>.parquet`):

| column | type | |
|---|---|---|
| path | string | the clip as built: an absolute local path, or a URI |
| size_bytes | int64 | the file's size when it was read |
| mtime_ns | int64 | its modification time (ns since the epoch) |
| n_windows | int32 | windows in the clip |
| window_start_s | list<double> | start of each window |
| features | list<float> | the windows' features, flattened C-order: n_windows × n_bands × n_frames |
| error | string | why the clip gave no features (null otherwise) |

Schema metadata: `ser.feature_params` (JSON of `FeatureParams`), `ser.feature_digest`,
`ser.features_version` and `ser.feature_shape` ([n_bands, n_frames]): a reader refuses shards
built with other parameters. The features are those `FeatureCache` holds for the same file
(`ser_core.dataset.clip_features`), so `import_feature_shards` can fill that cache."""


def shard_schema(params: "FeatureParams"):
    import pyarrow as pa

    from .features import FEATURES_VERSION

    return pa.schema(
        [("path", pa.string()), ("size_bytes", pa.int64()), ("mtime_ns", pa.int64()), ("n_windows", pa.int32()),
         ("window_start_s", pa.list_(pa.float64())), ("features", pa.list_(pa.float32())), ("error", pa.string())],
        metadata={"ser.feature_params": json.dumps(params.to_dict(), sort_keys=True),
                  "ser.feature_digest": params.digest(), "ser.features_version": str(FEATURES_VERSION),
                  "ser.feature_shape": json.dumps(list(params.input_shape))},
    )


def _file_identity(source: str) -> tuple[str, int | None, int | None]:
    if is_uri(source):
        filesystem, path = _filesystem(source)
        info = filesystem.get_file_info(path)
        return source, info.size, info.mtime_ns
    path = Path(source).resolve()
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


@dataclass(frozen=True)
class FeatureShards:
    """Factory for the feature-cache map: each call decodes a batch, extracts its windows in one
    batched computation and writes them as one shard under `out` (a folder or URI); its rows are a
    summary per clip (path, n_windows, shard, error)."""

    params: "FeatureParams"
    out: str

    def __call__(self) -> Callable[[list[str]], list[Row]]:
        return self.write

    def write(self, items: list[str]) -> list[Row]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from .features import extract_many

        records, audios = [], []
        for item in items:
            try:
                audio = load_source(item, self.params.sample_rate)
                path, size, mtime = _file_identity(item)
                audios.append(audio)
                records.append({"path": path, "size_bytes": size, "mtime_ns": mtime, "error": None})
            except (SerError, OSError) as error:
                records.append({"path": item, "error": str(error) if isinstance(error, SerError)
                                else f"{type(error).__name__}: {error}"})
        ok = [r for r in records if r["error"] is None]
        for record, (times, features) in zip(ok, extract_many([a.samples for a in audios], self.params)):
            record.update(n_windows=len(times), window_start_s=[float(t) for t in times],
                          features=features.astype(np.float32).ravel())
        name = f"part-{hashlib.sha1(json.dumps(items).encode()).hexdigest()[:16]}.parquet"
        schema = shard_schema(self.params)
        table = pa.Table.from_pylist([_complete(r, schema.names) for r in records], schema=schema)
        target = f"{self.out.rstrip('/')}/{name}"
        if is_uri(target):
            filesystem, path = _filesystem(target)
            pq.write_table(table, path, filesystem=filesystem)
        else:
            Path(self.out).mkdir(parents=True, exist_ok=True)
            tmp = f"{target}.{os.getpid()}.tmp"
            pq.write_table(table, tmp)
            os.replace(tmp, target)  # a retried batch rewrites the same shard whole
        return [{"path": r["path"], "n_windows": r.get("n_windows"), "shard": name, "error": r["error"]}
                for r in records]


def read_feature_shards(folder: str | Path, params: "FeatureParams") -> Iterator[tuple[str, int, int, np.ndarray]]:
    """(path, size_bytes, mtime_ns, features (n_windows, n_bands, n_frames)) for every clip with
    features, shard by shard; refuses shards built with other feature parameters."""
    import pyarrow.parquet as pq

    from .features import FEATURES_VERSION

    shards = sorted(Path(folder).glob("part-*.parquet"))
    if not shards:
        raise ManifestError(f"No feature shards (part-*.parquet) in {folder}")
    for shard in shards:
        table = pq.read_table(shard)
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        if meta.get("ser.feature_digest") != params.digest() or meta.get("ser.features_version") != str(FEATURES_VERSION):
            raise ManifestError(f"{shard} holds features with other parameters than this model's recipe")
        for row in table.to_pylist():
            if row["error"] is None:
                features = np.asarray(row["features"], np.float32).reshape(row["n_windows"], *params.input_shape)
                yield row["path"], row["size_bytes"], row["mtime_ns"], features


def import_feature_shards(folder: str | Path, params: "FeatureParams", cache_root: Path | None = None) -> dict:
    """Put shard features into the local `FeatureCache`, for the clips whose file here is the one
    that was read (same path, size and mtime): `ser train` then finds them cached."""
    from .features import FeatureCache

    cache = FeatureCache(params, cache_root)
    counts = {"imported": 0, "stale": 0}
    for path, size, mtime, features in read_feature_shards(folder, params):
        local = Path(path)
        if not is_uri(path) and local.is_file() and (local.stat().st_size, local.stat().st_mtime_ns) == (size, mtime):
            cache.put(local, features)
            counts["imported"] += 1
        else:
            counts["stale"] += 1
    return counts


def check_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        from .errors import ConfigError

        raise ConfigError("--engine ray needs Ray: pip install -r requirements-ray.txt (or -e .[ray])") from None

