"""ser_core: speech emotion recognition, one subpackage per concern.

- `io`: audio in (decoding, limits, sniffing) and synthetic test signals.
- `frontend`: windows and features, the Whisper encoder, voice activity detection.
- `serving`: a prediction — `load_model`, `Analysis`, segments, speakers, profiles, live, batch, HTTP.
- `training`: corpora, splits, features of many clips, augmentation, training, evaluation, export.
- `distributed`: the batch map over files, its inputs and outputs, batch prediction on Ray.
- `ui`: the Streamlit views and their plots.

`cli` is the `ser` command; `labels` and `errors` are leaves every part may import.
`tests/test_architecture.py` checks who may import whom."""

from .errors import SerError
from .labels import LABELS

__version__ = "0.1.0"
__all__ = ["LABELS", "SerError", "load_model", "__version__"]


def load_model(directory=None, backend="auto"):
    """Load a model (a directory, a shipped model's name, or None: SER_MODEL, else the shipped
    default): LiteRT where it has model.tflite, else Keras (TensorFlow)."""
    from .serving.inference import load_model as _load

    return _load(directory, backend)
