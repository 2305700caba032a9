"""Classifier architectures by name (a small registry in the manner of timm)."""
from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from fer_batch.labels import NUM_CLASSES

ModelFactory = Callable[[float], keras.Model]  # dropout_scale -> model


def seed(dropout_scale: float = 1.0) -> keras.Model:
    """The original notebook's network: 3 conv layers 32/64/128 (3x3, max pooling), dense 128, softmax 7; 64x64 RGB."""
    inputs = keras.Input((64, 64, 3))
    x = inputs
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, activation="relu", padding="same")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.5 * dropout_scale)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="seed")


def _conv_bn_relu(x, filters: int):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _vgg(widths: tuple[int, ...], convs_per_block: tuple[int, ...], dense: int, name: str,
         dropout_scale: float = 1.0) -> keras.Model:
    inputs = keras.Input((48, 48, 1))
    x = inputs
    for filters, n in zip(widths, convs_per_block):
        for _ in range(n):
            x = _conv_bn_relu(x, filters)
        x = layers.MaxPooling2D()(x)
        x = layers.SpatialDropout2D(0.1 * dropout_scale)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5 * dropout_scale)(x)
    x = layers.Dense(dense, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(0.4 * dropout_scale)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def vgg_small(dropout_scale: float = 1.0) -> keras.Model:
    """The default: a VGG-style network for 48x48 gray faces (4 blocks, BN, dropout), 1.77M weights."""
    return _vgg((32, 64, 128, 256), (2, 2, 2, 2), 256, "vgg_small", dropout_scale)


def vgg_tiny(dropout_scale: float = 1.0) -> keras.Model:
    """A lighter variant for quick experiments."""
    return _vgg((24, 48, 96, 192), (1, 2, 2, 2), 192, "vgg_tiny", dropout_scale)


ARCHITECTURES: dict[str, ModelFactory] = {"vgg_small": vgg_small, "vgg_tiny": vgg_tiny, "seed": seed}
DEFAULT_ARCH = "vgg_small"


def build(name: str, dropout_scale: float = 1.0) -> keras.Model:
    """A fresh network; `dropout_scale` multiplies every dropout rate (the weights are the same either way)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    if not 0 <= dropout_scale <= 1.5:
        raise ValueError("dropout scale must be between 0 and 1.5")
    return ARCHITECTURES[name](dropout_scale)
