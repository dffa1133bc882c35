"""The one configuration object of an active-learning run.

Every field name here is the name used everywhere else: the CLI flag is the field
with dashes (``batch_size`` -> ``--batch-size``), the JSON result file stores the
config under these keys, and the dashboard labels its widgets after them.

pydantic validates on construction; its ``ValidationError`` is a ``ValueError``
whose message names the field, the value and what is allowed.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "idx", "npz", "images")
MODELS = ("softmax", "mlp", "cnn", "transfer")
EMBEDDINGS = ("pixels", "self_supervised", "pretrained", "file")
BACKBONES = ("mobilenet_v2", "dinov2_small")
# The models that can read an embedding (a vector per image) instead of the images.
EMBEDDING_MODELS = ("softmax", "mlp")
NORMALIZATIONS = ("unit", "standardize", "none")
VALIDATIONS = ("split", "fixed", "none")
OPTIMIZERS = ("adam", "sgd")
ACTIVATIONS = ("relu", "sigmoid", "tanh")
INITIAL_STRATEGIES = ("random", "kmeans", "typiclust", "balanced", "strategy")


# Fewest validation images early stopping may watch (mlp / cnn / transfer). A validation
# accuracy near 80% measured on n images has a standard error of sqrt(0.16 / n): 28 points
# on 2 images (20% of 10 labels), 5.7 on 50; below 50 one image moves it by more than 2
# points, more than the epochs it compares differ by, so the epoch it picks is noise.
MIN_VALIDATION = 50

# Fields added after result files began (schema_version 1), and what a file made before
# them did, which is not always today's default: such a file trained without augmentation,
# weight decay or a step schedule, and loading it must say so (alcore.results.records).
BEFORE_FIELD_EXISTED = {
    "kernel_size": 3, "dense_dropout": None, "augment_shift": 0.0, "augment_rotation": 0.0,
    "augment_zoom": 0.0, "min_steps": 0, "max_steps": None, "weight_decay": 0.0, "embedding": "pixels",
}

# Datasets that ship their own test split (prepare() draws nothing from the seed for
# them unless pool_size or test_size asks for a subset).
FIXED_SPLIT_DATASETS = ("mnist", "fashion_mnist", "cifar10")
# The datasets read from a user's file (data_file); image_size applies to 'images' alone.
FILE_DATASETS = ("npz", "images")
IMAGE_SIZE_DEFAULT = 32
# The datasets read from a folder (data_dir) when given one.
DATA_DIR_DATASETS = ("mnist", "fashion_mnist", "idx")


def check_model_has_dropout(what: str, config) -> None:
    """ValueError naming the fix when ``config``'s model would give identical stochastic passes
    (``what`` names who asks for them: "strategy 'bald'", "mc_evaluation")."""
    model = getattr(config, "model", None)
    dropout = getattr(config, "dropout", 0.0)
    if model == "cnn" and getattr(config, "dense_dropout", None) is not None:
        dropout = max(dropout, config.dense_dropout)  # either of the cnn's two dropout layers will do
    if model not in ("mlp", "cnn") or not dropout > 0:
        which = f"model {model!r}" if model not in ("mlp", "cnn") else f"model {model!r} with dropout {dropout}"
        raise ValueError(f"{what} needs stochastic forward passes, but {which} has no "
                         f"dropout, so every pass would agree: choose mlp or cnn with dropout > 0")

class ExperimentConfig(BaseModel):
    """Everything that decides a run. Same config (seed included) -> same picks."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), allow_inf_nan=False)

    # -- data -----------------------------------------------------------------------
    dataset: Literal["digits", "mnist", "fashion_mnist", "cifar10", "idx", "npz", "images"] = Field(
        "digits", description="Dataset: bundled scikit-learn digits, a Keras dataset, "
        "a folder of MNIST-format idx files ('idx'), your own .npz file ('npz'), or your own "
        "images ('images': a .zip of JPEG / PNG / BMP / WebP files)."
    )
    data_dir: Optional[str] = Field(
        None, description="Folder of idx files for 'idx', or where to find 'mnist' / "
        "'fashion_mnist' offline (the idx folder itself or its parent). "
        "Defaults to $ALCORE_DATA_DIR."
    )
    data_file: Optional[str] = Field(
        None, description="Path of the .npz file for dataset 'npz' (x_train, y_train, "
        "optional x_test, y_test, class_names), or of the .zip of images (or a folder of "
        "them) for dataset 'images'."
    )
    image_size: int = Field(
        IMAGE_SIZE_DEFAULT, ge=8, le=256, description="images: each image is scaled so its longer "
        "side is this many pixels (aspect ratio kept) and centred on a square of its border colour."
    )
    pool_size: Optional[int] = Field(
        None, ge=1, description="Random subsample of the training split used as the "
        "unlabeled pool (empty: the whole split)."
    )
    test_size: Optional[int] = Field(
        None, ge=1, description="Test images used for reporting (empty: the dataset's "
        "whole test split; datasets without one hold out 20%)."
    )
    normalization: Literal["unit", "standardize", "none"] = Field(
        "unit", description="Pixel scaling: 'unit' divides by the maximum pixel value "
        "(to [0, 1]), 'standardize' subtracts the pool mean and divides by its std, "
        "'none' keeps raw values."
    )

    # -- labels ---------------------------------------------------------------------
    initial: int = Field(10, ge=1, description="Number of initial labels.")
    initial_strategy: Literal["random", "kmeans", "typiclust", "balanced", "strategy"] = Field(
        "random", description="Cold start: the initial labels picked at random; as the "
        "pool images nearest the centres of k-means clusters of the pool (k = initial; "
        "no label is looked at); 'typiclust': the most typical image (closest to its 20 nearest "
        "neighbours) of each of k-means' initial clusters of the pool, largest cluster first (no "
        "label is looked at; Hacohen et al. 2022); or 'balanced': at random within each class, the same number "
        "per class (initial / classes, the remainder to classes drawn at random). 'balanced' "
        "looks at the pool's labels, as published protocols do (Gal et al. 2017 start from 2 "
        "per class); a real cold start cannot. 'strategy': the run's own strategy picks the "
        "initial labels where it can without a model (the coverage strategies: typiclust, "
        "probcover, maxherding, uherding, as their papers start from no label), at random "
        "otherwise (random, and uncertainty with no model yet)."
    )
    validation: Literal["split", "fixed", "none"] = Field(
        "none", description="What early stopping watches: 'none' (the default) trains a "
        "fixed schedule with no early stopping (max_epochs, kept within min_steps..max_steps "
        "gradient steps for mlp / cnn / transfer); 'split' carves validation_fraction of the "
        "labeled set each round; 'fixed' labels validation_size extra pool images once (they "
        "count against the label budget). For mlp / cnn / transfer, early stopping on fewer "
        f"than {MIN_VALIDATION} validation images is refused when a run starts: on so few "
        "images the epoch it picks is noise. The test set is never used. softmax needs none: it "
        "trains on every label."
    )
    refit: bool = Field(
        True, description="After early stopping has chosen the number of epochs, train "
        "again from the start on every labeled image (validation ones included) for "
        "that many epochs, so no label is wasted on validation alone."
    )
    validation_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="Share of the labeled set held out each "
        "round when validation is 'split'."
    )
    validation_size: int = Field(
        100, ge=1, description="Size of the fixed labeled validation set when "
        "validation is 'fixed'."
    )

    # -- model ----------------------------------------------------------------------
    model: Literal["softmax", "mlp", "cnn", "transfer"] = Field(
        "softmax", description="softmax: multinomial logistic regression fitted to convergence "
        "(L-BFGS) every round; mlp: Dense hidden layers; "
        "cnn: Conv-Conv-Pool-Dropout-Dense(128)-Dropout-Dense; transfer: a frozen pretrained "
        "backbone's features (computed once; see backbone) and a dense head like mlp's."
    )
    penalty_c: float = Field(
        1.0, gt=0.0, le=1e6, description="softmax: inverse strength C of the L2 penalty, as in "
        "scikit-learn's LogisticRegression (minimises the summed cross-entropy plus ||W||^2 / (2C)); "
        "the default was chosen on development splits of training data."
    )
    penalty_cv: bool = Field(
        False, description="softmax: choose C each round by 5-fold cross-validation on the labeled "
        "set among penalty_c x 0.1, 0.3, 1, 3, 10 (from 20 labels on)."
    )
    embedding: Literal["pixels", "self_supervised", "pretrained", "file"] = Field(
        "pixels", description="What softmax / mlp read for each image: its pixels; 'self_supervised': "
        "the embedding of a small CNN trained on the unlabeled pool itself (SimCLR, no label read; "
        "trained once and kept in the embedding cache); 'pretrained': the features of a frozen "
        "pretrained backbone (downloaded on first use); 'file': your own embeddings from "
        "embedding_file. Strategies that need embeddings get the model's penultimate layer: for "
        "softmax the embedding itself."
    )
    encoder_steps: int = Field(
        1000, ge=1, le=1_000_000, description="self_supervised: gradient steps of SimCLR training, "
        "each on 256 pool images seen twice (the whole pool if smaller): 1 000 steps are about 4 "
        "passes over 60 000 images."
    )
    embedding_dim: int = Field(
        128, ge=8, le=1024, description="self_supervised: numbers per image in the embedding "
        "(channels of the encoder's last convolution)."
    )
    encoder_seed: int = Field(
        0, ge=0, le=2**31 - 1, description="self_supervised: seed of the encoder's training. Apart "
        "from seed, so every seed of a race reads the same embeddings."
    )
    embedding_file: Optional[str] = Field(
        None, description="file: a .npz with 'train' (one row per image of the dataset's training "
        "split, in its order) and 'test' (one row per image of its test split; leave it out for a "
        "dataset without one, whose test images are held out of 'train')."
    )
    backbone: Literal["mobilenet_v2", "dinov2_small"] = Field(
        "mobilenet_v2", description="transfer / pretrained: the frozen backbone: MobileNetV2 "
        "(Keras Applications, supervised on ImageNet, 1280 features) or DINOv2 ViT-S/14 (KerasHub, "
        "self-supervised, 384 features; needs pip install keras-hub)."
    )
    backbone_weights: Literal["imagenet", "random"] = Field(
        "imagenet", description="transfer / pretrained: the backbone's published weights (downloaded "
        "on first use) or deterministic random weights (offline; useless features, for trying the pipeline)."
    )
    backbone_size: int = Field(
        96, ge=32, le=224, description="transfer / pretrained: images are resized to this many pixels "
        "square before the backbone (for dinov2_small, to the nearest multiple of its 14-pixel patches)."
    )
    hidden_units: tuple[int, ...] = Field(
        (128,), description="mlp: units of each hidden Dense layer (comma-separated)."
    )
    activation: Literal["relu", "sigmoid", "tanh"] = Field(
        "relu", description="mlp / transfer: activation of the hidden layers."
    )
    filters: int = Field(32, ge=1, le=512, description="cnn: filters of each Conv2D layer.")
    kernel_size: int = Field(
        3, ge=1, le=15, description="cnn: height and width of each Conv2D kernel (Gal et al. 2017 "
        "use 4)."
    )
    dropout: float = Field(
        0.25, ge=0.0, lt=1.0, description="cnn / mlp / transfer: dropout rate (0 disables dropout); "
        "in the cnn, the rate after its pooling layer."
    )
    dense_dropout: Optional[float] = Field(
        None, ge=0.0, lt=1.0, description="cnn: dropout rate after its Dense(128) layer (empty: the "
        "same as dropout; Gal et al. 2017 use 0.25 after pooling and 0.5 here)."
    )
    mc_evaluation: bool = Field(
        False, description="mlp / cnn: report test accuracy (and loss) from the mean of mc_passes "
        "forward passes with dropout active (MC dropout), instead of one pass with dropout off. "
        "Only what is reported changes; every strategy's picks stay the same."
    )
    augment_shift: float = Field(
        0.0, ge=0.0, le=0.5, description="mlp / cnn: during training, shift each image by up to "
        "this fraction of its height and width at random (0: no shifts). Transfer models never "
        "augment: their inputs are backbone features, not images."
    )
    augment_rotation: float = Field(
        0.0, ge=0.0, le=180.0, description="mlp / cnn: during training, rotate each image by up to "
        "this many degrees either way at random (0: no rotations)."
    )
    augment_zoom: float = Field(
        0.0, ge=0.0, le=0.5, description="mlp / cnn: during training, zoom each image in or out by "
        "up to this fraction at random (0: no zoom)."
    )
    optimizer: Literal["adam", "sgd"] = Field(
        "adam", description="adam, or sgd with momentum."
    )
    learning_rate: float = Field(0.003, gt=0.0, le=10.0, description="Learning rate.")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="sgd: momentum.")
    max_epochs: int = Field(
        50, ge=1, le=10_000, description="Epochs per round when validation is 'none' (for "
        "mlp / cnn / transfer raised or lowered to stay within min_steps..max_steps gradient "
        "steps); the most epochs early stopping may run otherwise."
    )
    min_steps: int = Field(
        200, ge=0, le=100_000, description="mlp / cnn / transfer with validation 'none': fewest "
        "gradient steps (mini-batches) per round. With few labels an epoch is one or two steps, "
        "so max_epochs alone would hardly train; the round runs more epochs until it has made "
        "this many steps (0: exactly max_epochs)."
    )
    max_steps: Optional[int] = Field(
        1000, ge=1, le=1_000_000, description="mlp / cnn / transfer with validation 'none': most "
        "gradient steps per round, so a round on thousands of labels stays short (fewer epochs "
        "than max_epochs then; empty: no cap)."
    )
    train_batch_size: int = Field(
        32, ge=1, le=8192, description="Mini-batch size for training."
    )
    patience: int = Field(
        5, ge=1, description="Early stopping: epochs without a lower validation loss "
        "before training stops (best weights are restored)."
    )
    l2: float = Field(0.0, ge=0.0, description="L2 penalty on kernels: l2 * sum(kernel**2) is "
                      "added to the mean cross-entropy.")
    weight_decay: float = Field(
        0.0, ge=0.0, le=100.0, description="mlp / cnn / transfer: decoupled weight decay (AdamW / "
        "SGDW, Loshchilov & Hutter 2019): after every step each kernel is multiplied by "
        "(1 - learning_rate * weight_decay). Unlike l2 it does not pass through Adam's "
        "per-weight scaling."
    )
    warm_start: bool = Field(
        False, description="Keep the previous round's weights instead of "
        "re-initialising (cold start is the default)."
    )

    # -- acquisition ----------------------------------------------------------------
    strategy: str = Field("margin", description="Query strategy.")
    batch_size: int = Field(10, ge=1, description="Labels acquired per round.")
    hybrid_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="hybrid: share of each batch picked by "
        "hybrid_measure, the rest at random."
    )
    hybrid_measure: Literal["least_confidence", "margin", "ratio", "entropy"] = Field(
        "margin", description="hybrid: the uncertainty measure of its uncertain share."
    )
    mc_passes: int = Field(
        10, ge=2, le=200, description="bald / var_ratios / mean_std: stochastic forward "
        "passes with dropout active (the model needs dropout)."
    )
    margin_cluster_factor: int = Field(
        10, ge=1, le=1000, description="margin_cluster: the batch is spread over k-means "
        "clusters of the margin_cluster_factor x batch_size most uncertain candidates."
    )
    typiclust_neighbors: int = Field(
        20, ge=1, le=1000, description="typiclust: K, the nearest neighbours whose mean distance "
        "defines an image's typicality (Hacohen et al. 2022 use 20; in a cluster of fewer than 2K "
        "unlabeled images, half of them)."
    )
    probcover_radius: Optional[float] = Field(
        None, gt=0.0, le=2.0, description="probcover: radius of the balls around images, on features "
        "scaled to unit length (distances 0-2). Empty: chosen once per run by the purity rule "
        "(Yehuda et al. 2022), the largest radius on a 0.01 grid whose balls hold one k-means "
        "pseudo-label (k = classes) for at least probcover_purity of the images."
    )
    probcover_purity: float = Field(
        0.95, gt=0.0, lt=1.0, description="probcover: the share of pure balls the purity rule "
        "asks for when it chooses the radius (the paper's alpha)."
    )
    herding_bandwidth: Optional[float] = Field(
        None, gt=0.0, le=10.0, description="maxherding / uherding: width of the Gaussian kernel "
        "exp(-d^2 / width^2) on features scaled to unit length. Empty: 1.0 for maxherding (the "
        "reference code's default); for uherding the smallest distance between two labeled images, "
        "each round (the paper's adaptive width)."
    )
    uherding_measure: Literal["least_confidence", "margin", "ratio", "entropy"] = Field(
        "margin", description="uherding: the uncertainty measure each unlabeled image is weighted by "
        "(the paper uses margin)."
    )
    uherding_temperature: Optional[float] = Field(
        1.0, gt=0.0, le=100.0, description="uherding: temperature T the probabilities are scaled by "
        "before the uncertainty measure, softmax(log p / T): above 1 evens them out, below 1 sharpens "
        "them (1, the default: as the model gives them). Empty: calibrated each round as in the paper "
        "(Bae et al. 2025): a model trained like the round's on the first 70% of the labels (in the order "
        "they were acquired) scores the last 30%, and T is the one of 1.0, 1.1, ..., 19.9 with the lowest "
        "expected calibration error on them (1.0 while fewer than 4 labels leave none to hold out). Not "
        "the default: with the softmax learner it did not help on digits and cost 3 points over the curve "
        "on MNIST's self-supervised embedding (bench/uherding_calibration.py)."
    )
    candidates: Optional[int] = Field(
        None, ge=1, description="Score a random subset of this many unlabeled pool "
        "images each round (empty: the whole unlabeled pool)."
    )

    # -- stopping -------------------------------------------------------------------
    rounds: Optional[int] = Field(
        39, ge=0, description="Acquisition rounds (the run evaluates rounds + 1 "
        "times: once on the initial labels, once after each acquisition)."
    )
    label_budget: Optional[int] = Field(
        None, ge=1, description="Stop once this many labels are used (validation "
        "labels included)."
    )
    target_accuracy: Optional[float] = Field(
        None, gt=0.0, le=1.0, description="Stop once test accuracy reaches this "
        "(a simulation convenience: the test set only decides when to stop "
        "reporting, never training)."
    )
    plateau_rounds: Optional[int] = Field(
        None, ge=1, description="Stop when test accuracy changed by less than "
        "plateau_delta for this many consecutive rounds."
    )
    plateau_delta: float = Field(0.002, ge=0.0, le=1.0, description="See plateau_rounds.")
    uncertainty_threshold: Optional[float] = Field(
        None, gt=0.0, lt=1.0, description="Stop when the mean uncertainty (1 - highest "
        "class probability) of the unlabeled pool falls below this: a label-free signal."
    )
    changed_threshold: Optional[float] = Field(
        None, gt=0.0, lt=1.0, description="Stop when the share of unlabeled pool images whose "
        "predicted class changed since the last round falls below this (stabilizing "
        "predictions): a label-free signal."
    )

    # -- misc -----------------------------------------------------------------------
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of every random choice.")
    inspect_k: int = Field(
        8, ge=0, le=256, description="Most and least confident pool images kept per round."
    )

    @field_validator("hidden_units", mode="before")
    @classmethod
    def _parse_units(cls, v):
        if isinstance(v, str):
            parts = [p.strip() for p in v.split(",") if p.strip()]
            try:
                v = tuple(int(p) for p in parts)
            except ValueError:
                raise ValueError(f"hidden_units must be whole numbers like '256,128', got {v!r}")
        if isinstance(v, int):
            v = (v,)
        return v

    @field_validator("hidden_units")
    @classmethod
    def _check_units(cls, v):
        if len(v) == 0 or any(u < 1 or u > 16384 for u in v):
            raise ValueError(f"hidden_units needs 1..16384 units per layer, got {list(v)}")
        return v

    @field_validator("strategy")
    @classmethod
    def _check_strategy(cls, v):
        from alcore.strategies.base import STRATEGIES

        if v not in STRATEGIES:
            raise ValueError(f"unknown strategy {v!r}; choose one of {', '.join(STRATEGIES)}")
        return v

    @field_validator("learning_rate", "l2", "validation_fraction", "hybrid_fraction", "weight_decay",
                     "augment_shift", "augment_rotation", "augment_zoom", "probcover_radius",
                     "probcover_purity", "herding_bandwidth", "uherding_temperature")
    @classmethod
    def _finite(cls, v):
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="before")
    @classmethod
    def _drop_locations_that_do_not_apply(cls, data):
        """``data_file`` only means something for 'npz' and 'images' (``image_size`` for 'images') and
        ``data_dir`` for the idx datasets: a file left from an earlier choice (a dashboard upload, then
        back to digits) must not ride along into a result file, where it would name a path of the
        machine that made it."""
        if isinstance(data, dict):
            dataset = data.get("dataset", "digits")
            if dataset not in FILE_DATASETS and data.get("data_file") is not None:
                data = {**data, "data_file": None}
            if dataset != "images" and data.get("image_size", IMAGE_SIZE_DEFAULT) != IMAGE_SIZE_DEFAULT:
                data = {**data, "image_size": IMAGE_SIZE_DEFAULT}
            if dataset not in DATA_DIR_DATASETS and data.get("data_dir") is not None:
                data = {**data, "data_dir": None}
            if data.get("embedding", "pixels") != "file" and data.get("embedding_file") is not None:
                data = {**data, "embedding_file": None}
        return data

    @model_validator(mode="after")
    def _check_combination(self):
        if self.dataset == "idx" and not self.data_dir:
            import os

            if not os.environ.get("ALCORE_DATA_DIR"):
                raise ValueError("dataset 'idx' needs data_dir (or $ALCORE_DATA_DIR): "
                                 "a folder of MNIST-format idx files")
        if self.dataset == "npz" and not self.data_file:
            raise ValueError("dataset 'npz' needs data_file: the path of a .npz file")
        if self.dataset == "images" and not self.data_file:
            raise ValueError("dataset 'images' needs data_file: the path of a .zip of images (or a folder of them)")
        if self.embedding != "pixels" and self.model not in EMBEDDING_MODELS:
            raise ValueError(f"embedding '{self.embedding}' is read by the softmax and mlp models; model "
                             f"'{self.model}' reads " + ("images" if self.model == "cnn" else
                                                        "its backbone's features already (mlp on embedding "
                                                        "'pretrained' is the same with them standardized)") +
                             ": choose model softmax or mlp, or embedding 'pixels'")
        if self.embedding == "file" and not self.embedding_file:
            raise ValueError("embedding 'file' needs embedding_file: the path of a .npz of embeddings")
        if self.mc_evaluation:
            check_model_has_dropout("mc_evaluation", self)
        if self.rounds is None and self.label_budget is None and self.target_accuracy is None:
            raise ValueError("set at least one of rounds, label_budget or target_accuracy, "
                             "or the run would never stop")
        if self.max_steps is not None and self.max_steps < self.min_steps:
            raise ValueError(f"max_steps ({self.max_steps}) is below min_steps ({self.min_steps}): "
                             f"a round cannot make fewer steps than its minimum")
        if self.label_budget is not None:
            first = self.first_round_labels()
            if self.label_budget < first:
                raise ValueError(f"label_budget {self.label_budget} is below the labels the "
                                 f"first round already uses ({first})")
        return self

    # -- derived: the label budget's arithmetic, defined once ---------------------------
    def validation_labels(self) -> int:
        """Pool images labelled once for validation before the first round (validation 'fixed')."""
        return self.validation_size if self.validation == "fixed" else 0

    def first_round_labels(self) -> int:
        """Labels the first round already uses: the initial labels plus the fixed validation set."""
        return self.initial + self.validation_labels()

    def acquisition_rounds(self, n_pool: Optional[int] = None) -> Optional[int]:
        """How many acquisition rounds the run can make at most: its ``rounds``, the batches that
        fit in its ``label_budget`` after the first round's labels, and the batches the pool holds
        (``n_pool`` where known; the last batch may be partial). None where nothing bounds it (only
        a target or a label-free signal stops it). The run evaluates one more time than this."""
        first = self.first_round_labels()
        bounds = []
        if self.rounds is not None:
            bounds.append(self.rounds)
        if self.label_budget is not None:
            bounds.append(math.ceil(max(0, self.label_budget - first) / self.batch_size))
        if n_pool is not None:
            bounds.append(math.ceil(max(0, n_pool - first) / self.batch_size))
        return min(bounds) if bounds else None

    def max_labels(self) -> Optional[int]:
        """Largest labeled-set size the run can reach, validation labels included."""
        bounds = []
        if self.rounds is not None:
            bounds.append(self.first_round_labels() + self.rounds * self.batch_size)
        if self.label_budget is not None:
            bounds.append(self.label_budget)
        return min(bounds) if bounds else None

    def check_early_stopping(self) -> None:
        """ValueError naming the field when early stopping (mlp / cnn / transfer) would watch
        fewer than :data:`MIN_VALIDATION` images in the first round (a run checks this when it
        starts; result files made before the check still load)."""
        if self.model == "softmax" or self.validation == "none":
            return
        if self.validation == "fixed":
            if self.validation_size < MIN_VALIDATION:
                raise ValueError(
                    f"validation_size {self.validation_size} is too small for early stopping: on fewer "
                    f"than {MIN_VALIDATION} validation images the epoch it picks is noise. Use "
                    f"validation_size >= {MIN_VALIDATION}, or validation 'none' (a fixed step schedule)")
            return
        n = min(int(round(self.validation_fraction * self.initial)), self.initial - 1)
        if n < MIN_VALIDATION:
            need = math.ceil(MIN_VALIDATION / self.validation_fraction)
            raise ValueError(
                f"validation 'split' would hold out {n} of the {self.initial} initial labels "
                f"(validation_fraction {self.validation_fraction}); early stopping needs at least "
                f"{MIN_VALIDATION} validation images, or the epoch it picks is noise. Use validation "
                f"'none' (a fixed step schedule, the default), validation 'fixed' with validation_size >= "
                f"{MIN_VALIDATION}, or at least {need} initial labels")

    def data_key(self) -> tuple:
        """The fields that decide the prepared dataset (a cache key for loaders).

        The seed draws the pool (``pool_size``), the test subset (``test_size``) and, for
        datasets without a test split of their own, the split itself; where it draws
        none of these it is left out, so every seed of a whole-MNIST race shares one
        prepared pool instead of holding a copy each."""
        draws = (self.pool_size is not None or self.test_size is not None
                 or self.dataset not in FIXED_SPLIT_DATASETS)
        return (self.dataset, self.data_dir, self.data_file, self.pool_size,
                self.test_size, self.normalization, self.seed if draws else None) + (
                    (self.image_size,) if self.dataset == "images" else ())

    def same_experiment(self, other: "ExperimentConfig") -> bool:
        """Whether ``other`` describes the same experiment as this config, wherever the data
        files sit. For the published datasets (``FIXED_SPLIT_DATASETS``) ``data_dir`` only says
        where this machine keeps its copy, so a result file made on another machine, or a preset
        shipped with the repository, still matches; for 'idx' the folder is the data itself and
        counts."""
        if self.dataset in FIXED_SPLIT_DATASETS and other.dataset == self.dataset:
            return self.model_dump(exclude={"data_dir"}) == other.model_dump(exclude={"data_dir"})
        return self == other

    def replace(self, **changes) -> "ExperimentConfig":
        """A validated copy with some fields changed."""
        data = self.model_dump()
        data.update(changes)
        return ExperimentConfig(**data)


