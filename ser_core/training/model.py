"""Model architectures, by name. Each builder takes the feature input shape and the label count.

Only standard Keras layers are used, so saved models load with `safe_mode=True` and convert to LiteRT.
"""

from __future__ import annotations

import functools
from typing import Callable

SEED_CNN = "seed-cnn"
EMO_TDNN = "emo-tdnn"
EMO_CNN = "emo-cnn"
WHISPER_HEAD = "whisper-head"
# The same head with dropout 0.5 on its standardised inputs and on its hidden layer: on bench/lolo_inputs.py's
# sample it lifted languages never heard on average and lowered the lowest; on the full data, as the
# default's three heads, it lowered both (train.py, emo-whisper-ens-diverse-dropout; docs/evaluation.md).
WHISPER_HEAD_DROPOUT = "whisper-head-dropout"
WHISPER_LINEAR = "whisper-linear"


def build_seed_cnn(input_shape: tuple[int, int], n_classes: int, dropout: float = 0.2):
    """The original notebook's CNN, layer for layer: 56,040 parameters for 25 × 216 input, 8 classes.

    4 × [Conv2D 32 3×3 'same' → BatchNorm → ReLU → MaxPool 2×2 → Dropout], Flatten, Dense 64,
    Dropout, BatchNorm, Dropout, Dense softmax.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(*input_shape, 1), name="features")
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


def _pooled_classifier(frames, n_classes: int, dropout: float):
    """(batch, time, channels) → class probabilities: mean + max over time, so the clip embedding does
    not depend on where in the window the speech sits, then a 128-d embedding and softmax."""
    from keras import layers

    x = layers.Concatenate()([layers.GlobalAveragePooling1D()(frames), layers.GlobalMaxPooling1D()(frames)])
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(128, activation="relu", name="embedding")(x)
    x = layers.Dropout(dropout)(x)
    return layers.Dense(n_classes, activation="softmax", name="emotion")(x)


def build_emo_tdnn(
    input_shape: tuple[int, int],
    n_classes: int,
    channels: int = 96,
    dilations: tuple[int, ...] = (1, 2, 3),
    dropout: float = 0.3,
):
    """A time-delay network on log-mel frames: mel bands are the channels of 1-D convolutions over
    time, so the cost stays small on CPU. A strided stem halves the frame rate; residual blocks with
    growing dilation and squeeze-excitation see ~0.5 s of context; mean + max pooling over time makes
    the clip embedding independent of where in the window the speech is.
    """
    import keras
    from keras import layers

    n_bands, n_frames = input_shape
    inputs = keras.Input(shape=(*input_shape, 1), name="features")
    x = layers.Reshape((n_bands, n_frames))(inputs)
    x = layers.Permute((2, 1))(x)  # (time, bands)
    x = layers.Conv1D(channels, 5, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    for i, dilation in enumerate(dilations):
        residual = x
        for j in range(2):
            x = layers.Conv1D(channels, 3, dilation_rate=dilation, padding="same", use_bias=False,
                              name=f"block{i + 1}_conv{j + 1}")(x)
            x = layers.BatchNormalization()(x)
            if j == 0:
                x = layers.Activation("relu")(x)
        squeeze = layers.GlobalAveragePooling1D()(x)
        squeeze = layers.Dense(channels // 8, activation="relu")(squeeze)
        squeeze = layers.Dense(channels, activation="sigmoid")(squeeze)
        x = layers.Multiply()([x, layers.Reshape((1, channels))(squeeze)])
        x = layers.Activation("relu")(layers.Add()([x, residual]))
    x = layers.Conv1D(2 * channels, 1, use_bias=False, name="expand")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    return keras.Model(inputs, _pooled_classifier(x, n_classes, dropout), name="emo_tdnn")


def build_emo_cnn(input_shape: tuple[int, int], n_classes: int, dropout: float = 0.3):
    """A compact 2-D CNN on log-mel: strided convolutions shrink bands and frames early (the cost
    stays near the seed CNN's), then each remaining frame's band × channel map becomes a 128-d vector
    and mean + max pooling over time gives a clip embedding that does not depend on where in the
    window the speech sits, unlike the seed CNN's Flatten.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(*input_shape, 1), name="features")
    x = inputs
    for i, (channels, stride) in enumerate(((16, 2), (32, 2), (32, 1), (64, 1), (64, 1))):
        if i == 3:
            x = layers.MaxPooling2D(2)(x)
        x = layers.Conv2D(channels, 3, strides=stride, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D((2, 1))(x)
    x = layers.Permute((2, 1, 3))(x)  # (frames, bands, channels)
    x = layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]))(x)
    x = layers.Dense(128, activation="relu", name="frame_embedding")(x)
    return keras.Model(inputs, _pooled_classifier(x, n_classes, dropout), name="emo_cnn")


