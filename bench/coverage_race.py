"""The typicality and coverage strategies against random and margin on digits, through the CLI,
and their selection time and memory on a 20 000-image pool.

    .venv/bin/python bench/coverage_race.py                 # the race: 3 seeds, 10 initial + 9 x 10
    .venv/bin/python bench/coverage_race.py --scale         # also: one select on 20 000 x 64 features

The race runs, for every seed and strategy (and three cold starts),

    python -m alcore run --dataset digits --strategy S --initial-strategy I --seed N \\
        --initial 10 --batch-size 10 --rounds 9 --out FOLDER/S+I-N.json

(the default softmax learner), then prints the test accuracy at 10, 20, 50 and 100 labels as
mean +- standard deviation over the seeds, and the mean (max) query seconds per round.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# (strategy, cold start): the strategies from a random start, then typicality as a cold start
RUNS = [(s, "random") for s in ("random", "margin", "typiclust", "probcover", "maxherding", "uherding")] + [
    ("random", "kmeans"), ("random", "typiclust"), ("typiclust", "typiclust")]
AT = (10, 20, 50, 100)


def race(folder: Path, seeds: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for seed in range(seeds):
        for strategy, start in RUNS:
            out = folder / f"{strategy}+{start}-{seed}.json"
            cmd = [sys.executable, "-m", "alcore", "run", "--dataset", "digits", "--strategy", strategy,
                   "--initial-strategy", start, "--seed", str(seed), "--initial", "10", "--batch-size", "10",
                   "--rounds", "9", "--out", str(out)]
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
            if p.returncode:
                sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    print(f"digits, {seeds} seeds, softmax, 10 initial labels + 9 batches of 10 (mean +- sd over seeds)")
    print("| strategy | cold start | " + " | ".join(f"{a} labels" for a in AT) + " | query s / round: mean (max) |")
    print("|---|---|" + "---|" * (len(AT) + 1))
    for strategy, start in RUNS:
        accs, query = {a: [] for a in AT}, []
        for seed in range(seeds):
            for r in json.loads((folder / f"{strategy}+{start}-{seed}.json").read_text())["rounds"]:
                if r["n_labeled"] in accs:
                    accs[r["n_labeled"]].append(r["test_accuracy"])
                query.append(r["query_seconds"])
        cells = [f"{100 * np.mean(accs[a]):.1f} ± {100 * np.std(accs[a]):.1f}" for a in AT]
        print(f"| `{strategy}` | `{start}` | " + " | ".join(cells) + f" | {np.mean(query):.3f} ({max(query):.3f}) |")


def scale() -> None:
    import sklearn.cluster  # noqa: F401  (imported here, not inside the first measurement)

    import alcore.strategies  # noqa: F401  (fills the registry)
    from alcore.strategies.base import STRATEGIES, StrategyInput

    rng = np.random.default_rng(0)
    n, d = 20_000, 64
    centres = 2 * rng.standard_normal((10, d))
    x = (centres[rng.integers(0, 10, n)] + rng.standard_normal((n, d))).astype(np.float32)
    inputs = StrategyInput(probs=rng.dirichlet(np.ones(10), n - 20), embeddings=x[20:], labeled_embeddings=x[:20])
    print(f"\none select of 10 from {n - 20:,} candidates x {d} (float32, 10 blobs), 20 labeled; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name in ("typiclust", "probcover", "maxherding", "uherding"):
        strategy = STRATEGIES[name].from_config()
        tracemalloc.start()
        t0 = time.perf_counter()
        sel = strategy.select(inputs, 10, np.random.default_rng(1))
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        extra = f"  radius {sel.record['probcover_radius']:g}" if sel.record else ""
        print(f"  {name:<11} {seconds:6.2f} s  peak {peak / 1e6:5.0f} MB{extra}", flush=True)
    print(f"  (a {n:,} x {n:,} float32 distance matrix would be {n * n * 4 / 1e9:.1f} GB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", help="folder for the result files (default: a temporary one)")
    parser.add_argument("--scale", action="store_true", help="also time one select on a 20 000-image pool")
    args = parser.parse_args()
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        race(Path(args.out), args.seeds)
    else:
        with tempfile.TemporaryDirectory() as folder:
            race(Path(folder), args.seeds)
    if args.scale:
        scale()


if __name__ == "__main__":
    main()