class RaceConfig(BaseModel):
    """A race: every strategy in ``strategies`` on every seed in ``seeds`` (a list, not a count),
    everything else as in ``base``. Its runs are seed-major: run ``i`` races
    ``strategies[i % len(strategies)]`` on ``seeds[i // len(strategies)]``, the order the race
    steps them, the saved race numbers its files and a race of result files is rebuilt in.
    The dashboard's race setup, a saved race's manifest and a preset's live race are one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: ExperimentConfig
    strategies: list[str] = Field(min_length=1, max_length=64)
    seeds: list[int] = Field(min_length=1, max_length=64)
    # The oracle ceiling (alcore.engine.ceiling): one more run per seed, opt-in.
    ceiling: bool = Field(
        False, description="Also run the oracle ceiling on every seed: each round it asks every raced "
        "strategy (and random) for a batch, trains on each, and keeps the one with the best accuracy on "
        "ceiling_validation labeled pool images. Greedy, and it peeks at labels no real strategy has: "
        "a reference curve, not a strategy. Costs about ceiling_candidates trainings per round.")
    ceiling_candidates: Optional[int] = Field(
        None, ge=1, le=64, description="Oracle ceiling: candidate batches tried per round, one from each "
        "raced strategy and the rest at random (empty: the strategies raced + 2).")
    ceiling_validation: int = Field(
        200, ge=10, le=100_000, description="Oracle ceiling: labeled pool images it scores candidate "
        "batches on (drawn once per seed from the pool and never picked by it; the test set is never used).")

    @model_validator(mode="after")
    def _check_ceiling(self):
        k = self.ceiling_candidates
        if k is not None and k < len(self.strategies):
            raise ValueError(f"ceiling_candidates {k} is below the {len(self.strategies)} strategies raced: "
                             f"each raced strategy proposes one batch; choose at least {len(self.strategies)} "
                             f"(or leave it empty)")
        return self

    def ceiling_costs(self) -> dict:
        """The oracle ceiling's settings as :meth:`alcore.serve.limits.DeploymentLimits.run_problems`
        counts them (K 0: no ceiling)."""
        return {"ceiling_candidates": self.ceiling_batches if self.ceiling else 0,
                "ceiling_validation": self.ceiling_validation if self.ceiling else 0}

    @property
    def ceiling_batches(self) -> int:
        """Candidate batches the oracle ceiling tries per round (ceiling_candidates, or the strategies + 2)."""
        return self.ceiling_candidates if self.ceiling_candidates is not None else len(self.strategies) + 2

    @classmethod
    def counted(cls, base: ExperimentConfig, strategies, n_seeds: int, **ceiling) -> "RaceConfig":
        """``n_seeds`` seeds from ``base.seed`` on (``base.seed``, ``base.seed + 1``, ...), as the
        dashboard and a share link give them (a count); ``ceiling``: the oracle ceiling's fields."""
        return cls(base=base, strategies=list(strategies), seeds=[base.seed + i for i in range(int(n_seeds))],
                   **ceiling)

    @property
    def n_runs(self) -> int:
        """The raced runs (strategies x seeds); the oracle ceiling's runs come after them."""
        return len(self.strategies) * len(self.seeds)

    @property
    def n_ceilings(self) -> int:
        """The oracle ceiling's runs: one per seed when ``ceiling`` is on, numbered after the raced runs."""
        return len(self.seeds) if self.ceiling else 0

    def run_index(self, strategy: str, seed: int) -> int:
        """The position of the run of ``strategy`` on ``seed`` (seed-major)."""
        return self.seeds.index(seed) * len(self.strategies) + self.strategies.index(strategy)


def _optional_number(name: str) -> bool:
    import typing

    field = ExperimentConfig.model_fields.get(name)
    if field is None:
        return False
    args = typing.get_args(field.annotation)
    return type(None) in args and all(a in (int, float, type(None)) for a in args)


def with_none(fields: dict) -> dict:
    """``fields`` with the text 'none' read as None (unset) for the optional number fields
    (rounds, max_steps, label_budget, ...): TOML, the sweep specs' format, has no null, and
    the CLI already reads 'none' so."""
    return {k: None if isinstance(v, str) and v.strip().lower() == "none" and _optional_number(k) else v
            for k, v in fields.items()}

