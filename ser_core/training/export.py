"""Convert a model directory's Keras model to LiteRT (model.tflite) and record it in the metadata."""

from __future__ import annotations

import json
from pathlib import Path

from ..serving.inference import LITERT_FILE, METADATA_FILE, MODEL_FILE, sha256_file


def export_litert(model_dir: str | Path) -> Path:
    import keras
    import tensorflow as tf

    model_dir = Path(model_dir)
    model = keras.models.load_model(model_dir / MODEL_FILE, safe_mode=True, compile=False)
    out = model_dir / LITERT_FILE
    out.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    metadata_path = model_dir / METADATA_FILE
    metadata = json.loads(metadata_path.read_text())
    metadata["litert_sha256"] = sha256_file(out)
    metadata_path.write_text(json.dumps(metadata, indent=2))
    return out
