"""The project's softmax learner against scikit-learn's LogisticRegression, side by side.

On identical pools, initial labels, strategy code and per-round random generators, two
learners run the same active-learning loop:

- ``alcore``: ``Experiment`` with the default ``softmax`` model (the project's learner);
- ``sklearn``: ``LogisticRegression()`` as most classic active-learning papers use it
  (scikit-learn's defaults: L2 with C = 1, lbfgs, here with max_iter = 10 000 so that every
  fit converges), refitted from scratch each round on the same labels; its probabilities
  are scored by the same :mod:`alcore.strategies` code with the same seeds. Classes it has
  not seen get probability 0, as in the project's learner.

Datasets: MNIST and Fashion-MNIST (pool of 4 000 from the training split, the full 10 000
test set) and variants built from them, on which nothing was tuned:

- ``fashion_tops``: Fashion-MNIST's four upper-body classes (T-shirt, pullover, coat, shirt),
  its hardest confusions;
- ``mnist_rotated``: every MNIST image (pool and test) rotated by its own random angle in
  [-45, 45] degrees;
- ``mnist_imbalanced``: a pool where digit c has weight 0.7^c (about 29% zeros, 1.3% nines),
  tested on the usual balanced test set;
- ``fashion_inverted`` (only when asked for): Fashion-MNIST with every pixel inverted (255 - x).
  A linear model with an unpenalised bias has the same optimum on inverted pixels (W -> -W),
  so for softmax it repeats fashion_mnist; it is there for the networks.

Protocol: 10 initial labels, 39 rounds of 10 (400 labels), seeds 0-4, strategies margin,
entropy, least_confidence and random. Reports accuracy at 50 / 100 / 200 / 400 labels, AULC,
curve drops (rounds after 50 labels that lose more than 5 points, and the largest loss
between rounds), and seconds per run (training, scoring the pool, evaluating).

    python bench/learner_vs_sklearn.py                      # everything (about 30 min on 2 cores)
    python bench/learner_vs_sklearn.py --datasets mnist --seeds 2
    python bench/learner_vs_sklearn.py --json bench/results/learner_vs_sklearn.json

Needs ../shared/datasets (skips what is missing).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from alcore import Experiment, ExperimentConfig
from alcore.analysis.metrics import accuracy_at, curve_drops, normalized_aulc
from alcore.data.datasets import DIGIT_CLASSES, FASHION_CLASSES, RawData, load_idx_folder, prepare
from alcore.engine.loop import _SELECT, round_rng
from alcore.strategies.base import StrategyInput, make_strategy

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
STRATEGIES = ("margin", "entropy", "least_confidence", "random")
AT = (50, 100, 200, 400)
DATASETS = ("mnist", "fashion_mnist", "fashion_tops", "mnist_rotated", "mnist_imbalanced", "fashion_inverted")
DEFAULT_DATASETS = DATASETS[:-1]


# ------------------------------------------------------------------------ datasets

def _idx(name: str) -> RawData:
    folder, names = {"mnist": ("mnist", DIGIT_CLASSES), "fashion": ("fashion-mnist", FASHION_CLASSES)}[name]
    return load_idx_folder(SHARED / folder, class_names=names)


def _rotated(x: np.ndarray, seed: int) -> np.ndarray:
    from scipy.ndimage import rotate

    angles = np.random.default_rng(seed).uniform(-45, 45, len(x))
    return np.stack([rotate(img, a, reshape=False, order=1, mode="constant") for img, a in zip(x, angles)])


def variant(name: str, seed: int) -> tuple[RawData, ExperimentConfig]:
    """The raw data of a benchmark dataset and the config its pool is drawn with."""
    cfg = ExperimentConfig(dataset="mnist" if "mnist" in name else "fashion_mnist", pool_size=4000, seed=seed)
    if name in ("mnist", "fashion_mnist"):
        return _idx("mnist" if name == "mnist" else "fashion"), cfg
    if name == "fashion_tops":
        raw = _idx("fashion")
        keep = np.array([0, 2, 4, 6])
        tr, te = np.isin(raw.y_train, keep), np.isin(raw.y_test, keep)
        remap = np.zeros(10, np.int64)
        remap[keep] = np.arange(len(keep))
        return RawData(raw.x_train[tr], remap[raw.y_train[tr]], raw.x_test[te], remap[raw.y_test[te]],
                       tuple(FASHION_CLASSES[k] for k in keep), "Fashion-MNIST upper-body classes"), cfg
    if name == "fashion_inverted":
        raw = _idx("fashion")
        return RawData(255 - raw.x_train, raw.y_train, 255 - raw.x_test, raw.y_test, raw.class_names,
                       "Fashion-MNIST inverted"), cfg
    raw = _idx("mnist")
    if name == "mnist_rotated":
        rng = np.random.default_rng([seed, 77])
        tr = np.sort(rng.choice(len(raw.y_train), 4000, replace=False))  # rotate only what the pool can use
        return RawData(_rotated(raw.x_train[tr], seed), raw.y_train[tr], _rotated(raw.x_test, 10_000 + seed),
                       raw.y_test, raw.class_names, "MNIST rotated by random angles"), cfg.replace(pool_size=None)
    if name == "mnist_imbalanced":
        rng = np.random.default_rng([seed, 78])
        weight = 0.7 ** raw.y_train.astype(float)
        tr = np.sort(rng.choice(len(raw.y_train), 4000, replace=False, p=weight / weight.sum()))
        return RawData(raw.x_train[tr], raw.y_train[tr], raw.x_test, raw.y_test, raw.class_names,
                       "MNIST, pool imbalanced 0.7^c"), cfg.replace(pool_size=None)
    raise ValueError(f"unknown benchmark dataset {name!r}; choose from {', '.join(DATASETS)}")


# ------------------------------------------------------------------------- learners

def run_alcore(cfg: ExperimentConfig, ds) -> tuple[list[int], list[float], float, np.ndarray]:
    exp = Experiment(cfg, dataset=ds)
    rounds = list(exp)
    seconds = sum(r.train_seconds + r.eval_seconds + r.score_seconds + r.select_seconds for r in rounds)
    return [r.n_labeled for r in rounds], [r.test_accuracy for r in rounds], seconds, exp.initial_indices


def _lr_probs(model, classes: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(x), k), np.float32)
    if len(classes) == 1:
        out[:, classes[0]] = 1.0
    else:
        out[:, classes] = model.predict_proba(x)
    return out


def run_sklearn(cfg: ExperimentConfig, ds, initial: np.ndarray) -> tuple[list[int], list[float], float]:
    """The same loop with LogisticRegression(): same initial labels, strategy and generators."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x_pool = ds.x_pool.reshape(len(ds.x_pool), -1)
    x_test = ds.x_test.reshape(len(ds.x_test), -1)
    k = ds.n_classes
    strategy = make_strategy(cfg.strategy, cfg)
    labeled = [int(i) for i in initial]
    taken = np.zeros(len(x_pool), bool)
    taken[labeled] = True
    ns, accs, seconds = [], [], 0.0
    for r in range(cfg.rounds + 1):
        t0 = time.perf_counter()
        y = ds.y_pool[labeled]
        classes = np.unique(y)
        model = None
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if len(classes) > 1:
                model = LogisticRegression(max_iter=10_000).fit(x_pool[labeled], y)
            acc = float((_lr_probs(model, classes, x_test, k).argmax(1) == ds.y_test).mean())
            free = np.flatnonzero(~taken)
            probs = _lr_probs(model, classes, x_pool[free], k) if r < cfg.rounds else None
        seconds += time.perf_counter() - t0
        ns.append(len(labeled))
        accs.append(acc)
        if r == cfg.rounds:
            break
        t0 = time.perf_counter()
        sel = strategy.select(StrategyInput(probs=probs), cfg.batch_size, round_rng(cfg.seed, r, _SELECT))
        seconds += time.perf_counter() - t0
        picks = free[np.asarray(sel.indices)]
        labeled.extend(int(i) for i in picks)
        taken[picks] = True
    return ns, accs, seconds


