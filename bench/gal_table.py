"""The Gal et al. 2017 replication's table: labels to 90% / 95% test accuracy per seed.

    python bench/gal_table.py                      # presets/gal2017_mnist
    python bench/gal_table.py some/other/folder

Reads the preset's result files (made by
``python -m alcore sweep presets/gal2017_mnist/spec.toml --out presets/gal2017_mnist --workers 1``)
and prints, per strategy, each seed's labels to 90% and 95% ("-" where the run did not get
there within its label budget, with its last accuracy), the mean over the seeds that got there,
and the paper's figure (Table 1, mean of 3 repetitions).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


from alcore.analysis.metrics import labels_to_target  # noqa: E402
from alcore.results.records import load_result  # noqa: E402

FOLDER = Path(__file__).resolve().parents[1] / "presets" / "gal2017_mnist"
PAPER = {"random": (255, 835), "bald": (145, 335), "entropy": (165, 355), "var_ratios": (120, 295),
         "margin": None}
TARGETS = (0.90, 0.95)


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER
    runs: dict[str, dict[int, object]] = {}
    for path in sorted(folder.glob("*.json")):
        res = load_result(path)
        if res.status == "complete":
            runs.setdefault(res.config.strategy, {})[res.config.seed] = res
    seeds = sorted({s for by_seed in runs.values() for s in by_seed})
    print("| strategy | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | Gal et al. 2017 |")
    print("|---" * (len(seeds) + 3) + "|")
    for strategy in [s for s in PAPER if s in runs] + sorted(set(runs) - set(PAPER)):
        cells, reached = [], {t: [] for t in TARGETS}
        for seed in seeds:
            res = runs[strategy].get(seed)
            if res is None:
                cells.append("(not run)")
                continue
            n = [r.n_labeled for r in res.rounds]
            a = [r.test_accuracy for r in res.rounds]
            got = [labels_to_target(n, a, t) for t in TARGETS]
            for t, g in zip(TARGETS, got):
                if g is not None:
                    reached[t].append(g)
            cells.append(" / ".join(str(g) if g is not None else "-" for g in got)
                         + ("" if got[-1] is not None else f" ({a[-1]:.2%} at {n[-1]})"))
        means = []
        for t in TARGETS:
            k = len(reached[t])
            if k == 0:
                means.append("not reached")
            else:
                means.append(f"{np.mean(reached[t]):.0f}" + ("" if k == len(seeds) else f" ({k} of {len(seeds)})"))
        paper = " / ".join(map(str, PAPER[strategy])) if PAPER.get(strategy) else "-"
        print(f"| {strategy} | " + " | ".join(cells) + f" | {' / '.join(means)} | {paper} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
