"""Domain-adversarial training (Ganin & Lempitsky, 2015): a second head tells main-data faces from in-the-wild ones
on the network's flattened features, through a layer that reverses its gradient, so the convolutional layers learn
features it cannot tell apart while the expression head is trained as usual. Only the expression network ships.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

EXPRESSION, DOMAIN = "expression", "domain"


@keras.saving.register_keras_serializable(package="fer_batch_training")
class GradientReversal(keras.layers.Layer):
    """The identity going forward; the gradient multiplied by -scale going back."""

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, x):
        @tf.custom_gradient
        def reverse(t):
            return tf.identity(t), lambda upstream: -self.scale * upstream
        return reverse(x)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


def with_domain_head(model: keras.Model, hidden: int = 128) -> keras.Model:
    """A model with two named outputs sharing `model`'s layers: EXPRESSION (the model's own output) and DOMAIN (the
    probability that a face is in-the-wild, from the Flatten layer's features through a gradient reversal)."""
    flatten = [layer for layer in model.layers if isinstance(layer, keras.layers.Flatten)]
    if len(flatten) != 1:
        raise ValueError(f"domain-adversarial training needs exactly one Flatten layer in {model.name}, found {len(flatten)}")
    x = GradientReversal(name="gradient_reversal")(flatten[0].output)
    x = keras.layers.Dense(hidden, activation="relu", name="domain_hidden")(x)
    x = keras.layers.Dropout(0.5, name="domain_dropout")(x)
    domain = keras.layers.Dense(1, activation="sigmoid", name=DOMAIN)(x)
    return keras.Model(model.input, {EXPRESSION: model.output, DOMAIN: domain}, name=f"{model.name}_with_domain_head")


def expression_network(trainer: keras.Model, name: str) -> keras.Model:
    """The expression network inside a model made by `with_domain_head` (e.g. one loaded from a checkpoint)."""
    return keras.Model(trainer.input, trainer.output[EXPRESSION], name=name)


def domain_sample_weights(domains: np.ndarray) -> np.ndarray:
    """Per-face weights of the domain loss that give both domains the same total weight (mean 1)."""
    domains = np.asarray(domains)
    counts = np.bincount(domains.astype(np.int64), minlength=2)
    if counts.min() == 0:
        raise ValueError("domain-adversarial training needs faces of both domains")
    return (len(domains) / (2.0 * counts[domains.astype(np.int64)])).astype(np.float32)
