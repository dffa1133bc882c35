"""Choose the default training settings without touching the test set.

The MNIST training split is cut into a 4000-image pool and a disjoint 10 000-image
*development* set; every candidate setting runs the reference protocol (softmax,
10 initial labels, 39 rounds of 10) with margin and random sampling on seeds that
the reported benchmark does not use, and is scored on the development set only.
The official test set is never loaded here.

    python bench/tune_defaults.py            # needs ../shared/datasets/mnist
    python bench/tune_defaults.py "50 epochs" # only the settings whose name contains this

Prints one line per setting: mean development accuracy at 400 labels.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


from alcore import ExperimentConfig, Experiment  # noqa: E402
from alcore.data.datasets import RawData, load_idx_folder, prepare, DIGIT_CLASSES  # noqa: E402
from alcore.engine.training import TrainerCache  # noqa: E402

MNIST = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"
SEEDS = (100, 101, 102)
CANDIDATES = {
    "early stopping + refit, split 20%, Adam 1e-2, patience 5": dict(validation="split", learning_rate=1e-2,
                                                                    max_epochs=100, refit=True),
    "early stopping + refit, split 20%, Adam 3e-3, patience 5": dict(validation="split", learning_rate=3e-3,
                                                                    max_epochs=100, refit=True),
    "early stopping + refit, split 20%, Adam 1e-2, patience 10": dict(validation="split", learning_rate=1e-2,
                                                                     max_epochs=100, refit=True, patience=10),
    "early stopping, split 20%, Adam 1e-2, patience 5": dict(validation="split", learning_rate=1e-2, max_epochs=100,
                                                                  refit=False),
    "early stopping, split 20%, Adam 1e-3, patience 5": dict(validation="split", learning_rate=1e-3, max_epochs=100,
                                                                  refit=False),
    "fixed 20 epochs, Adam 3e-3": dict(validation="none", max_epochs=20, learning_rate=3e-3),
    "fixed 10 epochs, Adam 1e-2": dict(validation="none", max_epochs=10, learning_rate=1e-2),
    "fixed 20 epochs, Adam 5e-3": dict(validation="none", max_epochs=20, learning_rate=5e-3),
    "fixed 30 epochs, Adam 3e-3": dict(validation="none", max_epochs=30, learning_rate=3e-3),
    "fixed 20 epochs, Adam 3e-3, batch 16": dict(validation="none", max_epochs=20, learning_rate=3e-3,
                                                 train_batch_size=16),
    "fixed 30 epochs, Adam 1e-3": dict(validation="none", max_epochs=30, learning_rate=1e-3),
    "fixed 40 epochs, Adam 1e-3": dict(validation="none", max_epochs=40, learning_rate=1e-3),
    "fixed 60 epochs, Adam 1e-3": dict(validation="none", max_epochs=60, learning_rate=1e-3),
    "fixed 40 epochs, Adam 1e-3, l2 1e-4": dict(validation="none", max_epochs=40, learning_rate=1e-3, l2=1e-4),
    "fixed 50 epochs, Adam 5e-3": dict(validation="none", max_epochs=50, learning_rate=5e-3),
    "fixed 50 epochs, Adam 1e-2": dict(validation="none", max_epochs=50, learning_rate=1e-2),
    "fixed 100 epochs, Adam 1e-2": dict(validation="none", max_epochs=100, learning_rate=1e-2),
    "fixed 30 epochs, SGD 5e-2 m0.9": dict(validation="none", max_epochs=30, learning_rate=5e-2, optimizer="sgd"),
}


def main() -> int:
    if not MNIST.is_dir():
        print(f"skipped: {MNIST} is not here (the verified MNIST copy lives in ../shared/datasets)")
        return 0
    raw = load_idx_folder(MNIST, class_names=DIGIT_CLASSES)
    cache = TrainerCache(max_entries=8)
    print(f"{'setting':<52}{'margin':>9}{'random':>9}{'gap':>8}{'s/run':>8}")
    only = sys.argv[1:]
    for name, changes in CANDIDATES.items():
        if only and not any(o in name for o in only):
            continue
        acc = {"margin": [], "random": []}
        t0 = time.perf_counter()
        for seed in SEEDS:
            rng = np.random.default_rng([seed, 4242])
            order = rng.permutation(len(raw.y_train))
            dev, rest = order[:10_000], order[10_000:]
            split = RawData(raw.x_train[rest], raw.y_train[rest], raw.x_train[dev], raw.y_train[dev],
                            DIGIT_CLASSES, "MNIST train split (dev)")
            base = ExperimentConfig(dataset="mnist", pool_size=4000, rounds=39, seed=seed, **changes)
            ds = prepare(split, base)
            for strategy in acc:
                exp = Experiment(base.replace(strategy=strategy), dataset=ds, cache=cache)
                acc[strategy].append(list(exp)[-1].test_accuracy)
        m, r = np.mean(acc["margin"]), np.mean(acc["random"])
        per_run = (time.perf_counter() - t0) / (2 * len(SEEDS))
        print(f"{name:<52}{m:>9.4f}{r:>9.4f}{m - r:>8.4f}{per_run:>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