# -------------------------------------------------------------------------- report

def _row(dataset, learner, strategy, seed, n, a, seconds) -> dict:
    diffs = np.diff(a)[np.asarray(n[1:]) > 50] if len(a) > 1 else np.zeros(0)
    return {"dataset": dataset, "learner": learner, "strategy": strategy, "seed": seed,
            **{f"acc@{b}": accuracy_at(n, a, b) for b in AT}, "aulc": normalized_aulc(n, a),
            "drops": curve_drops(n, a), "drops_10": curve_drops(n, a, points=0.10),
            "worst_step": float(-diffs.min()) if len(diffs) else 0.0, "seconds": seconds}


def report(rows: list[dict]) -> None:
    import pandas as pd

    df = pd.DataFrame(rows)
    cols = [f"acc@{b}" for b in AT] + ["aulc"]
    mean = df.groupby(["dataset", "strategy", "learner"], sort=False)[cols + ["seconds"]].mean()
    tot = df.groupby(["dataset", "strategy", "learner"], sort=False)[["drops", "drops_10"]].sum()
    worst = df.groupby(["dataset", "strategy", "learner"], sort=False)["worst_step"].max()
    table = mean.join(tot).join(worst)
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.float_format", "{:.4f}".format):
        print("\nMean over seeds (drops summed over seeds; worst_step: the largest fall between rounds after 50 labels)")
        print(table)
    print("\nPaired by seed: alcore - sklearn (mean, and seeds where alcore >= sklearn)")
    piv = df.pivot_table(index=["dataset", "strategy", "seed"], columns="learner", values=["acc@400", "aulc"])
    for (dataset, strategy), sub in piv.groupby(level=[0, 1], sort=False):
        d400 = sub[("acc@400", "alcore")] - sub[("acc@400", "sklearn")]
        daulc = sub[("aulc", "alcore")] - sub[("aulc", "sklearn")]
        print(f"  {dataset:<17}{strategy:<17} acc@400 {d400.mean() * 100:+6.2f} pts ({(d400 >= 0).sum()}/{len(d400)})"
              f"   AULC {daulc.mean() * 100:+6.2f} pts ({(daulc >= 0).sum()}/{len(daulc)})")
    print("\nStrategy - random at 400 labels (mean over seeds), per learner")
    for dataset, sub in df.groupby("dataset", sort=False):
        m = sub.groupby(["learner", "strategy"])["acc@400"].mean()
        a = sub.groupby(["learner", "strategy"])["aulc"].mean()
        for learner in ("alcore", "sklearn"):
            parts = [f"{s} {(m[learner, s] - m[learner, 'random']) * 100:+5.1f}" for s in STRATEGIES[:-1]
                     if (learner, s) in m and (learner, "random") in m]
            aulc_gap = (a[learner, "margin"] - a[learner, "random"]) * 100 \
                if (learner, "margin") in a and (learner, "random") in a else float("nan")
            print(f"  {dataset:<17}{learner:<8} " + "  ".join(parts) + f"   (margin - random AULC {aulc_gap:+.1f})")
    sec = df.groupby("learner")["seconds"].sum()
    if {"alcore", "sklearn"} <= set(sec.index):
        print(f"\nSeconds of rounds, all runs: alcore {sec['alcore']:.0f}, sklearn {sec['sklearn']:.0f} "
              f"(ratio {sec['alcore'] / sec['sklearn']:.2f})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS), choices=DATASETS)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a config field for the alcore learner, e.g. penalty_cv=true")
    ap.add_argument("--json", help="also write every run's row here")
    ns = ap.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is not here")
        return 0
    from alcore.cli import parse_assignments

    overrides = parse_assignments(ns.set)
    rows = []
    for dataset in ns.datasets:
        for seed in range(ns.seeds):
            raw, base = variant(dataset, seed)
            ds = prepare(raw, base)
            for strategy in ns.strategies:
                cfg = base.replace(strategy=strategy, initial=10, batch_size=10, rounds=39, **overrides)
                n, a, sec, initial = run_alcore(cfg, ds)
                rows.append(_row(dataset, "alcore", strategy, seed, n, a, sec))
                n2, a2, sec2 = run_sklearn(cfg, ds, initial)
                rows.append(_row(dataset, "sklearn", strategy, seed, n2, a2, sec2))
                print(f"{dataset:<17} seed {seed} {strategy:<17} acc@400 alcore {a[-1]:.4f} sklearn {a2[-1]:.4f}"
                      f"   drops {rows[-2]['drops']}/{rows[-1]['drops']}   {sec:5.1f}s / {sec2:5.1f}s", flush=True)
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.json).write_text(json.dumps({"overrides": overrides, "rows": rows}, indent=1))
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
