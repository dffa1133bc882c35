"""Sweep speed: the same digits sweep on 1 and on 2 local worker processes, and the
overhead each cell pays (issue: strategy races at scale).

    python bench/bench_sweep.py                      # 24 cells: 4 strategies x 6 seeds
    python bench/bench_sweep.py --seeds 3 --workers 1,2,4
    python bench/bench_sweep.py --seeds 5 --threads 1   # every worker one thread: scaling in workers alone

Each worker count runs the whole sweep into a fresh folder with `alcore.sweep.runner.run_sweep`
(a LocalCluster; TensorFlow in each worker gets cpu_count / workers threads). Reported:
wall time including the cluster start, the speed-up against the first worker count, and
the overhead: starting the worker processes (cluster start until every worker is up),
the first cell's imports in each worker (TensorFlow), loading the dataset (cached per
worker after the first cell of a seed), each as seconds and as a share of the sweep.
Run it on an otherwise idle machine: the ratio is only meaningful there.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile


from alcore import ExperimentConfig  # noqa: E402
from alcore.sweep.runner import SweepSpec, expand, run_sweep  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--strategies", default="random,margin,entropy,least_confidence")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None,
                    help="TensorFlow threads per worker (default: the CPUs shared out, so 1 worker gets all)")
    ns = ap.parse_args()
    base = ExperimentConfig(dataset="digits", model=ns.model, rounds=ns.rounds, batch_size=10, initial=20)
    spec = SweepSpec(base=base.model_dump(mode="json"),
                     axes={"strategy": ns.strategies.split(","), "seed": list(range(ns.seeds))})
    cells = expand(spec)
    counts = [int(w) for w in ns.workers.split(",")]
    threads = f"{ns.threads} TensorFlow thread(s) per worker" if ns.threads else "CPUs shared out among the workers"
    print(f"{len(cells)} digits cells ({ns.model}, {ns.rounds} rounds of 10 labels); {os.cpu_count()} CPUs; {threads}")
    rows = []
    for n in counts:
        with tempfile.TemporaryDirectory() as out:
            report = run_sweep(cells, out, workers=n, threads=ns.threads)
        assert report.count("done") == len(cells), [o.error for o in report.failed]
        done = [o for o in report.outcomes if o.status == "done"]
        imports = [o.seconds["import"] for o in done if o.seconds["import"] > 0]
        rows.append({
            "workers": n, "wall": report.wall_seconds, "start": report.cluster_start_seconds,
            "import_mean": statistics.mean(imports) if imports else 0.0, "imports": len(imports),
            "data_total": sum(o.seconds["data"] for o in done),
            "data_loads": sum(o.seconds["data"] > 0.05 for o in done),
            "run_mean": statistics.mean(o.seconds["run"] for o in done),
            "cell_total": sum(o.seconds["total"] for o in done),
        })
    first = rows[0]
    print(f"\n{'workers':>7} {'wall s':>8} {'speed-up':>9} {'start s':>8} {'import s':>9} "
          f"{'data s':>7} {'run s/cell':>11} {'overhead/cell':>14}")
    for r in rows:
        # per-cell overhead: what a cell pays on top of its own rounds, the process start and
        # first imports shared out over the cells, plus its dataset load
        overhead = (r["start"] * r["workers"] + r["import_mean"] * r["imports"] + r["data_total"]) / len(cells)
        print(f"{r['workers']:>7} {r['wall']:>8.1f} {first['wall'] / r['wall']:>8.2f}x {r['start']:>8.1f} "
              f"{r['import_mean']:>9.1f} {r['data_total']:>7.2f} {r['run_mean']:>11.2f} {overhead:>13.2f}s")
    print("\nstart: cluster start until every worker is up; import: TensorFlow on a worker's first cell "
          "(mean over workers); data: dataset loads summed over cells (cached per worker); overhead/cell: "
          "start x workers + imports + data, over the cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
