"""A self-supervised encoder trained on the unlabeled pool itself: SimCLR.

Every image is seen as two randomly augmented views; a small CNN encoder ``f`` and a
projection head ``g`` are trained so that the two views of one image are closer to each
other than to the views of every other image in the batch (NT-Xent loss). After training
the projection head is discarded and the encoder's pooled output ``h = f(x)`` is the
image's embedding: no label is ever read.

NT-Xent (normalised temperature-scaled cross-entropy) for a batch of N images, 2N views
with projections ``z_k = g(f(view_k)) / ||g(f(view_k))||`` and ``k+`` the other view of
the same image:

    loss = 1 / (2N) * sum_k  -log( exp(z_k . z_k+ / tau) / sum_{j != k} exp(z_k . z_j / tau) )

Augmentations, chosen for small grayscale and colour images (28x28 digits, 32x32 photos):

* random resized crop: 50-100% of the area, aspect ratio 3/4..4/3 (SimCLR crops down to 8%
  of ImageNet photos; on a 28x28 digit so small a crop often loses the digit), resized back;
* small rotations (up to 15 degrees) and shifts (up to 10% of the side), in the same affine
  map as the crop, empty borders filled with the nearest edge pixel (the background);
* brightness (+-0.2) and contrast (x0.6..1.4) jitter; for colour images also saturation
  jitter (x0.6..1.4) and grayscale with probability 0.2 (SimCLR's colour distortion);
* horizontal flips for colour images only: a photo of a cat or a truck mirrored is still
  one, while a mirrored 2, 3, 7 or letter is not a digit or letter of its class (and for
  grayscale clothing, flips add little the crop does not). No blur: on 28-32 pixel images it
  erases the strokes (SimCLR also leaves it out on CIFAR-10).

Everything random is drawn by stateless TensorFlow ops from ``(seed, step)`` and numpy
generators seeded from ``seed``, and weights start from seeded initializers, so the same
pool, settings and seed give the same encoder on the same machine and thread count.
One training step (both views, encoder, loss, gradients, Adam update) is one compiled
TensorFlow graph (not XLA: its CPU convolutions are far slower, see training.py).

Reference: Chen, T., Kornblith, S., Norouzi, M. & Hinton, G. (2020). A Simple Framework
for Contrastive Learning of Visual Representations. ICML.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

TEMPERATURE = 0.5  # tau: SimCLR's best for small batches (their Table 5 / CIFAR-10 appendix)
BATCH = 256  # images per step (512 views): the negatives each view is contrasted with
LEARNING_RATE = 2e-3  # Adam, cosine-decayed to 0 over the run
PROJECTION_DIM = 64  # output of the projection head g (discarded after training)
CROP_AREA = (0.5, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
MAX_ROTATION_DEG = 15.0
MAX_SHIFT = 0.1
BRIGHTNESS = 0.2
CONTRAST = (0.6, 1.4)
SATURATION = (0.6, 1.4)
GRAYSCALE_P = 0.2
EMBED_CHUNK = 1024
# Encoder widths: four 3x3 convolutions, two of them with stride 2, then global average
# pooling. The last convolution has embedding_dim channels, the width of h.
WIDTHS = (16, 32, 64)
STRIDES = (1, 2, 2, 2)


@dataclass(frozen=True)
class EncoderProgress:
    """Where the encoder's training is: steps done of all, the last step's loss."""

    step: int
    steps: int
    loss: float
    seconds: float

    @property
    def fraction(self) -> float:
        return self.step / self.steps if self.steps else 1.0


@dataclass(frozen=True)
class EncoderReport:
    steps: int
    batch: int
    epochs: float  # passes over the pool the steps made
    seconds: float
    losses: tuple[float, ...]  # mean NT-Xent loss of each tenth of the steps
    parameters: int  # the encoder's (the projection head's not counted: it is discarded)


def encoder_batch(n_images: int) -> int:
    """Images per step: BATCH, or the whole pool where it is smaller."""
    return min(BATCH, n_images)


def encoder_parameters(image_shape, embedding_dim: int) -> int:
    """Weights of the encoder f (convolutions and batch-norm scales and shifts), counted."""
    c = int(image_shape[-1])
    total = 0
    for width in WIDTHS + (embedding_dim,):
        total += 9 * c * width + width + 4 * width  # kernel, bias, BN gamma/beta/mean/variance
        c = width
    return total


def build_encoder(image_shape, embedding_dim: int, seed: int):
    """(encoder f, projection head g): f maps images in [0, 1] to h (embedding_dim numbers),
    g maps h to the PROJECTION_DIM numbers the loss compares. Weights drawn from ``seed``."""
    from alcore._tf import keras
    from keras import layers

    counter = iter(range(1, 1000))

    def init():
        return keras.initializers.HeNormal(seed=seed * 7919 + next(counter))

    inputs = keras.Input(shape=tuple(int(s) for s in image_shape), name="image")
    x = inputs
    for i, (width, stride) in enumerate(zip(WIDTHS + (embedding_dim,), STRIDES)):
        x = layers.Conv2D(width, 3, strides=stride, padding="same", kernel_initializer=init(), name=f"conv_{i + 1}")(x)
        x = layers.BatchNormalization(name=f"bn_{i + 1}")(x)
        x = layers.ReLU(name=f"relu_{i + 1}")(x)
    h = layers.GlobalAveragePooling2D(name="embedding")(x)
    encoder = keras.Model(inputs, h, name="simclr_encoder")
    h_in = keras.Input(shape=(embedding_dim,), name="h")
    z = layers.Dense(embedding_dim, activation="relu", kernel_initializer=init(), name="projection_1")(h_in)
    z = layers.Dense(PROJECTION_DIM, kernel_initializer=init(), name="projection_2")(z)
    return encoder, keras.Model(h_in, z, name="simclr_projection")


def augment(images, seed):
    """One random view of each image (batch, H, W, C) in [0, 1]; ``seed``: int32 tensor (2,)."""
    from alcore._tf import tf

    shape = tf.shape(images)
    n, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    colour = images.shape[-1] == 3

    def uniform(k, low, high):
        return tf.random.stateless_uniform([n], seed=seed + [0, k], minval=low, maxval=high)

    # One affine map per image, from output pixels to input pixels: input = centre + M (out - centre)
    # + shift, with M = rotation . diag(crop width, crop height) (. mirror).
    area = uniform(1, *CROP_AREA)
    log_ratio = uniform(2, math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    ratio = tf.exp(log_ratio)
    cw = tf.minimum(tf.sqrt(area * ratio), 1.0)
    ch = tf.minimum(tf.sqrt(area / ratio), 1.0)
    theta = uniform(3, -MAX_ROTATION_DEG, MAX_ROTATION_DEG) * (math.pi / 180.0)
    # the crop may sit anywhere inside the image, plus a small shift beyond
    tx = uniform(4, -1.0, 1.0) * ((1.0 - cw) / 2.0 + MAX_SHIFT) * w
    ty = uniform(5, -1.0, 1.0) * ((1.0 - ch) / 2.0 + MAX_SHIFT) * h
    sx = cw
    if colour:
        sx = sx * tf.where(uniform(6, 0.0, 1.0) < 0.5, -1.0, 1.0)
    cos, sin = tf.cos(theta), tf.sin(theta)
    m00, m01, m10, m11 = cos * sx, -sin * ch, sin * sx, cos * ch
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    a2 = cx + tx - m00 * cx - m01 * cy
    b2 = cy + ty - m10 * cx - m11 * cy
    zeros = tf.zeros_like(m00)
    transforms = tf.stack([m00, m01, a2, m10, m11, b2, zeros, zeros], axis=1)
    x = tf.raw_ops.ImageProjectiveTransformV3(images=images, transforms=transforms, output_shape=shape[1:3],
                                              fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
    # brightness and contrast (around each image's mean)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    contrast = tf.reshape(uniform(7, *CONTRAST), [-1, 1, 1, 1])
    bright = tf.reshape(uniform(8, -BRIGHTNESS, BRIGHTNESS), [-1, 1, 1, 1])
    x = (x - mean) * contrast + mean + bright
    if colour:
        gray = tf.reduce_mean(x, axis=3, keepdims=True)
        sat = tf.reshape(uniform(9, *SATURATION), [-1, 1, 1, 1])
        sat = tf.where(tf.reshape(uniform(10, 0.0, 1.0), [-1, 1, 1, 1]) < GRAYSCALE_P, 0.0, sat)
        x = gray + (x - gray) * sat
    return tf.clip_by_value(x, 0.0, 1.0)


def nt_xent(z1, z2, temperature: float = TEMPERATURE):
    """The NT-Xent loss of the module docstring for the projections of two views (N, d) each."""
    from alcore._tf import tf

    z = tf.math.l2_normalize(tf.concat([z1, z2], axis=0), axis=1)
    n = tf.shape(z1)[0]
    logits = tf.matmul(z, z, transpose_b=True) / temperature
    logits = logits - tf.eye(2 * n) * 1e9  # a view is not its own negative
    positives = tf.concat([tf.range(n, 2 * n), tf.range(0, n)], axis=0)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=positives, logits=logits))


def train_encoder(images01: np.ndarray, embedding_dim: int, steps: int, seed: int,
                  progress: Optional[Callable[[EncoderProgress], None]] = None,
                  report_seconds: float = 0.5, temperature: float = TEMPERATURE):
    """Train SimCLR on ``images01`` (N, H, W, C) in [0, 1] for ``steps`` steps of
    :func:`encoder_batch` images (the pool is shuffled each pass, the last partial batch of a
    pass left out); (encoder f, :class:`EncoderReport`).

    ``temperature``: the NT-Xent tau (TEMPERATURE by default; the embedding cache's key records
    TEMPERATURE, so the engine always trains with it: other values are for studies such as
    ``bench/tune_encoder_temperature.py``).

    ``progress`` is called after the first step, then at most every ``report_seconds``, and
    after the last step; it may raise to abandon the training (nothing is kept)."""
    from alcore._tf import keras, tf

    x_all = np.asarray(images01, dtype=np.float32)
    n = len(x_all)
    if n < 2:
        raise ValueError(f"self-supervised training needs at least 2 pool images, got {n}")
    if steps < 1:
        raise ValueError(f"self-supervised training needs at least 1 step, got {steps}")
    if not temperature > 0:
        raise ValueError(f"the NT-Xent temperature must be above 0, got {temperature}")
    batch = encoder_batch(n)
    per_pass = n // batch
    encoder, head = build_encoder(x_all.shape[1:], embedding_dim, seed)
    schedule = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, decay_steps=steps)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    variables = encoder.trainable_variables + head.trainable_variables
    optimizer.build(variables)

    @tf.function(input_signature=[tf.TensorSpec((batch,) + x_all.shape[1:], tf.float32),
                                  tf.TensorSpec((2,), tf.int32)])
    def train_step(x, step_seed):
        v1 = augment(x, step_seed)
        v2 = augment(x, step_seed + [0, 1000])
        with tf.GradientTape() as tape:
            h = encoder(tf.concat([v1, v2], axis=0), training=True)
            z = head(h, training=True)
            loss = nt_xent(z[:batch], z[batch:], temperature)
        grads = tape.gradient(loss, variables)
        optimizer.apply(grads, variables)
        return loss

    rng = np.random.default_rng([seed, 5021])
    t0 = last = time.perf_counter()
    losses = np.zeros(steps)
    order = rng.permutation(n)
    for step in range(steps):
        b = step % per_pass
        if b == 0 and step:
            order = rng.permutation(n)
        idx = np.sort(order[b * batch:(b + 1) * batch])
        losses[step] = float(train_step(x_all[idx], np.array([seed % (2**31 - 1), step * 7 + 1], np.int32)))
        now = time.perf_counter()
        if progress is not None and (step == 0 or step == steps - 1 or now - last >= report_seconds):
            last = now
            progress(EncoderProgress(step + 1, steps, float(losses[step]), now - t0))
    report = EncoderReport(steps=steps, batch=batch, epochs=steps * batch / n, seconds=time.perf_counter() - t0,
                           losses=tuple(float(part.mean()) for part in np.array_split(losses, min(10, steps))),
                           parameters=int(encoder.count_params()))
    return encoder, report


def embed(encoder, images01: np.ndarray) -> np.ndarray:
    """The encoder's h for every image, (N, embedding_dim) float32, in chunks of EMBED_CHUNK."""
    from alcore._tf import tf

    x = np.asarray(images01, dtype=np.float32)
    fn = tf.function(lambda b: encoder(b, training=False),
                     input_signature=[tf.TensorSpec((None,) + x.shape[1:], tf.float32)])
    out = [fn(x[i:i + EMBED_CHUNK]).numpy() for i in range(0, len(x), EMBED_CHUNK)]
    width = encoder.output.shape[-1]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, width), np.float32)
