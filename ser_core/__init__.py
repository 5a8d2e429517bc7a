"""ser_core: speech emotion recognition — audio decoding, MFCC features, CNN models, training, evaluation."""

from .corpora import LABELS
from .errors import SerError

__version__ = "0.1.0"
__all__ = ["LABELS", "SerError", "load_model", "__version__"]


def load_model(directory=None, backend="auto"):
    """Load a model (a directory, a shipped model's name, or None: SER_MODEL, else the shipped
    default): LiteRT where it has model.tflite, else Keras (TensorFlow)."""
    from .inference import load_model as _load

    return _load(directory, backend)
