"""The low-budget race on MNIST's self-supervised embeddings: typicality against uncertainty.

Races, with the default softmax on the default self-supervised embedding (the SimCLR encoder
trained once on the 60 000 unlabeled pool images, then read from the cache),

    random, typiclust, probcover, margin (and --strategies ... to change them)

on 10 seeds, from 10 initial labels in batches of 10 up to 200 labels. The cold start is
``initial_strategy = "strategy"``: the coverage strategies pick their first 10 labels
themselves (their papers start from no label); random and margin start from the same random
10 (no model yet to be unsure with). Every round, every strategy chooses among a seeded random
subsample of ``--candidates`` unlabeled images (``candidates``; the same for all strategies):
ProbCover and herding cost the square of the images they compare.

It prints the test accuracy at 10, 20, 50, 100 and 200 labels (mean +- sd over seeds), the
paired Wilcoxon tests of each strategy against random at 10 and 20 labels, Holm-corrected over
all of them (:func:`alcore.analysis.stats.tests_at_budgets`), the crossover budget of margin
over each typicality strategy with its bootstrap interval over seeds
(:func:`alcore.analysis.crossover.phase_transitions`), and wall times: reading the embedding
(or training it, the first time) and the race itself, per strategy, with the load average.

    OMP_NUM_THREADS=1 python bench/low_budget_mnist.py
    OMP_NUM_THREADS=1 python bench/low_budget_mnist.py --seeds 3 --strategies random typiclust margin

``--dev``: the development split instead: the first 50 000 MNIST training images are the pool,
the last 10 000 the "test" images, the test set is never loaded (the encoder is trained on
those 50 000 again, the first time: minutes). For choosing settings without looking at the
test set.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
AT = (10, 20, 50, 100, 200)


def dev_split(data_dir: Path, folder: Path) -> Path:
    """An npz of MNIST's training split cut 50 000 / 10 000 (pool / held out)."""
    from alcore.data.datasets import load_idx_folder

    raw = load_idx_folder(data_dir / "mnist")
    path = folder / "mnist_dev.npz"
    np.savez(path, x_train=raw.x_train[:50_000], y_train=raw.y_train[:50_000],
             x_test=raw.x_train[50_000:], y_test=raw.y_train[50_000:])
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--strategies", nargs="+", default=["random", "typiclust", "probcover", "margin"])
    ap.add_argument("--budget", type=int, default=200, help="labels at the end of the race")
    ap.add_argument("--initial", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=3000)
    ap.add_argument("--initial-strategy", default="strategy")
    ap.add_argument("--data-dir", default=str(SHARED))
    ap.add_argument("--dev", action="store_true", help="the development split of the training set (no test set)")
    ap.add_argument("--set", nargs="*", default=[], help="more config fields FIELD=VALUE")
    ns = ap.parse_args()
    data_dir = Path(ns.data_dir)
    if not (data_dir / "mnist").is_dir():
        print(f"skipped: {data_dir / 'mnist'} is not here")
        return 0

    from alcore import ExperimentConfig
    from alcore.analysis.crossover import phase_transitions
    from alcore.analysis.groups import curve_frame
    from alcore.analysis.stats import tests_at_budgets
    from alcore.cli import parse_assignments
    from alcore.data.datasets import load_dataset
    from alcore.engine.embeddings import EmbeddingCache, compute_embeddings
    from alcore.engine.race import Race

    rounds = (ns.budget - ns.initial) // ns.batch_size
    where = dict(dataset="mnist", data_dir=str(data_dir))
    if ns.dev:
        where = dict(dataset="npz", data_file=str(dev_split(data_dir, Path(tempfile.mkdtemp(prefix="alcore-dev-")))))
    base = ExperimentConfig(**where, model="softmax", embedding="self_supervised", initial=ns.initial,
                            initial_strategy=ns.initial_strategy, batch_size=ns.batch_size, rounds=rounds,
                            candidates=ns.candidates, **parse_assignments(ns.set))
    print(f"{'MNIST dev split (50 000 / 10 000 of the training set)' if ns.dev else 'MNIST'}, softmax on the "
          f"self-supervised embedding; {ns.seeds} seeds, {ns.initial} initial ({ns.initial_strategy} cold start) + "
          f"{rounds} x {ns.batch_size} to {ns.initial + rounds * ns.batch_size} labels, {ns.candidates} candidates "
          f"per round; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    t0 = time.perf_counter()
    ds = load_dataset(base)
    cache = EmbeddingCache()
    embedded, report = compute_embeddings(ds, base, cache=cache)
    print(f"data {ds.name}: pool {len(ds.y_pool):,}, test {len(ds.y_test):,}; {report.text()}; "
          f"{time.perf_counter() - t0:.1f} s with loading", flush=True)

    results, seconds = [], {}
    for strategy in ns.strategies:  # one race per strategy, to time each; the picks are a joint race's
        t0 = time.perf_counter()
        race = Race(base, [strategy], list(range(ns.seeds)), dataset_for=lambda c: embedded, embeddings=cache)
        while race.step() is not None:
            pass
        seconds[strategy] = time.perf_counter() - t0
        results += race.results()
        race.release_models()
        print(f"  {strategy}: {seconds[strategy]:.1f} s for {ns.seeds} seeds", flush=True)
    total = sum(seconds.values())
    print(f"the race: {total:.1f} s for {len(ns.strategies)} strategies x {ns.seeds} seeds; load average "
          f"{os.getloadavg()[0]:.1f}\n")

    frame = curve_frame(results)
    at = [a for a in AT if a in set(frame["n_labeled"])]
    print("| strategy | " + " | ".join(f"{a} labels" for a in at) + " | race s |")
    print("|---|" + "---|" * (len(at) + 1))
    for strategy in ns.strategies:
        sub = frame[frame["group"] == strategy]
        cells = []
        for a in at:
            acc = sub[sub["n_labeled"] == a]["test_accuracy"].to_numpy()
            cells.append(f"{100 * acc.mean():.1f} ± {100 * acc.std(ddof=1) if len(acc) > 1 else 0:.1f}")
        print(f"| `{strategy}` | " + " | ".join(cells) + f" | {seconds[strategy]:.1f} |")

    if "random" in ns.strategies:
        tests = tests_at_budgets(frame, [a for a in (10, 20) if a in at], "random")
        print(f"\npaired against random (Wilcoxon signed-rank, Holm-corrected over {tests.attrs.get('comparisons', 0)} "
              f"comparisons, alpha 0.05):")
        for _, r in tests.iterrows():
            print(f"  {r['group']:<11} at {r['n_labeled']:>3} labels: {100 * r['mean_diff']:+5.1f} points "
                  f"({100 * r['mean']:.1f}% vs {100 * r['versus_mean']:.1f}%), wins {r['win_fraction']:.0%} of "
                  f"{r['n_seeds']} seeds, p = {r['wilcoxon_p']:.4f}, Holm p = {r['holm_p']:.4f}: {r['verdict']}")
    print("\nphase transition (crossover of the uncertainty strategy over each typicality strategy):")
    for c in phase_transitions(frame):
        print("  " + c.sentence())
        print("    mean difference by budget: " + ", ".join(
            f"{b}: {100 * d:+.1f}" for b, d in zip(c.budgets, c.mean_diff) if b in AT or b % 50 == 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
