"""Learning quality on MNIST: accuracy at 400 labels, mean over seeds.

Protocol (issue: alcore engine): MNIST from ../shared/datasets/mnist, a 4000-image
pool, the full 10 000-image test set, softmax, 10 initial labels + 39 rounds of 10,
the default training settings (chosen on a development split by
bench/tune_defaults.py, never on the test set), seeds 0-4.

    python bench/learning_quality.py                       # defaults, 5 seeds, 4 strategies
    python bench/learning_quality.py --set max_epochs=20 --set validation=none
    python bench/learning_quality.py --out results/quality  # keep the result files

Result files can be compared later with ``python -m alcore summarize DIR/*.json --at 400``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


from alcore import ExperimentConfig, Experiment  # noqa: E402
from alcore.cli import parse_assignments  # noqa: E402
from alcore.data.datasets import load_dataset  # noqa: E402
from alcore.analysis.metrics import accuracy_at, normalized_aulc  # noqa: E402
from alcore.results.records import save_result  # noqa: E402
from alcore.engine.training import TrainerCache  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
STRATEGIES = ("margin", "entropy", "least_confidence", "random")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a config field (JSON value or plain string)")
    ap.add_argument("--out", help="folder for the result files (default: a temporary folder)")
    ns = ap.parse_args()
    if not (SHARED / "mnist").is_dir():
        print(f"skipped: {SHARED / 'mnist'} is not here")
        return 0
    overrides = parse_assignments(ns.set)
    base = ExperimentConfig(dataset="mnist", data_dir=str(SHARED), pool_size=4000, model="softmax",
                            initial=10, batch_size=10, rounds=39, **overrides)
    out = Path(ns.out or tempfile.mkdtemp(prefix="alcore-quality-"))
    cache = TrainerCache()
    acc400 = {s: [] for s in STRATEGIES}
    aulc = {s: [] for s in STRATEGIES}
    t0 = time.perf_counter()
    for seed in range(ns.seeds):
        ds = load_dataset(base.replace(seed=seed))
        for strategy in STRATEGIES:
            exp = Experiment(base.replace(seed=seed, strategy=strategy), dataset=ds, cache=cache)
            rounds = list(exp)
            res = exp.result()
            save_result(res, out / f"{strategy}_seed{seed}.json")
            n, a = res.curve()
            acc400[strategy].append(accuracy_at(n, a, 400))
            aulc[strategy].append(normalized_aulc(n, a))
            print(f"seed {seed} {strategy:<17} accuracy at 400 labels {rounds[-1].test_accuracy:.4f}", flush=True)
    changed = {k: v for k, v in base.model_dump().items() if k in overrides}
    print(f"\nMNIST, pool 4000, test 10000, softmax, 10 + 39x10, seeds 0-{ns.seeds - 1}"
          f"{', overrides ' + str(changed) if changed else ', default training settings'}"
          f" ({time.perf_counter() - t0:.0f} s; result files in {out})")
    print(f"{'strategy':<18}{'acc@400 mean':>13}{'std':>8}{'min':>8}{'max':>8}{'AULC':>8}")
    for s in STRATEGIES:
        v = np.array(acc400[s])
        print(f"{s:<18}{v.mean():>13.4f}{v.std(ddof=1) if len(v) > 1 else 0:>8.4f}{v.min():>8.4f}"
              f"{v.max():>8.4f}{np.mean(aulc[s]):>8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
