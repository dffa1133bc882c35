"""Test accuracy from one pass with dropout off against the mean of MC-dropout passes.

``mc_evaluation`` changes what a run reports, never what it picks, so both evaluations can
be measured on the same models: each round of a finished run is trained again exactly as
the run trained it (``Experiment.retrain``, cold start, so the same weights), then
evaluated on the full test set once with dropout off (the run's own figure, checked
against its result file) and once as the mean of ``--passes`` stochastic passes.

Default: the Gal et al. 2017 replication shipped in presets/gal2017_mnist (MNIST, their
cnn, 20 balanced initial labels, batches of 10, 3 seeds), random and bald:

    python bench/mc_evaluation.py --out bench/results/mc_evaluation.json
    python bench/mc_evaluation.py --report bench/results/mc_evaluation.json

Needs MNIST's idx files in ../shared/datasets/mnist. Resumable: runs already in --out are
kept.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from alcore import Experiment
from alcore.engine.training import TrainerCache
from alcore.results.records import load_result

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "presets" / "gal2017_mnist"
SHARED = ROOT.parent / "shared" / "datasets"


def labels_to(curve: list[tuple[int, float]], target: float):
    return next((n for n, acc in curve if acc >= target), None)


def largest_fall(curve: list[tuple[int, float]]) -> float:
    return max([a - b for (_, a), (_, b) in zip(curve, curve[1:])] + [0.0])


def measure(path: Path, passes: int) -> dict:
    result = load_result(path)
    cfg = result.config.replace(data_dir=str(SHARED))
    result = result.model_copy(update={"config": cfg})
    exp = Experiment.resume(result, cache=TrainerCache(max_entries=1))
    test_x, test_y = exp.dataset.inputs_test, exp.dataset.y_test
    rows = []
    t0 = time.perf_counter()
    for r in result.rounds:
        acc, _ = exp.retrain(r.round)
        t1 = time.perf_counter()
        mc = exp.trainer.predict_proba_mc_mean(test_x, passes)
        mc_seconds = time.perf_counter() - t1
        rows.append(dict(labels=r.n_labeled, recorded=r.test_accuracy, one_pass=acc,
                         mc=float((mc.argmax(1) == test_y).mean()), mc_seconds=mc_seconds))
        print(f"  {path.stem} {r.n_labeled:4d} labels: recorded {r.test_accuracy:.4f}, again {acc:.4f}, "
              f"mc {rows[-1]['mc']:.4f}", flush=True)
    return dict(file=path.name, strategy=cfg.strategy, seed=cfg.seed, passes=passes, rounds=rows,
                seconds=time.perf_counter() - t0)


def report(runs: list[dict]) -> None:
    print(f"{'strategy':<10}{'seed':>5}  {'to 90%':>13}  {'to 95%':>13}  {'mean acc':>15}  "
          f"{'largest fall':>13}  {'same as file':>12}")
    print(f"{'':<10}{'':>5}  {'1 pass / mc':>13}  {'1 pass / mc':>13}  {'1 pass / mc':>15}  {'1 pass / mc':>13}")
    by: dict[str, list[dict]] = {}
    for run in sorted(runs, key=lambda r: (r["strategy"], r["seed"])):
        one = [(x["labels"], x["one_pass"]) for x in run["rounds"]]
        mc = [(x["labels"], x["mc"]) for x in run["rounds"]]
        same = sum(abs(x["one_pass"] - x["recorded"]) < 1e-9 for x in run["rounds"])
        stats = dict(t90=(labels_to(one, .9), labels_to(mc, .9)), t95=(labels_to(one, .95), labels_to(mc, .95)),
                     mean=(np.mean([a for _, a in one]), np.mean([a for _, a in mc])),
                     fall=(largest_fall(one), largest_fall(mc)),
                     diff=[m - o for (_, o), (_, m) in zip(one, mc)])
        by.setdefault(run["strategy"], []).append(stats)
        show = lambda pair: " / ".join("-" if v is None else str(v) for v in pair)  # noqa: E731
        print(f"{run['strategy']:<10}{run['seed']:>5}  {show(stats['t90']):>13}  {show(stats['t95']):>13}  "
              f"{stats['mean'][0]:>7.2%}/{stats['mean'][1]:<7.2%}  {stats['fall'][0]:>6.2%}/{stats['fall'][1]:<6.2%}  "
              f"{same:>5}/{len(run['rounds'])}")
    for strategy, stats in by.items():
        diffs = np.concatenate([s["diff"] for s in stats])
        print(f"{strategy}: mc - one pass per round, mean {diffs.mean():+.2%} (min {diffs.min():+.2%}, max "
              f"{diffs.max():+.2%}, ahead in {(diffs > 0).sum()} of {len(diffs)} rounds, behind in {(diffs < 0).sum()})")
    secs = [x["mc_seconds"] for run in runs for x in run["rounds"]]
    total = sum(run["seconds"] for run in runs)
    print(f"mean seconds for the mc evaluation of the test set: {np.mean(secs):.2f}; it took "
          f"{sum(secs) / max(total - sum(secs), 1e-9):.2f}x the time of retraining the rounds (same runs)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="JSON file of the measurements (appended to; resumable)")
    ap.add_argument("--report", help="print the table of a JSON file made by --out, run nothing")
    ap.add_argument("--strategies", nargs="+", default=["random", "bald"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--passes", type=int, default=20, help="MC-dropout passes (the preset's mc_passes)")
    args = ap.parse_args(argv)
    if args.report:
        report(json.loads(Path(args.report).read_text()))
        return 0
    if not (SHARED / "mnist").is_dir():
        print(f"MNIST not found in {SHARED / 'mnist'}", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(args.out) if args.out else None
    runs = json.loads(out.read_text()) if out and out.exists() else []
    done = {(r["strategy"], r["seed"]) for r in runs}
    for seed in args.seeds:
        for strategy in args.strategies:
            if (strategy, seed) in done:
                continue
            path = PRESET / f"seed={seed}__strategy={strategy.replace('_', '-')}.json"
            runs.append(measure(path, args.passes))
            if out:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(runs, indent=1))
    report(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
