"""The oracle ceiling's cost and the share of its gain each strategy captures, on digits.

    OMP_NUM_THREADS=1 .venv/bin/python bench/oracle_ceiling.py
    OMP_NUM_THREADS=1 .venv/bin/python bench/oracle_ceiling.py --set embedding=self_supervised

races random, margin and typiclust on 3 seeds with the app's defaults (softmax, 10 initial labels,
39 acquisition rounds of 10: 40 rounds, 400 labels) and the oracle ceiling of every seed (K = the
strategies + 2 = 5 candidate batches a round, 200 validation images from the pool), in one process
as the Run page does (alcore.engine.race.Race, stepped round-robin). It prints the wall time of
each seed's ceiling beside the mean of that seed's strategy runs (their ratio is what a busy
machine changes least), the test accuracy at 50, 100, 200 and 400 labels, and the share of the
oracle's gain over random each strategy captures (alcore.analysis.ceiling: per seed, the area
between the strategy's curve and random's over the area between the ceiling's and random's;
mean over seeds with a 95% Student-t interval). Target: a 40-round digits ceiling within
2 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alcore.analysis.ceiling import gain_captured  # noqa: E402
from alcore.cli import parse_assignments  # noqa: E402
from alcore.config import ExperimentConfig, RaceConfig  # noqa: E402
from alcore.engine.race import Race  # noqa: E402

AT = (50, 100, 200, 400)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strategies", nargs="+", default=["random", "margin", "typiclust"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config fields (embedding=...)")
    p.add_argument("--ceiling-candidates", type=int, default=None)
    p.add_argument("--ceiling-validation", type=int, default=200)
    ns = p.parse_args()
    cfg = ExperimentConfig(**parse_assignments(ns.set))
    setup = RaceConfig(base=cfg, strategies=ns.strategies, seeds=list(range(ns.seeds)), ceiling=True,
                       ceiling_candidates=ns.ceiling_candidates, ceiling_validation=ns.ceiling_validation)
    t0 = time.perf_counter()
    race = Race.of(setup)
    setup_s = time.perf_counter() - t0
    seconds = {id(e): 0.0 for e in race.runs}
    while not race.done:
        t = time.perf_counter()
        race.step()
        seconds[id(race.last[0])] += time.perf_counter() - t
    load = os.getloadavg()
    print(f"digits, {cfg.model} on {cfg.embedding}, {cfg.initial} initial + {cfg.rounds} rounds of {cfg.batch_size}; "
          f"strategies {', '.join(ns.strategies)}; ceiling K = {setup.ceiling_batches}, "
          f"{setup.ceiling_validation} validation images; {ns.seeds} seeds; setup (data, embedding) {setup_s:.1f} s; "
          f"load average {load[0]:.1f} / {load[1]:.1f} (1 / 5 min), {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print()
    print("| seed | ceiling rounds | ceiling wall s | strategy run wall s (mean) | ratio |")
    print("|---|---|---|---|---|")
    for c in race.ceilings:
        mine = [seconds[id(e)] for e in race.experiments if e.config.seed == c.config.seed]
        print(f"| {c.config.seed} | {len(c.rounds)} | {seconds[id(c)]:.1f} | {np.mean(mine):.2f} | "
              f"{seconds[id(c)] / np.mean(mine):.0f}x |")
    print()
    results = race.results() + race.ceiling_results()
    print("| run | " + " | ".join(f"{a} labels" for a in AT) + " |")
    print("|---|" + "---|" * len(AT))
    for name in ns.strategies + ["oracle ceiling"]:
        runs = [r for r in results if (r.ceiling is not None if name == "oracle ceiling" else
                                       r.ceiling is None and r.config.strategy == name)]
        cells = []
        for a in AT:
            accs = [r.test_accuracy for res in runs for r in res.rounds if r.n_labeled == a]
            cells.append(f"{100 * np.mean(accs):.1f} ± {100 * np.std(accs):.1f}" if accs else "–")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print("| strategy | share of the oracle's gain over random | 95% interval | seeds |")
    print("|---|---|---|---|")
    for _, row in gain_captured(results).iterrows():
        interval = f"{row['share_low']:.0%} to {row['share_high']:.0%}" if row["seeds"] > 1 else "–"
        print(f"| {row['group']} | {row['share_mean']:.0%} | {interval} | {row['seeds']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
