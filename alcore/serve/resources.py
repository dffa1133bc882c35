"""What a run costs, computed from its config and the shape of its data before anything is
built or loaded: no TensorFlow, no arrays, only arithmetic on the settings and on the
headers of a user's file.

Each quantity is the one :class:`alcore.serve.limits.DeploymentLimits` caps:

* parameters of the model (softmax, mlp, cnn, the transfer model's head), as Keras counts
  them (weights and biases of every Dense and Conv2D layer);
* activation memory: float32 values of every layer's output for one training mini-batch,
  twice (their gradients), or for one prediction chunk (4 096 images, two adjacent layers
  alive at once), whichever is larger, plus the weights with their gradients and Adam's two
  slots; for ``transfer`` also the backbone's features of a 256-image chunk (MobileNetV2:
  its widest layers are 96-192 channels at half the image size);
* gradient steps per round: epochs x mini-batches at the most labels the run reaches
  (the step schedule of validation 'none', or max_epochs with early stopping, doubled by
  its refit);
* images scored per round to pick: candidates (or the whole unlabeled pool) times the
  stochastic passes of bald / var_ratios / mean_std;
* classes, pool and test images, and the bytes of the prepared arrays (float32 pool and
  test images, and the transfer model's features or the embedding), once per seed that draws
  its own pool;
* for a ``self_supervised`` embedding, the SimCLR encoder's training: its steps
  (``encoder_steps``), its parameters (encoder and projection head) and its memory (every
  layer's output for both views of a 256-image batch, with their gradients, plus the weights
  with Adam's slots); for ``pretrained``, the backbone's memory on one chunk;
* bytes a user's ``.npz`` unpacks to (its .npy headers, read without loading);
* bytes of the JSON result file a run writes (an upper bound; see :func:`result_file_bytes`).

These are estimates of the largest allocations, sized to refuse a setting that is orders
of magnitude too large, not a measurement: TensorFlow's own overhead comes on top.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from alcore.config import FIXED_SPLIT_DATASETS, ExperimentConfig
from alcore.strategies.base import STRATEGIES, Need

PREDICT_CHUNK = 4096  # alcore.engine.training.PREDICT_CHUNK (images scored per call)
BACKBONE_CHUNK = 256  # alcore.engine.transfer.CHUNK
FEATURE_DIMS = {"mobilenet_v2": 1280, "dinov2_small": 384}  # alcore.engine.transfer.FEATURE_DIMS
BACKBONE_CHANNELS = 192  # two adjacent layers at half the input size (96 channels each)
# DINOv2 ViT-S/14: 22.6 million weights; per token the widest activations are its MLP's 1536
# numbers beside the 384 of the stream, and 6 heads of attention over every pair of tokens.
DINOV2_PARAMETERS = 22_582_656
DINOV2_PATCH, DINOV2_WIDTH, DINOV2_MLP, DINOV2_HEADS = 14, 384, 1536, 6
# The SimCLR encoder (alcore.engine.simclr): WIDTHS, STRIDES, BATCH, PROJECTION_DIM there.
ENCODER_WIDTHS = (16, 32, 64)
ENCODER_STRIDES = (1, 2, 2, 2)
ENCODER_BATCH = 256
PROJECTION_DIM = 64
ENCODER_COPIES_PER_LAYER = 3  # convolution, batch-norm and ReLU outputs are each kept for the backward pass
FLOAT = 4  # bytes of a float32
LABEL_READ_BYTES = 64 * 2**20  # labels read to count the classes of a .npz without names
OPTIMIZER_COPIES = 4  # weights, gradients and Adam's two moments
# Result-file JSON as to_json writes it (indent 1): bytes per number at the depth of the
# round's lists, per gallery image, per round's fixed fields, and for the rest of the file.
_NUMBER_BYTES = 32
_GALLERY_BYTES = 320
_ROUND_BYTES = 2_500
_HEADER_BYTES = 24_000  # config, environment, dataset source (up to 10 000 characters)


@dataclass(frozen=True)
class DataShape:
    """What the costs depend on about a dataset: its image shape, classes, and the sizes
    of its splits (``n_test`` None: no test split, 20% or ``test_size`` is held out of the
    training split). ``file_bytes``: what a user's file unpacks to (None for the others)."""

    image_shape: tuple[int, ...]
    n_classes: Optional[int]  # None: not known without reading more than the headers
    n_train: int
    n_test: Optional[int]
    file_bytes: Optional[int] = None
    usable: bool = True  # False: images of no shape the loader takes (only file_bytes counts)

    @property
    def pixels(self) -> int:
        return math.prod(self.image_shape)

    def test_images(self, config: ExperimentConfig) -> int:
        """Test images a run evaluates every round."""
        if self.n_test is None:
            return config.test_size if config.test_size is not None else max(1, round(0.2 * self.n_train))
        return min(config.test_size, self.n_test) if config.test_size is not None else self.n_test

    def pool_images(self, config: ExperimentConfig) -> int:
        whole = self.n_train if self.n_test is not None else max(self.n_train - self.test_images(config), 0)
        return min(config.pool_size, whole) if config.pool_size is not None else whole


