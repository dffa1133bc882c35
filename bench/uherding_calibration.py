"""UHerding's temperature calibrated each round (the paper's) against UHerding at T = 1.

Races, on the same seeds and cold start,

    uherding (calibrated)   uherding_temperature empty: each round a model trained like the
                            round's on the first 70% of the labels scores the last 30%, and T is
                            the one of 1.0..19.9 with the lowest expected calibration error there
    uherding (T = 1)        uherding_temperature = 1 (this codebase's behaviour before)
    maxherding, margin, random

on (a) scikit-learn's digits (pixels, the convex softmax; ``--digits-seeds`` seeds) and (b) MNIST's
self-supervised embeddings (softmax; ``--mnist-seeds`` seeds, ``--candidates`` candidates per
round), when the embedding is in the cache (``bench/low_budget_mnist.py`` computes it; skipped
otherwise: this script never trains the encoder). Both: 10 initial labels, batches of 10 up to 200
labels. MNIST's 10 initial labels are picked by the strategy itself where it can
(``initial_strategy = "strategy"``); digits' are the same random 10 for every strategy of a seed
(``initial_strategy = "random"``): digits has one fixed pool and test split, so a coverage
strategy's own cold start over the whole pool would make every seed the same run.

It prints, per dataset: test accuracy at 10, 20, 50, 100 and 200 labels (mean +- sd over seeds); the
calibrated minus T = 1 difference, paired by seed, at those budgets and over the whole curve (mean
accuracy over rounds); the temperatures chosen (median and range over seeds, by labels at that
round, and the share of rounds with T > 1); and the seconds the calibration costs per round (the
held-out model's training and scoring, recorded in each round, next to a round's training; and a
round's scoring plus selection, calibrated and at T = 1).

    OMP_NUM_THREADS=1 python bench/uherding_calibration.py
    OMP_NUM_THREADS=1 python bench/uherding_calibration.py --digits-seeds 5 --mnist-seeds 0
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
AT = (10, 20, 50, 100, 200)
CALIBRATED, AT_ONE = "uherding (calibrated)", "uherding (T = 1)"
VARIANTS = [(CALIBRATED, "uherding", {"uherding_temperature": None}),
            (AT_ONE, "uherding", {"uherding_temperature": 1.0}),
            ("maxherding", "maxherding", {}), ("margin", "margin", {}), ("random", "random", {})]


def race(base, seeds: int, dataset, cache=None) -> tuple[dict, dict]:
    """{variant: [rounds of each seed]} and {variant: seconds}, one Race per variant."""
    from alcore.engine.race import Race

    runs, seconds = {}, {}
    warm = Race(base.replace(rounds=1), ["random"], [0], dataset_for=lambda c: dataset, embeddings=cache)
    while warm.step() is not None:  # imports and first calls outside the timed races
        pass
    for name, strategy, fields in VARIANTS:
        t0 = time.perf_counter()
        r = Race(base.replace(**fields), [strategy], list(range(seeds)), dataset_for=lambda c: dataset,
                 embeddings=cache)
        while r.step() is not None:
            pass
        seconds[name] = time.perf_counter() - t0
        runs[name] = [e.rounds for e in r.experiments]
        r.release_models()
        print(f"  {name}: {seconds[name]:.1f} s for {seeds} seeds", flush=True)
    return runs, seconds


def accuracy_at(rounds, n: int) -> float:
    return next((r.test_accuracy for r in rounds if r.n_labeled == n), np.nan)


def report(title: str, runs: dict, seconds: dict) -> None:
    seeds = len(runs[CALIBRATED])
    at = [a for a in AT if any(r.n_labeled == a for r in runs[CALIBRATED][0])]
    print(f"\n### {title}: test accuracy (%), mean ± sd over {seeds} seeds\n")
    print("| strategy | " + " | ".join(f"{a} labels" for a in at) + " | mean over rounds | race s |")
    print("|---|" + "---|" * (len(at) + 2))
    for name, _, _ in VARIANTS:
        cells = []
        for a in at:
            acc = 100 * np.array([accuracy_at(rs, a) for rs in runs[name]])
            cells.append(f"{acc.mean():.1f} ± {acc.std(ddof=1) if seeds > 1 else 0:.1f}")
        area = 100 * np.array([np.mean([r.test_accuracy for r in rs]) for rs in runs[name]])
        cells.append(f"{area.mean():.1f} ± {area.std(ddof=1) if seeds > 1 else 0:.1f}")
        print(f"| {name} | " + " | ".join(cells) + f" | {seconds[name]:.1f} |")

    print(f"\ncalibrated minus T = 1, paired by seed (points; wins / ties / losses of {seeds} seeds):")
    for a in list(at) + ["mean over rounds"]:
        if a == "mean over rounds":
            d = [100 * (np.mean([r.test_accuracy for r in c]) - np.mean([r.test_accuracy for r in o]))
                 for c, o in zip(runs[CALIBRATED], runs[AT_ONE])]
        else:
            d = [100 * (accuracy_at(c, a) - accuracy_at(o, a)) for c, o in zip(runs[CALIBRATED], runs[AT_ONE])]
        d = np.array(d)
        print(f"  {str(a) + ' labels' if a != 'mean over rounds' else a:>16}: {d.mean():+5.2f} ± "
              f"{d.std(ddof=1) if seeds > 1 else 0:.2f}  ({(d > 1e-9).sum()} / {(np.abs(d) <= 1e-9).sum()} / "
              f"{(d < -1e-9).sum()})")

    by_labels: dict[int, list[float]] = {}
    extra, train = [], []
    for rs in runs[CALIBRATED]:
        for r in rs:
            if r.uherding_temperature is not None:
                by_labels.setdefault(r.n_labeled, []).append(r.uherding_temperature)
            if r.uherding_calibration is not None:
                extra.append(r.uherding_calibration.seconds)
                train.append(r.train_seconds)
    temps = np.concatenate([np.array(v) for v in by_labels.values()])
    print(f"\ntemperatures chosen (median [min-max] over seeds, by labels when chosen); T > 1 in "
          f"{(temps > 1).mean():.0%} of {len(temps)} rounds, median {np.median(temps):g}, max {temps.max():g}:")
    shown = [n for n in sorted(by_labels) if n in AT or n % 50 == 0 or n == min(by_labels)]
    print("  " + ", ".join(f"{n}: {np.median(by_labels[n]):g} [{min(by_labels[n]):g}-{max(by_labels[n]):g}]"
                           for n in shown))
    query = {name: [r.score_seconds + r.select_seconds for rs in runs[name] for r in rs if r.selected]
             for name in (CALIBRATED, AT_ONE)}
    print(f"calibration cost: the held-out model {np.mean(extra):.3f} s per round on average (max "
          f"{np.max(extra):.3f}), against {np.mean(train):.3f} s for the round's own training; a round's scoring "
          f"and selection {np.mean(query[CALIBRATED]):.3f} s calibrated vs {np.mean(query[AT_ONE]):.3f} s at "
          f"T = 1; race {seconds[CALIBRATED]:.1f} s vs {seconds[AT_ONE]:.1f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits-seeds", type=int, default=20)
    ap.add_argument("--mnist-seeds", type=int, default=5)
    ap.add_argument("--candidates", type=int, default=3000)
    ap.add_argument("--data-dir", default=str(SHARED))
    ap.add_argument("--set", nargs="*", default=[], help="more config fields FIELD=VALUE (MNIST), e.g. encoder_steps=2000")
    ns = ap.parse_args()

    from alcore import ExperimentConfig
    from alcore.cli import parse_assignments
    from alcore.data.datasets import load_dataset
    from alcore.engine.embeddings import EmbeddingCache, cache_key, compute_embeddings

    protocol = dict(model="softmax", initial=10, batch_size=10, rounds=19)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; 10 initial labels + 19 x 10 to 200 "
          f"labels, softmax", flush=True)
    if ns.digits_seeds:
        base = ExperimentConfig(dataset="digits", initial_strategy="random", **protocol)
        print(f"\n(a) digits, pixels, random cold start: {ns.digits_seeds} seeds", flush=True)
        runs, seconds = race(base, ns.digits_seeds, load_dataset(base))
        report("digits, pixels", runs, seconds)

    data_dir = Path(ns.data_dir)
    if ns.mnist_seeds and (data_dir / "mnist").is_dir():
        base = ExperimentConfig(dataset="mnist", data_dir=str(data_dir), embedding="self_supervised",
                                initial_strategy="strategy", candidates=ns.candidates, **protocol,
                                **parse_assignments(ns.set))
        ds = load_dataset(base)
        cache = EmbeddingCache()
        if not cache.path(cache_key(cache.content(ds), base)).is_file():
            print(f"\n(b) MNIST skipped: its self-supervised embedding (encoder_steps={base.encoder_steps}) is not "
                  f"cached; bench/low_budget_mnist.py computes it")
            return 0
        embedded, rep = compute_embeddings(ds, base, cache=cache)
        print(f"\n(b) MNIST, 'strategy' cold start, {rep.text()} (encoder_steps={base.encoder_steps}); {ns.mnist_seeds} seeds, "
              f"{ns.candidates} candidates per round; load average {os.getloadavg()[0]:.1f}", flush=True)
        runs, seconds = race(base, ns.mnist_seeds, embedded, cache)
        report("MNIST, self-supervised embedding", runs, seconds)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
