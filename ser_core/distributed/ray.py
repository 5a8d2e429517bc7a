"""Batch prediction on Ray (an optional extra: `pip install -e .[ray]`): `ray_session` connects to a
cluster or starts a local instance, `predict_rows` (`ser predict --engine ray`) runs one `Predictor`
(a model per actor) over the files through `ser_core.distributed.engine.map_files`, and the rows go
to `ser_core.distributed.outputs.write_rows`. Schema in `prediction_schema` and docs/scaling.md."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from ..serving.batch import FILES_PER_BATCH, Row, analyze_chunk
from .engine import MapStats, map_files
from .inputs import is_uri, load_source
from .outputs import prediction_row

if TYPE_CHECKING:
    from ..serving.profile import VoiceProfile
    from ..serving.segments import SpeakerOptions


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
                     runtime_env={"py_modules": [str(Path(__file__).resolve().parents[1])]})
        except (ConnectionError, RuntimeError) as error:
            from ..errors import ConfigError

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


def _model_files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@dataclass(frozen=True)
class Predictor:
    """Factory for one model per actor. With `model_files` (the directory's files as bytes, sent
    once through Ray's object store) the actor loads the model from a copy, for cluster nodes that do
    not have `model_dir`; otherwise it loads `model_dir` where it runs. Every file is read against
    `profile` when given, its voices found and used as `speakers` says (`ser predict --profile`,
    `--speakers`, `--speaker-adaptation`, `--adapt recording`)."""

    model_dir: str
    backend: str = "auto"
    timeline: bool = False
    model_files: object = None  # ObjectRef of dict[str, bytes], or None
    profile: "VoiceProfile | None" = None
    speakers: "SpeakerOptions | None" = None

    def __call__(self) -> "_PredictTask":
        return _PredictTask(self)


class _PredictTask:
    def __init__(self, spec: Predictor):
        from ..serving.inference import load_model_quietly

        directory = spec.model_dir
        if spec.model_files is not None:
            import ray

            directory = tempfile.mkdtemp(prefix="ser-model-")
            for name, data in ray.get(spec.model_files).items():
                (Path(directory) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(directory) / name).write_bytes(data)
        self.model = load_model_quietly(directory, spec.backend)
        self.spec = spec

    def __call__(self, items: list[str]) -> list[Row]:
        rate = self.model.params.sample_rate
        analyzed = analyze_chunk(self.model, items, lambda item: load_source(item, rate), self.spec.profile,
                                 self.spec.speakers)
        return [prediction_row(item, analysis, error, self.model.labels, self.spec.timeline)
                for item, (analysis, error) in zip(items, analyzed)]


def predict_rows(
    sources: Sequence[str],
    model_dir: str | Path,
    *,
    backend: str = "auto",
    timeline: bool = False,
    actors: int | None = None,
    ship_model: bool = False,
    batch_size: int = FILES_PER_BATCH,
    stats: MapStats | None = None,
    profile: "VoiceProfile | None" = None,
    speakers: "SpeakerOptions | None" = None,
) -> Iterator[Row]:
    """Prediction rows for files on the connected Ray instance (see `ray_session`), in input order.
    Actors get absolute paths (their working directory is not ours); rows name the inputs as given.
    `profile` and `speakers` as `Predictor`'s."""
    import ray

    model_files = ray.put(_model_files(Path(model_dir))) if ship_model else None
    predictor = Predictor(str(Path(model_dir).resolve()), backend, timeline, model_files, profile, speakers)
    sources = [str(source) for source in sources]
    absolute = [source if is_uri(source) else os.path.abspath(source) for source in sources]
    rows = map_files(absolute, predictor, batch_size=batch_size, actors=actors, stats=stats)
    for row, source in zip(rows, sources):  # rows first: map_files runs to its end (actor reports)
        row["path"] = source
        yield row


def model_summary(model_dir: str | Path, backend: str = "auto") -> dict:
    """Labels and provenance of a model directory, checked on the driver before any actor starts."""
    from ..serving.inference import load_model_quietly

    model = load_model_quietly(model_dir, backend)
    metadata = getattr(model, "metadata", {}) or {}
    return {"model": str(model_dir), "weights_sha256": metadata.get("weights_sha256", ""),
            "labels": json.dumps(list(model.labels)), "uncertain_below": model.uncertain_below}


def check_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        from ..errors import ConfigError

        raise ConfigError("--engine ray needs Ray: pip install 'ser[ray]' (in a checkout: pip install -r "
                          "requirements-ray.txt)") from None

