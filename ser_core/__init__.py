"""ser_core: speech emotion recognition — audio decoding, MFCC features, CNN models, training, evaluation."""

from .corpora import LABELS
from .errors import SerError

__version__ = "0.1.0"
__all__ = ["LABELS", "SerError", "load_model", "__version__"]


def load_model(directory="models/default", backend="auto"):
    """Load a trained model directory: LiteRT where it has model.tflite, else Keras (TensorFlow)."""
    from .inference import load_model as _load

    return _load(directory, backend)
