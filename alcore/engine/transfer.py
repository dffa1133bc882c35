"""Transfer learning: a frozen pretrained backbone's features, computed once, and a new head.

The `transfer` model runs every pool and test image once through a frozen Keras
Applications backbone (MobileNetV2 with ImageNet weights by default, downloaded on first
use) and keeps the pooled features; each active-learning round then trains only a small
dense head on them, so a round costs what an `mlp` round on 1280 numbers costs.

Images are scaled back to [0, 1], grayscale is repeated to three channels, resized to
``backbone_size`` x ``backbone_size`` and mapped to [-1, 1] as MobileNetV2 expects.
``backbone_weights="random"`` builds the same network with deterministic random weights:
useless features, but the whole pipeline runs offline (tests, machines without internet).

Reference: Sandler, M. et al. (2018). MobileNetV2: Inverted Residuals and Linear
Bottlenecks. CVPR.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from alcore.config import ExperimentConfig
from alcore.data.datasets import Dataset, DatasetUnavailableError

FEATURE_DIMS = {"mobilenet_v2": 1280}
CHUNK = 256


def _deterministic_init(net, seed: int) -> None:
    """Re-initialise every weight from ``seed`` (Glorot-uniform kernels, unit BN scales)."""
    rng = np.random.default_rng([seed, 424242])
    for w in net.weights:
        name, shape = w.path.rsplit("/", 1)[-1], tuple(w.shape)
        if name in ("kernel", "depthwise_kernel"):
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else shape[0]
            fan_out = shape[-1] if name == "kernel" else int(np.prod(shape[:2]))
            limit = np.sqrt(6.0 / max(fan_in + fan_out, 1))
            w.assign(rng.uniform(-limit, limit, shape).astype(np.float32))
        elif name in ("gamma", "moving_variance"):
            w.assign(np.ones(shape, np.float32))
        else:
            w.assign(np.zeros(shape, np.float32))


def build_backbone(config: ExperimentConfig):
    from alcore._tf import keras

    size = config.backbone_size
    try:
        net = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, pooling="avg",
                                             weights=None if config.backbone_weights == "random" else "imagenet")
    except Exception as e:
        raise DatasetUnavailableError(
            f"could not load MobileNetV2's ImageNet weights (downloaded on first use; is this machine "
            f"offline?): {type(e).__name__}: {e}. backbone_weights='random' runs the pipeline offline "
            f"with random features") from e
    if config.backbone_weights == "random":
        _deterministic_init(net, config.seed)
    net.trainable = False
    return net


def backbone_features(images01: np.ndarray, net, size: int) -> np.ndarray:
    """Pooled backbone features (n, d) of images in [0, 1], shape (n, H, W, 1|3)."""
    from alcore._tf import tf

    @tf.function(input_signature=[tf.TensorSpec((None,) + tuple(images01.shape[1:]), tf.float32)])
    def features(x):
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        x = tf.image.resize(x, (size, size))
        return net(x * 2.0 - 1.0, training=False)

    out = [features(np.asarray(images01[i:i + CHUNK], np.float32)).numpy()
           for i in range(0, len(images01), CHUNK)]
    return np.concatenate(out) if out else np.zeros((0, net.output.shape[-1]), np.float32)


def with_backbone_features(dataset: Dataset, config: ExperimentConfig) -> Dataset:
    """The dataset with backbone features as the model's inputs (images kept for display)."""
    if dataset.features_pool is not None:
        return dataset
    net = build_backbone(config)

    def unit(x):
        return np.clip((np.asarray(x, np.float32) - dataset.display_offset) / dataset.display_scale, 0, 1)

    f_pool = backbone_features(unit(dataset.x_pool), net, config.backbone_size)
    f_test = backbone_features(unit(dataset.x_test), net, config.backbone_size)
    for f in (f_pool, f_test):
        f.setflags(write=False)
    return dataclasses.replace(dataset, features_pool=f_pool, features_test=f_test)