# The published datasets, as their loaders give them.
KNOWN_SHAPES = {
    "digits": DataShape((8, 8, 1), 10, 1797, None),
    "mnist": DataShape((28, 28, 1), 10, 60_000, 10_000),
    "fashion_mnist": DataShape((28, 28, 1), 10, 60_000, 10_000),
    "cifar10": DataShape((32, 32, 3), 10, 50_000, 10_000),
}


def data_shape(config: ExperimentConfig) -> Optional[DataShape]:
    """The shape of the config's data where it is known without loading images: the
    published datasets, and a user's ``.npz`` (its headers, and its labels to count the
    classes). None where it is not (an idx folder, a file missing or damaged: the loader
    says why)."""
    if config.dataset in KNOWN_SHAPES:
        return KNOWN_SHAPES[config.dataset]
    if config.dataset == "npz" and config.data_file:
        try:
            st = Path(config.data_file).stat()
        except OSError:
            return None
        return _npz_shape(config.data_file, st.st_size, st.st_mtime_ns)
    return None


_NPZ_SHAPES: dict[tuple, Optional[DataShape]] = {}


def npz_file_bytes(headers: dict) -> int:
    """Bytes the arrays of a .npz unpack to, from :func:`alcore.data.datasets.npz_headers`."""
    return sum(math.prod(shape) * dtype.itemsize for shape, dtype in headers.values())


def _npz_shape(path: str, size: int, mtime: int) -> Optional[DataShape]:
    key = (path, size, mtime)
    if key not in _NPZ_SHAPES:
        if len(_NPZ_SHAPES) > 64:
            _NPZ_SHAPES.clear()
        _NPZ_SHAPES[key] = _read_npz_shape(path)
    return _NPZ_SHAPES[key]


def _read_npz_shape(path: str) -> Optional[DataShape]:
    try:
        return npz_shape(path)
    except (OSError, ValueError):
        return None


def npz_shape(source, name: Optional[str] = None) -> DataShape:
    """The :class:`DataShape` of a user's ``.npz`` from its headers (and its labels, to count
    the classes, when they are small): ``source`` its path or its bytes (an upload not yet
    kept anywhere; ``name`` for messages). Raises :class:`alcore.data.datasets.DatasetFileError`
    (a ValueError) naming a file that is not a usable .npz."""
    from alcore.data.datasets import npz_headers

    headers = npz_headers(source, name)
    shape = headers["x_train"][0]
    if len(shape) not in (3, 4) or shape[0] < 1:  # the loader says what is wrong; its size still counts
        return DataShape((), None, shape[0] if shape else 0, None, file_bytes=npz_file_bytes(headers), usable=False)
    image = tuple(shape[1:]) + ((1,) if len(shape) == 3 else ())
    test = headers.get("x_test")
    labels = sum(math.prod(headers[k][0]) * headers[k][1].itemsize for k in ("y_train", "y_test") if k in headers)
    classes = None
    if "class_names" in headers:
        classes = int(headers["class_names"][0][0]) if len(headers["class_names"][0]) == 1 else None
    elif labels <= LABEL_READ_BYTES:
        classes = _count_labels(source, name)
    return DataShape(image, classes, int(shape[0]), int(test[0][0]) if test and test[0] else None,
                     file_bytes=npz_file_bytes(headers))


