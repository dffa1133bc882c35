"""Round records and the versioned JSON result file.

The same pydantic models are what :class:`alcore.engine.loop.Experiment` streams and what
a result file stores, so the dashboard, the CLI and an uploaded file from another
machine all see the same fields. Files are validated on load (a malformed file, a
missing field or an unknown ``schema_version`` gets an error naming the file and
the problem) and written atomically.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import reprlib
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alcore._version import __version__
from alcore.config import BEFORE_FIELD_EXISTED, ExperimentConfig
from alcore.data.datasets import MAX_CLASS_NAME_CHARS, MAX_CLASSES

SCHEMA_VERSION = 1
# The oracle ceiling's name wherever a run, a curve or a table shows it (alcore.engine.ceiling).
CEILING = "oracle ceiling"
SUPPORTED_SCHEMA_VERSIONS = (SCHEMA_VERSION,)
# Checked before reading: a result file of a long run on a big pool is a few MB.
MAX_FILE_BYTES = 64 * 1024 * 1024
# Counts and pool indices: no pool this app can load holds more images (see
# alcore.data.datasets.MAX_ELEMENTS), and int32 is what label and index arrays use.
MAX_COUNT = 2**31 - 1
# Free text (dataset source, stop reason, versions): a path or a sentence.
MAX_TEXT = 10_000
# Whole numbers in a result file fit in int64; longer digit strings are refused while
# parsing, before Python builds a huge int (or hits its 4300-digit limit).
_MAX_INT_DIGITS = 19


class ResultFileError(ValueError):
    """A result file that cannot be used; the message names the file and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
ClassName = Annotated[str, Field(max_length=MAX_CLASS_NAME_CHARS)]


class ImageRef(_Strict):
    """One pool image in a gallery: its pool index, prediction and truth."""

    index: Count
    predicted: Count
    confidence: Share
    label: Count
    score: Optional[float] = None


class PoolSummary(_Strict):
    """Confidence (highest class probability) over the unlabeled images scored."""

    n_scored: Count
    mean_confidence: Share
    median_confidence: Share
    low_confidence_fraction: Share = Field(description="share with confidence below 0.5")
    mean_entropy: float = Field(ge=0.0)
    mean_uncertainty: Optional[Share] = Field(None, description="mean of 1 - confidence")
    changed_fraction: Optional[Share] = Field(
        None, description="share of these images whose predicted class changed since the last round")


# Up to this many classes a round's confusion matrix is stored whole, as every result file
# before 0.3 stored it (a 10-class matrix is 100 numbers); above it, as its nonzero cells
# (SparseConfusion), which number at most the test images: a whole matrix grows with the
# classes squared (2 000 classes: 4 million numbers, about 32 MB of JSON per round).
DENSE_CONFUSION_MAX_CLASSES = 32


class SparseConfusion(_Strict):
    """A confusion matrix of many classes by its nonzero cells: ``cells`` is flat,
    ``true, predicted, count`` for each, in increasing (true, predicted) order."""

    classes: int = Field(ge=2, le=MAX_CLASSES)
    cells: list[Count] = Field(default_factory=list, description="true, predicted, count, true, predicted, count, ...")

    @model_validator(mode="after")
    def _cells(self):
        c = self.cells
        if len(c) % 3:
            raise ValueError(f"confusion.cells holds {len(c)} numbers; it must hold (true, predicted, count) triples")
        last = -1
        for i in range(0, len(c), 3):
            t, p, n = c[i:i + 3]
            if t >= self.classes or p >= self.classes:
                raise ValueError(f"confusion.cells: class {max(t, p)} is outside 0..{self.classes - 1}")
            if n < 1:
                raise ValueError("confusion.cells: a cell counts 0 images; only nonzero cells are stored")
            if t * self.classes + p <= last:
                raise ValueError("confusion.cells must be in increasing (true, predicted) order, each cell once")
            last = t * self.classes + p
        return self

    def triples(self) -> list[tuple[int, int, int]]:
        c = self.cells
        return [(c[i], c[i + 1], c[i + 2]) for i in range(0, len(c), 3)]


Confusion = Union[list[list[Count]], SparseConfusion]


