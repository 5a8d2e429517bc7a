"""The training feature cache as Parquet shards (`ser embed`, on Ray or in this process).

`FeatureShards` is a factory for the batch map (`ser_core.distributed.engine`): each actor decodes
its files, extracts their windows and writes one shard; `import_feature_shards` puts them into the
local `FeatureCache`, which `ser train --features-from DIR` does before training. Schema in
`SHARD_SCHEMA_DOC`."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..distributed.inputs import is_uri, load_source, open_filesystem
from ..distributed.outputs import complete_row
from ..errors import ManifestError, SerError
from ..serving.batch import BatchFn

if TYPE_CHECKING:
    from ..frontend.features import FeatureParams


EMBED_BATCH_FILES = 64  # files per feature shard (about 4 MB of log-mel windows)


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
(`ser_core.training.dataset.clip_features`), so `import_feature_shards` can fill that cache."""


def shard_schema(params: "FeatureParams"):
    import pyarrow as pa

    from ..frontend.features import FEATURES_VERSION

    return pa.schema(
        [("path", pa.string()), ("size_bytes", pa.int64()), ("mtime_ns", pa.int64()), ("n_windows", pa.int32()),
         ("window_start_s", pa.list_(pa.float64())), ("features", pa.list_(pa.float32())), ("error", pa.string())],
        metadata={"ser.feature_params": json.dumps(params.to_dict(), sort_keys=True),
                  "ser.feature_digest": params.digest(), "ser.features_version": str(FEATURES_VERSION),
                  "ser.feature_shape": json.dumps(list(params.input_shape))},
    )


def _file_identity(source: str) -> tuple[str, int | None, int | None]:
    if is_uri(source):
        filesystem, path = open_filesystem(source)
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

    def __call__(self) -> BatchFn:
        return self.write

    def write(self, items: list[str]) -> list[dict]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from ..frontend.features import extract_many

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
        table = pa.Table.from_pylist([complete_row(r, schema.names) for r in records], schema=schema)
        target = f"{self.out.rstrip('/')}/{name}"
        if is_uri(target):
            filesystem, path = open_filesystem(target)
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

    from ..frontend.features import FEATURES_VERSION

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
    from ..frontend.features import FeatureCache

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