def _count_labels(source, name: Optional[str] = None) -> Optional[int]:
    """Distinct labels of a user's ``.npz`` (train and test), the classes it has without
    class names (the loader renumbers any other set of numbers to 0..K-1)."""
    import numpy as np

    from alcore.data.datasets import npz_arrays

    try:
        arrays = npz_arrays(source, ["y_train", "y_test"], name)
        return int(len(np.unique(np.concatenate([np.asarray(a).reshape(-1) for a in arrays.values()]))))
    except (OSError, TypeError, ValueError):
        return None


# -------------------------------------------------------------------- the embedding

def embedding_width(config: ExperimentConfig) -> Optional[int]:
    """Numbers per image of the config's embedding (None for pixels, or a file whose headers
    cannot be read: its loader says why)."""
    if config.embedding == "self_supervised":
        return config.embedding_dim
    if config.embedding == "pretrained":
        return FEATURE_DIMS[config.backbone]
    if config.embedding == "file" and config.embedding_file:
        from alcore.data.datasets import EMBEDDING_NPZ_KINDS, npz_headers

        try:
            shape = npz_headers(config.embedding_file, kinds=EMBEDDING_NPZ_KINDS, required=("train",))["train"][0]
        except (OSError, ValueError):
            return None
        return int(shape[1]) if len(shape) == 2 else None
    return None


@dataclass(frozen=True)
class EncoderCost:
    parameters: int  # trained: the encoder's and the projection head's
    memory_bytes: int  # training (both views of a batch) or, for a backbone, one chunk
    steps: int  # gradient steps (0 for a frozen backbone)


