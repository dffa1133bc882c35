"""Choose the self-supervised encoder's defaults (encoder_steps, embedding_dim) without any test set.

MNIST's *training* split is cut into a 10 000-image development set and the 50 000 others,
the pool the encoder trains on (no label read). For each setting: training time, then a
linear head (the `softmax` learner, fitted to convergence) on 100, 1 000 and all 50 000
pool labels, scored on the development set; raw pixels beside it. The official test set is
never loaded.

    OMP_NUM_THREADS=1 ALCORE_THREADS=2 python bench/tune_encoder.py --steps 400 1000 --dims 128
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from alcore import ExperimentConfig
from alcore.data.datasets import DIGIT_CLASSES, load_idx_folder, prepare
from alcore.engine import simclr
from alcore.engine.embeddings import standardized
from alcore.engine.softmax import SoftmaxLearner

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def linear(fp, yp, fd, yd, n, seed=0):
    idx = np.random.default_rng([seed, n]).permutation(len(yp))[:n]
    m = SoftmaxLearner(fp.shape[1], 10, 1.0)
    m.fit(fp[idx], yp[idx])
    return float((m.predict_proba(fd).argmax(1) == yd).mean())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, nargs="+", default=[400, 1000])
    ap.add_argument("--dims", type=int, nargs="+", default=[128])
    ap.add_argument("--pool", type=int, default=50_000)
    ns = ap.parse_args()
    folder = SHARED / "mnist"
    if not folder.is_dir():
        print(f"skipped: {folder} is not here")
        return 0
    from tune_softmax import dev_split  # the same development split as the softmax penalty's

    raw = dev_split(load_idx_folder(folder, class_names=DIGIT_CLASSES), 0)
    ds = prepare(raw, ExperimentConfig(dataset="mnist", pool_size=ns.pool, seed=0))
    print(f"pool {len(ds.y_pool)} (training split), development {len(ds.y_test)} (training split); "
          f"threads {os.environ.get('ALCORE_THREADS', 'all')}; load {os.getloadavg()[0]:.1f}")
    flat_p, flat_d = ds.x_pool.reshape(len(ds.y_pool), -1), ds.x_test.reshape(len(ds.y_test), -1)
    print(f"{'input':<22}{'train s':>9}{'s/step':>8}{'@100':>8}{'@1000':>8}{'@all':>8}")
    print(f"{'pixels':<22}{'-':>9}{'-':>8}" + "".join(
        f"{linear(flat_p, ds.y_pool, flat_d, ds.y_test, n):>8.4f}" for n in (100, 1000, len(ds.y_pool))))
    for dim in ns.dims:
        for steps in ns.steps:
            t0 = time.perf_counter()
            enc, rep = simclr.train_encoder(ds.x_pool, dim, steps, 0)
            secs = time.perf_counter() - t0
            fp, fd = standardized(simclr.embed(enc, ds.x_pool), simclr.embed(enc, ds.x_test))
            accs = [linear(fp, ds.y_pool, fd, ds.y_test, n) for n in (100, 1000, len(ds.y_pool))]
            print(f"{f'simclr {steps} steps d{dim}':<22}{secs:>9.1f}{rep.seconds / rep.steps:>8.3f}"
                  + "".join(f"{a:>8.4f}" for a in accs) + f"   losses {[round(x, 3) for x in rep.losses]}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
