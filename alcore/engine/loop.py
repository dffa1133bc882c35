"""The active-learning loop: ``Experiment(config)`` yields one ``RoundResult`` per round.

A round trains on the current labels (early stopping on validation labels only),
evaluates on the test set (reporting only), scores the unlabeled pool and, unless
a stop condition holds, picks the next batch. The run can be stopped between
rounds and continued, also from a result file: every random choice of round ``r``
comes from a generator seeded with ``(seed, r, purpose)``, so an interrupted and
continued run picks exactly what an uninterrupted one does.

The oracle that answers the queries is simulated by default (the dataset's labels).
With ``oracle="person"`` a person answers: each round's batch waits for
:meth:`Experiment.give_labels`, and those labels, right or wrong, are what the model
trains and validates on (see :mod:`alcore.engine.oracle`).
"""
from __future__ import annotations

import os
import time
from typing import Callable, Iterator, Optional

import numpy as np

from alcore.config import DATA_DIR_DATASETS, ExperimentConfig
from alcore.data.datasets import Dataset, load_dataset
from alcore.engine.inspect import confidence_extremes, pool_summary
from alcore.results.records import RoundResult, RunResult, DatasetInfo, confusion_of, environment, now_iso
from alcore.strategies.base import HELD_OUT_FRACTION, HeldOut, Need, StrategyInput, make_strategy

# purposes of the per-round random generators
_INITIAL, _SHUFFLE, _SPLIT, _SELECT, _CANDIDATES, _VALIDATION, _REFIT, _INITIAL_CANDIDATES = range(8)


def round_rng(seed: int, round_: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, round_, purpose])


def choose_random(x_pool: np.ndarray, n: int, rng: np.random.Generator, exclude: np.ndarray,
                  labels: Optional[np.ndarray] = None) -> np.ndarray:
    """Cold start: ``n`` pool images uniformly at random (labels are never looked at)."""
    free = np.flatnonzero(~exclude)
    return rng.choice(free, n, replace=False)