def encoder_cost(config: ExperimentConfig, image_shape: Sequence[int]) -> Optional[EncoderCost]:
    """What computing the config's embedding costs (None where nothing is trained or run):
    the SimCLR encoder's training for ``self_supervised``, the frozen backbone for ``pretrained``."""
    h, w, c = (tuple(int(s) for s in image_shape) + (1, 1, 1))[:3]
    if config.embedding == "pretrained":
        return EncoderCost(0, backbone_bytes(config), 0)
    if config.embedding != "self_supervised":
        return None
    params, sizes, width = 0, [], c
    for out, stride in zip(ENCODER_WIDTHS + (config.embedding_dim,), ENCODER_STRIDES):
        h, w = -(-h // stride), -(-w // stride)
        params += 9 * width * out + out + 2 * out  # kernel, bias, batch-norm scale and shift
        sizes.append(h * w * out * ENCODER_COPIES_PER_LAYER)
        width = out
    d = config.embedding_dim
    params += d * d + d + d * PROJECTION_DIM + PROJECTION_DIM
    views = 2 * ENCODER_BATCH
    per_view = sum(sizes) + 2 * math.prod(image_shape) + d + PROJECTION_DIM  # + the two augmented images
    memory = views * per_view * 2 * FLOAT + params * OPTIMIZER_COPIES * FLOAT + views * views * 2 * FLOAT
    return EncoderCost(int(params), int(memory), int(config.encoder_steps))


def backbone_bytes(config: ExperimentConfig) -> int:
    """Memory of a frozen backbone on one BACKBONE_CHUNK of images: its weights and its widest
    activations (MobileNetV2: two adjacent layers at half the input size; DINOv2: its MLP and
    the attention of every pair of tokens)."""
    s = config.backbone_size
    if config.backbone == "dinov2_small":
        side = max(DINOV2_PATCH, DINOV2_PATCH * round(s / DINOV2_PATCH))
        tokens = (side // DINOV2_PATCH) ** 2 + 1
        per_image = tokens * (DINOV2_MLP + 2 * DINOV2_WIDTH) + DINOV2_HEADS * tokens * tokens + side * side * 3
        return BACKBONE_CHUNK * per_image * FLOAT + DINOV2_PARAMETERS * FLOAT
    return BACKBONE_CHUNK * ((s // 2) ** 2 * BACKBONE_CHANNELS + s * s * 3) * FLOAT


# ------------------------------------------------------------------------ the model

@dataclass(frozen=True)
class ModelCost:
    parameters: int
    memory_bytes: int  # the largest of training, prediction and backbone memory (see module)
    problem: Optional[str] = None  # the model cannot be built for these images at all


def _dense_stack(inputs: int, hidden: Sequence[int], n_classes: int, dropout: bool) -> tuple[int, list[int]]:
    """(parameters, layer output sizes per image) of Dense layers from ``inputs`` to the classes."""
    params, sizes, width = 0, [inputs], inputs
    for units in hidden:
        params += width * units + units
        sizes += [units, units] if dropout else [units]
        width = units
    return params + width * n_classes + n_classes, sizes + [n_classes]


def model_cost(config: ExperimentConfig, image_shape: Sequence[int], n_classes: int) -> ModelCost:
    """Parameters and activation memory of the config's model on images of ``image_shape``
    (height, width, channels) with ``n_classes`` classes, by arithmetic alone."""
    image_shape = tuple(int(s) for s in image_shape)
    width = embedding_width(config) if config.model != "transfer" else None
    if width is not None:  # softmax / mlp read the embedding, a vector per image
        image_shape = (width,)
    d = math.prod(image_shape)
    augment = config.model in ("mlp", "cnn") and width is None and bool(
        config.augment_shift or config.augment_rotation or config.augment_zoom)
    extra = [d] * (bool(config.augment_shift) + bool(config.augment_rotation) + bool(config.augment_zoom)) \
        if augment else []
    backbone = 0
    if config.model == "softmax":
        params, sizes = _dense_stack(d, (), n_classes, False)
    elif config.model in ("mlp", "transfer"):
        params, sizes = _dense_stack(d, config.hidden_units, n_classes, config.dropout > 0)
        if config.model == "transfer":
            inputs = FEATURE_DIMS[config.backbone]
            params, sizes = _dense_stack(inputs, config.hidden_units, n_classes, config.dropout > 0)
            backbone = backbone_bytes(config)
    else:
        h, w, c = (image_shape + (1, 1, 1))[:3]
        k, f = config.kernel_size, config.filters
        if min(h, w) < 2 * k:
            return ModelCost(0, 0, f"cnn with kernel_size {k} needs images of at least {2 * k}x{2 * k} pixels, "
                                   f"these are {h}x{w}")
        h1, w1 = h - k + 1, w - k + 1
        h2, w2 = h1 - k + 1, w1 - k + 1
        pooled = (h2 // 2) * (w2 // 2) * f
        conv = (k * k * c * f + f) + (k * k * f * f + f)
        dense_dropout = config.dropout if config.dense_dropout is None else config.dense_dropout
        dense, tail = _dense_stack(pooled, (128,), n_classes, dense_dropout > 0)
        params = conv + dense
        sizes = [d, h1 * w1 * f, h2 * w2 * f, pooled] + ([pooled] if config.dropout > 0 else []) + tail[1:]
    sizes = extra + sizes
    training = config.train_batch_size * sum(sizes) * 2 * FLOAT + params * OPTIMIZER_COPIES * FLOAT
    predicting = PREDICT_CHUNK * max(a + b for a, b in zip(sizes, sizes[1:])) * FLOAT + params * FLOAT
    return ModelCost(int(params), int(max(training, predicting, backbone)))


# ---------------------------------------------------------------------- the training

def steps_per_round(config: ExperimentConfig) -> Optional[int]:
    """Most gradient steps one round makes (at the most labels the run reaches); 0 for
    softmax (fitted by L-BFGS, no mini-batches); None when nothing bounds the labels."""
    if config.model == "softmax":
        return 0
    labels = config.max_labels()
    if labels is None:
        return None
    per_epoch = -(-labels // config.train_batch_size)
    if config.validation == "none":
        steps = max(config.max_epochs * per_epoch, config.min_steps)
        return min(steps, config.max_steps) if config.max_steps is not None else steps
    return config.max_epochs * per_epoch * (2 if config.refit else 1)


def ceiling_steps_per_round(config: ExperimentConfig, candidates: int) -> int:
    """Most gradient steps one round of the oracle ceiling makes: its own model and one per
    candidate batch (``candidates``, K), each trained as a round is (0 for softmax)."""
    return (candidates + 1) * (steps_per_round(config) or 0)


def scored_per_round(config: ExperimentConfig, strategies: Sequence[str], pool_images: int,
                     test_images: int = 0) -> int:
    """Images run through the model each round besides training: the candidates (or the
    whole unlabeled pool) times the passes of the stochastic strategies raced, and with
    ``mc_evaluation`` the test images times mc_passes (one pass each otherwise, not counted)."""
    candidates = min(config.candidates, pool_images) if config.candidates is not None else pool_images
    passes = config.mc_passes if any(Need.MC_PASSES in STRATEGIES[s].needs for s in strategies
                                     if s in STRATEGIES) else 1
    return candidates * passes + (test_images * config.mc_passes if config.mc_evaluation else 0)


def dataset_bytes(config: ExperimentConfig, shape: DataShape) -> int:
    """Bytes of one prepared copy of the data: float32 pool and test images, and for
    transfer their backbone features, or the embedding the model reads."""
    images = shape.pool_images(config) + shape.test_images(config)
    extra = FEATURE_DIMS[config.backbone] if config.model == "transfer" else (embedding_width(config) or 0)
    per_image = shape.pixels + extra
    return images * per_image * FLOAT


def dataset_copies(config: ExperimentConfig, seeds: int) -> int:
    """Prepared copies a race of ``seeds`` seeds holds: one per seed when the seed draws the
    pool or the test set (ExperimentConfig.data_key), else one shared."""
    draws = (config.pool_size is not None or config.test_size is not None
             or config.dataset not in FIXED_SPLIT_DATASETS)
    return max(seeds, 1) if draws else 1


def result_file_bytes(config: ExperimentConfig, shape: DataShape, rounds: int) -> int:
    """An upper bound on the JSON result file of one run of ``rounds`` acquisition rounds
    (``rounds + 1`` records): per round its picks (three numbers each), its two galleries
    and its confusion matrix (whole up to records.DENSE_CONFUSION_MAX_CLASSES classes, else
    at most one nonzero cell per test image), plus the initial labels and the class names."""
    from alcore.data.datasets import MAX_CLASS_NAME_CHARS
    from alcore.results.records import DENSE_CONFUSION_MAX_CLASSES

    k, n_test = shape.n_classes, shape.test_images(config)
    cells = k * k if k <= DENSE_CONFUSION_MAX_CLASSES else 3 * min(k * k, n_test)
    per_round = (_ROUND_BYTES + 3 * config.batch_size * _NUMBER_BYTES + 2 * config.inspect_k * _GALLERY_BYTES
                 + cells * _NUMBER_BYTES)
    labels = config.first_round_labels()
    names = k * (6 * MAX_CLASS_NAME_CHARS + 10)  # each character escaped at worst
    return _HEADER_BYTES + labels * _NUMBER_BYTES + names + (rounds + 1) * per_round
