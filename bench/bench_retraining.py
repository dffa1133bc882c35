"""Fast retraining benchmark: alcore's loop against the straightforward Keras loop.

Both loops run the same :class:`alcore.Experiment` (same initial labels, same
validation splits, same strategy code, same initial weights); only the trainer
differs:

- alcore: one compiled model per architecture, weights reset from a snapshot,
  a whole round of training in one XLA-compiled call, pool scored in big batches;
- straightforward: every round builds and compiles a fresh model, calls
  ``model.fit(..., validation_data=..., callbacks=[EarlyStopping(patience,
  restore_best_weights=True)])`` and ``model.predict`` / ``model.evaluate``.

    python bench/bench_retraining.py              # everything (about 6 minutes)
    python bench/bench_retraining.py --quick      # straightforward loop on 8 rounds only

Parts:
1. digits protocol (softmax, 10 initial labels, 39 rounds of 10, margin,
   early stopping on a 20% split): time and final accuracy of both loops, ratio;
2. MNIST, pool 4000, full 10 000-image test set, same protocol: alcore's whole
   40-round run, timed after TensorFlow is imported (compilation included);
3. scoring and selecting from the full 60 000-image MNIST pool with softmax:
   seconds per round;
4. the cnn's round training with and without XLA (why only dense models use it).

    python bench/bench_retraining.py --parts 4    # one part only
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


t_import = time.perf_counter()
from alcore._tf import keras, tf  # noqa: E402,F401

TF_IMPORT_SECONDS = time.perf_counter() - t_import

from alcore import ExperimentConfig, Experiment  # noqa: E402
from alcore.data.datasets import load_dataset  # noqa: E402
from alcore.engine.models import build_model  # noqa: E402
from alcore.strategies.base import make_strategy, StrategyInput  # noqa: E402
from alcore.engine.training import FitReport, TrainerCache  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"

PROTOCOL = dict(model="softmax", strategy="margin", initial=10, batch_size=10, rounds=39,
                validation="split", validation_fraction=0.2, max_epochs=100, patience=5,
                learning_rate=0.01, optimizer="adam", train_batch_size=32, refit=False, seed=0)


class StraightforwardTrainer:
    """The notebook loop: fresh model + compile + fit(EarlyStopping) + predict each round."""

    def __init__(self, spec, config):
        import threading

        self.spec, self.config = spec, config
        self.lock = threading.Lock()
        self.model = None
        self._seed = 0

    def initial_weights(self, seed):
        return seed

    def set_weights(self, seed):
        self._seed = seed

    def reset_optimizer(self, learning_rate):
        pass

    def get_weights(self):
        return self.model.get_weights()

    def fit(self, x, y, x_val=None, y_val=None, *, max_epochs, patience, l2=0.0, rng=None,
            capacity=0, val_capacity=0, epoch_capacity=0):
        cfg = self.config
        self.model = build_model(self.spec, seed=self._seed)
        opt = (keras.optimizers.Adam(cfg.learning_rate) if cfg.optimizer == "adam"
               else keras.optimizers.SGD(cfg.learning_rate, momentum=cfg.momentum))
        self.model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        has_val = x_val is not None and len(x_val) > 0
        callbacks = ([keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                    restore_best_weights=True)] if has_val else [])
        hist = self.model.fit(x, y, validation_data=(x_val, y_val) if has_val else None,
                              epochs=max_epochs, batch_size=cfg.train_batch_size, shuffle=True,
                              callbacks=callbacks, verbose=0)
        val = hist.history.get("val_loss")
        epochs = len(hist.history["loss"])
        return FitReport(epochs, float(min(val)) if val else None, float(hist.history["loss"][-1]),
                         int(np.argmin(val)) + 1 if val else epochs)

    def predict_proba(self, x):
        return self.model.predict(x, verbose=0)

    def count_params(self):
        return int(self.model.count_params())


class StraightforwardCache:
    def get(self, spec, optimizer, momentum, train_batch_size):
        return self._trainer

    def __init__(self, config):
        self.config = config
        self._trainer = None

    def bind(self, spec):
        self._trainer = StraightforwardTrainer(spec, self.config)


def run(config, dataset, cache, max_rounds=None):
    t0 = time.perf_counter()
    exp = Experiment(config, dataset=dataset, cache=cache)
    rounds = list(exp.run(max_rounds=max_rounds))
    return time.perf_counter() - t0, rounds


def part_digits(quick: bool) -> None:
    from alcore.engine.models import ModelSpec

    cfg = ExperimentConfig(dataset="digits", **PROTOCOL)
    ds = load_dataset(cfg)
    fast_s, fast = run(cfg, ds, TrainerCache())
    graph_s, graph = run(cfg, ds, TrainerCache(jit=False))
    slow_cache = StraightforwardCache(cfg)
    slow_cache.bind(ModelSpec.from_config(cfg, ds.image_shape, ds.n_classes))
    limit = 8 if quick else None
    slow_s, slow = run(cfg, ds, slow_cache, max_rounds=limit)
    n = len(slow)
    fast_same = sum(r.train_seconds + r.query_seconds + r.eval_seconds for r in fast[:n])
    print("1. digits protocol: softmax, 10 initial, 39 rounds of 10, margin, early stopping on a 20% split")
    print(f"   alcore loop:          {fast_s:8.2f} s for {len(fast)} rounds "
          f"(first round, with XLA compilation: {fast[0].train_seconds:.2f} s), "
          f"final accuracy {fast[-1].test_accuracy:.4f} at {fast[-1].n_labeled} labels, "
          f"{sum(r.epochs for r in fast)} epochs")
    print(f"   alcore, no XLA:       {graph_s:8.2f} s for {len(graph)} rounds "
          f"(same graph function run by TensorFlow's executor, op by op), "
          f"final accuracy {graph[-1].test_accuracy:.4f}, {sum(r.epochs for r in graph)} epochs")
    print(f"   straightforward loop: {slow_s:8.2f} s for {n} rounds, "
          f"final accuracy {slow[-1].test_accuracy:.4f} at {slow[-1].n_labeled} labels, "
          f"{sum(r.epochs for r in slow)} epochs")
    if n == len(fast):
        print(f"   speed-up: {slow_s / fast_s:.0f}x  (accuracy difference alcore - straightforward: "
              f"{fast[-1].test_accuracy - slow[-1].test_accuracy:+.4f})")
    else:
        print(f"   speed-up on the first {n} rounds: {slow_s / fast_same:.0f}x (--quick)")


def part_mnist() -> None:
    cfg = ExperimentConfig(dataset="mnist", data_dir=str(SHARED), pool_size=4000, **PROTOCOL)
    ds = load_dataset(cfg)
    secs, rounds = run(cfg, ds, TrainerCache())
    print("2. MNIST, pool 4000, full 10 000-image test set, same protocol (after TensorFlow import "
          f"of {TF_IMPORT_SECONDS:.1f} s; data loading excluded)")
    print(f"   whole {len(rounds)}-round run: {secs:.2f} s (first round with compilation "
          f"{rounds[0].train_seconds:.2f} s); final accuracy {rounds[-1].test_accuracy:.4f}")


def part_full_pool() -> None:
    cfg = ExperimentConfig(dataset="mnist", data_dir=str(SHARED), **PROTOCOL)
    ds = load_dataset(cfg)
    exp = Experiment(cfg, dataset=ds, cache=TrainerCache())
    list(exp.run(max_rounds=2))  # train once so scores are real
    trainer = exp.trainer
    strategy = make_strategy("margin")
    free = np.flatnonzero(~exp._taken)
    times = []
    for r in range(5):
        t0 = time.perf_counter()
        probs = trainer.predict_proba(ds.x_pool[free])
        t1 = time.perf_counter()
        sel = strategy.select(StrategyInput(probs=probs), 10, np.random.default_rng(r))
        t2 = time.perf_counter()
        times.append((t1 - t0, t2 - t1))
    score, select = np.median(np.array(times), axis=0)
    print(f"3. full MNIST pool ({len(free)} unlabeled images), softmax, margin: "
          f"score {score:.3f} s + select {select:.3f} s = {score + select:.3f} s per round (median of 5)")
    assert len(sel.indices) == 10


def part_cnn_xla() -> None:
    """Why the cnn is not XLA-compiled: the same round training with and without XLA."""
    from alcore.engine.models import ModelSpec
    from alcore.engine.training import Trainer

    cfg = ExperimentConfig(dataset="mnist", data_dir=str(SHARED), pool_size=2000, test_size=1000, model="cnn")
    ds = load_dataset(cfg)
    spec = ModelSpec.from_config(cfg, ds.image_shape, ds.n_classes)
    print("4. cnn (filters 32, dropout 0.25), 100 MNIST labels, 20 epochs, second call (first compiles):")
    for jit in (False, True):
        trainer = Trainer(spec, jit=jit)
        for attempt in range(2):
            trainer.set_weights(trainer.initial_weights(0))
            trainer.reset_optimizer(1e-3)
            t0 = time.perf_counter()
            trainer.fit(ds.x_pool[:100], ds.y_pool[:100], max_epochs=20, patience=5,
                        rng=np.random.default_rng(0), capacity=512)
            secs = time.perf_counter() - t0
        print(f"   {'XLA' if jit else 'graph (no XLA)':<15} {secs:6.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="straightforward loop on 8 rounds only")
    ap.add_argument("--parts", default="1,2,3,4", help="which parts to run, e.g. 4 (default: all)")
    ns = ap.parse_args()
    parts = {p.strip() for p in ns.parts.split(",")}
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, import {TF_IMPORT_SECONDS:.1f} s")
    if "1" in parts:
        part_digits(ns.quick)
    if not (SHARED / "mnist").is_dir():
        print(f"2.-4. skipped: {SHARED / 'mnist'} is not here")
        return 0
    if "2" in parts:
        part_mnist()
    if "3" in parts:
        part_full_pool()
    if "4" in parts:
        part_cnn_xla()
    return 0


if __name__ == "__main__":
    sys.exit(main())
