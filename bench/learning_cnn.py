"""Labels needed to reach 90% / 95% MNIST test accuracy with the cnn (issue: beyond uncertainty).

Protocol: MNIST from ../shared/datasets/mnist (the whole 60 000-image training split as the
pool, the full 10 000-image test set), the default `cnn`, 20 initial labels, batches of 10,
up to 500 labels, each round scoring a random subset of `candidates` unlabeled images (10 000
by default, as CPU-bound studies do), strategies random, margin, entropy, bald, coreset,
badge, seeds 0-2. Published reference (Gal et al. 2017, Table 1): random 255 / 835,
BALD 145 / 335 labels to 90% / 95%.

    python bench/learning_cnn.py --out results/cnn            # the whole study (long on 2 cores)
    python bench/learning_cnn.py --seeds 1 --strategies margin,random --label-budget 60   # a quick look
    python -m alcore summarize results/cnn/*.json --target-accuracy 0.9

Every run's result file is written as soon as it finishes, and runs whose complete file
with the same settings already exists are skipped, so an interrupted study continues
where it stopped.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


from alcore import ExperimentConfig, Experiment  # noqa: E402
from alcore.cli import parse_assignments  # noqa: E402
from alcore.data.datasets import load_dataset  # noqa: E402
from alcore.analysis.metrics import labels_to_target  # noqa: E402
from alcore.results.records import ResultFileError, load_result, save_result  # noqa: E402
from alcore.engine.training import TrainerCache  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
TARGETS = (0.90, 0.95)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--strategies", default="random,margin,entropy,bald,coreset,badge")
    ap.add_argument("--label-budget", type=int, default=500)
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a config field (JSON value or plain string)")
    ap.add_argument("--out", default="results/learning_cnn", help="folder for the result files")
    ns = ap.parse_args()
    if not (SHARED / "mnist").is_dir():
        print(f"skipped: {SHARED / 'mnist'} is not here")
        return 0
    overrides = parse_assignments(ns.set)
    base = ExperimentConfig(dataset="mnist", data_dir=str(SHARED), model="cnn", initial=20, batch_size=10,
                            rounds=None, label_budget=ns.label_budget, candidates=ns.candidates, **overrides)
    out = Path(ns.out)
    strategies = [s.strip() for s in ns.strategies.split(",") if s.strip()]
    cache = TrainerCache()
    reached = {s: {t: [] for t in TARGETS} for s in strategies}
    t_start = time.perf_counter()
    for seed in range(ns.seeds):
        ds = None
        for strategy in strategies:
            path = out / f"{strategy}_seed{seed}.json"
            cfg = base.replace(seed=seed, strategy=strategy)
            try:
                res = load_result(path) if path.exists() else None
                if res is not None and (res.status != "complete" or res.config != cfg):
                    res = None  # unfinished, or made with other settings: run it again
            except ResultFileError:
                res = None
            if res is None:
                ds = ds or load_dataset(base.replace(seed=seed))
                t0 = time.perf_counter()
                exp = Experiment(cfg, dataset=ds, cache=cache)
                for _ in exp:
                    pass
                res = exp.result()
                save_result(res, path)
                print(f"seed {seed} {strategy:<8} {res.rounds[-1].n_labeled} labels, final accuracy "
                      f"{res.rounds[-1].test_accuracy:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
            n, a = res.curve()
            for t in TARGETS:
                reached[strategy][t].append(labels_to_target(n, a, t))
    print(f"\nMNIST cnn, 20 initial + batches of 10 up to {ns.label_budget} labels, "
          f"{ns.candidates} candidates per round, seeds 0-{ns.seeds - 1} "
          f"({time.perf_counter() - t_start:.0f} s; files in {out})")
    print(f"{'strategy':<10}" + "".join(f"{'labels to ' + format(t, '.0%'):>24}" for t in TARGETS))
    for s in strategies:
        cells = []
        for t in TARGETS:
            hits = [h for h in reached[s][t] if h is not None]
            txt = f"{np.mean(hits):.0f}" if hits else "-"
            txt += f" ({', '.join(str(h) if h is not None else 'never' for h in reached[s][t])})"
            cells.append(f"{txt:>24}")
        print(f"{s:<10}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
