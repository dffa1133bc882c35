"""Images without labels, labelled in the loop: a person is the only oracle.

A :class:`LabellingRun` goes through three phases, each a sequence of batches the person labels
(with :class:`alcore.engine.oracle.BatchAnswers`):

1. **audit**: a random audit set of ``audit_size`` images (50-200), drawn uniformly from the
   uploaded images with the seed before anything else, set aside as the test split: no strategy
   ever sees it and no model trains on it. The accuracy of every round is measured on it, so
   the curve is an honest estimate (its Wilson interval: :func:`alcore.analysis.pitfalls.accuracy_interval`).
2. **initial**: the initial images (and fixed validation images) the config's initial strategy
   draws from the rest, the pool.
3. **rounds**: an :class:`alcore.engine.loop.Experiment` with ``oracle="person"``: round 0 trains
   on the initial labels, and each round's batch waits for the person, as on Be the oracle.

Nothing is known about the truth, so there is no simulated twin and no cost of mistakes. The
result file holds the person's initial, validation and audit labels
(:class:`alcore.results.records.RunResult`), and :meth:`LabellingRun.resume` continues from it.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from alcore.config import ExperimentConfig
from alcore.data.datasets import (Dataset, RawData, _readonly, check_class_names, check_images,
                                  normalize)
from alcore.engine.loop import Experiment
from alcore.engine.oracle import BatchAnswers
from alcore.results.records import RoundResult, RunResult

AUDIT_MIN, AUDIT_MAX, AUDIT_DEFAULT = 50, 200, 100
_AUDIT_STREAM = 104_729  # the audit draw's own random stream


def parse_class_names(text: str) -> tuple[str, ...]:
    """The classes a person names up front, comma-separated: at least two, none empty or repeated
    (case aside). A ValueError says what is wrong."""
    names = [n.strip() for n in str(text).strip().strip(",").split(",")]  # a trailing comma is forgiven
    if any(not n for n in names) and len([n for n in names if n]) >= 2:
        raise ValueError("an empty class name between commas: name every class, e.g. cat, dog, bird")
    names = [n for n in names if n]
    if len(names) < 2:
        raise ValueError("name at least two classes, separated by commas: e.g. cat, dog")
    seen: dict[str, str] = {}
    for n in names:
        if n.lower() in seen:
            raise ValueError(f"the class {n!r} is named twice")
        seen[n.lower()] = n
    return check_class_names(names, "class names")


def draw_audit(n_images: int, size: int, seed: int) -> np.ndarray:
    """``size`` image indices drawn uniformly without replacement from ``n_images`` (sorted)."""
    if not AUDIT_MIN <= size <= AUDIT_MAX:
        raise ValueError(f"the audit set holds {AUDIT_MIN}-{AUDIT_MAX} images; got {size}")
    if size >= n_images:
        raise ValueError(f"an audit set of {size} leaves no images to label out of {n_images}")
    rng = np.random.default_rng([int(seed), _AUDIT_STREAM])
    return np.sort(rng.choice(n_images, size, replace=False)).astype(np.int64)


def _dataset(raw: RawData, class_names: Sequence[str], audit: np.ndarray, audit_labels: Optional[Sequence[int]],
             config: ExperimentConfig) -> Dataset:
    """The pool (every image but the audit set, unlabeled: -1) and the audit set as the test split."""
    x = check_images(raw.x_train, "images")
    is_audit = np.zeros(len(x), bool)
    is_audit[audit] = True
    origin = np.flatnonzero(~is_audit)
    xp, xt, offset, scale = normalize(x[origin], x[audit], config.normalization)
    y_test = np.full(len(audit), -1, np.int32) if audit_labels is None else np.asarray(audit_labels, np.int32)
    files = raw.train_files
    return Dataset(name=f"images:{raw.source}", x_pool=_readonly(xp), y_pool=_readonly(np.full(len(origin), -1, np.int32)),
                   x_test=_readonly(xt), y_test=_readonly(y_test), class_names=tuple(class_names), source=raw.source,
                   display_offset=offset, display_scale=scale, pool_origin=_readonly(origin),
                   pool_files=None if files is None else tuple(files[i] for i in origin),
                   test_files=None if files is None else tuple(files[i] for i in audit), file_sha256=raw.file_sha256)


def images_problem(result: RunResult, images: RawData) -> Optional[str]:
    """Why ``images`` are not the ones the labelling run ``result`` was made on (None when nothing
    says so): their count, the audit set the run's seed draws from them (:func:`draw_audit`: a file
    whose ``audit_indices`` were edited names other test images) and the fingerprint of their pixels."""
    n, want = len(images.x_train), result.dataset.n_pool + result.dataset.n_test
    if n != want:
        return f"the images differ from the ones this run was labelled on: {n:,} images here, {want:,} in the run"
    try:
        drawn = draw_audit(n, len(result.audit_indices), result.config.seed)
    except ValueError as e:
        return f"audit_indices: {e}"
    if drawn.tolist() != list(result.audit_indices):
        return ("audit_indices are not the audit set the run's seed draws from these images: the file was "
                "edited, or made on other images")
    if result.images_sha256 is not None and result.images_sha256 != fingerprint(images):
        return "the images differ from the ones this run was labelled on (the fingerprint of their pixels differs)"
    return None


def labelled_dataset(result: RunResult, images: RawData) -> Dataset:
    """The dataset a labelling run's file was made on, from the same images (checked by
    :func:`images_problem`, a ValueError naming what differs): the pool without labels, the audit
    set with the person's, as the run saw them (for exporting its labels, replaying or continuing it)."""
    if not result.labelled_in_the_loop:
        raise ValueError(f"{result.label} is not a run on images without labels")
    if problem := images_problem(result, images):
        raise ValueError(problem)
    return _dataset(images, result.dataset.class_names, np.asarray(result.audit_indices, np.int64),
                    result.audit_labels, result.config)


