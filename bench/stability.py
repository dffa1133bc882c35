"""Curve stability of the default learners: how often a round's test accuracy drops.

A *drop* is a round past the first 50 labels whose test accuracy is more than 5 points
below the previous round's: with cold-start retraining each round's model is trained
afresh on a superset of the last round's labels, so a drop is the learner's instability,
not the data's.

Protocol: MNIST from ../shared/datasets/mnist (the whole training split as the pool, the
full 10 000-image test set), the *default* settings of whichever alcore is imported, 10
random initial labels, batches of 10 up to --labels, 2 000 random candidates scored per
round, strategies random and margin, seeds 0-2, models cnn and mlp. ``--dataset fashion_mnist``
for Fashion-MNIST; ``--set field=value`` (repeatable) to measure settings other than the defaults
with the same alcore:

    python bench/stability.py --dataset fashion_mnist --models mlp --seeds 5 \
        --set max_epochs=100 --set min_steps=0 --set max_steps=none --out /tmp/stability/0.2.0

    python bench/stability.py --out bench/results/stability/after
    # the code before the change, from a copy of its commit:
    git archive 1ec5f9a | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before python bench/stability.py --out bench/results/stability/before
    python bench/stability.py --report bench/results/stability/before bench/results/stability/after

Runs whose complete result file with the same settings exists are skipped (resumable).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

if not os.environ.get("PYTHONPATH"):  # else: the alcore that PYTHONPATH names (e.g. an old copy)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alcore import ExperimentConfig, Experiment  # noqa: E402
from alcore.config import with_none  # noqa: E402
from alcore.data.datasets import load_dataset  # noqa: E402
from alcore.engine.training import TrainerCache  # noqa: E402
from alcore.results.records import ResultFileError, load_result, save_result  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DROP = 0.05
AFTER = 50


def drops(rounds) -> list[tuple[int, float]]:
    """(labels, points lost) of every round past AFTER labels more than DROP below the previous."""
    out = []
    for prev, cur in zip(rounds, rounds[1:]):
        if cur.n_labeled > AFTER and cur.test_accuracy < prev.test_accuracy - DROP:
            out.append((cur.n_labeled, prev.test_accuracy - cur.test_accuracy))
    return out


def report(folders: list[str]) -> None:
    print(f"{'runs':<28}{'model':<6}{'strategy':<9}{'seed':>5}{'drops':>6}  {'max fall':>8}  "
          f"{'final':>7}  {'s/round':>7}  drops at (labels: points)")
    for folder in folders:
        totals: dict[str, list[int]] = {}
        for path in sorted(Path(folder).glob("*.json")):
            res = load_result(path)
            d = drops(res.rounds)
            falls = [a.test_accuracy - b.test_accuracy for a, b in zip(res.rounds, res.rounds[1:])
                     if b.n_labeled > AFTER]
            secs = np.mean([r.train_seconds + r.eval_seconds + r.query_seconds for r in res.rounds])
            totals.setdefault(res.config.model, []).append(len(d))
            print(f"{Path(folder).name:<28}{res.config.model:<6}{res.config.strategy:<9}{res.config.seed:>5}"
                  f"{len(d):>6}  {max(falls + [0.0]) * 100:>7.1f}p  {res.rounds[-1].test_accuracy:>7.2%}  {secs:>7.1f}  "
                  + ", ".join(f"{n}: -{p * 100:.1f}" for n, p in d))
        for model, counts in totals.items():
            print(f"{Path(folder).name:<28}{model:<6}{'all':<9}{'':>5}{sum(counts):>6}  "
                  f"({sum(counts) / len(counts):.2f} per run over {len(counts)} runs)")


def _field_value(item: str) -> tuple[str, object]:
    """'min_steps=200' -> ('min_steps', 200): numbers as numbers, the rest as text."""
    field, _, text = item.partition("=")
    for kind in (int, float):
        try:
            return field.strip(), kind(text)
        except ValueError:
            pass
    return field.strip(), text.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="folder for the result files")
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--strategies", default="random,margin")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--dataset", choices=("mnist", "fashion_mnist"), default="mnist")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a config field other than its default (e.g. --set min_steps=200), to compare "
                         "settings with one alcore")
    ap.add_argument("--report", nargs="+", metavar="FOLDER", help="only print the drops of these folders' runs")
    ns = ap.parse_args()
    if ns.report:
        report(ns.report)
        return 0
    folder = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}[ns.dataset]
    if not (SHARED / folder).is_dir():
        print(f"skipped: {SHARED / folder} is not here")
        return 0
    import alcore

    print(f"alcore from {Path(alcore.__file__).parent}", flush=True)
    out = Path(ns.out)
    changes = with_none(dict(_field_value(item) for item in ns.set))
    base = ExperimentConfig(dataset=ns.dataset, data_dir=str(SHARED), initial=10, batch_size=10,
                            rounds=(ns.labels - 10) // 10, candidates=2000, **changes)
    ds = load_dataset(base)
    cache = TrainerCache()
    for model in ns.models.split(","):
        for seed in range(ns.seeds):
            for strategy in ns.strategies.split(","):
                cfg = base.replace(model=model, strategy=strategy, seed=seed)
                path = out / f"{model}_{strategy}_seed{seed}.json"
                try:
                    if path.exists() and (r := load_result(path)).status == "complete" and r.config == cfg:
                        continue
                except ResultFileError:
                    pass
                t0 = time.perf_counter()
                exp = Experiment(cfg, dataset=ds, cache=cache)
                for _ in exp:
                    pass
                save_result(exp.result(), path)
                print(f"{model} {strategy} seed {seed}: {len(drops(exp.rounds))} drops, final "
                      f"{exp.rounds[-1].test_accuracy:.2%}, {time.perf_counter() - t0:.0f} s", flush=True)
    report([str(out)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
