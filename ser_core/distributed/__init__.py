"""Past one machine: the batch map over files on Ray actors (`engine.map_files`; its local twin is
`ser_core.serving.batch.map_local`), its inputs (`inputs`: local paths, URIs, folders, manifests,
file lists), its outputs (`outputs`: prediction rows as Parquet or CSV) and batch prediction on Ray
(`ray`).

Ray and pyarrow are optional extras, imported inside the functions that need them. Imports io and
serving; never training, ui or the CLI (training's feature shards import this)."""
