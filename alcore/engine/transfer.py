"""Frozen pretrained backbones: their features, computed once, for a new head.

The `transfer` model (and the `pretrained` embedding, alcore.engine.embeddings) runs every
pool and test image once through a frozen backbone and keeps the pooled features; each
active-learning round then trains only a head on them, so a round costs what a round on
those few numbers costs. Two backbones (config field ``backbone``):

* ``mobilenet_v2``: Keras Applications' MobileNetV2 with ImageNet weights (supervised),
  1280 features after global average pooling. Images are scaled back to [0, 1], grayscale
  repeated to three channels, resized to ``backbone_size`` square and mapped to [-1, 1].
* ``dinov2_small``: KerasHub's DINOv2 ViT-S/14 (self-supervised on 142 million images,
  Oquab et al. 2024), 384 features: the class token of its last layer. Images are resized to
  the multiple of its 14-pixel patches nearest ``backbone_size`` and normalised with the
  ImageNet mean and standard deviation, as DINOv2 was trained. KerasHub is an optional
  dependency (``pip install keras-hub``): its weights come from Kaggle on first use.

``backbone_weights="random"`` builds the same network with deterministic random weights:
useless features, but the whole pipeline runs offline (tests, machines without internet).
An offline machine asking for the published weights gets a
:class:`~alcore.data.datasets.DatasetUnavailableError` that says so and what to do.

References: Sandler, M. et al. (2018). MobileNetV2: Inverted Residuals and Linear
Bottlenecks. CVPR. Oquab, M. et al. (2024). DINOv2: Learning Robust Visual Features
without Supervision. TMLR.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Optional

import numpy as np

from alcore.config import ExperimentConfig
from alcore.data.datasets import Dataset, DatasetUnavailableError

FEATURE_DIMS = {"mobilenet_v2": 1280, "dinov2_small": 384}
CHUNK = 256
DINOV2_PATCH = 14
DINOV2_PRESET = "dinov2_small"
# DINOv2 ViT-S/14 as its preset builds it (keras_hub/src/models/dinov2/dinov2_presets.py).
DINOV2_SMALL = dict(patch_size=14, num_layers=12, hidden_dim=384, num_heads=6, intermediate_dim=1536,
                    layer_scale_init_value=1.0, position_embedding_shape=(518, 518, 3))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


def backbone_input_size(config: ExperimentConfig) -> int:
    """The side of the square images the backbone reads."""
    if config.backbone == "dinov2_small":
        return max(DINOV2_PATCH, DINOV2_PATCH * round(config.backbone_size / DINOV2_PATCH))
    return config.backbone_size


def build_backbone(config: ExperimentConfig):
    """The frozen backbone ``config.backbone`` with its weights, as a Keras model from images
    (already prepared by :func:`backbone_features`) to pooled features (n, FEATURE_DIMS)."""
    if config.backbone == "dinov2_small":
        return _dinov2(config)
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


def _dinov2(config: ExperimentConfig):
    """DINOv2 ViT-S/14 from KerasHub, its class token as the features."""
    try:
        import keras_hub
    except ImportError as e:
        raise DatasetUnavailableError(
            "backbone 'dinov2_small' needs KerasHub, which is not installed here: pip install keras-hub "
            "(it also installs tensorflow-text and TensorFlow), or choose backbone 'mobilenet_v2'") from e
    from alcore._tf import keras

    size = backbone_input_size(config)
    if config.backbone_weights == "random":
        net = keras_hub.models.DINOV2Backbone(**DINOV2_SMALL, image_shape=(size, size, 3))
        _deterministic_init(net, config.seed)
    else:
        try:
            net = keras_hub.models.DINOV2Backbone.from_preset(DINOV2_PRESET, image_shape=(size, size, 3))
        except Exception as e:
            raise DatasetUnavailableError(
                f"could not load DINOv2's weights ({DINOV2_PRESET}, downloaded from Kaggle through KerasHub on "
                f"first use; is this machine offline?): {type(e).__name__}: {e}. backbone_weights='random' runs "
                f"the pipeline offline with random features, or backbone 'mobilenet_v2' uses Keras' own "
                f"download") from e
    net.trainable = False
    images = keras.Input((size, size, 3), name="images")
    tokens = net({"images": images})  # (n, 1 + patches, 384): the class token first
    return keras.Model(images, tokens[:, 0], name="dinov2_small_cls")


def backbone_features(images01: np.ndarray, net, size: int, backbone: str = "mobilenet_v2",
                      progress: Optional[Callable[[int, int, float], None]] = None) -> np.ndarray:
    """Pooled backbone features (n, d) of images in [0, 1], shape (n, H, W, 1|3).
    ``progress(images done, images, seconds)`` after every chunk."""
    from alcore._tf import tf

    mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)

    @tf.function(input_signature=[tf.TensorSpec((None,) + tuple(images01.shape[1:]), tf.float32)])
    def features(x):
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        x = tf.image.resize(x, (size, size))
        if backbone == "dinov2_small":
            return net((x - mean) / std, training=False)
        return net(x * 2.0 - 1.0, training=False)

    t0, out = time.perf_counter(), []
    for i in range(0, len(images01), CHUNK):
        out.append(features(np.asarray(images01[i:i + CHUNK], np.float32)).numpy())
        if progress is not None:
            progress(min(i + CHUNK, len(images01)), len(images01), time.perf_counter() - t0)
    return np.concatenate(out) if out else np.zeros((0, net.output.shape[-1]), np.float32)


def unit_images(dataset: Dataset, x: np.ndarray) -> np.ndarray:
    """Prepared images mapped back to [0, 1] (the dataset's own arrays where they already are)."""
    if dataset.display_offset == 0.0 and dataset.display_scale == 1.0 and (not len(x) or (
            float(x.min()) >= 0.0 and float(x.max()) <= 1.0)):
        return x
    return np.clip((np.asarray(x, np.float32) - dataset.display_offset) / dataset.display_scale, 0, 1)


def transfer_features_of(config: ExperimentConfig) -> str:
    """What the `transfer` model's features are, as :attr:`Dataset.features_of` records it."""
    return (f"transfer:{config.backbone}:{config.backbone_weights}:{backbone_input_size(config)}"
            + (f":seed{config.seed}" if config.backbone_weights == "random" else ""))


def with_backbone_features(dataset: Dataset, config: ExperimentConfig) -> Dataset:
    """The dataset with backbone features as the model's inputs (images kept for display)."""
    what = transfer_features_of(config)
    if dataset.features_of == what:
        return dataset
    net = build_backbone(config)
    size = backbone_input_size(config)
    f_pool = backbone_features(unit_images(dataset, dataset.x_pool), net, size, config.backbone)
    f_test = backbone_features(unit_images(dataset, dataset.x_test), net, size, config.backbone)
    for f in (f_pool, f_test):
        f.setflags(write=False)
    return dataclasses.replace(dataset, features_pool=f_pool, features_test=f_test, features_of=what)
