"""Self-supervised embeddings of the whole MNIST pool: training time, linear-head accuracy, a short race.

1. Trains the SimCLR encoder on the 60 000 unlabeled MNIST training images with the default
   settings (wall time and this process's CPU time, with the machine's load average beside
   them), or reads it from the cache where it is there (--fresh: a new cache folder, so it
   always trains).
2. Fits the linear head (`softmax`, to convergence) on every pool label, on the embeddings and
   on the raw pixels, and reports test accuracy.
3. Races random against margin with softmax, 3 seeds, 10 to 100 labels (10 per round), on the
   embeddings and on the pixels, and prints mean test accuracy per label count.

    OMP_NUM_THREADS=1 ALCORE_THREADS=2 python bench/ssl_embeddings.py --fresh

Timings depend on the machine and on what else runs on it: the script prints the load average
before and after, and the CPU seconds the process used (on an idle machine with as many cores as
threads, the wall time is at most that).
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from alcore import Experiment, ExperimentConfig
from alcore.data.datasets import load_dataset
from alcore.engine.embeddings import EmbeddingCache, compute_embeddings
from alcore.engine.race import Race

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fresh", action="store_true", help="train the encoder even if the cache holds it")
    ap.add_argument("--set", nargs="*", default=[], help="config fields FIELD=VALUE (e.g. encoder_steps=600)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--no-race", action="store_true")
    ns = ap.parse_args()
    if not (SHARED / "mnist").is_dir():
        print(f"skipped: {SHARED / 'mnist'} is not here")
        return 0
    from alcore.cli import parse_assignments

    base = ExperimentConfig(dataset="mnist", data_dir=str(SHARED / "mnist"), embedding="self_supervised",
                            **parse_assignments(ns.set))
    ds = load_dataset(base)
    cache = EmbeddingCache(tempfile.mkdtemp(prefix="alcore-bench-")) if ns.fresh else EmbeddingCache()
    print(f"MNIST pool {len(ds.y_pool):,}, test {len(ds.y_test):,}; encoder_steps {base.encoder_steps}, "
          f"embedding_dim {base.embedding_dim}; TensorFlow threads {os.environ.get('ALCORE_THREADS', 'all')}, "
          f"{os.cpu_count()} CPUs; load average before {os.getloadavg()[0]:.1f}", flush=True)
    c0, t0 = cpu_seconds(), time.perf_counter()
    embedded, report = compute_embeddings(ds, base, cache=cache)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    print(f"embeddings: {report.text()}; wall {wall:.1f} s, CPU {cpu:.1f} s; load average after "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    if report.losses:
        print("  loss per tenth of the steps: " + " ".join(f"{x:.3f}" for x in report.losses))
    record = cache.record(Path(report.path).stem) if report.path else None
    if record and "train_seconds" in record:
        print(f"  of which the encoder's training {record['train_seconds']:.1f} s "
              f"({record['train_seconds'] / base.encoder_steps:.3f} s per step, {record['epochs']:.2f} passes)")

    print("\nlinear head (softmax, fitted to convergence) on every pool label, test accuracy:")
    for name, cfg, data in (("pixels", base.replace(embedding="pixels"), ds), ("self_supervised", base, embedded)):
        full = cfg.replace(initial=len(ds.y_pool), rounds=0, strategy="random")
        t0 = time.perf_counter()
        r = Experiment(full, dataset=data, embeddings=cache).step()
        print(f"  {name:<16} {r.test_accuracy:.4f}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    if ns.no_race:
        return 0

    print(f"\nrace: softmax, random vs margin, {ns.seeds} seeds, 10..100 labels; mean test accuracy")
    at = list(range(10, 101, 10))
    print(f"  {'input':<16}{'strategy':<9}" + "".join(f"{n:>7}" for n in at) + f"{'s':>7}")
    for name, cfg, data in (("pixels", base.replace(embedding="pixels"), ds), ("self_supervised", base, embedded)):
        t0 = time.perf_counter()
        race = Race(cfg.replace(initial=10, batch_size=10, rounds=9), ["random", "margin"],
                    list(range(ns.seeds)), dataset_for=lambda c: data, embeddings=cache)
        while race.step() is not None:
            pass
        secs = time.perf_counter() - t0
        frame = race.curve_frame()
        for strategy in ("random", "margin"):
            rows = frame[frame.strategy == strategy]
            means = rows.groupby("n_labeled").test_accuracy.mean()
            print(f"  {name:<16}{strategy:<9}" + "".join(f"{means.get(n, np.nan):>7.3f}" for n in at)
                  + f"{secs:>7.1f}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
