"""Model builders (Keras 3): short, explicit functions starting at ``keras.Input``.

Every layer gets an initializer seeded from the run's seed, so initial weights are
a pure function of (architecture, seed) and no global random state is touched.
The penultimate representation is the layer named ``"embedding"``.
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

    @classmethod
    def from_config(cls, config: ExperimentConfig, input_shape, n_classes) -> "ModelSpec":
        return cls(
            model=config.model,
            input_shape=tuple(int(s) for s in input_shape),
            n_classes=int(n_classes),
            hidden_units=tuple(config.hidden_units) if config.model in ("mlp", "transfer") else (),
            activation=config.activation if config.model in ("mlp", "transfer") else "",
            filters=config.filters if config.model == "cnn" else 0,
            dropout=config.dropout if config.model in ("mlp", "cnn", "transfer") else 0.0,
        )

    @property
    def has_dropout(self) -> bool:
        return self.dropout > 0


def _seeded(seed: int):
    from alcore._tf import keras

    counter = iter(range(1, 10_000))

    def kernel():
        return keras.initializers.GlorotUniform(seed=seed * 7919 + next(counter))

    return kernel


def build_model(spec: ModelSpec, seed: int = 0):
    """A fresh, uncompiled Keras model for ``spec`` with weights drawn from ``seed``."""
    from alcore._tf import keras
    from keras import layers

    kernel = _seeded(seed)
    inputs = keras.Input(shape=spec.input_shape, name="image")
    if spec.model == "softmax":
        x = layers.Flatten(name="embedding")(inputs)
    elif spec.model in ("mlp", "transfer"):  # transfer: the head on backbone features
        x = layers.Flatten(name="flatten")(inputs)
        for i, units in enumerate(spec.hidden_units):
            last = i == len(spec.hidden_units) - 1
            x = layers.Dense(units, activation=spec.activation, kernel_initializer=kernel(),
                             name="embedding" if last and not spec.has_dropout else f"dense_{i}")(x)
            if spec.has_dropout:
                x = layers.Dropout(spec.dropout, seed=seed * 31 + i,
                                   name="embedding" if last else f"dropout_{i}")(x)
    elif spec.model == "cnn":
        h, w = spec.input_shape[:2]
        if min(h, w) < 6:
            raise ValueError(f"cnn needs images of at least 6x6 pixels, got {h}x{w}")
        x = layers.Conv2D(spec.filters, 3, activation="relu", kernel_initializer=kernel(), name="conv_1")(inputs)
        x = layers.Conv2D(spec.filters, 3, activation="relu", kernel_initializer=kernel(), name="conv_2")(x)
        x = layers.MaxPooling2D(2, name="pool")(x)
        if spec.has_dropout:
            x = layers.Dropout(spec.dropout, seed=seed * 31 + 1, name="dropout_1")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(128, activation="relu", kernel_initializer=kernel(),
                         name="embedding" if not spec.has_dropout else "dense")(x)
        if spec.has_dropout:
            x = layers.Dropout(spec.dropout, seed=seed * 31 + 2, name="embedding")(x)
    else:
        raise ValueError(f"unknown model {spec.model!r}; choose softmax, mlp or cnn")
    outputs = layers.Dense(spec.n_classes, activation="softmax", kernel_initializer=kernel(),
                           name="probabilities")(x)
    return keras.Model(inputs, outputs, name=spec.model)


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