def confusion_of(y_true, y_pred, n_classes: int) -> Confusion:
    """The test confusion matrix as a round stores it: whole for up to
    DENSE_CONFUSION_MAX_CLASSES classes, else its nonzero cells (no k x k array is made)."""
    import numpy as np

    codes = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(y_pred, dtype=np.int64)
    if n_classes <= DENSE_CONFUSION_MAX_CLASSES:
        return np.bincount(codes, minlength=n_classes * n_classes).reshape(n_classes, n_classes).tolist()
    cells, counts = np.unique(codes, return_counts=True)
    flat = np.stack([cells // n_classes, cells % n_classes, counts], axis=1).reshape(-1)
    return SparseConfusion(classes=n_classes, cells=flat.tolist())


def confusion_matrix(confusion: "Confusion | object"):
    """A stored confusion matrix (either form, or any array-like) as a k x k int64 array."""
    import numpy as np

    if isinstance(confusion, SparseConfusion):
        m = np.zeros((confusion.classes, confusion.classes), dtype=np.int64)
        for t, p, n in confusion.triples():
            m[t, p] = n
        return m
    return np.asarray(confusion, dtype=np.int64)


def _confusion_counts(confusion: Confusion) -> tuple[int, int, int]:
    """(classes, images counted, images on the diagonal) of a stored confusion matrix."""
    if isinstance(confusion, SparseConfusion):
        triples = confusion.triples()
        return confusion.classes, sum(n for *_, n in triples), sum(n for t, p, n in triples if t == p)
    k = len(confusion)
    return k, sum(map(sum, confusion)), sum(confusion[c][c] for c in range(k))


class CeilingRound(_Strict):
    """One round of the oracle ceiling (:mod:`alcore.engine.ceiling`): the candidate batches it
    tried, who proposed each ('margin', 'random 1'), the accuracy and mean cross-entropy on its
    validation images of the model trained with each, and which it kept (``chosen``)."""

    proposers: list[Text] = Field(min_length=1, max_length=64)
    validation_accuracy: list[Share]
    validation_loss: list[Annotated[float, Field(ge=0.0)]]
    chosen: Count

    @model_validator(mode="after")
    def _consistent(self):
        n = len(self.proposers)
        if len(self.validation_accuracy) != n or len(self.validation_loss) != n:
            raise ValueError(f"ceiling: {n} proposers but {len(self.validation_accuracy)} validation accuracies "
                             f"and {len(self.validation_loss)} losses")
        if self.chosen >= n:
            raise ValueError(f"ceiling: chosen {self.chosen} is not one of the {n} candidates")
        return self


class TemperatureCalibration(_Strict):
    """How UHerding chose its temperature this round (``uherding_temperature`` empty): a model
    trained like the round's on ``n_train`` labels scored the ``held_out`` labels acquired last,
    and the temperature kept has the expected calibration error ``ece`` on them (``ece_at_1``
    at T = 1); ``seconds`` training and scoring that model took. Where no model could be judged
    (too few labels, one class), ``skipped`` says why and the temperature is 1."""

    held_out: Count
    n_train: Count = 0
    ece: Optional[Share] = None
    ece_at_1: Optional[Share] = None
    seconds: Seconds = 0.0
    skipped: Text = Field("", exclude_if=lambda v: not v)

    def text(self, temperature: float) -> str:
        """One plain sentence: 'T = 2.3: ECE 0.041 (0.187 at T = 1) on the last 6 of 20 labels'."""
        if self.skipped:
            return f"T = {temperature:g}: not calibrated, {self.skipped}"
        return (f"T = {temperature:g}: ECE {self.ece:.3f} ({self.ece_at_1:.3f} at T = 1) on the last {self.held_out} "
                f"of {self.held_out + self.n_train} labels")


class CeilingSetup(_Strict):
    """What makes a run the oracle ceiling of its seed: the raced strategies that proposed
    batches, the candidate batches per round, and its validation images (pool indices, read with
    their labels, never picked)."""

    strategies: list[Text] = Field(min_length=1, max_length=64)
    candidates: int = Field(ge=1, le=64)
    validation_indices: list[Count] = Field(min_length=1)


class RoundResult(_Strict):
    """One round: train on the current labels, evaluate, pick the next batch."""

    round: Count
    n_labeled: Count = Field(ge=1, description="labels used so far, validation labels included")
    n_train: Count = Field(ge=1)
    n_validation: Count
    test_accuracy: Share
    test_loss: float = Field(ge=0.0)
    confusion: Confusion = Field(description="test images by true (row) and predicted (column) class: the "
                                 "whole matrix, or for many classes its nonzero cells (SparseConfusion)")
    epochs: Count
    validation_loss: Optional[float] = None
    penalty_c: Optional[float] = Field(None, gt=0.0, exclude_if=lambda v: v is None,
                                       description="softmax with penalty_cv: the C cross-validation chose")
    probcover_radius: Optional[float] = Field(None, gt=0.0, exclude_if=lambda v: v is None,
                                              description="probcover: the ball radius this round used (set, or "
                                                          "chosen by the purity rule on the run's first round)")
    uherding_temperature: Optional[float] = Field(None, gt=0.0, exclude_if=lambda v: v is None,
                                                  description="uherding: the temperature this round's "
                                                              "uncertainties were scaled by (set, or calibrated)")
    uherding_calibration: Optional[TemperatureCalibration] = Field(
        None, exclude_if=lambda v: v is None, description="uherding with uherding_temperature empty: how this "
        "round's temperature was calibrated on held-out labels")
    train_seconds: Seconds
    score_seconds: Seconds
    select_seconds: Seconds
    query_seconds: Seconds
    eval_seconds: Seconds
    selected: list[Count] = Field(default_factory=list, description="pool indices picked this round")
    selected_scores: list[float] = Field(default_factory=list)
    selected_predicted: list[Count] = Field(default_factory=list)
    pool: Optional[PoolSummary] = None
    most_confident: list[ImageRef] = Field(default_factory=list)
    least_confident: list[ImageRef] = Field(default_factory=list)
    # Where a person is the oracle (RunResult.oracle "person"): the labels given for
    # ``selected``, in its order, and the seconds each took. Left out of the file when empty,
    # so a simulated run's file is what it was before these fields existed.
    given_labels: list[Count] = Field(default_factory=list, exclude_if=lambda v: not v,
                                      description="the person's labels for the selected images")
    label_seconds: list[Seconds] = Field(default_factory=list, exclude_if=lambda v: not v,
                                         description="seconds the person took for each given label")
    labelled_at: Optional[Text] = Field(None, exclude_if=lambda v: v is None,
                                        description="when the person submitted the labels (UTC, ISO 8601); "
                                                    "files written before it was recorded have none")
    ceiling: Optional[CeilingRound] = Field(None, exclude_if=lambda v: v is None,
                                            description="the oracle ceiling's candidate batches this round")

    @model_validator(mode="after")
    def _consistent(self):
        r = self.round
        if self.given_labels and len(self.given_labels) != len(self.selected):
            raise ValueError(f"round {r}: {len(self.selected)} selected indices but "
                             f"{len(self.given_labels)} given labels")
        if self.label_seconds and len(self.label_seconds) != len(self.given_labels):
            raise ValueError(f"round {r}: {len(self.given_labels)} given labels but "
                             f"{len(self.label_seconds)} label times")
        if len(self.selected_scores) != len(self.selected):
            raise ValueError(f"round {r}: {len(self.selected)} selected indices but "
                             f"{len(self.selected_scores)} scores")
        if self.selected_predicted and len(self.selected_predicted) != len(self.selected):
            raise ValueError(f"round {r}: {len(self.selected)} selected indices but "
                             f"{len(self.selected_predicted)} predicted classes")
        if len(set(self.selected)) != len(self.selected):
            raise ValueError(f"round {r}: picks the same pool image twice")
        if self.n_train > self.n_labeled or self.n_validation > self.n_labeled:
            raise ValueError(f"round {r}: n_train {self.n_train} and n_validation {self.n_validation} "
                             f"cannot exceed n_labeled {self.n_labeled}")
        if not isinstance(self.confusion, SparseConfusion):
            k = len(self.confusion)
            if any(len(row) != k for row in self.confusion):
                raise ValueError(f"round {r}: confusion matrix is not square")
        return self


class Environment(_Strict):
    alcore: Text
    tensorflow: Optional[Text] = None
    keras: Optional[Text] = None
    numpy: Text
    python: Text
    platform: Text


class DatasetInfo(_Strict):
    name: Text
    source: Text = ""
    n_pool: Count = Field(ge=1)
    n_test: Count = Field(ge=1)
    n_classes: int = Field(ge=2, le=MAX_CLASSES)
    class_names: list[ClassName]
    image_shape: list[Annotated[int, Field(ge=1, le=MAX_COUNT)]] = Field(
        min_length=1, max_length=3, description="height, width, channels")
    file_sha256: Optional[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(
        None, exclude_if=lambda v: v is None,
        description="SHA-256 of the user's file the data was read from (a .npz or a .zip of images): the "
                    "dashboard asks for the file with this fingerprint instead of reading a path")


def _check_picks(picks, n_pool: int, taken: set, what: str) -> None:
    """Pool indices must lie in the pool and not be labeled already; adds them to ``taken``."""
    for i in picks:
        if i >= n_pool:
            raise ValueError(f"{what}: pool index {i} is outside the pool of {n_pool} images")
        if i in taken:
            raise ValueError(f"{what}: pool index {i} is labeled twice")
        taken.add(i)


class RunResult(_Strict):
    """A whole run: what a result file holds."""

    schema_version: Literal[1] = SCHEMA_VERSION
    created: Text
    status: Literal["running", "stopped", "complete"]
    stop_reason: Text = ""
    config: ExperimentConfig
    environment: Environment
    dataset: DatasetInfo
    oracle: Literal["simulated", "person"] = Field(
        "simulated", exclude_if=lambda v: v == "simulated",
        description="who labelled the queried batches: the dataset's labels, or a person (given_labels)")
    initial_indices: list[Count]
    validation_indices: list[Count] = Field(default_factory=list)
    n_parameters: Optional[Count] = None
    rounds: list[RoundResult]
    # Images without labels, labelled in the loop by a person (alcore.engine.labelling): the
    # person's initial and validation labels, and the audit set (indices into the uploaded images,
    # which the test split is) with its labels. Left out of the file when empty.
    initial_labels: list[Count] = Field(default_factory=list, exclude_if=lambda v: not v)
    validation_labels: list[Count] = Field(default_factory=list, exclude_if=lambda v: not v)
    audit_indices: list[Count] = Field(default_factory=list, exclude_if=lambda v: not v)
    audit_labels: list[Count] = Field(default_factory=list, exclude_if=lambda v: not v)
    images_sha256: Optional[Text] = Field(None, exclude_if=lambda v: v is None,
                                          description="fingerprint of the uploaded images' pixels, to continue "
                                                      "on the same images")
    ceiling: Optional[CeilingSetup] = Field(None, exclude_if=lambda v: v is None,
                                            description="set where the run is the oracle ceiling of its seed "
                                                        "(alcore.engine.ceiling), not a strategy's run")

    @property
    def labelled_in_the_loop(self) -> bool:
        """Images without labels, every label a person's (the test set is the audit set)."""
        return bool(self.audit_labels)

    def _check_person_labels(self) -> None:
        if not self.labelled_in_the_loop:
            return
        ds = self.dataset
        if self.oracle != "person":
            raise ValueError("audit_labels are given but the oracle is not a person")
        for what, got, want in (("initial_labels", self.initial_labels, self.initial_indices),
                                ("validation_labels", self.validation_labels, self.validation_indices),
                                ("audit_labels", self.audit_labels, range(ds.n_test)),
                                ("audit_indices", self.audit_indices, range(ds.n_test))):
            if len(got) != len(want):
                raise ValueError(f"{what} has {len(got)} entries for {len(want)} images")
        if any(c >= ds.n_classes for c in (*self.initial_labels, *self.validation_labels, *self.audit_labels)):
            raise ValueError(f"a person's label lies outside the classes 0..{ds.n_classes - 1}")
        if len(set(self.audit_indices)) != len(self.audit_indices) or \
                max(self.audit_indices) >= ds.n_pool + ds.n_test:
            raise ValueError("audit_indices repeat an image or lie outside the uploaded images")

    @model_validator(mode="after")
    def _consistent(self):
        """What Experiment.resume and the dashboard rely on; a forged or edited file
        breaking any of it is refused rather than drawn wrong or crashing a page."""
        ds, cfg = self.dataset, self.config
        if len(ds.class_names) != ds.n_classes:
            raise ValueError(f"dataset.class_names has {len(ds.class_names)} names for "
                             f"{ds.n_classes} classes (dataset.n_classes)")
        if not self.rounds:
            raise ValueError("the file holds no rounds")
        if len(self.initial_indices) != cfg.initial:
            raise ValueError(f"initial_indices has {len(self.initial_indices)} entries but "
                             f"config.initial is {cfg.initial}")
        n_val = cfg.validation_labels()
        if len(self.validation_indices) != n_val:
            raise ValueError(f"validation_indices has {len(self.validation_indices)} entries; "
                             f"validation '{cfg.validation}' labels {n_val}")
        taken: set[int] = set()
        _check_picks(self.validation_indices, ds.n_pool, taken, "validation_indices")
        _check_picks(self.initial_indices, ds.n_pool, taken, "initial_indices")
        labeled = len(taken)
        never = set()  # the oracle ceiling's validation images: read, never picked
        if self.ceiling is not None:
            _check_picks(self.ceiling.validation_indices, ds.n_pool, set(taken), "ceiling.validation_indices")
            never = set(self.ceiling.validation_indices)
        for i, r in enumerate(self.rounds):
            if r.round != i:
                raise ValueError(f"rounds[{i}] says round {r.round}; rounds must be numbered 0, 1, 2, ...")
            if r.n_labeled != labeled:
                raise ValueError(f"round {i}: n_labeled is {r.n_labeled} but the labels picked so far "
                                 f"(initial, validation and earlier rounds) are {labeled}")
            self._check_test_counts(i, r)
            if len(r.selected) > cfg.batch_size:
                raise ValueError(f"round {i}: picks {len(r.selected)} images; batch_size is {cfg.batch_size}")
            _check_picks(r.selected, ds.n_pool, taken, f"round {i}: selected")
            if never.intersection(r.selected):
                raise ValueError(f"round {i}: the oracle ceiling picks one of its own validation images")
            if (r.ceiling is not None) != (self.ceiling is not None and bool(r.selected)):
                raise ValueError(f"round {i}: " + ("a round with candidate batches (ceiling) in a run that is not "
                                                   "the oracle ceiling" if r.ceiling is not None else
                                                   "the oracle ceiling's round picks without its candidate batches"))
            labeled = len(taken)
            self._check_classes_and_oracle(i, r)
        self._check_person_labels()
        return self

    def _check_test_counts(self, i: int, r: RoundResult) -> None:
        """Round ``i``'s confusion matrix fits the classes and the test set, and gives its accuracy."""
        ds = self.dataset
        k, total, right = _confusion_counts(r.confusion)  # full or sparse
        if k != ds.n_classes:
            raise ValueError(f"round {i}: confusion matrix is {k}x{k} for {ds.n_classes} classes")
        if total != ds.n_test:
            raise ValueError(f"round {i}: confusion matrix counts {total} test images; "
                             f"dataset.n_test is {ds.n_test}")
        if abs(right / total - r.test_accuracy) > 1e-6:
            raise ValueError(f"round {i}: test_accuracy {r.test_accuracy:.6g} does not match its "
                             f"confusion matrix ({right} of {total} right)")

    def _check_classes_and_oracle(self, i: int, r: RoundResult) -> None:
        """Round ``i``'s classes lie among the dataset's, its images in the pool, and its labels
        fit who the oracle was."""
        ds = self.dataset
        if any(c >= ds.n_classes for c in r.selected_predicted):
            raise ValueError(f"round {i}: selected_predicted holds a class outside 0..{ds.n_classes - 1}")
        if any(c >= ds.n_classes for c in r.given_labels):
            raise ValueError(f"round {i}: given_labels holds a class outside 0..{ds.n_classes - 1}")
        if self.oracle == "simulated" and (r.given_labels or r.label_seconds):
            raise ValueError(f"round {i}: given_labels and label_seconds belong to a run whose oracle "
                             f"is a person (oracle 'person'), not the simulated one")
        if self.oracle == "person" and r.selected and not r.given_labels and i < len(self.rounds) - 1:
            raise ValueError(f"round {i}: the person's labels for its {len(r.selected)} picks are missing, "
                             f"but later rounds trained on them")
        for ref in r.most_confident + r.least_confident:
            if ref.index >= ds.n_pool:
                raise ValueError(f"round {i}: gallery image {ref.index} is outside the pool of {ds.n_pool}")
            if ref.predicted >= ds.n_classes or ref.label >= ds.n_classes:
                raise ValueError(f"round {i}: gallery image {ref.index} has a class outside "
                                 f"0..{ds.n_classes - 1}")
        if r.pool is not None and r.pool.n_scored > ds.n_pool:
            raise ValueError(f"round {i}: pool.n_scored {r.pool.n_scored} is more than the pool of {ds.n_pool}")

    # convenient views
    @property
    def label(self) -> str:
        """'margin (seed 0)'; 'margin (seed 0, a person labelled)' where a person was the oracle."""
        if self.oracle == "person":
            return f"{strategy_label(self.config)} (seed {self.config.seed}, a person labelled)"
        if self.ceiling is not None:
            return f"{CEILING} (seed {self.config.seed})"
        return run_label(self.config)

    def curve(self) -> tuple[list[int], list[float]]:
        return [r.n_labeled for r in self.rounds], [r.test_accuracy for r in self.rounds]


def strategy_label(config: ExperimentConfig) -> str:
    """The strategy as users name it: 'margin', 'hybrid 30%' (:meth:`alcore.strategies.base.Strategy.label`)."""
    from alcore.strategies import base

    return base.strategy_label(config)


def _value_text(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return format(value, "g") if isinstance(value, float) else str(value)


def setting_text(field: str, value) -> str:
    """One setting of a group as its name shows it: the dataset and model by name, 'batch 20',
    'pool 4000', 'a person labelled' / 'simulated', else 'activation=sigmoid'."""
    if field in ("dataset", "model"):
        return str(value)
    if field == "batch_size":
        return f"batch {value}"
    if field == "n_pool":
        return f"pool {value}"
    if field == "oracle":
        return "a person labelled" if value == "person" else "simulated"
    if value is None:  # what the empty setting means: "test_size=all", not "test_size=None"
        return f"{field}={_UNSET_TEXT.get(field, 'none')}"
    return f"{field}={_value_text(value)}"


_UNSET_TEXT = {"test_size": "all", "pool_size": "all", "candidates": "all", "dense_dropout": "as dropout"}


@dataclass(frozen=True)
class GroupKey:
    """Which runs are alike enough to average: a strategy, and the settings that set these runs
    apart from the other runs loaded beside them, as (field, value) pairs (``n_pool`` and
    ``oracle`` besides the config's fields). Runs compared with each other (a strategy and its
    random baseline) share ``settings``. :attr:`label` is the name shown, derived from the key:
    'margin', 'hybrid 30% · mnist · activation=sigmoid'."""

    strategy: str                               # the registry name: 'hybrid'
    strategy_label: str                         # as users name it: 'hybrid 30%'
    settings: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, config: ExperimentConfig, settings: tuple[tuple[str, object], ...] = ()) -> "GroupKey":
        return cls(config.strategy, strategy_label(config), tuple(settings))

    @property
    def is_baseline(self) -> bool:
        from alcore.strategies.base import is_baseline

        return is_baseline(self.strategy)

    @property
    def label(self) -> str:
        return " · ".join([self.strategy_label] + [setting_text(f, v) for f, v in self.settings])

    def __str__(self) -> str:
        return self.label


def run_label(config: ExperimentConfig) -> str:
    """One run: 'margin (seed 0)'."""
    return f"{strategy_label(config)} (seed {config.seed})"


def environment() -> Environment:
    import sys

    import numpy

    tfv = kv = None
    if "tensorflow" in sys.modules:
        tfv = sys.modules["tensorflow"].__version__
    if "keras" in sys.modules:
        kv = sys.modules["keras"].__version__
    return Environment(alcore=__version__, tensorflow=tfv, keras=kv, numpy=numpy.__version__,
                       python=platform.python_version(), platform=platform.platform())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------ writing

def to_json(result: RunResult) -> str:
    return result.model_dump_json(indent=1)


def without_server_paths(result: RunResult) -> RunResult:
    """The result as a visitor of the dashboard may download it: ``data_file`` (and
    ``embedding_file``) cut to the file's name (its fingerprint is ``dataset.file_sha256``) and
    ``data_dir`` left out, so the file says
    nothing about where anything lies on the server. The CLI writes the paths as typed: a file
    written on one's own machine keeps them, for ``--resume``."""
    cfg = result.config
    if cfg.data_file is None and cfg.data_dir is None and cfg.embedding_file is None:
        return result
    name = os.path.basename(os.path.normpath(cfg.data_file)) if cfg.data_file else None
    embeddings = os.path.basename(os.path.normpath(cfg.embedding_file)) if cfg.embedding_file else None
    return result.model_copy(update={"config": cfg.replace(data_file=name, data_dir=None, embedding_file=embeddings)})


def save_result(result: RunResult, path: Union[str, os.PathLike]) -> Path:
    """Write the result file atomically (see :func:`atomic_write`)."""
    return atomic_write(path, to_json(result).encode("utf-8"))


TEMP_SUFFIX = ".tmp"
# A temporary file of atomic_write older than this was left by a save that was killed (a
# save takes well under a second): clean_stale_temp removes it.
STALE_TEMP_S = 3600.0


def _umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux:
    /proc; os.umask can only be read by setting it, which races with other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def clean_stale_temp(folder: Union[str, os.PathLike], max_age_s: float = STALE_TEMP_S,
                     now: Optional[float] = None) -> list[Path]:
    """Remove the temporary files atomic_write leaves when a save is killed
    (``.<name>.<random>.tmp`` in ``folder``) that are older than ``max_age_s``; a save in
    progress is never that old. Returns what was removed; never raises for a file."""
    import time

    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > max_age_s:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def atomic_write(path: Union[str, os.PathLike], data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``, so
    a crash mid-write leaves any previous file intact and never a half-written one. The file
    gets the mode a plain ``open`` would give it (0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600; a plain open() would not
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ------------------------------------------------------------------------ reading

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 40
_short.maxlist = _short.maxdict = 4
_short.maxlevel = 2


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _format_validation(e: ValidationError, limit: int = 5, prefix: str = "") -> str:
    """The first few problems in plain words, each short (never pydantic's full dump)."""
    errors = e.errors(include_url=False, include_input=False)
    parts = []
    for err in errors[:limit]:
        loc = ".".join(str(p) for p in err["loc"])
        loc = prefix + loc if loc else prefix.rstrip(".")
        # a key from the file may hold a newline or another control character: shown escaped,
        # so the message stays one printable line
        loc = "".join(c if c.isprintable() else repr(c)[1:-1] for c in loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            parts.append(f"missing field '{loc}'")
        elif err["type"] == "extra_forbidden":
            parts.append(f"unknown field '{_clip(loc, 80)}'")
        elif loc:
            parts.append(f"'{_clip(loc, 80)}': {_clip(msg)}")
        else:
            parts.append(_clip(msg))
    more = len(errors) - limit
    return "; ".join(parts) + (f"; and {more} more problem(s)" if more > 0 else "")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {_clip(text, 40)} is too large")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"the whole number {_clip(text, 40)} ({len(text.lstrip('-'))} digits) is too large")
    return int(text)


def _reject_constant(value: str):
    raise ValueError(f"{value} is not a number JSON allows")


def _no_repeated_keys(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {_short.repr(key)} appears twice in one object")
            seen.add(key)
    return out


def _read_bounded(path: Union[str, os.PathLike], name: str) -> bytes:
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ResultFileError(f"{name}: not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise ResultFileError(f"{name}: {st.st_size} bytes is over the {MAX_FILE_BYTES}-byte "
                                  f"limit for result files")
        with open(path, "rb") as f:
            return f.read(MAX_FILE_BYTES + 1)  # the file may grow after stat
    except OSError as e:
        raise ResultFileError(f"{name}: cannot be read ({e.strerror or e})") from e


def _parse_json(raw: bytes, name: str):
    """The JSON value of a result file's bytes, after its size, encoding, constants, numbers,
    repeated keys, nesting and escapes are checked (ResultFileError naming the file otherwise)."""
    if len(raw) > MAX_FILE_BYTES:
        raise ResultFileError(f"{name}: {len(raw)} bytes is over the {MAX_FILE_BYTES}-byte limit for result files")
    if not raw.strip():
        raise ResultFileError(f"{name}: the file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ResultFileError(f"{name}: not UTF-8 text (byte {e.start}); a result file is JSON") from e
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                          parse_int=_bounded_int, object_pairs_hook=_no_repeated_keys)
    except RecursionError as e:
        raise ResultFileError(f"{name}: JSON nested too deeply") from e
    except ValueError as e:
        raise ResultFileError(f"{name}: not valid JSON ({_clip(str(e))})") from e
    if "\\u" in text:
        try:  # an escaped lone surrogate ("\ud800") makes a str no page or terminal can show
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            raise ResultFileError(f"{name}: holds text that is not valid Unicode (an unpaired "
                                  f"\\u{ord(e.object[e.start]):04x} escape)") from e
        except RecursionError as e:
            raise ResultFileError(f"{name}: JSON nested too deeply") from e
    return data


def load_result(source: Union[str, os.PathLike, bytes, bytearray], name: Optional[str] = None) -> RunResult:
    """Read and validate a result file from a path or from bytes (an upload).

    Size is checked before anything is parsed; then the JSON itself (UTF-8, no
    NaN/Infinity, no numbers beyond int64 / float64, no repeated keys, bounded
    nesting), the schema version, every field's type and range, and the run's
    own consistency (rounds numbered 0..n-1, n_labeled matching the picks,
    confusion matrices matching the classes and test set, picks inside the pool
    and never labeled twice). Raises :class:`ResultFileError` naming the file and
    the problem; nothing else escapes for any input."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        name = name or "uploaded file"
    else:
        name = name or os.path.basename(str(source))
        raw = _read_bounded(source, name)
    data = _parse_json(raw, name)
    if not isinstance(data, dict):
        raise ResultFileError(f"{name}: expected a JSON object at the top level, got {type(data).__name__}")
    if "schema_version" not in data:
        raise ResultFileError(f"{name}: missing 'schema_version'; is this an alcore result file?")
    version = data["schema_version"]
    if type(version) is not int or version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_SCHEMA_VERSIONS))
        raise ResultFileError(f"{name}: unknown schema_version {_short.repr(version)}; this alcore "
                              f"({__version__}) reads schema_version {supported}")
    if isinstance(data.get("config"), dict):
        # A file made before a field existed gets what it did then, not today's default.
        for field_name, then in BEFORE_FIELD_EXISTED.items():
            data["config"].setdefault(field_name, then)
        # The config is checked by its own rules (as when it is typed on the command line) ...
        try:
            data["config"] = ExperimentConfig.model_validate(data["config"])
        except ValidationError as e:
            raise ResultFileError(f"{name}: {_format_validation(e, prefix='config.')}") from e
    try:
        # ... the rest strictly: a string is never read as a number ("Infinity" as a
        # float, "3" as an int), nor true as 1.
        return RunResult.model_validate(data, strict=True)
    except ValidationError as e:
        raise ResultFileError(f"{name}: {_format_validation(e)}") from e
    except RecursionError as e:
        raise ResultFileError(f"{name}: JSON nested too deeply") from e


# ---------------------------------------------------------------------------- CSV

CSV_COLUMNS = ("strategy", "seed", "round", "n_labeled", "test_accuracy", "test_loss",
               "train_seconds", "query_seconds")


def curve_rows(result: RunResult) -> list[dict]:
    c = result.config
    strategy = CEILING if result.ceiling is not None else c.strategy
    return [{"strategy": strategy, "seed": c.seed, "round": r.round, "n_labeled": r.n_labeled,
             "test_accuracy": r.test_accuracy, "test_loss": r.test_loss,
             "train_seconds": r.train_seconds, "query_seconds": r.query_seconds}
            for r in result.rounds]


def curves_csv(results: list[RunResult]) -> str:
    """The learning curves of one or more runs as CSV text, one row per round."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for res in results:
        for row in curve_rows(res):
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v)
                        for k, v in row.items()})
    return buf.getvalue()