def first_labels(result: RunResult) -> dict[int, int]:
    """The person's labels given before round 0 (fixed validation and initial images: pool index ->
    class), which a labelling run's file keeps apart from its rounds' ``given_labels``."""
    return {int(i): int(c) for i, c in zip((*result.validation_indices, *result.initial_indices),
                                           (*result.validation_labels, *result.initial_labels))}


def given_pool_labels(result: RunResult) -> np.ndarray:
    """The label a person gave each pool image in a run (before round 0 and in any round), -1 where
    none was given: what a labelling run knows of its pool."""
    y = np.full(result.dataset.n_pool, -1, np.int64)
    for i, c in first_labels(result).items():
        y[i] = c
    for r in result.rounds:
        y[r.selected[:len(r.given_labels)]] = r.given_labels
    return y


def run_dataset(result: RunResult, config: Optional[ExperimentConfig] = None) -> Dataset:
    """The dataset a result file was made on, loaded from ``config`` (default: the file's own): a
    labelling run's images rebuilt as it saw them (:func:`labelled_dataset`), any other run's by
    :func:`alcore.data.datasets.load_dataset`."""
    from alcore.data.datasets import load_dataset

    cfg = config or result.config
    if not result.labelled_in_the_loop:
        return load_dataset(cfg)
    from alcore.data.images import load_images

    return labelled_dataset(result, load_images(cfg.data_file, cfg.image_size).raw)


def fingerprint(images: RawData) -> str:
    """SHA-256 of the images' pixels (as loaded: same zip and image size, same fingerprint)."""
    import hashlib

    x = np.ascontiguousarray(images.x_train)
    return hashlib.sha256(str(x.shape).encode() + x.tobytes()).hexdigest()


def labelling_config(config: ExperimentConfig) -> ExperimentConfig:
    """The config as a labelling run uses it: no galleries (they show true labels, which nobody
    knows here). An initial strategy that needs the labels is refused."""
    if config.initial_strategy == "balanced":
        raise ValueError("the 'balanced' initial strategy needs the labels of the images; with images "
                         "without labels choose 'random', 'kmeans' or 'typiclust'")
    if config.warm_start:
        raise ValueError("warm_start is not supported when a person labels the images")
    return config.replace(inspect_k=0)


