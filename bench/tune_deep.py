"""Choose the training protocol of the mlp / cnn without touching any test set.

The training split of MNIST (or Fashion-MNIST) is cut, per seed, into a 10 000-image
*development* set and a pool of the other 50 000; the official test split is never loaded.
For every candidate setting and seed the model is trained from scratch on random labeled
sets of several sizes (10 to a few thousand labels, drawn from the pool) and scored on the
development set: the learner under every strategy, at every budget a run passes through.

    python bench/tune_deep.py --group defaults --model cnn                 # the default protocol
    python bench/tune_deep.py --group defaults --model mlp --dataset fashion_mnist
    python bench/tune_deep.py --group defaults --model cnn --variant inverted  # white background
    python bench/tune_deep.py --group gal --sizes 20,50,100,250,500         # the Gal et al. preset
    python bench/tune_deep.py --group gal --only "wd 3"                      # settings whose name has this

Prints one line per setting: development accuracy at each size (mean over the seeds), their
mean, the spread over seeds (largest std across sizes) and the seconds per training.
Seeds 100+ are used so nothing here shares a draw with the reported runs (seeds 0-4).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alcore import ExperimentConfig, Experiment  # noqa: E402
from alcore.data.datasets import (DIGIT_CLASSES, FASHION_CLASSES, RawData, load_idx_folder,  # noqa: E402
                                  prepare)
from alcore.engine.training import TrainerCache  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FOLDERS = {"mnist": ("mnist", DIGIT_CLASSES), "fashion_mnist": ("fashion-mnist", FASHION_CLASSES)}
AUG = dict(augment_shift=0.1, augment_rotation=10.0, augment_zoom=0.1)
LIGHT = dict(augment_shift=0.08, augment_rotation=8.0, augment_zoom=0.08)
# Every setting trains without early stopping (validation "none").
GROUPS = {
    "defaults": {
        "old: early stopping 20% split, refit (for reference)": dict(
            validation="split", refit=True, min_steps=0, max_steps=None),
        "100 ep, no min steps (0.2.0's schedule)": dict(max_epochs=100, min_steps=0, max_steps=None),
        "50 ep, no min steps": dict(max_epochs=50, min_steps=0, max_steps=None),
        "50 ep, steps 200..1000": dict(max_epochs=50, min_steps=200, max_steps=1000),
        "50 ep, steps 500..2000": dict(max_epochs=50, min_steps=500, max_steps=2000),
        "50 ep, steps 200..1000, aug": dict(max_epochs=50, min_steps=200, max_steps=1000, **AUG),
        "50 ep, steps 500..2000, aug": dict(max_epochs=50, min_steps=500, max_steps=2000, **AUG),
        "50 ep, steps 500..2000, light aug": dict(max_epochs=50, min_steps=500, max_steps=2000, **LIGHT),
        "50 ep, steps 500..2000, aug, wd 0.3": dict(max_epochs=50, min_steps=500, max_steps=2000,
                                                     weight_decay=0.3, **AUG),
        "50 ep, steps 500..2000, aug, wd 1": dict(max_epochs=50, min_steps=500, max_steps=2000,
                                                   weight_decay=1.0, **AUG),
        "50 ep, steps 500..2000, aug, wd 3": dict(max_epochs=50, min_steps=500, max_steps=2000,
                                                   weight_decay=3.0, **AUG),
        "50 ep, steps 500..2000, aug, lr 1e-3": dict(max_epochs=50, min_steps=500, max_steps=2000,
                                                      learning_rate=1e-3, **AUG),
    },
    # Gal, Islam & Ghahramani 2017's CNN, 2 labels per class to start, no augmentation (they
    # used none); the step schedule is what a ~90-minute study on 2 cores allows.
    "gal": {
        "gal: 50 ep, steps 150..250, lr 1e-3": dict(max_epochs=50, min_steps=150, max_steps=250, learning_rate=1e-3),
        "gal: 50 ep, steps 150..250, lr 3e-3": dict(max_epochs=50, min_steps=150, max_steps=250),
        "gal: 50 ep, steps 150..250, lr 3e-3, wd 3": dict(max_epochs=50, min_steps=150, max_steps=250,
                                                          weight_decay=3.0),
        "gal: 50 ep, steps 150..250, lr 3e-3, wd 10": dict(max_epochs=50, min_steps=150, max_steps=250,
                                                           weight_decay=10.0),
        "gal: 50 ep, steps 150..250, lr 3e-3, l2 1e-3": dict(max_epochs=50, min_steps=150, max_steps=250,
                                                             l2=1e-3),
        "gal: 50 ep, steps 250..400, lr 3e-3": dict(max_epochs=50, min_steps=250, max_steps=400),
        "gal: 50 ep, steps 100..200, lr 3e-3": dict(max_epochs=50, min_steps=100, max_steps=200),
        "gal: 50 ep, steps 100..200, lr 3e-3, wd 1": dict(max_epochs=50, min_steps=100, max_steps=200,
                                                          weight_decay=1.0),
        "gal: 50 ep, steps 100..200, lr 3e-3, wd 3": dict(max_epochs=50, min_steps=100, max_steps=200,
                                                          weight_decay=3.0),
    },
}
GAL = dict(model="cnn", kernel_size=4, dropout=0.25, dense_dropout=0.5, initial_strategy="balanced")


def dev_split(raw: RawData, seed: int, variant: str) -> RawData:
    order = np.random.default_rng([seed, 4242]).permutation(len(raw.y_train))
    dev, rest = order[:10_000], order[10_000:]
    x = raw.x_train
    if variant == "inverted":
        x = 255 - x
    elif variant == "rotated":  # every image a quarter turn: digits the model cannot have priors about
        x = np.rot90(x, 1, axes=(1, 2))
    return RawData(x[rest], raw.y_train[rest], x[dev], raw.y_train[dev], raw.class_names,
                   f"{raw.source} training split (development, {variant})")


def active_learning(name, changes, ns, splits, seeds, sizes, cache) -> None:
    from alcore.analysis.metrics import labels_to_target

    for strategy in ns.al.split(","):
        cells = []
        t0 = time.perf_counter()
        for seed in seeds:
            initial = 20 if changes.get("initial_strategy") == "balanced" else sizes[0]
            cfg = ExperimentConfig(dataset=ns.dataset, seed=seed, strategy=strategy, initial=initial, batch_size=10,
                                   rounds=None, label_budget=max(sizes), candidates=2000, inspect_k=0,
                                   target_accuracy=0.95, mc_passes=20, **changes)
            exp = Experiment(cfg, dataset=prepare(splits[seed], cfg), cache=cache)
            for _ in exp:
                pass
            n, a = [r.n_labeled for r in exp.rounds], [r.test_accuracy for r in exp.rounds]
            cells.append("/".join(str(labels_to_target(n, a, t) or "-") for t in (0.90, 0.95))
                         + f" ({a[-1]:.3f})")
        secs = (time.perf_counter() - t0) / sum(1 for _ in seeds)
        print(f"{name:<52}{strategy:<12}" + "  ".join(cells) + f"   {secs:.0f} s/run", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", choices=sorted(GROUPS), default="defaults")
    ap.add_argument("--model", choices=("mlp", "cnn"), default="cnn")
    ap.add_argument("--dataset", choices=sorted(FOLDERS), default="mnist")
    ap.add_argument("--variant", choices=("none", "inverted", "rotated"), default="none")
    ap.add_argument("--sizes", default="10,30,100,300,1000")
    ap.add_argument("--seeds", default="100,101")
    ap.add_argument("--only", action="append", default=[], help="run the settings whose name contains this (ending in $: whose name is this)")
    ap.add_argument("--al", metavar="STRATEGIES", help="instead: whole active-learning runs of these strategies "
                    "(comma-separated) with each setting, batches of 10 up to the largest size, 2 000 "
                    "candidates, printing the labels each needs to reach 90%% / 95%% development accuracy")
    ns = ap.parse_args()
    folder, classes = FOLDERS[ns.dataset]
    if not (SHARED / folder).is_dir():
        print(f"skipped: {SHARED / folder} is not here")
        return 0
    raw = load_idx_folder(SHARED / folder, class_names=classes)
    sizes = [int(s) for s in ns.sizes.split(",")]
    seeds = [int(s) for s in ns.seeds.split(",")]
    extra = GAL if ns.group == "gal" else dict(model=ns.model)
    print(f"{ns.group} / {extra['model']} / {ns.dataset} ({ns.variant}); development accuracy at "
          f"{sizes} labels, mean of seeds {seeds}", flush=True)
    print(f"{'setting':<52}" + "".join(f"{n:>8}" for n in sizes) + f"{'mean':>8}{'sd':>6}{'s/fit':>7}")
    cache = TrainerCache(max_entries=4)
    splits = {seed: dev_split(raw, seed, ns.variant) for seed in seeds}
    for name, changes in GROUPS[ns.group].items():
        if ns.only and not any(name == o[:-1] if o.endswith("$") else o in name for o in ns.only):
            continue
        if ns.al:
            active_learning(name, {**extra, **changes}, ns, splits, seeds, sizes, cache)
            continue
        acc = np.zeros((len(seeds), len(sizes)))
        t0 = time.perf_counter()
        for i, seed in enumerate(seeds):
            base = ExperimentConfig(dataset=ns.dataset, rounds=0, candidates=10, inspect_k=0, seed=seed,
                                    **{**extra, **changes})
            ds = prepare(splits[seed], base)
            for j, n in enumerate(sizes):
                cfg = base.replace(initial=n)
                # the old protocol is refused below 50 validation images now; run it anyway to compare
                exp = Experiment(cfg, dataset=ds, cache=cache, check_validation=cfg.validation == "none")
                acc[i, j] = exp.step().test_accuracy
        per_fit = (time.perf_counter() - t0) / acc.size
        sd = acc.std(axis=0, ddof=1).max() if len(seeds) > 1 else 0.0
        print(f"{name:<52}" + "".join(f"{a:>8.4f}" for a in acc.mean(axis=0))
              + f"{acc.mean():>8.4f}{sd:>6.3f}{per_fit:>7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
