"""Model architectures, by name. Each builder takes the feature input shape and the label count."""

from __future__ import annotations

from typing import Callable

SEED_CNN = "seed-cnn"


def build_seed_cnn(input_shape: tuple[int, int], n_classes: int, dropout: float = 0.2):
    """The original notebook's CNN, layer for layer: 56,040 parameters for 25 × 216 input, 8 classes.

    4 × [Conv2D 32 3×3 'same' → BatchNorm → ReLU → MaxPool 2×2 → Dropout], Flatten, Dense 64,
    Dropout, BatchNorm, Dropout, Dense softmax.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(*input_shape, 1), name="mfcc")
    x = inputs
    for block in range(4):
        x = layers.Conv2D(32, 3, padding="same", name=f"conv{block + 1}")(x)
        x = layers.BatchNormalization(name=f"bn{block + 1}")(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout)(x)
    x = layers.BatchNormalization(name="bn_dense")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


ARCHITECTURES: dict[str, Callable] = {SEED_CNN: build_seed_cnn}


def build(name: str, input_shape: tuple[int, int], n_classes: int):
    from .errors import ModelError

    if name not in ARCHITECTURES:
        raise ModelError(f"Unknown model {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](input_shape, n_classes)