class LabellingRun:
    """Images without labels, a person labelling the audit set, the initial images and every batch."""

    def __init__(self, config: ExperimentConfig, images: RawData, class_names: Sequence[str],
                 audit_size: int = AUDIT_DEFAULT, *, cache=None):
        self.config = labelling_config(config)
        self.class_names = check_class_names(class_names, "class names")
        self.raw, self.cache = images, cache
        self.audit_indices = draw_audit(len(images.x_train), int(audit_size), self.config.seed)
        self.audit_labels: list[int] = []
        self.audit_seconds: list[float] = []
        self.dataset = _dataset(images, self.class_names, self.audit_indices, None, self.config)
        self.person: Optional[Experiment] = None
        self._first: list[int] = []  # pool indices labelled before round 0: validation, then initial
        self._first_labels: list[int] = []

    # ------------------------------------------------------------------ phases
    @property
    def phase(self) -> str:
        if len(self.audit_labels) < len(self.audit_indices):
            return "audit"
        if self.person is None or not self.person.rounds:
            return "initial"
        return "done" if self.person.done else "rounds"

    @property
    def done(self) -> bool:
        return self.phase == "done"

    @property
    def n_audit(self) -> int:
        return len(self.audit_indices)

    def _first_indices(self) -> list[int]:
        return [int(i) for i in (*self.person.validation_indices, *self.person.initial_indices)]

    @property
    def batch(self) -> np.ndarray:
        """The indices waiting for labels: into the audit set (the test split) in the audit phase,
        else into the pool. Audit and initial images come ``batch_size`` at a time."""
        k = self.config.batch_size
        phase = self.phase
        if phase == "audit":
            return np.arange(len(self.audit_labels), min(len(self.audit_labels) + k, self.n_audit))
        if phase == "initial":
            first = self._first_indices()
            return np.asarray(first[len(self._first): len(self._first) + k], np.int64)
        return self.person.awaiting if phase == "rounds" else np.empty(0, np.int64)

    def batch_images(self) -> np.ndarray:
        """The prepared images of :attr:`batch` (for :meth:`Dataset.display_images`)."""
        x = self.dataset.x_test if self.phase == "audit" else self.dataset.x_pool
        return x[self.batch]

    def batch_files(self) -> Optional[list[str]]:
        """The files the images of :attr:`batch` came from, where the dataset has them."""
        files = self.dataset.test_files if self.phase == "audit" else self.dataset.pool_files
        return None if files is None else [files[i] for i in self.batch]

    def submit(self, answers: BatchAnswers) -> Optional[RoundResult]:
        """Record the person's labels for the waiting batch; once the initial images are all labelled,
        train round 0; in the rounds, train the next round. The new round, if one was trained."""
        batch = [int(i) for i in self.batch]
        if answers.indices != batch:
            raise ValueError("these answers are for another batch than the one waiting")
        if not answers.complete:
            raise ValueError(f"{len(batch) - answers.n_answered} of the {len(batch)} images have no label yet")
        if any(not 0 <= c < len(self.class_names) for c in answers.labels):
            raise ValueError(f"labels must be classes 0..{len(self.class_names) - 1}")
        phase = self.phase
        if phase == "audit":
            self.audit_labels += answers.labels
            self.audit_seconds += answers.seconds
            if len(self.audit_labels) == self.n_audit:
                self._open()
            return None
        if phase == "initial":
            self._first += batch
            self._first_labels += answers.labels
            if len(self._first) < len(self._first_indices()):
                return None
            self.person._given.update(zip(self._first, self._first_labels))
            return self.person.step()
        self.person.give_labels(answers.labels, answers.seconds)
        return self.person.step()

    def _open(self) -> None:
        """The audit set is labelled: the dataset gets its test labels and the run its initial picks."""
        self.dataset = dataclasses.replace(self.dataset, y_test=_readonly(np.asarray(self.audit_labels, np.int32)))
        self.person = Experiment(self.config, dataset=self.dataset, cache=self.cache, oracle="person")

    # ---------------------------------------------------------------- the file
    def result(self) -> RunResult:
        """The run as a result file, with the person's initial, validation and audit labels
        (only once round 0 has trained: before, there is nothing to continue from)."""
        if self.person is None or not self.person.rounds:
            raise RuntimeError("label the audit set and the initial images first: round 0 has not trained yet")
        given = dict(zip(self._first, self._first_labels))
        res = self.person.result()
        return RunResult.model_validate({
            **res.model_dump(), "initial_labels": [given[int(i)] for i in res.initial_indices],
            "validation_labels": [given[int(i)] for i in res.validation_indices],
            "audit_indices": [int(i) for i in self.audit_indices], "audit_labels": list(self.audit_labels),
            "images_sha256": fingerprint(self.raw)})

    @classmethod
    def resume(cls, result: RunResult, images: RawData, *, cache=None) -> "LabellingRun":
        """Continue a labelling run from its result file, on the same images."""
        if not result.labelled_in_the_loop:
            raise ValueError(f"{result.label} is not a run on images without labels")
        dataset = labelled_dataset(result, images)  # the same images, checked
        run = cls.__new__(cls)
        run.config, run.class_names = result.config, tuple(result.dataset.class_names)
        run.raw, run.cache = images, cache
        run.audit_indices = np.asarray(result.audit_indices, np.int64)
        run.audit_labels, run.audit_seconds = list(result.audit_labels), []
        run.dataset = dataset
        given = first_labels(result)
        run._first, run._first_labels = list(given), list(given.values())
        run.person = Experiment.resume(result, dataset=run.dataset, cache=cache, given=given)
        return run

    def audit_accuracy(self) -> Optional[tuple[float, int]]:
        """(accuracy on the audit set, its size) of the latest round, if one trained."""
        if self.person is None or not self.person.rounds:
            return None
        return self.person.rounds[-1].test_accuracy, self.n_audit
