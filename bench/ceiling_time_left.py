"""How right the Run page's "about N s left" is for a race with the oracle ceiling.

    OMP_NUM_THREADS=1 .venv/bin/python bench/ceiling_time_left.py
    OMP_NUM_THREADS=1 .venv/bin/python bench/ceiling_time_left.py --set model=mlp --rounds 15

races random, margin and typiclust on 2 seeds with the oracle ceiling (digits, softmax by default,
10 initial labels, --rounds acquisition rounds of 10; K = the strategies + 2 = 5), twice in one
process: the first race of a process pays for what happens once (imports, first builds), a second
one is what a server that has run a race before sees. Every step's run and seconds are recorded;
then each estimator is replayed on that same record (so a busy machine changes every estimator's
numbers alike): at each step, as the Run page draws its board, the seconds it would say are left,
against the seconds the rest of the race did take. Estimators:

- one mean (before): seconds so far / rounds so far x rounds left, over every run;
- per run, mean: each run's rounds left x its own mean seconds per round (a run with none yet:
  the strategies' median, x K + 1 for a ceiling);
- per run, trend (now, alcore.engine.race.seconds_left): the same, each run's rounds to come on a
  line through its last 10 rounds (alcore.engine.race.run_seconds_left: a round trains on more
  labels than the one before, so its time grows).

It prints the median and 10th to 90th percentile of estimate / truth over the race's first rounds
(before every run, the ceilings too, has one) and its first, middle and last thirds. 1.00 is
right; below it, too little time left.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alcore.cli import parse_assignments  # noqa: E402
from alcore.config import ExperimentConfig  # noqa: E402
from alcore.engine.race import Race, expected_rounds, seconds_left  # noqa: E402


def run_mean(times, rest):
    return sum(times) / len(times) * rest


def record(cfg: ExperimentConfig, strategies: list[str], seeds: int) -> tuple[list[tuple[int, float]], list[int], int, int]:
    """Race once: (every step's run index and seconds, each run's rounds, strategy runs, K + 1)."""
    race = Race(cfg, strategies, list(range(seeds)), ceiling=True)
    steps = []
    index = {id(e): i for i, e in enumerate(race.runs)}
    while True:
        t0 = time.perf_counter()
        if race.step() is None:
            break
        steps.append((index[id(race.last[0])], time.perf_counter() - t0))
    assert all(e.done for e in race.runs) and all(len(e.rounds) == expected_rounds(e.config) for e in race.runs)
    return steps, [len(e.rounds) for e in race.runs], len(race.experiments), race.setup.ceiling_batches + 1


def estimators(steps, totals, n, k1) -> dict[str, np.ndarray]:
    times: list[list[float]] = [[] for _ in totals]
    out = {"per run, trend (now)": [], "per run, mean": [], "one mean (before)": [], "truth": [], "started": []}
    after = np.cumsum([s for _, s in steps][::-1])[::-1]  # seconds from each step on
    for k, (run, took) in enumerate(steps[:-1]):
        times[run].append(took)
        left = [t - len(x) for t, x in zip(totals, times)]
        done = k + 1
        out["per run, trend (now)"].append(seconds_left(times, left, n, k1))
        out["per run, mean"].append(seconds_left(times, left, n, k1, per_run=run_mean))
        out["one mean (before)"].append(sum(map(sum, times)) / done * sum(left))
        out["truth"].append(after[k + 1])
        out["started"].append(all(times))
    return {name: np.array(v, dtype=float) for name, v in out.items()}


def report(title: str, est: dict[str, np.ndarray]) -> None:
    names = ["per run, trend (now)", "per run, mean", "one mean (before)"]
    print(f"\n{title}: estimate / truth, median (10th to 90th percentile)")
    print(f"{'part of the race':<16}" + "".join(f"{n:>24}" for n in names))
    rows = np.arange(len(est["truth"]))
    parts = [("first rounds", rows[~est["started"].astype(bool)])]
    parts += list(zip(("first third", "middle third", "last third"), np.array_split(rows, 3)))
    for name, part in parts:
        cells = []
        for n in names:
            q = np.percentile(est[n][part] / est["truth"][part], [50, 10, 90])
            cells.append(f"{q[0]:.2f} ({q[1]:.2f}-{q[2]:.2f})")
        print(f"{name:<16}" + "".join(f"{c:>24}" for c in cells))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strategies", nargs="+", default=["random", "margin", "typiclust"])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--rounds", type=int, default=39)
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE")
    p.add_argument("--save", type=Path, help="write the two races' records (steps and seconds) to this JSON file")
    p.add_argument("--load", type=Path, help="replay the estimators on records --save wrote, racing nothing")
    args = p.parse_args()
    cfg = ExperimentConfig(rounds=args.rounds, **parse_assignments(args.set))
    titles = ("first race of the process", "second race of the process")
    records = json.loads(args.load.read_text()) if args.load else \
        [record(cfg, args.strategies, args.seeds) for _ in titles]
    if args.save:
        args.save.write_text(json.dumps(records))
    for title, (steps, totals, n, k1) in zip(titles, records):
        per_run = np.zeros(len(totals))
        for run, took in steps:
            per_run[run] += took
        print(f"\n{title}: {len(totals)} runs ({len(totals) - n} oracle ceilings, K + 1 = {k1}), {len(steps)} rounds, "
              f"{sum(s for _, s in steps):.1f} s; seconds per round, strategies' runs "
              f"{per_run[:n].sum() / sum(totals[:n]):.3f}, ceilings' {per_run[n:].sum() / sum(totals[n:]):.3f}")
        report(title, estimators(steps, totals, n, k1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
