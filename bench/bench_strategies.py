"""Timing of the diversity strategies' ``select`` on random features (no TensorFlow).

    .venv/bin/python bench/bench_strategies.py               # as shipped (THREADS = 1)
    .venv/bin/python bench/bench_strategies.py --threads 0   # the libraries' default threads

Cases (median of 3 runs, each a fresh rng; the arrays are float32, as Keras returns):

- coreset: 1000 picks from 50 000 candidates x 128 features, 100 labeled (target < 10 s);
- badge: 100 picks from 20 000 candidates, 10 classes, 128 features (target < 5 s);
- kmeans and margin_cluster (factor 10): 100 picks from 20 000 x 128, for information;
- kmeans also at 10 000 candidates with KMeans and with MiniBatchKMeans, which is
  where alcore.strategies.diversity.MINIBATCH_THRESHOLD switches from one to the other.

Targets are for a 2-core machine. Other processes on the machine slow every case
(OpenMP and OpenBLAS threads wait on busy cores): compare runs on an idle machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np


from alcore.strategies import diversity as D  # noqa: E402
from alcore.strategies.base import StrategyInput  # noqa: E402

RUNS = 3


def probs(n: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    logits = 2.0 * rng.standard_normal((n, classes))
    p = np.exp(logits - logits.max(1, keepdims=True))
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def time_select(strategy, inputs: StrategyInput, batch: int) -> tuple[float, int]:
    times, picks = [], 0
    for run in range(RUNS):
        t0 = time.perf_counter()
        sel = strategy.select(inputs, batch, np.random.default_rng(run))
        times.append(time.perf_counter() - t0)
        picks = len(np.unique(sel.indices))
        assert picks == batch, f"{strategy.name}: {picks} distinct picks, wanted {batch}"
    return statistics.median(times), picks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=D.THREADS or 0,
                        help="BLAS/OpenMP threads while selecting (0: the libraries' defaults); "
                             f"alcore.strategies.diversity.THREADS is {D.THREADS}")
    args = parser.parse_args()
    D.THREADS = args.threads or None
    rng = np.random.default_rng(0)
    x50 = rng.standard_normal((50_000, 128)).astype(np.float32)
    lab = rng.standard_normal((100, 128)).astype(np.float32)
    x20 = x50[:20_000]
    p20 = probs(20_000, 10, rng)
    cases = [
        ("coreset", "50 000 x 128, 100 labeled, 1000 picks", D.CoresetStrategy(),
         StrategyInput(embeddings=x50, labeled_embeddings=lab), 1000, 10.0),
        ("badge", "20 000 x 128, 10 classes, 100 picks", D.BadgeStrategy(),
         StrategyInput(probs=p20, embeddings=x20), 100, 5.0),
        ("kmeans", "20 000 x 128, 100 picks (MiniBatchKMeans)", D.KMeansStrategy(),
         StrategyInput(embeddings=x20), 100, None),
        ("margin_cluster", "20 000 x 128, factor 10, 100 picks", D.MarginClusterStrategy(10),
         StrategyInput(probs=p20, embeddings=x20), 100, None),
        ("kmeans", "10 000 x 128, 100 picks, KMeans", D.KMeansStrategy(minibatch_threshold=10_000),
         StrategyInput(embeddings=x20[:10_000]), 100, None),
        ("kmeans", "10 000 x 128, 100 picks, MiniBatchKMeans", D.KMeansStrategy(minibatch_threshold=9_999),
         StrategyInput(embeddings=x20[:10_000]), 100, None),
    ]
    print(f"diversity strategies, median of {RUNS} runs, {os.cpu_count()} CPU cores, "
          f"numpy {np.__version__}, threads while selecting: {D.THREADS or 'library default'}, "
          f"load average {os.getloadavg()[0]:.1f}")
    failed = []
    for name, what, strategy, inputs, batch, target in cases:
        seconds, _ = time_select(strategy, inputs, batch)
        verdict = "" if target is None else (f"target < {target:.0f} s: "
                                             + ("met" if seconds < target else "MISSED"))
        if target is not None and seconds >= target:
            failed.append(name)
        print(f"  {name:<15} {what:<45} {seconds:7.2f} s   {verdict}", flush=True)
    if failed:
        print("missed targets: " + ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
