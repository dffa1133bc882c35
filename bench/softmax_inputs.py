"""Does another input transform lift the converged softmax? Development splits only.

The protocol of bench/tune_softmax.py (each training split cut into a 10 000-image
development set and the rest, a 4 000-image pool from the rest, 10 initial labels + 39
rounds of 10, margin and random, seeds 100-102; no test set loaded), with the pool and
development images transformed before the softmax sees them. Statistics (means, standard
deviations, principal components) come from the pool, which an active learner holds.

    python bench/softmax_inputs.py raw,std0.1,center,rownorm 1 mnist
    python bench/softmax_inputs.py pca30,pca60,pca120 1 mnist,fashion_mnist

Arguments: transforms (raw; std<eps>: per-pixel standardisation; center; rownorm: each
image scaled to one norm; pca<k>: the pool's first k principal components), values of C
(comma-separated), datasets (default mnist,fashion_mnist).
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np
from tune_softmax import DATASETS, FOLDERS, SHARED, dev_split

from alcore import Experiment, ExperimentConfig
from alcore.analysis.metrics import accuracy_at, normalized_aulc
from alcore.data.datasets import load_idx_folder, prepare

SEEDS = range(100, 103)


def transformed(ds, how: str):
    """``ds`` with its pool and development images replaced by their transform (as model inputs)."""
    if how == "raw":
        return ds
    p = ds.x_pool.reshape(len(ds.x_pool), -1)
    t = ds.x_test.reshape(len(ds.x_test), -1)
    m = p.mean(0)
    if how == "center":
        fp, ft = p - m, t - m
    elif how.startswith("std"):
        eps = float(how[3:] or 0.1)
        s = p.std(0) + eps
        fp, ft = (p - m) / s, (t - m) / s
    elif how.startswith("pca"):
        k = int(how[3:])
        vt = np.linalg.svd(p - m, full_matrices=False)[2][:k]
        fp, ft = (p - m) @ vt.T, (t - m) @ vt.T
    elif how == "rownorm":
        scale = 0.3 * np.sqrt(p.shape[1])  # about the norm of a raw MNIST image
        fp = p / np.linalg.norm(p, axis=1, keepdims=True).clip(1e-6) * scale
        ft = t / np.linalg.norm(t, axis=1, keepdims=True).clip(1e-6) * scale
    else:
        raise SystemExit(f"unknown transform {how!r}")
    return dataclasses.replace(ds, features_pool=fp.astype(np.float32), features_test=ft.astype(np.float32))


def main(argv: list[str]) -> int:
    hows = argv[0].split(",")
    cs = [float(c) for c in argv[1].split(",")] if len(argv) > 1 else [1.0]
    names = argv[2].split(",") if len(argv) > 2 else list(DATASETS)
    raws = {n: load_idx_folder(SHARED / FOLDERS[n], class_names=DATASETS[n]) for n in names}
    prep = {(n, s): prepare(dev_split(r, s), ExperimentConfig(dataset=n, pool_size=4000, seed=s))
            for n, r in raws.items() for s in SEEDS}
    for how in hows:
        for c in cs:
            line = f"{how:>8} C={c:<5g}"
            for n in names:
                for strategy in ("margin", "random"):
                    first, at400, aulc = [], [], []
                    for s in SEEDS:
                        cfg = ExperimentConfig(dataset=n, pool_size=4000, seed=s, strategy=strategy, penalty_c=c)
                        exp = Experiment(cfg, dataset=transformed(prep[n, s], how))
                        list(exp)
                        labels, acc = exp.result().curve()
                        first.append(acc[0])
                        at400.append(accuracy_at(labels, acc, 400))
                        aulc.append(normalized_aulc(labels, acc))
                    line += (f" | {n[:5]} {strategy[:3]} @10 {np.mean(first):.3f} @400 {np.mean(at400):.4f} "
                             f"aulc {np.mean(aulc):.3f}")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