def build_whisper_head(input_shape: tuple[int, ...], n_classes: int, hidden: int = 256, dropout: float = 0.3,
                       inputs_dropout: float = 0.1):
    """The trainable part of an encoder model: pooled encoder statistics (mean and std of each of the
    encoder's dimensions over time) → standardised (a Normalization layer fitted on the training
    embeddings, saved inside the model) → one hidden layer → softmax. Small on purpose: the frozen
    encoder carries the knowledge; the head only has ~13k clips to learn from."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="embedding")
    x = layers.Normalization(axis=-1, name="standardise")(inputs)
    x = layers.Dropout(inputs_dropout)(x)
    x = layers.Dense(hidden, activation="gelu", name="hidden")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="whisper_head")


def build_whisper_linear(input_shape: tuple[int, ...], n_classes: int, l2: float = 5e-3):
    """The smallest head: standardised pooled encoder statistics → softmax, with a strong L2 penalty.
    A strongly regularised linear read-out of a frozen encoder generalised to corpora it never heard
    better than the hidden-layer head (bench/results/loco_probe.json); `l2` = 1 / (2 C n) is the
    penalty of the probe's logistic regression with C = 0.003 over n ≈ 30,000 training windows
    (clips and their augmented copies)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="embedding")
    x = layers.Normalization(axis=-1, name="standardise")(inputs)
    outputs = layers.Dense(n_classes, activation="softmax", kernel_regularizer=keras.regularizers.L2(l2),
                           name="emotion")(x)
    return keras.Model(inputs, outputs, name="whisper_linear")


def with_adversary(head, groups: int, weight: float, hidden: int = 128, of: str = "corpus", conditional: bool = False):
    """A training-only view of `head` (a whisper-head): beside its emotion softmax, a softmax over the
    `groups` its clips come from (`of`: their corpora, or their speakers), read from its hidden layer
    through a gradient reversal (Ganin et al., "Domain-adversarial training of neural networks", JMLR
    2016). The classifier learns to tell the groups apart; the reversed gradient, scaled by `weight`,
    teaches the hidden layer to make that hard, so the emotion is read from what the groups share. One
    output, the two softmaxes side by side (`train.adversarial_loss` reads them); `head` itself,
    emotion only, is what is saved. `conditional`: the classifier reads the hidden layer multiplied by
    the head's emotion softmax (each hidden unit once per emotion: Long et al., "Conditional adversarial
    domain adaptation", NeurIPS 2018), so what is hidden is the group within each emotion, not the groups'
    different mixes of emotions. The softmax only weighs: the reversed gradient reaches the hidden layer
    alone (reaching the softmax too, it collapsed heard speakers' validation: docs/evaluation.md)."""
    import keras
    from keras import layers, ops

    class GradientReversal(layers.Layer):
        """Identity forward; the gradient backward multiplied by −weight."""

        def call(self, x):
            return ops.stop_gradient((1.0 + weight) * x) - weight * x

    x = head.get_layer("hidden").output
    if conditional:
        x = layers.Lambda(lambda pair: ops.reshape(pair[0][:, :, None] * ops.stop_gradient(pair[1])[:, None, :],
                                                   (-1, pair[0].shape[-1] * pair[1].shape[-1])),
                          name="hidden_by_emotion")([x, head.output])
    x = GradientReversal(name="gradient_reversal")(x)
    x = layers.Dense(hidden, activation="relu", name=f"{of}_hidden")(x)
    group = layers.Dense(groups, activation="softmax", name=of)(x)
    return keras.Model(head.input, layers.Concatenate(name=f"emotion_and_{of}")([head.output, group]),
                       name=f"{head.name}_{of}_adversarial")


ARCHITECTURES: dict[str, Callable] = {SEED_CNN: build_seed_cnn, EMO_TDNN: build_emo_tdnn, EMO_CNN: build_emo_cnn,
                                      WHISPER_HEAD: build_whisper_head, WHISPER_LINEAR: build_whisper_linear,
                                      WHISPER_HEAD_DROPOUT: functools.partial(build_whisper_head, dropout=0.5,
                                                                              inputs_dropout=0.5)}


def build(name: str, input_shape: tuple[int, ...], n_classes: int):
    from ..errors import ModelError

    if name not in ARCHITECTURES:
        raise ModelError(f"Unknown model {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name](input_shape, n_classes)
