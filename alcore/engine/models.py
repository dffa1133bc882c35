"""Model builders (Keras 3): short, explicit functions starting at ``keras.Input``.

Every layer gets an initializer seeded from the run's seed, so initial weights are
a pure function of (architecture, seed) and no global random state is touched.
The penultimate representation (the features the diversity strategies use) is found by its
role, the input of the output layer ``"probabilities"`` (:func:`embedding_output`), so every
layer keeps the name of what it is.
"""
from __future__ import annotations

from dataclasses import dataclass

from alcore.config import ExperimentConfig


@dataclass(frozen=True)
class ModelSpec:
    """The architecture part of a config, plus the data shapes it is built for."""

    model: str
    input_shape: tuple[int, ...]
    n_classes: int
    hidden_units: tuple[int, ...] = (128,)
    activation: str = "relu"
    filters: int = 32
    dropout: float = 0.25
    kernel_size: int = 3  # cnn
    dense_dropout: float = 0.25  # cnn: after its Dense(128)
    # Training-time image augmentation (layers inside the model; identity at prediction):
    # shift as a fraction of height / width, rotation in degrees, zoom as a fraction.
    augment_shift: float = 0.0
    augment_rotation: float = 0.0
    augment_zoom: float = 0.0

    @classmethod
    def from_config(cls, config: ExperimentConfig, input_shape, n_classes) -> "ModelSpec":
        cnn = config.model == "cnn"
        # Augmentation transforms images: mlp and cnn read images, transfer reads backbone
        # features and mlp on an embedding reads a vector per image; softmax is left as it is.
        images = config.model in ("mlp", "cnn") and config.embedding == "pixels"
        return cls(
            model=config.model,
            input_shape=tuple(int(s) for s in input_shape),
            n_classes=int(n_classes),
            hidden_units=tuple(config.hidden_units) if config.model in ("mlp", "transfer") else (),
            activation=config.activation if config.model in ("mlp", "transfer") else "",
            filters=config.filters if cnn else 0,
            dropout=config.dropout if config.model in ("mlp", "cnn", "transfer") else 0.0,
            kernel_size=config.kernel_size if cnn else 0,
            dense_dropout=(config.dropout if config.dense_dropout is None else config.dense_dropout) if cnn else 0.0,
            augment_shift=config.augment_shift if images else 0.0,
            augment_rotation=config.augment_rotation if images else 0.0,
            augment_zoom=config.augment_zoom if images else 0.0,
        )

    @property
    def has_dropout(self) -> bool:
        return self.dropout > 0 or self.dense_dropout > 0

    @property
    def augments(self) -> bool:
        return bool(self.augment_shift or self.augment_rotation or self.augment_zoom)


def _seeded(seed: int):
    from alcore._tf import keras

    counter = iter(range(1, 10_000))

    def kernel():
        return keras.initializers.GlorotUniform(seed=seed * 7919 + next(counter))

    return kernel


def _augmentation(spec: ModelSpec, seed: int, x):
    """Random shifts, rotations and zooms of the images, active only when the model is
    called with ``training=True`` (identity when predicting, embedding or in MC passes).

    Each layer draws from a Keras ``SeedGenerator`` seeded from the run's seed; its state
    is a model variable, so resetting the weights (``Trainer.set_weights``) also resets
    the augmentation stream and the same config and seed give the same weights. Empty
    borders are filled with the nearest edge pixel (the background for MNIST-like
    digits)."""
    from keras import layers

    if len(spec.input_shape) != 3:
        raise ValueError(f"augmentation needs images of shape (height, width, channels), got {spec.input_shape}")
    if spec.augment_shift:
        f = spec.augment_shift
        x = layers.RandomTranslation(f, f, fill_mode="nearest", seed=seed * 31 + 11, name="augment_shift")(x)
    if spec.augment_rotation:
        x = layers.RandomRotation(spec.augment_rotation / 360.0, fill_mode="nearest", seed=seed * 31 + 12,
                                  name="augment_rotation")(x)
    if spec.augment_zoom:
        x = layers.RandomZoom(spec.augment_zoom, fill_mode="nearest", seed=seed * 31 + 13, name="augment_zoom")(x)
    return x


OUTPUT = "probabilities"  # the output layer's name: class probabilities


def build_model(spec: ModelSpec, seed: int = 0):
    """A fresh, uncompiled Keras model for ``spec`` with weights drawn from ``seed``."""
    from alcore._tf import keras
    from keras import layers

    kernel = _seeded(seed)
    inputs = keras.Input(shape=spec.input_shape, name="image")
    x0 = _augmentation(spec, seed, inputs) if spec.augments else inputs
    if spec.model == "softmax":
        x = layers.Flatten(name="flatten")(inputs)
    elif spec.model in ("mlp", "transfer"):  # transfer: the head on backbone features
        x = layers.Flatten(name="flatten")(x0)
        for i, units in enumerate(spec.hidden_units):
            x = layers.Dense(units, activation=spec.activation, kernel_initializer=kernel(), name=f"dense_{i}")(x)
            if spec.has_dropout:
                x = layers.Dropout(spec.dropout, seed=seed * 31 + i, name=f"dropout_{i}")(x)
    elif spec.model == "cnn":
        h, w = spec.input_shape[:2]
        k = spec.kernel_size
        if min(h, w) < 2 * k:
            raise ValueError(f"cnn with kernel_size {k} needs images of at least {2 * k}x{2 * k} pixels, got {h}x{w}")
        x = layers.Conv2D(spec.filters, k, activation="relu", kernel_initializer=kernel(), name="conv_1")(x0)
        x = layers.Conv2D(spec.filters, k, activation="relu", kernel_initializer=kernel(), name="conv_2")(x)
        x = layers.MaxPooling2D(2, name="pool")(x)
        if spec.dropout > 0:
            x = layers.Dropout(spec.dropout, seed=seed * 31 + 1, name="dropout_1")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(128, activation="relu", kernel_initializer=kernel(), name="dense")(x)
        if spec.dense_dropout > 0:
            x = layers.Dropout(spec.dense_dropout, seed=seed * 31 + 2, name="dropout_2")(x)
    else:
        raise ValueError(f"unknown model {spec.model!r}; choose softmax, mlp or cnn")
    outputs = layers.Dense(spec.n_classes, activation="softmax", kernel_initializer=kernel(), name=OUTPUT)(x)
    return keras.Model(inputs, outputs, name=spec.model)


def embedding_output(model):
    """The penultimate representation of a model :func:`build_model` made: what its output layer
    reads (a Dropout's output there is its input when predicting). Found by that role, not by a
    layer's name: it was once named "embedding", whichever layer it was, a Dropout among them."""
    return model.get_layer(OUTPUT).input


def summary_rows(model) -> list[dict]:
    """The layer summary as rows (name, type, output shape, parameters)."""
    rows = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        rows.append({
            "layer": layer.name,
            "type": type(layer).__name__,
            "output_shape": str(tuple(shape.shape)) if shape is not None else "",
            "parameters": int(layer.count_params()) if layer.built else 0,
        })
    return rows
