"""Choose the softmax model's penalty C without touching any test set.

Each dataset's *training* split is cut into a disjoint 10 000-image development set and
the rest, from which the 4 000-image pool is drawn; every C runs the reference protocol
(10 initial labels, 39 rounds of 10) with margin and random sampling on seeds the reported
benchmarks do not use (100-102), scored on the development set only. The official test
sets are never loaded.

    python bench/tune_softmax.py                     # MNIST and Fashion-MNIST, C grid, 3 seeds
    python bench/tune_softmax.py --c 0.1 1 --seeds 2  # some values only

Prints per C: development accuracy at 10, 50, 100, 200 and 400 labels and the AULC, per
dataset and strategy, then the mean AULC over datasets and strategies (the choice).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from alcore import Experiment, ExperimentConfig
from alcore.analysis.metrics import accuracy_at, normalized_aulc
from alcore.data.datasets import DIGIT_CLASSES, FASHION_CLASSES, RawData, load_idx_folder, prepare

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATASETS = {"mnist": DIGIT_CLASSES, "fashion_mnist": FASHION_CLASSES}
FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
AT = (10, 50, 100, 200, 400)


def dev_split(raw: RawData, seed: int) -> RawData:
    """The training split only: 10 000 development images as the 'test' set, the rest for the pool."""
    order = np.random.default_rng([seed, 4242]).permutation(len(raw.y_train))
    dev, rest = order[:10_000], order[10_000:]
    return RawData(raw.x_train[rest], raw.y_train[rest], raw.x_train[dev], raw.y_train[dev],
                   raw.class_names, raw.source + " (training split: pool part / development part)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--c", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ns = ap.parse_args()
    raws = {}
    for name in ns.datasets:
        folder = SHARED / FOLDERS[name]
        if not folder.is_dir():
            print(f"skipped {name}: {folder} is not here")
            continue
        raws[name] = load_idx_folder(folder, class_names=DATASETS[name])
    if not raws:
        return 0
    seeds = range(100, 100 + ns.seeds)
    prepared = {(name, s): prepare(dev_split(raw, s), ExperimentConfig(dataset=name, pool_size=4000, seed=s))
                for name, raw in raws.items() for s in seeds}
    print(f"{'C':>7} {'dataset':<14}{'strategy':<9}" + "".join(f"{'@' + str(a):>8}" for a in AT)
          + f"{'AULC':>8}{'s/run':>7}", flush=True)
    summary = {}
    for c in ns.c:
        aulcs = []
        for name in raws:
            for strategy in ("margin", "random"):
                acc = {a: [] for a in AT}
                aulc, t0 = [], time.perf_counter()
                for s in seeds:
                    cfg = ExperimentConfig(dataset=name, pool_size=4000, seed=s, strategy=strategy, penalty_c=c)
                    res = Experiment(cfg, dataset=prepared[name, s])
                    list(res)
                    n, a = res.result().curve()
                    for b in AT:
                        acc[b].append(accuracy_at(n, a, b))
                    aulc.append(normalized_aulc(n, a))
                aulcs.append(np.mean(aulc))
                print(f"{c:>7g} {name:<14}{strategy:<9}" + "".join(f"{np.mean(acc[b]):>8.4f}" for b in AT)
                      + f"{np.mean(aulc):>8.4f}{(time.perf_counter() - t0) / len(seeds):>7.1f}", flush=True)
        summary[c] = float(np.mean(aulcs))
    print("\nmean development AULC over datasets and strategies:")
    for c, v in summary.items():
        print(f"  C = {c:<6g} {v:.4f}" + ("   <- best" if v == max(summary.values()) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