def choose_balanced(x_pool: np.ndarray, n: int, rng: np.random.Generator, exclude: np.ndarray,
                    labels: Optional[np.ndarray] = None) -> np.ndarray:
    """Start: the same number of pool images from every class, at random within each
    (``n // classes`` each; the ``n % classes`` left over go to classes drawn at random).

    It looks at the labels, which a real cold start cannot; published protocols use it
    to remove the luck of the first draw (Gal et al. 2017: 2 images of each digit)."""
    if labels is None:
        raise ValueError("initial_strategy 'balanced' needs the pool's labels")
    classes = np.unique(labels)
    k = len(classes)
    quota = np.full(k, n // k)
    quota[rng.choice(k, n % k, replace=False)] += 1
    picks = []
    for c, q in zip(classes, quota):
        free = np.flatnonzero(~exclude & (labels == c))
        if q > len(free):
            raise ValueError(f"initial_strategy 'balanced' needs {q} images of class {c} but the pool has "
                             f"{len(free)} free; choose fewer initial labels or initial_strategy 'random'")
        picks.append(rng.choice(free, q, replace=False))
    return np.concatenate(picks)


def choose_kmeans(x_pool: np.ndarray, n: int, rng: np.random.Generator, exclude: np.ndarray,
                  labels: Optional[np.ndarray] = None) -> np.ndarray:
    """Cold start: the pool images nearest the centres of n k-means clusters of the
    pool's pixels (labels are never looked at; Zhdanov 2019, Hacohen et al. 2022)."""
    from alcore.strategies.diversity import _thread_limit, cluster_picks

    if n > 2000:
        raise ValueError(f"k-means cold start supports up to 2000 initial labels (got {n}); "
                         f"use initial_strategy 'random' for larger starts")
    free = np.flatnonzero(~exclude)
    with _thread_limit():
        picks, _ = cluster_picks(x_pool[free].reshape(len(free), -1), n, rng)
    return free[picks]


def choose_typiclust(x_pool: np.ndarray, n: int, rng: np.random.Generator, exclude: np.ndarray,
                     labels: Optional[np.ndarray] = None) -> np.ndarray:
    """Cold start: TypiClust with no label yet (Hacohen et al. 2022): k-means of the pool's
    pixels (scaled to unit length) into n clusters, and the most typical image of each, largest
    cluster first (:func:`alcore.strategies.coverage.typiclust_select`; labels are never looked at)."""
    from alcore.strategies.coverage import typiclust_select, unit_rows
    from alcore.strategies.diversity import _thread_limit

    if n > 2000:
        raise ValueError(f"typiclust cold start supports up to 2000 initial labels (got {n}); "
                         f"use initial_strategy 'random' for larger starts")
    free = np.flatnonzero(~exclude)
    x = unit_rows(x_pool[free].reshape(len(free), -1).astype(np.float32))
    with _thread_limit():
        picks, _ = typiclust_select(x, x[:0], n, rng)
    return free[picks]


def choose_by_strategy(strategy, x_pool: np.ndarray, n: int, rng: np.random.Generator, exclude: np.ndarray,
                       n_classes: int, candidates: Optional[np.ndarray] = None) -> np.ndarray:
    """Cold start 'strategy': the run's own strategy picks the first ``n`` labels where it can
    without a model, as TypiClust and ProbCover do in their papers (Hacohen et al. 2022, Yehuda
    et al. 2022: the budget starts at 0); at random (:func:`choose_random`, the same picks for
    the same seed) otherwise: random, and uncertainty strategies, which have no model to be
    unsure with yet.

    The coverage family (typiclust, probcover, maxherding, uherding) reads only features: it
    gets the pool's (``x_pool``, flattened), no labeled image, and uniform probabilities over
    ``n_classes`` (ProbCover's radius rule reads the class count from them; UHerding's
    uncertainty is then the same everywhere, so it covers like MaxHerding). ``candidates``: the
    pool indices it chooses among (the config's ``candidates`` subsample), default every free one."""
    if strategy.family != "coverage":
        return choose_random(x_pool, n, rng, exclude)
    cand = np.flatnonzero(~exclude) if candidates is None else np.asarray(candidates)
    x = x_pool[cand].reshape(len(cand), -1).astype(np.float32)
    inputs = StrategyInput(probs=np.full((len(cand), n_classes), 1.0 / n_classes), embeddings=x,
                           labeled_embeddings=x[:0])
    return cand[np.asarray(strategy.select(inputs, n, rng).indices)]


ORACLES = ("simulated", "person")

# Cold-start choosers: (pool images, how many, rng, already-taken mask, labels) -> pool indices.
INITIAL_CHOOSERS: dict[str, Callable[..., np.ndarray]] = {"random": choose_random, "kmeans": choose_kmeans,
                                                          "typiclust": choose_typiclust, "balanced": choose_balanced}


def _resolve(config: ExperimentConfig) -> ExperimentConfig:
    """Record $ALCORE_DATA_DIR in the config, so a result file says where data came from."""
    env_dir = os.environ.get("ALCORE_DATA_DIR")
    if config.data_dir is None and env_dir and config.dataset in DATA_DIR_DATASETS:
        return config.replace(data_dir=env_dir)
    return config


class Experiment:
    """One active-learning run. Iterate it (or call :meth:`run`) to stream rounds.

    ``dataset`` may be a prepared :class:`Dataset` (e.g. from a cache) and ``cache``
    a :class:`alcore.engine.training.TrainerCache` to reuse compiled models across runs.
    ``oracle``: "simulated" (the dataset's labels answer every query) or "person" (each
    batch waits for :meth:`give_labels`; the initial and fixed validation labels are the
    dataset's own in both). A config whose early stopping would watch fewer than
    ``MIN_VALIDATION`` images is refused (:meth:`ExperimentConfig.check_early_stopping`)
    unless ``check_validation`` is False, for going on with a run made before that check.
    ``embeddings``: the :class:`alcore.engine.embeddings.EmbeddingCache` of the config's embedding
    (the default folder where None); ``progress`` hears how computing it goes.
    ``given``: labels a person gave before the run (pool index -> class), e.g. the initial
    labels of images that have none (:mod:`alcore.engine.labelling`); they replace the dataset's.
    """

    def __init__(self, config: ExperimentConfig, *, dataset: Optional[Dataset] = None, cache=None,
                 oracle: str = "simulated", check_validation: bool = True, given: Optional[dict] = None,
                 embeddings=None, progress=None):
        if oracle not in ORACLES:
            raise ValueError(f"oracle must be one of {', '.join(ORACLES)}; got {oracle!r}")
        if check_validation:  # False only to go on with a run made before the check, as it started
            config.check_early_stopping()
        self.oracle = oracle
        self.config = _resolve(config)
        self.dataset = dataset if dataset is not None else load_dataset(self.config)
        self.embedding_report = None  # where the embedding came from (alcore.engine.embeddings)
        if self.config.model == "transfer":
            from alcore.engine.transfer import with_backbone_features  # once per dataset: pass the result on

            self.dataset = with_backbone_features(self.dataset, self.config)
        elif self.config.embedding != "pixels" or self.dataset.features_pool is not None:
            from alcore.engine.embeddings import compute_embeddings

            self.dataset, self.embedding_report = compute_embeddings(self.dataset, self.config, cache=embeddings,
                                                                     progress=progress)
        self._cache = cache
        self.strategy = make_strategy(self.config.strategy, self.config)
        cfg, n_pool = self.config, len(self.dataset.y_pool)
        n_val = cfg.validation_labels()
        if cfg.first_round_labels() > n_pool:
            raise ValueError(f"initial ({cfg.initial}) plus fixed validation labels ({n_val}) exceed "
                             f"the pool of {n_pool} images")
        if cfg.rounds and cfg.batch_size > n_pool - cfg.initial - n_val:
            raise ValueError(f"batch_size {cfg.batch_size} is larger than the "
                             f"{n_pool - cfg.initial - n_val} unlabeled pool images")
        if cfg.candidates is not None and cfg.candidates < cfg.batch_size:
            raise ValueError(f"candidates ({cfg.candidates}) must be at least batch_size ({cfg.batch_size})")
        self._taken = np.zeros(n_pool, dtype=bool)
        self.validation_indices = np.empty(0, dtype=np.int64)
        if n_val:
            self.validation_indices = np.sort(
                round_rng(cfg.seed, 0, _VALIDATION).choice(n_pool, n_val, replace=False))
            self._taken[self.validation_indices] = True
        # k-means clusters what the model reads: the pixels, or the embedding chosen for it
        # (the transfer model's own features aside: its runs cluster pixels, as they always did)
        seen = self.dataset.inputs_pool if cfg.embedding != "pixels" else self.dataset.x_pool
        if cfg.initial_strategy == "strategy":
            free = np.flatnonzero(~self._taken)
            cand = None
            if cfg.candidates is not None and cfg.candidates < len(free):  # as every round does
                cand = np.sort(round_rng(cfg.seed, 0, _INITIAL_CANDIDATES).choice(free, cfg.candidates, replace=False))
            initial = choose_by_strategy(self.strategy, seen, cfg.initial, round_rng(cfg.seed, 0, _INITIAL),
                                         self._taken.copy(), self.dataset.n_classes, cand)
        else:
            chooser = INITIAL_CHOOSERS[cfg.initial_strategy]
            initial = chooser(seen, cfg.initial, round_rng(cfg.seed, 0, _INITIAL), self._taken.copy(),
                              labels=self.dataset.y_pool)
        initial = np.asarray(initial, dtype=np.int64)
        self.initial_indices = initial
        self._taken[initial] = True
        self._labeled: list[int] = [int(i) for i in initial]
        self._given: dict[int, int] = {}  # pool index -> the person's label, where one was given
        self._given.update((int(i), int(c)) for i, c in (given or {}).items())  # e.g. initial labels
        self.rounds: list[RoundResult] = []
        self.status = "ready"
        self.stop_reason = ""
        self._stop_requested = False
        self._warm: Optional[list] = None
        self._trainer = None
        self._last_pred = np.full(n_pool, -1, dtype=np.int64)  # previous round's predictions
        self.last_scored: Optional[tuple[np.ndarray, np.ndarray]] = None

    # ------------------------------------------------------------------ properties
    @property
    def n_labeled(self) -> int:
        return len(self._labeled) + len(self.validation_indices)

    @property
    def labeled_indices(self) -> np.ndarray:
        return np.asarray(self._labeled, dtype=np.int64)

    @property
    def awaiting(self) -> np.ndarray:
        """Pool indices of the batch waiting for the person's labels (empty when none is, and
        always for the simulated oracle)."""
        if self.oracle != "person" or not self.rounds or self.rounds[-1].given_labels:
            return np.empty(0, dtype=np.int64)
        return np.asarray(self.rounds[-1].selected, dtype=np.int64)

    def labels_of(self, indices: np.ndarray, *, truth: bool = False) -> np.ndarray:
        """The labels the oracle gave these pool images (the person's where given, else the
        dataset's); with ``truth``, the dataset's own."""
        y = self.dataset.y_pool[indices]
        if truth or not self._given:
            return y
        return np.array([self._given.get(int(i), t) for i, t in zip(indices, y)], dtype=y.dtype)

    def give_labels(self, labels, seconds=None) -> RoundResult:
        """The person's labels for the waiting batch, in the order of its ``selected``, and
        optionally the seconds each took; recorded in the round and used from the next round on."""
        batch = self.awaiting
        if not len(batch):
            raise RuntimeError("no batch is waiting for labels" + (
                "" if self.oracle == "person" else " (the simulated oracle answers every query itself)"))
        labels = [int(c) for c in labels]
        k = self.dataset.n_classes
        if len(labels) != len(batch):
            raise ValueError(f"{len(labels)} labels for a batch of {len(batch)} images")
        if any(not 0 <= c < k for c in labels):
            raise ValueError(f"labels must be classes 0..{k - 1}; got {labels}")
        seconds = [] if seconds is None else [float(s) for s in seconds]
        if seconds and (len(seconds) != len(labels) or not all(np.isfinite(s) and s >= 0 for s in seconds)):
            raise ValueError(f"seconds must be {len(labels)} finite numbers >= 0, one per label")
        last = self.rounds[-1]
        self.rounds[-1] = RoundResult(**{**dict(last), "given_labels": labels, "label_seconds": seconds,
                                                 "labelled_at": now_iso()})
        self._given.update(zip((int(i) for i in batch), labels))
        return self.rounds[-1]

    @property
    def done(self) -> bool:
        return self.status == "complete"

    @property
    def trainer(self):
        """The model for this config: a convex :class:`SoftmaxLearner` for ``softmax``, else a
        compiled Keras :class:`Trainer` (imports TensorFlow on first use)."""
        if self._trainer is None and self.config.model == "softmax":
            from alcore.engine.softmax import SoftmaxLearner

            shape = self.dataset.inputs_pool.shape[1:]
            self._trainer = SoftmaxLearner(int(np.prod(shape)), self.dataset.n_classes,
                                           self.config.penalty_c, self.config.penalty_cv)
        if self._trainer is None:
            from alcore.engine.models import ModelSpec
            from alcore.engine.training import TrainerCache

            if self._cache is None:
                self._cache = TrainerCache()
            cfg = self.config
            spec = ModelSpec.from_config(cfg, self.dataset.inputs_pool.shape[1:], self.dataset.n_classes)
            self._trainer = self._cache.get(spec, cfg.optimizer, cfg.momentum, cfg.train_batch_size)
        return self._trainer

    def release_model(self) -> None:
        """Let go of the compiled model (its memory is freed once no cache holds it either); the
        next round builds it again. Nothing changes in what the run computes: every round sets
        the weights it starts from (the seed's, or the last round's with warm_start)."""
        self._trainer = None

    # ------------------------------------------------------------------- control
    def stop(self) -> None:
        """Ask the run to stop after the round in progress (it can be continued)."""
        self._stop_requested = True

    def __iter__(self) -> Iterator[RoundResult]:
        return self.run()

    def run(self, max_rounds: Optional[int] = None) -> Iterator[RoundResult]:
        """Yield rounds until a stop condition, :meth:`stop`, or ``max_rounds`` more rounds."""
        self._stop_requested = False
        done_here = 0
        while not self.done and not self._stop_requested and (max_rounds is None or done_here < max_rounds):
            yield self.step()
            done_here += 1
        if not self.done:
            self.status = "stopped"

    # ---------------------------------------------------------------------- round
    def _split(self, r: int, labeled: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.config
        lab = self.labeled_indices if labeled is None else labeled
        if cfg.validation == "fixed":
            return lab, self.validation_indices
        if cfg.validation == "none":
            return lab, np.empty(0, dtype=np.int64)
        perm = round_rng(cfg.seed, r, _SPLIT).permutation(lab)
        n_val = min(int(round(cfg.validation_fraction * len(lab))), len(lab) - 1)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _stop_condition(self, r: int, acc: float, n_free: int, summary=None) -> str:
        cfg = self.config
        if cfg.rounds is not None and r >= cfg.rounds:
            return f"reached {cfg.rounds} acquisition rounds"
        if cfg.label_budget is not None and self.n_labeled >= cfg.label_budget:
            return f"label budget of {cfg.label_budget} used"
        if cfg.target_accuracy is not None and acc >= cfg.target_accuracy:
            return f"test accuracy {acc:.4f} reached the target {cfg.target_accuracy}"
        if cfg.plateau_rounds is not None:
            accs = [x.test_accuracy for x in self.rounds] + [acc]
            if len(accs) > cfg.plateau_rounds:
                recent = np.abs(np.diff(accs[-(cfg.plateau_rounds + 1):]))
                if np.all(recent < cfg.plateau_delta):
                    return (f"accuracy changed by less than {cfg.plateau_delta} for "
                            f"{cfg.plateau_rounds} rounds")
        if n_free == 0:
            return "no unlabeled pool images left"
        if summary is not None and cfg.uncertainty_threshold is not None \
                and summary.mean_uncertainty < cfg.uncertainty_threshold:
            return (f"mean pool uncertainty {summary.mean_uncertainty:.4f} fell below "
                    f"{cfg.uncertainty_threshold}")
        if summary is not None and cfg.changed_threshold is not None and summary.changed_fraction is not None \
                and summary.changed_fraction < cfg.changed_threshold:
            return (f"only {summary.changed_fraction:.2%} of pool predictions changed "
                    f"(threshold {cfg.changed_threshold:.2%})")
        return ""

    def _train_round(self, r: int, extra: Optional[tuple[np.ndarray, np.ndarray]] = None, cap_hint: int = 0,
                     *, labeled: Optional[np.ndarray] = None, truth: bool = False):
        """Train the round-``r`` model on the current labels (hold ``trainer.lock``).

        ``extra``: more (pool indices, labels) to train on, e.g. pseudo-labels; they
        never enter the validation split. ``labeled``: other labeled pool indices than the
        current ones; ``truth``: the dataset's labels in place of the person's."""
        cfg, ds, trainer = self.config, self.dataset, self.trainer
        if cfg.model == "softmax":
            return self._fit_convex(r, extra, labeled=labeled, truth=truth)
        train_idx, val_idx = self._split(r, labeled)
        x_train, y_train = ds.inputs_pool[train_idx], self.labels_of(train_idx, truth=truth)
        if extra is not None and len(extra[0]):
            x_train = np.concatenate([x_train, ds.inputs_pool[extra[0]]])
            y_train = np.concatenate([y_train, np.asarray(extra[1], dtype=np.int32)])
        cap_hint = cap_hint or cfg.max_labels() or 0
        val_hint = (cfg.validation_labels() if cfg.validation == "fixed"
                    else int(np.ceil(cfg.validation_fraction * cap_hint)) if cfg.validation == "split" else 0)
        start = self._warm if (cfg.warm_start and self._warm is not None) else trainer.initial_weights(cfg.seed)
        trainer.set_weights(start)
        trainer.reset_optimizer(cfg.learning_rate)
        epochs, max_steps, epoch_cap = self._schedule(len(x_train), len(val_idx))
        report = trainer.fit(x_train, y_train,
                             ds.inputs_pool[val_idx] if len(val_idx) else None,
                             self.labels_of(val_idx, truth=truth) if len(val_idx) else None,
                             max_epochs=epochs, patience=cfg.patience, l2=cfg.l2,
                             rng=round_rng(cfg.seed, r, _SHUFFLE), capacity=cap_hint,
                             val_capacity=val_hint, epoch_capacity=epoch_cap, max_steps=max_steps,
                             weight_decay=self._weight_decay)
        if cfg.refit and len(val_idx):
            # Early stopping chose the epoch count; now use every label for training.
            trainer.set_weights(start)
            trainer.reset_optimizer(cfg.learning_rate)
            trainer.fit(np.concatenate([x_train, ds.inputs_pool[val_idx]]),
                        np.concatenate([y_train, self.labels_of(val_idx, truth=truth)]),
                        max_epochs=max(report.best_epoch, 1),
                        patience=1, l2=cfg.l2, rng=round_rng(cfg.seed, r, _REFIT), capacity=cap_hint,
                        val_capacity=val_hint, epoch_capacity=epoch_cap, weight_decay=self._weight_decay)
        if cfg.warm_start:
            self._warm = trainer.get_weights()
        return report, train_idx, val_idx

    def _fit_convex(self, r: int, extra=None, *, labeled: Optional[np.ndarray] = None, truth: bool = False):
        """softmax: fit to convergence on every label (fixed validation labels included: a
        convex fit needs no validation). The generator of round r draws penalty_cv's folds."""
        ds = self.dataset
        lab = self.labeled_indices if labeled is None else labeled
        train_idx = np.sort(np.concatenate([lab, self.validation_indices]).astype(np.int64))
        x, y = ds.inputs_pool[train_idx], self.labels_of(train_idx, truth=truth)
        if extra is not None and len(extra[0]):
            x = np.concatenate([x, ds.inputs_pool[extra[0]]])
            y = np.concatenate([y, np.asarray(extra[1], dtype=np.int32)])
        report = self.trainer.fit(x, y, rng=round_rng(self.config.seed, r, _SPLIT))
        return report, train_idx, np.empty(0, dtype=np.int64)

    @property
    def _weight_decay(self) -> float:
        return self.config.weight_decay if self.config.model != "softmax" else 0.0

    def _schedule(self, n_train: int, n_val: int) -> tuple[int, Optional[int], int]:
        """(epochs, most steps, epoch capacity) of a round training on ``n_train`` labels.

        With early stopping (or softmax): up to max_epochs epochs, as always. Otherwise the
        step schedule of :func:`alcore.engine.training.schedule`; the epoch capacity is the
        schedule's epochs on the fewest labels the run trains on, so the compiled call keeps
        one shape all run."""
        from alcore.engine.training import schedule

        cfg = self.config
        if n_val or cfg.model == "softmax" or cfg.validation != "none":
            return cfg.max_epochs, None, cfg.max_epochs
        epochs, steps = schedule(n_train, cfg.train_batch_size, cfg.max_epochs, cfg.min_steps, cfg.max_steps)
        first, _ = schedule(min(cfg.initial, n_train), cfg.train_batch_size, cfg.max_epochs, cfg.min_steps,
                            cfg.max_steps)
        return epochs, steps, max(first, epochs)

    def _evaluate(self) -> tuple[float, float, np.ndarray]:
        """Test accuracy, mean cross-entropy (probabilities clipped at 1e-7, as in
        training) and predicted classes of the trainer's current model: one pass with
        dropout off, or with ``mc_evaluation`` the mean of ``mc_passes`` passes with it on."""
        ds, cfg = self.dataset, self.config
        if cfg.mc_evaluation:
            pt = self.trainer.predict_proba_mc_mean(ds.inputs_test, cfg.mc_passes)
        else:
            pt = self.trainer.predict_proba(ds.inputs_test)
        pred = pt.argmax(axis=1)
        py = np.clip(pt[np.arange(len(pt)), ds.y_test], 1e-7, 1.0)
        return float((pred == ds.y_test).mean()), float(-np.log(py).mean()), pred

    def _candidates(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """(all unlabeled pool indices, the ones scored in round r)."""
        cfg = self.config
        free = np.flatnonzero(~self._taken)
        cand = free
        if cfg.candidates is not None and cfg.candidates < len(free):
            cand = np.sort(round_rng(cfg.seed, r, _CANDIDATES).choice(free, cfg.candidates, replace=False))
        return free, cand

    def _strategy_input(self, cand: np.ndarray, probs: np.ndarray, strategies=None) -> StrategyInput:
        """What ``strategies`` (default: this run's) read of the round's model (hold
        ``trainer.lock``): the candidates' probabilities, and what else any of them needs."""
        ds, trainer = self.dataset, self.trainer
        strategies = [self.strategy] if strategies is None else strategies
        needs = frozenset().union(*(s.needs for s in strategies))
        passes = max((s.passes for s in strategies if Need.MC_PASSES in s.needs), default=0)
        return StrategyInput(
            probs=probs,
            embeddings=trainer.embed(ds.inputs_pool[cand]) if Need.EMBEDDINGS in needs else None,
            labeled_embeddings=(trainer.embed(ds.inputs_pool[self.labeled_indices])
                                if Need.LABELED_EMBEDDINGS in needs else None),
            mc_probs=trainer.predict_proba_mc(ds.inputs_pool[cand], passes) if Need.MC_PASSES in needs else None,
            held_out=self._held_out(len(self.rounds)) if Need.HELD_OUT in needs else None,
        )

    def _held_out(self, r: int) -> HeldOut:
        """``Need.HELD_OUT`` in round ``r`` (hold ``trainer.lock``): a fresh model trained as round r
        trains its own (:meth:`_train_round`: same learner, settings, fixed validation labels and
        random generators) on the labels but the last ``int(0.3 |L|)`` acquired, and its
        probabilities for those (UHerding's reference code: ``lSet[:-n]`` / ``lSet[-n:]``).

        It starts from the seed's initial weights even in a warm-started run, as the reference's
        calibration model does (the last round's weights have seen the held-out labels). The
        trainer gets the round's own model back afterwards, and a warm start its weights."""
        t0 = time.perf_counter()
        lab = self.labeled_indices
        n_held = int(HELD_OUT_FRACTION * len(lab))
        if n_held == 0:
            return HeldOut.none(f"{len(lab)} labels leave none to hold out (int({HELD_OUT_FRACTION:g} x {len(lab)}) "
                                f"= 0)")
        fit, held = lab[:-n_held], lab[-n_held:]
        if len(np.unique(self.labels_of(fit))) < 2:
            return HeldOut.none(f"the first {len(fit)} labels hold one class only")
        trainer = self.trainer
        kept, warm = trainer.get_weights(), self._warm
        self._warm = None
        try:
            self._train_round(r, labeled=fit)
            probs = trainer.predict_proba(self.dataset.inputs_pool[held])
        finally:
            trainer.set_weights(kept)
            self._warm = warm
        return HeldOut(np.asarray(probs, dtype=np.float64), self.labels_of(held), n_train=len(fit),
                       seconds=time.perf_counter() - t0)

    def _select(self, r: int, inputs: StrategyInput, want: int, cand: np.ndarray, strategy=None, rng=None):
        """The batch ``strategy`` (default: this run's) picks in round ``r``: a :class:`Selection`
        of positions into ``cand``, checked (no repeats, none outside the candidates)."""
        strategy = self.strategy if strategy is None else strategy
        sel = strategy.select(inputs, want, round_rng(self.config.seed, r, _SELECT) if rng is None else rng)
        picks = np.asarray(sel.indices, dtype=np.int64)
        if len(np.unique(picks)) != len(picks) or (len(picks) and (picks.min() < 0 or picks.max() >= len(cand))):
            raise RuntimeError(f"strategy {strategy.name!r} returned invalid or repeated picks")
        return sel

    def step(self) -> RoundResult:
        """Run one round and return its record. A round that ends part way, by an error or
        because it was stopped (:mod:`alcore.engine.cancel`), leaves the run as it was
        before the round: it continues with the picks an uninterrupted run makes."""
        before = (self.status, self._warm, self._last_pred.copy(), self.last_scored)
        try:
            return self._round()
        except BaseException:
            self.status, self._warm, self._last_pred, self.last_scored = before
            raise

    def _round(self) -> RoundResult:
        if self.done:
            raise RuntimeError(f"the run is complete ({self.stop_reason}); nothing to continue")
        if len(self.awaiting):
            raise RuntimeError(f"round {len(self.rounds) - 1}'s batch of {len(self.awaiting)} images is waiting "
                               f"for the person's labels (give_labels)")
        cfg, ds = self.config, self.dataset
        r = len(self.rounds)
        self.status = "running"
        trainer = self.trainer
        with trainer.lock:
            t0 = time.perf_counter()
            report, train_idx, val_idx = self._train_round(r)
            train_seconds = time.perf_counter() - t0

            t0 = time.perf_counter()
            acc, loss, pred = self._evaluate()
            confusion = confusion_of(ds.y_test, pred, ds.n_classes)
            eval_seconds = time.perf_counter() - t0

            t0 = time.perf_counter()
            free, cand = self._candidates(r)
            probs = trainer.predict_proba(ds.inputs_pool[cand])
            pool_pred = probs.argmax(axis=1)
            before = self._last_pred[cand]
            known = before >= 0
            changed = float((before[known] != pool_pred[known]).mean()) if known.any() else None
            self._last_pred[cand] = pool_pred
            summary = pool_summary(probs, changed)
            reason = self._stop_condition(r, acc, len(free), summary)
            inputs = self._strategy_input(cand, probs) if not reason else None
            score_seconds = time.perf_counter() - t0

        most, least = confidence_extremes(probs, cand, ds.y_pool[cand], cfg.inspect_k)
        self.last_scored = (cand, probs)
        selected = np.empty(0, dtype=np.int64)
        scores = np.empty(0)
        predicted: list[int] = []
        recorded: dict = {}
        select_seconds = 0.0
        if not reason:
            want = cfg.batch_size
            if cfg.label_budget is not None:
                want = min(want, cfg.label_budget - self.n_labeled)
            want = min(want, len(cand))
            t0 = time.perf_counter()
            sel = self._select(r, inputs, want, cand)
            select_seconds = time.perf_counter() - t0
            picks = np.asarray(sel.indices, dtype=np.int64)
            selected = cand[picks]
            scores = np.asarray(sel.scores, dtype=np.float64)[picks]
            predicted = probs.argmax(axis=1)[picks].tolist()
            recorded = dict(sel.record)

        result = RoundResult(
            round=r, n_labeled=self.n_labeled, n_train=len(train_idx), n_validation=len(val_idx),
            test_accuracy=acc, test_loss=loss, confusion=confusion, epochs=report.epochs,
            validation_loss=report.best_val_loss, train_seconds=train_seconds,
            penalty_c=getattr(report, "penalty_c", None) if cfg.penalty_cv else None,
            score_seconds=score_seconds, select_seconds=select_seconds,
            query_seconds=score_seconds + select_seconds, eval_seconds=eval_seconds,
            selected=selected.tolist(), selected_scores=[float(s) for s in scores],
            selected_predicted=predicted,
            pool=summary, most_confident=most, least_confident=least, **recorded,
        )
        self.rounds.append(result)
        self._labeled.extend(int(i) for i in selected)
        self._taken[selected] = True
        if reason:
            self.status, self.stop_reason = "complete", reason
        return result

    def retrain(self, round_: int, *, truth: bool = False) -> tuple[float, float]:
        """Train round ``round_``'s model again on the images labeled then and return its test
        accuracy and loss. With ``truth``, on the dataset's labels in place of the person's:
        the difference is what the person's mistakes cost that round."""
        if self.config.warm_start:
            raise ValueError("a warm-start run cannot be retrained: the weights it started from are not kept")
        n = self.rounds[round_].n_labeled - len(self.validation_indices)
        with self.trainer.lock:
            self._train_round(round_, labeled=self.labeled_indices[:n], truth=truth)
            acc, loss, _ = self._evaluate()
        return acc, loss

    def _replay_predictions(self, r: int) -> None:
        """Retrain round r's model (deterministic with cold start) to recover the pool
        predictions the next round compares against (changed_fraction)."""
        with self.trainer.lock:
            self._train_round(r)
            _, cand = self._candidates(r)
            self._last_pred[cand] = self.trainer.predict_proba(self.dataset.inputs_pool[cand]).argmax(axis=1)

    # -------------------------------------------------------------------- results
    def result(self) -> RunResult:
        """The run so far as a result-file object."""
        trainer_params = self._trainer.count_params() if self._trainer is not None else None
        return RunResult(
            created=now_iso(), status="complete" if self.done else ("stopped" if self.rounds else "running"),
            stop_reason=self.stop_reason or ("stopped before a stop condition" if self.rounds and not self.done else ""),
            config=self.config, environment=environment(),
            dataset=DatasetInfo(**self.dataset.describe()),
            oracle=self.oracle, initial_indices=[int(i) for i in self.initial_indices],
            validation_indices=[int(i) for i in self.validation_indices],
            n_parameters=trainer_params, rounds=list(self.rounds), **self._result_extra(),
        )

    def _result_extra(self) -> dict:
        """More fields of the result file, for a kind of run that has them (the oracle ceiling)."""
        return {}

    @classmethod
    def resume(cls, result: RunResult, *, dataset: Optional[Dataset] = None, cache=None,
               given: Optional[dict] = None, embeddings=None, progress=None) -> "Experiment":
        """Continue a stopped run from its result: labels and rounds are replayed, and
        the next rounds pick exactly what an uninterrupted run would have."""
        if result.config.warm_start and result.rounds:
            raise ValueError("a warm-start run cannot be continued from its file: the weights "
                             "it would start from are not saved")
        if result.ceiling is not None and cls is Experiment:  # an oracle ceiling's file
            from alcore.engine.ceiling import OracleCeiling

            return OracleCeiling.resume(result, dataset=dataset, cache=cache, embeddings=embeddings,
                                        progress=progress)
        exp = cls(result.config, dataset=dataset, cache=cache, oracle=result.oracle,
                  check_validation=False, given=given, embeddings=embeddings, progress=progress)
        return cls._replay(exp, result)

    @staticmethod
    def _replay(exp: "Experiment", result: RunResult) -> "Experiment":
        """``exp``, made afresh with ``result``'s settings, brought to where ``result`` stopped."""
        if [int(i) for i in exp.initial_indices] != list(result.initial_indices):
            raise ValueError("the dataset differs from the one this result was made on: "
                             "its initial labels do not match")
        if exp.dataset.n_classes != result.dataset.n_classes or len(exp.dataset.y_pool) != result.dataset.n_pool:
            raise ValueError("the dataset differs from the one this result was made on")
        # The galleries record pool indices with their true labels: a fingerprint of the pool
        # that catches a different split or shuffle of the same-sized data.
        refs = [ref for r in result.rounds for ref in (*r.most_confident, *r.least_confident)]
        if refs:
            idx = np.array([ref.index for ref in refs])
            if idx.max() >= len(exp.dataset.y_pool) or \
                    (exp.dataset.y_pool[idx] != np.array([ref.label for ref in refs])).any():
                raise ValueError("the dataset differs from the one this result was made on: "
                                 "its pool images have other labels")
        for r in result.rounds:
            sel = np.asarray(r.selected, dtype=np.int64)
            if exp._taken[sel].any():
                raise ValueError(f"round {r.round} of the result picks an image that was already labeled")
            if r is result.rounds[-1] and result.status != "complete":
                exp._replay_predictions(r.round)
            exp._labeled.extend(int(i) for i in sel)
            exp._taken[sel] = True
            exp._given.update(zip(r.selected, r.given_labels))
        exp.rounds = list(result.rounds)
        exp.strategy.restore(exp.rounds)  # e.g. the radius ProbCover chose on the first round
        if result.status == "complete":
            exp.status, exp.stop_reason = "complete", result.stop_reason
        elif result.rounds:
            exp.status = "stopped"
        return exp
